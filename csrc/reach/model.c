/* Building the compiled model: append, then sort once into evaluation order. */
#include "reach/model.h"

#include <stdlib.h>
#include <string.h>

/* Grows a vector to hold one more element; returns a pointer to it, or NULL. */
static void *vec_grow(void **v, size_t *n, size_t *cap, size_t elem)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        void *nv = realloc(*v, ncap * elem);
        if (nv == NULL)
            return NULL;
        *v = nv;
        *cap = ncap;
    }
    return (char *)*v + (*n)++ * elem;
}

#define PUSH(vec) vec_grow((void **)&(vec).v, &(vec).n, &(vec).cap, sizeof *(vec).v)
#define VALID(vec, i) ((i) >= 0 && (size_t)(i) < (vec).n)
#define OPTIONAL(vec, i) ((i) == -1 || VALID(vec, i))

void model_init(model *m)
{
    memset(m, 0, sizeof *m);
}

void model_free(model *m)
{
    free(m->vpcs.v); free(m->subnets.v); free(m->subnet_cidrs.v); free(m->rtbs.v);
    free(m->routes.v); free(m->acls.v); free(m->acl_rules.v); free(m->sgs.v);
    free(m->sg_rules.v); free(m->enis.v); free(m->eni_ip6.v); free(m->eni_sgs.v); free(m->addrs.v);
    free(m->tgws.v); free(m->atts.v); free(m->att_subnets.v); free(m->trtbs_tab.v);
    free(m->trtbs.v); free(m->troutes.v); free(m->pcxs.v); free(m->groups.v); free(m->lpm_slots.v);
    free(m->text.v); free(m->comp_text.v); free(m->rule_text.v); free(m->long_cidrs.v);
    memset(m, 0, sizeof *m);
}

int32_t model_add_vpc(model *m, int32_t comp, int dns_support)
{
    vpc_t *v;
    if (m->finished || !(v = PUSH(m->vpcs)))
        return -1;
    *v = (vpc_t){ .comp = comp, .main_rtb = -1, .first_att = -1, .dns_support = (uint8_t)!!dns_support };
    return (int32_t)(m->vpcs.n - 1);
}

int32_t model_add_subnet_cidr(model *m, int32_t subnet, cidr_t cidr)
{
    subnet_cidr_t *c;
    if (m->finished || !VALID(m->subnets, subnet) || !(c = PUSH(m->subnet_cidrs)))
        return -1;
    *c = (subnet_cidr_t){ .cidr = cidr, .vpc = m->subnets.v[subnet].vpc, .subnet = subnet };
    return subnet;
}

int32_t model_add_subnet(model *m, int32_t comp, int32_t vpc, cidr_t cidr, int32_t az, int32_t rtb, int32_t nacl)
{
    subnet_t *s;
    if (m->finished || !VALID(m->vpcs, vpc) || !OPTIONAL(m->rtbs, rtb) || !OPTIONAL(m->acls, nacl))
        return -1;
    if (!(s = PUSH(m->subnets)))
        return -1;
    *s = (subnet_t){ .comp = comp, .vpc = vpc, .cidr = cidr, .az = az, .rtb = rtb, .nacl = nacl };
    int32_t idx = (int32_t)(m->subnets.n - 1);
    return model_add_subnet_cidr(m, idx, cidr) < 0 ? -1 : idx;
}

static int32_t add_table(model *m, void *vec_any, int32_t comp)
{
    VEC(table_t) *vec = vec_any;
    table_t *t;
    if (m->finished || !(t = PUSH(*vec)))
        return -1;
    *t = (table_t){ .comp = comp };
    return (int32_t)(vec->n - 1);
}

int32_t model_add_rtb(model *m, int32_t comp) { return add_table(m, &m->rtbs, comp); }
int32_t model_add_acl(model *m, int32_t comp) { return add_table(m, &m->acls, comp); }
int32_t model_add_sg(model *m, int32_t comp) { return add_table(m, &m->sgs, comp); }

