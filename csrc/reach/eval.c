/* Hop-by-hop evaluation of one packet: routes, TGW tables, NACLs and security groups, as in
 * shared/docs/aws-network-semantics.md. The walk records every component it passes. */
#include "reach/eval.h"

#include "reach/blocked.h"

#include <string.h>

static const char *const code_names[EV_CODE_COUNT] = {
    "OK", "NO_ROUTE_TO_DESTINATION", "BAD_STATE_ROUTE", "BAD_STATE", "BAD_STATE_ATTACHMENT",
    "TGW_ROUTE_AZ_RESTRICTION", "TGW_ATTACH_MISSING_TGW_RTB_ASSOCIATION", "TGW_RTB_ROUTES_ARE_UNKNOWN",
    "TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT", "TGW_RTB_BAD_STATE_ROUTE", "ENI_SG_RULES_MISMATCH",
    "SG_REFERENCING_SUPPORT", "SUBNET_ACL_RESTRICTION", "UNKNOWN_DESTINATION", "UNSUPPORTED_COMPONENT",
    "NO_PATH", "NO_DESTINATION_ENI",
};

const char *eval_code_name(int code)
{
    return code >= 0 && code < EV_CODE_COUNT ? code_names[code] : "UNKNOWN";
}

/* Per-walk state: the result being filled and the leg's direction; for a blocked path also
 * where the leg is going (its VPC found on first need) and the route it assumed. */
typedef struct {
    const model *m;
    eval_result *r;
    int dir;
    int collect;
    int32_t goal_eni, goal_vpc;
    route_t assumed;
} walk;

#define GOAL_UNKNOWN (-2)

/* Records a hop; the first blocking verdict also sets the result's code. Returns 1 when the
 * walk may go on, 0 when this hop stopped it. */
static int hop(walk *w, int kind, int32_t comp, int32_t rule, int verdict, int code)
{
    eval_result *r = w->r;
    if (r->n < EVAL_MAX_HOPS) {
        r->hops[r->n] = (hop_t){ .kind = (uint8_t)kind, .verdict = (uint8_t)verdict, .dir = (uint8_t)w->dir,
                                 .code = (uint16_t)code, .comp = comp, .rule = rule };
        r->n++;
    }
    if (verdict == V_DENY || verdict == V_DROP) {
        if (r->ok) {
            r->code = code;
            r->blocked = r->n - 1;
        }
        r->ok = 0;
        return w->collect && verdict == V_DENY; /* a blocked path passes a denying filter */
    }
    return 1;
}

static int proto_matches(int rule_proto, int proto)
{
    return rule_proto == PROTO_ALL || rule_proto == proto;
}

/* TCP and UDP rules have port ranges; ICMP (1) and ICMPv6 (58) rules have types and codes, kept
 * in the same 16 bits as type << 8 | code (see eval_query). */
static int has_ports(int proto)
{
    return proto == 6 || proto == 17 || proto == 1 || proto == 58;
}

/* The entries of a NACL or SG that apply in one direction: [*first, *end). */
static void direction_range(const table_t *t, int egress, int32_t *first, int32_t *end)
{
    *first = egress ? t->egress : t->off;
    *end = egress ? t->off + t->cnt : t->egress;
}

static const acl_rule_t *acl_first(const model *m, const table_t *t, int egress, addr_t ip, int proto,
                                   uint16_t port)
{
    int32_t first, end;
    direction_range(t, egress, &first, &end);
    for (int32_t i = first; i < end; i++) {
        const acl_rule_t *a = &m->acl_rules.v[i];
        if (!proto_matches(a->proto, proto) || !model_rule_contains(m, &a->cidr, ip))
            continue;
        if (has_ports(proto) && a->proto != PROTO_ALL && (port < a->lo || port > a->hi))
            continue;
        return a;
    }
    return NULL;
}

/* First-match evaluation for every port in [lo, hi], point by point: rules are evaluated at each
 * point where some rule's port range starts or ends, which covers every distinct outcome (see
 * acl_allows; this is its way for tables too long for acl_spans). */
