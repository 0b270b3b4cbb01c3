--- Trace results: hops in words, the blocking hop, a suggested fix, text and JSON forms.
-- A trace keeps its query and the verdict; the hops (packed records from the C evaluator, walked
-- again on first use) and their tables are made only when `forward`, `ret`, `blocked_at`,
-- `assumptions` or `fix` is first read, so a script that only asks `reachable` pays for nothing
-- else. The model must stay open until then.
--
-- result = { reachable = bool, code = explanation code (nil when reachable),
--            blocked_at = hop | nil, forward = {ok, hops}, ret = {ok, hops},
--            assumptions = {text...}, fix = one line | nil, src, dst, dst_ip, protocol, port }
-- hop = { component = id, kind = "route-table" | ..., rule = text | nil,
--         verdict = "allow" | "deny" | "forward" | "drop" | "deliver",
--         direction = "forward" | "return", code = explanation code on the blocking hop }
-- @module awsnet.reach.report
local core = require "awsnet.core"

local creach = core.reach
local report = {}

local KINDS = { "network-interface", "security-group", "network-acl", "route-table", "transit-gateway",
  "tgw-attachment", "tgw-route-table", "peering-connection", "subnet", "vpc" }
local VERDICTS = { "allow", "deny", "forward", "drop", "deliver" }
local HEADER_FORMAT, HEADER_SIZE = "=i4i4i4i4", 16
local HOP_FORMAT = "=BBBBHHi4i4"
local HOP_SIZE = creach.HOP_SIZE
local F_AZ_CROSSED, F_DST_NOT_ENI, F_SRC_NO_ENI, F_NACL_UNKNOWN = 1, 2, 4, 8
local V_DENY, V_DROP = 2, 4
local CODE_NAMES = creach.CODES -- [code + 1] = name
local PROTO_NAMES = { [6] = "tcp", [17] = "udp", [1] = "icmp", [58] = "icmpv6", [-1] = "all" }

local function is_icmp(proto) return proto == 1 or proto == 58 end

-- "icmp type 8 code 0": the evaluator keeps an ICMP type and code as type << 8 | code.
local function icmp_text(proto, point)
  return string.format("%s type %d code %d", PROTO_NAMES[proto], point >> 8, point & 255)
end

--- The explanation codes a result can carry: Reachability Analyzer's (explanation-codes.html),
-- named as it names them, and awsnet's own (`source = "awsnet"`), for what it reports that the
-- Analyzer has no code for. `report.CODES[code] = {source, meaning}`.
report.CODES = {
  NO_ROUTE_TO_DESTINATION = { "Reachability Analyzer", "the route table has no route for the destination" },
  BAD_STATE_ROUTE = { "Reachability Analyzer", "the route is a blackhole" },
  BAD_STATE = { "Reachability Analyzer", "a component is not in a working state" },
  BAD_STATE_ATTACHMENT = { "Reachability Analyzer", "the TGW attachment is missing or not available" },
  TGW_ROUTE_AZ_RESTRICTION = { "Reachability Analyzer", "the attachment has no subnet in the source's AZ" },
  TGW_ATTACH_MISSING_TGW_RTB_ASSOCIATION = { "Reachability Analyzer", "the ingress attachment has no route table" },
  TGW_RTB_ROUTES_ARE_UNKNOWN = { "Reachability Analyzer", "the TGW route table's routes are not in the snapshot" },
  TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT = { "Reachability Analyzer", "the TGW route table has no route for the destination" },
  TGW_RTB_BAD_STATE_ROUTE = { "Reachability Analyzer", "the TGW route is a blackhole" },
  ENI_SG_RULES_MISMATCH = { "Reachability Analyzer", "no security-group rule admits the packet" },
  SG_REFERENCING_SUPPORT = { "Reachability Analyzer", "group identity does not cross this TGW" },
  SUBNET_ACL_RESTRICTION = { "Reachability Analyzer", "the subnet's network ACL denies the packet" },
  UNKNOWN_DESTINATION = { "Reachability Analyzer", "no subnet holds the destination" },
  UNSUPPORTED_COMPONENT = { "Reachability Analyzer", "the path leaves the modelled network" },
  NO_PATH = { "Reachability Analyzer", "the reply does not come back to the source" },
  DNS_SUPPORT_DISABLED = { "awsnet", "the source's VPC cannot resolve the destination's name" },
  NO_DESTINATION_ENI = { "awsnet", "the packet reaches the destination's subnet and no network interface holds "
    .. "the address: no one answers" },
}

