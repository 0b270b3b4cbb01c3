// Fuzzes the SigV4 canonical-request builder (csrc/sigv4.c) through core.sigv4.sign/presign:
// the input is split on NUL bytes into method, URL, then header name/value pairs, and signed
// with each combination of normalize_path/double_encode and a signed_headers list taken from
// the header names. Errors raised or returned are fine; crashes and sanitizer reports are not.
// sources: csrc/sigv4.c
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_lua.h"
#include "sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Pushes the next NUL-terminated piece of the input (or the rest) as a string. */
static void push_piece(lua_State *L, const uint8_t **p, const uint8_t *end)
{
    const uint8_t *q = memchr(*p, 0, (size_t)(end - *p));
    size_t n = q ? (size_t)(q - *p) : (size_t)(end - *p);
    lua_pushlstring(L, (const char *)*p, n);
    *p = q ? q + 1 : end;
}

static int run(lua_State *L)
{
    const uint8_t *data = lua_touserdata(L, 1), *end = data + lua_tointeger(L, 2);
    const uint8_t *p = data;
    int variant = p < end ? *p++ : 0;
    lua_newtable(L); /* req: 3 */
    push_piece(L, &p, end);
    lua_setfield(L, 3, "method");
    push_piece(L, &p, end);
    lua_setfield(L, 3, "url");
    lua_newtable(L); /* headers: 4 */
    lua_newtable(L); /* signed names: 5 */
    int n = 0;
    while (p < end && n < 64) {
        push_piece(L, &p, end);
        lua_pushvalue(L, -1);
        lua_rawseti(L, 5, ++n);
        push_piece(L, &p, end);
        if (variant & 8) { /* a repeated header */
            lua_createtable(L, 2, 0);
            lua_pushvalue(L, -2);
            lua_rawseti(L, -2, 1);
            lua_pushvalue(L, -2);
            lua_rawseti(L, -2, 2);
            lua_remove(L, -2);
        }
        lua_settable(L, 4);
    }
    lua_pushvalue(L, 4);
    lua_setfield(L, 3, "headers");
    lua_newtable(L); /* creds: 6 */
    lua_pushliteral(L, "AKIDEXAMPLE");
    lua_setfield(L, 6, "access_key_id");
    lua_pushliteral(L, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    lua_setfield(L, 6, "secret_access_key");
    if (variant & 4) {
        lua_pushliteral(L, "AQoDYXdzEPT//////////wEXAMPLE+token=");
        lua_setfield(L, 6, "session_token");
    }
    lua_newtable(L); /* opts: 7 */
    lua_pushliteral(L, "us-east-1");
    lua_setfield(L, 7, "region");
    lua_pushliteral(L, "service");
    lua_setfield(L, 7, "service");
    lua_pushliteral(L, "20150830T123600Z");
    lua_setfield(L, 7, "time");
    lua_pushboolean(L, variant & 1);
    lua_setfield(L, 7, "normalize_path");
    lua_pushboolean(L, variant & 2);
    lua_setfield(L, 7, "double_encode");
    if (variant & 16) {
        lua_pushvalue(L, 5);
        lua_setfield(L, 7, "signed_headers");
    }
    lua_getglobal(L, "sigv4");
    lua_getfield(L, -1, (variant & 32) ? "presign" : "sign");
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 6);
    lua_pushvalue(L, 7);
    lua_call(L, 3, 2);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state(sigv4_open, "sigv4");
    lua_pushcfunction(L, run);
    lua_pushlightuserdata(L, (void *)data);
    lua_pushinteger(L, (lua_Integer)size);
    lua_pcall(L, 2, 0, 0); /* raised errors (bad input) are expected */
    lua_settop(L, 0);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
