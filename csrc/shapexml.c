/* shapexml: shape-directed decoding of query/ec2 answers (see shapexml.h).
 *
 * Phase one runs inside XML_Parse: the callbacks walk the compiled plan alongside the elements and
 * append operations (make a table, push a scalar's text, store into the parent) to a C buffer
 * owned by a userdata with __gc; elements no member reads are skipped there. Phase two, after
 * XML_Parse has returned, runs the operations on the Lua stack. A Lua error (out of memory, the
 * timestamp function) can then only unwind through our own code. */
#include <expat.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "shapexml.h"

#define PLAN_MT "awsnet.shapexml.plan"
#define WORK_MT "awsnet.shapexml.work"
#define MAX_DEPTH 200
#define MAX_NODES 65536
#define MAX_MEMBERS 4096
#define MAX_NAME 1024
#define MAX_DOC ((size_t)1 << 30)

enum { T_STRUCT, T_LIST, T_MAP, T_STRING, T_INTEGER, T_BOOLEAN, T_FLOAT, T_TIMESTAMP, T_BLOB };

typedef struct {
    char *wire;
    size_t wire_n;
    uint32_t name; /* index in the plan's names table */
    uint32_t node;
    int flat;
} pmember;

typedef struct {
    int type;
    uint32_t nmembers;
    pmember *members; /* structure */
    uint32_t item;    /* list */
    uint32_t key, value;
    char *kname, *vname; /* map */
} pnode;

typedef struct {
    pnode *nodes;
    uint32_t n;
    char *wrapper; /* query: the element under the root that holds the result */
} plan;

/* ---- the plan ------------------------------------------------------------------------------ */

static void plan_free(plan *p)
{
    if (!p->nodes) return;
    for (uint32_t i = 0; i < p->n; i++) {
        pnode *nd = &p->nodes[i];
        for (uint32_t k = 0; k < nd->nmembers; k++) free(nd->members[k].wire);
        free(nd->members);
        free(nd->kname);
        free(nd->vname);
    }
    free(p->nodes);
    free(p->wrapper);
    p->nodes = NULL;
    p->wrapper = NULL;
    p->n = 0;
}

static int plan_gc(lua_State *L)
{
    plan_free(luaL_checkudata(L, 1, PLAN_MT));
    return 0;
}

static const char *const TYPE_NAMES[] = { "structure", "list", "map", "string", "integer", "boolean", "float",
                                          "timestamp", "blob", NULL };

/* A copy of string field `key` of the table on top (NULL when absent); raises when too long. */
static char *field_string(lua_State *L, const char *key, int required)
{
    size_t n;
    lua_getfield(L, -1, key);
    if (lua_isnil(L, -1) && !required) {
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "shapexml plan: %s must be a string", key);
    const char *s = lua_tolstring(L, -1, &n);
    if (n == 0 || n > MAX_NAME || strlen(s) != n) luaL_error(L, "shapexml plan: bad %s", key);
    char *copy = malloc(n + 1);
    if (!copy) luaL_error(L, "out of memory");
    memcpy(copy, s, n + 1);
    lua_pop(L, 1);
    return copy;
}

static uint32_t field_index(lua_State *L, const char *key, uint32_t n)
{
    lua_getfield(L, -1, key);
    int ok;
    lua_Integer i = lua_tointegerx(L, -1, &ok);
    if (!ok || i < 1 || (lua_Unsigned)i > n) luaL_error(L, "shapexml plan: %s must be a node index", key);
    lua_pop(L, 1);
    return (uint32_t)(i - 1);
}

/* Reads the structure's members of the node table on top; member names go to the names table
 * at `names`. */
