/* awsnet.core.dns — one DNS question over c-ares, answered as a parsed message.
 *
 * core.dns.query(name, qtype, opts) sends one question (class IN, recursion desired) to the
 * servers in opts.servers (a c-ares "host:port,..." list; the system's resolvers when absent),
 * in order, with opts.timeout_ms per try and opts.tries rounds (an answer with any rcode ends
 * the question: the caller decides whether to ask another server); UDP, retried over TCP when the
 * answer is truncated. It blocks until the answer or the last timeout.
 *   -> {rcode = n, aa = bool, answers = {rr...}, authority = {rr...}}
 *      rr = {name, type, class, ttl, data}: data is an address string (A, AAAA), a domain name
 *      (CNAME, PTR, NS), an array of character-strings (TXT), or the raw rdata bytes otherwise.
 *   -> nil, status, message   when no answer was accepted: status is c-ares's name for it
 *      ("ETIMEOUT", "ECONNREFUSED", "EBADRESP", "EBADNAME", ...).
 * Policy (record types by name, CNAME chains, error codes) lives in lua/awsnet/dns.lua. */
#ifndef AWSNET_DNS_H
#define AWSNET_DNS_H

#include <lua.h>
#include <stddef.h>

void dns_open(lua_State *L);

/* Exposed for the fuzz target: parses a DNS message into the table described above and pushes
 * it; on a malformed message pushes nothing and returns a static description of the fault. */
const char *dns_push_message(lua_State *L, const unsigned char *msg, size_t len);

#endif
