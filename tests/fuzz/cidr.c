// sources: csrc/reach/cidr.c
/* libFuzzer target: the IPv4 address and prefix parsers never read past the input, and what
 * they accept formats back to the same network. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reach/cidr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a heap copy of exactly `size` bytes, so ASan sees any read past the end */
    char *s = malloc(size ? size : 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    uint32_t ip;
    if (cidr_parse_ip(s, size, &ip) == 0) {
        char buf[16];
        cidr_format_ip(ip, buf);
        if (strlen(buf) != size || memcmp(buf, s, size) != 0)
            abort(); /* canonical input only: formatting gives it back */
    }
    cidr4 c;
    if (cidr_parse(s, size, &c) == 0) {
        if (c.len > 32 || (c.net & ~c.mask) != 0 || c.mask != cidr_mask(c.len))
            abort();
    }
    free(s);
    return 0;
}
