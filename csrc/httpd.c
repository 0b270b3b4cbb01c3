/* httpd — poll-based HTTP/1.1 server on loopback; see httpd.h for the contract.
 *
 * One userdata owns the listening socket and a fixed array of connections. Everything runs inside
 * server:step(): poll, accept, read, parse, call the Lua handler under lua_pcall, queue the reply,
 * write. A connection answers its requests in order: the next request is parsed only once the
 * previous reply is fully written, which also keeps pipelined requests ordered. */
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

typedef struct conn {
    int fd;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off;
    int64_t send_at_ms;      /* reply held back until this time (delay_ms) */
    int64_t last_active_ms;
    int close_after_write;
    int continue_sent;       /* "100 Continue" already sent for the request being read */
} conn;

typedef struct httpd {
    int lfd;
    int port;
    conn *conns;
    int max_conns;
    size_t max_header, max_body;
    int busy;                /* inside step(): close() is deferred */
    int close_requested;
} httpd;

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

/* Parses the head in buf[0..len): NEED_MORE, COMPLETE, BAD or TOO_LARGE_HEAD. */
static int parse_head(const char *buf, size_t len, size_t max_header, head *h)
{
    memset(h, 0, sizeof *h);
    h->content_length = -1;
    size_t scan = len < max_header ? len : max_header;
    const char *end = NULL;
    for (size_t i = 0; i + 3 < scan; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) { end = buf + i + 4; break; }
    if (!end) return len >= max_header ? TOO_LARGE_HEAD : NEED_MORE;
    h->head_len = (size_t)(end - buf);
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

/* Walks a chunked body in buf[0..len). With `out` it also appends the decoded bytes.
 * Returns COMPLETE (and *consumed), NEED_MORE, BAD or TOO_LARGE_BODY. */
static int walk_chunked(const char *buf, size_t len, size_t max_body, size_t *consumed, luaL_Buffer *out)
{
    size_t pos = 0, total = 0;
    for (;;) {
        const char *line = buf + pos, *e = find_crlf(line, buf + len);
        if (!e) return (len - pos > 1024) ? BAD : NEED_MORE;
        size_t size = 0, digits = 0;
        const char *q = line;
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
        pos = (size_t)(e - buf) + 2;
        if (size == 0) break;
        if (size > max_body || total + size > max_body) return TOO_LARGE_BODY;
        if (len - pos < size + 2) return NEED_MORE;
        if (buf[pos + size] != '\r' || buf[pos + size + 1] != '\n') return BAD;
        if (out) luaL_addlstring(out, buf + pos, size);
        total += size;
        pos += size + 2;
    }
    for (;;) {   /* trailer fields, up to the blank line; they are dropped */
        const char *e = find_crlf(buf + pos, buf + len);
        if (!e) return (len - pos > 8192) ? BAD : NEED_MORE;
        size_t line_len = (size_t)(e - (buf + pos));
        pos += line_len + 2;
        if (line_len == 0) break;
    }
    *consumed = pos;
    return COMPLETE;
}

/* Decides whether a whole request sits in the buffer; sets *total to its length in bytes. */
static int request_complete(const conn *c, const head *h, size_t max_body, size_t *total)
{
    const char *body = c->in + h->head_len;
    size_t avail = c->in_len - h->head_len;
    if (h->chunked) {
        size_t used = 0;
        int r = walk_chunked(body, avail, max_body, &used, NULL);
        if (r == COMPLETE) *total = h->head_len + used;
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
    memset(c, 0, sizeof *c);
    c->fd = -1;
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

static void push_request(lua_State *L, const conn *c, const head *h, size_t total)
{
    lua_createtable(L, 0, 5);
    lua_pushlstring(L, c->in + h->method.off, h->method.len);
    lua_setfield(L, -2, "method");
    lua_pushlstring(L, c->in + h->target.off, h->target.len);
    lua_setfield(L, -2, "target");
    lua_pushstring(L, h->minor ? "HTTP/1.1" : "HTTP/1.0");
    lua_setfield(L, -2, "version");
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
    if (h->chunked) {
        luaL_Buffer b;
        size_t used;
        luaL_buffinit(L, &b);
        walk_chunked(c->in + h->head_len, total - h->head_len, SIZE_MAX, &used, &b);
        luaL_pushresult(&b);
    } else {
        lua_pushlstring(L, c->in + h->head_len, total - h->head_len);
    }
    lua_setfield(L, -2, "body");
}

/* Runs the handler for the complete request of length `total`; queues its reply.
 * A handler error is stored in stack slot `errslot` (first one wins). Returns 1 if answered. */
static int serve_request(lua_State *L, conn *c, const head *h, size_t total,
                         int handler, int errslot)
{
    int close_after = h->conn_close || (h->minor == 0 && !h->conn_keep_alive);
    int head_only = span_ieq(c->in, h->method, "HEAD");
    lua_pushvalue(L, handler);
    push_request(L, c, h, total);
    /* drop the request bytes before the call: the handler cannot see them twice */
    memmove(c->in, c->in + total, c->in_len - total);
    c->in_len -= total;
    c->continue_sent = 0;
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        if (lua_isnil(L, errslot)) lua_replace(L, errslot); else lua_pop(L, 1);
        queue_simple(L, c, 500, 1);
        return 1;
    }
    int t = lua_gettop(L);
    if (!lua_istable(L, t)) {
        lua_pop(L, 1);
        queue_simple(L, c, 500, 1);
        return 1;
    }
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
        queue_simple(L, c, 500, 1);
        return 1;
    }
    conn_queue(L, c);
    lua_pop(L, 1);   /* the reply table */
    c->close_after_write = close_after;
    c->send_at_ms = delay > 0 ? now_ms() + delay : 0;
    return 1;
}

/* The most a connection buffers: a whole request of the largest allowed size, plus room for
 * chunk framing and a pipelined request's start. */
static size_t buffer_limit(const httpd *s) { return s->max_header + s->max_body + 65536; }

/* Answers every complete request waiting in the buffer, one at a time. */
static int serve_buffered(lua_State *L, httpd *s, conn *c, int handler, int errslot)
{
    int served = 0;
    while (c->fd >= 0 && !conn_reply_pending(c) && c->in_len > 0) {
        head h;
        size_t total = 0;
        int r = parse_head(c->in, c->in_len, s->max_header, &h);
        if (r == COMPLETE) r = request_complete(c, &h, s->max_body, &total);
        if (r == NEED_MORE && c->in_len >= buffer_limit(s)) r = TOO_LARGE_BODY;   /* framing overhead */
        if (r == NEED_MORE) {
            if (h.head_len && h.expect_continue && !c->continue_sent && h.minor == 1) {
                lua_pushliteral(L, "HTTP/1.1 100 Continue\r\n\r\n");
                conn_queue(L, c);
                c->continue_sent = 1;
            }
            break;
        }
        if (r == BAD) { c->in_len = 0; queue_simple(L, c, 400, 1); break; }
        if (r == TOO_LARGE_HEAD) { c->in_len = 0; queue_simple(L, c, 431, 1); break; }
        if (r == TOO_LARGE_BODY) { c->in_len = 0; queue_simple(L, c, 413, 1); break; }
        served += serve_request(L, c, &h, total, handler, errslot);
    }
    return served;
}

#ifdef AWSNET_FUZZ
/* For tests/fuzz/httpd_parser.c: parses `buf` as what a connection received, and builds the
 * request table as step() would; returns the parser's verdict. */
int httpd_fuzz_request(lua_State *L, const char *buf, size_t len);
int httpd_fuzz_request(lua_State *L, const char *buf, size_t len)
{
    conn c;
    memset(&c, 0, sizeof c);
    c.fd = -1;
    c.in = (char *)buf;
    c.in_len = len;
    head h;
    size_t total = 0;
    int r = parse_head(buf, len, 4096, &h);
    if (r == COMPLETE) r = request_complete(&c, &h, 65536, &total);
    if (r == COMPLETE) {
        push_request(L, &c, &h, total);
        lua_pop(L, 1);
    }
    return r;
}
#endif

static void conn_read(httpd *s, conn *c)
{
    size_t limit = buffer_limit(s);
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

static void accept_all(httpd *s, int64_t now)
{
    for (;;) {
        int slot = -1;
        for (int i = 0; i < s->max_conns; i++) if (s->conns[i].fd < 0) { slot = i; break; }
        if (slot < 0) return;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        conn *c = &s->conns[slot];
        conn_reset(c);
        c->fd = fd;
        c->last_active_ms = now;
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
    if (s->busy) return luaL_error(L, "httpd step is not reentrant");
    lua_settop(L, 3);
    lua_pushnil(L);   /* slot 4: first handler error */
    const int handler = 3, errslot = 4;
    int64_t now = now_ms();

    struct pollfd *pfd = lua_newuserdatauv(L, sizeof *pfd * (size_t)(s->max_conns + 1), 0);
    int *owner = lua_newuserdatauv(L, sizeof *owner * (size_t)(s->max_conns + 1), 0);
    int n = 0, free_slots = 0;
    int64_t wait = timeout < 0 ? 0 : timeout;
    for (int i = 0; i < s->max_conns; i++) {
        conn *c = &s->conns[i];
        if (c->fd < 0) { free_slots++; continue; }
        short ev = POLLIN;
        if (conn_reply_pending(c)) {
            if (c->send_at_ms > now) {
                ev = 0;
                if (c->send_at_ms - now < wait) wait = c->send_at_ms - now;
            } else {
                ev = POLLOUT;
                wait = 0;
            }
        }
        pfd[n] = (struct pollfd){ c->fd, ev, 0 };
        owner[n++] = i;
    }
    if (free_slots > 0) { pfd[n] = (struct pollfd){ s->lfd, POLLIN, 0 }; owner[n++] = -1; }

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
        served += serve_buffered(L, s, c, handler, errslot);
        if (c->fd >= 0 && conn_reply_pending(c) && c->send_at_ms <= now) conn_write(c);
        if (c->fd >= 0 && !conn_reply_pending(c) && now - c->last_active_ms > IDLE_TIMEOUT_MS)
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
        { "step", l_step }, { "port", l_port }, { "close", l_close }, { NULL, NULL },
    };
    static const luaL_Reg funcs[] = {
        { "listen", l_listen }, { "monotonic", l_monotonic }, { NULL, NULL },
    };
    if (luaL_newmetatable(L, HTTPD_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, l_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    core_register(L, "httpd", funcs);
}
