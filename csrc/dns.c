/* awsnet.core.dns: one DNS question over c-ares; the raw answer is parsed here, bounded. */
#include "dns.h"
#include "core.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUERY_MT "awsnet.dns.query"
#define DNS_HEADER_LEN 12
#define DNS_NAME_WIRE_MAX 255
/* Presentation form: every wire byte may become "\DDD", plus the dots. */
#define DNS_NAME_TEXT_MAX (DNS_NAME_WIRE_MAX * 4 + 2)
#define DNS_MAX_POINTER_HOPS 64

enum { RR_A = 1, RR_NS = 2, RR_CNAME = 5, RR_SOA = 6, RR_PTR = 12, RR_TXT = 16, RR_AAAA = 28 };

/* One outstanding question. Lives in a userdata so that its __gc releases the channel and the
 * copied answer even when building the Lua result raises (out of memory). */
struct dns_query {
    ares_channel channel;
    int library_ready;
    int done;
    int status;
    unsigned char *answer;
    int answer_len;
};

static void query_release(struct dns_query *q)
{
    if (q->channel) {
        ares_channel channel = q->channel;
        q->channel = NULL;
        ares_destroy(channel); /* calls on_answer with ARES_EDESTRUCTION if still pending */
    }
    if (q->library_ready) {
        q->library_ready = 0;
        ares_library_cleanup();
    }
    free(q->answer);
    q->answer = NULL;
}

static int query_gc(lua_State *L)
{
    query_release(luaL_checkudata(L, 1, QUERY_MT));
    return 0;
}

/* c-ares callback: copies the answer; never touches the Lua state. */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_query *q = arg;
    (void)timeouts;
    if (q->done)
        return;
    q->done = 1;
    q->status = status;
    if (status == ARES_SUCCESS && abuf != NULL && alen > 0) {
        q->answer = malloc((size_t)alen);
        if (q->answer == NULL) {
            q->status = ARES_ENOMEM;
            return;
        }
        memcpy(q->answer, abuf, (size_t)alen);
        q->answer_len = alen;
    }
}

static uint16_t get16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static uint32_t get32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Appends one label byte in presentation form: dots and backslashes escaped, others as \DDD. */
static size_t put_label_byte(char *out, size_t o, unsigned char c)
{
    if (c == '.' || c == '\\') {
        out[o++] = '\\';
        out[o++] = (char)c;
    } else if (c > 0x20 && c < 0x7f) {
        out[o++] = (char)c;
    } else {
        out[o++] = '\\';
        out[o++] = (char)('0' + c / 100);
        out[o++] = (char)('0' + (c / 10) % 10);
        out[o++] = (char)('0' + c % 10);
    }
    return o;
}

/* Reads the (possibly compressed) name at *pos into out (DNS_NAME_TEXT_MAX bytes, no trailing
 * dot; the root is "."); advances *pos past the name as it appears at *pos. */
