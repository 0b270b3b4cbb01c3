/* The compiled network model the evaluator walks.
 *
 * Contract: the Lua loader (lua/awsnet/reach/load.lua) resolves every id to a 0-based index
 * and adds entities through the builder functions below; `model_finish` then sorts routes and
 * rules into their evaluation order and builds the lookup indexes; after that the model is
 * read-only and every query is a pure function of it. Every entity keeps `comp`, the index
 * of its id in the Lua-side component list, and every route or rule keeps `rule`, the index
 * of its description there, so a hop is four integers and the words live in Lua.
 * Indices passed to the builders are checked; a bad one makes the builder return -1. */
#ifndef AWSNET_REACH_MODEL_H
#define AWSNET_REACH_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "reach/cidr.h"

/* Route targets the evaluator follows; every other target ends the path (`RT_OTHER`). */
enum { RT_LOCAL, RT_TGW, RT_PCX, RT_OTHER };
/* Same-prefix priority ranks: lower wins (VPC: static > prefix list > propagated;
 * TGW: static > prefix list > VPC-propagated > other propagated). */
enum { RANK_STATIC = 0, RANK_PREFIX_LIST = 1, RANK_PROPAGATED = 2, RANK_OTHER_PROPAGATED = 3 };
#define PROTO_ALL (-1)

typedef struct { int32_t comp; int32_t main_rtb; int32_t first_att; int32_t sub_off, sub_cnt;
                 uint8_t dns_support; } vpc_t;
/* `cidr` is the subnet's first CIDR (IPv4 unless the subnet is IPv6-only); every CIDR, the IPv6
 * one of a dual-stack subnet too, is in the model's `subnet_cidrs`. */
typedef struct { int32_t comp; int32_t vpc; int32_t az; int32_t rtb; int32_t nacl; cidr_t cidr; } subnet_t;
/* One CIDR of a subnet, in the VPC's lookup order (vpc, net) after finish. */
typedef struct { cidr_t cidr; int32_t vpc; int32_t subnet; } subnet_cidr_t;
/* A route table, NACL, SG or TGW route table: its entries are [off, off + cnt); for NACLs and
 * SGs the inbound ones come first and the outbound ones start at `egress`. */
typedef struct { int32_t comp; int32_t off, cnt; int32_t egress; int32_t grp_off, grp_cnt; } table_t;
/* Longest-prefix match: a route table's routes sorted by length (longest first), then network,
 * then rank; one group per length, looked up by the network of the address: large groups in an
 * open-addressing hash of their first route per network (one or two cache lines instead of a
 * binary search's dozen), small ones by binary search. */
/* (`v4`: a group holds one family's routes, so a route whose network equals the address masked to
 * `len` contains it: a lookup skips the other family's groups and checks nothing more) */
typedef struct { uint8_t len; uint8_t v4; int32_t off, cnt; int32_t hash_off; uint32_t hash_mask; } lpm_group;
/* A hash slot of an LPM group: a 32-bit digest of the network next to its route's index (-1 =
 * empty), so a probe reads one slot; a digest that matches is confirmed on the route, which the
 * caller reads next anyway (the IPv4 digest is the address itself: the slots are as small as
 * they were before IPv6). */
typedef struct { uint32_t net; int32_t route; } lpm_slot;
/* A route of the other family than the packet never matches it (::/0 holds no IPv4 address). */
typedef struct { cidr_t dst; int32_t table; int32_t target; int32_t rule; uint8_t kind; uint8_t rank;
                 uint8_t blackhole; } route_t;
/* A NACL or security-group rule's prefix in 12 bytes, as small as an IPv4-only one (the rule scans
 * read no more cache lines than before IPv6): IPv4 (`w0` the network, `w1` its mask, `len` 0..32)
 * and IPv6 up to /64 (`w1`:`w0` the high 64 bits of the network) inline, a longer IPv6 prefix by
 * index `w0` into the model's `long_cidrs`. Read with model_rule_contains and model_rule_cidr. */
