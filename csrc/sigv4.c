/* sigv4: canonical request, string to sign and signature (AWS Signature Version 4).
 *
 * Everything a signature needs is computed here in one pass over the request so that signing
 * from Lua costs a few microseconds; the Lua layer (awsnet.sigv4) only checks arguments and
 * wraps errors. Scratch memory lives in one Lua userdata per call (an arena), so an error raised
 * half-way leaks nothing. */

/* The low-level SHA-256 calls avoid EVP's per-call provider lookup, which costs more than the
 * hashing of a short canonical request; they are deprecated, not removed, in OpenSSL 3. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "sigv4.h"

#define KEY_CACHE_SLOTS 16
#define ALGORITHM "AWS4-HMAC-SHA256"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define REDACTED "[redacted]"

typedef struct {
    const char *p;
    size_t n;
} span;

/* ---- SHA-256 and HMAC ------------------------------------------------------------------- */

/* An HMAC key ready for use: the hash states after absorbing key^ipad and key^opad. */
typedef struct {
    SHA256_CTX inner, outer;
} hmac_key;

static void hmac_key_init(hmac_key *k, const void *key, size_t len)
{
    unsigned char block[SHA256_CBLOCK], ipad[SHA256_CBLOCK], opad[SHA256_CBLOCK];
    memset(block, 0, sizeof block);
    if (len > SHA256_CBLOCK)
        SHA256(key, len, block);
    else
        memcpy(block, key, len);
    for (size_t i = 0; i < SHA256_CBLOCK; i++) {
        ipad[i] = block[i] ^ 0x36;
        opad[i] = block[i] ^ 0x5c;
    }
    SHA256_Init(&k->inner);
    SHA256_Update(&k->inner, ipad, sizeof ipad);
    SHA256_Init(&k->outer);
    SHA256_Update(&k->outer, opad, sizeof opad);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
}

static void hmac(const hmac_key *k, const void *msg, size_t len, unsigned char out[SHA256_DIGEST_LENGTH])
{
    SHA256_CTX c = k->inner;
    unsigned char inner[SHA256_DIGEST_LENGTH];
    SHA256_Update(&c, msg, len);
    SHA256_Final(inner, &c);
    c = k->outer;
    SHA256_Update(&c, inner, sizeof inner);
    SHA256_Final(out, &c);
}

static void hmac_raw(const void *key, size_t keylen, const void *msg, size_t len,
                     unsigned char out[SHA256_DIGEST_LENGTH])
{
    hmac_key k;
    hmac_key_init(&k, key, keylen);
    hmac(&k, msg, len, out);
    OPENSSL_cleanse(&k, sizeof k);
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(data, n, d);
    to_hex(d, sizeof d, out);
}

/* ---- signing-key cache (per Lua state, in an upvalue) ------------------------------------ */

typedef struct {
    unsigned char id[SHA256_DIGEST_LENGTH]; /* hash of secret, date, region, service */
    hmac_key key;
    int used;
} key_slot;

typedef struct {
    key_slot slot[KEY_CACHE_SLOTS];
    unsigned next;
} key_cache;

/* The kSigning key of the SigV4 derivation, from the cache when the scope was seen before. */
static const hmac_key *signing_key(key_cache *cache, span secret, const char *date, span region,
                                   span service)
{
    unsigned char id[SHA256_DIGEST_LENGTH];
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, secret.p, secret.n);
    SHA256_Update(&c, "", 1);
    SHA256_Update(&c, date, 8);
    SHA256_Update(&c, "", 1);
    SHA256_Update(&c, region.p, region.n);
    SHA256_Update(&c, "", 1);
    SHA256_Update(&c, service.p, service.n);
    SHA256_Final(id, &c);
    for (unsigned i = 0; i < KEY_CACHE_SLOTS; i++)
        if (cache->slot[i].used && memcmp(cache->slot[i].id, id, sizeof id) == 0)
            return &cache->slot[i].key;

    /* kDate = HMAC("AWS4" + secret, date); the caller bounds the secret to 256 bytes. */
    unsigned char k[SHA256_DIGEST_LENGTH];
    char first[4 + 256];
    memcpy(first, "AWS4", 4);
    memcpy(first + 4, secret.p, secret.n);
    hmac_raw(first, 4 + secret.n, date, 8, k);
    OPENSSL_cleanse(first, sizeof first);
    hmac_raw(k, sizeof k, region.p, region.n, k);
    hmac_raw(k, sizeof k, service.p, service.n, k);
    hmac_raw(k, sizeof k, "aws4_request", 12, k);

    key_slot *s = &cache->slot[cache->next++ % KEY_CACHE_SLOTS];
    memcpy(s->id, id, sizeof id);
    hmac_key_init(&s->key, k, sizeof k);
    s->used = 1;
    OPENSSL_cleanse(k, sizeof k);
    return &s->key;
}

