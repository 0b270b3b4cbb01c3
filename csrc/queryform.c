/* queryform: a request's parameters checked and form-encoded by a compiled plan (see queryform.h).
 *
 * Both walks read the Lua tables in place and give up (return nil) on the first thing they are
 * not sure of; the Lua code they stand in for then runs, so every error message and every rare
 * case stays where it is written once. */
#include "queryform.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define PLAN_MT "awsnet.queryform.plan"
#define MAX_NODES 65536
#define MAX_DEPTH 100
#define MAX_KEY 2048

enum { K_STRUCT, K_LIST, K_STRING, K_INTEGER, K_FLOAT, K_BOOLEAN, K_BLOB, K_ANY, K_OTHER };
static const char *const KINDS[] = { "structure", "list", "string", "integer", "float", "boolean", "blob", "any",
                                     "other", NULL };

typedef struct {
    int name;      /* index of the member's name in the plan's names table */
    char *wire;    /* percent-encoded wire name, or NULL (a plan for checking only) */
    size_t wlen;
    uint32_t node;
    unsigned char required, idempotent;
} member;

typedef struct {
    int kind;
    uint32_t first, count; /* structure: members[first .. first + count) */
    int order;             /* structure: index of its key order in the orders table, 0 for none */
    uint32_t item;         /* list */
    unsigned char ec2, flat;
    char *inner; /* list: the member's encoded locationName, or NULL */
    size_t ilen;
} qnode;

typedef struct {
    qnode *nodes;
    uint32_t n;
    member *members;
    uint32_t nm;
} plan;

/* Uservalue 1 of a plan: its Lua values, by these keys. */
#define UV_NULL 1
#define UV_ARRAY_MT 2
#define UV_WITH_KEYS 3
#define UV_NAMES 4
#define UV_ORDERS 5

static void plan_free(plan *p)
{
    if (p->nodes) {
        for (uint32_t i = 0; i < p->n; i++) free(p->nodes[i].inner);
        free(p->nodes);
        p->nodes = NULL;
    }
    if (p->members) {
        for (uint32_t i = 0; i < p->nm; i++) free(p->members[i].wire);
        free(p->members);
        p->members = NULL;
    }
}

static int plan_gc(lua_State *L)
{
    plan_free(luaL_checkudata(L, 1, PLAN_MT));
    return 0;
}

/* ---- compile ---------------------------------------------------------------------------------- */

/* A copy of optional string field `key` of the table on top, NULL when absent. */
static char *opt_string(lua_State *L, const char *key, size_t *len)
{
    lua_getfield(L, -1, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        *len = 0;
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "queryform plan: %s must be a string", key);
    const char *s = lua_tolstring(L, -1, len);
    if (*len == 0 || *len >= MAX_KEY) luaL_error(L, "queryform plan: bad %s", key);
    char *copy = malloc(*len + 1);
    if (!copy) luaL_error(L, "out of memory");
    memcpy(copy, s, *len + 1);
    lua_pop(L, 1);
    return copy;
}