int32_t model_set_main_rtb(model *m, int32_t vpc, int32_t rtb)
{
    if (m->finished || !VALID(m->vpcs, vpc) || !VALID(m->rtbs, rtb))
        return -1;
    m->vpcs.v[vpc].main_rtb = rtb;
    return vpc;
}

int32_t model_add_route(model *m, int32_t rtb, cidr_t dst, int kind, int32_t target, int rank, int blackhole,
                        int32_t rule)
{
    route_t *r;
    if (m->finished || !VALID(m->rtbs, rtb) || kind < RT_LOCAL || kind > RT_OTHER)
        return -1;
    if ((kind == RT_TGW && !VALID(m->tgws, target)) || (kind == RT_PCX && !VALID(m->pcxs, target)))
        return -1;
    if (!(r = PUSH(m->routes)))
        return -1;
    *r = (route_t){ .table = rtb, .dst = dst, .kind = (uint8_t)kind, .rank = (uint8_t)rank,
                    .blackhole = (uint8_t)!!blackhole, .target = target, .rule = rule };
    return (int32_t)(m->routes.n - 1);
}

/* A rule's prefix in its compact form (rule_cidr_t); -1 when memory runs out. */
static int rule_cidr_of(model *m, cidr_t c, rule_cidr_t *out)
{
    if (c.v4) {
        *out = (rule_cidr_t){ .w0 = addr_low32(c.net), .w1 = addr_low32(addr_mask(c.len)), .len = (uint8_t)(c.len - 96),
                              .kind = RC_V4 };
    } else if (c.len <= 64) {
        uint64_t hi = (uint64_t)(c.net >> 64);
        *out = (rule_cidr_t){ .w0 = (uint32_t)hi, .w1 = (uint32_t)(hi >> 32), .len = c.len, .kind = RC_V6 };
    } else {
        cidr_t *slot = PUSH(m->long_cidrs);
        if (!slot || m->long_cidrs.n > UINT32_MAX)
            return -1;
        *slot = c;
        *out = (rule_cidr_t){ .w0 = (uint32_t)(m->long_cidrs.n - 1), .len = c.len, .kind = RC_V6_LONG };
    }
    return 0;
}

cidr_t model_rule_cidr(const model *m, const rule_cidr_t *c)
{
    if (c->kind == RC_V6_LONG)
        return m->long_cidrs.v[c->w0];
    if (c->kind == RC_V4)
        return (cidr_t){ .net = addr_v4(c->w0), .len = (uint8_t)(96 + c->len), .v4 = 1 };
    return (cidr_t){ .net = (addr_t)((uint64_t)c->w1 << 32 | c->w0) << 64, .len = c->len, .v4 = 0 };
}

static int valid_ports(int proto, int lo, int hi)
{
    return proto >= PROTO_ALL && proto <= 255 && lo >= 0 && hi <= 65535 && lo <= hi;
}

int32_t model_add_acl_rule(model *m, int32_t acl, int egress, int32_t number, int proto, int lo, int hi,
                           cidr_t cidr, int allow, int32_t rule)
{
    acl_rule_t *r;
    rule_cidr_t rc;
    if (m->finished || !VALID(m->acls, acl) || !valid_ports(proto, lo, hi) || rule_cidr_of(m, cidr, &rc) != 0)
        return -1;
    if (!(r = PUSH(m->acl_rules)))
        return -1;
    *r = (acl_rule_t){ .table = acl, .number = number, .proto = (int16_t)proto, .lo = (uint16_t)lo,
                       .hi = (uint16_t)hi, .egress = (uint8_t)!!egress, .allow = (uint8_t)!!allow,
                       .cidr = rc, .rule = rule };
    return (int32_t)(m->acl_rules.n - 1);
}