static int key_cache_gc(lua_State *L)
{
    key_cache *cache = lua_touserdata(L, 1);
    OPENSSL_cleanse(cache, sizeof *cache);
    return 0;
}

/* ---- scratch arena ----------------------------------------------------------------------- */

#define ARENA_ALIGN 16

typedef struct {
    lua_State *L;
    char *base;
    size_t used, size;
} arena;

static void arena_init(lua_State *L, arena *a, size_t size)
{
    a->L = L;
    a->base = lua_newuserdatauv(L, size, 0);
    a->used = 0;
    a->size = size;
}

static void *arena_alloc(arena *a, size_t n)
{
    size_t at = (a->used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (at > a->size || n > a->size - at)
        luaL_error(a->L, "sigv4: scratch space miscounted (%d bytes)", (int)a->size); /* a bug */
    a->used = at + n;
    return a->base + at;
}

/* ---- URI encoding ------------------------------------------------------------------------- */

static int unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Encodes `in` the SigV4 way into `out` (room for 3 * n bytes): unreserved bytes stay, every
 * other byte becomes %XX. With `decode`, an existing %XX escape is first read as the byte it
 * stands for (so it comes out in the one canonical spelling); `keep_slash` keeps '/'. */
static size_t uri_encode(span in, char *out, int decode, int keep_slash)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < in.n; i++) {
        unsigned char c = (unsigned char)in.p[i];
        if (decode && c == '%' && i + 2 < in.n && hexval((unsigned char)in.p[i + 1]) >= 0 &&
            hexval((unsigned char)in.p[i + 2]) >= 0) {
            c = (unsigned char)(hexval((unsigned char)in.p[i + 1]) * 16 + hexval((unsigned char)in.p[i + 2]));
            i += 2;
        }
        if (unreserved(c) || (keep_slash && c == '/')) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = digits[c >> 4];
            out[o++] = digits[c & 15];
        }
    }
    return o;
}

/* RFC 3986 dot-segment removal, plus the collapsing of empty segments AWS services expect
 * (botocore's remove_dot_segments). `out` has room for n + 1 bytes. */
static size_t normalize_path(span in, char *out)
{
    size_t o = 0, i = 0;
    while (i < in.n) {
        size_t j = i;
        while (j < in.n && in.p[j] != '/') j++;
        size_t len = j - i;
        if (len == 0 || (len == 1 && in.p[i] == '.')) {
            /* skip */
        } else if (len == 2 && in.p[i] == '.' && in.p[i + 1] == '.') {
            while (o > 0 && out[o - 1] != '/') o--;
            if (o > 0) o--; /* drop the separator before the popped segment */
        } else {
            out[o++] = '/';
            memcpy(out + o, in.p + i, len);
            o += len;
        }
        i = j + 1;
    }
    /* `out` now holds "/seg/seg" (every segment prefixed by '/'). */
    int leading = in.n > 0 && in.p[0] == '/';
    int trailing = in.n > 0 && in.p[in.n - 1] == '/' && o > 0;
    if (!leading && o > 0) {
        memmove(out, out + 1, o - 1);
        o--;
    }
    if (o == 0 && leading) out[o++] = '/';
    else if (trailing) out[o++] = '/';
    return o;
}

/* ---- request pieces ------------------------------------------------------------------------ */

typedef struct {
    span scheme, host, path, query; /* host without userinfo or port; query without '?' */
    long port;                      /* -1 when absent */
    span before_query;              /* the URL up to '?' or '#', for presigned URLs */
} url_parts;

static int parse_url(span url, url_parts *u)
{
    const char *s = url.p, *end = url.p + url.n;
    const char *sep = NULL;
    for (const char *p = s; p + 2 < end; p++)
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') { sep = p; break; }
    if (!sep || sep == s) return 0;
    for (const char *p = s; p < sep; p++)
        if (!isalpha((unsigned char)*p)) return 0;
    u->scheme = (span){ s, (size_t)(sep - s) };
    const char *a = sep + 3, *ae = a;
    while (ae < end && *ae != '/' && *ae != '?' && *ae != '#') ae++;
    for (const char *p = ae; p > a; p--)
        if (p[-1] == '@') { a = p; break; }
    const char *h = a, *he;
    if (h < ae && *h == '[') {
        he = memchr(h, ']', (size_t)(ae - h));
        if (!he) return 0;
        he++;
    } else {
        he = h;
        while (he < ae && *he != ':') he++;
    }
    if (he == h) return 0;
    u->host = (span){ h, (size_t)(he - h) };
    u->port = -1;
    if (he < ae) {
        if (*he != ':') return 0;
        long port = 0;
        if (he + 1 == ae) return 0;
        for (const char *p = he + 1; p < ae; p++) {
            if (!isdigit((unsigned char)*p)) return 0;
            port = port * 10 + (*p - '0');
            if (port > 65535) return 0;
        }
        u->port = port;
    }
    for (const char *p = h; p < he; p++)
        if ((unsigned char)*p <= ' ' || *p == '/' || *p == '\\') return 0;
    const char *pe = ae;
    while (pe < end && *pe != '?' && *pe != '#') pe++;
    u->path = (span){ ae, (size_t)(pe - ae) };
    u->before_query = (span){ s, (size_t)(pe - s) };
    u->query = (span){ pe, 0 };
    if (pe < end && *pe == '?') {
        const char *qe = pe + 1;
        while (qe < end && *qe != '#') qe++;
        u->query = (span){ pe + 1, (size_t)(qe - pe - 1) };
    }
    return 1;
}

