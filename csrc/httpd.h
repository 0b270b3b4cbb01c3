/* httpd — a small HTTP/1.1 server primitive for loopback endpoints (the sandbox).
 *
 * core.httpd.listen{host="127.0.0.1", port=0, max_header_bytes=, max_body_bytes=,
 *                   max_connections=}  -> server, or nil, message, code
 *   Binds a loopback address only (127.0.0.0/8 or ::1); port 0 picks a free port.
 * server:port()                         -> the bound port
 * server:step(timeout_ms, handler)      -> number of requests answered
 *   Waits up to timeout_ms for activity, reads, and calls handler(req) under lua_pcall for each
 *   complete request: req = {method, target, version, headers = {lowercase name = value, repeated
 *   headers joined by ","}, body}. The handler returns {status=, headers={name=value},
 *   body=, delay_ms=, reset=}: delay_ms holds the response back without blocking other
 *   connections; reset=true aborts the connection with a TCP RST instead of answering.
 *   Keep-alive, pipelining, Content-Length and chunked bodies, Expect: 100-continue. Oversized or
 *   malformed requests get 431/413/400 and the connection is closed. If the handler raises, the
 *   client gets a 500, the server stays usable, and step re-raises the error after cleaning up.
 * core.httpd.monotonic()               -> seconds on a monotonic clock (fractional)
 * server:close()                        -> closes the listener and every connection (idempotent;
 *                                          also __gc and __close). */
#ifndef AWSNET_HTTPD_H
#define AWSNET_HTTPD_H

#include <lua.h>

void httpd_open(lua_State *L);

#endif