static int read_name(const unsigned char *msg, size_t len, size_t *pos, char *out)
{
    size_t p = *pos, o = 0, wire = 0;
    int jumped = 0, hops = 0;
    for (;;) {
        if (p >= len)
            return -1;
        unsigned char c = msg[p];
        if (c == 0) {
            if (!jumped)
                *pos = p + 1;
            break;
        }
        if ((c & 0xC0) == 0xC0) {
            if (p + 1 >= len || ++hops > DNS_MAX_POINTER_HOPS)
                return -1;
            size_t target = ((size_t)(c & 0x3F) << 8) | msg[p + 1];
            if (!jumped)
                *pos = p + 2;
            jumped = 1;
            if (target >= p) /* pointers go backwards; this also rules out loops */
                return -1;
            p = target;
            continue;
        }
        if ((c & 0xC0) != 0 || p + 1 + c > len)
            return -1;
        wire += (size_t)c + 1;
        if (wire > DNS_NAME_WIRE_MAX)
            return -1;
        if (o > 0)
            out[o++] = '.';
        for (size_t i = 0; i < c; i++)
            o = put_label_byte(out, o, msg[p + 1 + i]);
        p += 1 + (size_t)c;
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
    return 0;
}

/* Pushes the rdata of one record; returns a fault description or NULL. */
static const char *push_rdata(lua_State *L, const unsigned char *msg, size_t len, size_t at,
                              size_t rdlen, unsigned type)
{
    char text[DNS_NAME_TEXT_MAX];
    size_t end = at + rdlen, p = at;
    switch (type) {
    case RR_A:
    case RR_AAAA: {
        char addr[INET6_ADDRSTRLEN];
        size_t want = type == RR_A ? 4 : 16;
        if (rdlen != want)
            return "address record of the wrong length";
        inet_ntop(type == RR_A ? AF_INET : AF_INET6, msg + at, addr, sizeof addr);
        lua_pushstring(L, addr);
        return NULL;
    }
    case RR_CNAME:
    case RR_PTR:
    case RR_NS:
        if (read_name(msg, len, &p, text) != 0 || p != end)
            return "bad domain name in rdata";
        lua_pushstring(L, text);
        return NULL;
    case RR_TXT: {
        lua_newtable(L);
        lua_Integer n = 0;
        while (p < end) {
            size_t slen = msg[p];
            if (p + 1 + slen > end)
                return "TXT string overruns its record";
            lua_pushlstring(L, (const char *)msg + p + 1, slen);
            lua_rawseti(L, -2, ++n);
            p += 1 + slen;
        }
        return NULL;
    }
    case RR_SOA: {
        lua_newtable(L);
        if (read_name(msg, len, &p, text) != 0)
            return "bad SOA mname";
        lua_pushstring(L, text);
        lua_setfield(L, -2, "mname");
        if (read_name(msg, len, &p, text) != 0)
            return "bad SOA rname";
        lua_pushstring(L, text);
        lua_setfield(L, -2, "rname");
        if (p + 20 != end)
            return "bad SOA length";
        static const char *const fields[] = { "serial", "refresh", "retry", "expire", "minimum" };
        for (int i = 0; i < 5; i++) {
            lua_pushinteger(L, (lua_Integer)get32(msg + p + 4 * (size_t)i));
            lua_setfield(L, -2, fields[i]);
        }
        return NULL;
    }
    default:
        lua_pushlstring(L, (const char *)msg + at, rdlen);
        return NULL;
    }
}

/* Pushes an array of `count` resource records read from *pos. */
static const char *push_records(lua_State *L, const unsigned char *msg, size_t len, size_t *pos,
                                unsigned count)
{
    char name[DNS_NAME_TEXT_MAX];
    lua_createtable(L, (int)count, 0);
    for (unsigned i = 0; i < count; i++) {
        if (read_name(msg, len, pos, name) != 0)
            return "bad owner name";
        if (*pos + 10 > len)
            return "record header overruns the message";
        const unsigned char *h = msg + *pos;
        unsigned type = get16(h), class = get16(h + 2);
        uint32_t ttl = get32(h + 4);
        size_t rdlen = get16(h + 8);
        size_t at = *pos + 10;
        if (at + rdlen > len)
            return "rdata overruns the message";
        lua_createtable(L, 0, 5);
        lua_pushstring(L, name);
        lua_setfield(L, -2, "name");
        lua_pushinteger(L, type);
        lua_setfield(L, -2, "type");
        lua_pushinteger(L, class);
        lua_setfield(L, -2, "class");
        /* RFC 2181 §8: a TTL with the top bit set is treated as zero. */
        lua_pushinteger(L, (ttl & 0x80000000u) ? 0 : (lua_Integer)ttl);
        lua_setfield(L, -2, "ttl");
        const char *fault = push_rdata(L, msg, len, at, rdlen, type);
        if (fault)
            return fault;
        lua_setfield(L, -2, "data");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
        *pos = at + rdlen;
    }
    return NULL;
}

const char *dns_push_message(lua_State *L, const unsigned char *msg, size_t len)
{
    char name[DNS_NAME_TEXT_MAX];
    int top = lua_gettop(L);
    if (len < DNS_HEADER_LEN)
        return "message shorter than a DNS header";
    unsigned flags = get16(msg + 2);
    unsigned qdcount = get16(msg + 4), ancount = get16(msg + 6), nscount = get16(msg + 8);
    size_t pos = DNS_HEADER_LEN;
    for (unsigned i = 0; i < qdcount; i++) {
        if (read_name(msg, len, &pos, name) != 0 || pos + 4 > len)
            return "bad question section";
        pos += 4;
    }
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, flags & 0x0F);
    lua_setfield(L, -2, "rcode");
    lua_pushboolean(L, (flags & 0x0400) != 0);
    lua_setfield(L, -2, "aa");
    lua_pushboolean(L, (flags & 0x0200) != 0);
    lua_setfield(L, -2, "tc");
    const char *fault = push_records(L, msg, len, &pos, ancount);
    if (fault == NULL) {
        lua_setfield(L, -2, "answers");
        fault = push_records(L, msg, len, &pos, nscount);
    }
    if (fault) {
        lua_settop(L, top);
        return fault;
    }
    lua_setfield(L, -2, "authority");
    return NULL;
}