static void compile_members(lua_State *L, plan *p, pnode *nd, int names)
{
    lua_getfield(L, -1, "members");
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_Unsigned n = lua_rawlen(L, -1);
    if (n > MAX_MEMBERS) luaL_error(L, "shapexml plan: too many members");
    nd->members = calloc(n ? n : 1, sizeof *nd->members);
    if (!nd->members) luaL_error(L, "out of memory");
    for (lua_Unsigned k = 0; k < n; k++) {
        lua_rawgeti(L, -1, (lua_Integer)k + 1);
        luaL_checktype(L, -1, LUA_TTABLE);
        pmember *m = &nd->members[k];
        nd->nmembers = (uint32_t)k + 1; /* freed by plan_free even when a later field raises */
        m->wire = field_string(L, "wire", 1);
        m->wire_n = strlen(m->wire);
        m->node = field_index(L, "node", p->n);
        lua_getfield(L, -1, "flat");
        m->flat = lua_toboolean(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, -1, "name");
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "shapexml plan: member name must be a string");
        m->name = (uint32_t)lua_rawlen(L, names) + 1;
        lua_rawseti(L, names, m->name);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Checks what can only be checked once every node is read: flattened members are lists or maps,
 * map keys are strings, the root is a structure. */
static void check_plan(lua_State *L, const plan *p)
{
    if (p->nodes[0].type != T_STRUCT) luaL_error(L, "shapexml plan: the root must be a structure");
    for (uint32_t i = 0; i < p->n; i++) {
        const pnode *nd = &p->nodes[i];
        for (uint32_t k = 0; k < nd->nmembers; k++) {
            int t = p->nodes[nd->members[k].node].type;
            if (nd->members[k].flat && t != T_LIST && t != T_MAP)
                luaL_error(L, "shapexml plan: only lists and maps are flattened");
        }
        if (nd->type == T_MAP && p->nodes[nd->key].type != T_STRING)
            luaL_error(L, "shapexml plan: map keys must be strings");
    }
}

static int l_compile(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    plan *p = lua_newuserdatauv(L, sizeof *p, 2); /* 2 */
    memset(p, 0, sizeof *p);
    luaL_setmetatable(L, PLAN_MT);
    lua_newtable(L); /* 3: names */
    lua_getfield(L, 1, "array_mt");
    luaL_argcheck(L, lua_istable(L, -1), 1, "array_mt must be a table");
    lua_setiuservalue(L, 2, 2);
    lua_getfield(L, 1, "wrapper");
    if (!lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushvalue(L, 1);
        p->wrapper = field_string(L, "wrapper", 1);
    }
    lua_settop(L, 3);
    lua_getfield(L, 1, "nodes"); /* 4 */
    luaL_argcheck(L, lua_istable(L, 4), 1, "nodes must be a table");
    lua_Unsigned n = lua_rawlen(L, 4);
    luaL_argcheck(L, n >= 1 && n <= MAX_NODES, 1, "between 1 and 65536 nodes expected");
    p->nodes = calloc(n, sizeof *p->nodes);
    if (!p->nodes) return luaL_error(L, "out of memory");
    p->n = (uint32_t)n;
    for (uint32_t i = 0; i < p->n; i++) {
        lua_rawgeti(L, 4, (lua_Integer)i + 1);
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_getfield(L, -1, "type");
        pnode *nd = &p->nodes[i];
        nd->type = luaL_checkoption(L, -1, NULL, TYPE_NAMES);
        lua_pop(L, 1);
        if (nd->type == T_STRUCT) {
            compile_members(L, p, nd, 3);
        } else if (nd->type == T_LIST) {
            nd->item = field_index(L, "item", p->n);
        } else if (nd->type == T_MAP) {
            nd->key = field_index(L, "key", p->n);
            nd->value = field_index(L, "value", p->n);
            nd->kname = field_string(L, "kname", 1);
            nd->vname = field_string(L, "vname", 1);
        }
        lua_pop(L, 1);
    }
    check_plan(L, p);
    lua_pushvalue(L, 3);
    lua_setiuservalue(L, 2, 1);
    lua_settop(L, 2);
    return 1;
}

/* ---- phase one: expat callbacks append operations -------------------------------------------- */

enum {
    OP_STRUCT = 1, /* push a new table */
    OP_LIST,       /* push a new array (array_mt) */
    OP_MAP,        /* push a new table */
    OP_ENTRY,      /* push nil, nil: a map entry's key and value */
    OP_SCALAR,     /* type byte, u32 length, text: push the value */
    OP_SET,        /* u32 name: parent[name] = pop */
    OP_SETI,       /* u32 index: parent[index] = pop */
    OP_FLAT,       /* u32 name, u32 index: (parent[name] or a new array)[index] = pop */
    OP_KEY,        /* the entry's key = pop */
    OP_VAL,        /* the entry's value = pop */
    OP_ENTRY_END,  /* map, key, value: map[key] = value when key is set */
    OP_FLAT_ENTRY, /* u32 name: as OP_ENTRY_END into parent[name] (or a new table) */
};

enum { F_STRUCT, F_LIST, F_MAP, F_ENTRY, F_SCALAR, F_WRAPPER };

typedef struct {
    uint8_t kind;
    uint8_t store;   /* operation at the end, 0 for the root */
    uint32_t arg, arg2;
    const pnode *node;
    size_t counters; /* structure: its counters' offset; list: items so far */
    size_t text_at;  /* scalar: offset of its length field */
} frame;

typedef struct {
    char *p;
    size_t n, cap;
    uint32_t *ctr; /* per structure on the path, one counter per member: elements seen */
    size_t nctr, ctrcap;
    frame frames[MAX_DEPTH + 1];
    int nframes;
    int ignore;      /* depth inside an element no member reads */
    int depth;       /* element depth */
    int found;       /* query: the wrapper was found */
    const plan *pl;
    const char *error;
    XML_Parser parser;
} work;

static int work_gc(lua_State *L)
{
    work *w = luaL_checkudata(L, 1, WORK_MT);
    free(w->p);
    free(w->ctr);
    w->p = NULL;
    w->ctr = NULL;
    w->n = w->cap = w->nctr = w->ctrcap = 0;
    return 0;
}

static void fail(work *w, const char *why)
{
    if (!w->error) w->error = why;
    XML_StopParser(w->parser, XML_FALSE);
}

static int reserve(work *w, size_t more)
{
    if (more > MAX_DOC * 4 || w->n > MAX_DOC * 4) return 0;
    if (w->n + more <= w->cap) return 1;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->n + more) cap *= 2;
    char *p = realloc(w->p, cap);
    if (!p) return 0;
    w->p = p;
    w->cap = cap;
    return 1;
}