static int span_ieq(span a, const char *lit)
{
    size_t n = strlen(lit);
    if (a.n != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)a.p[i]) != lit[i]) return 0;
    return 1;
}

static int span_cmp(span a, span b)
{
    int c = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
    if (c) return c;
    return a.n < b.n ? -1 : a.n > b.n;
}

typedef struct {
    span lname;  /* lower-case name */
    span name;   /* as given, for the headers to send */
    span value;
    int seq;     /* arrival order, so repeated headers keep their order after sorting */
    int signed_;
} header;

typedef struct {
    span key, value; /* canonical (encoded) */
} qparam;

static int header_cmp(const void *x, const void *y)
{
    const header *a = x, *b = y;
    int c = span_cmp(a->lname, b->lname);
    return c ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

static int qparam_cmp(const void *x, const void *y)
{
    const qparam *a = x, *b = y;
    int c = span_cmp(a->key, b->key);
    return c ? c : span_cmp(a->value, b->value);
}

/* Header names a signer never signs by default: botocore's blacklist plus the signature. */
static int unsigned_by_default(span lname)
{
    return span_ieq(lname, "authorization") || span_ieq(lname, "expect") ||
           span_ieq(lname, "user-agent") || span_ieq(lname, "x-amzn-trace-id");
}

/* Appends `v` with leading/trailing whitespace removed and inner runs (including obs-fold
 * line breaks) collapsed to one space: SigV4's Trimall. */
static void add_trimall(luaL_Buffer *b, span v)
{
    int pending_space = 0, started = 0;
    for (size_t i = 0; i < v.n; i++) {
        char c = v.p[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
            pending_space = started;
            continue;
        }
        if (pending_space) luaL_addchar(b, ' ');
        pending_space = 0;
        started = 1;
        luaL_addchar(b, c);
    }
}

/* ---- reading the Lua arguments -------------------------------------------------------------- */

/* Field `k` of the table at `idx` as a span; absent -> {NULL, 0}; anything but a string raises.
 * The string stays alive because the table that holds it stays on the stack. */
static span field_string(lua_State *L, int idx, const char *k, const char *what)
{
    span s = { NULL, 0 };
    int t = lua_getfield(L, idx, k);
    if (t == LUA_TSTRING) s.p = lua_tolstring(L, -1, &s.n);
    else if (t != LUA_TNIL) luaL_error(L, "%s.%s must be a string", what, k);
    lua_pop(L, 1);
    return s;
}

static int field_flag(lua_State *L, int idx, const char *k, int dflt)
{
    int v = dflt;
    if (lua_getfield(L, idx, k) != LUA_TNIL) v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* The signing time as "YYYYMMDDTHHMMSSZ" from opts.time (epoch seconds or that string). */
static void signing_time(lua_State *L, int opts, char out[17])
{
    int t = lua_getfield(L, opts, "time");
    if (t == LUA_TNIL) {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
    } else if (t == LUA_TNUMBER) {
        time_t when = (time_t)lua_tointeger(L, -1);
        struct tm tm;
        if (!lua_isinteger(L, -1) || !gmtime_r(&when, &tm) || tm.tm_year + 1900 > 9999 ||
            tm.tm_year + 1900 < 1000)
            luaL_error(L, "opts.time must be whole epoch seconds");
        strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
    } else if (t == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        int ok = n == 16 && s[8] == 'T' && s[15] == 'Z';
        for (size_t i = 0; ok && i < 15; i++)
            if (i != 8 && !isdigit((unsigned char)s[i])) ok = 0;
        if (!ok) luaL_error(L, "opts.time must be epoch seconds or \"YYYYMMDDTHHMMSSZ\"");
        memcpy(out, s, 16);
        out[16] = '\0';
    } else {
        luaL_error(L, "opts.time must be epoch seconds or \"YYYYMMDDTHHMMSSZ\"");
    }
    lua_pop(L, 1);
}

/* Calls fn(ctx, name, value) for each header of req.headers (string or array of strings). */
typedef void (*header_fn)(void *ctx, span name, span value);

static void each_header(lua_State *L, int headers, header_fn fn, void *ctx)
{
    if (headers == 0) return;
    lua_pushnil(L);
    while (lua_next(L, headers)) {
        if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "req.headers keys must be strings");
        span name;
        name.p = lua_tolstring(L, -2, &name.n);
        if (lua_type(L, -1) == LUA_TSTRING) {
            span v;
            v.p = lua_tolstring(L, -1, &v.n);
            fn(ctx, name, v);
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            lua_Integer n = luaL_len(L, -1);
            for (lua_Integer i = 1; i <= n; i++) {
                if (lua_geti(L, -1, i) != LUA_TSTRING)
                    luaL_error(L, "req.headers[\"%s\"] must hold strings", name.p);
                span v;
                v.p = lua_tolstring(L, -1, &v.n);
                lua_pop(L, 1); /* still referenced by the array */
                fn(ctx, name, v);
            }
        } else {
            luaL_error(L, "req.headers[\"%s\"] must be a string or an array of strings", name.p);
        }
        lua_pop(L, 1);
    }
}

/* Names of headers the signer itself sets; a request's own copy of one of them is replaced. */
typedef struct {
    int date, token, content_sha256;
} replaced;

static int is_replaced(const replaced *r, span name)
{
    return span_ieq(name, "authorization") || (r->date && span_ieq(name, "x-amz-date")) ||
           (r->token && span_ieq(name, "x-amz-security-token")) ||
           (r->content_sha256 && span_ieq(name, "x-amz-content-sha256"));
}

/* Everything one signature needs, read from the arguments and derived step by step. */
typedef struct {
    int presign, headers_idx;
    span method, url, body, akid, secret, token, region, service, payload;
    int normalize, double_encode, omit_token;
    replaced rep;
    char amzdate[17], expires[24], body_hash[65];
    url_parts u;
    arena a;
    header *hs, *sorted;
    size_t nh, own_from; /* hs[own_from..nh) are the headers the signer adds */
    span host, signed_list, credential, token_in_query;
    char scope[8 + 1 + 64 + 1 + 64 + 1 + 12 + 1];
    size_t scope_n;
    qparam *qs;
    size_t nq;
} signing;

typedef struct {
    size_t count, name_bytes;
} header_count;

static void count_header(void *ctx, span name, span value)
{
    header_count *c = ctx;
    (void)value;
    c->count++;
    c->name_bytes += name.n;
}

static void add_header(signing *s, span lname, span name, span value)
{
    header *h = &s->hs[s->nh];
    h->lname = lname;
    h->name = name;
    h->value = value;
    h->seq = (int)s->nh;
    h->signed_ = 0;
    s->nh++;
}

static void fill_header(void *ctx, span name, span value)
{
    signing *s = ctx;
    if (is_replaced(&s->rep, name)) return;
    size_t start = 0, end = name.n;
    while (start < end && (name.p[start] == ' ' || name.p[start] == '\t')) start++;
    while (end > start && (name.p[end - 1] == ' ' || name.p[end - 1] == '\t')) end--;
    char *l = arena_alloc(&s->a, end - start);
    for (size_t i = start; i < end; i++) l[i - start] = (char)tolower((unsigned char)name.p[i]);
    add_header(s, (span){ l, end - start }, name, value);
}

static void add_own_header(signing *s, const char *lname, const char *name, span value)
{
    add_header(s, (span){ lname, strlen(lname) }, (span){ name, strlen(name) }, value);
}

static int has_header(const signing *s, const char *lname)
{
    for (size_t i = 0; i < s->nh; i++)
        if (span_ieq(s->hs[i].lname, lname)) return 1;
    return 0;
}

/* Splits and canonicalises the query into s->qs. */
static void parse_query(signing *s)
{
    span q = s->u.query;
    size_t i = 0;
    while (i < q.n) {
        size_t j = i;
        while (j < q.n && q.p[j] != '&') j++;
        if (j > i) {
            span pair = { q.p + i, j - i };
            const char *eq = memchr(pair.p, '=', pair.n);
            span k = { pair.p, eq ? (size_t)(eq - pair.p) : pair.n };
            span v = { eq ? eq + 1 : pair.p + pair.n, eq ? pair.n - k.n - 1 : 0 };
            char *kb = arena_alloc(&s->a, 3 * k.n), *vb = arena_alloc(&s->a, 3 * v.n);
            s->qs[s->nq].key = (span){ kb, uri_encode(k, kb, 1, 0) };
            s->qs[s->nq].value = (span){ vb, uri_encode(v, vb, 1, 0) };
            s->nq++;
        }
        i = j + 1;
    }
}

static span encoded(signing *s, span value)
{
    char *b = arena_alloc(&s->a, 3 * value.n);
    return (span){ b, uri_encode(value, b, 0, 0) };
}

static void add_param(signing *s, const char *key, span value)
{
    s->qs[s->nq].key = (span){ key, strlen(key) };
    s->qs[s->nq].value = encoded(s, value);
    s->nq++;
}

static int fail(lua_State *L, const char *code, const char *message)
{
    lua_pushnil(L);
    lua_pushstring(L, code);
    lua_pushstring(L, message);
    return 3;
}

/* ---- the signer, step by step ----------------------------------------------------------------- */

/* Reads req (1), creds (2), opts (3); leaves req.headers (or nil) at index 4. Returns an error code
 * (message in *why) for inputs the world handed us, raises for misuse. */
static const char *read_arguments(lua_State *L, signing *s, const char **why)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    s->method = field_string(L, 1, "method", "req");
    s->url = field_string(L, 1, "url", "req");
    s->body = field_string(L, 1, "body", "req");
    int ht = lua_getfield(L, 1, "headers");
    if (ht == LUA_TTABLE) s->headers_idx = 4;
    else if (ht != LUA_TNIL) luaL_error(L, "req.headers must be a table");
    s->akid = field_string(L, 2, "access_key_id", "creds");
    s->secret = field_string(L, 2, "secret_access_key", "creds");
    s->token = field_string(L, 2, "session_token", "creds");
    s->region = field_string(L, 3, "region", "opts");
    s->service = field_string(L, 3, "service", "opts");
    s->payload = field_string(L, 3, "payload_hash", "opts");
    s->normalize = field_flag(L, 3, "normalize_path", 1);
    s->double_encode = field_flag(L, 3, "double_encode", 1);
    s->omit_token = field_flag(L, 3, "omit_session_token", 0);
    if (s->presign) {
        lua_Integer expires = 3600;
        if (lua_getfield(L, 3, "expires") != LUA_TNIL) {
            int isint;
            expires = lua_tointegerx(L, -1, &isint);
            if (!isint || expires < 1) luaL_error(L, "opts.expires must be a positive integer");
        }
        lua_pop(L, 1);
        snprintf(s->expires, sizeof s->expires, "%lld", (long long)expires);
    }
    if (!s->region.p || !s->service.p) luaL_error(L, "opts.region and opts.service are required");
    if (s->region.n > 64 || s->service.n > 64) luaL_error(L, "opts.region or opts.service too long");
    if (!s->url.p) luaL_error(L, "req.url is required");
    if (!s->method.p) s->method = (span){ "GET", 3 };
    if (s->token.p && s->token.n == 0) s->token.p = NULL;
    signing_time(L, 3, s->amzdate);
    s->rep.date = !s->presign;
    s->rep.token = s->token.p && !s->omit_token && !s->presign;
    s->rep.content_sha256 = !s->presign && field_flag(L, 3, "content_sha256_header", 0);
    if (!s->payload.p && field_flag(L, 3, "unsigned_payload", 0)) s->payload = (span){ "UNSIGNED-PAYLOAD", 16 };

    if (!s->akid.p || !s->secret.p || s->akid.n == 0 || s->secret.n == 0) {
        *why = "no access key id or secret access key to sign with";
        return "no_credentials";
    }
    if (s->secret.n > 256 || s->akid.n > 256) {
        *why = "access key id or secret access key longer than 256 bytes";
        return "no_credentials";
    }
    if (!parse_url(s->url, &s->u)) {
        *why = "not an absolute URL (scheme://host[:port][/path][?query])";
        return "invalid_url";
    }
    return NULL;
}

