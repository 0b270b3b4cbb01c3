/* Lua bindings of the reachability model: builders, queries, address helpers. */
#include "reach/reach.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "reach/eval.h"
#include "reach/jsonkeys.h"
#include "reach/model.h"

#define MODEL_MT "awsnet.reach.model"

typedef struct {
    model m;
    int live;
} model_ud;

/* The models' metatable is also kept in the registry under this address: a check by pointer, not
 * by name (no string lookup on each trace). */
static const char model_mt_key = 0;

static model *check_model(lua_State *L, int finished)
{
    model_ud *u = lua_touserdata(L, 1);
    int same = 0;
    if (u && lua_getmetatable(L, 1)) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &model_mt_key);
        same = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    if (!same)
        u = luaL_checkudata(L, 1, MODEL_MT); /* raises the usual error */
    if (!u->live)
        luaL_argerror(L, 1, "closed model");
    if (finished != u->m.finished)
        luaL_argerror(L, 1, finished ? "model not finished" : "model already finished");
    return &u->m;
}

static int model_destroy(lua_State *L)
{
    model_ud *u = luaL_checkudata(L, 1, MODEL_MT);
    if (u->live) {
        model_free(&u->m);
        u->live = 0;
    }
    return 0;
}

static int l_new(lua_State *L)
{
    model_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    model_init(&u->m);
    u->live = 1;
    luaL_setmetatable(L, MODEL_MT);
    return 1;
}

static int32_t opt_index(lua_State *L, int arg)
{
    lua_Integer v = luaL_optinteger(L, arg, -1);
    return v < -1 || v > INT32_MAX ? -2 : (int32_t)v;
}

static int check_cidr(lua_State *L, int arg, cidr_t *c)
{
    size_t len;
    const char *s = luaL_checklstring(L, arg, &len);
    return cidr_parse(s, len, c) == 0;
}

/* Pushes the new index; a bad index from the loader is a programming error. */
static int push_index(lua_State *L, int32_t idx, const char *what)
{
    if (idx < 0)
        return luaL_error(L, "reach: bad %s (index out of range or out of memory)", what);
    lua_pushinteger(L, idx);
    return 1;
}

/* An address from Lua: an integer for IPv4 (what core.reach.ip returns for one), a 16-byte
 * string (network byte order) for IPv6. */
static int addr_from_lua(lua_State *L, int arg, addr_t *out)
{
    if (lua_type(L, arg) == LUA_TSTRING) {
        size_t len;
        const unsigned char *b = (const unsigned char *)lua_tolstring(L, arg, &len);
        if (len != 16)
            return 0;
        addr_t v = 0;
        for (size_t i = 0; i < 16; i++)
            v = v << 8 | b[i];
        *out = v;
        return 1;
    }
    int isnum;
    lua_Integer v = lua_tointegerx(L, arg, &isnum);
    if (!isnum || v < 0 || v > 0xffffffffLL)
        return 0;
    *out = addr_v4((uint32_t)v);
    return 1;
}

static void push_addr(lua_State *L, addr_t a)
{
    if (addr_is_v4(a)) {
        lua_pushinteger(L, addr_low32(a));
        return;
    }
    char b[16];
    for (int i = 0; i < 16; i++)
        b[i] = (char)(unsigned char)(a >> (120 - 8 * i));
    lua_pushlstring(L, b, 16);
}

static int bad_cidr(lua_State *L)
{
    luaL_pushfail(L);
    lua_pushliteral(L, "invalid CIDR");
    return 2;
}

static int l_vpc(lua_State *L)
{
    model *m = check_model(L, 0);
    return push_index(L, model_add_vpc(m, opt_index(L, 2), lua_toboolean(L, 3)), "vpc");
}

static int l_subnet(lua_State *L)
{
    model *m = check_model(L, 0);
    cidr_t c;
    if (!check_cidr(L, 4, &c))
        return bad_cidr(L);
    return push_index(L, model_add_subnet(m, opt_index(L, 2), opt_index(L, 3), c, opt_index(L, 5),
                                          opt_index(L, 6), opt_index(L, 7)), "subnet");
}

/* m:subnet_cidr(subnet, cidr): another CIDR of a subnet (its IPv6 one). */
static int l_subnet_cidr(lua_State *L)
{
    model *m = check_model(L, 0);
    cidr_t c;
    if (!check_cidr(L, 3, &c))
        return bad_cidr(L);
    return push_index(L, model_add_subnet_cidr(m, opt_index(L, 2), c), "subnet CIDR");
}

static int l_rtb(lua_State *L)
{
    model *m = check_model(L, 0);
    return push_index(L, model_add_rtb(m, opt_index(L, 2)), "route table");
}

static int l_main_rtb(lua_State *L)
{
    model *m = check_model(L, 0);
    return push_index(L, model_set_main_rtb(m, opt_index(L, 2), opt_index(L, 3)), "main route table");
}

/* m:route(rtb, cidr, kind, target, rank, blackhole, rule) */
static int l_route(lua_State *L)
{
    model *m = check_model(L, 0);
    cidr_t c;
    if (!check_cidr(L, 3, &c))
        return bad_cidr(L);
    return push_index(L, model_add_route(m, opt_index(L, 2), c, (int)luaL_checkinteger(L, 4), opt_index(L, 5),
                                         (int)luaL_checkinteger(L, 6), lua_toboolean(L, 7), opt_index(L, 8)),
                      "route");
}

