// Fuzzes the XML-to-table converter (csrc/xml.c): any bytes, parsed with and without list
// names; errors returned are fine, crashes and sanitizer reports are not.
// sources: csrc/xml.c
#include <stddef.h>
#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "core.h"
#include "xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* core.c is not linked (it would pull every primitive in); this is its one helper. */
void core_register(lua_State *L, const char *name, const luaL_Reg *funcs)
{
    lua_newtable(L);
    luaL_setfuncs(L, funcs, 0);
    lua_setfield(L, -2, name);
}

static lua_State *state(void)
{
    static lua_State *L;
    if (!L) {
        L = luaL_newstate();
        lua_newtable(L);
        xml_open(L);
        lua_getfield(L, -1, "xml");
        lua_getfield(L, -1, "parse");
        lua_setfield(L, LUA_REGISTRYINDEX, "parse");
        lua_settop(L, 0);
    }
    return L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = state();
    for (int with_lists = 0; with_lists < 2; with_lists++) {
        lua_getfield(L, LUA_REGISTRYINDEX, "parse");
        lua_pushlstring(L, (const char *)data, size);
        if (with_lists) {
            lua_createtable(L, 0, 2);
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "item");
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "member");
        } else {
            lua_pushnil(L);
        }
        lua_pcall(L, 2, 3, 0);
        lua_settop(L, 0);
    }
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