enum { RC_V4, RC_V6, RC_V6_LONG };
typedef struct { uint32_t w0, w1; uint8_t len; uint8_t kind; } rule_cidr_t;
/* `lo`..`hi`: ports for TCP and UDP; for ICMP and ICMPv6, type << 8 | code (see eval_query). */
typedef struct { rule_cidr_t cidr; int32_t table; int32_t number; int32_t rule; int16_t proto; uint16_t lo, hi;
                 uint8_t egress; uint8_t allow; } acl_rule_t;
typedef struct { rule_cidr_t cidr; int32_t table; int32_t ref_sg; int32_t rule; int16_t proto; uint16_t lo, hi;
                 uint8_t egress; } sg_rule_t;
/* `ip4`: the primary IPv4 address (0 when none); the first IPv6 address is in the model's
 * `eni_ip6` (0 when none: never a valid address of either family, IPv4 being ::ffff:a.b.c.d), out
 * of the way of the walk, which reads neither. Read both with model_eni_ip. */
typedef struct { int32_t comp; int32_t subnet; uint32_t ip4; int32_t sg_off, sg_cnt; } eni_t;
typedef struct { addr_t ip; int32_t vpc; int32_t eni; } eni_addr_t;
typedef struct { int32_t comp; uint8_t available; uint8_t sgref; } tgw_t;
typedef struct { int32_t comp; int32_t tgw; int32_t vpc; int32_t assoc; int32_t next_in_vpc;
                 int32_t sub_off, sub_cnt; uint8_t available; uint8_t sgref; } att_t;
typedef struct { int32_t comp; uint8_t known; uint8_t available; } trtb_t;
typedef struct { int32_t comp; int32_t vpc_a, vpc_b; uint8_t active; } pcx_t;

#define VEC(T) struct { T *v; size_t n, cap; }

typedef struct model {
    VEC(vpc_t) vpcs;
    VEC(subnet_t) subnets;
    VEC(subnet_cidr_t) subnet_cidrs; /* every subnet CIDR, by (vpc, net) after finish */
    VEC(table_t) rtbs;
    VEC(route_t) routes;
    VEC(table_t) acls;
    VEC(acl_rule_t) acl_rules;
    VEC(table_t) sgs;
    VEC(sg_rule_t) sg_rules;
    VEC(eni_t) enis;
    VEC(addr_t) eni_ip6;          /* [eni] = its first IPv6 address, 0 when none (as long as the
                                   * last ENI with one: an IPv4-only model has none of it) */
    VEC(int32_t) eni_sgs;
    VEC(eni_addr_t) addrs;        /* every private address, by (vpc, ip) after finish */
    VEC(tgw_t) tgws;
    VEC(att_t) atts;
    VEC(int32_t) att_subnets;
    VEC(table_t) trtbs_tab;       /* TGW route tables: routes in troutes */
    VEC(trtb_t) trtbs;
    VEC(route_t) troutes;         /* target = attachment index, blackhole flag */
    VEC(lpm_group) groups;        /* prefix-length groups of rtbs and trtbs_tab */
    VEC(lpm_slot) lpm_slots;      /* the groups' hash slots */
    /* The words hops are reported with, kept out of the Lua heap: NUL-terminated strings in
     * one arena; a component is 4 of them (id, kind, account, name), a rule one. */
    VEC(char) text;
    VEC(uint32_t) comp_text;
    VEC(uint32_t) rule_text;
    VEC(pcx_t) pcxs;
    VEC(cidr_t) long_cidrs;       /* rules' IPv6 prefixes longer than /64 (rule_cidr_t) */
    int32_t no_sgref_az;          /* AZ code where TGW security-group referencing is unsupported, 0 = none */
    int finished;
} model;

