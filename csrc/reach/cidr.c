/* IPv4 and IPv6 parsing for the evaluator: strict, bounded, allocation-free. */
#include "reach/cidr.h"

#include <stdio.h>

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

static int parse_v4_prefix(const char *s, size_t len, size_t *pos, uint32_t *ip)
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

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Whether a dotted quad starts at `pos`: digits up to a '.' before any ':' or the end. */
static int dotted_ahead(const char *s, size_t len, size_t pos)
{
    while (pos < len && s[pos] >= '0' && s[pos] <= '9')
        pos++;
    return pos < len && s[pos] == '.';
}

/* RFC 4291 2.2 text up to the first character that cannot continue it ('/' or the end). */
static int parse_v6_prefix(const char *s, size_t len, size_t *pos, addr_t *ip)
{
    uint16_t groups[8];
    int n = 0, gap = -1; /* groups read; where "::" stands (index of the group after it) */
    size_t p = *pos;
    if (p + 1 < len && s[p] == ':' && s[p + 1] == ':') {
        gap = 0;
        p += 2;
    } else if (p < len && s[p] == ':') {
        return -1; /* a lone leading ':' */
    }
    while (p < len && s[p] != '/') {
        if (n == 8)
            return -1;
        if (dotted_ahead(s, len, p)) {
            uint32_t v4;
            if (n > 6 || parse_v4_prefix(s, len, &p, &v4) != 0)
                return -1;
            groups[n++] = (uint16_t)(v4 >> 16);
            groups[n++] = (uint16_t)v4;
            break; /* the dotted quad ends the address */
        }
        unsigned v = 0;
        size_t start = p;
        int d;
        while (p < len && p - start < 4 && (d = hex_digit(s[p])) >= 0) {
            v = v << 4 | (unsigned)d;
            p++;
        }
        if (p == start || (p < len && hex_digit(s[p]) >= 0))
            return -1; /* no digit, or more than four */
        groups[n++] = (uint16_t)v;
        if (p >= len || s[p] == '/')
            break;
        if (s[p] != ':')
            return -1; /* a zone id ('%'), a space, anything else */
        p++;
        if (p < len && s[p] == ':') {
            if (gap >= 0)
                return -1; /* a second "::" */
            gap = n;
            p++;
            if (p >= len || s[p] == '/')
                break; /* "::" at the end */
        } else if (p >= len || s[p] == '/') {
            return -1; /* a trailing single ':' */
        }
    }
    if (gap < 0 ? n != 8 : n > 7)
        return -1; /* "::" stands for at least one group */
    addr_t v = 0;
    int fill = gap < 0 ? 0 : 8 - n;
    for (int i = 0, g = 0; i < 8; i++) {
        uint16_t word = 0;
        if (gap >= 0 && i >= gap && i < gap + fill)
            word = 0;
        else
            word = groups[g++];
        v = v << 16 | word;
    }
    *ip = v;
    *pos = p;
    return 0;
}

/* Either family; *v4 tells which text it was. */
static int parse_ip_prefix(const char *s, size_t len, size_t *pos, addr_t *ip, int *v4)
{
    size_t q = *pos;
    while (q < len && s[q] != '/' && s[q] != ':')
        q++;
    if (q < len && s[q] == ':') {
        *v4 = 0;
        return parse_v6_prefix(s, len, pos, ip);
    }
    uint32_t v;
    if (parse_v4_prefix(s, len, pos, &v) != 0)
        return -1;
    *v4 = 1;
    *ip = addr_v4(v);
    return 0;
}

int cidr_parse_ip(const char *s, size_t len, addr_t *ip)
{
    size_t pos = 0;
    addr_t v;
    int v4;
    if (parse_ip_prefix(s, len, &pos, &v, &v4) != 0 || pos != len)
        return -1;
    *ip = v;
    return 0;
}

int cidr_parse(const char *s, size_t len, cidr_t *out)
{
    size_t pos = 0;
    addr_t ip;
    unsigned plen;
    int v4;
    if (parse_ip_prefix(s, len, &pos, &ip, &v4) != 0)
        return -1;
    if (pos >= len || s[pos] != '/')
        return -1;
    pos++;
    if (read_decimal(s, len, &pos, 3, &plen) != 0 || plen > (v4 ? 32u : 128u) || pos != len)
        return -1;
    /* IPv6 text naming IPv4-mapped addresses is the IPv4 prefix it maps, when it is one */
    if (!v4 && addr_is_v4(ip) && plen >= 96)
        v4 = 1, plen -= 96;
    out->len = (uint8_t)(v4 ? 96 + plen : plen);
    out->v4 = (uint8_t)v4;
    out->net = ip & addr_mask(out->len);
    return 0;
}

void cidr_format_ip(addr_t ip, char buf[ADDR_TEXT_MAX])
{
    if (addr_is_v4(ip)) {
        uint32_t v = addr_low32(ip);
        snprintf(buf, ADDR_TEXT_MAX, "%u.%u.%u.%u", (unsigned)(v >> 24), (unsigned)((v >> 16) & 255),
                 (unsigned)((v >> 8) & 255), (unsigned)(v & 255));
        return;
    }
    unsigned g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (unsigned)(ip >> (112 - 16 * i)) & 0xffff;
    int best = -1, best_len = 1; /* RFC 5952 4.2: the longest run of 2+ zero groups, the first on a tie */
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && g[j] == 0)
            j++;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j > i ? j : i + 1;
    }
    size_t at = 0;
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            at += (size_t)snprintf(buf + at, ADDR_TEXT_MAX - at, "::");
            i += best_len - 1;
            continue;
        }
        at += (size_t)snprintf(buf + at, ADDR_TEXT_MAX - at, "%s%x", at > 0 && buf[at - 1] != ':' ? ":" : "", g[i]);
    }
    if (at == 0)
        snprintf(buf, ADDR_TEXT_MAX, "::");
}