static int push_status(lua_State *L, int status, const char *message)
{
    static const struct { int status; const char *name; } names[] = {
        { ARES_ENODATA, "ENODATA" },       { ARES_EFORMERR, "EFORMERR" },
        { ARES_ESERVFAIL, "ESERVFAIL" },   { ARES_ENOTFOUND, "ENOTFOUND" },
        { ARES_ENOTIMP, "ENOTIMP" },       { ARES_EREFUSED, "EREFUSED" },
        { ARES_EBADQUERY, "EBADQUERY" },   { ARES_EBADNAME, "EBADNAME" },
        { ARES_EBADRESP, "EBADRESP" },     { ARES_ECONNREFUSED, "ECONNREFUSED" },
        { ARES_ETIMEOUT, "ETIMEOUT" },     { ARES_EOF, "EOF" },
        { ARES_EFILE, "EFILE" },           { ARES_ENOMEM, "ENOMEM" },
        { ARES_ECANCELLED, "ECANCELLED" },
    };
    const char *name = "EUNKNOWN";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].status == status)
            name = names[i].name;
    lua_pushnil(L);
    lua_pushstring(L, name);
    lua_pushstring(L, message ? message : ares_strerror(status));
    return 3;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Drives the channel until the answer arrives or `deadline` (monotonic ms) passes. */
static void run_until_done(struct dns_query *q, long long deadline)
{
    while (!q->done) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        struct pollfd fds[ARES_GETSOCK_MAXNUM];
        /* c-ares's ARES_GETSOCK_WRITABLE shifts a signed 1 by up to 31: test the bits unsigned */
        unsigned bits = (unsigned)ares_getsock(q->channel, socks, ARES_GETSOCK_MAXNUM);
        nfds_t n = 0;
        for (unsigned i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short events = (short)(((bits >> i) & 1u ? POLLIN : 0) |
                                   ((bits >> (i + ARES_GETSOCK_MAXNUM)) & 1u ? POLLOUT : 0));
            if (events) {
                fds[n].fd = socks[i];
                fds[n].events = events;
                fds[n].revents = 0;
                n++;
            }
        }
        long long left = deadline - now_ms();
        if (left <= 0) {
            ares_cancel(q->channel); /* calls on_answer with ARES_ECANCELLED */
            q->done = 1;
            q->status = ARES_ETIMEOUT;
            break;
        }
        struct timeval tv, *tvp = ares_timeout(q->channel, NULL, &tv);
        long long wait = left;
        if (tvp) {
            long long next = (long long)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
            if (next < wait)
                wait = next;
        }
        int ready = poll(fds, n, (int)wait);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0) {
            ares_process_fd(q->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
            continue;
        }
        for (nfds_t i = 0; i < n && !q->done && q->channel; i++) {
            short r = fds[i].revents;
            ares_socket_t rd = (r & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD;
            ares_socket_t wr = (r & POLLOUT) ? fds[i].fd : ARES_SOCKET_BAD;
            if (rd != ARES_SOCKET_BAD || wr != ARES_SOCKET_BAD)
                ares_process_fd(q->channel, rd, wr);
        }
    }
}

