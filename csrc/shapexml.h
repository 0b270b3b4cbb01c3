/* shapexml: an AWS query/ec2 answer read straight into the typed Lua result of its output shape.
 *
 * Adds to awsnet.core:
 *   `core.shapexml.compile(desc)` -> plan: a shape tree compiled once (awsnet.aws.protocol.xml
 *     builds `desc` from the model): {wrapper = "OpResult" or nil, array_mt = table, nodes = {
 *     [1] = root structure, {type = "structure", members = {{wire =, name =, node = index,
 *     flat = bool}, ...}}, {type = "list", item = index}, {type = "map", key = index (a string
 *     node), value = index, kname =, vname =}, {type = "string"|"integer"|"boolean"|"float"|
 *     "timestamp"|"blob"}, ...}}. A malformed description raises.
 *   `core.shapexml.decode(plan, body, timestamp)` -> the result, as the Lua reader
 *     (awsnet.aws.protocol.xml) builds it: members by wire name (namespace prefix ignored; a
 *     repeated structure/list/map member keeps its first element, a repeated scalar its last),
 *     lists as arrays with `array_mt`, integers exact, "true" only for booleans, float text as
 *     Lua's tonumber reads it, base64 blobs decoded, timestamps as `timestamp(text)` returns.
 *     Or nil, message when expat refuses the document (bad XML, a DOCTYPE, nesting deeper than
 *     200, more than 1 GiB): the caller's Lua reader then says what it says about it.
 * expat's callbacks only append operations to a C buffer (no Lua inside expat); the Lua values are
 * built from that buffer once XML_Parse has returned. */
#ifndef AWSNET_SHAPEXML_H
#define AWSNET_SHAPEXML_H

#include <lua.h>

void shapexml_open(lua_State *L);

#endif
