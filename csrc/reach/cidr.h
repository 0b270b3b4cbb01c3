/* Addresses and prefixes as the evaluator uses them, IPv4 and IPv6 in one type.
 *
 * An address is 128 bits: an IPv6 address as it is, an IPv4 address as its IPv4-mapped IPv6
 * address ::ffff:a.b.c.d (RFC 4291 2.5.5.2), so one comparison serves both families and an
 * IPv4 prefix a.b.c.d/n is the 128-bit prefix ::ffff:a.b.c.d/(96+n). A prefix also keeps its
 * family: an IPv6 prefix never contains an IPv4 address (::/0 holds ::ffff:0:0/96 as numbers,
 * and AWS's IPv6 rules never match IPv4 traffic), so IPv6 text inside ::ffff:0:0/96 is read as
 * the IPv4 address it maps, the way Linux's dual-stack sockets read it.
 *
 * Contract: the parsers read at most `len` bytes (no NUL needed) and return 0 on success, -1
 * otherwise without touching the outputs. IPv4 text is the canonical dotted quad only
 * ("10.0.128.0"; no leading zeros beyond a lone "0", no spaces). IPv6 text is RFC 4291 2.2: 1-4
 * hex digits per group (either case), one "::" at most, an IPv4 dotted quad in place of the last
 * two groups ("64:ff9b::10.0.0.1"); a zone id ("fe80::1%eth0") is refused (AWS never writes one
 * and a zone has no meaning in a VPC). A prefix is address "/" length (0..32 for IPv4, 0..128
 * for IPv6, decimal without leading zeros); host bits set are accepted and cleared (AWS rejects
 * them, describe-* output never has them, and user input like "10.0.128.5/28" means the network).
 * Nothing here allocates. */
#ifndef AWSNET_REACH_CIDR_H
#define AWSNET_REACH_CIDR_H

#include <stddef.h>
#include <stdint.h>

/* 4-byte aligned (a typedef may lower alignment): the model's structs pack it with their 32-bit
 * fields without padding (the evaluator's rule scans read fewer cache lines), and x86-64 and
 * arm64 read it unaligned as two 64-bit words. */
__extension__ typedef unsigned __int128 addr_t __attribute__((aligned(4)));

#define ADDR_V4_PREFIX ((addr_t)0xffff << 32)

typedef struct {
    addr_t net;     /* host bits cleared */
    uint8_t len;    /* 0..128, of the 128-bit form: an IPv4 /n is 96 + n */
    uint8_t v4;     /* 1: an IPv4 prefix */
} cidr_t;

static inline addr_t addr_v4(uint32_t ip)
{
    return ADDR_V4_PREFIX | ip;
}

static inline int addr_is_v4(addr_t a)
{
    return (a >> 32) == 0xffff;
}

/* The low 32 bits: the IPv4 address of an IPv4 `a`. */
static inline uint32_t addr_low32(addr_t a)
{
    return (uint32_t)a;
}

static inline addr_t addr_mask(unsigned len)
{
    return len == 0 ? 0 : ~(addr_t)0 << (128 - len);
}

int cidr_parse_ip(const char *s, size_t len, addr_t *ip);
int cidr_parse(const char *s, size_t len, cidr_t *out);
/* The prefix length as written: 0..32 for IPv4, 0..128 for IPv6. */
static inline unsigned cidr_text_len(const cidr_t *c)
{
    return c->v4 ? c->len - 96u : c->len;
}
/* Writes the address (dotted quad for IPv4, RFC 5952 form for IPv6: lower case, the longest
 * run of two or more zero groups as "::") into buf, NUL-terminated. */
enum { ADDR_TEXT_MAX = 40 };
void cidr_format_ip(addr_t ip, char buf[ADDR_TEXT_MAX]);

static inline int cidr_contains(const cidr_t *c, addr_t ip)
{
    return ((ip ^ c->net) & addr_mask(c->len)) == 0 && (c->v4 || !addr_is_v4(ip));
}

#endif