static int acl_allows_points(const model *m, const table_t *t, int egress, addr_t ip, int proto, uint16_t lo,
                             uint16_t hi, const acl_rule_t **deciding)
{
    uint32_t p = lo;
    const acl_rule_t *first = NULL;
    for (;;) {
        const acl_rule_t *a = acl_first(m, t, egress, ip, proto, (uint16_t)p);
        if (!a || !a->allow) {
            *deciding = a;
            return 0;
        }
        if (!first)
            first = a;
        if (!has_ports(proto))
            break;
        uint32_t next = (uint32_t)hi + 1;
        int32_t first_rule, end;
        direction_range(t, egress, &first_rule, &end);
        for (int32_t i = first_rule; i < end; i++) {
            const acl_rule_t *b = &m->acl_rules.v[i];
            if (b->lo > p && b->lo < next) next = b->lo;
            if ((uint32_t)b->hi + 1 > p && (uint32_t)b->hi + 1 < next) next = (uint32_t)b->hi + 1;
        }
        if (next > hi)
            break;
        p = next;
    }
    *deciding = first;
    return 1;
}

/* The same in one pass over the rules: the ports no rule has decided yet, as sorted disjoint spans;
 * each matching rule decides the undecided ports in its range (first match) and they leave the
 * spans. The lowest port a rule denies, or that no rule decides (the implicit deny), is the one the
 * point-by-point walk would stop at. A rule splits at most one span in two, so a direction of fewer
 * than ACL_SPANS rules never needs more spans. Returns -1 for a longer one. */
enum { ACL_SPANS = 64 };
typedef struct { uint32_t lo, hi; } port_span;

static int acl_spans(const model *m, const table_t *t, int egress, addr_t ip, int proto, uint16_t lo, uint16_t hi,
                     const acl_rule_t **deciding)
{
    int32_t first, end;
    direction_range(t, egress, &first, &end);
    if (end - first >= ACL_SPANS)
        return -1;
    port_span a[ACL_SPANS], b[ACL_SPANS], *spans = a, *next = b;
    int n = 1;
    spans[0] = (port_span){ lo, hi };
    const acl_rule_t *at_lo = NULL, *deny = NULL;
    uint32_t deny_port = UINT32_MAX; /* the lowest port denied so far */
    for (int32_t i = first; i < end && n > 0 && spans[0].lo < deny_port; i++) {
        const acl_rule_t *r = &m->acl_rules.v[i];
        if (!proto_matches(r->proto, proto) || !model_rule_contains(m, &r->cidr, ip))
            continue;
        uint32_t rlo = r->proto == PROTO_ALL ? 0 : r->lo, rhi = r->proto == PROTO_ALL ? 65535 : r->hi;
        if (rhi < spans[0].lo || rlo > spans[n - 1].hi)
            continue; /* decides no port still undecided */
        uint32_t decided = UINT32_MAX; /* the lowest port this rule decides */
        int kept = 0;
        for (int k = 0; k < n; k++) {
            port_span sp = spans[k];
            if (sp.hi < rlo || sp.lo > rhi) {
                next[kept++] = sp;
                continue;
            }
            if (decided == UINT32_MAX)
                decided = sp.lo > rlo ? sp.lo : rlo;
            if (sp.lo < rlo)
                next[kept++] = (port_span){ sp.lo, rlo - 1 };
            if (sp.hi > rhi)
                next[kept++] = (port_span){ rhi + 1, sp.hi };
        }
        if (decided == UINT32_MAX)
            continue;
        port_span *swap = spans;
        spans = next;
        next = swap;
        n = kept;
        if (decided == lo)
            at_lo = r;
        if (!r->allow && decided < deny_port) {
            deny_port = decided;
            deny = r;
        }
    }
    if (n > 0 && spans[0].lo < deny_port) { /* undecided ports below any denied one: the implicit deny */
        deny_port = spans[0].lo;
        deny = NULL;
    }
    if (deny_port != UINT32_MAX) {
        *deciding = deny;
        return 0;
    }
    *deciding = at_lo;
    return 1;
}