/* The payload hash: explicit, else the one a request to sign carries in x-amz-content-sha256
 * (as botocore does), else UNSIGNED-PAYLOAD when asked, else the body's SHA-256. */
static void payload_hash(lua_State *L, signing *s)
{
    if (!s->payload.p && !s->rep.content_sha256 && s->headers_idx) {
        lua_pushnil(L);
        while (lua_next(L, s->headers_idx)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
                span k;
                k.p = lua_tolstring(L, -2, &k.n);
                if (span_ieq(k, "x-amz-content-sha256")) {
                    s->payload.p = lua_tolstring(L, -1, &s->payload.n); /* held by req.headers */
                    lua_pop(L, 2);
                    break;
                }
            }
            lua_pop(L, 1);
        }
    }
    if (s->payload.p) return;
    if (s->body.p && s->body.n) sha256_hex(s->body.p, s->body.n, s->body_hash);
    else memcpy(s->body_hash, EMPTY_SHA256, 65);
    s->payload = (span){ s->body_hash, 64 };
}

/* Pushes the scratch arena, sized from the inputs: every later allocation fits in it. */
static void make_arena(lua_State *L, signing *s)
{
    header_count hc = { 0, 0 };
    each_header(L, s->headers_idx, count_header, &hc);
    size_t max_headers = hc.count + 4, qpairs = 7;
    for (size_t i = 0; i < s->u.query.n; i++) qpairs += s->u.query.p[i] == '&';
    size_t names = hc.name_bytes + 80; /* the request's names plus the four the signer adds */
    size_t credential = s->akid.n + 1 + sizeof s->scope;
    size_t path = s->u.path.n + 1;
    size_t blocks = 2 * max_headers + 2 * qpairs + 16; /* allocations, each padded to ARENA_ALIGN */
    size_t size = 2 * max_headers * sizeof(header) + qpairs * sizeof(qparam) + hc.name_bytes +
                  s->u.host.n + 8 + names /* signed list */ + 2 * 3 * names /* encoded twice */ +
                  3 * s->u.query.n + 3 * (16 + 16 + sizeof s->expires) + 2 * 3 * credential +
                  3 * (s->token.p ? s->token.n : 0) + path + 3 * path + blocks * ARENA_ALIGN;
    arena_init(L, &s->a, size);
}