static int emit(work *w, uint8_t op, int nargs, uint32_t a, uint32_t b)
{
    if (!reserve(w, 1 + 2 * sizeof(uint32_t))) return 0;
    w->p[w->n++] = (char)op;
    if (nargs > 0) {
        memcpy(w->p + w->n, &a, sizeof a);
        w->n += sizeof a;
    }
    if (nargs > 1) {
        memcpy(w->p + w->n, &b, sizeof b);
        w->n += sizeof b;
    }
    return 1;
}

static const char *local_name(const char *name)
{
    const char *colon = strchr(name, ':');
    return colon ? colon + 1 : name;
}

/* Starts reading a value of `node` at the current element; `store` is the operation that puts it
 * into its parent at the element's end. */
static void begin(work *w, const pnode *node, uint8_t store, uint32_t arg, uint32_t arg2)
{
    if (w->nframes >= MAX_DEPTH) {
        fail(w, "elements nested too deeply");
        return;
    }
    frame *f = &w->frames[w->nframes];
    *f = (frame){ 0, store, arg, arg2, node, 0, 0 };
    int ok = 1;
    switch (node->type) {
    case T_STRUCT:
        f->kind = F_STRUCT;
        f->counters = w->nctr;
        if (node->nmembers > w->ctrcap - w->nctr) {
            size_t cap = w->ctrcap ? w->ctrcap * 2 : 256;
            while (cap - w->nctr < node->nmembers) cap *= 2;
            uint32_t *c = realloc(w->ctr, cap * sizeof *c);
            if (!c) {
                fail(w, "out of memory");
                return;
            }
            w->ctr = c;
            w->ctrcap = cap;
        }
        if (node->nmembers) memset(w->ctr + w->nctr, 0, node->nmembers * sizeof *w->ctr);
        w->nctr += node->nmembers;
        ok = emit(w, OP_STRUCT, 0, 0, 0);
        break;
    case T_LIST:
        f->kind = F_LIST;
        ok = emit(w, OP_LIST, 0, 0, 0);
        break;
    case T_MAP:
        f->kind = F_MAP;
        ok = emit(w, OP_MAP, 0, 0, 0);
        break;
    default:
        f->kind = F_SCALAR;
        ok = reserve(w, 2 + sizeof(uint32_t));
        if (ok) {
            w->p[w->n++] = OP_SCALAR;
            w->p[w->n++] = (char)node->type;
            f->text_at = w->n;
            uint32_t zero = 0;
            memcpy(w->p + w->n, &zero, sizeof zero);
            w->n += sizeof zero;
        }
    }
    if (!ok) {
        fail(w, "out of memory");
        return;
    }
    w->nframes++;
}