static int opt_bool(lua_State *L, const char *key)
{
    lua_getfield(L, -1, key);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static uint32_t node_index(lua_State *L, const char *key, uint32_t n)
{
    lua_getfield(L, -1, key);
    int ok;
    lua_Integer i = lua_tointegerx(L, -1, &ok);
    if (!ok || i < 1 || (lua_Unsigned)i > n) luaL_error(L, "queryform plan: bad node index %s", key);
    lua_pop(L, 1);
    return (uint32_t)(i - 1);
}

/* The members of the structure description on top; `names` and `orders` are the uservalue's. */
static void compile_members(lua_State *L, plan *p, qnode *nd, int names)
{
    lua_getfield(L, -1, "members");
    luaL_checktype(L, -1, LUA_TTABLE);
    nd->first = p->nm;
    nd->count = (uint32_t)lua_rawlen(L, -1);
    for (uint32_t k = 0; k < nd->count; k++) {
        lua_rawgeti(L, -1, (lua_Integer)k + 1);
        luaL_checktype(L, -1, LUA_TTABLE);
        member *m = &p->members[p->nm++];
        lua_getfield(L, -1, "name");
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "queryform plan: a member name must be a string");
        m->name = (int)lua_rawlen(L, names) + 1;
        lua_rawseti(L, names, m->name);
        m->node = node_index(L, "node", p->n);
        m->wire = opt_string(L, "wire", &m->wlen);
        m->required = (unsigned char)opt_bool(L, "required");
        m->idempotent = (unsigned char)opt_bool(L, "idempotent");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static int l_compile(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    plan *p = lua_newuserdatauv(L, sizeof *p, 1); /* 2 */
    memset(p, 0, sizeof *p);
    luaL_setmetatable(L, PLAN_MT);
    lua_createtable(L, 5, 0); /* 3: the uservalue */
    lua_getfield(L, 1, "null");
    lua_rawseti(L, 3, UV_NULL);
    lua_getfield(L, 1, "array_mt");
    luaL_argcheck(L, lua_istable(L, -1), 1, "array_mt must be a table");
    lua_rawseti(L, 3, UV_ARRAY_MT);
    lua_getfield(L, 1, "with_keys");
    luaL_argcheck(L, lua_isfunction(L, -1), 1, "with_keys must be a function");
    lua_rawseti(L, 3, UV_WITH_KEYS);
    lua_newtable(L);
    lua_rawseti(L, 3, UV_NAMES);
    lua_newtable(L);
    lua_rawseti(L, 3, UV_ORDERS);
    lua_pushvalue(L, 3);
    lua_setiuservalue(L, 2, 1);
    lua_rawgeti(L, 3, UV_NAMES);  /* 4 */
    lua_rawgeti(L, 3, UV_ORDERS); /* 5 */
    lua_getfield(L, 1, "nodes");  /* 6 */
    luaL_argcheck(L, lua_istable(L, 6), 1, "nodes must be a table");
    lua_Unsigned n = lua_rawlen(L, 6);
    luaL_argcheck(L, n >= 1 && n <= MAX_NODES, 1, "between 1 and 65536 nodes expected");
    /* the members of all structures, counted first: one array for them all */
    size_t nm = 0;
    for (lua_Unsigned i = 1; i <= n; i++) {
        lua_rawgeti(L, 6, (lua_Integer)i);
        luaL_checktype(L, -1, LUA_TTABLE);
        if (lua_getfield(L, -1, "members") == LUA_TTABLE) nm += lua_rawlen(L, -1);
        lua_pop(L, 2);
    }
    p->nodes = calloc(n, sizeof *p->nodes);
    p->members = calloc(nm ? nm : 1, sizeof *p->members);
    if (!p->nodes || !p->members) return luaL_error(L, "out of memory");
    p->n = (uint32_t)n;
    for (uint32_t i = 0; i < p->n; i++) {
        lua_rawgeti(L, 6, (lua_Integer)i + 1);
        qnode *nd = &p->nodes[i];
        lua_getfield(L, -1, "kind");
        nd->kind = luaL_checkoption(L, -1, NULL, KINDS);
        lua_pop(L, 1);
        if (nd->kind == K_STRUCT) {
            compile_members(L, p, nd, 4);
            if (lua_getfield(L, -1, "order") == LUA_TTABLE) {
                nd->order = (int)lua_rawlen(L, 5) + 1;
                lua_rawseti(L, 5, nd->order);
            } else {
                lua_pop(L, 1);
            }
        } else if (nd->kind == K_LIST) {
            nd->item = node_index(L, "item", p->n);
            nd->ec2 = (unsigned char)opt_bool(L, "ec2");
            nd->flat = (unsigned char)opt_bool(L, "flat");
            nd->inner = opt_string(L, "inner", &nd->ilen);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    return 1;
}

/* ---- walks -------------------------------------------------------------------------------------- */

typedef struct {
    lua_State *L;
    const plan *p;
    int null, array_mt, with_keys, names, orders; /* stack slots of the uservalue's values */
    int buf;                                      /* encode: stack slot of the output's userdata */
    char *b;
    size_t blen, bcap;
    char key[MAX_KEY];
} walk;

/* Pushes the plan's Lua values from stack slot `plan_idx` onto the stack. */
static void walk_init(lua_State *L, walk *w, const plan *p, int plan_idx)
{
    w->L = L;
    w->p = p;
    lua_getiuservalue(L, plan_idx, 1);
    int uv = lua_gettop(L);
    lua_rawgeti(L, uv, UV_NULL);
    w->null = lua_gettop(L);
    lua_rawgeti(L, uv, UV_ARRAY_MT);
    w->array_mt = lua_gettop(L);
    lua_rawgeti(L, uv, UV_WITH_KEYS);
    w->with_keys = lua_gettop(L);
    lua_rawgeti(L, uv, UV_NAMES);
    w->names = lua_gettop(L);
    lua_rawgeti(L, uv, UV_ORDERS);
    w->orders = lua_gettop(L);
}

/* The number of keys of the table at `idx`. */
static lua_Unsigned count_keys(lua_State *L, int idx)
{
    lua_Unsigned n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        n++;
        lua_pop(L, 1);
    }
    return n;
}

static int check_value(walk *w, uint32_t ni, int idx, int depth);

/* A structure's copy: each key a member name, required and idempotent members present. */
static int check_struct(walk *w, const qnode *nd, int idx, int depth)
{
    lua_State *L = w->L;
    if (lua_type(L, idx) != LUA_TTABLE) return 0;
    if (lua_getmetatable(L, idx)) { /* pairs would ask __pairs */
        lua_pop(L, 1);
        return 0;
    }
    lua_Unsigned total = count_keys(L, idx), found = 0;
    int top = lua_gettop(L);
    lua_createtable(L, 0, (int)(total < nd->count ? total : nd->count));
    int out = top + 1;
    for (uint32_t k = 0; k < nd->count; k++) {
        const member *m = &w->p->members[nd->first + k];
        lua_rawgeti(L, w->names, m->name);
        lua_pushvalue(L, -1);
        int t = lua_rawget(L, idx);
        if (t != LUA_TNIL) found++;
        if (t == LUA_TNIL || lua_rawequal(L, -1, w->null)) {
            if (m->required || m->idempotent) break;
            lua_pop(L, 2);
            continue;
        }
        if (!check_value(w, m->node, lua_gettop(L), depth + 1)) break;
        lua_remove(L, -2);
        lua_rawset(L, out);
    }
    if (lua_gettop(L) != out || found != total) { /* gave up, or a key that is no member */
        lua_settop(L, top);
        return 0;
    }
    if (nd->order) {
        lua_pushvalue(L, w->with_keys);
        lua_pushvalue(L, out);
        lua_rawgeti(L, w->orders, nd->order);
        lua_call(L, 2, 0);
    }
    return 1;
}

/* A list's copy, marked with array_mt: a sequence, or a table marked so already. */
static int check_list(walk *w, const qnode *nd, int idx, int depth)
{
    lua_State *L = w->L;
    if (lua_type(L, idx) != LUA_TTABLE) return 0;
    lua_Unsigned n = 0;
    if (lua_getmetatable(L, idx)) {
        int marked = lua_rawequal(L, -1, w->array_mt);
        lua_pop(L, 1);
        if (!marked) return 0;
    } else {
        n = lua_rawlen(L, idx);
        if (count_keys(L, idx) != n) return 0;
    }
    int top = lua_gettop(L);
    lua_createtable(L, n < 1024 ? (int)n : 1024, 0);
    int out = top + 1;
    for (lua_Integer i = 1;; i++) {
        if (lua_rawgeti(L, idx, i) == LUA_TNIL) {
            lua_pop(L, 1);
            break;
        }
        if (!check_value(w, nd->item, lua_gettop(L), depth + 1)) {
            lua_settop(L, top);
            return 0;
        }
        lua_remove(L, -2);
        lua_rawseti(L, out, i);
    }
    lua_pushvalue(L, w->array_mt);
    lua_setmetatable(L, out);
    return 1;
}

/* Pushes the checked copy of the value at `idx` as node `ni`; 0 (stack unchanged) to give up. */
static int check_value(walk *w, uint32_t ni, int idx, int depth)
{
    lua_State *L = w->L;
    const qnode *nd = &w->p->nodes[ni];
    if (depth > MAX_DEPTH || !lua_checkstack(L, 8)) return 0;
    switch (nd->kind) {
    case K_STRUCT:
        return check_struct(w, nd, idx, depth);
    case K_LIST:
        return check_list(w, nd, idx, depth);
    case K_STRING:
    case K_BLOB:
        if (lua_type(L, idx) != LUA_TSTRING) return 0;
        break;
    case K_INTEGER: {
        int ok;
        if (lua_type(L, idx) != LUA_TNUMBER) return 0;
        lua_Integer i = lua_tointegerx(L, idx, &ok);
        if (!ok) return 0;
        lua_pushinteger(L, i);
        return 1;
    }
    case K_FLOAT:
        if (lua_type(L, idx) != LUA_TNUMBER) return 0;
        break;
    case K_BOOLEAN:
        if (lua_type(L, idx) != LUA_TBOOLEAN) return 0;
        break;
    case K_ANY:
        break;
    default:
        return 0;
    }
    lua_pushvalue(L, idx);
    return 1;
}

static int l_check(lua_State *L)
{
    const plan *p = luaL_checkudata(L, 1, PLAN_MT);
    luaL_checkany(L, 2);
    lua_settop(L, 2);
    walk w;
    walk_init(L, &w, p, 1);
    if (!check_value(&w, 0, 2, 0)) lua_pushnil(L);
    return 1;
}

/* The output grows in a userdata at a fixed stack slot, replaced by a larger one when full: the
 * walk keeps tables on the stack, which a luaL_Buffer does not allow. */
static void reserve(walk *w, size_t more)
{
    if (w->blen + more <= w->bcap) return;
    size_t cap = w->bcap * 2;
    while (cap < w->blen + more) cap *= 2;
    char *nb = lua_newuserdatauv(w->L, cap, 0);
    memcpy(nb, w->b, w->blen);
    lua_replace(w->L, w->buf);
    w->b = nb;
    w->bcap = cap;
}

static void put(walk *w, const char *s, size_t n)
{
    reserve(w, n);
    memcpy(w->b + w->blen, s, n);
    w->blen += n;
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == '~';
}

/* "&key=value", the value percent-encoded. */
static void put_pair(walk *w, size_t klen, const char *v, size_t n)
{
    static const char HEX[] = "0123456789ABCDEF";
    reserve(w, klen + 2 + 3 * n);
    char *o = w->b + w->blen;
    *o++ = '&';
    memcpy(o, w->key, klen);
    o += klen;
    *o++ = '=';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (unreserved(c)) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = HEX[c >> 4];
            *o++ = HEX[c & 15];
        }
    }
    w->blen = (size_t)(o - w->b);
}

/* Appends ".<i>" to the key of length `klen`; the new length, or 0 when it does not fit. */
static size_t key_index(walk *w, size_t klen, lua_Integer i)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, ".%lld", (long long)i);
    if (n < 0 || klen + (size_t)n >= MAX_KEY) return 0;
    memcpy(w->key + klen, digits, (size_t)n);
    return klen + (size_t)n;
}

