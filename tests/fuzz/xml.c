// Fuzzes the XML-to-table converter (csrc/xml.c): any bytes, parsed with and without list
// names; errors returned are fine, crashes and sanitizer reports are not.
// sources: csrc/xml.c
#include <stddef.h>
#include <stdint.h>

#include "fuzz_lua.h"
#include "xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state(xml_open, "xml");
    for (int with_lists = 0; with_lists < 2; with_lists++) {
        lua_getglobal(L, "xml");
        lua_getfield(L, -1, "parse");
        lua_remove(L, -2);
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