static void begin_entry(work *w, const pnode *map, uint8_t store, uint32_t arg)
{
    if (w->nframes >= MAX_DEPTH) {
        fail(w, "elements nested too deeply");
        return;
    }
    if (!emit(w, OP_ENTRY, 0, 0, 0)) {
        fail(w, "out of memory");
        return;
    }
    w->frames[w->nframes++] = (frame){ F_ENTRY, store, arg, 0, map, 0, 0 };
}

/* A child element of a structure: the member it is, if any. */
static void struct_child(work *w, frame *f, const char *lname)
{
    const pnode *nd = f->node;
    size_t n = strlen(lname);
    for (uint32_t k = 0; k < nd->nmembers; k++) {
        const pmember *m = &nd->members[k];
        if (m->wire_n != n || memcmp(m->wire, lname, n) != 0) continue;
        const pnode *mn = &w->pl->nodes[m->node];
        uint32_t *seen = &w->ctr[f->counters + k];
        if (m->flat && mn->type == T_LIST) {
            if (*seen == UINT32_MAX) break;
            begin(w, &w->pl->nodes[mn->item], OP_FLAT, m->name, ++*seen);
        } else if (m->flat) {
            *seen = 1;
            begin_entry(w, mn, OP_FLAT_ENTRY, m->name);
        } else if (mn->type == T_STRUCT || mn->type == T_LIST || mn->type == T_MAP) {
            if (*seen) break; /* a repeat: the first one counts */
            *seen = 1;
            begin(w, mn, OP_SET, m->name, 0);
        } else {
            begin(w, mn, OP_SET, m->name, 0); /* a repeated scalar: the last one counts */
        }
        return;
    }
    w->ignore = 1;
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    work *w = ud;
    (void)attrs;
    if (w->error) return;
    if (++w->depth > MAX_DEPTH) {
        fail(w, "elements nested too deeply");
        return;
    }
    if (w->ignore) {
        w->ignore++;
        return;
    }
    if (w->nframes == 0) { /* the root element */
        if (w->pl->wrapper) {
            w->frames[w->nframes++] = (frame){ F_WRAPPER, 0, 0, 0, NULL, 0, 0 };
        } else {
            w->found = 1;
            begin(w, &w->pl->nodes[0], 0, 0, 0);
        }
        return;
    }
    frame *f = &w->frames[w->nframes - 1];
    const char *lname = local_name(name);
    switch (f->kind) {
    case F_WRAPPER:
        if (!w->found && (strcmp(name, w->pl->wrapper) == 0 || strcmp(lname, w->pl->wrapper) == 0)) {
            w->found = 1;
            begin(w, &w->pl->nodes[0], 0, 0, 0);
        } else {
            w->ignore = 1;
        }
        break;
    case F_STRUCT:
        struct_child(w, f, lname);
        break;
    case F_LIST: /* every child is an item */
        if (f->counters >= UINT32_MAX) {
            fail(w, "too many items");
            return;
        }
        begin(w, &w->pl->nodes[f->node->item], OP_SETI, (uint32_t)++f->counters, 0);
        break;
    case F_MAP: /* every child is an entry */
        begin_entry(w, f->node, OP_ENTRY_END, 0);
        break;
    case F_ENTRY:
        if (strcmp(lname, f->node->kname) == 0)
            begin(w, &w->pl->nodes[f->node->key], OP_KEY, 0, 0);
        else if (strcmp(lname, f->node->vname) == 0)
            begin(w, &w->pl->nodes[f->node->value], OP_VAL, 0, 0);
        else
            w->ignore = 1;
        break;
    default: /* inside a scalar: its children are not its text */
        w->ignore = 1;
    }
}