/* First-match evaluation for every port in [lo, hi] (a reply's client ports): *deciding is the
 * rule that denies the lowest denied port (NULL for the implicit deny), or the rule that allowed
 * `lo`. One port, or a protocol without ports, is one first-match scan. */
static int acl_allows(const model *m, const table_t *t, int egress, addr_t ip, int proto, uint16_t lo,
                      uint16_t hi, const acl_rule_t **deciding)
{
    if (lo == hi || !has_ports(proto)) {
        const acl_rule_t *a = acl_first(m, t, egress, ip, proto, lo);
        *deciding = a;
        return a && a->allow;
    }
    int ok = acl_spans(m, t, egress, ip, proto, lo, hi, deciding);
    return ok >= 0 ? ok : acl_allows_points(m, t, egress, ip, proto, lo, hi, deciding);
}

static int check_acl(walk *w, int32_t subnet, int egress, addr_t ip, int proto, uint16_t lo, uint16_t hi)
{
    const model *m = w->m;
    int32_t acl = m->subnets.v[subnet].nacl;
    if (acl < 0) {
        w->r->flags |= F_NACL_UNKNOWN;
        return 1;
    }
    const acl_rule_t *rule;
    int ok = acl_allows(m, &m->acls.v[acl], egress, ip, proto, lo, hi, &rule);
    return hop(w, H_NACL, m->acls.v[acl].comp, rule ? rule->rule : -1, ok ? V_ALLOW : V_DENY,
               ok ? EV_OK : EV_SUBNET_ACL_RESTRICTION);
}

static int eni_in_sg(const model *m, int32_t eni, int32_t sg)
{
    const eni_t *e = &m->enis.v[eni];
    for (int32_t i = 0; i < e->sg_cnt; i++) {
        if (m->eni_sgs.v[e->sg_off + i] == sg)
            return 1;
    }
    return 0;
}

/* The first rule of the ENI's groups admitting the packet; *ref_lost is set when a rule
 * naming the peer's group would have admitted it but group identity did not survive. */
static const sg_rule_t *sg_admits(const model *m, int32_t eni, int egress, addr_t peer_ip, int32_t peer_eni,
                                  int proto, uint16_t port, int refs_ok, int *ref_lost)
{
    const eni_t *e = &m->enis.v[eni];
    for (int32_t g = 0; g < e->sg_cnt; g++) {
        const table_t *t = &m->sgs.v[m->eni_sgs.v[e->sg_off + g]];
        int32_t first, end;
        direction_range(t, egress, &first, &end);
        for (int32_t i = first; i < end; i++) {
            const sg_rule_t *s = &m->sg_rules.v[i];
            if (!proto_matches(s->proto, proto))
                continue;
            if (has_ports(proto) && s->proto != PROTO_ALL && (port < s->lo || port > s->hi))
                continue;
            if (s->ref_sg >= 0) {
                if (peer_eni >= 0 && eni_in_sg(m, peer_eni, s->ref_sg)) {
                    if (refs_ok)
                        return s;
                    *ref_lost = 1;
                }
            } else if (model_rule_contains(m, &s->cidr, peer_ip)) {
                return s;
            }
        }
    }
    return NULL;
}

static int check_sg(walk *w, int32_t eni, int egress, addr_t peer_ip, int32_t peer_eni, int proto,
                    uint16_t port, int refs_ok)
{
    const model *m = w->m;
    int ref_lost = 0;
    const sg_rule_t *s = sg_admits(m, eni, egress, peer_ip, peer_eni, proto, port, refs_ok, &ref_lost);
    if (s)
        return hop(w, H_SG, m->sgs.v[s->table].comp, s->rule, V_ALLOW, EV_OK);
    const eni_t *e = &m->enis.v[eni];
    int32_t comp = e->sg_cnt > 0 ? m->sgs.v[m->eni_sgs.v[e->sg_off]].comp : e->comp;
    return hop(w, H_SG, comp, -1, V_DENY, ref_lost ? EV_SG_REFERENCING_SUPPORT : EV_ENI_SG_RULES_MISMATCH);
}

