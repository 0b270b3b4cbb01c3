/* queryform: a request's parameters walked by a plan compiled once from the input shape, in C.
 *
 * Adds to awsnet.core:
 *   `core.queryform.compile(desc)` -> plan. `desc` (built by awsnet.aws.shape and
 *     awsnet.aws.protocol.query from the model) is {null = jsoncodec.null, array_mt = table,
 *     with_keys = function(t, order), nodes = {[1] = the input structure, {kind = "structure",
 *     members = {{name =, node = index, wire = "Encoded" or nil, required = bool,
 *     idempotent = bool}, ...}, order = names or nil (given to with_keys)}, {kind = "list",
 *     item = index, ec2 = bool, flat = bool, inner = "encoded" or nil}, {kind = "string"|
 *     "integer"|"float"|"boolean"|"blob"|"any"|"other"}, ...}}. A malformed description raises.
 *   `core.queryform.check(plan, params)` -> the normalised copy awsnet.aws.shape.check returns,
 *     for the common case only: structures, lists and plain scalars, integral floats made integers.
 *     Anything else (a missing required member, an unknown one, a wrong type, an absent
 *     idempotency token, an "other" node present) gives nil: the Lua checker then decides, and
 *     says what is wrong.
 *   `core.queryform.encode(plan, params, head)` -> head .. "&key=value..." as the query writer
 *     builds it (keys from `wire`, values percent-encoded: only A-Z a-z 0-9 - _ . ~ kept), or nil
 *     for what it does not write (blobs, timestamps, maps, non-integral floats, "other"): the Lua
 *     writer then does. `params` must be checked already.
 * Neither calls back into Lua except `with_keys` for an ordered structure's copy. */
#ifndef AWSNET_QUERYFORM_H
#define AWSNET_QUERYFORM_H

#include <lua.h>

void queryform_open(lua_State *L);

#endif