static void on_end(void *ud, const XML_Char *name)
{
    work *w = ud;
    (void)name;
    if (w->error) return;
    w->depth--;
    if (w->ignore) {
        w->ignore--;
        return;
    }
    if (w->nframes == 0) return;
    frame *f = &w->frames[--w->nframes];
    if (f->kind == F_STRUCT) w->nctr = f->counters;
    if (f->kind == F_SCALAR) {
        size_t len = w->n - f->text_at - sizeof(uint32_t);
        if (len > UINT32_MAX) {
            fail(w, "text too long");
            return;
        }
        uint32_t n32 = (uint32_t)len;
        memcpy(w->p + f->text_at, &n32, sizeof n32);
    }
    int ok = 1;
    switch (f->store) {
    case 0:
        break;
    case OP_SET:
    case OP_SETI:
    case OP_FLAT_ENTRY:
        ok = emit(w, f->store, 1, f->arg, 0);
        break;
    case OP_FLAT:
        ok = emit(w, f->store, 2, f->arg, f->arg2);
        break;
    default:
        ok = emit(w, f->store, 0, 0, 0);
    }
    if (!ok) fail(w, "out of memory");
}

/* Character data: only a scalar's own text (the element on top, not an ignored child's). */
static void on_text(void *ud, const XML_Char *s, int len)
{
    work *w = ud;
    if (w->error || w->ignore || len <= 0 || w->nframes == 0) return;
    if (w->frames[w->nframes - 1].kind != F_SCALAR) return;
    if (!reserve(w, (size_t)len)) {
        fail(w, "out of memory");
        return;
    }
    memcpy(w->p + w->n, s, (size_t)len);
    w->n += (size_t)len;
}

static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid, int internal)
{
    (void)name, (void)sysid, (void)pubid, (void)internal;
    fail(ud, "DOCTYPE is not accepted");
}

/* ---- phase two: operations to Lua values ----------------------------------------------------- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_space(**s)) (*s)++, (*n)--;
    while (*n > 0 && is_space((*s)[*n - 1])) (*n)--;
}

/* Lua's tonumber of the text, or nothing pushed (returns 0). */
static int push_tonumber(lua_State *L, const char *s, size_t n)
{
    lua_pushlstring(L, s, n);
    size_t ok = lua_stringtonumber(L, lua_tostring(L, -1));
    lua_remove(L, ok ? -2 : -1);
    return ok != 0;
}

/* scalar.integer: [+-]digits between blanks, exactly (64-bit); a value beyond 64 bits is nil, as
 * math.tointeger(tonumber(s)) has it (which keeps -2^63 - 1 .. that round to -2^63: so do we). */
