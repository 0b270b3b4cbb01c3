/* http: HTTP(S) over libcurl for awsnet.core.
 *
 * Adds `core.http.new()` -> client (userdata "awsnet.http.client") holding one curl multi handle,
 * so connections are kept and reused between calls. `client:perform(reqs)` runs every request of
 * the array at once (curl multi) and returns an array of results in the same order: a response
 * {status, headers (lower-case name -> value; repeated headers joined with ", "), body} or a
 * failure {error = code, message}. Codes: "timeout", "refused", "resolve", "tls", "connection",
 * "too_large", "invalid_url", "http". Request fields: method, url, headers (name -> string or
 * array of strings), body, timeout and connect_timeout (seconds), ca_file, verify (default true),
 * max_body (bytes). `client:close()` (also __gc/__close) is idempotent. Callbacks never call Lua.
 * Also `core.http.sleep(seconds)`, the pause between retries. */
#ifndef AWSNET_HTTP_H
#define AWSNET_HTTP_H

#include <lua.h>

void http_open(lua_State *L);

#endif