local Result = {}
local lazy = {}

Result.__name = "awsnet.reach.result"
Result.__index = function(r, key)
  local f = lazy[key]
  if f then
    f(r)
    return rawget(r, key)
  end
  if key == "_model" then return getmetatable(r).model end
  return Result[key]
end

--- The metatable of one model's results: it holds the model, so a result need not.
-- @param model the awsnet.reach model
-- @treturn table the metatable
function report.metatable(model)
  local mt = { model = model }
  for k, v in pairs(Result) do mt[k] = v end
  return mt
end

local function proto_text(ctx)
  if is_icmp(ctx._proto) then return icmp_text(ctx._proto, ctx._port) end
  local p = PROTO_NAMES[ctx._proto] or ("proto " .. ctx._proto)
  if ctx._proto == 6 or ctx._proto == 17 then p = p .. "/" .. ctx._port end
  return p
end

-- The walk, hop by hop: the evaluator is deterministic and the model immutable, so a trace
-- keeps only its packed query and verdict (`_q`) and walks again (once) when a script asks for
-- the hops.
local function walk(r)
  local w = r._w
  if not w then
    w = r._model._m:walk(r._q)
    rawset(r, "_w", w)
  end
  return w
end

-- The query's numbers (and the explanation code), unpacked from `_q` on first use. Results
-- decided before any walk (DNS) carry them as plain fields and have no `_q`.
local function decode(r)
  local q = rawget(r, "_q")
  if not q or rawget(r, "_proto") ~= nil then return end
  local _, _, _, _, dip, proto, port, lo, hi, fo, code = creach.query(q)
  rawset(r, "_dip", dip)
  rawset(r, "_proto", proto)
  rawset(r, "_port", port)
  rawset(r, "_lo", lo)
  rawset(r, "_hi", hi)
  rawset(r, "_fo", fo)
  if not r.reachable then rawset(r, "code", code) end
end
for _, key in ipairs({ "_dip", "_proto", "_port", "_lo", "_hi", "_fo", "code" }) do
  lazy[key] = decode
end

-- A Lambda function's result (of two ENIs or more) names the ENI its query walked: `source_index`,
-- its place among the function's ENIs, and `source`, its address, found from the query on first use.
local function source_of(r)
  local q, src = rawget(r, "_q"), r._src
  local enis = src.enis
  if not q or not enis or #enis < 2 then return end
  local eni = creach.query(q)
  for i = 1, #enis do
    if enis[i] == eni then
      rawset(r, "source_index", i)
      rawset(r, "source", (type(r._dip) == "string" and src.ips6 or src.ips)[i])
      return
    end
  end
end
lazy.source, lazy.source_index = source_of, source_of

-- The walk's header: forward hop count, blocking hop (1-based, 0 = none), flags, dst ENI.
local function header(r)
  local nforward, blocked, flags = string.unpack(HEADER_FORMAT, walk(r))
  return nforward, blocked > 0 and blocked or nil, flags
end