/* The request's headers, then Host and the ones the signer sets; then which are signed:
 * exactly the names in opts.signed_headers, or all but the never-signed ones. */
static const char *collect_headers(lua_State *L, signing *s)
{
    header_count hc = { 0, 0 };
    each_header(L, s->headers_idx, count_header, &hc);
    s->hs = arena_alloc(&s->a, (hc.count + 4) * sizeof(header));
    each_header(L, s->headers_idx, fill_header, s);
    s->own_from = s->nh;

    url_parts *u = &s->u;
    char *host = arena_alloc(&s->a, u->host.n + 8);
    size_t hostn = 0;
    for (size_t i = 0; i < u->host.n; i++) host[hostn++] = (char)tolower((unsigned char)u->host.p[i]);
    int default_port = (span_ieq(u->scheme, "http") && u->port == 80) ||
                       (span_ieq(u->scheme, "https") && u->port == 443);
    if (u->port >= 0 && !default_port) hostn += (size_t)snprintf(host + hostn, 7, ":%ld", u->port);
    s->host = (span){ host, hostn };
    if (!has_header(s, "host")) add_own_header(s, "host", "Host", s->host);
    if (s->rep.date) add_own_header(s, "x-amz-date", "X-Amz-Date", (span){ s->amzdate, 16 });
    if (s->rep.token) add_own_header(s, "x-amz-security-token", "X-Amz-Security-Token", s->token);
    if (s->rep.content_sha256) add_own_header(s, "x-amz-content-sha256", "X-Amz-Content-Sha256", s->payload);

    if (lua_getfield(L, 3, "signed_headers") == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_geti(L, -1, i) != LUA_TSTRING) luaL_error(L, "opts.signed_headers must hold strings");
            span want;
            want.p = lua_tolstring(L, -1, &want.n);
            int found = 0;
            for (size_t j = 0; j < s->nh; j++)
                if (s->hs[j].lname.n == want.n) {
                    size_t k = 0;
                    while (k < want.n && s->hs[j].lname.p[k] == tolower((unsigned char)want.p[k])) k++;
                    if (k == want.n) s->hs[j].signed_ = found = 1;
                }
            if (!found) return lua_pushfstring(L, "signed header '%s' is not in the request", want.p);
            lua_pop(L, 1);
        }
    } else if (lua_type(L, -1) != LUA_TNIL) {
        luaL_error(L, "opts.signed_headers must be an array of names");
    } else {
        for (size_t j = 0; j < s->nh; j++) s->hs[j].signed_ = !unsigned_by_default(s->hs[j].lname);
    }
    lua_pop(L, 1);

    s->sorted = arena_alloc(&s->a, s->nh * sizeof(header));
    memcpy(s->sorted, s->hs, s->nh * sizeof(header));
    qsort(s->sorted, s->nh, sizeof(header), header_cmp);
    char *list = arena_alloc(&s->a, hc.name_bytes + 80);
    size_t n = 0;
    const header *prev = NULL;
    for (size_t j = 0; j < s->nh; j++) {
        const header *h = &s->sorted[j];
        if (!h->signed_ || (prev && span_cmp(prev->lname, h->lname) == 0)) continue;
        if (n) list[n++] = ';';
        memcpy(list + n, h->lname.p, h->lname.n);
        n += h->lname.n;
        prev = h;
    }
    s->signed_list = (span){ list, n };
    return NULL;
}