int32_t model_add_sg_rule(model *m, int32_t sg, int egress, int proto, int lo, int hi, const cidr_t *cidr,
                          int32_t ref_sg, int32_t rule)
{
    sg_rule_t *r;
    if (m->finished || !VALID(m->sgs, sg) || !valid_ports(proto, lo, hi) || !OPTIONAL(m->sgs, ref_sg))
        return -1;
    rule_cidr_t rc = { 0 };
    if ((cidr == NULL) == (ref_sg < 0))
        return -1; /* exactly one of a CIDR and a group */
    if ((cidr && rule_cidr_of(m, *cidr, &rc) != 0) || !(r = PUSH(m->sg_rules)))
        return -1;
    *r = (sg_rule_t){ .table = sg, .proto = (int16_t)proto, .lo = (uint16_t)lo, .hi = (uint16_t)hi,
                      .egress = (uint8_t)!!egress, .ref_sg = ref_sg, .rule = rule, .cidr = rc };
    return (int32_t)(m->sg_rules.n - 1);
}

int32_t model_add_eni_ip(model *m, int32_t eni, addr_t ip)
{
    eni_addr_t *a;
    if (m->finished || !VALID(m->enis, eni) || !(a = PUSH(m->addrs)))
        return -1;
    *a = (eni_addr_t){ .ip = ip, .vpc = m->subnets.v[m->enis.v[eni].subnet].vpc, .eni = eni };
    if (addr_is_v4(ip) && m->enis.v[eni].ip4 == 0)
        m->enis.v[eni].ip4 = addr_low32(ip);
    else if (!addr_is_v4(ip) && model_eni_ip(m, eni, 0) == 0) {
        while (m->eni_ip6.n <= (size_t)eni) {
            addr_t *slot = PUSH(m->eni_ip6);
            if (!slot)
                return -1;
            *slot = 0;
        }
        m->eni_ip6.v[eni] = ip;
    }
    return eni;
}

int32_t model_add_eni(model *m, int32_t comp, int32_t subnet, addr_t ip, const int32_t *sgs, size_t nsgs)
{
    eni_t *e;
    if (m->finished || !VALID(m->subnets, subnet))
        return -1;
    for (size_t i = 0; i < nsgs; i++) {
        if (!VALID(m->sgs, sgs[i]))
            return -1;
    }
    size_t sg_off = m->eni_sgs.n;
    for (size_t i = 0; i < nsgs; i++) {
        int32_t *slot = PUSH(m->eni_sgs);
        if (!slot)
            return -1;
        *slot = sgs[i];
    }
    if (!(e = PUSH(m->enis)))
        return -1;
    *e = (eni_t){ .comp = comp, .subnet = subnet, .sg_off = (int32_t)sg_off, .sg_cnt = (int32_t)nsgs };
    int32_t idx = (int32_t)(m->enis.n - 1);
    return model_add_eni_ip(m, idx, ip) < 0 ? -1 : idx;
}

int32_t model_add_tgw(model *m, int32_t comp, int available, int sgref)
{
    tgw_t *t;
    if (m->finished || !(t = PUSH(m->tgws)))
        return -1;
    *t = (tgw_t){ .comp = comp, .available = (uint8_t)!!available, .sgref = (uint8_t)!!sgref };
    return (int32_t)(m->tgws.n - 1);
}

int32_t model_add_att(model *m, int32_t comp, int32_t tgw, int32_t vpc, int available, int sgref, int32_t assoc)
{
    att_t *a;
    if (m->finished || !VALID(m->tgws, tgw) || !OPTIONAL(m->vpcs, vpc) || !OPTIONAL(m->trtbs, assoc))
        return -1;
    if (!(a = PUSH(m->atts)))
        return -1;
    int32_t idx = (int32_t)(m->atts.n - 1);
    *a = (att_t){ .comp = comp, .tgw = tgw, .vpc = vpc, .assoc = assoc, .next_in_vpc = -1,
                  .sub_off = -1, .available = (uint8_t)!!available, .sgref = (uint8_t)!!sgref };
    if (vpc >= 0) {
        a->next_in_vpc = m->vpcs.v[vpc].first_att;
        m->vpcs.v[vpc].first_att = idx;
    }
    return idx;
}

