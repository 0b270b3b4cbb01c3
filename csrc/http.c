/* http: many HTTP(S) requests at once over one curl multi handle.
 *
 * A batch of transfers lives in a Lua userdata with its own __gc, so a Lua error raised while
 * requests are read or results are built frees every curl handle and buffer. libcurl's write and
 * header callbacks only append to C buffers; Lua is never entered from inside libcurl. */
#include <curl/curl.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "http.h"
#include "process.h"

#define CLIENT_MT "awsnet.http.client"
#define BATCH_MT "awsnet.http.batch"
#define DEFAULT_MAX_BODY (256L * 1024 * 1024)
#define MAX_HEADER_BYTES (1024 * 1024)
#define DEFAULT_TIMEOUT_MS 60000L
#define DEFAULT_CONNECT_TIMEOUT_MS 10000L

typedef struct batch batch;

typedef struct transfer transfer;

typedef struct {
    CURLM *multi;
    batch *active; /* the batch being performed or left behind by an error, freed before the multi */
    transfer **started; /* transfers of client:start not yet given back by client:poll */
    size_t n_started, cap_started;
    lua_Integer next_id;
} client;

typedef struct {
    char *p;
    size_t n, cap, limit;
    int overflow;
} buffer;

struct transfer {
    CURL *easy;
    struct curl_slist *headers;
    buffer body, head;
    CURLcode result;
    int done, added;
    int interrupted; /* the SIGINT or SIGTERM that ended the transfer before its answer, or 0 */
    char errbuf[CURL_ERROR_SIZE];
    lua_Integer id; /* client:start's id (0 in a batch) */
};

struct batch {
    client *owner; /* pinned by the batch's user value, so it outlives the batch */
    transfer *t;
    size_t n;
};

/* ---- buffers ---------------------------------------------------------------------------------- */

static int buffer_add(buffer *b, const char *data, size_t n)
{
    if (n > b->limit - b->n) {
        b->overflow = 1;
        return 0;
    }
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    return 1;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    transfer *t = ud;
    return buffer_add(&t->body, data, size * nmemb) ? size * nmemb : 0;
}

/* Keeps the header block of the last response only (a 100 Continue or a proxy's CONNECT reply
 * comes first). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    transfer *t = ud;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) t->head.n = 0;
    return buffer_add(&t->head, data, n) ? n : 0;
}

/* ---- batch lifetime --------------------------------------------------------------------------- */

/* Frees what a transfer holds (not the transfer itself). */
static void transfer_release(CURLM *multi, transfer *t)
{
    if (t->easy) {
        if (t->added && multi) curl_multi_remove_handle(multi, t->easy);
        curl_easy_cleanup(t->easy);
        t->easy = NULL;
    }
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    free(t->body.p);
    free(t->head.p);
    t->body.p = t->head.p = NULL;
}

static void batch_free(batch *b)
{
    CURLM *multi = b->owner ? b->owner->multi : NULL;
    for (size_t i = 0; b->t && i < b->n; i++) transfer_release(multi, &b->t[i]);
    free(b->t);
    b->t = NULL;
    b->n = 0;
    if (b->owner && b->owner->active == b) b->owner->active = NULL;
    b->owner = NULL;
}

static int batch_gc(lua_State *L)
{
    batch_free(luaL_checkudata(L, 1, BATCH_MT));
    return 0;
}

/* ---- reading one request ---------------------------------------------------------------------- */

static long field_ms(lua_State *L, int idx, const char *k, long dflt)
{
    long v = dflt;
    if (lua_getfield(L, idx, k) != LUA_TNIL) {
        int ok;
        lua_Number s = lua_tonumberx(L, -1, &ok);
        if (!ok || s <= 0 || s > 86400) luaL_error(L, "request.%s must be seconds in (0, 86400]", k);
        v = (long)(s * 1000);
        if (v < 1) v = 1;
    }
    lua_pop(L, 1);
    return v;
}