static int l_acl(lua_State *L)
{
    model *m = check_model(L, 0);
    return push_index(L, model_add_acl(m, opt_index(L, 2)), "network ACL");
}

/* m:acl_rule(acl, egress, number, proto, lo, hi, cidr, allow, rule) */
static int l_acl_rule(lua_State *L)
{
    model *m = check_model(L, 0);
    cidr_t c;
    if (!check_cidr(L, 8, &c))
        return bad_cidr(L);
    lua_Integer number = luaL_checkinteger(L, 4);
    return push_index(L, model_add_acl_rule(m, opt_index(L, 2), lua_toboolean(L, 3),
                                            (int32_t)(number > INT32_MAX ? INT32_MAX : number),
                                            (int)luaL_checkinteger(L, 5), (int)luaL_checkinteger(L, 6),
                                            (int)luaL_checkinteger(L, 7), c, lua_toboolean(L, 9),
                                            opt_index(L, 10)), "network ACL rule");
}

static int l_sg(lua_State *L)
{
    model *m = check_model(L, 0);
    return push_index(L, model_add_sg(m, opt_index(L, 2)), "security group");
}

/* m:sg_rule(sg, egress, proto, lo, hi, cidr_or_nil, ref_sg, rule) */
static int l_sg_rule(lua_State *L)
{
    model *m = check_model(L, 0);
    cidr_t c, *cp = NULL;
    if (!lua_isnoneornil(L, 7)) {
        if (!check_cidr(L, 7, &c))
            return bad_cidr(L);
        cp = &c;
    }
    return push_index(L, model_add_sg_rule(m, opt_index(L, 2), lua_toboolean(L, 3), (int)luaL_checkinteger(L, 4),
                                           (int)luaL_checkinteger(L, 5), (int)luaL_checkinteger(L, 6), cp,
                                           opt_index(L, 8), opt_index(L, 9)), "security group rule");
}

static int check_ip(lua_State *L, int arg, addr_t *ip)
{
    size_t len;
    const char *s = luaL_checklstring(L, arg, &len);
    return cidr_parse_ip(s, len, ip) == 0;
}

/* m:eni(comp, subnet, ip, {sg, ...}) */
static int l_eni(lua_State *L)
{
    model *m = check_model(L, 0);
    addr_t ip;
    luaL_checktype(L, 5, LUA_TTABLE);
    if (!check_ip(L, 4, &ip)) {
        luaL_pushfail(L);
        lua_pushliteral(L, "invalid IP address");
        return 2;
    }
    size_t n = (size_t)lua_rawlen(L, 5);
    int32_t small[16], *sgs = n <= 16 ? small : malloc(n * sizeof *sgs);
    if (!sgs)
        return luaL_error(L, "reach: out of memory");
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 5, (lua_Integer)i + 1);
        lua_Integer v = lua_tointeger(L, -1);
        sgs[i] = v < 0 || v > INT32_MAX ? -1 : (int32_t)v;
        lua_pop(L, 1);
    }
    int32_t idx = model_add_eni(m, opt_index(L, 2), opt_index(L, 3), ip, sgs, n);
    if (sgs != small)
        free(sgs);
    return push_index(L, idx, "network interface");
}

static int l_eni_ip(lua_State *L)
{
    model *m = check_model(L, 0);
    addr_t ip;
    if (!check_ip(L, 3, &ip)) {
        luaL_pushfail(L);
        lua_pushliteral(L, "invalid IP address");
        return 2;
    }
    return push_index(L, model_add_eni_ip(m, opt_index(L, 2), ip), "network interface address");
}

static int l_tgw(lua_State *L)
{
    model *m = check_model(L, 0);
    return push_index(L, model_add_tgw(m, opt_index(L, 2), lua_toboolean(L, 3), lua_toboolean(L, 4)),
                      "transit gateway");
}

/* m:tgw_attachment(comp, tgw, vpc, available, sgref, assoc_rtb) */
static int l_att(lua_State *L)
{
    model *m = check_model(L, 0);
    return push_index(L, model_add_att(m, opt_index(L, 2), opt_index(L, 3), opt_index(L, 4), lua_toboolean(L, 5),
                                       lua_toboolean(L, 6), opt_index(L, 7)), "transit gateway attachment");
}

static int l_att_subnet(lua_State *L)
{
    model *m = check_model(L, 0);
    return push_index(L, model_add_att_subnet(m, opt_index(L, 2), opt_index(L, 3)), "attachment subnet");
}

static int l_trtb(lua_State *L)
{
    model *m = check_model(L, 0);
    return push_index(L, model_add_trtb(m, opt_index(L, 2), lua_toboolean(L, 3), lua_toboolean(L, 4)),
                      "transit gateway route table");
}

/* m:tgw_route(trtb, cidr, att_or_-1, rank, blackhole, rule) */
static int l_troute(lua_State *L)
{
    model *m = check_model(L, 0);
    cidr_t c;
    if (!check_cidr(L, 3, &c))
        return bad_cidr(L);
    return push_index(L, model_add_troute(m, opt_index(L, 2), c, opt_index(L, 4), (int)luaL_checkinteger(L, 5),
                                          lua_toboolean(L, 6), opt_index(L, 7)), "transit gateway route");
}

static int l_pcx(lua_State *L)
{
    model *m = check_model(L, 0);
    return push_index(L, model_add_pcx(m, opt_index(L, 2), opt_index(L, 3), opt_index(L, 4), lua_toboolean(L, 5)),
                      "peering connection");
}