/* An attachment's subnets must be added right after it, together (they form one run). */
int32_t model_add_att_subnet(model *m, int32_t att, int32_t subnet)
{
    if (m->finished || !VALID(m->atts, att) || !VALID(m->subnets, subnet))
        return -1;
    att_t *a = &m->atts.v[att];
    if (a->vpc < 0 || m->subnets.v[subnet].vpc != a->vpc)
        return -1;
    if (a->sub_off < 0)
        a->sub_off = (int32_t)m->att_subnets.n;
    else if ((size_t)(a->sub_off + a->sub_cnt) != m->att_subnets.n)
        return -1;
    int32_t *slot = PUSH(m->att_subnets);
    if (!slot)
        return -1;
    *slot = subnet;
    a->sub_cnt++;
    return att;
}

int32_t model_add_trtb(model *m, int32_t comp, int known, int available)
{
    trtb_t *t;
    if (m->finished || add_table(m, &m->trtbs_tab, comp) < 0 || !(t = PUSH(m->trtbs)))
        return -1;
    *t = (trtb_t){ .comp = comp, .known = (uint8_t)!!known, .available = (uint8_t)!!available };
    return (int32_t)(m->trtbs.n - 1);
}

int32_t model_add_troute(model *m, int32_t trtb, cidr_t dst, int32_t att, int rank, int blackhole, int32_t rule)
{
    route_t *r;
    if (m->finished || !VALID(m->trtbs, trtb) || !OPTIONAL(m->atts, att) || (att < 0 && !blackhole))
        return -1;
    if (!(r = PUSH(m->troutes)))
        return -1;
    *r = (route_t){ .table = trtb, .dst = dst, .kind = RT_OTHER, .rank = (uint8_t)rank,
                    .blackhole = (uint8_t)!!blackhole, .target = att, .rule = rule };
    return (int32_t)(m->troutes.n - 1);
}

int32_t model_add_pcx(model *m, int32_t comp, int32_t vpc_a, int32_t vpc_b, int active)
{
    pcx_t *p;
    if (m->finished || !VALID(m->vpcs, vpc_a) || !VALID(m->vpcs, vpc_b) || !(p = PUSH(m->pcxs)))
        return -1;
    *p = (pcx_t){ .comp = comp, .vpc_a = vpc_a, .vpc_b = vpc_b, .active = (uint8_t)!!active };
    return (int32_t)(m->pcxs.n - 1);
}

/* ---- names ------------------------------------------------------------------------------ */

static int64_t add_text(model *m, const char *s, size_t len)
{
    if (memchr(s, 0, len) != NULL || m->text.n + len + 1 > UINT32_MAX)
        return -1;
    if (m->text.n + len + 1 > m->text.cap) {
        size_t ncap = m->text.cap ? m->text.cap : 4096;
        while (ncap < m->text.n + len + 1)
            ncap *= 2;
        char *nv = realloc(m->text.v, ncap);
        if (nv == NULL)
            return -1;
        m->text.v = nv;
        m->text.cap = ncap;
    }
    size_t off = m->text.n;
    memcpy(m->text.v + off, s, len);
    m->text.v[off + len] = '\0';
    m->text.n += len + 1;
    return (int64_t)off;
}

int32_t model_add_comp(model *m, const char *const strs[4], const size_t lens[4])
{
    /* a component's kind and account are most often the previous one's: stored once */
    uint32_t prev[4] = { 0 };
    int has_prev = m->comp_text.n >= 4;
    if (has_prev)
        memcpy(prev, &m->comp_text.v[m->comp_text.n - 4], sizeof prev);
    for (int i = 0; i < 4; i++) {
        int64_t off;
        if (has_prev && (i == 1 || i == 2) && strlen(m->text.v + prev[i]) == lens[i] &&
            memcmp(m->text.v + prev[i], strs[i], lens[i]) == 0)
            off = prev[i];
        else
            off = add_text(m, strs[i], lens[i]);
        uint32_t *slot;
        if (off < 0 || !(slot = PUSH(m->comp_text)))
            return -1;
        *slot = (uint32_t)off;
    }
    return (int32_t)(m->comp_text.n / 4 - 1);
}

int32_t model_add_rule(model *m, const char *text, size_t len)
{
    int64_t off = add_text(m, text, len);
    uint32_t *slot;
    if (off < 0 || !(slot = PUSH(m->rule_text)))
        return -1;
    *slot = (uint32_t)off;
    return (int32_t)(m->rule_text.n - 1);
}

