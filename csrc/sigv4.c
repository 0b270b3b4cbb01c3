/* sigv4: canonical request, string to sign and signature (AWS Signature Version 4).
 *
 * Everything a signature needs is computed here in one pass over the request so that signing
 * from Lua costs a few microseconds; the Lua layer (awsnet.sigv4) documents the contract and
 * wraps errors. Scratch memory for a call (an arena) is on the C stack, or in a Lua userdata for a
 * large request, so an error raised half-way leaks nothing. */

/* The low-level SHA-256 calls avoid EVP's per-call provider lookup, which costs more than the
 * hashing of a short canonical request; they are deprecated, not removed, in OpenSSL 3. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "sigv4.h"

#define KEY_CACHE_SLOTS 16
#define KEY_ID_MAX (256 + 1 + 8 + 1 + 64 + 1 + 64) /* the caller bounds each part */
#define ALGORITHM "AWS4-HMAC-SHA256"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define REDACTED "[redacted]"

typedef struct {
    const char *p;
    size_t n;
} span;

static char *append(char *out, span s)
{
    memcpy(out, s.p, s.n);
    return out + s.n;
}

/* ---- SHA-256 and HMAC ------------------------------------------------------------------- */

/* SHA256() would go through EVP's provider lookup (a lock and name compares) on every call. */
static void sha256(const void *data, size_t n, unsigned char out[SHA256_DIGEST_LENGTH])
{
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, data, n);
    SHA256_Final(out, &c);
}

/* An HMAC key ready for use: the hash states after absorbing key^ipad and key^opad. */
typedef struct {
    SHA256_CTX inner, outer;
} hmac_key;

static void hmac_key_init(hmac_key *k, const void *key, size_t len)
{
    unsigned char block[SHA256_CBLOCK], ipad[SHA256_CBLOCK], opad[SHA256_CBLOCK];
    memset(block, 0, sizeof block);
    if (len > SHA256_CBLOCK)
        sha256(key, len, block);
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
    sha256(data, n, d);
    to_hex(d, sizeof d, out);
}

/* ---- signing-key cache (per Lua state, in an upvalue) ------------------------------------ */

