/* The evaluator: one packet's forward and return path through a finished model.
 *
 * Contract: `eval_trace` never allocates and never fails; it fills `r` with the hops it
 * walked (forward hops first, then return hops), `ok`, the explanation `code` of the first
 * blocking hop (EV_OK when reachable), `blocked` (that hop's index, -1 if none) and
 * assumption flags. Everything it reads is in the model and the query.
 * With `collect_blockers` the walk records every hop that refuses the packet and goes on as if
 * it had been admitted (a filter) or routed through the one joining connection (a missing route,
 * reach/blocked.h); `code` and `blocked` still name the first of them. */
#ifndef AWSNET_REACH_EVAL_H
#define AWSNET_REACH_EVAL_H

#include "reach/model.h"

/* Explanation codes, named as in VPC Reachability Analyzer (eval_code_name); NO_DESTINATION_ENI
 * is awsnet's own: the packet reaches the destination's subnet and no interface holds it. */
enum {
    EV_OK, EV_NO_ROUTE_TO_DESTINATION, EV_BAD_STATE_ROUTE, EV_BAD_STATE, EV_BAD_STATE_ATTACHMENT,
    EV_TGW_ROUTE_AZ_RESTRICTION, EV_TGW_ATTACH_MISSING_TGW_RTB_ASSOCIATION, EV_TGW_RTB_ROUTES_ARE_UNKNOWN,
    EV_TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT, EV_TGW_RTB_BAD_STATE_ROUTE, EV_ENI_SG_RULES_MISMATCH,
    EV_SG_REFERENCING_SUPPORT, EV_SUBNET_ACL_RESTRICTION, EV_UNKNOWN_DESTINATION, EV_UNSUPPORTED_COMPONENT,
    EV_NO_PATH, EV_NO_DESTINATION_ENI, EV_CODE_COUNT
};
const char *eval_code_name(int code);

enum { H_ENI = 1, H_SG, H_NACL, H_RTB, H_TGW, H_TGW_ATT, H_TGW_RTB, H_PCX, H_SUBNET, H_VPC };
enum { V_ALLOW = 1, V_DENY, V_FORWARD, V_DROP, V_DELIVER };
enum { DIR_FORWARD = 0, DIR_RETURN = 1 };
/* Assumption flags. */
enum {
    F_AZ_CROSSED = 1,        /* the TGW left through another AZ than it entered (no subnet there) */
    F_DST_NOT_ENI = 2,       /* no ENI holds the destination address: dropped in its subnet */
    F_SRC_NO_ENI = 4,        /* the source is an address without ENI: no egress SG evaluated */
    F_NACL_UNKNOWN = 8,      /* a subnet without NACL data: treated as allow-all */
    /* Blocked paths (collect_blockers): past a missing route the walk went on through the one
     * joining connection, or stopped because there is none or there are several. */
    F_ASSUMED_CONNECTION = 16,
    F_STOP_NO_CONNECTION = 32,
    F_STOP_SEVERAL_CONNECTIONS = 64,
};

typedef struct {
    uint8_t kind, verdict, dir, pad;
    uint16_t code, pad2;
    int32_t comp;            /* component index (Lua side) */
    int32_t rule;            /* rule / route description index (Lua side), -1 = none */
} hop_t;

#define EVAL_MAX_HOPS 64

typedef struct {
    int32_t src_eni;         /* -1: an address without ENI, in src_subnet */
    int32_t src_subnet;
    addr_t src_ip;           /* both of one family (IPv4 mapped: see reach/cidr.h) */
    int32_t dst_eni;         /* -1: find the ENI holding dst_ip where the path ends */
    addr_t dst_ip;
    int proto;               /* IP protocol number, PROTO_ALL for all */
    uint16_t port;           /* destination port (tcp/udp), ICMP type << 8 | code (icmp/icmpv6) */
    uint16_t eph_lo, eph_hi; /* client's source ports, checked on the return leg's NACLs (the
                              * reply's ICMP type << 8 | code for ICMP) */
    int forward_only;
    int skip_src_sg;         /* who_can_reach: judge the network, not a source ENI's egress */
    int collect_blockers;    /* blocked path: record every blocking hop and walk on past it */
} eval_query;

typedef struct {
    hop_t hops[EVAL_MAX_HOPS];
    int n, nforward;
    int ok, code, blocked;
    unsigned flags;
    int32_t dst_eni;
} eval_result;

void eval_trace(const model *m, const eval_query *q, eval_result *r);

#endif
