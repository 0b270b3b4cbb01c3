/* Shared by the fuzz targets: a Lua state holding one primitive of awsnet.core, made once.
 * core.c is not linked (it would pull every primitive in), so its one helper is defined here. */
#ifndef AWSNET_FUZZ_LUA_H
#define AWSNET_FUZZ_LUA_H

#include <lauxlib.h>
#include <lua.h>

#include "core.h"

void core_register(lua_State *L, const char *name, const luaL_Reg *funcs)
{
    lua_newtable(L);
    luaL_setfuncs(L, funcs, 0);
    lua_setfield(L, -2, name);
}

/* The state, with the table that `open` registers as `name` in global `name`. */
static lua_State *fuzz_state(void (*open)(lua_State *), const char *name)
{
    static lua_State *L;
    if (!L) {
        L = luaL_newstate();
        lua_newtable(L);
        open(L);
        lua_getfield(L, -1, name);
        lua_setglobal(L, name);
        lua_settop(L, 0);
    }
    return L;
}

#endif