/* m:component(id, kind, account, name) -> index */
static int l_comp(lua_State *L)
{
    model *m = check_model(L, 0);
    const char *strs[4];
    size_t lens[4];
    for (int i = 0; i < 4; i++)
        strs[i] = lua_isnoneornil(L, i + 2) ? (lens[i] = 0, "") : luaL_checklstring(L, i + 2, &lens[i]);
    return push_index(L, model_add_comp(m, strs, lens), "component name");
}

static int l_rule(lua_State *L)
{
    model *m = check_model(L, 0);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    return push_index(L, model_add_rule(m, text, len), "rule text");
}

/* m:component_info(index) -> id, kind, account, name (nil when empty) */
static int l_comp_info(lua_State *L)
{
    model_ud *u = luaL_checkudata(L, 1, MODEL_MT);
    lua_Integer i = luaL_checkinteger(L, 2);
    if (!u->live || i < 0 || i > INT32_MAX || !model_comp_str(&u->m, (int32_t)i, 0))
        return luaL_pushfail(L), 1;
    for (int k = 0; k < 4; k++) {
        const char *str = model_comp_str(&u->m, (int32_t)i, k);
        if (*str)
            lua_pushstring(L, str);
        else
            lua_pushnil(L);
    }
    return 4;
}

static int l_rule_text(lua_State *L)
{
    model_ud *u = luaL_checkudata(L, 1, MODEL_MT);
    lua_Integer i = luaL_checkinteger(L, 2);
    const char *str = u->live && i >= 0 && i <= INT32_MAX ? model_rule_str(&u->m, (int32_t)i) : NULL;
    if (str)
        lua_pushstring(L, str);
    else
        lua_pushnil(L);
    return 1;
}

/* m:no_sgref_az(az_code): TGW security-group referencing does not work there. */
static int l_no_sgref_az(lua_State *L)
{
    model *m = check_model(L, 0);
    lua_Integer az = luaL_checkinteger(L, 2);
    luaL_argcheck(L, az > 0 && az <= INT32_MAX, 2, "AZ code out of range");
    m->no_sgref_az = (int32_t)az;
    return 0;
}

static int l_finish(lua_State *L)
{
    model *m = check_model(L, 0);
    if (model_finish(m) != 0)
        return luaL_error(L, "reach: out of memory");
    return 0;
}

/* ---- queries ------------------------------------------------------------------------- */

static int32_t index_in(lua_State *L, int arg, size_t n)
{
    lua_Integer v = luaL_optinteger(L, arg, -1);
    if (v < -1 || v >= (lua_Integer)n)
        luaL_argerror(L, arg, "index out of range");
    return (int32_t)v;
}

static uint16_t port_arg(lua_State *L, int arg, lua_Integer def)
{
    lua_Integer v = luaL_optinteger(L, arg, def);
    luaL_argcheck(L, v >= 0 && v <= 65535, arg, "port out of range");
    return (uint16_t)v;
}

/* Reads (proto, port) starting at `arg` into q, and the client ports (eph_lo, eph_hi) after
 * them when `with_client_ports`. */
static void query_ports(lua_State *L, int arg, eval_query *q, int with_client_ports)
{
    lua_Integer proto = luaL_checkinteger(L, arg);
    luaL_argcheck(L, proto >= PROTO_ALL && proto <= 255, arg, "protocol out of range");
    q->proto = (int)proto;
    q->port = port_arg(L, arg + 1, 0);
    if (with_client_ports) {
        q->eph_lo = port_arg(L, arg + 2, 1024);
        q->eph_hi = port_arg(L, arg + 3, 65535);
        luaL_argcheck(L, q->eph_lo <= q->eph_hi, arg + 2, "empty port range");
    }
}

static addr_t ip_arg(lua_State *L, int arg)
{
    addr_t a = 0;
    luaL_argcheck(L, addr_from_lua(L, arg, &a), arg, "address expected (IPv4 integer or 16-byte IPv6 string)");
    return a;
}

/* A trace's query and verdict, packed into a Lua string that the trace's result keeps: enough to
 * walk the same packet again when a script asks for the hops (the model is immutable and the walk
 * deterministic). One layout of QUERY_LEN bytes (native byte order, read back only by this
 * process): src_eni i32, src_subnet i32, dst_eni i32, dst_ip 16 bytes, proto i16, port u16,
 * eph_lo u16, eph_hi u16, forward_only u8, code u8, src_ip 16 bytes, all zero when it is the
 * source ENI's address of the destination's family (what a trace from an ENI sends from).
 * At 54 bytes the string is longer than Lua interns (LUAI_MAXSHORTLEN, 40): a short string would
 * cost every trace a hash of its bytes and a probe of the interpreter's string table, which a
 * large model's names make big (the probe misses the cache: ~8% of a trace at 5,000 VPCs). */
enum { QUERY_LEN = 54 };

static void put(char *buf, size_t *at, const void *v, size_t n)
{
    memcpy(buf + *at, v, n);
    *at += n;
}

static void get(const char *buf, size_t *at, void *v, size_t n)
{
    memcpy(v, buf + *at, n);
    *at += n;
}