static void add_header_line(lua_State *L, transfer *t, const char *name, size_t nn, const char *value, size_t vn)
{
    for (size_t i = 0; i < nn; i++)
        if (name[i] == ':' || name[i] == '\r' || name[i] == '\n' || (unsigned char)name[i] <= ' ')
            luaL_error(L, "invalid header name '%s'", name);
    for (size_t i = 0; i < vn; i++)
        if (value[i] == '\r' || value[i] == '\n') luaL_error(L, "header '%s' has a line break in its value", name);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, name, nn);
    /* "Name;" is curl's way to send a header with an empty value; "Name:" would remove it. */
    if (vn == 0) {
        luaL_addchar(&b, ';');
    } else {
        luaL_addstring(&b, ": ");
        luaL_addlstring(&b, value, vn);
    }
    luaL_pushresult(&b);
    struct curl_slist *l = curl_slist_append(t->headers, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!l) luaL_error(L, "out of memory");
    t->headers = l;
}

static void set_headers(lua_State *L, int req, transfer *t)
{
    if (lua_getfield(L, req, "headers") == LUA_TTABLE) {
        int h = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, h)) {
            if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "request.headers keys must be strings");
            size_t nn, vn;
            const char *name = lua_tolstring(L, -2, &nn);
            if (lua_type(L, -1) == LUA_TSTRING) {
                const char *v = lua_tolstring(L, -1, &vn);
                add_header_line(L, t, name, nn, v, vn);
            } else if (lua_type(L, -1) == LUA_TTABLE) {
                lua_Integer n = luaL_len(L, -1);
                for (lua_Integer i = 1; i <= n; i++) {
                    if (lua_geti(L, -1, i) != LUA_TSTRING) luaL_error(L, "request.headers values must be strings");
                    const char *v = lua_tolstring(L, -1, &vn);
                    add_header_line(L, t, name, nn, v, vn);
                    lua_pop(L, 1);
                }
            } else {
                luaL_error(L, "request.headers['%s'] must be a string or an array of strings", name);
            }
            lua_pop(L, 1);
        }
    } else if (lua_type(L, -1) != LUA_TNIL) {
        luaL_error(L, "request.headers must be a table");
    }
    lua_pop(L, 1);
    /* curl would otherwise wait for "100 Continue" before sending larger bodies. */
    t->headers = curl_slist_append(t->headers, "Expect:");
    if (!t->headers) luaL_error(L, "out of memory");
}

/* Configures t->easy from the request table at index `req`. Strings stay owned by that table,
 * which the caller keeps on the stack until the transfer is done (curl copies most of them). */
static void setup_transfer(lua_State *L, int req, transfer *t)
{
    luaL_checktype(L, req, LUA_TTABLE);
    t->easy = curl_easy_init();
    if (!t->easy) luaL_error(L, "curl_easy_init failed");
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, field_ms(L, req, "timeout", DEFAULT_TIMEOUT_MS));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, field_ms(L, req, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_MS));

    if (lua_getfield(L, req, "url") != LUA_TSTRING) luaL_error(L, "request.url must be a string");
    curl_easy_setopt(e, CURLOPT_URL, lua_tostring(L, -1));
    lua_pop(L, 1);

    const char *method = "GET";
    if (lua_getfield(L, req, "method") == LUA_TSTRING) method = lua_tostring(L, -1);
    else if (lua_type(L, -1) != LUA_TNIL) luaL_error(L, "request.method must be a string");
    int body_type = lua_getfield(L, req, "body");
    if (body_type == LUA_TSTRING) {
        size_t n;
        const char *body = lua_tolstring(L, -1, &n);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    } else if (body_type != LUA_TNIL) {
        luaL_error(L, "request.body must be a string");
    }
    lua_pop(L, 1);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (!(strcmp(method, "GET") == 0 && body_type == LUA_TNIL) && !(strcmp(method, "POST") == 0 && body_type != LUA_TNIL))
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method); /* curl copies it */
    lua_pop(L, 1);

    if (lua_getfield(L, req, "ca_file") == LUA_TSTRING) curl_easy_setopt(e, CURLOPT_CAINFO, lua_tostring(L, -1));
    lua_pop(L, 1);
    int verify = 1;
    if (lua_getfield(L, req, "verify") != LUA_TNIL) verify = lua_toboolean(L, -1);
    lua_pop(L, 1);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);

    lua_Integer max_body = DEFAULT_MAX_BODY;
    if (lua_getfield(L, req, "max_body") != LUA_TNIL) max_body = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    t->body.limit = max_body > 0 ? (size_t)max_body : 0;
    t->head.limit = MAX_HEADER_BYTES;
    set_headers(L, req, t);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
}

