// Fuzzes the shape-directed reader (csrc/shapexml.c): any bytes, read with a plan shaped like
// DescribeSecurityGroups (nested lists, integers, a map, a flattened list, a blob, a timestamp,
// a recursive structure) with and without a result wrapper; nil + message is fine, crashes and
// sanitizer reports are not.
// sources: csrc/shapexml.c csrc/register.c
#include <stddef.h>
#include <stdint.h>

#include "fuzz_lua.h"
#include "shapexml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char PLAN[] =
    "local mt = {}\n"
    "local nodes = {\n"
    "  {type='structure', members={{wire='securityGroupInfo', name='SecurityGroups', node=2},\n"
    "    {wire='nextToken', name='NextToken', node=4}, {wire='f', name='Flat', node=5, flat=true},\n"
    "    {wire='m', name='Map', node=8, flat=true}, {wire='tree', name='Tree', node=9}}},\n"
    "  {type='list', item=3},\n"
    "  {type='structure', members={{wire='groupId', name='GroupId', node=4},\n"
    "    {wire='ipPermissions', name='IpPermissions', node=5}, {wire='fromPort', name='FromPort', node=6},\n"
    "    {wire='ok', name='Ok', node=10}, {wire='ratio', name='Ratio', node=11},\n"
    "    {wire='data', name='Data', node=12}, {wire='when', name='When', node=13},\n"
    "    {wire='tags', name='Tags', node=8}}},\n"
    "  {type='string'},\n"
    "  {type='list', item=6},\n"
    "  {type='integer'},\n"
    "  {type='string'},\n"
    "  {type='map', key=4, value=6, kname='key', vname='value'},\n"
    "  {type='structure', members={{wire='kids', name='Kids', node=14}, {wire='v', name='V', node=6}}},\n"
    "  {type='boolean'}, {type='float'}, {type='blob'}, {type='timestamp'},\n"
    "  {type='list', item=9},\n"
    "}\n"
    "return {nodes=nodes, array_mt=mt}, {nodes=nodes, array_mt=mt, wrapper='OpResult'}\n";

static int timestamp(lua_State *L)
{
    lua_settop(L, 1);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state(shapexml_open, "shapexml");
    static int ready;
    if (!ready) {
        if (luaL_loadstring(L, PLAN) != LUA_OK || lua_pcall(L, 0, 2, 0) != LUA_OK) return 0;
        for (int i = 0; i < 2; i++) {
            lua_getglobal(L, "shapexml");
            lua_getfield(L, -1, "compile");
            lua_pushvalue(L, 1 + i);
            if (lua_pcall(L, 1, 1, 0) != LUA_OK) return 0;
            lua_setglobal(L, i ? "plan_wrapped" : "plan");
            lua_pop(L, 1);
        }
        lua_settop(L, 0);
        ready = 1;
    }
    for (int i = 0; i < 2; i++) {
        lua_getglobal(L, "shapexml");
        lua_getfield(L, -1, "decode");
        lua_remove(L, -2);
        lua_getglobal(L, i ? "plan_wrapped" : "plan");
        lua_pushlstring(L, (const char *)data, size);
        lua_pushcfunction(L, timestamp);
        lua_pcall(L, 3, 2, 0);
        lua_settop(L, 0);
    }
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
