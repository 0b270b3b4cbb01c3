/* IPv4 addresses and prefixes as the evaluator uses them.
 *
 * Contract: the parsers read at most `len` bytes (no NUL needed), accept only the canonical
 * dotted-quad form ("10.0.128.0", "10.0.128.0/28"; no leading zeros beyond a lone "0", no
 * spaces, prefix length 0..32), and return 0 on success, -1 otherwise without touching the
 * outputs. A prefix with host bits set is accepted and normalised (AWS itself rejects it, but
 * describe-* output never contains one, and user input like "10.0.128.5/28" is meant as the
 * network). Nothing here allocates. */
#ifndef AWSNET_REACH_CIDR_H
#define AWSNET_REACH_CIDR_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t net;   /* host byte order, host bits cleared */
    uint32_t mask;  /* host byte order */
    uint8_t len;    /* 0..32 */
} cidr4;

int cidr_parse_ip(const char *s, size_t len, uint32_t *ip);
int cidr_parse(const char *s, size_t len, cidr4 *out);
uint32_t cidr_mask(unsigned len);
/* Writes "a.b.c.d" (at most 16 bytes with the NUL) into buf. */
void cidr_format_ip(uint32_t ip, char buf[16]);

static inline int cidr_contains(const cidr4 *c, uint32_t ip)
{
    return (ip & c->mask) == c->net;
}

#endif