static int encode_value(walk *w, uint32_t ni, int idx, size_t klen, size_t keep, int depth);

static int encode_struct(walk *w, const qnode *nd, int idx, size_t klen, int depth)
{
    lua_State *L = w->L;
    if (lua_type(L, idx) != LUA_TTABLE) return 0;
    int top = lua_gettop(L);
    for (uint32_t k = 0; k < nd->count; k++) {
        const member *m = &w->p->members[nd->first + k];
        lua_rawgeti(L, w->names, m->name);
        int t = lua_rawget(L, idx);
        if (t == LUA_TNIL || lua_rawequal(L, -1, w->null)) {
            lua_pop(L, 1);
            continue;
        }
        if (!m->wire) return 0;
        size_t n = klen ? klen + 1 + m->wlen : m->wlen;
        if (n >= MAX_KEY) return 0;
        if (klen) w->key[klen] = '.';
        memcpy(w->key + (klen ? klen + 1 : 0), m->wire, m->wlen);
        if (!encode_value(w, m->node, lua_gettop(L), n, klen, depth + 1)) return 0;
        lua_settop(L, top);
    }
    return 1;
}

/* ec2: Name.N, an empty list left out; query: Name.member.N (or Name.<inner>.N; flattened
 * Name.N, or <inner>.N in place of the last part), an empty list "Name=". */