const char *model_comp_str(const model *m, int32_t comp, int i)
{
    if (comp < 0 || (size_t)comp >= m->comp_text.n / 4 || i < 0 || i > 3)
        return NULL;
    return m->text.v + m->comp_text.v[(size_t)comp * 4 + (size_t)i];
}

const char *model_rule_str(const model *m, int32_t rule)
{
    if (rule < 0 || (size_t)rule >= m->rule_text.n)
        return NULL;
    return m->text.v + m->rule_text.v[rule];
}

/* ---- evaluation order ---------------------------------------------------------------- */

#define CMP(a, b) (((a) > (b)) - ((a) < (b)))

/* qsort that accepts an empty (NULL) vector. */
static void sort(void *v, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(v, n, size, cmp);
}

/* Routes: by table, then family (IPv4 first: a lookup walks only its family's groups), then
 * longest prefix first, then network, then priority rank, then the index of its text, which is
 * insertion order (a text several routes share is a propagated route's, and a table holds one
 * propagated route per prefix); so the first route of a prefix is the one that wins it. */
static int route_order(const void *pa, const void *pb)
{
    const route_t *a = pa, *b = pb;
    int c = CMP(a->table, b->table);
    if (!c) c = CMP(b->dst.v4, a->dst.v4);
    if (!c) c = CMP(b->dst.len, a->dst.len);
    if (!c) c = CMP(a->dst.net, b->dst.net);
    if (!c) c = CMP(a->rank, b->rank);
    if (!c) c = CMP(a->rule, b->rule);
    return c;
}

/* NACL rules: by table, outbound after inbound, then ascending rule number. */
static int acl_order(const void *pa, const void *pb)
{
    const acl_rule_t *a = pa, *b = pb;
    int c = CMP(a->table, b->table);
    if (!c) c = CMP(a->egress, b->egress);
    if (!c) c = CMP(a->number, b->number);
    return c;
}

static int sg_order(const void *pa, const void *pb)
{
    const sg_rule_t *a = pa, *b = pb;
    int c = CMP(a->table, b->table);
    if (!c) c = CMP(a->egress, b->egress);
    if (!c) c = CMP(a->rule, b->rule);
    return c;
}

static int addr_order(const void *pa, const void *pb)
{
    const eni_addr_t *a = pa, *b = pb;
    int c = CMP(a->vpc, b->vpc);
    return c ? c : CMP(a->ip, b->ip);
}

static int subnet_cidr_order(const void *pa, const void *pb)
{
    const subnet_cidr_t *a = pa, *b = pb;
    int c = CMP(a->vpc, b->vpc);
    return c ? c : CMP(a->cidr.net, b->cidr.net);
}

/* Sets off/cnt of each table from a vector sorted by table; `table_at` reads the key. */
#define INDEX_TABLES(tables, items)                                                        \
    do {                                                                                   \
        for (size_t i_ = 0; i_ < (tables).n; i_++) (tables).v[i_].off = (tables).v[i_].cnt = 0; \
        for (size_t i_ = (items).n; i_-- > 0;) {                                           \
            table_t *t_ = &(tables).v[(items).v[i_].table];                                \
            t_->off = (int32_t)i_;                                                         \
            t_->cnt++;                                                                     \
        }                                                                                  \
    } while (0)

#define LPM_HASH_MIN 16  /* groups at least this large get a hash */

/* A network's 32-bit digest: the IPv4 address itself for IPv4, the four words folded for IPv6. */
static uint32_t net_digest(addr_t net, int v4)
{
    if (v4)
        return addr_low32(net);
    return (uint32_t)net ^ (uint32_t)(net >> 32) ^ (uint32_t)(net >> 64) ^ (uint32_t)(net >> 96);
}

/* Networks differ in their high bits and end in zeros: mix every bit into the low ones. */
static uint32_t net_hash(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    return h ^ (h >> 16);
}

