// sources: csrc/reach/cidr.c csrc/reach/model.c csrc/reach/eval.c csrc/reach/reach.c csrc/reach/jsonkeys.c csrc/register.c
/* libFuzzer target: the snapshot loader (lua/awsnet/reach and its C model) on any JSON
 * put in one account and region. reach.load must return a model or nil, err (never raise,
 * never crash), and every query on a model it returns must answer. Run from the repository
 * root (the Lua modules are found under lua/); cjson is Debian's lua-cjson. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core.h"
#include "reach/reach.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int open_core(lua_State *L)
{
    lua_newtable(L);
    reach_open(L);
    return 1;
}

static const char *const SCRIPT =
    "local input = ...\n"
    "local cjson = require 'cjson.safe'\n"
    "local reach = require 'awsnet.reach'\n"
    "local doc = cjson.decode(input)\n"
    "if type(doc) ~= 'table' then return end\n"
    "local model, err = reach.load({ accounts = { ['111111111111'] = { ['us-east-1'] = doc } } })\n"
    "if not model then assert(err.code == 'invalid_snapshot', tostring(err)) return end\n"
    "local names = {}\n"
    "for name in pairs(model._b.endpoints) do names[#names + 1] = name end\n"
    "table.sort(names)\n"
    "for i = 1, math.min(#names, 4) do\n"
    "  for j = 1, math.min(#names, 4) do\n"
    "    local r = model:trace{ src = names[i], dst = names[j], protocol = 'tcp', port = 443 }\n"
    "    if r then local _ = tostring(r) .. r:json() end\n"
    "  end\n"
    "end\n"
    "if names[1] then model:who_can_reach{ dst = names[1], protocol = 'tcp', port = 443 } end\n"
    "model:close()\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *L; /* one state for the run: loading the modules per input is too slow */
    if (!L) {
        L = luaL_newstate();
        luaL_openlibs(L);
        luaL_dostring(L, "package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path");
        luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
        lua_pushcfunction(L, open_core);
        lua_setfield(L, -2, "awsnet.core");
        lua_pop(L, 1);
        if (luaL_loadstring(L, SCRIPT) != LUA_OK) {
            fprintf(stderr, "%s\n", lua_tostring(L, -1));
            abort();
        }
        lua_setfield(L, LUA_REGISTRYINDEX, "awsnet.fuzz.script");
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "awsnet.fuzz.script");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "reach.load raised: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