/* The query's pairs, plus the X-Amz-* parameters of a presigned URL, sorted. */
static void collect_query(signing *s)
{
    s->scope_n = (size_t)snprintf(s->scope, sizeof s->scope, "%.8s/%.*s/%.*s/aws4_request", s->amzdate,
                                  (int)s->region.n, s->region.p, (int)s->service.n, s->service.p);
    size_t qpairs = 7;
    for (size_t i = 0; i < s->u.query.n; i++) qpairs += s->u.query.p[i] == '&';
    s->qs = arena_alloc(&s->a, qpairs * sizeof(qparam));
    parse_query(s);
    if (s->presign) {
        char *cred = arena_alloc(&s->a, s->akid.n + 1 + s->scope_n);
        memcpy(cred, s->akid.p, s->akid.n);
        cred[s->akid.n] = '/';
        memcpy(cred + s->akid.n + 1, s->scope, s->scope_n);
        s->credential = (span){ cred, s->akid.n + 1 + s->scope_n };
        add_param(s, "X-Amz-Algorithm", (span){ ALGORITHM, strlen(ALGORITHM) });
        add_param(s, "X-Amz-Credential", s->credential);
        add_param(s, "X-Amz-Date", (span){ s->amzdate, 16 });
        add_param(s, "X-Amz-Expires", (span){ s->expires, strlen(s->expires) });
        add_param(s, "X-Amz-SignedHeaders", s->signed_list);
        if (s->token.p) {
            s->token_in_query = encoded(s, s->token);
            if (!s->omit_token) {
                s->qs[s->nq].key = (span){ "X-Amz-Security-Token", 20 };
                s->qs[s->nq].value = s->token_in_query;
                s->nq++;
            }
        }
    }
    qsort(s->qs, s->nq, sizeof(qparam), qparam_cmp);
}