/* Fills the hash of group `g`: the first (winning) route of each network. */
static int hash_group(model *m, lpm_group *g, const route_t *routes)
{
    uint32_t size = 1;
    while (size < (uint32_t)g->cnt * 2)
        size <<= 1;
    g->hash_off = (int32_t)m->lpm_slots.n;
    g->hash_mask = size - 1;
    for (uint32_t i = 0; i < size; i++) {
        lpm_slot *slot = PUSH(m->lpm_slots);
        if (!slot)
            return -1;
        *slot = (lpm_slot){ .net = 0, .route = -1 };
    }
    lpm_slot *slots = m->lpm_slots.v + g->hash_off;
    for (int32_t i = g->off; i < g->off + g->cnt; i++) {
        if (i > g->off && routes[i - 1].dst.net == routes[i].dst.net)
            continue; /* same network, lower priority */
        uint32_t digest = net_digest(routes[i].dst.net, g->v4);
        uint32_t h = net_hash(digest) & g->hash_mask;
        while (slots[h].route >= 0)
            h = (h + 1) & g->hash_mask;
        slots[h] = (lpm_slot){ .net = digest, .route = i };
    }
    return 0;
}

/* Splits each table's (sorted) routes into one group per prefix length. */
static int group_routes(model *m, void *tables_any, const route_t *routes)
{
    VEC(table_t) *tables = tables_any;
    for (size_t t = 0; t < tables->n; t++) {
        table_t *tab = &tables->v[t];
        tab->grp_off = (int32_t)m->groups.n;
        tab->grp_cnt = 0;
        for (int32_t i = tab->off; i < tab->off + tab->cnt; i++) {
            uint8_t len = routes[i].dst.len, v4 = routes[i].dst.v4;
            if (tab->grp_cnt > 0 && m->groups.v[m->groups.n - 1].len == len && m->groups.v[m->groups.n - 1].v4 == v4) {
                m->groups.v[m->groups.n - 1].cnt++;
                continue;
            }
            lpm_group *g = PUSH(m->groups);
            if (!g)
                return -1;
            *g = (lpm_group){ .len = len, .v4 = v4, .off = i, .cnt = 1, .hash_off = -1 };
            tab->grp_cnt++;
        }
        for (int32_t k = tab->grp_off; k < tab->grp_off + tab->grp_cnt; k++) {
            if (m->groups.v[k].cnt >= LPM_HASH_MIN && hash_group(m, &m->groups.v[k], routes) != 0)
                return -1;
        }
    }
    return 0;
}

const route_t *model_lpm(const model *m, const route_t *routes, const table_t *t, addr_t ip)
{
    uint8_t v4 = (uint8_t)addr_is_v4(ip);
    uint32_t ip32 = addr_low32(ip);
    for (int32_t g = t->grp_off; g < t->grp_off + t->grp_cnt; g++) {
        const lpm_group *grp = &m->groups.v[g];
        if (grp->v4 != v4) {
            if (v4)
                break; /* the IPv6 groups come after the IPv4 ones */
            continue;
        }
        /* an IPv4 network in 32 bits (its /n is a 128-bit /96+n: the mask covers the ::ffff prefix) */
        uint32_t key32 = v4 && grp->len > 96 ? ip32 & (0xffffffffu << (128 - grp->len)) : 0;
        addr_t key = v4 ? ADDR_V4_PREFIX | key32 : ip & addr_mask(grp->len);
        if (grp->hash_off >= 0) {
            const lpm_slot *slots = m->lpm_slots.v + grp->hash_off;
            uint32_t digest = v4 ? key32 : net_digest(key, 0);
            for (uint32_t h = net_hash(digest) & grp->hash_mask; slots[h].route >= 0; h = (h + 1) & grp->hash_mask) {
                const route_t *r = &routes[slots[h].route];
                if (slots[h].net == digest && r->dst.net == key)
                    return r;
            }
            continue;
        }
        int32_t lo = grp->off, hi = grp->off + grp->cnt;
        while (lo < hi) { /* leftmost route whose network is >= key */
            int32_t mid = lo + (hi - lo) / 2;
            if (routes[mid].dst.net < key) lo = mid + 1; else hi = mid;
        }
        if (lo < grp->off + grp->cnt && routes[lo].dst.net == key)
            return &routes[lo];
    }
    return NULL;
}