static void push_query(lua_State *L, const model *m, const eval_query *q, int code)
{
    char buf[QUERY_LEN];
    size_t at = 0;
    int16_t proto = (int16_t)q->proto;
    uint8_t fo = (uint8_t)(q->forward_only != 0), c = (uint8_t)code;
    int v4 = addr_is_v4(q->dst_ip);
    put(buf, &at, &q->src_eni, 4);
    put(buf, &at, &q->src_subnet, 4);
    put(buf, &at, &q->dst_eni, 4);
    put(buf, &at, &q->dst_ip, sizeof q->dst_ip);
    put(buf, &at, &proto, 2);
    put(buf, &at, &q->port, 2);
    put(buf, &at, &q->eph_lo, 2);
    put(buf, &at, &q->eph_hi, 2);
    put(buf, &at, &fo, 1);
    put(buf, &at, &c, 1);
    addr_t src = q->src_eni >= 0 && model_eni_ip(m, q->src_eni, v4) == q->src_ip ? 0 : q->src_ip;
    put(buf, &at, &src, sizeof src);
    lua_pushlstring(L, buf, at);
}

/* The query at `arg` unpacked: a string of another length, or with a code or protocol out of
 * range, or addresses of two families, is an argument error. *src_known is 0 when the source
 * address is the source ENI's: q->src_ip is then 0 until check_query fills it. */
static void unpack_query(lua_State *L, int arg, eval_query *q, int *code, int *src_known)
{
    size_t len;
    const char *buf = luaL_checklstring(L, arg, &len);
    if (len != QUERY_LEN)
        luaL_argerror(L, arg, "not a trace query");
    size_t at = 0;
    int16_t proto;
    uint8_t fo, c;
    get(buf, &at, &q->src_eni, 4);
    get(buf, &at, &q->src_subnet, 4);
    get(buf, &at, &q->dst_eni, 4);
    get(buf, &at, &q->dst_ip, sizeof q->dst_ip);
    get(buf, &at, &proto, 2);
    get(buf, &at, &q->port, 2);
    get(buf, &at, &q->eph_lo, 2);
    get(buf, &at, &q->eph_hi, 2);
    get(buf, &at, &fo, 1);
    get(buf, &at, &c, 1);
    get(buf, &at, &q->src_ip, sizeof q->src_ip);
    *src_known = q->src_ip != 0;
    q->proto = proto;
    q->forward_only = fo;
    q->skip_src_sg = 0;
    q->collect_blockers = 0;
    *code = c;
    if (proto < PROTO_ALL || proto > 255 || q->eph_lo > q->eph_hi || fo > 1 || c >= EV_CODE_COUNT ||
        q->dst_ip == 0 || (*src_known && addr_is_v4(q->src_ip) != addr_is_v4(q->dst_ip)))
        luaL_argerror(L, arg, "not a trace query");
}

/* The query at `arg`, also checked against this model before it is walked: a string that did
 * not come from its `trace` is an argument error, never an out-of-range read. */
static void check_query(lua_State *L, int arg, const model *m, eval_query *q)
{
    int code, src_known;
    unpack_query(L, arg, q, &code, &src_known);
    if (!(q->src_eni >= -1 && q->src_eni < (int32_t)m->enis.n && q->src_subnet >= 0 &&
          q->src_subnet < (int32_t)m->subnets.n && q->dst_eni >= -1 && q->dst_eni < (int32_t)m->enis.n))
        luaL_argerror(L, arg, "not a trace query of this model");
    if (!src_known) {
        int v4 = addr_is_v4(q->dst_ip);
        if (q->src_eni < 0 || model_eni_ip(m, q->src_eni, v4) == 0)
            luaL_argerror(L, arg, "not a trace query of this model");
        q->src_ip = model_eni_ip(m, q->src_eni, v4);
    }
}

/* m:trace(src_eni, src_subnet, src_ip, dst_eni, dst_ip, proto, port, eph_lo, eph_hi, forward_only)
 * -> ok, query: the verdict and the packed query (see push_query) for m:walk and core.reach.query. */
static int l_trace(lua_State *L)
{
    model *m = check_model(L, 1);
    eval_query q;
    q.src_eni = index_in(L, 2, m->enis.n);
    q.src_subnet = q.src_eni >= 0 ? m->enis.v[q.src_eni].subnet : index_in(L, 3, m->subnets.n);
    luaL_argcheck(L, q.src_subnet >= 0, 3, "source subnet required");
    q.dst_eni = index_in(L, 5, m->enis.n);
    q.dst_ip = q.dst_eni >= 0 && lua_isnoneornil(L, 6) ? model_eni_ip(m, q.dst_eni, 1) : ip_arg(L, 6);
    int v4 = addr_is_v4(q.dst_ip);
    /* a source ENI sends from its address of the destination's family */
    q.src_ip = q.src_eni >= 0 && lua_isnoneornil(L, 4) ? model_eni_ip(m, q.src_eni, v4) : ip_arg(L, 4);
    luaL_argcheck(L, q.src_ip != 0 && q.dst_ip != 0 && addr_is_v4(q.src_ip) == v4, 4,
                  "source and destination need addresses of one family");
    query_ports(L, 7, &q, 1);
    q.forward_only = lua_toboolean(L, 11);
    q.skip_src_sg = 0;
    q.collect_blockers = 0;
    eval_result r;
    eval_trace(m, &q, &r);
    lua_pushboolean(L, r.ok);
    push_query(L, m, &q, r.code);
    return 2;
}