/* Whether a rule's prefix holds ip (of its family). */
static inline int model_rule_contains(const model *m, const rule_cidr_t *c, addr_t ip)
{
    if (c->kind == RC_V4)
        return ((addr_low32(ip) ^ c->w0) & c->w1) == 0 && addr_is_v4(ip);
    if (addr_is_v4(ip))
        return 0;
    if (c->kind == RC_V6_LONG)
        return cidr_contains(&m->long_cidrs.v[c->w0], ip);
    uint64_t mask = c->len == 0 ? 0 : ~(uint64_t)0 << (64 - c->len);
    return (((uint64_t)(ip >> 64) ^ ((uint64_t)c->w1 << 32 | c->w0)) & mask) == 0;
}
/* ENI `eni`'s IPv4 (v4) or IPv6 address, 0 when it has none. */
static inline addr_t model_eni_ip(const model *m, int32_t eni, int v4)
{
    if (v4)
        return m->enis.v[eni].ip4 ? addr_v4(m->enis.v[eni].ip4) : 0;
    return (size_t)eni < m->eni_ip6.n ? m->eni_ip6.v[eni] : 0;
}
/* A rule's prefix as a cidr_t. */
cidr_t model_rule_cidr(const model *m, const rule_cidr_t *c);

void model_init(model *m);
void model_free(model *m);
/* Each returns the new entity's index, or -1 on a bad index or when memory runs out. */
int32_t model_add_vpc(model *m, int32_t comp, int dns_support);
int32_t model_add_subnet(model *m, int32_t comp, int32_t vpc, cidr_t cidr, int32_t az, int32_t rtb, int32_t nacl);
/* Another CIDR of a subnet (the IPv6 one of a dual-stack subnet). */
int32_t model_add_subnet_cidr(model *m, int32_t subnet, cidr_t cidr);
int32_t model_add_rtb(model *m, int32_t comp);
int32_t model_set_main_rtb(model *m, int32_t vpc, int32_t rtb);
int32_t model_add_route(model *m, int32_t rtb, cidr_t dst, int kind, int32_t target, int rank, int blackhole,
                        int32_t rule);
int32_t model_add_acl(model *m, int32_t comp);
int32_t model_add_acl_rule(model *m, int32_t acl, int egress, int32_t number, int proto, int lo, int hi,
                           cidr_t cidr, int allow, int32_t rule);
int32_t model_add_sg(model *m, int32_t comp);
int32_t model_add_sg_rule(model *m, int32_t sg, int egress, int proto, int lo, int hi, const cidr_t *cidr,
                          int32_t ref_sg, int32_t rule);
int32_t model_add_eni(model *m, int32_t comp, int32_t subnet, addr_t ip, const int32_t *sgs, size_t nsgs);
/* Another address of an ENI (a secondary IPv4, an IPv6); the first IPv6 becomes its `ip6`. */
int32_t model_add_eni_ip(model *m, int32_t eni, addr_t ip);
int32_t model_add_tgw(model *m, int32_t comp, int available, int sgref);
int32_t model_add_att(model *m, int32_t comp, int32_t tgw, int32_t vpc, int available, int sgref, int32_t assoc);
int32_t model_add_att_subnet(model *m, int32_t att, int32_t subnet);
int32_t model_add_trtb(model *m, int32_t comp, int known, int available);
int32_t model_add_troute(model *m, int32_t trtb, cidr_t dst, int32_t att, int rank, int blackhole, int32_t rule);
int32_t model_add_pcx(model *m, int32_t comp, int32_t vpc_a, int32_t vpc_b, int active);
/* Names: `strs` holds `n` strings (lengths in `lens`); returns the index of the component
 * (n = 4) or rule (n = 1), or -1. A string must not contain NUL. */
int32_t model_add_comp(model *m, const char *const strs[4], const size_t lens[4]);
int32_t model_add_rule(model *m, const char *text, size_t len);
/* The i-th string of component `comp` (0..3), or NULL when out of range. */
const char *model_comp_str(const model *m, int32_t comp, int i);
const char *model_rule_str(const model *m, int32_t rule);
/* Sorts and indexes; returns 0, or -1 when memory runs out. Builders fail after it. */
int model_finish(model *m);

/* Lookups on a finished model. */
int32_t model_subnet_of(const model *m, int32_t vpc, addr_t ip);   /* -1 if none */
int32_t model_eni_at(const model *m, int32_t vpc, addr_t ip);      /* -1 if none */
/* The route a table (of `routes`, grouped by model_finish) uses for ip, or NULL. */
const route_t *model_lpm(const model *m, const route_t *routes, const table_t *t, addr_t ip);
int32_t model_subnet_anywhere(const model *m, addr_t ip);          /* first VPC holding it */

#endif
