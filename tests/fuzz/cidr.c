// sources: csrc/reach/cidr.c
/* libFuzzer target: the address and prefix parsers (IPv4 and IPv6) never read past the input;
 * what they accept formats back to text they accept again as the same address; canonical text
 * (an IPv4 dotted quad, or IPv6 in the RFC 5952 form awsnet writes) formats back to itself; a
 * prefix has no host bits and a length of its family's range; a zone id ('%') is always refused. */
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
    int has_percent = memchr(s, '%', size) != NULL;
    addr_t ip;
    if (cidr_parse_ip(s, size, &ip) == 0) {
        if (has_percent)
            abort(); /* zone ids are refused */
        char buf[ADDR_TEXT_MAX];
        cidr_format_ip(ip, buf);
        addr_t again;
        if (cidr_parse_ip(buf, strlen(buf), &again) != 0 || again != ip)
            abort(); /* what is written reads back as the same address */
        char buf2[ADDR_TEXT_MAX];
        cidr_format_ip(again, buf2);
        if (strcmp(buf, buf2) != 0)
            abort(); /* one canonical text per address */
        /* text in the canonical form of its family comes back unchanged */
        int canonical_v4 = addr_is_v4(ip) && memchr(s, ':', size) == NULL;
        if (canonical_v4 && (strlen(buf) != size || memcmp(buf, s, size) != 0))
            abort();
    }
    cidr_t c;
    if (cidr_parse(s, size, &c) == 0) {
        if (has_percent || c.len > 128 || (c.v4 && (c.len < 96 || !addr_is_v4(c.net))) ||
            (c.net & ~addr_mask(c.len)) != 0 || (!c.v4 && addr_is_v4(c.net) && c.len >= 96))
            abort();
        if (!cidr_contains(&c, c.net))
            abort(); /* a prefix holds its own network */
        /* the network written with its length parses back to the same prefix */
        char buf[ADDR_TEXT_MAX + 8];
        cidr_format_ip(c.net, buf);
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof buf - n, "/%u", cidr_text_len(&c));
        cidr_t again;
        if (cidr_parse(buf, strlen(buf), &again) != 0 || again.net != c.net || again.len != c.len || again.v4 != c.v4)
            abort();
    }
    free(s);
    return 0;
}
