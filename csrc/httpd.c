/* httpd — poll-based HTTP/1.1 server on loopback; see httpd.h for the contract.
 *
 * One userdata owns the listening socket and a fixed array of connections. Everything runs inside
 * server:step(): poll, accept, read, parse, call the Lua handler under lua_pcall, queue the reply,
 * write. A connection answers its requests in order: the next request is parsed only once the
 * previous reply is fully written (or, for a deferred one, given by server:respond and written),
 * which also keeps pipelined requests ordered.
 *
 * Parsing is incremental: the search for the head's end resumes where the last read left it, the
 * head is parsed once, and a chunked body is decoded in place as its chunks arrive, so a request
 * costs time linear in its bytes however it is split into reads (server:stats() counts the bytes
 * the parser examined). The head must arrive within head_timeout_ms of its first byte, the body
 * within body_timeout_ms of the head: a deadline per request, not reset by each byte. */
#include "httpd.h"
#include "core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTPD_MT "awsnet.httpd"
#define MAX_HEADERS 100
#define IDLE_TIMEOUT_MS 120000
#define READ_CHUNK 65536

typedef struct span { size_t off, len; } span;

/* The parsed head of one request; offsets into conn->in. */
typedef struct head {
    size_t head_len;          /* through the blank line */
    span method, target;
    int minor;                /* HTTP/1.<minor> */
    int nheaders;
    span name[MAX_HEADERS], value[MAX_HEADERS];
    long long content_length; /* -1 when absent */
    int chunked, expect_continue, conn_close, conn_keep_alive;
} head;

enum { NEED_MORE = 0, COMPLETE = 1, BAD = -1, TOO_LARGE_HEAD = -2, TOO_LARGE_BODY = -3 };

/* Where the decoding of a chunked body stands; offsets from the body's first byte. The decoded
 * bytes are moved down to body[0..out) as they arrive (never past `pos`, the next raw byte). */
enum { CK_SIZE, CK_DATA, CK_TRAILER };
typedef struct chunked {
    int phase;
    size_t pos;     /* next raw byte to parse */
    size_t scan;    /* bytes of the current line already searched for its CRLF */
    size_t size;    /* the current chunk's size (CK_DATA) */
    size_t out;     /* decoded bytes so far */
} chunked;

typedef struct conn {
    int fd;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off;
    int64_t send_at_ms;      /* reply held back until this time (delay_ms) */
    int64_t last_active_ms;
    int64_t deadline_ms;     /* the request being read must be whole by then (0: none) */
    int close_after_write;
    int continue_sent;       /* "100 Continue" already sent for the request being read */
    lua_Integer serial;      /* the connection's id for server:respond, never reused */
    int deferred;            /* the handler answers later, through server:respond */
    int deferred_close, deferred_head_only;
    int head_ok;             /* `h` holds the parsed head of the request being read */
    size_t head_scan;        /* bytes already searched for the head's end */
    head h;
    chunked ck;
    size_t limit;            /* body limit of the request being read */
    char *reject;            /* the reply when the body outgrows `limit` (NULL: a plain 413) */
    size_t reject_len;
} conn;

typedef struct httpd {
    int lfd;
    int port;
    conn *conns;
    int max_conns;
    size_t max_header, max_body;
    int64_t head_timeout_ms, body_timeout_ms;
    lua_Integer next_serial;
    uint64_t examined;       /* bytes the parser looked at, over the server's life (stats) */
    int busy;                /* inside step(): close() is deferred */
    int close_requested;
} httpd;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int span_ieq(const char *buf, span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(buf + s.off, lit, n) == 0;
}

/* True when the comma-separated header value contains `token` (case-insensitive). */
static int has_token(const char *buf, span v, const char *token)
{
    size_t n = strlen(token), i = v.off, end = v.off + v.len;
    while (i < end) {
        while (i < end && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == ',')) i++;
        size_t start = i;
        while (i < end && buf[i] != ',') i++;
        size_t stop = i;
        while (stop > start && (buf[stop - 1] == ' ' || buf[stop - 1] == '\t')) stop--;
        if (stop - start == n && strncasecmp(buf + start, token, n) == 0) return 1;
    }
    return 0;
}

static const char *find_crlf(const char *p, const char *end)
{
    for (; p + 1 < end; p++)
        if (p[0] == '\r' && p[1] == '\n') return p;
    return NULL;
}

static int parse_request_line(const char *buf, const char *end, head *h)
{
    const char *p = buf;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp == p) return BAD;
    for (const char *q = p; q < sp; q++) if (!is_tchar((unsigned char)*q)) return BAD;
    h->method = (span){ 0, (size_t)(sp - p) };
    p = sp + 1;
    sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp == p) return BAD;
    for (const char *q = p; q < sp; q++) if ((unsigned char)*q <= 0x20 || *q == 0x7f) return BAD;
    h->target = (span){ (size_t)(p - buf), (size_t)(sp - p) };
    p = sp + 1;
    if (end - p != 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1')) return BAD;
    h->minor = p[7] - '0';
    return COMPLETE;
}