static int encode_list(walk *w, const qnode *nd, int idx, size_t klen, size_t keep, int depth)
{
    lua_State *L = w->L;
    if (lua_type(L, idx) != LUA_TTABLE) return 0;
    lua_Unsigned n = lua_rawlen(L, idx);
    size_t lkey = klen;
    if (!nd->ec2) {
        if (n == 0) {
            put_pair(w, klen, "", 0);
            return 1;
        }
        if (nd->flat) {
            if (nd->inner) {
                size_t start = 0;
                for (size_t i = klen; i > 0; i--) {
                    if (w->key[i - 1] == '.') {
                        start = i;
                        break;
                    }
                }
                if (start < keep || start + nd->ilen >= MAX_KEY) return 0; /* would change the parent's key */
                memcpy(w->key + start, nd->inner, nd->ilen);
                lkey = start + nd->ilen;
            }
        } else {
            const char *inner = nd->inner ? nd->inner : "member";
            size_t ilen = nd->inner ? nd->ilen : 6;
            if (klen + 1 + ilen >= MAX_KEY) return 0;
            w->key[klen] = '.';
            memcpy(w->key + klen + 1, inner, ilen);
            lkey = klen + 1 + ilen;
        }
    }
    int top = lua_gettop(L);
    for (lua_Unsigned i = 1; i <= n; i++) {
        size_t ikey = key_index(w, lkey, (lua_Integer)i);
        if (!ikey) return 0;
        if (lua_rawgeti(L, idx, (lua_Integer)i) == LUA_TNIL) return 0;
        if (!encode_value(w, nd->item, top + 1, ikey, lkey, depth + 1)) return 0;
        lua_settop(L, top);
    }
    return 1;
}