static span canonical_uri(signing *s)
{
    span path = s->u.path.n ? s->u.path : (span){ "/", 1 };
    if (s->normalize) {
        char *np = arena_alloc(&s->a, path.n + 1);
        path = (span){ np, normalize_path(path, np) };
    }
    char *out = arena_alloc(&s->a, 3 * path.n);
    return (span){ out, uri_encode(path, out, !s->double_encode, 1) };
}

static void push_canonical_request(lua_State *L, signing *s)
{
    span uri = canonical_uri(s);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < s->method.n; i++) luaL_addchar(&b, (char)toupper((unsigned char)s->method.p[i]));
    luaL_addchar(&b, '\n');
    luaL_addlstring(&b, uri.p, uri.n);
    luaL_addchar(&b, '\n');
    for (size_t i = 0; i < s->nq; i++) {
        if (i) luaL_addchar(&b, '&');
        luaL_addlstring(&b, s->qs[i].key.p, s->qs[i].key.n);
        luaL_addchar(&b, '=');
        luaL_addlstring(&b, s->qs[i].value.p, s->qs[i].value.n);
    }
    luaL_addchar(&b, '\n');
    const header *prev = NULL;
    for (size_t j = 0; j < s->nh; j++) {
        const header *h = &s->sorted[j];
        if (!h->signed_) continue;
        if (prev && span_cmp(prev->lname, h->lname) == 0) {
            luaL_addchar(&b, ','); /* a repeated header: values joined in arrival order */
        } else {
            luaL_addlstring(&b, h->lname.p, h->lname.n);
            luaL_addchar(&b, ':');
        }
        add_trimall(&b, h->value);
        if (j + 1 == s->nh || span_cmp(s->sorted[j + 1].lname, h->lname) != 0) luaL_addchar(&b, '\n');
        prev = h;
    }
    luaL_addchar(&b, '\n');
    luaL_addlstring(&b, s->signed_list.p, s->signed_list.n);
    luaL_addchar(&b, '\n');
    luaL_addlstring(&b, s->payload.p, s->payload.n);
    luaL_pushresult(&b);
}

static void push_presigned_url(lua_State *L, signing *s, const char *signature)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, s->u.before_query.p, s->u.before_query.n);
    luaL_addchar(&b, '?');
    if (s->u.query.n) {
        luaL_addlstring(&b, s->u.query.p, s->u.query.n);
        luaL_addchar(&b, '&');
    }
    span cred = encoded(s, s->credential), list = encoded(s, s->signed_list);
    luaL_addstring(&b, "X-Amz-Algorithm=" ALGORITHM "&X-Amz-Credential=");
    luaL_addlstring(&b, cred.p, cred.n);
    luaL_addstring(&b, "&X-Amz-Date=");
    luaL_addlstring(&b, s->amzdate, 16);
    luaL_addstring(&b, "&X-Amz-Expires=");
    luaL_addstring(&b, s->expires);
    luaL_addstring(&b, "&X-Amz-SignedHeaders=");
    luaL_addlstring(&b, list.p, list.n);
    if (s->token_in_query.p) {
        luaL_addstring(&b, "&X-Amz-Security-Token=");
        luaL_addlstring(&b, s->token_in_query.p, s->token_in_query.n);
    }
    luaL_addstring(&b, "&X-Amz-Signature=");
    luaL_addstring(&b, signature);
    luaL_pushresult(&b);
}