/* m:trace_sources(src_enis, dst_eni, dst_ip, proto, port, eph_lo, eph_hi, forward_only) -> ok, query,
 * at: the source ENIs (a list of indices, or one) traced in turn to the destination, each from its
 * address of the destination's family, until one is not reachable: the verdict and packed query of
 * that one (or of the first when all are) and its 1-based position. A Lambda function's trace: one
 * call and one query string for all its Hyperplane ENIs. */
static int l_trace_sources(lua_State *L)
{
    model *m = check_model(L, 1);
    int list = lua_istable(L, 2);
    lua_Integer n = list ? (lua_Integer)lua_rawlen(L, 2) : 1;
    luaL_argcheck(L, n > 0, 2, "no source ENI");
    eval_query q;
    q.dst_eni = index_in(L, 3, m->enis.n);
    q.dst_ip = q.dst_eni >= 0 && lua_isnoneornil(L, 4) ? model_eni_ip(m, q.dst_eni, 1) : ip_arg(L, 4);
    int v4 = addr_is_v4(q.dst_ip);
    luaL_argcheck(L, q.dst_ip != 0, 4, "destination address required");
    query_ports(L, 5, &q, 1);
    q.forward_only = lua_toboolean(L, 9);
    q.skip_src_sg = 0;
    q.collect_blockers = 0;
    eval_query first;
    eval_result r;
    int ok_first = 0, code_first = EV_OK;
    lua_Integer at = 1;
    for (lua_Integer i = 1; i <= n; i++) {
        int isnum = 1;
        lua_Integer e = list ? (lua_rawgeti(L, 2, i), lua_tointegerx(L, -1, &isnum)) : lua_tointegerx(L, 2, &isnum);
        if (list)
            lua_pop(L, 1);
        luaL_argcheck(L, isnum && e >= 0 && e < (lua_Integer)m->enis.n, 2, "index out of range");
        q.src_eni = (int32_t)e;
        q.src_subnet = m->enis.v[e].subnet;
        q.src_ip = model_eni_ip(m, q.src_eni, v4);
        luaL_argcheck(L, q.src_ip != 0, 2, "source and destination need addresses of one family");
        eval_trace(m, &q, &r);
        if (i == 1) {
            first = q;
            ok_first = r.ok;
            code_first = r.code;
        }
        if (!r.ok) {
            first = q;
            ok_first = 0;
            code_first = r.code;
            at = i;
            break;
        }
    }
    lua_pushboolean(L, ok_first);
    push_query(L, m, &first, code_first);
    lua_pushinteger(L, at);
    return 3;
}

/* m:walk(query[, blocked_path]) -> a string holding a header "<i4i4i4i4" (number of forward hops,
 * 1-based index of the blocking hop or 0, assumption flags, destination ENI or -1) and then the
 * hops, each "<BBBBHHi4i4" (kind, verdict, direction, -, code, -, component, rule). With
 * blocked_path true the walk collects every blocker (eval.h), each such hop carries its code, and
 * a second string holds their 1-based indices, a byte each. */
static int l_walk(lua_State *L)
{
    model *m = check_model(L, 1);
    eval_query q;
    check_query(L, 2, m, &q);
    q.collect_blockers = lua_toboolean(L, 3);
    eval_result r;
    eval_trace(m, &q, &r);
    int32_t header[4] = { r.nforward, r.blocked + 1, (int32_t)r.flags, r.dst_eni };
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, (const char *)header, sizeof header);
    luaL_addlstring(&b, (const char *)r.hops, (size_t)r.n * sizeof(hop_t));
    luaL_pushresult(&b);
    if (!q.collect_blockers)
        return 1;
    /* and the 1-based indices of the blocking hops, a byte each (EVAL_MAX_HOPS < 256) */
    char at[EVAL_MAX_HOPS];
    size_t nat = 0;
    for (int i = 0; i < r.n; i++) {
        if (r.hops[i].verdict == V_DENY || r.hops[i].verdict == V_DROP)
            at[nat++] = (char)(i + 1);
    }
    lua_pushlstring(L, at, nat);
    return 2;
}

/* core.reach.query(query) -> src_eni, src_subnet, src_ip, dst_eni, dst_ip, proto, port, eph_lo,
 * eph_hi, forward_only, code (the explanation code's name, nil when reachable); src_ip is nil when
 * it is the source ENI's own address of the destination's family (the query leaves it out). It
 * reads no model, so a result still tells its query after its model is closed. */
static int l_query(lua_State *L)
{
    eval_query q;
    int code, src_known;
    unpack_query(L, 1, &q, &code, &src_known);
    lua_pushinteger(L, q.src_eni);
    lua_pushinteger(L, q.src_subnet);
    if (src_known)
        push_addr(L, q.src_ip);
    else
        lua_pushnil(L);
    lua_pushinteger(L, q.dst_eni);
    push_addr(L, q.dst_ip);
    lua_pushinteger(L, q.proto);
    lua_pushinteger(L, q.port);
    lua_pushinteger(L, q.eph_lo);
    lua_pushinteger(L, q.eph_hi);
    lua_pushboolean(L, q.forward_only);
    if (code == EV_OK)
        lua_pushnil(L);
    else
        lua_pushstring(L, eval_code_name(code));
    return 11;
}

typedef struct { int32_t eni, subnet; addr_t ip; uint16_t eph_lo, eph_hi; } endpoint;

/* Reads flattened endpoint records: {eni, subnet, ip} for destinations, {eni, subnet, ip,
 * eph_lo, eph_hi} for sources (stride 5: the client ports its replies go back to); every address
 * of the family of `*family` (-1: of the first one's, which sets it). */