static int parse_content_length(const char *buf, span v, long long *out)
{
    if (v.len == 0 || v.len > 18) return BAD;
    long long n = 0;
    for (size_t i = 0; i < v.len; i++) {
        char c = buf[v.off + i];
        if (c < '0' || c > '9') return BAD;
        n = n * 10 + (c - '0');
    }
    if (*out >= 0 && *out != n) return BAD;   /* conflicting repeated Content-Length */
    *out = n;
    return COMPLETE;
}

/* Parses the head in buf[0..len): NEED_MORE, COMPLETE, BAD or TOO_LARGE_HEAD. The search for
 * its end starts where the last call left it (*scanned, 0 at first) and counts what it looks at
 * in *examined; the head itself is parsed once it is whole. */
static int parse_head(const char *buf, size_t len, size_t max_header, head *h, size_t *scanned, uint64_t *examined)
{
    memset(h, 0, sizeof *h);
    h->content_length = -1;
    size_t scan = len < max_header ? len : max_header;
    const char *end = NULL;
    size_t i = *scanned > 3 ? *scanned - 3 : 0;
    for (; i + 3 < scan; i++) {
        (*examined)++;
        if (buf[i] == '\r' && memcmp(buf + i, "\r\n\r\n", 4) == 0) { end = buf + i + 4; break; }
    }
    if (!end) {
        *scanned = scan;
        return len >= max_header ? TOO_LARGE_HEAD : NEED_MORE;
    }
    h->head_len = (size_t)(end - buf);
    *examined += h->head_len;   /* the parse below reads the head once more */
    const char *line_end = find_crlf(buf, end);
    if (parse_request_line(buf, line_end, h) != COMPLETE) return BAD;
    const char *p = line_end + 2;
    while (p < end - 2) {
        const char *e = find_crlf(p, end);
        const char *colon = memchr(p, ':', (size_t)(e - p));
        if (!colon || colon == p) return BAD;           /* also rejects obsolete line folding */
        for (const char *q = p; q < colon; q++) if (!is_tchar((unsigned char)*q)) return BAD;
        const char *vs = colon + 1, *ve = e;
        while (vs < ve && (*vs == ' ' || *vs == '\t')) vs++;
        while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        for (const char *q = vs; q < ve; q++)
            if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f) return BAD;
        if (h->nheaders == MAX_HEADERS) return TOO_LARGE_HEAD;
        span name = { (size_t)(p - buf), (size_t)(colon - p) };
        span value = { (size_t)(vs - buf), (size_t)(ve - vs) };
        h->name[h->nheaders] = name;
        h->value[h->nheaders++] = value;
        if (span_ieq(buf, name, "content-length")) {
            if (parse_content_length(buf, value, &h->content_length) != COMPLETE) return BAD;
        } else if (span_ieq(buf, name, "transfer-encoding")) {
            if (!span_ieq(buf, value, "chunked")) return BAD;  /* only chunked is supported */
            h->chunked = 1;
        } else if (span_ieq(buf, name, "expect")) {
            h->expect_continue = span_ieq(buf, value, "100-continue");
        } else if (span_ieq(buf, name, "connection")) {
            h->conn_close |= has_token(buf, value, "close");
            h->conn_keep_alive |= has_token(buf, value, "keep-alive");
        }
        p = e + 2;
    }
    if (h->chunked && h->content_length >= 0) return BAD;   /* request smuggling shape */
    return COMPLETE;
}

/* The end of the line starting at body[from], searching from where the last call stopped
 * (k->scan); NULL while the line is incomplete. Counts the bytes it looks at. */
static const char *line_end(const char *body, size_t from, size_t len, chunked *k, uint64_t *examined)
{
    size_t i = from + (k->scan ? k->scan - 1 : 0);   /* a '\r' may have been the last byte */
    for (; i + 1 < len; i++) {
        (*examined)++;
        if (body[i] == '\r' && body[i + 1] == '\n') { k->scan = 0; return body + i; }
    }
    k->scan = len > from ? len - from : 0;
    return NULL;
}

/* Decodes what has arrived of a chunked body in body[0..len), resuming at k. Returns COMPLETE
 * (then k->pos is the raw length and body[0..k->out) the decoded bytes), NEED_MORE, BAD or
 * TOO_LARGE_BODY. */