/* ---- results ---------------------------------------------------------------------------------- */

static const char *error_code(const transfer *t)
{
    if (t->body.overflow || t->head.overflow) return "too_large";
    if (t->interrupted) return "interrupted";
    switch (t->result) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_CONNECT: return "refused";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "resolve";
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return "invalid_url";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE: return "tls";
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return "connection";
    default: return "http";
    }
}

/* Header block -> table: lower-case names, values trimmed, repeats joined with ", ". */
static void push_headers(lua_State *L, const buffer *head)
{
    lua_newtable(L);
    const char *p = head->p, *end = head->p + head->n;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        const char *line_end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon && colon > p && !(line_end - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
            luaL_Buffer name;
            luaL_buffinit(L, &name);
            for (const char *c = p; c < colon; c++) luaL_addchar(&name, (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c)); /* ASCII, not locale */
            luaL_pushresult(&name);
            const char *v = colon + 1, *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            lua_pushvalue(L, -1);
            if (lua_rawget(L, -3) == LUA_TSTRING) {
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, v, (size_t)(ve - v));
                lua_concat(L, 3);
            } else {
                lua_pop(L, 1);
                lua_pushlstring(L, v, (size_t)(ve - v));
            }
            lua_rawset(L, -3);
        }
        p = eol + 1;
    }
}

static void push_result(lua_State *L, transfer *t)
{
    if (t->result != CURLE_OK || t->body.overflow || t->head.overflow) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, error_code(t));
        lua_setfield(L, -2, "error");
        if (t->body.overflow || t->head.overflow)
            lua_pushfstring(L, "response larger than %d bytes", (int)(t->body.overflow ? t->body.limit : t->head.limit));
        else if (t->interrupted)
            lua_pushfstring(L, "stopped by %s before the answer", t->interrupted == SIGINT ? "SIGINT" : "SIGTERM");
        else
            lua_pushstring(L, t->errbuf[0] ? t->errbuf : curl_easy_strerror(t->result));
        lua_setfield(L, -2, "message");
        return;
    }
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    push_headers(L, &t->head);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, t->body.p ? t->body.p : "", t->body.n);
    lua_setfield(L, -2, "body");
}

/* ---- client ----------------------------------------------------------------------------------- */

static client *check_client(lua_State *L)
{
    client *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (!c->multi) luaL_argerror(L, 1, "HTTP client is closed");
    return c;
}

static int l_new(lua_State *L)
{
    lua_Integer max_connections = luaL_optinteger(L, 1, 16);
    luaL_argcheck(L, max_connections > 0 && max_connections <= 1024, 1, "max_connections out of range");
    client *c = lua_newuserdatauv(L, sizeof *c, 0);
    c->multi = NULL;
    c->active = NULL;
    c->started = NULL;
    c->n_started = c->cap_started = 0;
    c->next_id = 0;
    luaL_setmetatable(L, CLIENT_MT);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return luaL_error(L, "curl_global_init failed");
    c->multi = curl_multi_init();
    if (!c->multi) return luaL_error(L, "curl_multi_init failed");
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max_connections);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)max_connections);
    return 1;
}

/* Marks the transfers curl reports done (those a batch or client:start began); returns how
 * many it marked. */
static size_t read_done(client *c)
{
    size_t marked = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        if (t && !t->done) {
            t->result = msg->data.result;
            t->done = 1;
            marked++;
        }
    }
    return marked;
}

