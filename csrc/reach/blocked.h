/* Blocked paths: where a walk that collects blockers goes past a missing route.
 *
 * Contract: pure lookups on a finished model, no allocation. When a route table has no usable
 * route (missing, blackhole, or a target beyond the model), the blocked path continues through
 * the one connection joining the current VPC to the destination's VPC: a transit gateway both
 * are attached to, or a peering connection between them. With none or several, it stops. */
#ifndef AWSNET_REACH_BLOCKED_H
#define AWSNET_REACH_BLOCKED_H

#include "reach/model.h"

/* The VPC the destination address lives in: the ENI's when known, else the first VPC with a
 * subnet holding the address; -1 when none. */
int32_t blocked_goal_vpc(const model *m, int32_t dst_eni, addr_t dst_ip);

/* The connections joining `vpc` to `goal`: returns how many there are (0, 1 or 2 meaning "two or
 * more") and, when there is exactly one, a route towards it in *via (kind RT_TGW with the TGW's
 * index, or RT_PCX with the peering connection's; rule -1). */
int blocked_joining(const model *m, int32_t vpc, int32_t goal, route_t *via);

/* The attachment of transit gateway `tgw` to `goal`, or -1. */
int32_t blocked_tgw_attachment(const model *m, int32_t tgw, int32_t goal);

#endif