static int chunked_step(char *body, size_t len, size_t max_body, chunked *k, uint64_t *examined)
{
    for (;;) {
        if (k->phase == CK_DATA) {
            if (len - k->pos < k->size + 2) return NEED_MORE;
            *examined += 2;
            if (body[k->pos + k->size] != '\r' || body[k->pos + k->size + 1] != '\n') return BAD;
            memmove(body + k->out, body + k->pos, k->size);
            k->out += k->size;
            k->pos += k->size + 2;
            k->phase = CK_SIZE;
            continue;
        }
        const char *e = line_end(body, k->pos, len, k, examined);
        if (k->phase == CK_TRAILER) {   /* trailer fields, up to the blank line; they are dropped */
            if (!e) return (len - k->pos > 8192) ? BAD : NEED_MORE;
            size_t line_len = (size_t)(e - (body + k->pos));
            k->pos += line_len + 2;
            if (line_len == 0) return COMPLETE;
            continue;
        }
        if (!e) return (len - k->pos > 1024) ? BAD : NEED_MORE;
        size_t size = 0, digits = 0;
        const char *q = body + k->pos;
        for (; q < e; q++, digits++) {
            int c = (unsigned char)*q, d;
            if (c >= '0' && c <= '9') d = c - '0';
            else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
            else break;
            if (digits >= 15) return TOO_LARGE_BODY;
            size = size * 16 + (size_t)d;
        }
        if (digits == 0 || (q < e && *q != ';')) return BAD;   /* chunk extensions are ignored */
        k->pos = (size_t)(e - body) + 2;
        if (size == 0) { k->phase = CK_TRAILER; continue; }
        if (size > max_body || k->out + size > max_body) return TOO_LARGE_BODY;
        k->size = size;
        k->phase = CK_DATA;
    }
}

/* Decides whether the whole request whose head is c->h sits in the buffer; sets *total to its raw
 * length in bytes (a chunked body is decoded in place meanwhile). */
static int request_complete(conn *c, size_t max_body, size_t *total, uint64_t *examined)
{
    const head *h = &c->h;
    char *body = c->in + h->head_len;
    size_t avail = c->in_len - h->head_len;
    if (h->chunked) {
        int r = chunked_step(body, avail, max_body, &c->ck, examined);
        if (r == COMPLETE) *total = h->head_len + c->ck.pos;
        return r;
    }
    size_t cl = h->content_length > 0 ? (size_t)h->content_length : 0;
    if (cl > max_body) return TOO_LARGE_BODY;
    if (avail < cl) return NEED_MORE;
    *total = h->head_len + cl;
    return COMPLETE;
}

static void conn_reset(conn *c)
{
    free(c->in);
    free(c->out);
    free(c->reject);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

/* Forgets the request just read: the next one starts with a fresh head and body state. */
static void conn_next_request(conn *c)
{
    c->head_ok = 0;
    c->head_scan = 0;
    memset(&c->ck, 0, sizeof c->ck);
    free(c->reject);
    c->reject = NULL;
    c->reject_len = 0;
    c->deadline_ms = 0;
    c->continue_sent = 0;
}

static void conn_close(conn *c, int abort_with_rst)
{
    if (c->fd >= 0) {
        if (abort_with_rst) {
            struct linger lg = { 1, 0 };
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(c->fd);
    }
    conn_reset(c);
}

static int conn_reply_pending(const conn *c) { return c->out_off < c->out_len; }

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

/* Moves the string on top of the stack into the connection's output; pops it. */
static void conn_queue(lua_State *L, conn *c)
{
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    char *buf = malloc(n ? n : 1);
    if (!buf) { lua_pop(L, 1); c->close_after_write = 1; return; }
    memcpy(buf, s, n);
    free(c->out);
    c->out = buf;
    c->out_len = n;
    c->out_off = 0;
    lua_pop(L, 1);
}

static void queue_simple(lua_State *L, conn *c, int status, int close_after)
{
    lua_pushfstring(L, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n%s\r\n",
                    status, reason_phrase(status), close_after ? "Connection: close\r\n" : "");
    conn_queue(L, c);
    c->close_after_write = close_after;
}

static int valid_header_text(const char *s, size_t n, int is_name)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (is_name ? !is_tchar(ch) : (ch < 0x20 && ch != '\t') || ch == 0x7f) return 0;
    }
    return n > 0 || !is_name;
}

/* Appends the string on top of the stack to the string at index `acc`; pops it. */
static void append_to(lua_State *L, int acc)
{
    lua_pushvalue(L, acc);
    lua_insert(L, -2);
    lua_concat(L, 2);
    lua_replace(L, acc);
}

/* Serialises the handler's reply table (at index `t`) into an HTTP response string pushed on the
 * stack; returns 0 (nothing pushed) when the reply is malformed. */