--- The hops of a packed walk (what `m:walk` returns), in words: each {component, kind, rule,
-- verdict, direction, account, name}, and `code` on each hop that refuses the packet.
-- @param m the C model the walk was made on
-- @tparam string s the packed walk
-- @treturn table the forward hops
-- @treturn table the return hops
-- @treturn ?integer the 1-based index of the first blocking hop over both legs
-- @treturn ?table that hop
-- @treturn integer the walk's flags
function report.decode_walk(m, s)
  local _, blocked, flags = string.unpack(HEADER_FORMAT, s)
  local fwd, ret, first = {}, {}, nil
  for i = 1, report.hop_count(s) do
    local hop = report.hop_at(m, s, i)
    if hop.direction == "forward" then fwd[#fwd + 1] = hop else ret[#ret + 1] = hop end
    if i == blocked then first = hop end
  end
  return fwd, ret, blocked > 0 and blocked or nil, first, flags
end

--- The number of hops in a packed walk.
-- @tparam string s the packed walk
-- @treturn integer the count
function report.hop_count(s)
  return (#s - HEADER_SIZE) // HOP_SIZE
end

--- The i-th hop of a packed walk as numbers, without making a table: kind, verdict and direction
-- (as the evaluator numbers them: see `report.KIND`, `report.VERDICT`; direction 0 forward, 1 return).
-- @tparam string s the packed walk
-- @tparam integer i the hop's 1-based index
-- @treturn integer kind
-- @treturn integer verdict
-- @treturn integer direction
function report.hop_bytes(s, i)
  return string.byte(s, HEADER_SIZE + (i - 1) * HOP_SIZE + 1, HEADER_SIZE + (i - 1) * HOP_SIZE + 3)
end

--- The id of the i-th hop's component in a packed walk.
-- @param m the C model the walk was made on
-- @tparam string s the packed walk
-- @tparam integer i the hop's 1-based index
-- @treturn string the component's id
function report.component_at(m, s, i)
  return (m:component_info((string.unpack("=i4", s, HEADER_SIZE + (i - 1) * HOP_SIZE + 9))))
end

--- The i-th hop of a packed walk in words (as `decode_walk` gives each).
-- @param m the C model the walk was made on
-- @tparam string s the packed walk
-- @tparam integer i the hop's 1-based index
-- @treturn table the hop
function report.hop_at(m, s, i)
  local kind, verdict, dir, _, code, _, comp, rule = string.unpack(HOP_FORMAT, s, HEADER_SIZE + (i - 1) * HOP_SIZE + 1)
  local id, _, account, name = m:component_info(comp)
  local hop = { component = id, kind = KINDS[kind], rule = m:rule_text(rule), verdict = VERDICTS[verdict],
    direction = dir == 0 and "forward" or "return", account = account, name = name }
  if verdict == V_DENY or verdict == V_DROP then hop.code = CODE_NAMES[code + 1] end
  return hop
end

--- The evaluator's numbers of hop kinds (what `hop_bytes` returns first), by name.
report.KIND = {}
--- The evaluator's numbers of verdicts (what `hop_bytes` returns second), by name.
report.VERDICT = {}
for i, k in ipairs(KINDS) do report.KIND[k] = i end
for i, v in ipairs(VERDICTS) do report.VERDICT[v] = i end

local function decode_hops(r)
  local ctx = r
  local nforward, blocked = header(r)
  local fwd, ret, _, first = report.decode_walk(ctx._model._m, walk(r))
  if first then rawset(r, "blocked_at", first) end
  rawset(r, "forward", { ok = blocked == nil or blocked > nforward, hops = fwd })
  rawset(r, "ret", { ok = r.reachable and not ctx._fo, hops = ret })
end
lazy.forward, lazy.ret, lazy.blocked_at = decode_hops, decode_hops, decode_hops

-- What the query said, read from the context on first use.
function lazy.src(r) rawset(r, "src", r._src.label) end
function lazy.dst(r) rawset(r, "dst", r._dst.label) end
function lazy.protocol(r) rawset(r, "protocol", r._proto) end
function lazy.port(r) rawset(r, "port", r._port) end
function lazy.dst_ip(r) rawset(r, "dst_ip", r._dip and creach.ipstr(r._dip) or false) end

function lazy.assumptions(r)
  local ctx = r
  local walked = rawget(r, "_q") ~= nil -- results decided before any walk (DNS) have no query
  local f = walked and select(3, header(r)) or 0
  local out = {}
  for _, a in ipairs(ctx._model.assumptions) do out[#out + 1] = a end
  if f & F_AZ_CROSSED ~= 0 then
    out[#out + 1] = "the TGW leaves through another AZ than it entered (the egress attachment has no subnet in "
      .. "that AZ; AWS picks one where it is present)"
  end
  if f & F_DST_NOT_ENI ~= 0 then
    out[#out + 1] = "no network interface holds " .. creach.ipstr(ctx._dip) .. ": the packet reaches its subnet "
      .. "and no one answers"
  end
  if f & F_SRC_NO_ENI ~= 0 then
    out[#out + 1] = "the source address has no network interface in the snapshot: no egress security group evaluated"
  end
  if f & F_NACL_UNKNOWN ~= 0 then out[#out + 1] = "a subnet without a known network ACL was treated as allow-all" end
  if is_icmp(ctx._proto) then
    out[#out + 1] = ctx._fo and (icmp_text(ctx._proto, ctx._port) .. ": forward path only (no reply to this type)")
      or ("replies checked as " .. icmp_text(ctx._proto, ctx._lo))
  end
  if (ctx._proto == 6 or ctx._proto == 17) and not ctx._fo then
    out[#out + 1] = string.format("replies checked against network ACLs for client ports %d-%d%s", ctx._lo,
      ctx._hi, ctx._spg and "" or ((ctx._src.lambda or ctx._src.hyperplane) and " (Lambda)" or " (Linux default)"))
  end
  if ctx._trap then
    out[#out + 1] = string.format("%s is publicly accessible: from outside its VPC its name resolves to the public "
      .. "address %s, so the transit gateway is not used (unverified: whether the TGW's DnsSupport would "
      .. "answer the private address instead)", ctx._dst.label, tostring(ctx._dst.public_ip))
  end
  if ctx._dns_default then
    out[#out + 1] = "enableDnsSupport of " .. ctx._dns_default .. " is not in the snapshot: taken as true (AWS's default)"
  end
  if ctx._dst.resolved then
    out[#out + 1] = string.format("%s resolved to %s", ctx._dst.dns_name, ctx._dst.resolved)
  end
  if ctx._resolved then out[#out + 1] = ctx._resolved end
  for _, a in ipairs(ctx._dst.assumptions or {}) do out[#out + 1] = a end
  local b = ctx._model._b
  if next(b.notes) or #b.missing > 0 then
    -- what the model says about the components on the path, and data missing in their accounts
    local accounts, said = {}, {}
    for _, leg in ipairs({ r.forward.hops, r.ret.hops }) do
      for _, h in ipairs(leg) do
        if h.account then accounts[h.account] = true end
        for _, text in ipairs(b.notes[h.component] or {}) do
          if not said[text] then said[text] = true out[#out + 1] = text end
        end
      end
    end
    for _, m in ipairs(b.missing) do
      if (m.everywhere or accounts[m.account]) and not said[m.text] then said[m.text] = true out[#out + 1] = m.text end
    end
  end
  rawset(r, "assumptions", out)
end

--- What a hop was asked to pass, as text: "tcp 3306" forward, "tcp 1024-65535" on the return leg.
-- @param ctx the result
-- @tparam table hop the hop (its `direction`)
-- @treturn string the protocol and ports
function report.ports_text(ctx, hop)
  if is_icmp(ctx._proto) then return icmp_text(ctx._proto, hop.direction == "return" and ctx._lo or ctx._port) end
  if ctx._proto ~= 6 and ctx._proto ~= 17 then return PROTO_NAMES[ctx._proto] or ("proto " .. ctx._proto) end
  if hop.direction == "return" then
    return string.format("%s %d-%d", PROTO_NAMES[ctx._proto], ctx._lo, ctx._hi)
  end
  return string.format("%s %d", PROTO_NAMES[ctx._proto], ctx._port)
end
local ports_text = report.ports_text

--- One address as a CIDR: /32 for IPv4, /128 for IPv6 (an Ipv6Ranges rule).
-- @tparam string ip the address as text
-- @treturn string the CIDR
function report.host(ip) return ip .. (ip:find(":", 1, true) and "/128" or "/32") end
local host = report.host

local FIXES = {
  NO_ROUTE_TO_DESTINATION = function(h, to)
    if h._via then return string.format("add a route for %s in %s via %s", h._cidr or to, h.component, h._via) end
    return string.format("add a route for %s (or its VPC CIDR) in %s, towards the transit gateway", to, h.component)
  end,
  BAD_STATE_ROUTE = function(h)
    if h._via then
      return string.format("replace the blackhole route %s in %s with a route for %s via %s", tostring(h.rule), h.component,
        h._cidr, h._via)
    end
    return "replace the blackhole route " .. tostring(h.rule) .. " in " .. h.component
  end,
  BAD_STATE = function(h) return h.component .. " is not available: wait for it or recreate it" end,
  BAD_STATE_ATTACHMENT = function(h)
    return "attach this VPC to the transit gateway and make the attachment available (" .. h.component .. ")"
  end,
  TGW_ROUTE_AZ_RESTRICTION = function(h)
    return "add a subnet in the source's Availability Zone to the attachment " .. h.component
  end,
  TGW_ATTACH_MISSING_TGW_RTB_ASSOCIATION = function(h)
    if h._via and h._rtb then
      return string.format("associate %s with %s (the default association route table of %s)", h._via, h._rtb,
        h.component)
    end
    return "associate the ingress attachment with a route table of " .. h.component
  end,
  TGW_RTB_ROUTES_ARE_UNKNOWN = function(h)
    return "add the TGW owner's describe output for " .. h.component .. " to the snapshot"
  end,
  TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT = function(h, to)
    if h._via and h._ipv6_support then
      return string.format("enable IPv6 support on %s (%s)%s", h._via, h._vpc, h._propagated and
        ", which propagates to " .. h.component or (" and propagate it to " .. h.component))
    elseif h._via and h._propagate then
      return string.format("propagate %s (%s) to %s", h._via, h._vpc, h.component)
    elseif h._via then
      return string.format("add a static route for %s to %s in %s", h._cidr, h._via, h.component)
    end
    return string.format("propagate the destination VPC's attachment to %s, or add a static route for %s", h.component, to)
  end,
  TGW_RTB_BAD_STATE_ROUTE = function(h)
    if h._via then
      return string.format("replace the blackhole route %s in %s with a static route for %s to %s", tostring(h.rule),
        h.component, h._cidr, h._via)
    end
    return "remove the blackhole route " .. tostring(h.rule) .. " from " .. h.component
  end,
  ENI_SG_RULES_MISMATCH = function(h, to, from, ctx)
    if h.direction == "forward" and h._outbound then
      return string.format("add an outbound rule to %s: allow %s to %s", h.component, ports_text(ctx, h), host(to))
    end
    return string.format("add an inbound rule to %s: allow %s from %s", h.component, ports_text(ctx, h), host(from))
  end,
  SG_REFERENCING_SUPPORT = function(h, _, from)
    return string.format("enable SecurityGroupReferencingSupport on the transit gateway and both VPC attachments, "
      .. "or allow %s (a CIDR) in %s instead of the group", host(from), h.component)
  end,
  SUBNET_ACL_RESTRICTION = function(h, to, from, ctx)
    if h._egress ~= nil then
      local n = h.rule and h.rule:match("rule (%d+):")
      return string.format("in %s add an %s rule allowing %s %s %s, numbered below %s%s", h.component,
        h._egress and "outbound" or "inbound", ports_text(ctx, h), h._egress and "to" or "from", host(h._egress and to or from),
        n or "the default deny (*)", n and (" (or remove rule " .. n .. " when a later rule allows it)") or "")
    end
    return string.format("in %s allow %s between %s and %s with a rule numbered before %s", h.component,
      ports_text(ctx, h), from, to, h.rule or "the default deny (*)")
  end,
  UNKNOWN_DESTINATION = function(h, to) return "no subnet of " .. h.component .. " holds " .. to end,
  UNSUPPORTED_COMPONENT = function(h)
    if h._via then
      return string.format("the route %s leaves the modelled network: replace it in %s with a route for %s via %s",
        tostring(h.rule), h.component, h._cidr, h._via)
    end
    return "the route " .. tostring(h.rule) .. " leaves the modelled network (internet, NAT, VPN...): route it via the TGW"
  end,
  NO_PATH = function() return "the reply does not come back the way it left: check both sides' routes" end,
  NO_DESTINATION_ENI = function(h, to)
    return "no network interface in " .. h.component .. " holds " .. to .. ": trace to an address in use"
  end,
}

--- The packet's addresses as text: the source's (the traced ENI's for a Lambda) and the destination's.
-- @param r a result
-- @treturn string the source address
-- @treturn string the destination address
function report.addresses(r)
  local src = r._src
  local i = r.source_index or 1
  local src_ip = src.ip and creach.ipstr(src.ip)
  if not src_ip and type(r._dip) == "string" then -- IPv6: the source's IPv6 address
    src_ip = (src.ips6 and src.ips6[i]) or src.ip6_s
  end
  return src_ip or (src.ips and src.ips[i]) or src.ip_s, r._dip and creach.ipstr(r._dip) or "?"
end

--- The smallest change that would admit the packet at one blocking hop, in words (nil when
-- there is nothing to say for its code). A blocked path (awsnet.reach.blocked) sets what it
-- found on the hop first: `_via` (the connection the missing route should take, or the attachment
-- to associate), `_cidr`, `_vpc`, `_rtb`, `_propagate`, `_outbound`, `_egress`.
-- @param r the result the hop belongs to
-- @tparam table h the hop, with its `code`
-- @treturn ?string the change
function report.suggest(r, h)
  local fix = FIXES[h.code]
  if not fix then return nil end
  local src_ip, dst_ip = report.addresses(r)
  local to, from = dst_ip, src_ip
  if h.direction == "return" then to, from = src_ip, dst_ip end
  return fix(h, to, from, r)
end

--- Whether `suggest` has words for a code.
-- @tparam string code an explanation code
-- @treturn boolean
function report.suggests(code)
  return FIXES[code] ~= nil
end

--- The change for a result decided without a walk, or a publicly accessible database reached at
-- its public address (nil otherwise).
-- @param r the result
-- @treturn ?string the change
function report.early_fix(r)
  if r._fix then return r._fix end -- results decided before any walk carry their own
  if r._trap then
    return "set PubliclyAccessible=false on " .. r._dst.label .. " (or resolve it from its own VPC)"
  end
end

-- The blocked path and the fix set: computed together, on first use (awsnet.reach.blocked).
local function blocked_path(r)
  local b = require("awsnet.reach.blocked").compute(r)
  rawset(r, "blockers", b.blockers)
  rawset(r, "blocked_path", b.path)
  rawset(r, "fix", b.fix)
end
lazy.blockers, lazy.blocked_path, lazy.fix = blocked_path, blocked_path, blocked_path

--- A trace's result: the endpoints it was asked about, its packed query and its verdict; the
-- rest is read from these on first use. `mt` is the model's result metatable (report.metatable).
-- @tparam table mt the model's result metatable
-- @tparam table src the source endpoint
-- @tparam table dst the destination endpoint
-- @tparam boolean ok the verdict
-- @param query the packed query the C evaluator walks again
-- @return the result
function report.result(mt, src, dst, ok, query)
  return setmetatable({ _src = src, _dst = dst, _q = query, reachable = ok }, mt)
end

-- A result decided before any packet moves (DNS): one blocking hop, no C walk. `ctx` holds the
-- query as plain fields (_src, _dst, _proto, _port, _lo, _hi, _dip, _fo, _spg).
local function early(mt, ctx, hop, code, fix)
  hop.code, hop.verdict, hop.direction = code, "drop", "forward"
  ctx.reachable, ctx.code, ctx._fix = false, code, fix
  ctx.forward, ctx.ret, ctx.blocked_at = { ok = false, hops = { hop } }, { ok = false, hops = {} }, hop
  return setmetatable(ctx, mt)
end

--- The result when the source's VPC cannot resolve the destination's name (enableDnsSupport off).
-- @tparam table mt the model's result metatable
-- @tparam table ctx the query as plain fields (_src, _dst, _proto, _port, ...)
-- @tparam string vpc the VPC id
-- @return the result, blocked with DNS_SUPPORT_DISABLED
function report.dns_blocked(mt, ctx, vpc)
  return early(mt, ctx, { component = vpc, kind = "vpc", rule = "enableDnsSupport = false" }, "DNS_SUPPORT_DISABLED",
    "enable enableDnsSupport on " .. vpc .. " (the function cannot resolve " .. ctx._dst.label .. ")")
end

--- The result when the destination database is not available.
-- @tparam table mt the model's result metatable
-- @tparam table ctx the query as plain fields
-- @return the result, blocked with BAD_STATE
function report.db_unavailable(mt, ctx)
  return early(mt, ctx, { component = ctx._dst.label, kind = "rds",
    rule = "DBInstanceStatus is " .. tostring(ctx._dst.status or "not available") },
    "BAD_STATE", "wait until " .. ctx._dst.label .. " is available (or start it)")
end

--- The result when a publicly accessible database's public address is not in the snapshot.
-- @tparam table mt the model's result metatable
-- @tparam table ctx the query as plain fields
-- @return the result, blocked with UNKNOWN_DESTINATION
function report.public_unknown(mt, ctx)
  return early(mt, ctx, { component = ctx._dst.label, kind = "rds" }, "UNKNOWN_DESTINATION",
    "set PubliclyAccessible=false on " .. ctx._dst.label .. ": its public address is not in the snapshot")
end

--- The smallest list of CIDRs covering [first, last].
-- @param first the first address as core.reach.ip gives it (an integer for IPv4, 16 bytes for IPv6)
-- @param last the last one, of the same family
-- @treturn {string,...} CIDR blocks
function report.cidrs(first, last)
  return creach.cidrs(first, last)
end

local function hop_line(i, h)
  return string.format("  %2d. %-18s %-28s %-8s%s%s", i, h.kind or "?", tostring(h.component), h.verdict or "?",
    h.rule and ("  " .. h.rule) or "", h.code and ("  <- " .. h.code) or "")
end

function Result.__tostring(r)
  local ctx = r
  local lines = { string.format("%s: %s -> %s (%s) %s", r.reachable and "REACHABLE" or "NOT REACHABLE", r.src,
    r.dst, r.dst_ip or "address unknown", proto_text(ctx)) }
  if r.source then lines[#lines + 1] = "source ENI address: " .. r.source end
  for _, leg in ipairs({ { "forward", r.forward }, { "return", r.ret } }) do
    if #leg[2].hops > 0 then
      lines[#lines + 1] = leg[1] .. ":"
      for i, h in ipairs(leg[2].hops) do lines[#lines + 1] = hop_line(i, h) end
    end
  end
  if not r.reachable then
    local h = r.blocked_at
    lines[#lines + 1] = string.format("blocked at %s %s (%s): %s", h and h.kind or "?", h and tostring(h.component) or "?",
      h and h.direction or "?", r.code)
    report.blocked_lines(r, lines)
  end
  for _, a in ipairs(r.assumptions) do lines[#lines + 1] = "assumption: " .. a end
  return table.concat(lines, "\n")
end

--- The blocked path in words, appended to `lines`: every blocker with its setting and change,
-- whether the path past them is complete (or where and why it stops), and the fix set.
-- @param r a result that is not reachable
-- @tparam table lines the lines so far
-- @treturn table lines
function report.blocked_lines(r, lines)
  local blockers, path = r.blockers, r.blocked_path
  lines[#lines + 1] = string.format("blockers (%d, in path order):", #blockers)
  for i, b in ipairs(blockers) do
    lines[#lines + 1] = string.format("  %2d. %-7s %-18s %-28s %s", i, b.direction, b.kind or "?", tostring(b.component),
      b.code)
    lines[#lines + 1] = "        setting: " .. tostring(b.setting)
    if b.change then lines[#lines + 1] = "        change:  " .. b.change end
  end
  if path then
    lines[#lines + 1] = path.complete and "blocked path: complete, past every blocker" or
      ("blocked path: " .. tostring(path.stopped))
    for _, a in ipairs(path.assumptions or {}) do lines[#lines + 1] = "  assumed: " .. a end
  end
  if r.fix and #r.fix > 0 then
    lines[#lines + 1] = string.format("fix (%d change%s%s):", #r.fix, #r.fix == 1 and "" or "s",
      path and path.complete and ", together" or "; the path beyond the stop is not known")
    for _, c in ipairs(r.fix) do lines[#lines + 1] = "  - " .. c.change end
  end
  return lines
end

local function plain_hops(hops)
  local out = {}
  for i, h in ipairs(hops) do
    out[i] = { component = h.component, kind = h.kind, rule = h.rule, verdict = h.verdict, direction = h.direction,
      code = h.code, account = h.account }
  end
  return out
end

--- The result as plain data (what `json` encodes): `result:data()`.
-- @within Result
-- @param r the result
-- @treturn table {reachable, code, src, dst, dst_ip, protocol, port, source, fix, blocked_at,
-- forward, ret, assumptions, blockers, blocked_path}
function Result.data(r)
  local d = { reachable = r.reachable, code = r.code, src = r.src, dst = r.dst, dst_ip = r.dst_ip or nil,
    protocol = r.protocol, port = r.port, source = r.source,
    blocked_at = r.blocked_at and plain_hops({ r.blocked_at })[1] or nil,
    forward = { ok = r.forward.ok, hops = plain_hops(r.forward.hops) },
    ret = { ok = r.ret.ok, hops = plain_hops(r.ret.hops) }, assumptions = r.assumptions }
  if not r.reachable then
    local path = r.blocked_path
    d.blockers, d.fix = {}, {}
    for i, b in ipairs(r.blockers) do
      d.blockers[i] = { direction = b.direction, component = b.component, kind = b.kind, account = b.account,
        code = b.code, setting = b.setting, change = b.change, action = b.action, assumed = b.assumed }
    end
    for i, c in ipairs(r.fix or {}) do
      d.fix[i] = { component = c.component, kind = c.kind, code = c.code, change = c.change, action = c.action }
    end
    d.blocked_path = { complete = path.complete, stopped = path.stopped,
      assumptions = #path.assumptions > 0 and path.assumptions or nil,
      forward = { hops = plain_hops(path.forward.hops) }, ret = { hops = plain_hops(path.ret.hops) } }
  end
  return d
end

--- The result as JSON: `result:json()`.
-- @within Result
-- @param r the result
-- @treturn string the JSON text of `result:data()`
function Result.json(r)
  local cjson = require "cjson"
  return cjson.encode(r:data())
end

return report