static int opt_int(lua_State *L, int t, const char *field, int def, int lo, int hi)
{
    lua_getfield(L, t, field);
    int isnum;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    if (lua_isnil(L, -1))
        v = def;
    else if (!isnum || v < lo || v > hi)
        luaL_error(L, "option %s must be an integer in [%d, %d]", field, lo, hi);
    lua_pop(L, 1);
    return (int)v;
}

/* core.dns.query(name, qtype, {servers=, timeout_ms=, tries=, deadline_ms=, tcp=}) */
static int dns_query(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    int qtype = (int)luaL_checkinteger(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    luaL_argcheck(L, qtype > 0 && qtype < 65536, 2, "record type out of range");
    int timeout_ms = opt_int(L, 3, "timeout_ms", 2000, 1, 600000);
    int tries = opt_int(L, 3, "tries", 2, 1, 16);
    int deadline_ms = opt_int(L, 3, "deadline_ms", 30000, 1, 3600000);
    lua_getfield(L, 3, "servers");
    const char *servers = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 3, "tcp");
    int use_tcp = lua_toboolean(L, -1);
    lua_pop(L, 1);

    struct dns_query *q = lua_newuserdatauv(L, sizeof *q, 0);
    memset(q, 0, sizeof *q);
    luaL_setmetatable(L, QUERY_MT);

    int status = ares_library_init(ARES_LIB_INIT_ALL);
    if (status != ARES_SUCCESS)
        return push_status(L, status, NULL);
    q->library_ready = 1;
    struct ares_options options;
    memset(&options, 0, sizeof options);
    /* NOCHECKRESP: a SERVFAIL or REFUSED answer comes back with its rcode; the caller decides
     * whether to ask the next server. */
    options.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_NOCHECKRESP |
                    (use_tcp ? ARES_FLAG_USEVC : 0);
    options.timeout = timeout_ms;
    options.tries = tries;
    status = ares_init_options(&q->channel, &options,
                               ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (status != ARES_SUCCESS) {
        q->channel = NULL;
        return push_status(L, status, NULL);
    }
    if (servers && (status = ares_set_servers_ports_csv(q->channel, servers)) != ARES_SUCCESS)
        return push_status(L, status, "bad server list");

    unsigned char *packet = NULL;
    int packet_len = 0;
    status = ares_create_query(name, 1 /* C_IN */, qtype, 0, 1, &packet, &packet_len, 0);
    if (status != ARES_SUCCESS)
        return push_status(L, status, NULL);
    ares_send(q->channel, packet, packet_len, on_answer, q);
    ares_free_string(packet);
    run_until_done(q, now_ms() + deadline_ms);
    if (q->status != ARES_SUCCESS || q->answer == NULL) {
        int failed = q->status == ARES_SUCCESS ? ARES_EBADRESP : q->status;
        query_release(q);
        return push_status(L, failed, NULL);
    }
    const char *fault = dns_push_message(L, q->answer, (size_t)q->answer_len);
    if (fault) {
        query_release(q);
        return push_status(L, ARES_EBADRESP, fault);
    }
    query_release(q);
    return 1;
}

void dns_open(lua_State *L)
{
    static const luaL_Reg query_meta[] = { { "__gc", query_gc }, { "__close", query_gc }, { NULL, NULL } };
    luaL_newmetatable(L, QUERY_MT);
    luaL_setfuncs(L, query_meta, 0);
    lua_pop(L, 1);
    static const luaL_Reg funcs[] = { { "query", dns_query }, { NULL, NULL } };
    core_register(L, "dns", funcs);
}