static int build_response(lua_State *L, int t, int close_after, int head_only)
{
    lua_getfield(L, t, "status");
    int isnum;
    lua_Integer status = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (!isnum || status < 200 || status > 599) return 0;
    lua_getfield(L, t, "body");
    if (!lua_isnil(L, -1) && !lua_isstring(L, -1)) { lua_pop(L, 1); return 0; }
    if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushliteral(L, ""); }
    int body = lua_gettop(L);
    size_t body_len = lua_rawlen(L, body);
    lua_pushfstring(L, "HTTP/1.1 %d %s\r\n", (int)status, reason_phrase((int)status));
    int acc = lua_gettop(L);
    if (lua_getfield(L, t, "headers") == LUA_TTABLE) {
        int hidx = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, hidx)) {
            size_t kn = 0, vn = 0;
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kn) : NULL;
            const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &vn) : NULL;
            if (k && v && valid_header_text(k, kn, 1) && valid_header_text(v, vn, 0) &&
                strcasecmp(k, "content-length") != 0 && strcasecmp(k, "connection") != 0 &&
                strcasecmp(k, "transfer-encoding") != 0) {
                lua_pushfstring(L, "%s: %s\r\n", k, v);
                append_to(L, acc);
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    lua_pushfstring(L, "Content-Length: %I\r\n%s\r\n", (lua_Integer)body_len,
                    close_after ? "Connection: close\r\n" : "");
    append_to(L, acc);
    if (!head_only) { lua_pushvalue(L, body); append_to(L, acc); }
    lua_remove(L, body);
    return 1;
}

/* Pushes {method, target, version, headers, id} of the head c->h. */
static void push_head(lua_State *L, const conn *c)
{
    const head *h = &c->h;
    lua_createtable(L, 0, 6);
    lua_pushlstring(L, c->in + h->method.off, h->method.len);
    lua_setfield(L, -2, "method");
    lua_pushlstring(L, c->in + h->target.off, h->target.len);
    lua_setfield(L, -2, "target");
    lua_pushstring(L, h->minor ? "HTTP/1.1" : "HTTP/1.0");
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, c->serial);
    lua_setfield(L, -2, "id");
    lua_createtable(L, 0, h->nheaders);
    for (int i = 0; i < h->nheaders; i++) {
        luaL_Buffer nb;
        char *lower = luaL_buffinitsize(L, &nb, h->name[i].len);
        for (size_t j = 0; j < h->name[i].len; j++) {
            char ch = c->in[h->name[i].off + j];
            lower[j] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
        }
        luaL_pushresultsize(&nb, h->name[i].len);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) == LUA_TSTRING) {   /* repeated header: join with "," */
            lua_pushliteral(L, ",");
            lua_pushlstring(L, c->in + h->value[i].off, h->value[i].len);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushlstring(L, c->in + h->value[i].off, h->value[i].len);
        }
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "headers");
}

/* Pushes the request table of the whole request of raw length `total` (head c->h). */
static void push_request(lua_State *L, const conn *c, size_t total)
{
    const head *h = &c->h;
    push_head(L, c);
    if (h->chunked) lua_pushlstring(L, c->in + h->head_len, c->ck.out);   /* decoded in place */
    else lua_pushlstring(L, c->in + h->head_len, total - h->head_len);
    lua_setfield(L, -2, "body");
}

/* Queues the handler's reply table at the top of the stack (pops it). Returns 0 when the reply
 * is malformed (nothing queued), 1 when queued or when it asked for a reset (connection closed). */
static int queue_reply(lua_State *L, conn *c, int close_after, int head_only)
{
    int t = lua_gettop(L);
    lua_getfield(L, t, "reset");
    if (lua_toboolean(L, -1)) {
        lua_pop(L, 2);
        conn_close(c, 1);
        return 1;
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "delay_ms");
    lua_Integer delay = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (!build_response(L, t, close_after, head_only)) {
        lua_pop(L, 1);   /* the reply table */
        return 0;
    }
    conn_queue(L, c);
    lua_pop(L, 1);   /* the reply table */
    c->close_after_write = close_after;
    c->send_at_ms = delay > 0 ? now_ms() + delay : 0;
    return 1;
}

/* Runs the handler for the complete request of raw length `total`; queues its reply, or waits for
 * server:respond when the handler answers {defer = true}. A handler error is stored in stack slot
 * `errslot` (first one wins). Returns 1 (the request was handled). */
