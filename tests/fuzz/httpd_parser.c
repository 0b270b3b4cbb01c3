// sources: csrc/httpd.c csrc/register.c
/* libFuzzer target: the sandbox server's HTTP/1.1 request parser (request line, headers,
 * Content-Length and chunked bodies, the request table handed to Lua) on any bytes a client
 * could send. It must answer NEED_MORE, COMPLETE or a rejection, never read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_lua.h"
#include "httpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int httpd_fuzz_request(lua_State *L, char *buf, size_t len, size_t split);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state(httpd_open, "httpd");
    /* an exact-size copy, so a read past the input is caught */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    /* the second pass cuts the input in two reads where its first byte says */
    httpd_fuzz_request(L, buf, size, size ? (size_t)data[0] * size / 256 : 0);
    free(buf);
    lua_settop(L, 0);
    return 0;
}