static endpoint *read_endpoints(lua_State *L, int arg, const model *m, int stride, size_t *count, int *family)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    size_t n = (size_t)lua_rawlen(L, arg) / (size_t)stride;
    endpoint *e = lua_newuserdatauv(L, (n ? n : 1) * sizeof *e, 0); /* freed by the GC */
    for (size_t i = 0; i < n; i++) {
        lua_Integer v[5] = { 0, 0, 0, 1024, 65535 };
        addr_t ip = 0;
        int ip_ok = 0;
        for (int k = 0; k < stride; k++) {
            lua_rawgeti(L, arg, (lua_Integer)(i * (size_t)stride + (size_t)k + 1));
            if (k == 2)
                ip_ok = addr_from_lua(L, -1, &ip);
            else
                v[k] = lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
        if (ip_ok && *family < 0)
            *family = addr_is_v4(ip);
        if (v[0] < -1 || v[0] >= (lua_Integer)m->enis.n || v[1] < -1 || v[1] >= (lua_Integer)m->subnets.n ||
            !ip_ok || addr_is_v4(ip) != *family || (v[0] < 0 && v[1] < 0) || v[3] < 0 || v[4] > 65535 || v[3] > v[4])
            luaL_argerror(L, arg, "bad endpoint");
        e[i] = (endpoint){ (int32_t)v[0], v[0] >= 0 ? m->enis.v[v[0]].subnet : (int32_t)v[1], ip,
                           (uint16_t)v[3], (uint16_t)v[4] };
    }
    *count = n;
    return e;
}

/* m:matrix(sources, destinations, proto, port) -> rows of booleans, rows of codes (false where
 * reachable). Every address is of one family. */
static int l_matrix(lua_State *L)
{
    model *m = check_model(L, 1);
    size_t ns, nd;
    eval_query q;
    int family = -1;
    query_ports(L, 4, &q, 0);
    endpoint *src = read_endpoints(L, 2, m, 5, &ns, &family);
    endpoint *dst = read_endpoints(L, 3, m, 3, &nd, &family);
    q.forward_only = 0;
    q.skip_src_sg = 0;
    q.collect_blockers = 0;
    eval_result r;
    lua_createtable(L, (int)ns, 0);
    lua_createtable(L, (int)ns, 0);
    for (size_t i = 0; i < ns; i++) {
        lua_createtable(L, (int)nd, 0);
        lua_createtable(L, (int)nd, 0);
        q.src_eni = src[i].eni;
        q.src_subnet = src[i].subnet;
        q.src_ip = src[i].ip;
        q.eph_lo = src[i].eph_lo;
        q.eph_hi = src[i].eph_hi;
        for (size_t j = 0; j < nd; j++) {
            q.dst_eni = dst[j].eni;
            q.dst_ip = dst[j].ip;
            eval_trace(m, &q, &r);
            lua_pushboolean(L, r.ok);
            lua_rawseti(L, -3, (lua_Integer)j + 1);
            if (r.ok)
                lua_pushboolean(L, 0);
            else
                lua_pushstring(L, eval_code_name(r.code));
            lua_rawseti(L, -2, (lua_Integer)j + 1);
        }
        lua_rawseti(L, -3, (lua_Integer)i + 1);
        lua_rawseti(L, -3, (lua_Integer)i + 1);
    }
    return 2;
}

/* ---- who_can_reach: exact, on address intervals -------------------------------------- */

/* Interval arithmetic is modulo 2^128: the end of a prefix that reaches the top of the IPv6
 * space wraps to 0, which only adds a harmless point at 0. */
typedef struct { addr_t *v; size_t n, cap; } points;

static int add_point(points *p, addr_t x)
{
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 256;
        addr_t *nv = realloc(p->v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        p->v = nv;
        p->cap = ncap;
    }
    p->v[p->n++] = x;
    return 0;
}

static addr_t cidr_last(const cidr_t *c)
{
    return c->net | ~addr_mask(c->len);
}

static int add_cidr_points(points *p, const cidr_t *c)
{
    return add_point(p, c->net) | add_point(p, cidr_last(c) + 1);
}

static int addr_cmp(const void *a, const void *b)
{
    addr_t x = *(const addr_t *)a, y = *(const addr_t *)b;
    return (x > y) - (x < y);
}

/* Every address where some rule, route or subnet starts or stops applying: between two
 * consecutive points every source address is treated alike by the model. */
static int collect_points(const model *m, points *p)
{
    int err = 0;
    for (size_t i = 0; i < m->routes.n; i++) err |= add_cidr_points(p, &m->routes.v[i].dst);
    for (size_t i = 0; i < m->troutes.n; i++) err |= add_cidr_points(p, &m->troutes.v[i].dst);
    for (size_t i = 0; i < m->acl_rules.n; i++) {
        cidr_t c = model_rule_cidr(m, &m->acl_rules.v[i].cidr);
        err |= add_cidr_points(p, &c);
    }
    for (size_t i = 0; i < m->sg_rules.n; i++) {
        cidr_t c = model_rule_cidr(m, &m->sg_rules.v[i].cidr);
        if (m->sg_rules.v[i].ref_sg < 0)
            err |= add_cidr_points(p, &c);
    }
    for (size_t i = 0; i < m->subnet_cidrs.n; i++) err |= add_cidr_points(p, &m->subnet_cidrs.v[i].cidr);
    for (size_t i = 0; i < m->addrs.n; i++)
        err |= add_point(p, m->addrs.v[i].ip) | add_point(p, m->addrs.v[i].ip + 1);
    if (err)
        return -1;
    if (p->n > 1)
        qsort(p->v, p->n, sizeof *p->v, addr_cmp);
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (k == 0 || p->v[k - 1] != p->v[i])
            p->v[k++] = p->v[i];
    }
    p->n = k;
    return 0;
}