static int serve_request(lua_State *L, conn *c, size_t total, int handler, int errslot)
{
    const head *h = &c->h;
    int close_after = h->conn_close || (h->minor == 0 && !h->conn_keep_alive);
    int head_only = span_ieq(c->in, h->method, "HEAD");
    lua_pushvalue(L, handler);
    push_request(L, c, total);
    /* drop the request bytes before the call: the handler cannot see them twice */
    memmove(c->in, c->in + total, c->in_len - total);
    c->in_len -= total;
    conn_next_request(c);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        if (lua_isnil(L, errslot)) lua_replace(L, errslot); else lua_pop(L, 1);
        queue_simple(L, c, 500, 1);
        return 1;
    }
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        queue_simple(L, c, 500, 1);
        return 1;
    }
    lua_getfield(L, -1, "defer");
    int defer = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (defer) {
        lua_pop(L, 1);
        c->deferred = 1;
        c->deferred_close = close_after;
        c->deferred_head_only = head_only;
        return 1;
    }
    if (!queue_reply(L, c, close_after, head_only)) queue_simple(L, c, 500, 1);
    return 1;
}

/* The most a connection buffers: a whole request of the largest allowed size, plus room for
 * chunk framing and a pipelined request's start. */
static size_t buffer_limit(const httpd *s, const conn *c)
{
    return s->max_header + (c->head_ok ? c->limit : s->max_body) + 65536;
}

/* Once the head is whole: the body limit, from limiter(head) when step() was given one (it
 * returns the limit in bytes, at most max_body_bytes, and optionally the reply table for a body
 * past it). A limiter error is stored in `errslot`; the server's limit applies then. */
static void choose_limit(lua_State *L, httpd *s, conn *c, int limiter, int errslot)
{
    c->limit = s->max_body;
    if (limiter == 0) return;
    lua_pushvalue(L, limiter);
    push_head(L, c);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
        if (lua_isnil(L, errslot)) lua_replace(L, errslot); else lua_pop(L, 1);
        return;
    }
    int isnum;
    lua_Integer n = lua_tointegerx(L, -2, &isnum);
    if (isnum && n >= 0 && (lua_Unsigned)n < s->max_body) c->limit = (size_t)n;
    if (lua_istable(L, -1)) {
        int head_only = span_ieq(c->in, c->h.method, "HEAD");
        lua_pushvalue(L, -1);
        if (build_response(L, lua_gettop(L), 1, head_only)) {
            size_t n_reply;
            const char *reply = lua_tolstring(L, -1, &n_reply);
            c->reject = malloc(n_reply ? n_reply : 1);
            if (c->reject) { memcpy(c->reject, reply, n_reply); c->reject_len = n_reply; }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
}

/* Answers a request whose body is past its limit: the limiter's reply or a plain 413; closes. */
static void reject_body(lua_State *L, conn *c)
{
    c->in_len = 0;
    if (c->reject) {
        lua_pushlstring(L, c->reject, c->reject_len);
        conn_queue(L, c);
        c->close_after_write = 1;
    } else {
        queue_simple(L, c, 413, 1);
    }
}

/* Answers every complete request waiting in the buffer, one at a time. */
static int serve_buffered(lua_State *L, httpd *s, conn *c, int handler, int limiter, int errslot, int64_t now)
{
    int served = 0;
    while (c->fd >= 0 && !conn_reply_pending(c) && !c->deferred && c->in_len > 0) {
        size_t total = 0;
        int r = COMPLETE;
        if (c->deadline_ms == 0) c->deadline_ms = now + s->head_timeout_ms;   /* the head's first byte */
        if (!c->head_ok) {
            r = parse_head(c->in, c->in_len, s->max_header, &c->h, &c->head_scan, &s->examined);
            if (r == COMPLETE) {
                c->head_ok = 1;
                c->deadline_ms = now + s->body_timeout_ms;
                choose_limit(L, s, c, limiter, errslot);
                if (c->fd < 0) break;
            }
        }
        if (r == COMPLETE) r = request_complete(c, c->limit, &total, &s->examined);
        if (r == NEED_MORE && c->in_len >= buffer_limit(s, c)) r = TOO_LARGE_BODY;   /* framing overhead */
        if (r == NEED_MORE) {
            if (c->head_ok && c->h.expect_continue && !c->continue_sent && c->h.minor == 1) {
                lua_pushliteral(L, "HTTP/1.1 100 Continue\r\n\r\n");
                conn_queue(L, c);
                c->continue_sent = 1;
            }
            break;
        }
        if (r == BAD) { c->in_len = 0; queue_simple(L, c, 400, 1); break; }
        if (r == TOO_LARGE_HEAD) { c->in_len = 0; queue_simple(L, c, 431, 1); break; }
        if (r == TOO_LARGE_BODY) { reject_body(L, c); break; }
        served += serve_request(L, c, total, handler, errslot);
    }
    return served;
}

/* A request not whole by its deadline (slow head or body, slowloris): 408, then the connection
 * closes. */
static void check_deadline(lua_State *L, conn *c, int64_t now)
{
    if (c->fd < 0 || c->deadline_ms == 0 || now < c->deadline_ms || c->deferred || conn_reply_pending(c)) return;
    c->in_len = 0;
    conn_next_request(c);
    queue_simple(L, c, 408, 1);
}

#ifdef AWSNET_FUZZ
/* For tests/fuzz/httpd_parser.c: parses `buf` as what a connection received, first as one read
 * and then (on a copy) as reads cut at `split`, and builds the request table as step() would;
 * returns the parser's verdict for the whole buffer. `buf` is decoded in place. */
int httpd_fuzz_request(lua_State *L, char *buf, size_t len, size_t split);
int httpd_fuzz_request(lua_State *L, char *buf, size_t len, size_t split)
{
    uint64_t examined = 0;
    int verdict = 0;
    char *copy = malloc(len ? len : 1);
    if (!copy) return 0;
    memcpy(copy, buf, len);
    for (int pass = 0; pass < 2; pass++) {
        conn c;
        memset(&c, 0, sizeof c);
        c.fd = -1;
        c.in = pass == 0 ? buf : copy;
        /* pass 1 sees the bytes arrive in two reads: parse state carries over between them */
        size_t first = pass == 0 ? len : (split < len ? split : len);
        int r = NEED_MORE;
        size_t total = 0;
        for (int read = 0; read < 2 && r == NEED_MORE; read++) {
            c.in_len = read == 0 ? first : len;
            r = c.head_ok ? COMPLETE : parse_head(c.in, c.in_len, 4096, &c.h, &c.head_scan, &examined);
            if (r == COMPLETE) { c.head_ok = 1; r = request_complete(&c, 65536, &total, &examined); }
            if (first == len) break;
        }
        if (r == COMPLETE) {
            push_request(L, &c, total);
            lua_pop(L, 1);
        }
        if (pass == 0) verdict = r;
    }
    free(copy);
    return verdict;
}
#endif

static void conn_read(httpd *s, conn *c)
{
    size_t limit = buffer_limit(s, c);
    for (;;) {
        if (c->in_cap - c->in_len < READ_CHUNK) {
            size_t cap = c->in_cap ? c->in_cap * 2 : READ_CHUNK * 2;
            if (cap > limit + READ_CHUNK) cap = limit + READ_CHUNK;
            if (cap <= c->in_cap) return;   /* full: the parser will reject the request */
            char *p = realloc(c->in, cap);
            if (!p) { conn_close(c, 1); return; }
            c->in = p;
            c->in_cap = cap;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) { c->in_len += (size_t)n; continue; }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0 && errno == EINTR) continue;
        conn_close(c, 0);   /* EOF or error: the peer is gone */
        return;
    }
}

