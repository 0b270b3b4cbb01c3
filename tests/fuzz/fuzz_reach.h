/* Shared by the fuzz targets of the snapshot loader: a Lua state with the standard libraries,
 * the checkout's modules (run from the repository root) and awsnet.core holding the reach
 * primitive alone, made once; `setup` is run once and returns the function each input is given
 * to. That function must not raise: a raise is a finding, reported with `what` and aborted. */
#ifndef AWSNET_FUZZ_REACH_H
#define AWSNET_FUZZ_REACH_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core.h"
#include "reach/reach.h"

static int fuzz_reach_open_core(lua_State *L)
{
    lua_newtable(L);
    reach_open(L);
    return 1;
}

static void fuzz_reach_run(const char *setup, const char *what, const uint8_t *data, size_t size)
{
    static lua_State *L; /* one state for the run: loading the modules per input is too slow */
    if (!L) {
        L = luaL_newstate();
        luaL_openlibs(L);
        luaL_dostring(L, "package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path");
        luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
        lua_pushcfunction(L, fuzz_reach_open_core);
        lua_setfield(L, -2, "awsnet.core");
        lua_pop(L, 1);
        if (luaL_loadstring(L, setup) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
            fprintf(stderr, "%s\n", lua_tostring(L, -1));
            abort();
        }
        lua_setfield(L, LUA_REGISTRYINDEX, "awsnet.fuzz.run");
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "awsnet.fuzz.run");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "%s: %s\n", what, lua_tostring(L, -1));
        abort();
    }
    lua_gc(L, LUA_GCCOLLECT);
}

#endif
