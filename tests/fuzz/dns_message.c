// sources: csrc/dns.c
/* libFuzzer target: arbitrary bytes as a DNS answer must parse into a table or be refused as
 * malformed, never read outside the message (names, compression pointers, rdata lengths). */
#include <lauxlib.h>
#include <lualib.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* dns_open's only link to core.c, which would pull in every other primitive */
void core_register(lua_State *L, const char *name, const luaL_Reg *funcs)
{
    lua_newtable(L);
    luaL_setfuncs(L, funcs, 0);
    lua_setfield(L, -2, name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *L;
    if (L == NULL)
        L = luaL_newstate();
    int top = lua_gettop(L);
    const char *fault = dns_push_message(L, data, size);
    if ((fault == NULL) != (lua_gettop(L) == top + 1))
        __builtin_trap(); /* a table on success, nothing on a fault */
    lua_settop(L, top);
    return 0;
}
