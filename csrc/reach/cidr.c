/* IPv4 parsing for the evaluator: strict, bounded, allocation-free. */
#include "reach/cidr.h"

#include <stdio.h>

uint32_t cidr_mask(unsigned len)
{
    return len == 0 ? 0 : (uint32_t)(0xffffffffu << (32 - len));
}

/* Reads a decimal number of 1..maxdigits digits without leading zeros; advances *pos. */
static int read_decimal(const char *s, size_t len, size_t *pos, unsigned maxdigits, unsigned *out)
{
    size_t start = *pos;
    unsigned v = 0;
    while (*pos < len && s[*pos] >= '0' && s[*pos] <= '9' && *pos - start < maxdigits) {
        v = v * 10 + (unsigned)(s[*pos] - '0');
        (*pos)++;
    }
    size_t n = *pos - start;
    if (n == 0 || (n > 1 && s[start] == '0'))
        return -1;
    if (*pos < len && s[*pos] >= '0' && s[*pos] <= '9')
        return -1; /* too many digits */
    *out = v;
    return 0;
}

static int parse_ip_prefix(const char *s, size_t len, size_t *pos, uint32_t *ip)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned octet;
        if (i > 0) {
            if (*pos >= len || s[*pos] != '.')
                return -1;
            (*pos)++;
        }
        if (read_decimal(s, len, pos, 3, &octet) != 0 || octet > 255)
            return -1;
        v = (v << 8) | octet;
    }
    *ip = v;
    return 0;
}

int cidr_parse_ip(const char *s, size_t len, uint32_t *ip)
{
    size_t pos = 0;
    uint32_t v;
    if (parse_ip_prefix(s, len, &pos, &v) != 0 || pos != len)
        return -1;
    *ip = v;
    return 0;
}

int cidr_parse(const char *s, size_t len, cidr4 *out)
{
    size_t pos = 0;
    uint32_t ip;
    unsigned plen;
    if (parse_ip_prefix(s, len, &pos, &ip) != 0)
        return -1;
    if (pos >= len || s[pos] != '/')
        return -1;
    pos++;
    if (read_decimal(s, len, &pos, 2, &plen) != 0 || plen > 32 || pos != len)
        return -1;
    out->len = (uint8_t)plen;
    out->mask = cidr_mask(plen);
    out->net = ip & out->mask;
    return 0;
}

void cidr_format_ip(uint32_t ip, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", (unsigned)(ip >> 24), (unsigned)((ip >> 16) & 255),
             (unsigned)((ip >> 8) & 255), (unsigned)(ip & 255));
}