/* m:who_can_reach(dst_eni, dst_ip, proto, port, eph_lo, eph_hi)
 * -> array of {subnet, first, last} (0-based subnet index, addresses as core.reach.ip gives
 * them), merged; sources of the destination's family only. */
static int l_who_can_reach(lua_State *L)
{
    model *m = check_model(L, 1);
    eval_query q;
    q.dst_eni = index_in(L, 2, m->enis.n);
    q.dst_ip = ip_arg(L, 3);
    query_ports(L, 4, &q, 1);
    q.forward_only = 0;
    q.skip_src_sg = 1;
    q.collect_blockers = 0;
    points p = { 0 };
    if (collect_points(m, &p) != 0) {
        free(p.v);
        return luaL_error(L, "reach: out of memory");
    }
    lua_newtable(L);
    lua_Integer out = 0;
    eval_result r;
    int v4 = addr_is_v4(q.dst_ip);
    for (size_t sc = 0; sc < m->subnet_cidrs.n; sc++) {
        const subnet_cidr_t *c = &m->subnet_cidrs.v[sc];
        if (c->cidr.v4 != v4)
            continue;
        int32_t s = c->subnet;
        addr_t last_addr = cidr_last(&c->cidr), end = last_addr + 1;
        size_t lo = 0, hi = p.n;
        while (lo < hi) { /* first point >= the subnet's network */
            size_t mid = lo + (hi - lo) / 2;
            if (p.v[mid] < c->cidr.net) lo = mid + 1; else hi = mid;
        }
        int started = 0;
        addr_t run_start = 0;
        for (size_t i = lo; i < p.n && p.v[i] <= last_addr; i++) {
            addr_t first = p.v[i], next = i + 1 < p.n && p.v[i + 1] <= last_addr ? p.v[i + 1] : end;
            q.src_ip = first;
            q.src_subnet = s;
            q.src_eni = model_eni_at(m, c->vpc, q.src_ip);
            if (q.src_eni >= 0 && m->enis.v[q.src_eni].subnet != s)
                q.src_eni = -1;
            eval_trace(m, &q, &r);
            if (r.ok && !started) {
                started = 1;
                run_start = first;
            }
            if ((!r.ok || next == end) && started) {
                addr_t last = r.ok ? next - 1 : first - 1;
                lua_createtable(L, 3, 0);
                lua_pushinteger(L, (lua_Integer)s); lua_rawseti(L, -2, 1);
                push_addr(L, run_start); lua_rawseti(L, -2, 2);
                push_addr(L, last); lua_rawseti(L, -2, 3);
                lua_rawseti(L, -2, ++out);
                started = 0;
            }
        }
    }
    free(p.v);
    return 1;
}

static int l_lookup(lua_State *L)
{
    model *m = check_model(L, 1);
    const char *what = luaL_checkstring(L, 2);
    int32_t r;
    if (strcmp(what, "subnet") == 0)
        r = model_subnet_of(m, index_in(L, 3, m->vpcs.n), ip_arg(L, 4));
    else if (strcmp(what, "eni") == 0)
        r = model_eni_at(m, index_in(L, 3, m->vpcs.n), ip_arg(L, 4));
    else if (strcmp(what, "any_subnet") == 0)
        r = model_subnet_anywhere(m, ip_arg(L, 3));
    else
        return luaL_argerror(L, 2, "subnet, eni or any_subnet");
    if (r < 0)
        lua_pushnil(L);
    else
        lua_pushinteger(L, r);
    return 1;
}

static int l_counts(lua_State *L)
{
    model_ud *u = luaL_checkudata(L, 1, MODEL_MT);
    const model *m = &u->m;
    lua_createtable(L, 0, 10);
#define COUNT(name, vec) (lua_pushinteger(L, (lua_Integer)m->vec.n), lua_setfield(L, -2, name))
    COUNT("vpcs", vpcs); COUNT("subnets", subnets); COUNT("route_tables", rtbs); COUNT("routes", routes);
    COUNT("network_acls", acls); COUNT("network_acl_rules", acl_rules); COUNT("security_groups", sgs);
    COUNT("security_group_rules", sg_rules); COUNT("network_interfaces", enis);
    COUNT("transit_gateways", tgws); COUNT("tgw_attachments", atts); COUNT("tgw_route_tables", trtbs);
    COUNT("tgw_routes", troutes); COUNT("peering_connections", pcxs);
#undef COUNT
    return 1;
}

/* ---- address helpers ----------------------------------------------------------------- */

/* core.reach.ip(text) -> the address (an integer for IPv4, a 16-byte string for IPv6), or nil. */
static int l_ip(lua_State *L)
{
    addr_t ip;
    if (lua_type(L, 1) != LUA_TSTRING || !check_ip(L, 1, &ip))
        return luaL_pushfail(L), 1;
    push_addr(L, ip);
    return 1;
}

/* core.reach.cidr(text) -> network (as core.reach.ip), prefix length as written, "ipv4" or
 * "ipv6"; or nil. */
