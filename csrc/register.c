/* The helpers every primitive uses to register itself in awsnet.core (declared in core.h).
 * Kept apart from core.c, which lists every primitive, so that a fuzz target can link one
 * primitive with these helpers alone. */
#include "core.h"

void core_register(lua_State *L, const char *name, const luaL_Reg *funcs)
{
    lua_newtable(L);
    luaL_setfuncs(L, funcs, 0);
    lua_setfield(L, -2, name);
}

void core_handle_type(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction destroy)
{
    if (luaL_newmetatable(L, name)) {
        if (methods != NULL) {
            lua_newtable(L);
            luaL_setfuncs(L, methods, 0);
            lua_setfield(L, -2, "__index");
        }
        lua_pushcfunction(L, destroy);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, destroy);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
}