static void conn_write(conn *c)
{
    while (conn_reply_pending(c)) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) { c->out_off += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        conn_close(c, 0);
        return;
    }
    if (c->close_after_write) { conn_close(c, 0); return; }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    c->send_at_ms = 0;
}

/* The idle keep-alive connection (no request begun, nothing to send, no deferred reply) least
 * recently active, or -1. */
static int idlest(const httpd *s)
{
    int best = -1;
    for (int i = 0; i < s->max_conns; i++) {
        const conn *c = &s->conns[i];
        if (c->fd < 0 || c->in_len > 0 || c->deferred || conn_reply_pending(c)) continue;
        if (best < 0 || c->last_active_ms < s->conns[best].last_active_ms) best = i;
    }
    return best;
}

/* Accepts what waits, each into a free slot; with none free, a client's idle keep-alive connection
 * is closed to make room (as servers do), so that clients which leave connections open cannot
 * keep new ones waiting until the idle timeout. */
static void accept_all(httpd *s, int64_t now)
{
    for (;;) {
        int slot = -1;
        for (int i = 0; i < s->max_conns; i++) if (s->conns[i].fd < 0) { slot = i; break; }
        if (slot < 0) {
            struct pollfd p = { s->lfd, POLLIN, 0 };
            if (poll(&p, 1, 0) <= 0 || (slot = idlest(s)) < 0) return;
            conn_close(&s->conns[slot], 0);
        }
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        conn *c = &s->conns[slot];
        conn_reset(c);
        c->fd = fd;
        c->last_active_ms = now;
        c->serial = ++s->next_serial;
        c->deadline_ms = now + s->head_timeout_ms;   /* a connection that sends nothing is cut too */
    }
}

static void httpd_destroy(httpd *s)
{
    if (s->conns) {
        for (int i = 0; i < s->max_conns; i++) conn_close(&s->conns[i], 0);
        free(s->conns);
        s->conns = NULL;
    }
    if (s->lfd >= 0) { close(s->lfd); s->lfd = -1; }
}

