/* xml: expat parse into an event list, then the event list into Lua tables.
 *
 * Two phases keep Lua out of expat's callbacks (a Lua error must never unwind through expat):
 * the callbacks append START/TEXT/END records to a C buffer owned by a userdata with __gc, and
 * the tables are built from that buffer once XML_Parse has returned. */
#include <expat.h>

#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "xml.h"

#define EVENTS_MT "awsnet.xml.events"
#define MAX_DEPTH 200

enum { EV_START = 'S', EV_TEXT = 'T', EV_END = 'E' };

typedef struct {
    char *p;
    size_t n, cap;
    size_t last_text;  /* offset of the latest TEXT record, when it is the latest record */
    int has_last_text;
    int depth;
    const char *error; /* why the callbacks stopped the parser */
} events;

static int events_reserve(events *ev, size_t more)
{
    if (more > ((size_t)-1) / 2 - ev->n) return 0;
    if (ev->n + more <= ev->cap) return 1;
    size_t cap = ev->cap ? ev->cap : 4096;
    while (cap < ev->n + more) cap *= 2;
    char *p = realloc(ev->p, cap);
    if (!p) return 0;
    ev->p = p;
    ev->cap = cap;
    return 1;
}

/* A record: kind byte, then (START, TEXT) a size_t length and the bytes. */
static int events_add(events *ev, char kind, const char *data, size_t n)
{
    size_t need = 1 + (kind == EV_END ? 0 : sizeof(size_t) + n);
    if (!events_reserve(ev, need)) return 0;
    ev->p[ev->n] = kind;
    if (kind != EV_END) {
        memcpy(ev->p + ev->n + 1, &n, sizeof n);
        memcpy(ev->p + ev->n + 1 + sizeof n, data, n);
    }
    ev->has_last_text = kind == EV_TEXT;
    if (kind == EV_TEXT) ev->last_text = ev->n;
    ev->n += need;
    return 1;
}

static void stop(XML_Parser parser, events *ev, const char *why)
{
    if (!ev->error) ev->error = why;
    XML_StopParser(parser, XML_FALSE);
}

typedef struct {
    XML_Parser parser;
    events *ev;
} parse_ctx;

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    parse_ctx *c = ud;
    (void)attrs;
    if (c->ev->error) return;
    if (++c->ev->depth > MAX_DEPTH) {
        stop(c->parser, c->ev, "elements nested too deeply");
        return;
    }
    if (!events_add(c->ev, EV_START, name, strlen(name))) stop(c->parser, c->ev, "out of memory");
}

static void on_end(void *ud, const XML_Char *name)
{
    parse_ctx *c = ud;
    (void)name;
    if (c->ev->error) return;
    c->ev->depth--;
    if (!events_add(c->ev, EV_END, NULL, 0)) stop(c->parser, c->ev, "out of memory");
}

/* Character data arrives in pieces; consecutive pieces extend one TEXT record. */
static void on_text(void *ud, const XML_Char *s, int len)
{
    parse_ctx *c = ud;
    events *ev = c->ev;
    if (ev->error || len <= 0 || ev->depth == 0) return;
    if (ev->has_last_text) {
        if (!events_reserve(ev, (size_t)len)) {
            stop(c->parser, ev, "out of memory");
            return;
        }
        size_t n;
        memcpy(&n, ev->p + ev->last_text + 1, sizeof n);
        memcpy(ev->p + ev->n, s, (size_t)len);
        n += (size_t)len;
        memcpy(ev->p + ev->last_text + 1, &n, sizeof n);
        ev->n += (size_t)len;
        return;
    }
    if (!events_add(ev, EV_TEXT, s, (size_t)len)) stop(c->parser, ev, "out of memory");
}

static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid, int internal)
{
    parse_ctx *c = ud;
    (void)name, (void)sysid, (void)pubid, (void)internal;
    stop(c->parser, c->ev, "DOCTYPE is not accepted");
}

static int events_gc(lua_State *L)
{
    events *ev = luaL_checkudata(L, 1, EVENTS_MT);
    free(ev->p);
    ev->p = NULL;
    ev->n = ev->cap = 0;
    return 0;
}

