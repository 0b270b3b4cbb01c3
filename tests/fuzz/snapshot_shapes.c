// sources: csrc/reach/cidr.c csrc/reach/model.c csrc/reach/eval.c csrc/reach/reach.c csrc/reach/jsonkeys.c csrc/register.c
/* libFuzzer target: the snapshot loader on structured describe JSON. The input steers a walk
 * into the article's snapshot (tests/fixtures/reach/article, read once) down to any value and
 * replaces it with a value of another type (string, number, boolean, null, empty, array,
 * object). reach.load must return a model or nil, err "invalid_snapshot" (never raise, never
 * crash); when the new value has the wrong type where awsnet.reach.shape says the loader reads,
 * the error must name that JSON path; traces on a model it returns must answer. Run from the
 * repository root; cjson is Debian's lua-cjson. */
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

/* Loaded once: returns the function run per input. */
static const char *const SETUP =
    "local cjson = require 'cjson.safe'\n"
    "local reach = require 'awsnet.reach'\n"
    "local shape = require 'awsnet.reach.shape'\n"
    "local ROOT = 'tests/fixtures/reach/article/aws_configs/accounts/'\n"
    "local base = { accounts = {} }\n"
    "for _, acct in ipairs({ '111111111111', '222222222222' }) do\n"
    "  local region = {}\n"
    "  base.accounts[acct] = { ['us-east-1'] = region }\n"
    "  for key in pairs(shape.KEYS) do\n"
    "    local f = io.open(ROOT .. acct .. '/us-east-1/' .. key .. '.json', 'rb')\n"
    "    if f then\n"
    "      for k, v in pairs(assert(cjson.decode(f:read('a')))) do region[k] = v end\n"
    "      f:close()\n"
    "    end\n"
    "  end\n"
    "end\n"
    "assert(next(base.accounts['111111111111']['us-east-1']), 'run from the repository root')\n"
    "local function copy(t)\n"
    "  if type(t) ~= 'table' then return t end\n"
    "  local c = {}\n"
    "  for k, v in pairs(t) do c[k] = copy(v) end\n"
    "  return c\n"
    "end\n"
    "local function sorted(t)\n"
    "  local ks = {}\n"
    "  for k in pairs(t) do ks[#ks + 1] = k end\n"
    "  table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)\n"
    "  return ks\n"
    "end\n"
    "local JUNK = { 'x', 7, true, cjson.null, {}, { 'a', 'b' }, { Odd = 'y' } }\n"
    "local function junk_fits(v, spec)\n"
    "  if v == cjson.null then return true end\n"
    "  if type(spec) == 'string' then\n"
    "    if spec == 'string' then return type(v) == 'string' end\n"
    "    if spec == 'boolean' then return type(v) == 'boolean' end\n"
    "    if spec == 'integer' then return math.type(v) ~= nil and math.tointeger(v) ~= nil end\n"
    "    return type(v) == 'number' or type(v) == 'string'\n"
    "  end\n"
    "  if type(v) ~= 'table' then return false end\n"
    "  if next(v) == nil then return true end\n"
    "  if spec.array then return v[1] ~= nil and junk_fits(v[1], spec.array) end\n"
    "  return v[1] == nil\n"
    "end\n"
    "return function(input)\n"
    "  local pos = 0\n"
    "  local function byte()\n"
    "    pos = pos + 1\n"
    "    return input:byte(pos) or 0\n"
    "  end\n"
    "  local data = copy(base)\n"
    "  local accts = sorted(data.accounts)\n"
    "  local region = data.accounts[accts[byte() % #accts + 1]]['us-east-1']\n"
    "  local keys = sorted(region)\n"
    "  local key = keys[byte() % #keys + 1]\n"
    "  local parent, field, value = region, key, region[key]\n"
    "  local path, spec = '$.' .. key, { array = shape.KEYS[key] }\n"
    "  while type(value) == 'table' and next(value) ~= nil and byte() % 4 ~= 0 do\n"
    "    local ks = sorted(value)\n"
    "    local k = ks[byte() % #ks + 1]\n"
    "    if math.type(k) == 'integer' then\n"
    "      path = path .. '[' .. (k - 1) .. ']'\n"
    "      spec = type(spec) == 'table' and spec.array or nil\n"
    "    else\n"
    "      path = path .. '.' .. k\n"
    "      spec = type(spec) == 'table' and spec.object and spec.object[k] or nil\n"
    "    end\n"
    "    parent, field, value = value, k, value[k]\n"
    "  end\n"
    "  local new = copy(JUNK[byte() % #JUNK + 1])\n"
    "  parent[field] = new\n"
    "  local model, err = reach.load(data)\n"
    "  if spec and not junk_fits(new, spec) then\n"
    "    -- an array of the wrong items is named by its first item\n"
    "    local where = path\n"
    "    if type(spec) == 'table' and spec.array and type(new) == 'table' and new[1] ~= nil then\n"
    "      where = path .. '[0]'\n"
    "    end\n"
    "    assert(not model, 'wrong type accepted at ' .. path)\n"
    "    assert(err.path == where, where .. ' reported as ' .. tostring(err.path))\n"
    "  end\n"
    "  if not model then assert(err.code == 'invalid_snapshot', tostring(err)) return end\n"
    "  for _, q in ipairs({ { 'lambda:writer', 'rds:orders' }, { 'eni-0a000000000lambda', '10.1.128.10' } }) do\n"
    "    local r = model:trace{ src = q[1], dst = q[2], protocol = 'tcp', port = 3306 }\n"
    "    if r then local _ = tostring(r) .. r:json() end\n"
    "  end\n"
    "  model:close()\n"
    "end\n";

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
        if (luaL_loadstring(L, SETUP) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
            fprintf(stderr, "%s\n", lua_tostring(L, -1));
            abort();
        }
        lua_setfield(L, LUA_REGISTRYINDEX, "awsnet.fuzz.run");
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "awsnet.fuzz.run");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "reach.load on a mutated snapshot: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