static httpd *check_open(lua_State *L)
{
    httpd *s = luaL_checkudata(L, 1, HTTPD_MT);
    if (s->lfd < 0) luaL_argerror(L, 1, "server is closed");
    return s;
}

static int l_step(lua_State *L)
{
    httpd *s = check_open(L);
    lua_Integer timeout = luaL_checkinteger(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TFUNCTION);
    if (s->busy) return luaL_error(L, "httpd step is not reentrant");
    lua_settop(L, 4);
    lua_pushnil(L);   /* slot 5: first handler error */
    const int handler = 3, limiter = lua_isnil(L, 4) ? 0 : 4, errslot = 5;
    int64_t now = now_ms();

    struct pollfd *pfd = lua_newuserdatauv(L, sizeof *pfd * (size_t)(s->max_conns + 1), 0);
    int *owner = lua_newuserdatauv(L, sizeof *owner * (size_t)(s->max_conns + 1), 0);
    int n = 0, free_slots = 0;
    int64_t wait = timeout < 0 ? 0 : timeout;
    for (int i = 0; i < s->max_conns; i++) {
        conn *c = &s->conns[i];
        if (c->fd < 0) { free_slots++; continue; }
        short ev = POLLIN;
        if (c->deferred) {
            ev = 0;   /* nothing to read or write until server:respond */
        } else if (conn_reply_pending(c)) {
            if (c->send_at_ms > now) {
                ev = 0;
                if (c->send_at_ms - now < wait) wait = c->send_at_ms - now;
            } else {
                ev = POLLOUT;
                wait = 0;
            }
        } else if (c->deadline_ms > 0) {
            int64_t left = c->deadline_ms > now ? c->deadline_ms - now : 0;
            if (left < wait) wait = left;
        }
        pfd[n] = (struct pollfd){ c->fd, ev, 0 };
        owner[n++] = i;
    }
    /* with no free slot, only when an idle connection could make room (accept_all) */
    if (free_slots > 0 || idlest(s) >= 0) { pfd[n] = (struct pollfd){ s->lfd, POLLIN, 0 }; owner[n++] = -1; }

    int ready = poll(pfd, (nfds_t)n, (int)wait);
    if (ready < 0 && errno != EINTR) return luaL_error(L, "httpd poll failed: %s", strerror(errno));
    now = now_ms();
    s->busy = 1;
    int served = 0;
    for (int k = 0; k < n && ready > 0; k++) {
        if (owner[k] < 0) { if (pfd[k].revents & POLLIN) accept_all(s, now); continue; }
        conn *c = &s->conns[owner[k]];
        if (pfd[k].revents == 0 || c->fd != pfd[k].fd) continue;
        c->last_active_ms = now;
        if (pfd[k].revents & POLLOUT) conn_write(c);
        else if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) conn_read(s, c);
    }
    for (int i = 0; i < s->max_conns; i++) {
        conn *c = &s->conns[i];
        if (c->fd < 0) continue;
        served += serve_buffered(L, s, c, handler, limiter, errslot, now);
        check_deadline(L, c, now);
        if (c->fd >= 0 && conn_reply_pending(c) && c->send_at_ms <= now) conn_write(c);
        if (c->fd >= 0 && !conn_reply_pending(c) && !c->deferred && now - c->last_active_ms > IDLE_TIMEOUT_MS)
            conn_close(c, 0);
    }
    s->busy = 0;
    if (s->close_requested) httpd_destroy(s);
    if (!lua_isnil(L, errslot)) {
        lua_pushvalue(L, errslot);
        return lua_error(L);
    }
    lua_pushinteger(L, served);
    return 1;
}

/* server:respond(id, reply) -> true, or false when that connection is gone (closed, or not
 * waiting for a deferred reply). */
static int l_respond(lua_State *L)
{
    httpd *s = check_open(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    if (s->busy) return luaL_error(L, "httpd respond is not allowed inside step");
    conn *c = NULL;
    for (int i = 0; i < s->max_conns; i++)
        if (s->conns[i].fd >= 0 && s->conns[i].serial == id && s->conns[i].deferred) c = &s->conns[i];
    if (!c) { lua_pushboolean(L, 0); return 1; }
    c->deferred = 0;
    lua_settop(L, 3);
    if (!queue_reply(L, c, c->deferred_close, c->deferred_head_only)) queue_simple(L, c, 500, 1);
    if (c->fd >= 0) c->last_active_ms = now_ms();
    lua_pushboolean(L, 1);
    return 1;
}

/* server:stats() -> {bytes_examined, connections, deferred}: the parser's work so far (bytes it
 * looked at), the open connections and those waiting for server:respond. */
static int l_stats(lua_State *L)
{
    httpd *s = check_open(L);
    int open = 0, deferred = 0;
    for (int i = 0; i < s->max_conns; i++) {
        if (s->conns[i].fd < 0) continue;
        open++;
        deferred += s->conns[i].deferred;
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)s->examined);
    lua_setfield(L, -2, "bytes_examined");
    lua_pushinteger(L, open);
    lua_setfield(L, -2, "connections");
    lua_pushinteger(L, deferred);
    lua_setfield(L, -2, "deferred");
    return 1;
}