/* ---- events -> tables ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    size_t name_n;
    const char *text;
    size_t text_n;
    int has_children;
} frame;

static size_t read_len(const char *p)
{
    size_t n;
    memcpy(&n, p, sizeof n);
    return n;
}

/* Stores the value on top of the stack into the table at `parent` under `name` (see xml.h). */
static void store_child(lua_State *L, int parent, int lists, int repeated, const char *name, size_t n)
{
    lua_pushlstring(L, name, n);                    /* value, name */
    if (lua_rawget(L, lists) != LUA_TNIL) {         /* a list element: append */
        lua_pop(L, 1);
        lua_rawseti(L, parent, (lua_Integer)lua_rawlen(L, parent) + 1);
        return;
    }
    lua_pop(L, 1);
    lua_pushlstring(L, name, n);
    int t = lua_rawget(L, parent);                  /* value, existing */
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushlstring(L, name, n);
        lua_insert(L, -2);
        lua_rawset(L, parent);
        return;
    }
    if (t == LUA_TTABLE) {
        lua_pushvalue(L, -1);
        if (lua_rawget(L, repeated) != LUA_TNIL) {  /* already an array of repeats: append */
            lua_pop(L, 1);
            lua_insert(L, -2);                      /* existing, value */
            lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
            lua_pop(L, 1);
            return;
        }
        lua_pop(L, 1);
    }
    lua_createtable(L, 2, 0);                       /* value, existing, array */
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 2);                          /* array */
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, repeated);
    lua_pushlstring(L, name, n);
    lua_insert(L, -2);
    lua_rawset(L, parent);
}

/* Builds the tree; leaves root name and value on the stack. `lists` and `repeated` are stack
 * indices of the list-name set and of the set of arrays made from repeated names. */
static int build(lua_State *L, const events *ev, int lists, int repeated)
{
    frame stack[MAX_DEPTH + 1];
    int depth = 0;
    const char *p = ev->p, *end = ev->p + ev->n;
    const char *root = NULL;
    size_t root_n = 0;
    luaL_checkstack(L, MAX_DEPTH + 20, "xml nesting");
    while (p < end) {
        char kind = *p++;
        if (kind == EV_START) {
            size_t n = read_len(p);
            p += sizeof n;
            if (depth > 0) stack[depth - 1].has_children = 1;
            if (depth == 0) {
                root = p;
                root_n = n;
            }
            stack[depth++] = (frame){ p, n, NULL, 0, 0 };
            lua_newtable(L);
            p += n;
        } else if (kind == EV_TEXT) {
            size_t n = read_len(p);
            p += sizeof n;
            if (depth > 0 && !stack[depth - 1].text) {
                stack[depth - 1].text = p;
                stack[depth - 1].text_n = n;
            }
            p += n;
        } else {
            frame *f = &stack[--depth];
            if (!f->has_children) {
                lua_pop(L, 1);
                lua_pushlstring(L, f->text ? f->text : "", f->text ? f->text_n : 0);
            }
            if (depth > 0) store_child(L, lua_gettop(L) - 1, lists, repeated, f->name, f->name_n);
        }
    }
    if (!root || depth != 0) return 0;
    lua_pushlstring(L, root, root_n);
    lua_insert(L, -2);
    return 1;
}

static int l_parse(lua_State *L)
{
    size_t n;
    const char *text = luaL_checklstring(L, 1, &n);
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_newtable(L);
    } else {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_settop(L, 2);
    }
    if (n > (size_t)1 << 30) {
        lua_pushnil(L);
        lua_pushliteral(L, "xml");
        lua_pushliteral(L, "document larger than 1 GiB");
        return 3;
    }
    events *ev = lua_newuserdatauv(L, sizeof *ev, 0); /* 3 */
    memset(ev, 0, sizeof *ev);
    luaL_setmetatable(L, EVENTS_MT);

    XML_Parser parser = XML_ParserCreate("UTF-8");
    if (!parser) return luaL_error(L, "XML_ParserCreate failed");
    parse_ctx ctx = { parser, ev };
    XML_SetUserData(parser, &ctx);
    XML_SetElementHandler(parser, on_start, on_end);
    XML_SetCharacterDataHandler(parser, on_text);
    XML_SetStartDoctypeDeclHandler(parser, on_doctype);
    XML_SetParamEntityParsing(parser, XML_PARAM_ENTITY_PARSING_NEVER);
    enum XML_Status st = XML_Parse(parser, text, (int)n, XML_TRUE);
    char message[160];
    message[0] = '\0';
    if (st != XML_STATUS_OK || ev->error) {
        snprintf(message, sizeof message, "line %lu, column %lu: %s", (unsigned long)XML_GetCurrentLineNumber(parser),
                 (unsigned long)XML_GetCurrentColumnNumber(parser),
                 ev->error ? ev->error : XML_ErrorString(XML_GetErrorCode(parser)));
    }
    XML_ParserFree(parser);
    if (message[0]) {
        lua_pushnil(L);
        lua_pushliteral(L, "xml");
        lua_pushstring(L, message);
        return 3;
    }
    lua_newtable(L); /* 4: arrays made from repeated names */
    if (!build(L, ev, 2, 4)) {
        lua_pushnil(L);
        lua_pushliteral(L, "xml");
        lua_pushliteral(L, "no root element");
        return 3;
    }
    return 2;
}

void xml_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "parse", l_parse },
        { NULL, NULL },
    };
    if (luaL_newmetatable(L, EVENTS_MT)) {
        lua_pushcfunction(L, events_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    core_register(L, "xml", funcs);
}