/* Removes started transfer `i` (swapped with the last) and frees it. */
static void started_remove(client *c, size_t i)
{
    transfer *t = c->started[i];
    transfer_release(c->multi, t);
    free(t);
    c->started[i] = c->started[--c->n_started];
}

static int l_close(lua_State *L)
{
    client *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (c->active) batch_free(c->active);
    while (c->n_started > 0) started_remove(c, c->n_started - 1);
    free(c->started);
    c->started = NULL;
    c->cap_started = 0;
    if (c->multi) {
        curl_multi_cleanup(c->multi);
        c->multi = NULL;
    }
    return 0;
}

static int l_perform(lua_State *L)
{
    client *c = check_client(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    size_t n = (size_t)luaL_len(L, 2);
    /* one multi handle: its messages would be read by the wrong loop */
    if (c->n_started > 0) return luaL_error(L, "HTTP client has transfers started by start(): poll them");
    if (c->active) batch_free(c->active); /* left over from a call that raised */
    batch *b = lua_newuserdatauv(L, sizeof *b, 1); /* 3 */
    b->owner = NULL;
    b->n = 0;
    b->t = NULL;
    luaL_setmetatable(L, BATCH_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, 3, 1);
    b->owner = c;
    c->active = b;
    if (n == 0) {
        lua_newtable(L);
        return 1;
    }
    b->t = calloc(n, sizeof *b->t);
    if (!b->t) return luaL_error(L, "out of memory");
    b->n = n;
    for (size_t i = 0; i < n; i++) {
        lua_geti(L, 2, (lua_Integer)i + 1);
        setup_transfer(L, lua_gettop(L), &b->t[i]);
        curl_easy_setopt(b->t[i].easy, CURLOPT_PRIVATE, (void *)&b->t[i]);
        lua_pop(L, 1);
        if (curl_multi_add_handle(c->multi, b->t[i].easy) != CURLM_OK) return luaL_error(L, "curl_multi_add_handle failed");
        b->t[i].added = 1;
    }

    int running = 1;
    size_t finished = 0;
    while (finished < n) {
        CURLMcode mc = curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK) return luaL_error(L, "curl_multi_perform: %s", curl_multi_strerror(mc));
        finished += read_done(c);
        int sig = finished < n ? process_pending_signal() : 0;
        if (sig) {
            /* Ctrl-C or SIGTERM: the transfers still running end now, so the caller can stop
             * within a second instead of after the slowest answer. */
            for (size_t i = 0; i < n; i++)
                if (!b->t[i].done) {
                    b->t[i].result = CURLE_ABORTED_BY_CALLBACK;
                    b->t[i].interrupted = sig;
                    b->t[i].done = 1;
                    finished++;
                }
        } else if (finished < n && running) {
            /* short polls: a signal does not always wake curl's poll (it restarts on EINTR) */
            mc = curl_multi_poll(c->multi, NULL, 0, 100, NULL);
            if (mc != CURLM_OK) return luaL_error(L, "curl_multi_poll: %s", curl_multi_strerror(mc));
        } else if (finished < n && !running) {
            /* Nothing runs but some transfer never reported: should not happen; avoid spinning. */
            for (size_t i = 0; i < n; i++)
                if (!b->t[i].done) {
                    b->t[i].result = CURLE_GOT_NOTHING;
                    b->t[i].done = 1;
                    finished++;
                }
        }
    }

    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        push_result(L, &b->t[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    batch_free(b);
    return 1;
}

/* client:start(req) -> id: the transfer begins at once (on the next poll's turn of the multi
 * handle) and its result comes from client:poll, tagged with this id. */
static int l_start(lua_State *L)
{
    client *c = check_client(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (c->active) return luaL_error(L, "HTTP client is performing a batch");
    /* a transfer whose setup raised was never added: it is freed here */
    for (size_t i = c->n_started; i-- > 0;)
        if (!c->started[i]->added) started_remove(c, i);
    if (c->n_started == c->cap_started) {
        size_t cap = c->cap_started ? c->cap_started * 2 : 64;
        transfer **p = realloc(c->started, cap * sizeof *p);
        if (!p) return luaL_error(L, "out of memory");
        c->started = p;
        c->cap_started = cap;
    }
    transfer *t = calloc(1, sizeof *t);
    if (!t) return luaL_error(L, "out of memory");
    c->started[c->n_started++] = t; /* held before setup, so an error in it leaks nothing */
    t->id = ++c->next_id;
    setup_transfer(L, 2, t);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, (void *)t);
    if (curl_multi_add_handle(c->multi, t->easy) != CURLM_OK) return luaL_error(L, "curl_multi_add_handle failed");
    t->added = 1;
    lua_pushinteger(L, t->id);
    return 1;
}


/* client:poll(timeout_ms) -> array of results {id, status, headers, body} or {id, error,
 * message}: the started transfers that ended, waiting up to timeout_ms for the first one. After
 * SIGINT or SIGTERM every started transfer ends with error "interrupted". */
static int l_poll(lua_State *L)
{
    client *c = check_client(L);
    lua_Integer timeout = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, timeout >= 0 && timeout <= 3600000, 2, "timeout_ms out of range");
    if (c->active) batch_free(c->active); /* left over from a perform that raised */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t done = 0;
    for (;;) {
        int running = 0;
        CURLMcode mc = curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK) return luaL_error(L, "curl_multi_perform: %s", curl_multi_strerror(mc));
        read_done(c);
        int sig = process_pending_signal();
        done = 0;
        for (size_t i = 0; i < c->n_started; i++) {
            transfer *t = c->started[i];
            if (!t->done && sig && t->added) {
                t->result = CURLE_ABORTED_BY_CALLBACK;
                t->interrupted = sig;
                t->done = 1;
            }
            if (!t->done && !running && t->added) { /* never reported: should not happen */
                t->result = CURLE_GOT_NOTHING;
                t->done = 1;
            }
            done += t->done;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        lua_Integer spent = (lua_Integer)(now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (done > 0 || c->n_started == 0 || spent >= timeout) break;
        lua_Integer slice = timeout - spent < 100 ? timeout - spent : 100; /* a signal may not wake the poll */
        mc = curl_multi_poll(c->multi, NULL, 0, (int)slice, NULL);
        if (mc != CURLM_OK) return luaL_error(L, "curl_multi_poll: %s", curl_multi_strerror(mc));
    }
    lua_createtable(L, (int)done, 0);
    lua_Integer k = 0;
    for (size_t i = c->n_started; i-- > 0;) {
        transfer *t = c->started[i];
        if (!t->done) continue;
        push_result(L, t);
        lua_pushinteger(L, t->id);
        lua_setfield(L, -2, "id");
        lua_rawseti(L, -2, ++k);
        started_remove(c, i);
    }
    return 1;
}

/* client:started() -> the number of started transfers not yet given back by poll. */
static int l_started(lua_State *L)
{
    client *c = check_client(L);
    lua_pushinteger(L, (lua_Integer)c->n_started);
    return 1;
}

/* sleep(seconds) -> true, or false once SIGINT or SIGTERM has arrived: the pause between
 * retries, without spawning a process. */
static int l_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s <= 3600, 1, "seconds out of range");
    struct timespec ts = { (time_t)s, (long)((s - (lua_Number)(time_t)s) * 1e9) };
    while (!process_pending_signal() && nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
    lua_pushboolean(L, !process_pending_signal());
    return 1;
}

void http_open(lua_State *L)
{
    static const luaL_Reg client_methods[] = {
        { "perform", l_perform },
        { "start", l_start },
        { "poll", l_poll },
        { "started", l_started },
        { "close", l_close },
        { NULL, NULL },
    };
    static const luaL_Reg funcs[] = {
        { "new", l_new },
        { "sleep", l_sleep },
        { NULL, NULL },
    };
    core_handle_type(L, CLIENT_MT, client_methods, l_close);
    core_handle_type(L, BATCH_MT, NULL, batch_gc);
    core_register(L, "http", funcs);
}
