// sources: csrc/dns.c csrc/register.c
/* libFuzzer target: arbitrary bytes as a DNS answer must parse into a table or be refused as
 * malformed, never read outside the message (names, compression pointers, rdata lengths). */
#include <lauxlib.h>
#include <lualib.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