static int encode_value(walk *w, uint32_t ni, int idx, size_t klen, size_t keep, int depth)
{
    lua_State *L = w->L;
    const qnode *nd = &w->p->nodes[ni];
    if (depth > MAX_DEPTH || !lua_checkstack(L, 8)) return 0;
    int t = lua_type(L, idx);
    switch (nd->kind) {
    case K_STRUCT:
        return encode_struct(w, nd, idx, klen, depth);
    case K_LIST:
        return encode_list(w, nd, idx, klen, keep, depth);
    case K_BOOLEAN:
        if (t != LUA_TBOOLEAN) return 0;
        if (lua_toboolean(L, idx))
            put_pair(w, klen, "true", 4);
        else
            put_pair(w, klen, "false", 5);
        return 1;
    case K_STRING:
        if (t == LUA_TSTRING) {
            size_t n;
            const char *s = lua_tolstring(L, idx, &n);
            put_pair(w, klen, s, n);
            return 1;
        }
        /* a number as scalar.number_text writes it */
        /* fall through */
    case K_INTEGER:
    case K_FLOAT:
        if (t == LUA_TNUMBER && lua_isinteger(L, idx)) {
            char digits[24];
            int n = snprintf(digits, sizeof digits, "%lld", (long long)lua_tointeger(L, idx));
            put_pair(w, klen, digits, (size_t)n);
            return 1;
        }
        return 0;
    default:
        return 0;
    }
}

static int l_encode(lua_State *L)
{
    const plan *p = luaL_checkudata(L, 1, PLAN_MT);
    luaL_checkany(L, 2);
    size_t hlen;
    const char *head = luaL_checklstring(L, 3, &hlen);
    lua_settop(L, 3);
    walk w;
    walk_init(L, &w, p, 1);
    w.bcap = 4096;
    while (w.bcap < hlen + 1) w.bcap *= 2;
    w.b = lua_newuserdatauv(L, w.bcap, 0);
    w.buf = lua_gettop(L);
    w.blen = 0;
    put(&w, head, hlen);
    if (!encode_value(&w, 0, 2, 0, 0, 0)) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, w.b, w.blen);
    return 1;
}

void queryform_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "compile", l_compile },
        { "check", l_check },
        { "encode", l_encode },
        { NULL, NULL },
    };
    core_handle_type(L, PLAN_MT, NULL, plan_gc);
    core_register(L, "queryform", funcs);
}