static int l_port(lua_State *L)
{
    httpd *s = check_open(L);
    lua_pushinteger(L, s->port);
    return 1;
}

static int l_close(lua_State *L)
{
    httpd *s = luaL_checkudata(L, 1, HTTPD_MT);
    if (s->busy) s->close_requested = 1; else httpd_destroy(s);
    return 0;
}

static int l_tostring(lua_State *L)
{
    httpd *s = luaL_checkudata(L, 1, HTTPD_MT);
    if (s->lfd < 0) lua_pushliteral(L, "awsnet.httpd (closed)");
    else lua_pushfstring(L, "awsnet.httpd (port %d)", s->port);
    return 1;
}

static size_t opt_size(lua_State *L, int t, const char *name, size_t def, size_t max)
{
    lua_getfield(L, t, name);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); return def; }
    int isnum;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    if (!isnum || v < 1 || (lua_Unsigned)v > max) luaL_error(L, "httpd.listen: bad %s", name);
    lua_pop(L, 1);
    return (size_t)v;
}

/* Binds a listening socket on a loopback address; returns the fd or -1 with errno set. */
static int bind_loopback(const char *host, int port, int *bound_port, const char **why)
{
    struct sockaddr_storage ss;
    socklen_t slen;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127) { *why = "not a loopback address"; return -1; }
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        slen = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) { *why = "not a loopback address"; return -1; }
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        slen = sizeof *v6;
    } else {
        *why = "not an IP address";
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { *why = strerror(errno); return -1; }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &slen) < 0) {
        *why = strerror(errno);
        close(fd);
        return -1;
    }
    *bound_port = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
    return fd;
}

static int l_listen(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "host");
    const char *host = luaL_optstring(L, -1, "127.0.0.1");
    lua_getfield(L, 1, "port");
    lua_Integer port = luaL_optinteger(L, -1, 0);
    if (port < 0 || port > 65535) return luaL_argerror(L, 1, "port out of range");
    size_t max_header = opt_size(L, 1, "max_header_bytes", 16384, 1 << 20);
    size_t max_body = opt_size(L, 1, "max_body_bytes", 16u << 20, 256u << 20);
    size_t max_conns = opt_size(L, 1, "max_connections", 64, 4096);
    size_t head_timeout = opt_size(L, 1, "head_timeout_ms", 10000, 3600000);
    size_t body_timeout = opt_size(L, 1, "body_timeout_ms", 60000, 3600000);

    httpd *s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    s->lfd = -1;
    luaL_setmetatable(L, HTTPD_MT);
    s->conns = calloc(max_conns, sizeof *s->conns);
    if (!s->conns) return luaL_error(L, "httpd.listen: out of memory");
    s->max_conns = (int)max_conns;
    for (int i = 0; i < s->max_conns; i++) s->conns[i].fd = -1;
    s->max_header = max_header;
    s->max_body = max_body;
    s->head_timeout_ms = (int64_t)head_timeout;
    s->body_timeout_ms = (int64_t)body_timeout;
    const char *why = NULL;
    s->lfd = bind_loopback(host, (int)port, &s->port, &why);
    if (s->lfd < 0) {
        int in_use = errno == EADDRINUSE;
        httpd_destroy(s);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot listen on %s:%d: %s", host, (int)port, why);
        lua_pushstring(L, in_use ? "in_use" : "listen");
        return 3;
    }
    return 1;
}

/* Monotonic seconds (fractional): lets Lua loops around step() measure wall time. */
static int l_monotonic(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)now_ms() / 1000.0);
    return 1;
}

static int l_gc(lua_State *L)
{
    httpd_destroy(luaL_checkudata(L, 1, HTTPD_MT));
    return 0;
}

void httpd_open(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "step", l_step }, { "respond", l_respond }, { "stats", l_stats }, { "port", l_port },
        { "close", l_close }, { NULL, NULL },
    };
    static const luaL_Reg funcs[] = {
        { "listen", l_listen }, { "monotonic", l_monotonic }, { NULL, NULL },
    };
    core_handle_type(L, HTTPD_MT, methods, l_gc);
    luaL_getmetatable(L, HTTPD_MT);
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    core_register(L, "httpd", funcs);
}