typedef struct {
    char id[KEY_ID_MAX]; /* secret, date, region, service, NUL-separated */
    size_t id_n;
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
    /* The cache is keyed by the inputs themselves: comparing them is cheaper than hashing. */
    char id[KEY_ID_MAX];
    char *p = append(id, secret);
    *p++ = '\0';
    p = append(p, (span){ date, 8 });
    *p++ = '\0';
    p = append(p, region);
    *p++ = '\0';
    p = append(p, service);
    size_t id_n = (size_t)(p - id);
    for (unsigned i = 0; i < KEY_CACHE_SLOTS; i++) {
        key_slot *slot = &cache->slot[(cache->next - 1 - i) % KEY_CACHE_SLOTS]; /* newest first */
        if (slot->used && slot->id_n == id_n && memcmp(slot->id, id, id_n) == 0) {
            OPENSSL_cleanse(id, id_n);
            return &slot->key;
        }
    }

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
    memcpy(s->id, id, id_n);
    s->id_n = id_n;
    OPENSSL_cleanse(id, id_n);
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

/* Uses `stack` (of `stack_size` bytes) when the arena fits, else a userdata; pushes one value
 * either way (nil or the userdata) so the caller's stack layout does not depend on the size. */
static void arena_init(lua_State *L, arena *a, size_t size, char *stack, size_t stack_size)
{
    a->L = L;
    if (size <= stack_size) {
        a->base = stack;
        lua_pushnil(L);
    } else {
        a->base = lua_newuserdatauv(L, size, 0);
    }
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

/* ASCII only: <ctype.h> follows the process locale, and SigV4 does not. */
static int ascii_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int ascii_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static char ascii_lower(unsigned char c) { return (char)(c >= 'A' && c <= 'Z' ? c + 32 : c); }
static char ascii_upper(unsigned char c) { return (char)(c >= 'a' && c <= 'z' ? c - 32 : c); }

static int unreserved(unsigned char c)
{
    return ascii_alpha(c) || ascii_digit(c) || c == '-' || c == '_' || c == '.' || c == '~';
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
        if (!ascii_alpha((unsigned char)*p)) return 0;
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
            if (!ascii_digit((unsigned char)*p)) return 0;
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

/* Case-insensitive equality with a lower-case literal; the literal's length is known. */
#define span_ieq(a, lit) span_ieq_n((a), (lit), sizeof(lit) - 1)

static int span_ieq_n(span a, const char *lit, size_t n)
{
    if (a.n != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)a.p[i]) != lit[i]) return 0;
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
    span value;
    int seq;     /* arrival order, so repeated headers keep their order after sorting */
    int key;     /* for a header the signer adds: its name's enum field */
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

/* ---- reading the Lua arguments -------------------------------------------------------------- */

/* The fields read from req, creds and opts, and the keys of the results. Their names are kept
 * as Lua strings in upvalues 2..FIELD_COUNT+1 of sign/presign: using a Lua string as key skips
 * lua_getfield's interning of a C string, which over a call's two dozen keys costs about as much
 * as the hashing. */
enum field {
    F_METHOD, F_URL, F_BODY, F_HEADERS, F_ACCESS_KEY_ID, F_SECRET_ACCESS_KEY, F_SESSION_TOKEN, F_REGION,
    F_SERVICE, F_PAYLOAD_HASH, F_NORMALIZE_PATH, F_DOUBLE_ENCODE, F_OMIT_SESSION_TOKEN, F_EXPIRES,
    F_CONTENT_SHA256_HEADER, F_UNSIGNED_PAYLOAD, F_SIGNED_HEADERS, F_TIME,
    /* and the names of what is returned */
    K_HOST, K_X_AMZ_DATE, K_X_AMZ_SECURITY_TOKEN, K_X_AMZ_CONTENT_SHA256, K_AUTHORIZATION, K_CANONICAL_REQUEST,
    K_STRING_TO_SIGN, K_SIGNATURE, FIELD_COUNT
};

static const char *const FIELD_NAMES[FIELD_COUNT] = {
    "method", "url", "body", "headers", "access_key_id", "secret_access_key", "session_token", "region",
    "service", "payload_hash", "normalize_path", "double_encode", "omit_session_token", "expires",
    "content_sha256_header", "unsigned_payload", "signed_headers", "time",
    "Host", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256", "Authorization", "canonical_request",
    "string_to_sign", "signature",
};

/* t[name] = value on top of the stack, for a name kept in the upvalues; pops the value. */
static void set_field(lua_State *L, int t, enum field f)
{
    t = lua_absindex(L, t);
    lua_pushvalue(L, lua_upvalueindex(2 + (int)f));
    lua_insert(L, -2);
    lua_rawset(L, t);
}

static int get_field(lua_State *L, int idx, enum field f)
{
    lua_pushvalue(L, lua_upvalueindex(2 + (int)f));
    return lua_gettable(L, idx);
}

/* Field `f` of the table at `idx` as a span; absent -> {NULL, 0}; anything but a string raises.
 * The string stays alive because the table that holds it stays on the stack. */
static span field_string(lua_State *L, int idx, enum field f, const char *what)
{
    span s = { NULL, 0 };
    int t = get_field(L, idx, f);
    if (t == LUA_TSTRING) s.p = lua_tolstring(L, -1, &s.n);
    else if (t != LUA_TNIL) luaL_error(L, "%s.%s must be a string", what, FIELD_NAMES[f]);
    lua_pop(L, 1);
    return s;
}

/* The string value on top of the stack (held by its table, which stays on the stack). */
static span value_string(lua_State *L, enum field f, const char *what)
{
    span s = { NULL, 0 };
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s.%s must be a string", what, FIELD_NAMES[f]);
    s.p = lua_tolstring(L, -1, &s.n);
    return s;
}

static void put_digits(char *out, long long v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10) out[i] = (char)('0' + v % 10);
}

/* Epoch seconds -> "YYYYMMDDTHHMMSSZ" by calendar arithmetic (Howard Hinnant's civil_from_days):
 * no time-zone machinery, which takes a lock on every call. 0 when outside years 1000-9999. */
static int format_amzdate(long long t, char out[17])
{
    long long days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    long long secs = t - days * 86400;
    long long z = days + 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    long long d = doy - (153 * mp + 2) / 5 + 1;
    long long m = mp < 10 ? mp + 3 : mp - 9;
    long long y = yoe + era * 400 + (m <= 2);
    if (y < 1000 || y > 9999) return 0;
    put_digits(out, y, 4);
    put_digits(out + 4, m, 2);
    put_digits(out + 6, d, 2);
    out[8] = 'T';
    put_digits(out + 9, secs / 3600, 2);
    put_digits(out + 11, secs / 60 % 60, 2);
    put_digits(out + 13, secs % 60, 2);
    out[15] = 'Z';
    out[16] = '\0';
    return 1;
}

/* The signing time as "YYYYMMDDTHHMMSSZ" from the opts.time value on top of the stack (epoch
 * seconds or that string). */
static void signing_time(lua_State *L, char out[17])
{
    int t = lua_type(L, -1);
    if (t == LUA_TNUMBER) {
        if (!lua_isinteger(L, -1) || !format_amzdate((long long)lua_tointeger(L, -1), out))
            luaL_error(L, "opts.time must be whole epoch seconds (years 1000 to 9999)");
    } else if (t == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        int ok = n == 16 && s[8] == 'T' && s[15] == 'Z';
        for (size_t i = 0; ok && i < 15; i++)
            if (i != 8 && !ascii_digit((unsigned char)s[i])) ok = 0;
        if (!ok) luaL_error(L, "opts.time must be epoch seconds or \"YYYYMMDDTHHMMSSZ\"");
        memcpy(out, s, 16);
        out[16] = '\0';
    } else {
        luaL_error(L, "opts.time must be epoch seconds or \"YYYYMMDDTHHMMSSZ\"");
    }
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
    int normalize, double_encode, omit_token, unsigned_payload, has_signed_headers;
    replaced rep;
    char amzdate[17], expires[24], body_hash[65];
    url_parts u;
    arena a;
    header *hs, *sorted;
    size_t nh, own_from; /* hs[own_from..nh) are the headers the signer adds */
    size_t header_count, header_name_bytes, header_value_bytes;
    span cr;           /* the canonical request, in the arena */
    size_t cr_capacity;
    size_t token_at;   /* where the signed session token sits in it (0: not there) */
    span carried_payload;
    span host, signed_list, credential, token_in_query;
    char scope[8 + 1 + 64 + 1 + 64 + 1 + 12 + 1];
    size_t scope_n;
    qparam *qs;
    size_t nq;
} signing;

/* First pass over req.headers: how many, how long their names, and the payload hash the
 * request carries in x-amz-content-sha256 (as botocore, the signer signs that one). */
static void count_header(void *ctx, span name, span value)
{
    signing *s = ctx;
    s->header_count++;
    s->header_name_bytes += name.n;
    s->header_value_bytes += value.n;
    if (!s->carried_payload.p && span_ieq(name, "x-amz-content-sha256")) s->carried_payload = value;
}

static void add_header(signing *s, span lname, span value)
{
    header *h = &s->hs[s->nh];
    h->lname = lname;
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
    for (size_t i = start; i < end; i++) l[i - start] = ascii_lower((unsigned char)name.p[i]);
    add_header(s, (span){ l, end - start }, value);
}

/* A header the signer sets; `name` is its spelling in the headers returned. */
static void add_own_header(signing *s, const char *lname, enum field name, span value)
{
    add_header(s, (span){ lname, strlen(lname) }, value);
    s->hs[s->nh - 1].key = name;
}

static int has_header(const signing *s, const char *lname)
{
    for (size_t i = 0; i < s->nh; i++)
        if (span_ieq_n(s->hs[i].lname, lname, strlen(lname))) return 1;
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

/* Reads opts (index 3) in one pass over its keys: most of its fields are usually absent, and
 * visiting the two or three present is cheaper than looking up all eleven. Unknown keys are
 * ignored. */
static void read_opts(lua_State *L, signing *s)
{
    lua_Integer expires = 3600;
    int have_time = 0;
    s->normalize = s->double_encode = 1;
    lua_pushnil(L);
    while (lua_next(L, 3)) {
        int f = FIELD_COUNT;
        if (lua_type(L, -2) == LUA_TSTRING)
            for (int i = F_REGION; i <= F_TIME; i++)
                if (lua_rawequal(L, -2, lua_upvalueindex(2 + i))) {
                    f = i;
                    break;
                }
        switch (f) {
        case F_REGION: s->region = value_string(L, F_REGION, "opts"); break;
        case F_SERVICE: s->service = value_string(L, F_SERVICE, "opts"); break;
        case F_PAYLOAD_HASH: s->payload = value_string(L, F_PAYLOAD_HASH, "opts"); break;
        case F_NORMALIZE_PATH: s->normalize = lua_toboolean(L, -1); break;
        case F_DOUBLE_ENCODE: s->double_encode = lua_toboolean(L, -1); break;
        case F_OMIT_SESSION_TOKEN: s->omit_token = lua_toboolean(L, -1); break;
        case F_CONTENT_SHA256_HEADER: s->rep.content_sha256 = lua_toboolean(L, -1); break;
        case F_UNSIGNED_PAYLOAD: s->unsigned_payload = lua_toboolean(L, -1); break;
        case F_SIGNED_HEADERS:
            if (lua_type(L, -1) != LUA_TTABLE) luaL_error(L, "opts.signed_headers must be an array of names");
            s->has_signed_headers = 1;
            break;
        case F_TIME:
            signing_time(L, s->amzdate);
            have_time = 1;
            break;
        case F_EXPIRES: {
            int isint;
            expires = lua_tointegerx(L, -1, &isint);
            if (!isint || expires < 1) luaL_error(L, "opts.expires must be a positive integer");
            break;
        }
        default: break;
        }
        lua_pop(L, 1);
    }
    if (!have_time) format_amzdate((long long)time(NULL), s->amzdate);
    if (s->presign) snprintf(s->expires, sizeof s->expires, "%lld", (long long)expires);
}

/* Reads req (1), creds (2), opts (3); leaves req.headers (or nil) at index 4. Returns an error code
 * (message in *why) for inputs the world handed us, raises for misuse. */
static const char *read_arguments(lua_State *L, signing *s, const char **why)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    s->method = field_string(L, 1, F_METHOD, "req");
    s->url = field_string(L, 1, F_URL, "req");
    s->body = field_string(L, 1, F_BODY, "req");
    int ht = get_field(L, 1, F_HEADERS);
    if (ht == LUA_TTABLE) s->headers_idx = 4;
    else if (ht != LUA_TNIL) luaL_error(L, "req.headers must be a table");
    s->akid = field_string(L, 2, F_ACCESS_KEY_ID, "creds");
    s->secret = field_string(L, 2, F_SECRET_ACCESS_KEY, "creds");
    s->token = field_string(L, 2, F_SESSION_TOKEN, "creds");
    read_opts(L, s);
    if (!s->region.p || !s->service.p) luaL_error(L, "opts.region and opts.service are required");
    if (s->region.n > 64 || s->service.n > 64) luaL_error(L, "opts.region or opts.service too long");
    if (!s->url.p) luaL_error(L, "req.url is required");
    if (!s->method.p) s->method = (span){ "GET", 3 };
    if (s->token.p && s->token.n == 0) s->token.p = NULL;
    s->rep.date = !s->presign;
    s->rep.token = s->token.p && !s->omit_token && !s->presign;
    if (s->presign) s->rep.content_sha256 = 0;
    if (!s->payload.p && s->unsigned_payload) s->payload = (span){ "UNSIGNED-PAYLOAD", 16 };

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
static void payload_hash(signing *s)
{
    if (!s->payload.p && !s->rep.content_sha256) s->payload = s->carried_payload;
    if (s->payload.p) return;
    if (s->body.p && s->body.n) sha256_hex(s->body.p, s->body.n, s->body_hash);
    else memcpy(s->body_hash, EMPTY_SHA256, 65);
    s->payload = (span){ s->body_hash, 64 };
}

/* Pushes the scratch arena (on `stack` when it fits), sized from the inputs: every later
 * allocation fits in it. Counts the headers on the way. */
static void make_arena(lua_State *L, signing *s, char *stack, size_t stack_size)
{
    each_header(L, s->headers_idx, count_header, s);
    size_t max_headers = s->header_count + 4, qpairs = 7;
    for (size_t i = 0; i < s->u.query.n; i++) qpairs += s->u.query.p[i] == '&';
    size_t names = s->header_name_bytes + 80; /* the request's names plus the four the signer adds */
    size_t credential = s->akid.n + 1 + sizeof s->scope;
    size_t path = s->u.path.n + 1;
    size_t blocks = 2 * max_headers + 2 * qpairs + 16; /* allocations, each padded to ARENA_ALIGN */
    size_t size = 2 * max_headers * sizeof(header) + qpairs * sizeof(qparam) + s->header_name_bytes +
                  s->u.host.n + 8 + names /* signed list */ + 2 * 3 * names /* encoded twice */ +
                  3 * s->u.query.n + 3 * (16 + 16 + sizeof s->expires) + 2 * 3 * credential +
                  3 * (s->token.p ? s->token.n : 0) + path + 3 * path + blocks * ARENA_ALIGN;
    size_t payload = 64 + s->payload.n + s->carried_payload.n;
    size_t canonical = s->method.n + 1 + 3 * path + 1 /* method, URI */
                       + 3 * s->u.query.n + 2 * qpairs + 3 * (credential + names + (s->token.p ? s->token.n : 0) + 64)
                       + s->header_name_bytes + s->header_value_bytes + 2 * max_headers /* headers */
                       + 80 + s->u.host.n + 8 + 16 + (s->token.p ? s->token.n : 0) + payload /* own headers */
                       + 1 + names + 1 + payload;
    size_t authorization = 64 + s->akid.n + sizeof s->scope + names + 64;
    size += canonical + authorization + 2 * ARENA_ALIGN;
    s->cr_capacity = canonical;
    arena_init(L, &s->a, size, stack, stack_size);
}

/* The request's headers, then Host and the ones the signer sets; then which are signed:
 * exactly the names in opts.signed_headers, or all but the never-signed ones. */
static const char *collect_headers(lua_State *L, signing *s)
{
    s->hs = arena_alloc(&s->a, (s->header_count + 4) * sizeof(header));
    each_header(L, s->headers_idx, fill_header, s);
    s->own_from = s->nh;

    url_parts *u = &s->u;
    char *host = arena_alloc(&s->a, u->host.n + 8);
    size_t hostn = 0;
    for (size_t i = 0; i < u->host.n; i++) host[hostn++] = ascii_lower((unsigned char)u->host.p[i]);
    int default_port = (span_ieq(u->scheme, "http") && u->port == 80) ||
                       (span_ieq(u->scheme, "https") && u->port == 443);
    if (u->port >= 0 && !default_port) hostn += (size_t)snprintf(host + hostn, 7, ":%ld", u->port);
    s->host = (span){ host, hostn };
    if (!has_header(s, "host")) add_own_header(s, "host", K_HOST, s->host);
    if (s->rep.date) add_own_header(s, "x-amz-date", K_X_AMZ_DATE, (span){ s->amzdate, 16 });
    if (s->rep.token) add_own_header(s, "x-amz-security-token", K_X_AMZ_SECURITY_TOKEN, s->token);
    if (s->rep.content_sha256) add_own_header(s, "x-amz-content-sha256", K_X_AMZ_CONTENT_SHA256, s->payload);

    if (s->has_signed_headers) {
        get_field(L, 3, F_SIGNED_HEADERS); /* a table: read_opts checked */
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_geti(L, -1, i) != LUA_TSTRING) luaL_error(L, "opts.signed_headers must hold strings");
            span want;
            want.p = lua_tolstring(L, -1, &want.n);
            int found = 0;
            for (size_t j = 0; j < s->nh; j++)
                if (s->hs[j].lname.n == want.n) {
                    size_t k = 0;
                    while (k < want.n && s->hs[j].lname.p[k] == ascii_lower((unsigned char)want.p[k])) k++;
                    if (k == want.n) s->hs[j].signed_ = found = 1;
                }
            if (!found) return lua_pushfstring(L, "signed header '%s' is not in the request", want.p);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    } else {
        for (size_t j = 0; j < s->nh; j++) s->hs[j].signed_ = !unsigned_by_default(s->hs[j].lname);
    }

    s->sorted = arena_alloc(&s->a, s->nh * sizeof(header));
    memcpy(s->sorted, s->hs, s->nh * sizeof(header));
    qsort(s->sorted, s->nh, sizeof(header), header_cmp);
    char *list = arena_alloc(&s->a, s->header_name_bytes + 80);
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
    /* date/region/service/aws4_request; region and service are at most 64 bytes (checked) */
    char *p = s->scope;
    p = append(p, (span){ s->amzdate, 8 });
    *p++ = '/';
    p = append(p, s->region);
    *p++ = '/';
    p = append(p, s->service);
    p = append(p, (span){ "/aws4_request", 13 });
    s->scope_n = (size_t)(p - s->scope);
    *p = '\0';
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

/* Writes `v` with leading/trailing whitespace removed and inner runs (including obs-fold line
 * breaks) collapsed to one space: SigV4's Trimall. */
static char *put_trimall(char *out, span v)
{
    int pending_space = 0, started = 0;
    for (size_t i = 0; i < v.n; i++) {
        char c = v.p[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
            pending_space = started;
            continue;
        }
        if (pending_space) *out++ = ' ';
        pending_space = 0;
        started = 1;
        *out++ = c;
    }
    return out;
}

/* Builds the canonical request in the arena (s->cr), noting where a signed token lands. */
static void build_canonical_request(signing *s)
{
    span uri = canonical_uri(s);
    char *start = arena_alloc(&s->a, s->cr_capacity), *p = start;
    for (size_t i = 0; i < s->method.n; i++) *p++ = ascii_upper((unsigned char)s->method.p[i]);
    *p++ = '\n';
    p = append(p, uri);
    *p++ = '\n';
    for (size_t i = 0; i < s->nq; i++) {
        if (i) *p++ = '&';
        p = append(p, s->qs[i].key);
        *p++ = '=';
        if (s->qs[i].value.p == s->token_in_query.p && s->token_in_query.p) s->token_at = (size_t)(p - start);
        p = append(p, s->qs[i].value);
    }
    *p++ = '\n';
    const header *prev = NULL;
    for (size_t j = 0; j < s->nh; j++) {
        const header *h = &s->sorted[j];
        if (!h->signed_) continue;
        if (prev && span_cmp(prev->lname, h->lname) == 0) {
            *p++ = ','; /* a repeated header: values joined in arrival order */
        } else {
            p = append(p, h->lname);
            *p++ = ':';
        }
        if (h->value.p == s->token.p && s->rep.token) s->token_at = (size_t)(p - start);
        p = put_trimall(p, h->value);
        if (j + 1 == s->nh || span_cmp(s->sorted[j + 1].lname, h->lname) != 0) *p++ = '\n';
        prev = h;
    }
    *p++ = '\n';
    p = append(p, s->signed_list);
    *p++ = '\n';
    p = append(p, s->payload);
    s->cr = (span){ start, (size_t)(p - start) };
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
        set_field(L, out, s->hs[j].key);
    }
    if (s->token.p && s->omit_token) { /* added after signing, not signed */
        lua_pushlstring(L, s->token.p, s->token.n);
        set_field(L, out, K_X_AMZ_SECURITY_TOKEN);
    }
    static const char credential[] = ALGORITHM " Credential=", headers[] = ", SignedHeaders=",
                      sig[] = ", Signature=";
    char *auth = arena_alloc(&s->a, sizeof credential + s->akid.n + 1 + s->scope_n + sizeof headers +
                                        s->signed_list.n + sizeof sig + 64);
    char *p = append(auth, (span){ credential, sizeof credential - 1 });
    p = append(p, s->akid);
    *p++ = '/';
    p = append(p, (span){ s->scope, s->scope_n });
    p = append(p, (span){ headers, sizeof headers - 1 });
    p = append(p, s->signed_list);
    p = append(p, (span){ sig, sizeof sig - 1 });
    p = append(p, (span){ signature, 64 });
    lua_pushlstring(L, auth, (size_t)(p - auth));
    set_field(L, out, K_AUTHORIZATION);
}

/* {canonical_request, string_to_sign, signature}; a signed session token is redacted. */
static void push_debug(lua_State *L, signing *s, const char *sts, size_t stsn, const char *signature)
{
    lua_createtable(L, 0, 3);
    if (s->token_at) {
        span tok = s->presign ? s->token_in_query : s->token; /* tokens have no inner spaces */
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addlstring(&b, s->cr.p, s->token_at);
        luaL_addstring(&b, REDACTED);
        luaL_addlstring(&b, s->cr.p + s->token_at + tok.n, s->cr.n - s->token_at - tok.n);
        luaL_pushresult(&b);
    } else {
        lua_pushlstring(L, s->cr.p, s->cr.n);
    }
    set_field(L, -2, K_CANONICAL_REQUEST);
    lua_pushlstring(L, sts, stsn);
    set_field(L, -2, K_STRING_TO_SIGN);
    lua_pushstring(L, signature);
    set_field(L, -2, K_SIGNATURE);
}

static int sign_request(lua_State *L, int presign)
{
    signing s;
    memset(&s, 0, sizeof s);
    s.presign = presign;
    const char *why = NULL, *code = read_arguments(L, &s, &why);
    if (code) return fail(L, code, why);
    char scratch[8192];
    make_arena(L, &s, scratch, sizeof scratch); /* 5 */
    payload_hash(&s);
    const char *bad = collect_headers(L, &s);
    if (bad) return fail(L, "invalid_request", bad);
    collect_query(&s);
    build_canonical_request(&s);

    char crhash[65];
    sha256_hex(s.cr.p, s.cr.n, crhash);
    char sts[sizeof ALGORITHM + 17 + sizeof s.scope + 65 + 8];
    char *p = append(sts, (span){ ALGORITHM "\n", sizeof ALGORITHM });
    p = append(p, (span){ s.amzdate, 16 });
    *p++ = '\n';
    p = append(p, (span){ s.scope, s.scope_n });
    *p++ = '\n';
    p = append(p, (span){ crhash, 64 });
    int stsn = (int)(p - sts);
    const hmac_key *key = signing_key(lua_touserdata(L, lua_upvalueindex(1)), s.secret, s.amzdate,
                                      s.region, s.service);
    unsigned char sig[SHA256_DIGEST_LENGTH];
    hmac(key, sts, (size_t)stsn, sig);
    char signature[65];
    to_hex(sig, sizeof sig, signature);

    if (presign) push_presigned_url(L, &s, signature);
    else push_headers(L, &s, signature);
    push_debug(L, &s, sts, (size_t)stsn, signature);
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
    /* more upvalues than the LUA_MINSTACK slots a C function is promised */
    luaL_checkstack(L, FIELD_COUNT, "sigv4 field names");
    for (int f = 0; f < FIELD_COUNT; f++) lua_pushstring(L, FIELD_NAMES[f]);
    luaL_setfuncs(L, with_cache, 1 + FIELD_COUNT);
    lua_pop(L, 1);
}