/* What a leg learnt on its way, for the security-group checks. */
typedef struct {
    int32_t dst_subnet;
    int32_t in_att, out_att;  /* TGW attachments crossed, -1 if none */
    int32_t in_sub, out_sub;  /* and the subnets (AZs) the TGW used there */
    int via_pcx;
} leg_info;

static int32_t att_of_vpc(const model *m, int32_t vpc, int32_t tgw)
{
    for (int32_t a = m->vpcs.v[vpc].first_att; a >= 0; a = m->atts.v[a].next_in_vpc) {
        if (m->atts.v[a].tgw == tgw)
            return a;
    }
    return -1;
}

/* The attachment's subnet in AZ `az`, or -1. */
static int32_t att_subnet_in(const model *m, const att_t *a, int32_t az)
{
    for (int32_t i = 0; i < a->sub_cnt; i++) {
        int32_t s = m->att_subnets.v[a->sub_off + i];
        if (m->subnets.v[s].az == az)
            return s;
    }
    return -1;
}

/* ---- blocked paths: past a missing route ------------------------------------------------ */

static void collecting(walk *w, const eval_query *q, int32_t goal_vpc)
{
    w->collect = q->collect_blockers;
    w->goal_eni = q->dst_eni;
    w->goal_vpc = goal_vpc;
}

static int32_t goal_of(walk *w, addr_t dst_ip)
{
    if (w->goal_vpc == GOAL_UNKNOWN)
        w->goal_vpc = blocked_goal_vpc(w->m, w->goal_eni, dst_ip);
    return w->goal_vpc;
}

/* The route a blocked path takes from a VPC route table: `rt` when it leads on; else the
 * blocker is recorded and the walk goes on through the one joining connection (NULL: none or
 * several, the walk stops). */
static const route_t *past_bad_route(walk *w, int32_t rcomp, const route_t *rt, int32_t vpc, addr_t dst_ip)
{
    if (rt && !rt->blackhole && rt->kind != RT_OTHER)
        return rt;
    hop(w, H_RTB, rcomp, rt ? rt->rule : -1, V_DROP,
        !rt ? EV_NO_ROUTE_TO_DESTINATION : rt->blackhole ? EV_BAD_STATE_ROUTE : EV_UNSUPPORTED_COMPONENT);
    int n = blocked_joining(w->m, vpc, goal_of(w, dst_ip), &w->assumed);
    if (n != 1) {
        w->r->flags |= n == 0 ? F_STOP_NO_CONNECTION : F_STOP_SEVERAL_CONNECTIONS;
        return NULL;
    }
    w->r->flags |= F_ASSUMED_CONNECTION;
    if (w->assumed.kind == RT_TGW) /* the connection taken; a peering connection is a hop anyway */
        hop(w, H_TGW, w->m->tgws.v[w->assumed.target].comp, -1, V_FORWARD, EV_OK);
    return &w->assumed;
}

/* The same in a TGW route table: on to the destination VPC's attachment of this TGW. */
static const route_t *past_bad_tgw_route(walk *w, int32_t tcomp, const route_t *tr, int32_t tgw, addr_t dst_ip)
{
    if (tr && !tr->blackhole)
        return tr;
    hop(w, H_TGW_RTB, tcomp, tr ? tr->rule : -1, V_DROP,
        tr ? EV_TGW_RTB_BAD_STATE_ROUTE : EV_TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT);
    int32_t att = blocked_tgw_attachment(w->m, tgw, goal_of(w, dst_ip));
    if (att < 0) {
        w->r->flags |= F_STOP_NO_CONNECTION;
        return NULL;
    }
    w->r->flags |= F_ASSUMED_CONNECTION;
    w->assumed = (route_t){ .kind = RT_TGW, .target = att, .rule = -1, .table = -1 };
    return &w->assumed;
}

/* A forward leg walked apart from the result: its first blocker becomes the result's when the
 * result has none yet. */
static void merge_leg(eval_result *r, const eval_result *leg, int at)
{
    if (leg->ok || !r->ok)
        return;
    r->ok = 0;
    r->code = leg->code;
    r->blocked = at + leg->blocked < r->n ? at + leg->blocked : r->n - 1;
}

