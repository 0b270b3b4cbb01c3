// sources: csrc/httpd.c
/* libFuzzer target: the sandbox server's HTTP/1.1 request parser (request line, headers,
 * Content-Length and chunked bodies, the request table handed to Lua) on any bytes a client
 * could send. It must answer NEED_MORE, COMPLETE or a rejection, never read out of bounds. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>

#include "core.h"
#include "httpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int httpd_fuzz_request(lua_State *L, const char *buf, size_t len);

/* core.c is not linked (it registers every primitive of the project): the same helper here. */
void core_register(lua_State *L, const char *name, const luaL_Reg *funcs)
{
    lua_newtable(L);
    luaL_setfuncs(L, funcs, 0);
    lua_setfield(L, -2, name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *L;
    if (!L) L = luaL_newstate();
    /* an exact-size copy, so a read past the input is caught */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    for (size_t i = 0; i < size; i++) buf[i] = (char)data[i];
    httpd_fuzz_request(L, buf, size);
    free(buf);
    lua_settop(L, 0);
    return 0;
}
