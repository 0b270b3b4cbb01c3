/* awsnet.core.reach: the Lua face of the compiled network model.
 *
 * `core.reach.new()` returns a model handle; the loader (lua/awsnet/reach/load.lua) fills it
 * with the builder methods (indices are 0-based, -1 = none), calls `finish`, and then the
 * queries `trace`, `matrix` and `who_can_reach` read it. Also `core.reach.ip(s)` -> integer
 * or nil, `core.reach.cidr(s)` -> network, length or nil, `core.reach.ipstr(n)` -> string.
 * Handle: userdata "awsnet.reach.model", freed by close/__gc/__close. */
#ifndef AWSNET_REACH_H
#define AWSNET_REACH_H

#include <lua.h>

void reach_open(lua_State *L);

#endif
