/* awsnet.core — the one C extension module.
 *
 * Each primitive lives in its own translation unit with a small header that declares its
 * `<name>_open(lua_State *L)`. `luaopen_awsnet_core` (core.c) builds the module table and calls
 * every `*_open` with that table on top of the stack; a primitive adds its functions there,
 * usually as a subtable (`core.sigv4`, `core.dns`, ...). Nothing else is exported. */
#ifndef AWSNET_CORE_H
#define AWSNET_CORE_H

#include <lua.h>
#include <lauxlib.h>

#define AWSNET_VERSION "0.2.0"

typedef void (*core_part_open)(lua_State *L);

/* Creates subtable `name` in the table at the top of the stack and fills it with `funcs`. */
void core_register(lua_State *L, const char *name, const luaL_Reg *funcs);

/* Creates the metatable `name` of a handle type once: `methods` (may be NULL) become its
 * __index, and `destroy` — idempotent, it nulls the handle's pointer — serves as __gc and __close,
 * so `close`, collection and to-be-closed variables all end in the same place. */
void core_handle_type(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction destroy);

#endif