/* Through a TGW from subnet `cur`: returns the egress attachment's subnet, or -1 if blocked. */
static int32_t cross_tgw(walk *w, int32_t cur, const route_t *rt, addr_t src_ip, addr_t dst_ip, int proto,
                         uint16_t lo, uint16_t hi, leg_info *li)
{
    const model *m = w->m;
    const subnet_t *s = &m->subnets.v[cur];
    const tgw_t *tgw = &m->tgws.v[rt->target];
    int32_t ai = att_of_vpc(m, s->vpc, rt->target);
    if (!tgw->available)
        return hop(w, H_TGW, tgw->comp, -1, V_DROP, EV_BAD_STATE), -1;
    if (ai < 0)
        return hop(w, H_TGW, tgw->comp, -1, V_DROP, EV_BAD_STATE_ATTACHMENT), -1;
    const att_t *in = &m->atts.v[ai];
    if (!in->available)
        return hop(w, H_TGW_ATT, in->comp, -1, V_DROP, EV_BAD_STATE_ATTACHMENT), -1;
    int32_t in_sub = att_subnet_in(m, in, s->az);
    if (in_sub < 0)
        return hop(w, H_TGW_ATT, in->comp, -1, V_DROP, EV_TGW_ROUTE_AZ_RESTRICTION), -1;
    /* Workload -> TGW: the workload subnet's outbound rules and the TGW subnet's inbound rules,
     * both also when they are the same subnet (tgw-nacls.html). */
    if (!check_acl(w, cur, 1, dst_ip, proto, lo, hi) || !check_acl(w, in_sub, 0, src_ip, proto, lo, hi))
        return -1;
    if (!hop(w, H_TGW_ATT, in->comp, -1, V_FORWARD, EV_OK))
        return -1;
    if (in->assoc < 0)
        return hop(w, H_TGW, tgw->comp, -1, V_DROP, EV_TGW_ATTACH_MISSING_TGW_RTB_ASSOCIATION), -1;
    const trtb_t *tt = &m->trtbs.v[in->assoc];
    if (!tt->known)
        return hop(w, H_TGW_RTB, tt->comp, -1, V_DROP, EV_TGW_RTB_ROUTES_ARE_UNKNOWN), -1;
    if (!tt->available)
        return hop(w, H_TGW_RTB, tt->comp, -1, V_DROP, EV_BAD_STATE), -1;
    const route_t *tr = model_lpm(m, m->troutes.v, &m->trtbs_tab.v[in->assoc], dst_ip);
    if (w->collect && !(tr = past_bad_tgw_route(w, tt->comp, tr, rt->target, dst_ip)))
        return -1;
    if (!tr)
        return hop(w, H_TGW_RTB, tt->comp, -1, V_DROP, EV_TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT), -1;
    if (tr->blackhole)
        return hop(w, H_TGW_RTB, tt->comp, tr->rule, V_DROP, EV_TGW_RTB_BAD_STATE_ROUTE), -1;
    if (!hop(w, H_TGW_RTB, tt->comp, tr->rule, V_FORWARD, EV_OK))
        return -1;
    const att_t *out = &m->atts.v[tr->target];
    if (!out->available)
        return hop(w, H_TGW_ATT, out->comp, -1, V_DROP, EV_BAD_STATE_ATTACHMENT), -1;
    if (out->vpc < 0) /* VPN, Direct Connect, peering: beyond the model */
        return hop(w, H_TGW_ATT, out->comp, -1, V_DROP, EV_UNSUPPORTED_COMPONENT), -1;
    if (out->sub_cnt == 0)
        return hop(w, H_TGW_ATT, out->comp, -1, V_DROP, EV_BAD_STATE_ATTACHMENT), -1;
    /* The TGW stays in the AZ it was entered in when the egress attachment is there too. */
    int32_t out_sub = att_subnet_in(m, out, s->az);
    if (out_sub < 0) {
        out_sub = m->att_subnets.v[out->sub_off];
        w->r->flags |= F_AZ_CROSSED;
    }
    li->in_att = ai;
    li->out_att = tr->target;
    li->in_sub = in_sub;
    li->out_sub = out_sub;
    if (!hop(w, H_TGW_ATT, out->comp, -1, V_FORWARD, EV_OK))
        return -1;
    return out_sub;
}