static void push_integer(lua_State *L, const char *s, size_t n)
{
    trim(&s, &n);
    size_t i = (n > 0 && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    if (i == n) {
        lua_pushnil(L);
        return;
    }
    for (size_t k = i; k < n; k++) {
        if (s[k] < '0' || s[k] > '9') {
            lua_pushnil(L);
            return;
        }
    }
    char buf[32];
    if (n < sizeof buf) {
        memcpy(buf, s, n);
        buf[n] = '\0';
        errno = 0;
        long long v = strtoll(buf, NULL, 10);
        if (errno == 0) {
            lua_pushinteger(L, (lua_Integer)v);
            return;
        }
    }
    /* overflow or many leading zeros: Lua's own reading, then an exact integer or nil */
    int isint = 0;
    lua_Integer v = 0;
    if (push_tonumber(L, s, n)) {
        v = lua_tointegerx(L, -1, &isint);
        lua_pop(L, 1);
    }
    if (isint)
        lua_pushinteger(L, v);
    else
        lua_pushnil(L);
}

/* scalar.float: "NaN", "Infinity", "-Infinity", else tonumber's reading as a float, else nil. */
static void push_float(lua_State *L, const char *s, size_t n)
{
    trim(&s, &n);
    if (n == 3 && memcmp(s, "NaN", 3) == 0) {
        lua_pushnumber(L, (lua_Number)NAN);
    } else if (n == 8 && memcmp(s, "Infinity", 8) == 0) {
        lua_pushnumber(L, (lua_Number)HUGE_VAL);
    } else if (n == 9 && memcmp(s, "-Infinity", 9) == 0) {
        lua_pushnumber(L, -(lua_Number)HUGE_VAL);
    } else if (push_tonumber(L, s, n)) {
        lua_Number d = lua_tonumber(L, -1);
        lua_pop(L, 1);
        lua_pushnumber(L, d);
    } else {
        lua_pushnil(L);
    }
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* scalar.unbase64: blanks ignored, trailing '=' dropped, anything else outside the alphabet: nil. */
static void push_blob(lua_State *L, const char *s, size_t n)
{
    size_t end = n;
    /* the '=' at the end, after blanks are gone: skip blanks and '=' from the right */
    while (end > 0 && (s[end - 1] == '=' || is_space(s[end - 1]))) end--;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    unsigned bits = 0;
    int nbits = 0;
    for (size_t i = 0; i < end; i++) {
        if (is_space(s[i])) continue;
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            luaL_pushresult(&b);
            lua_pop(L, 1);
            lua_pushnil(L);
            return;
        }
        bits = ((bits << 6) | (unsigned)v) & 0xFFFFFFu;
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            luaL_addchar(&b, (char)((bits >> nbits) & 0xFF));
        }
    }
    luaL_pushresult(&b);
}

static void push_scalar(lua_State *L, int type, const char *s, size_t n, int timestamp)
{
    switch (type) {
    case T_BOOLEAN:
        lua_pushboolean(L, n == 4 && memcmp(s, "true", 4) == 0);
        break;
    case T_INTEGER:
        push_integer(L, s, n);
        break;
    case T_FLOAT:
        push_float(L, s, n);
        break;
    case T_BLOB:
        push_blob(L, s, n);
        break;
    case T_TIMESTAMP:
        if (lua_isnil(L, timestamp)) {
            lua_pushlstring(L, s, n);
        } else {
            lua_pushvalue(L, timestamp);
            lua_pushlstring(L, s, n);
            lua_call(L, 1, 1);
        }
        break;
    default:
        lua_pushlstring(L, s, n);
    }
}

static uint32_t read_u32(const char **p)
{
    uint32_t v;
    memcpy(&v, *p, sizeof v);
    *p += sizeof v;
    return v;
}

/* parent[name]: the table there, or a new one (an array when `array`) stored there. The parent is
 * at `parent`; leaves the table on top. */