/* The request's headers (minus the ones replaced), those the signer adds, and Authorization. */
static void push_headers(lua_State *L, signing *s, const char *signature)
{
    lua_createtable(L, 0, (int)s->nh + 2);
    int out = lua_gettop(L);
    if (s->headers_idx) {
        lua_pushnil(L);
        while (lua_next(L, s->headers_idx)) {
            span k;
            k.p = lua_tolstring(L, -2, &k.n);
            if (is_replaced(&s->rep, k)) {
                lua_pop(L, 1);
                continue;
            }
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, out);
        }
    }
    for (size_t j = s->own_from; j < s->nh; j++) {
        lua_pushlstring(L, s->hs[j].value.p, s->hs[j].value.n);
        lua_setfield(L, out, s->hs[j].name.p);
    }
    if (s->token.p && s->omit_token) { /* added after signing, not signed */
        lua_pushlstring(L, s->token.p, s->token.n);
        lua_setfield(L, out, "X-Amz-Security-Token");
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, ALGORITHM " Credential=");
    luaL_addlstring(&b, s->akid.p, s->akid.n);
    luaL_addchar(&b, '/');
    luaL_addlstring(&b, s->scope, s->scope_n);
    luaL_addstring(&b, ", SignedHeaders=");
    luaL_addlstring(&b, s->signed_list.p, s->signed_list.n);
    luaL_addstring(&b, ", Signature=");
    luaL_addstring(&b, signature);
    luaL_pushresult(&b);
    lua_setfield(L, out, "Authorization");
}

/* {canonical_request, string_to_sign, signature}; a signed session token is redacted. */
static void push_debug(lua_State *L, signing *s, int cr, const char *sts, size_t stsn, const char *signature)
{
    lua_createtable(L, 0, 3);
    span tok = s->presign ? s->token_in_query : s->token;
    if (s->token.p && !s->omit_token && tok.n >= 4) {
        lua_pushlstring(L, tok.p, tok.n);
        luaL_gsub(L, lua_tostring(L, cr), lua_tostring(L, -1), REDACTED);
        lua_remove(L, -2);
    } else {
        lua_pushvalue(L, cr);
    }
    lua_setfield(L, -2, "canonical_request");
    lua_pushlstring(L, sts, stsn);
    lua_setfield(L, -2, "string_to_sign");
    lua_pushstring(L, signature);
    lua_setfield(L, -2, "signature");
}

static int sign_request(lua_State *L, int presign)
{
    signing s;
    memset(&s, 0, sizeof s);
    s.presign = presign;
    const char *why = NULL, *code = read_arguments(L, &s, &why);
    if (code) return fail(L, code, why);
    payload_hash(L, &s);
    make_arena(L, &s); /* 5 */
    const char *bad = collect_headers(L, &s);
    if (bad) return fail(L, "invalid_request", bad);
    collect_query(&s);
    push_canonical_request(L, &s); /* 6 */

    size_t crn;
    const char *cr = lua_tolstring(L, 6, &crn);
    char crhash[65];
    sha256_hex(cr, crn, crhash);
    char sts[sizeof ALGORITHM + 17 + sizeof s.scope + 65 + 8];
    int stsn = snprintf(sts, sizeof sts, ALGORITHM "\n%s\n%s\n%s", s.amzdate, s.scope, crhash);
    const hmac_key *key = signing_key(lua_touserdata(L, lua_upvalueindex(1)), s.secret, s.amzdate,
                                      s.region, s.service);
    unsigned char sig[SHA256_DIGEST_LENGTH];
    hmac(key, sts, (size_t)stsn, sig);
    char signature[65];
    to_hex(sig, sizeof sig, signature);

    if (presign) push_presigned_url(L, &s, signature);
    else push_headers(L, &s, signature);
    push_debug(L, &s, 6, sts, (size_t)stsn, signature);
    return 2;
}

static int l_sign(lua_State *L) { return sign_request(L, 0); }
static int l_presign(lua_State *L) { return sign_request(L, 1); }

static int l_hmac_sha256(lua_State *L)
{
    size_t kn, mn;
    const char *k = luaL_checklstring(L, 1, &kn);
    const char *m = luaL_checklstring(L, 2, &mn);
    unsigned char out[SHA256_DIGEST_LENGTH];
    hmac_raw(k, kn, m, mn, out);
    lua_pushlstring(L, (const char *)out, sizeof out);
    return 1;
}

static int l_sha256_hex(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char hex[65];
    sha256_hex(s, n, hex);
    lua_pushlstring(L, hex, 64);
    return 1;
}

void sigv4_open(lua_State *L)
{
    static const luaL_Reg plain[] = {
        { "hmac_sha256", l_hmac_sha256 },
        { "sha256_hex", l_sha256_hex },
        { NULL, NULL },
    };
    static const luaL_Reg with_cache[] = {
        { "sign", l_sign },
        { "presign", l_presign },
        { NULL, NULL },
    };
    core_register(L, "sigv4", plain);
    lua_getfield(L, -1, "sigv4");
    key_cache *cache = lua_newuserdatauv(L, sizeof(key_cache), 0);
    memset(cache, 0, sizeof *cache);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, key_cache_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    luaL_setfuncs(L, with_cache, 1);
    lua_pop(L, 1);
}