/* Routes a packet from an ENI in `subnet` to dst_ip; fills li->dst_subnet. Returns 1 if it
 * arrives in the destination's subnet, 0 if a hop stopped it. */
static int walk_leg(walk *w, int32_t subnet, addr_t src_ip, addr_t dst_ip, int proto, uint16_t lo,
                    uint16_t hi, leg_info *li)
{
    const model *m = w->m;
    int32_t cur = subnet;
    li->in_att = li->out_att = -1;
    li->via_pcx = 0;
    for (int step = 0; step < 8; step++) {
        const subnet_t *s = &m->subnets.v[cur];
        int32_t rtb = s->rtb >= 0 ? s->rtb : m->vpcs.v[s->vpc].main_rtb;
        if (rtb < 0)
            return hop(w, H_SUBNET, s->comp, -1, V_DROP, EV_NO_ROUTE_TO_DESTINATION);
        const route_t *rt = model_lpm(m, m->routes.v, &m->rtbs.v[rtb], dst_ip);
        int32_t rcomp = m->rtbs.v[rtb].comp;
        if (w->collect && !(rt = past_bad_route(w, rcomp, rt, s->vpc, dst_ip)))
            return 0;
        if (!rt)
            return hop(w, H_RTB, rcomp, -1, V_DROP, EV_NO_ROUTE_TO_DESTINATION);
        if (rt->blackhole)
            return hop(w, H_RTB, rcomp, rt->rule, V_DROP, EV_BAD_STATE_ROUTE);
        if (rt->kind == RT_OTHER)
            return hop(w, H_RTB, rcomp, rt->rule, V_DROP, EV_UNSUPPORTED_COMPONENT);
        if (!hop(w, H_RTB, rcomp, rt->rule, V_FORWARD, EV_OK))
            return 0;
        if (rt->kind == RT_LOCAL || rt->kind == RT_PCX) {
            int32_t vpc = s->vpc;
            if (rt->kind == RT_PCX) {
                const pcx_t *p = &m->pcxs.v[rt->target];
                if (!p->active || (p->vpc_a != vpc && p->vpc_b != vpc))
                    return hop(w, H_PCX, p->comp, -1, V_DROP, EV_BAD_STATE);
                vpc = p->vpc_a == vpc ? p->vpc_b : p->vpc_a;
                li->via_pcx = 1;
                if (!hop(w, H_PCX, p->comp, -1, V_FORWARD, EV_OK))
                    return 0;
            }
            int32_t d = model_subnet_of(m, vpc, dst_ip);
            if (d < 0)
                return hop(w, H_VPC, m->vpcs.v[vpc].comp, -1, V_DROP, EV_UNKNOWN_DESTINATION);
            /* NACLs apply where traffic leaves and enters a subnet, not within one; TGW -> same
             * subnet is not evaluated either (tgw-nacls.html). */
            if (d != cur && (!check_acl(w, cur, 1, dst_ip, proto, lo, hi) ||
                             !check_acl(w, d, 0, src_ip, proto, lo, hi)))
                return 0;
            li->dst_subnet = d;
            return 1;
        }
        cur = cross_tgw(w, cur, rt, src_ip, dst_ip, proto, lo, hi, li);
        if (cur < 0)
            return 0;
    }
    return hop(w, H_SUBNET, m->subnets.v[cur].comp, -1, V_DROP, EV_NO_PATH);
}

/* Outbound rules never match a group across a TGW (tgw-vpc-attachments.html).
 * Security-group references hold within a VPC and across peering; across a TGW only with
 * referencing enabled on the TGW and on both attachments, outside the one unsupported AZ. */
static int refs_survive(const model *m, const leg_info *li)
{
    if (li->in_att < 0)
        return 1;
    const att_t *in = &m->atts.v[li->in_att], *out = &m->atts.v[li->out_att];
    int32_t bad_az = m->no_sgref_az;
    if (bad_az && (m->subnets.v[li->in_sub].az == bad_az || m->subnets.v[li->out_sub].az == bad_az))
        return 0; /* not supported for attachments in use1-az3 */
    return m->tgws.v[in->tgw].sgref && in->sgref && out->sgref;
}