/* Sets each table's `egress`: the first outbound entry (entries are sorted inbound first). */
#define SPLIT_DIRECTIONS(tables, items)                                                    \
    do {                                                                                   \
        for (size_t t_ = 0; t_ < (tables).n; t_++) {                                       \
            table_t *tab_ = &(tables).v[t_];                                               \
            tab_->egress = tab_->off;                                                      \
            while (tab_->egress < tab_->off + tab_->cnt && !(items).v[tab_->egress].egress) \
                tab_->egress++;                                                            \
        }                                                                                  \
    } while (0)

int model_finish(model *m)
{
    if (m->finished)
        return 0;
    sort(m->routes.v, m->routes.n, sizeof *m->routes.v, route_order);
    sort(m->troutes.v, m->troutes.n, sizeof *m->troutes.v, route_order);
    sort(m->acl_rules.v, m->acl_rules.n, sizeof *m->acl_rules.v, acl_order);
    sort(m->sg_rules.v, m->sg_rules.n, sizeof *m->sg_rules.v, sg_order);
    sort(m->addrs.v, m->addrs.n, sizeof *m->addrs.v, addr_order);
    INDEX_TABLES(m->rtbs, m->routes);
    INDEX_TABLES(m->trtbs_tab, m->troutes);
    INDEX_TABLES(m->acls, m->acl_rules);
    INDEX_TABLES(m->sgs, m->sg_rules);
    SPLIT_DIRECTIONS(m->acls, m->acl_rules);
    SPLIT_DIRECTIONS(m->sgs, m->sg_rules);
    m->groups.n = 0;
    m->lpm_slots.n = 0;
    if (group_routes(m, &m->rtbs, m->routes.v) != 0 || group_routes(m, &m->trtbs_tab, m->troutes.v) != 0)
        return -1;

    sort(m->subnet_cidrs.v, m->subnet_cidrs.n, sizeof *m->subnet_cidrs.v, subnet_cidr_order);
    for (size_t i = 0; i < m->vpcs.n; i++)
        m->vpcs.v[i].sub_off = m->vpcs.v[i].sub_cnt = 0;
    for (size_t i = m->subnet_cidrs.n; i-- > 0;) {
        vpc_t *v = &m->vpcs.v[m->subnet_cidrs.v[i].vpc];
        v->sub_off = (int32_t)i;
        v->sub_cnt++;
    }
    m->finished = 1;
    return 0;
}

int32_t model_subnet_of(const model *m, int32_t vpc, addr_t ip)
{
    if (!VALID(m->vpcs, vpc))
        return -1;
    const vpc_t *v = &m->vpcs.v[vpc];
    int32_t lo = v->sub_off, hi = v->sub_off + v->sub_cnt - 1, best = -1;
    while (lo <= hi) { /* last subnet CIDR whose network address is <= ip */
        int32_t mid = lo + (hi - lo) / 2;
        if (m->subnet_cidrs.v[mid].cidr.net <= ip) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (best < 0)
        return -1;
    const subnet_cidr_t *c = &m->subnet_cidrs.v[best];
    return cidr_contains(&c->cidr, ip) ? c->subnet : -1;
}

int32_t model_eni_at(const model *m, int32_t vpc, addr_t ip)
{
    size_t lo = 0, hi = m->addrs.n;
    eni_addr_t key = { .ip = ip, .vpc = vpc };
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (addr_order(&m->addrs.v[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < m->addrs.n && m->addrs.v[lo].vpc == vpc && m->addrs.v[lo].ip == ip)
        return m->addrs.v[lo].eni;
    return -1;
}

int32_t model_subnet_anywhere(const model *m, addr_t ip)
{
    for (size_t v = 0; v < m->vpcs.n; v++) {
        int32_t s = model_subnet_of(m, (int32_t)v, ip);
        if (s >= 0)
            return s;
    }
    return -1;
}