static int l_cidr(lua_State *L)
{
    cidr_t c;
    if (lua_type(L, 1) != LUA_TSTRING || !check_cidr(L, 1, &c))
        return luaL_pushfail(L), 1;
    push_addr(L, c.net);
    lua_pushinteger(L, cidr_text_len(&c));
    lua_pushstring(L, c.v4 ? "ipv4" : "ipv6");
    return 3;
}

static int l_ipstr(lua_State *L)
{
    char buf[ADDR_TEXT_MAX];
    cidr_format_ip(ip_arg(L, 1), buf);
    lua_pushstring(L, buf);
    return 1;
}

/* core.reach.cidrs(first, last) -> the smallest list of CIDRs (text) covering [first, last],
 * two addresses of one family as core.reach.ip gives them. */
static int l_cidrs(lua_State *L)
{
    addr_t first = ip_arg(L, 1), last = ip_arg(L, 2);
    int v4 = addr_is_v4(first);
    luaL_argcheck(L, addr_is_v4(last) == v4, 2, "addresses of one family expected");
    unsigned max_bits = v4 ? 32 : 128;
    lua_newtable(L);
    lua_Integer n = 0;
    while (first <= last) {
        unsigned bits = 0; /* the largest aligned block from `first` that ends by `last` */
        while (bits < max_bits) {
            unsigned b = bits + 1;
            addr_t span = b == 128 ? ~(addr_t)0 : ((addr_t)1 << b) - 1;
            if ((first & span) != 0 || last - first < span)
                break;
            bits = b;
        }
        char buf[ADDR_TEXT_MAX];
        cidr_format_ip(first, buf);
        lua_pushfstring(L, "%s/%d", buf, (int)(max_bits - bits));
        lua_rawseti(L, -2, ++n);
        addr_t next = bits == 128 ? 0 : first + ((addr_t)1 << bits);
        if (next == 0 || next > last || next <= first)
            break;
        first = next;
    }
    return 1;
}

/* core.reach.json_keys(text) -> {key = elements of an array value, or -1}, or nil, why: the
 * top-level members of a describe file, without decoding it (see reach/jsonkeys.h). */
static void put_key(void *ud, const char *key, size_t keylen, long count)
{
    lua_State *L = ud;
    lua_pushlstring(L, key, keylen);
    lua_pushinteger(L, count);
    lua_rawset(L, -3);
}

static int l_json_keys(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *why = NULL;
    lua_newtable(L);
    if (jsonkeys_scan(text, len, put_key, L, &why) != 0) {
        luaL_pushfail(L);
        lua_pushstring(L, why);
        return 2;
    }
    return 1;
}

static const luaL_Reg model_methods[] = {
    { "vpc", l_vpc }, { "subnet", l_subnet }, { "route_table", l_rtb }, { "main_route_table", l_main_rtb },
    { "route", l_route }, { "network_acl", l_acl }, { "acl_rule", l_acl_rule }, { "security_group", l_sg },
    { "sg_rule", l_sg_rule }, { "eni", l_eni }, { "subnet_cidr", l_subnet_cidr }, { "eni_ip", l_eni_ip }, { "tgw", l_tgw },
    { "tgw_attachment", l_att }, { "attachment_subnet", l_att_subnet }, { "tgw_route_table", l_trtb },
    { "tgw_route", l_troute }, { "peering", l_pcx }, { "finish", l_finish }, { "trace", l_trace }, { "trace_sources", l_trace_sources }, { "walk", l_walk },
    { "matrix", l_matrix }, { "who_can_reach", l_who_can_reach }, { "lookup", l_lookup },
    { "counts", l_counts }, { "component", l_comp }, { "rule", l_rule }, { "component_info", l_comp_info },
    { "rule_text", l_rule_text }, { "no_sgref_az", l_no_sgref_az }, { "close", model_destroy }, { NULL, NULL },
};

static const luaL_Reg funcs[] = {
    { "new", l_new }, { "ip", l_ip }, { "cidr", l_cidr }, { "ipstr", l_ipstr }, { "cidrs", l_cidrs }, { "query", l_query },
    { "json_keys", l_json_keys }, { NULL, NULL },
};

void reach_open(lua_State *L)
{
    core_handle_type(L, MODEL_MT, model_methods, model_destroy);
    luaL_getmetatable(L, MODEL_MT);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &model_mt_key);
    core_register(L, "reach", funcs);
    lua_getfield(L, -1, "reach");
    lua_pushinteger(L, RT_LOCAL); lua_setfield(L, -2, "RT_LOCAL");
    lua_pushinteger(L, RT_TGW); lua_setfield(L, -2, "RT_TGW");
    lua_pushinteger(L, RT_PCX); lua_setfield(L, -2, "RT_PCX");
    lua_pushinteger(L, RT_OTHER); lua_setfield(L, -2, "RT_OTHER");
    lua_pushinteger(L, (lua_Integer)sizeof(hop_t)); lua_setfield(L, -2, "HOP_SIZE");
    /* CODES[code + 1]: the explanation codes' names, for the code each blocking hop carries */
    lua_createtable(L, EV_CODE_COUNT, 0);
    for (int c = 0; c < EV_CODE_COUNT; c++) {
        lua_pushstring(L, eval_code_name(c));
        lua_rawseti(L, -2, c + 1);
    }
    lua_setfield(L, -2, "CODES");
    lua_pop(L, 1);
}
