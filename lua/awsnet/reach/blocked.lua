--- Blocked paths: when a trace is not reachable, every setting on the intended path that refuses
-- the packet, the smallest change at each, and the set of changes that makes the path work
-- (after Bayless et al., "Debugging Network Reachability with Blocked Paths", CAV 2021, as VPC
-- Reachability Analyzer answers a path that is not reachable).
--
-- The C evaluator walks the path again in its blocked-path mode (`m:walk(query, true)`): a
-- filter that denies (network ACL, security group) is passed as if it admitted the packet; a
-- route table without a usable route (missing, blackhole, or a target beyond the model) goes on
-- through the one connection joining the two VPCs (a transit gateway both are attached to, a
-- peering connection; in a TGW route table the destination VPC's attachment), and says it
-- assumed so; with none or several the blocked path stops there and says why. Anything else that
-- stops a packet (a component not available, no interface holding the address) ends it too.
--
-- What is policy lives here: the words of each blocker, the change proposed, and `apply`, which
-- makes the changes in a copy of the snapshot's table form for reach.load to read again.
--
--   result.blockers = { {direction, component, kind, account, code, setting, change, action,
--                        assumed}... }        -- path order, forward then return
--   result.blocked_path = {forward = {hops}, ret = {hops}, complete, stopped, assumptions}
--   result.fix = { {component, kind, code, change, action}... }  -- the set; tostring joins it
--
-- The blockers are those of the traced source (for a Lambda function, its first ENI that does not
-- get through, `result.source`); the fix set also holds the changes its other ENIs need.
--
-- `action` is the change as data: {op = "route" | "tgw_propagation" | "tgw_route" | "tgw_association" |
-- "nacl_allow" | "sg_allow" | "dns_support", ...} (see `apply`); a change without one (a component to make
-- available, say) is said but not applied.
-- @module awsnet.reach.blocked
local core = require "awsnet.core"
local edit = require "awsnet.reach.edit"
local report = require "awsnet.reach.report"

local creach = core.reach
local blocked = {}

local F_ASSUMED_CONNECTION, F_STOP_NO_CONNECTION, F_STOP_SEVERAL_CONNECTIONS = 16, 32, 64
local IP_PROTOCOLS = { [6] = "tcp", [17] = "udp", [1] = "icmp", [58] = "icmpv6", [-1] = "-1" }
local ROUTE_CODES = { NO_ROUTE_TO_DESTINATION = true, BAD_STATE_ROUTE = true, UNSUPPORTED_COMPONENT = true }
local TGW_ROUTE_CODES = { TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT = true, TGW_RTB_BAD_STATE_ROUTE = true }
local SG_CODES = { ENI_SG_RULES_MISMATCH = true, SG_REFERENCING_SUPPORT = true }

-- The fix set prints as its changes, one per line.
local FixSet = { __name = "awsnet.reach.fix" }
function FixSet.__tostring(f)
  local lines = {}
  for i, c in ipairs(f) do lines[i] = c.change end
  return table.concat(lines, "\n")
end

-- An IPv6 address or CIDR (text): its changes go in the IPv6 fields of routes, ACL entries and
-- security-group rules.
local function is_ipv6(text) return text:find(":", 1, true) ~= nil end

local function contains(cidr, ip)
  local net, len = creach.cidr(cidr)
  if not net or type(net) ~= type(ip) then return false end -- another family
  if type(ip) == "number" then
    local shift = 32 - len
    return len == 0 or (ip >> shift) == (net >> shift)
  end
  local whole, bits = len // 8, len % 8 -- IPv6: 16-byte strings
  if ip:sub(1, whole) ~= net:sub(1, whole) then return false end
  local mask = (0xff << (8 - bits)) & 0xff
  return bits == 0 or (ip:byte(whole + 1) & mask) == (net:byte(whole + 1) & mask)
end

-- The VPC holding an address (the endpoint's own when it has one), and its CIDR around the address.
local function vpc_around(r, ep, ip)
  local model = r._model
  local b = model._b
  local vpc = ep and ep.vpc
  if not vpc then
    local subnet = model._m:lookup("any_subnet", ip)
    vpc = subnet and b.info.subnet[b.subnet_ids[subnet]].vpc
  end
  local info = vpc and b.info.vpc[vpc]
  local v6 = type(ip) == "string"
  for _, c in ipairs(info and (v6 and info.cidrs6 or info.cidrs) or {}) do
    if contains(c, ip) then return vpc, c end
  end
  return vpc, creach.ipstr(ip) .. (v6 and "/128" or "/32")
end

-- Where a leg goes: the VPC and the CIDR a missing route should cover.
local function goal(r, direction)
  if direction == "return" then
    local src = r._src
    return vpc_around(r, src.eni and src or nil, creach.ip((report.addresses(r))))
  end
  return vpc_around(r, r._dst.eni and r._dst or nil, r._dip)
end

local KIND, VERDICT = report.KIND, report.VERDICT
local DENY, DROP, DELIVER = VERDICT.deny, VERDICT.drop, VERDICT.deliver

-- A packed blocked-path walk, read hop by hop: only the hops a blocker needs are put in words
-- (the whole path is, when `blocked_path.forward` or `.ret` is read).
local function view(m, s)
  return { m = m, s = s, n = report.hop_count(s) }
end

-- The connection a blocked path took past hop i: the transit gateway or peering connection after
-- a route table, the egress attachment after a TGW route table (its id, or nil).
local function connection_after(w, i, kinds)
  local _, _, dir = report.hop_bytes(w.s, i)
  for j = i + 1, w.n do
    local k, v, d = report.hop_bytes(w.s, j)
    if d ~= dir or v == DENY or v == DROP then return nil end
    if kinds[k] then return report.component_at(w.m, w.s, j) end
  end
end

-- Whether hop i - 1 is of `kind`, on the same leg.
local function after(w, i, kind)
  if i < 2 then return false end
  local k, _, d = report.hop_bytes(w.s, i - 1)
  return k == kind and d == select(3, report.hop_bytes(w.s, i))
end

local function ports_of(r, direction)
  if r._proto ~= 6 and r._proto ~= 17 then return nil, nil end
  if direction == "return" then return r._lo, r._hi end
  return r._port, r._port
end

-- The refusing setting, in words.
local function setting_of(r, h, egress, peer)
  local code = h.code
  local ports = report.ports_text(r, h)
  if ROUTE_CODES[code] or TGW_ROUTE_CODES[code] then
    if h.rule then return "route " .. h.rule end
    local _, to = report.addresses(r)
    if h.direction == "return" then to = report.addresses(r) end
    return "no route for " .. to
  elseif code == "SUBNET_ACL_RESTRICTION" then
    if h.rule and not h.rule:match("rule %*:") then return h.rule end
    return string.format("no %s rule allows %s %s %s; the default rule (*) denies it", egress and "outbound" or
      "inbound", ports, egress and "to" or "from", peer)
  elseif code == "ENI_SG_RULES_MISMATCH" then
    return string.format("no %s rule of %s allows %s %s %s", egress and "outbound" or "inbound", h.component, ports,
      egress and "to" or "from", report.host(peer))
  elseif code == "SG_REFERENCING_SUPPORT" then
    return "a rule naming the peer's group would allow it, but group identity does not cross the transit gateway"
  elseif code == "TGW_ATTACH_MISSING_TGW_RTB_ASSOCIATION" then
    return tostring(h._via or "the ingress attachment") .. " is associated with no route table of " .. h.component
  end
  if h.rule then return h.rule end
  local c = report.CODES[code]
  return c and c[2] or code
end

-- A blocker's words (setting, change, assumed) are made when first read: a script that only
-- applies the fix set, or counts blockers, does not pay for them.
local Blocker = { __name = "awsnet.reach.blocker" }
function Blocker.__index(b, key)
  if (key ~= "setting" and key ~= "change" and key ~= "assumed") or rawget(b, "_worded") then return nil end
  local h = b._h
  rawset(b, "_worded", true)
  rawset(b, "setting", setting_of(b._r, h, b._egress, b._peer))
  rawset(b, "change", report.suggest(b._r, h))
  if b._via_kind == "route" then
    rawset(b, "assumed", string.format("past %s the blocked path takes the one connection joining its VPC to %s: %s",
      h.component, tostring(b._via_vpc), b._via))
  elseif b._via_kind then
    rawset(b, "assumed", string.format("past %s the blocked path takes %s's attachment %s", h.component,
      tostring(b._via_vpc), b._via))
  end
  return rawget(b, key)
end

local VIA_ROUTE = { [KIND["transit-gateway"]] = true, [KIND["peering-connection"]] = true }
local VIA_TGW_ROUTE = { [KIND["tgw-attachment"]] = true }

-- One blocker from hop i of the walk: where, why, and the smallest change as data (its words
-- when first read).
local function blocker_of(r, w, i, flags, src_ip, dst_ip)
  -- the hop in words, which the blocker is made of; its words say the rest when first read
  local h = report.hop_at(w.m, w.s, i)
  local to, from = dst_ip, src_ip
  if h.direction == "return" then to, from = src_ip, dst_ip end
  local b = setmetatable({ direction = h.direction, component = h.component, kind = h.kind, account = h.account,
    code = h.code, _r = r, _h = h }, Blocker)
  local action, egress, peer
  if ROUTE_CODES[h.code] and h.kind == "route-table" then
    local via = flags & F_ASSUMED_CONNECTION ~= 0 and connection_after(w, i, VIA_ROUTE)
    local vpc, cidr = goal(r, h.direction)
    -- a blackhole is replaced where it is; past a route to a target beyond the model (an internet
    -- gateway, say) the destination's CIDR is added, more specific than it
    cidr = h.code == "BAD_STATE_ROUTE" and h.rule and h.rule:match("^(%S+) %->") or cidr
    if via then
      h._via, h._cidr = via, cidr
      action = { op = "route", route_table = h.component, cidr = cidr,
        target = via:match("^pcx%-") and { VpcPeeringConnectionId = via } or { TransitGatewayId = via } }
      b._via_kind, b._via_vpc, b._via = "route", vpc, via
    end
  elseif TGW_ROUTE_CODES[h.code] then
    local via = connection_after(w, i, VIA_TGW_ROUTE)
    if via then
      local b_info = r._model._b
      local vpc = b_info.info.att[via] and b_info.info.att[via].vpc
      local _, cidr = goal(r, h.direction)
      cidr = h.code == "TGW_RTB_BAD_STATE_ROUTE" and h.rule and h.rule:match("^(%S+) %->") or cidr
      local propagating = h.code == "TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT" and b_info.propagated_tables
        and b_info.propagated_tables[h.component]
      local propagate = propagating and vpc ~= nil
      -- an attachment without IPv6 support propagates no IPv6 CIDR (tgw-route-tables.html): enable it
      local ipv6_support = propagate and is_ipv6(cidr) and not b_info.info.att[via].ipv6 or nil
      h._via, h._cidr, h._vpc, h._propagate = via, cidr, vpc, propagate
      h._ipv6_support, h._propagated = ipv6_support, propagate and propagating[via] or nil
      action = { op = propagate and "tgw_propagation" or "tgw_route", route_table = h.component, attachment = via,
        vpc = vpc, cidr = cidr, ipv6_support = ipv6_support }
      b._via_kind, b._via_vpc, b._via = "tgw", vpc, via
    end
  elseif h.code == "TGW_ATTACH_MISSING_TGW_RTB_ASSOCIATION" then
    -- the attachment just crossed; the TGW's default association table, when it has one
    local att = after(w, i, KIND["tgw-attachment"]) and report.component_at(w.m, w.s, i - 1)
    local t = r._model._b.info.tgw[h.component]
    h._via, h._rtb = att or nil, t and t.default_rtb
    if att and h._rtb then action = { op = "tgw_association", attachment = att, route_table = h._rtb } end
  elseif h.code == "SUBNET_ACL_RESTRICTION" then
    if h.rule then
      egress = h.rule:match("^outbound") ~= nil
    else -- no entry listed at all: the walk checks the outbound ACL first, then the inbound one
      egress = not after(w, i, KIND["network-acl"])
    end
    peer = egress and to or from
    h._egress = egress
    local lo, hi = ports_of(r, h.direction)
    action = { op = "nacl_allow", acl = h.component, egress = egress, below = tonumber(h.rule and
      h.rule:match("rule (%d+):")) or (is_ipv6(peer) and 32768 or 32767), protocol = r._proto, from_port = lo,
      to_port = hi, cidr = report.host(peer) }
  elseif SG_CODES[h.code] then
    egress = h.direction == "forward" and i == 2 -- the source's own group, right after it
    peer = egress and to or from
    h._outbound = egress
    local lo, hi = ports_of(r, h.direction)
    action = { op = "sg_allow", group = h.component, egress = egress, protocol = r._proto, from_port = lo,
      to_port = hi, cidr = report.host(peer) }
  end
  b._egress, b._peer = egress, peer or from
  b.action = action
  return b
end

-- Why a blocked path that did not reach its end stopped.
local function stop_reason(r, last, flags)
  if flags & F_STOP_SEVERAL_CONNECTIONS ~= 0 then
    return string.format("the blocked path stops at %s: several connections (transit gateways, peering "
      .. "connections) join its VPC to the destination's, and which one a route should take is not assumed",
      last.component)
  elseif flags & F_STOP_NO_CONNECTION ~= 0 then
    local vpc = goal(r, last.direction)
    return string.format("the blocked path stops at %s: no transit gateway or peering connection joins it to %s",
      last.component, tostring(vpc))
  end
  local c = last.code and report.CODES[last.code]
  return string.format("the blocked path stops at %s %s: %s", last.kind or "?", tostring(last.component),
    c and c[2] or tostring(last.code or "the walk ended"))
end

-- A change of the fix set says what its blocker's change says.
local Change = { __name = "awsnet.reach.change" }
function Change.__index(c, key)
  if key == "change" then return c._blocker.change end
end

-- The same setting refusing the packet twice on one leg, the same way, asks for one change (a
-- group refusing it both out of the source and into the destination asks for two).
local function change_key(b)
  return b.direction .. " " .. b.code .. " " .. b.component .. (b._egress and " out " or " ") ..
    (b.action and b.action.cidr or "")
end

-- The fix set of `blockers`, and of `more` (the blockers of a Lambda function's other ENIs).
local function new_fix(blockers, more)
  local fix, said = setmetatable({}, FixSet), {}
  local all = blockers
  if more and #more > 0 then
    all = table.move(blockers, 1, #blockers, 1, {})
    table.move(more, 1, #more, #all + 1, all)
  end
  for _, b in ipairs(all) do
    local key = change_key(b)
    if (b.action or report.suggests(b.code) or rawget(b, "change")) and not said[key] then
      said[key] = true
      fix[#fix + 1] = setmetatable({ component = b.component, kind = b.kind, code = b.code, action = b.action,
        _blocker = b }, Change)
    end
  end
  return fix
end

-- The walk past a route table without a usable route records it twice, dropping and then
-- forwarding as if it had the route (after the transit gateway it takes, if one): the blocked
-- path shows it once, where it blocks.
local function once(leg)
  local out = {}
  for _, h in ipairs(leg) do
    local prev = out[#out]
    if prev and prev.kind == "transit-gateway" and not prev.code then prev = out[#out - 1] end
    local again = h.verdict == "forward" and h.rule == nil and prev and prev.code and prev.component == h.component
    if not again then out[#out + 1] = h end
  end
  return out
end

-- The blocked path's hops in words, made when first read.
local Path = { __name = "awsnet.reach.blocked_path" }
function Path.__index(p, key)
  if key == "assumptions" then
    local out = {}
    for _, b in ipairs(rawget(p, "_blockers")) do
      if b._via_kind then out[#out + 1] = b.assumed end
    end
    rawset(p, "assumptions", out)
    return out
  end
  if key ~= "forward" and key ~= "ret" then return nil end
  local w = rawget(p, "_w")
  local fwd, ret = report.decode_walk(w.m, w.s)
  rawset(p, "forward", { hops = once(fwd) })
  rawset(p, "ret", { hops = once(ret) })
  p._w = nil
  return rawget(p, key)
end

-- A result walked by the C evaluator: walk it again collecting blockers.
local function walked(r)
  local m = r._model._m
  local s, at = m:walk(rawget(r, "_q"), true)
  local flags = select(3, string.unpack("=i4i4i4", s))
  local w = view(m, s)
  local blockers = {}
  local path = setmetatable({ _w = w, _blockers = blockers }, Path)
  local src_ip, dst_ip = report.addresses(r)
  for k = 1, #at do blockers[k] = blocker_of(r, w, string.byte(at, k), flags, src_ip, dst_ip) end
  local _, v, d = report.hop_bytes(s, w.n)
  path.complete = w.n > 0 and v == DELIVER and (d == 1 or r._fo == true)
  if not path.complete and w.n > 0 then path.stopped = stop_reason(r, report.hop_at(m, s, w.n), flags) end
  return blockers, path
end

--- Computes a result's blockers, blocked path and fix set (what `result.blockers`,
-- `result.blocked_path` and `result.fix` read on first use).
-- @param r a trace result (awsnet.reach.report)
-- @treturn table {blockers, path, fix}: empty blockers, and path and fix false, when reachable
function blocked.compute(r)
  if r.reachable then return { blockers = {}, path = false, fix = false } end
  local blockers, path
  if rawget(r, "_q") then
    blockers, path = walked(r)
  else
    -- decided before any packet moved (DNS, a database not available): that one setting, then
    -- the path as if it were fixed when the result can say it
    local h = r.blocked_at
    local first = { direction = "forward", component = h.component, kind = h.kind, code = h.code,
      setting = h.rule or (report.CODES[h.code] or {})[2], change = report.early_fix(r),
      action = h.code == "DNS_SUPPORT_DISABLED" and { op = "dns_support", vpc = h.component } or nil }
    blockers = { first }
    local past = r._past and r._past()
    if past then
      local rest = blocked.compute(past)
      for _, b in ipairs(rest.blockers) do blockers[#blockers + 1] = b end
      path = rest.path or { forward = past.forward, ret = past.ret, complete = true, assumptions = {} }
      local hops = { h }
      table.move(path.forward.hops, 1, #path.forward.hops, 2, hops)
      path = { forward = { hops = hops }, ret = path.ret, complete = path.complete, stopped = path.stopped,
        assumptions = path.assumptions }
    else
      path = { forward = { hops = { h } }, ret = { hops = {} }, complete = false, assumptions = {},
        stopped = "the blocked path stops at " .. tostring(h.component) .. ": nothing beyond it is walked" }
    end
  end
  if r._trap then
    -- a publicly accessible database seen from another VPC: the one change is to reach it privately
    return { blockers = blockers, path = path, fix = setmetatable({ { component = r._dst.label, kind = "rds",
      code = r.code, change = report.early_fix(r) } }, FixSet) }
  end
  -- a Lambda function's other ENIs must get through too: their changes join the fix set
  local more = {}
  for _, other in ipairs(r._siblings and r._siblings() or {}) do
    if not other.reachable then table.move(other.blockers, 1, #other.blockers, #more + 1, more) end
  end
  return { blockers = blockers, path = path, fix = new_fix(blockers, more) }
end

-- ---- applying a fix set ------------------------------------------------------------------

local function add_route(data, a)
  local n = 0
  local key = is_ipv6(a.cidr) and "DestinationIpv6CidrBlock" or "DestinationCidrBlock"
  for _, rt in ipairs((edit.find(data, "RouteTables", "RouteTableId", a.route_table))) do
    rt.Routes = edit.remove_if(rt.Routes, function(x) return x[key] == a.cidr end)
    local route = { [key] = a.cidr, Origin = "CreateRoute", State = "active" }
    for k, v in pairs(a.target) do route[k] = v end
    rt.Routes[#rt.Routes + 1] = route
    n = n + 1
  end
  return n
end

local function tgw_propagation(data, a)
  local n = 0
  if a.ipv6_support then
    for _, att in ipairs((edit.find(data, "TransitGatewayVpcAttachments", "TransitGatewayAttachmentId", a.attachment))) do
      att.Options = att.Options or {}
      att.Options.Ipv6Support = "enable"
      n = n + 1
    end
  end
  for _, p in ipairs((edit.find(data, "TransitGatewayPropagations", "TransitGatewayRouteTableId", a.route_table))) do
    p.TransitGatewayRouteTablePropagations = p.TransitGatewayRouteTablePropagations or {}
    local listed = false
    for _, q in ipairs(p.TransitGatewayRouteTablePropagations) do
      if q.TransitGatewayAttachmentId == a.attachment then q.State, listed = "enabled", true end
    end
    if not listed then
      table.insert(p.TransitGatewayRouteTablePropagations, { TransitGatewayAttachmentId = a.attachment,
        ResourceId = a.vpc, ResourceType = "vpc", State = "enabled" })
    end
    n = n + 1
  end
  return n
end

local function tgw_route(data, a)
  local route = { DestinationCidrBlock = a.cidr, State = "active", Type = "static",
    TransitGatewayAttachments = { { TransitGatewayAttachmentId = a.attachment, ResourceId = a.vpc,
      ResourceType = "vpc" } } }
  local entries = edit.find(data, "TransitGatewayRoutes", "TransitGatewayRouteTableId", a.route_table)
  if #entries == 0 then
    -- a table listed without routes: its routes go next to it, in its owner's region
    local _, where = edit.find(data, "TransitGatewayRouteTables", "TransitGatewayRouteTableId", a.route_table)
    if not where[1] then return 0 end
    where[1].TransitGatewayRoutes = where[1].TransitGatewayRoutes or {}
    entries[1] = { TransitGatewayRouteTableId = a.route_table, Routes = {} }
    table.insert(where[1].TransitGatewayRoutes, entries[1])
  end
  for _, e in ipairs(entries) do
    e.Routes = edit.remove_if(e.Routes, function(x) return x.DestinationCidrBlock == a.cidr and x.Type ~= "propagated" end)
    e.Routes[#e.Routes + 1] = edit.copy(route)
  end
  return #entries
end

local function tgw_association(data, a)
  local items = edit.find(data, "TransitGatewayAttachments", "TransitGatewayAttachmentId", a.attachment)
  for _, att in ipairs(items) do
    att.Association = { State = "associated", TransitGatewayRouteTableId = a.route_table }
  end
  return #items
end

local function nacl_allow(data, a)
  local n = 0
  for _, acl in ipairs((edit.find(data, "NetworkAcls", "NetworkAclId", a.acl))) do
    local used = {}
    for _, e in ipairs(acl.Entries or {}) do
      if (e.Egress == true) == a.egress then used[math.tointeger(e.RuleNumber) or -1] = true end
    end
    -- the lowest free number: before every rule that could match this packet; with none free below
    -- the denying rule, the allow takes its number (the deny is moved out of the way: removed)
    local number
    for k = 1, a.below - 1 do
      if not used[k] then number = k break end
    end
    acl.Entries = acl.Entries or {}
    if not number and a.below < 32767 then
      number = a.below
      acl.Entries = edit.remove_if(acl.Entries, function(e)
        return (e.Egress == true) == a.egress and math.tointeger(e.RuleNumber) == number
      end)
    end
    if number then
      local entry = { RuleNumber = number, Egress = a.egress, Protocol = tostring(a.protocol), RuleAction = "allow",
        [is_ipv6(a.cidr) and "Ipv6CidrBlock" or "CidrBlock"] = a.cidr }
      if a.from_port then entry.PortRange = { From = a.from_port, To = a.to_port } end
      acl.Entries[#acl.Entries + 1] = entry
      n = n + 1
    end
  end
  return n
end

local function sg_allow(data, a)
  local n = 0
  for _, g in ipairs((edit.find(data, "SecurityGroups", "GroupId", a.group))) do
    local field = a.egress and "IpPermissionsEgress" or "IpPermissions"
    local perm = { IpProtocol = IP_PROTOCOLS[a.protocol] or tostring(a.protocol) }
    if is_ipv6(a.cidr) then perm.Ipv6Ranges = { { CidrIpv6 = a.cidr } } else perm.IpRanges = { { CidrIp = a.cidr } } end
    if a.from_port then
      perm.FromPort, perm.ToPort = a.from_port, a.to_port
    elseif a.protocol == 1 or a.protocol == 58 then
      perm.FromPort, perm.ToPort = -1, -1
    end
    g[field] = g[field] or {}
    table.insert(g[field], perm)
    n = n + 1
  end
  return n
end

local function dns_support(data, a)
  local n = 0
  for _, attr in ipairs((edit.find(data, "VpcAttributes", "VpcId", a.vpc))) do
    if attr.EnableDnsSupport then
      attr.EnableDnsSupport.Value = true
      n = n + 1
    end
  end
  return n
end

local APPLY = { route = add_route, tgw_propagation = tgw_propagation, tgw_route = tgw_route,
  tgw_association = tgw_association, nacl_allow = nacl_allow, sg_allow = sg_allow, dns_support = dns_support }

--- Makes a fix set's changes in a copy of a snapshot's table form (the input is left as it was).
-- @tparam table data the snapshot as reach.load takes it as a table
-- @tparam table fix a result's fix set (`result.fix`)
-- @treturn table the changed copy
-- @treturn {table,...} the changes that could not be made (no action, or nothing to change found)
function blocked.apply(data, fix)
  local copy, missed = edit.copy(data), {}
  for _, c in ipairs(fix or {}) do
    local f = c.action and APPLY[c.action.op]
    if not (f and f(copy, c.action) > 0) then missed[#missed + 1] = c end
  end
  return copy, missed
end

return blocked
