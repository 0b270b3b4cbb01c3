/* sigv4: AWS Signature Version 4 (header and query signing) for awsnet.core.
 *
 * Adds `core.sigv4` with
 *   sign(req, creds, opts)     -> headers to send, {canonical_request, string_to_sign, signature}
 *   presign(req, creds, opts)  -> URL, debug table
 *   hmac_sha256(key, msg), sha256_hex(data)
 * or nil, code, message when the request cannot be signed (bad URL, a listed header missing,
 * no credentials). Wrong argument types raise. Derived signing keys are cached per
 * (secret, date, region, service) in a userdata upvalue, so no state is global. The exact
 * canonicalisation rules are documented in lua/awsnet/sigv4.lua. */
#ifndef AWSNET_SIGV4_H
#define AWSNET_SIGV4_H

#include <lua.h>

void sigv4_open(lua_State *L);

#endif
