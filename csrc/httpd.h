/* httpd — a small HTTP/1.1 server primitive for loopback endpoints (the sandbox).
 *
 * core.httpd.listen{host="127.0.0.1", port=0, max_header_bytes=, max_body_bytes=,
 *                   max_connections=, head_timeout_ms=10000, body_timeout_ms=60000}
 *                                       -> server, or nil, message, code
 *   Binds a loopback address only (127.0.0.0/8 or ::1); port 0 picks a free port. A request's
 *   head must be whole within head_timeout_ms of its first byte (of the accept, for a new
 *   connection), its body within body_timeout_ms of the head: a deadline, not an idle timer, so
 *   trickled bytes do not extend it; past it the client gets 408 and the connection closes.
 * server:port()                         -> the bound port
 * server:step(timeout_ms, handler[, limiter]) -> number of requests handled
 *   Waits up to timeout_ms for activity, reads, and calls handler(req) under lua_pcall for each
 *   complete request: req = {method, target, version, headers = {lowercase name = value, repeated
 *   headers joined by ","}, body, id}. The handler returns {status=, headers={name=value},
 *   body=, delay_ms=, reset=}: delay_ms holds the response back without blocking other
 *   connections; reset=true aborts the connection with a TCP RST instead of answering; or
 *   {defer=true}: the answer comes later through server:respond(req.id, reply), the connection
 *   waiting (and reading nothing more) meanwhile. limiter(head), when given, is called once a
 *   request's head is whole ({method, target, version, headers, id}) and returns its body limit in
 *   bytes (at most max_body_bytes) and optionally the reply for a body past it (default: a bare
 *   413), sent before the body is read when Content-Length says so.
 *   Keep-alive, pipelining, Content-Length and chunked bodies (decoded incrementally, in linear
 *   time however the bytes arrive), Expect: 100-continue. Oversized or malformed requests get
 *   431/413/400 and the connection is closed. If the handler raises, the client gets a 500, the
 *   server stays usable, and step re-raises the error after cleaning up.
 * server:respond(id, reply)             -> true, or false when that connection is gone
 * server:stats()                        -> {bytes_examined, connections, deferred}: the bytes the
 *                                          parser looked at so far (its work), open connections,
 *                                          those waiting for respond
 * core.httpd.monotonic()               -> seconds on a monotonic clock (fractional)
 * server:close()                        -> closes the listener and every connection (idempotent;
 *                                          also __gc and __close). */
#ifndef AWSNET_HTTPD_H
#define AWSNET_HTTPD_H

#include <lua.h>

void httpd_open(lua_State *L);

#endif