void eval_trace(const model *m, const eval_query *q, eval_result *r)
{
    r->n = r->nforward = 0;
    r->ok = 1;
    r->code = EV_OK;
    r->blocked = -1;
    r->flags = q->src_eni < 0 ? F_SRC_NO_ENI : 0;
    r->dst_eni = q->dst_eni;
    walk w = { .m = m, .r = r, .dir = DIR_FORWARD };
    collecting(&w, q, GOAL_UNKNOWN);
    int32_t src_comp = q->src_eni >= 0 ? m->enis.v[q->src_eni].comp : m->subnets.v[q->src_subnet].comp;

    hop(&w, q->src_eni >= 0 ? H_ENI : H_SUBNET, src_comp, -1, V_FORWARD, EV_OK);
    /* The leg is walked before the source's egress rules are known to pass, since rules naming a
     * group need the destination ENI; the hops are then put in path order. */
    eval_result leg;
    leg.n = 0;
    leg.ok = 1;
    leg.code = EV_OK;
    leg.blocked = -1;
    leg.flags = 0;
    walk lw = { .m = m, .r = &leg, .dir = DIR_FORWARD };
    collecting(&lw, q, GOAL_UNKNOWN);
    leg_info li = { .dst_subnet = -1 };
    int arrived = walk_leg(&lw, q->src_subnet, q->src_ip, q->dst_ip, q->proto, q->port, q->port, &li);
    r->flags |= leg.flags;
    int32_t dst_eni = q->dst_eni;
    if (arrived && dst_eni < 0)
        dst_eni = model_eni_at(m, m->subnets.v[li.dst_subnet].vpc, q->dst_ip);
    r->dst_eni = dst_eni;
    int refs_ok = refs_survive(m, &li);
    if (q->src_eni >= 0 && !q->skip_src_sg &&
        !check_sg(&w, q->src_eni, 1, q->dst_ip, dst_eni, q->proto, q->port, li.in_att < 0)) {
        r->nforward = r->n;
        return;
    }
    int leg_at = r->n;
    for (int i = 0; i < leg.n && r->n < EVAL_MAX_HOPS; i++)
        r->hops[r->n++] = leg.hops[i];
    merge_leg(r, &leg, leg_at);
    if (!arrived) {
        r->nforward = r->n;
        return;
    }
    if (dst_eni >= 0) {
        if (!check_sg(&w, dst_eni, 0, q->src_ip, q->src_eni, q->proto, q->port, refs_ok)) {
            r->nforward = r->n;
            return;
        }
        hop(&w, H_ENI, m->enis.v[dst_eni].comp, -1, V_DELIVER, EV_OK);
    } else {
        /* The packet reaches the subnet and no one answers: nothing comes back. */
        r->flags |= F_DST_NOT_ENI;
        hop(&w, H_SUBNET, m->subnets.v[li.dst_subnet].comp, -1, V_DROP, EV_NO_DESTINATION_ENI);
        r->nforward = r->n;
        return;
    }
    r->nforward = r->n;
    if (q->forward_only)
        return;

    /* The reply: stateful security groups let it out and in; routes and NACLs are evaluated
     * again, with the client's ephemeral ports as destination ports. */
    w.dir = DIR_RETURN;
    collecting(&w, q, m->subnets.v[q->src_subnet].vpc);
    leg_info back = { .dst_subnet = -1 };
    if (!walk_leg(&w, li.dst_subnet, q->dst_ip, q->src_ip, q->proto, q->eph_lo, q->eph_hi, &back))
        return;
    if (back.dst_subnet != q->src_subnet) {
        hop(&w, H_SUBNET, m->subnets.v[back.dst_subnet].comp, -1, V_DROP, EV_NO_PATH);
        return;
    }
    hop(&w, q->src_eni >= 0 ? H_ENI : H_SUBNET, src_comp, -1, V_DELIVER, EV_OK);
}