static void member_table(lua_State *L, int parent, int names, int array_mt, uint32_t name, int array)
{
    lua_rawgeti(L, names, name);
    if (lua_rawget(L, parent) == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_newtable(L);
    if (array) {
        lua_pushvalue(L, array_mt);
        lua_setmetatable(L, -2);
    }
    lua_rawgeti(L, names, name);
    lua_pushvalue(L, -2);
    lua_rawset(L, parent);
}

/* Runs the operations; leaves the result on top. `names`, `array_mt`, `timestamp` are stack
 * indices. The stack grows by at most three per open element (depth <= MAX_DEPTH). */
static void run(lua_State *L, const work *w, int names, int array_mt, int timestamp)
{
    luaL_checkstack(L, 3 * MAX_DEPTH + 20, "shapexml nesting");
    const char *p = w->p, *end = w->p + w->n;
    int base = lua_gettop(L);
    while (p < end) {
        uint8_t op = (uint8_t)*p++;
        switch (op) {
        case OP_STRUCT:
        case OP_MAP:
            lua_newtable(L);
            break;
        case OP_LIST:
            lua_newtable(L);
            lua_pushvalue(L, array_mt);
            lua_setmetatable(L, -2);
            break;
        case OP_ENTRY:
            lua_pushnil(L);
            lua_pushnil(L);
            break;
        case OP_SCALAR: {
            int type = (uint8_t)*p++;
            uint32_t n = read_u32(&p);
            push_scalar(L, type, p, n, timestamp);
            p += n;
            break;
        }
        case OP_SET:
            lua_rawgeti(L, names, read_u32(&p));
            lua_insert(L, -2);
            lua_rawset(L, -3);
            break;
        case OP_SETI:
            lua_rawseti(L, -2, read_u32(&p));
            break;
        case OP_FLAT: {
            uint32_t name = read_u32(&p), i = read_u32(&p);
            member_table(L, lua_gettop(L) - 1, names, array_mt, name, 1);
            lua_insert(L, -2);
            lua_rawseti(L, -2, i);
            lua_pop(L, 1);
            break;
        }
        case OP_KEY:
            lua_replace(L, -3);
            break;
        case OP_VAL:
            lua_replace(L, -2);
            break;
        case OP_ENTRY_END:
            if (lua_isnil(L, -2))
                lua_pop(L, 2);
            else
                lua_rawset(L, -3);
            break;
        case OP_FLAT_ENTRY: {
            uint32_t name = read_u32(&p);
            member_table(L, lua_gettop(L) - 2, names, array_mt, name, 0);
            if (lua_isnil(L, -3)) {
                lua_pop(L, 3);
            } else {
                lua_insert(L, -3);
                lua_rawset(L, -3);
                lua_pop(L, 1);
            }
            break;
        }
        default:
            luaL_error(L, "shapexml: bad operation %d", op);
        }
    }
    if (lua_gettop(L) == base) lua_newtable(L); /* no wrapper element: an empty result */
    if (lua_gettop(L) != base + 1) luaL_error(L, "shapexml: unbalanced operations");
}

static int l_decode(lua_State *L)
{
    plan *p = luaL_checkudata(L, 1, PLAN_MT);
    size_t n;
    const char *text = luaL_checklstring(L, 2, &n);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TFUNCTION);
    lua_settop(L, 3);
    if (!p->nodes) return luaL_argerror(L, 1, "plan is freed");
    if (n > MAX_DOC || n > INT32_MAX) {
        lua_pushnil(L);
        lua_pushliteral(L, "document larger than 1 GiB");
        return 2;
    }
    lua_getiuservalue(L, 1, 1); /* 4: names */
    lua_getiuservalue(L, 1, 2); /* 5: array_mt */
    work *w = lua_newuserdatauv(L, sizeof *w, 0); /* 6 */
    memset(w, 0, sizeof *w);
    luaL_setmetatable(L, WORK_MT);
    w->pl = p;

    XML_Parser parser = XML_ParserCreate("UTF-8");
    if (!parser) return luaL_error(L, "XML_ParserCreate failed");
    w->parser = parser;
    XML_SetUserData(parser, w);
    XML_SetElementHandler(parser, on_start, on_end);
    XML_SetCharacterDataHandler(parser, on_text);
    XML_SetStartDoctypeDeclHandler(parser, on_doctype);
    XML_SetParamEntityParsing(parser, XML_PARAM_ENTITY_PARSING_NEVER);
    enum XML_Status st = XML_Parse(parser, text, (int)n, XML_TRUE);
    char message[160];
    message[0] = '\0';
    if (st != XML_STATUS_OK || w->error)
        snprintf(message, sizeof message, "line %lu, column %lu: %s", (unsigned long)XML_GetCurrentLineNumber(parser),
                 (unsigned long)XML_GetCurrentColumnNumber(parser),
                 w->error ? w->error : XML_ErrorString(XML_GetErrorCode(parser)));
    XML_ParserFree(parser);
    w->parser = NULL;
    if (message[0]) {
        lua_pushnil(L);
        lua_pushstring(L, message);
        return 2;
    }
    run(L, w, 4, 5, 3);
    return 1;
}

void shapexml_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "compile", l_compile },
        { "decode", l_decode },
        { NULL, NULL },
    };
    core_handle_type(L, PLAN_MT, NULL, plan_gc);
    core_handle_type(L, WORK_MT, NULL, work_gc);
    core_register(L, "shapexml", funcs);
}
