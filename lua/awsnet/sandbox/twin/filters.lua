--- nftables rule sets of the network twin (pure text; awsnet.sandbox.twin.plan decides where).
-- Every rule set is one table named by the sandbox's prefix, replaced whole in one `nft -f`
-- transaction. Every rule counts (`counter`) and says whose it is in its comment ("acl-... in 100",
-- "sg-... out 2", "acl-... in *"), so a drop can be traced back to the rule that made it.
-- Network ACLs (router): stateless, first match by rule number, allow = `return` to the next
-- check, deny and the final `*` = `drop`. Security groups (router, on each ENI's link): stateful
-- (conntrack: replies of a connection are let through), a packet passes when any rule of any
-- group admits it. Drops never `reject`: nothing answers a blocked packet.
-- @module awsnet.sandbox.twin.filters
local filters = {}

local function list(v) return type(v) == "table" and v or {} end

local PROTO_NAMES = { ["6"] = "tcp", ["17"] = "udp", ["1"] = "icmp", tcp = "tcp", udp = "udp", icmp = "icmp" }

-- The protocol and port match of a rule ("" for all traffic), nil for a rule that can match
-- nothing here (an unknown protocol, a port range outside 0-65535 or upside down). For ICMP,
-- `from` and `to` are the type and code (-1: any), as security groups and NACLs give them.
local function match_l4(proto, from, to)
  proto = tostring(proto)
  if proto == "-1" or proto == "all" then return "" end
  local name = PROTO_NAMES[proto] or (proto:match("^%d+$") and tonumber(proto) <= 255 and proto)
  if not name then return nil end
  local out = "meta l4proto " .. name
  from, to = math.tointeger(tonumber(from)), math.tointeger(tonumber(to))
  if (name == "tcp" or name == "udp") and from and to and from ~= -1 then
    if from < 0 or to > 65535 or from > to then return nil end
    out = out .. string.format(" th dport %d-%d", from, to)
  elseif name == "icmp" then
    if from and from >= 0 and from <= 255 then out = out .. " icmp type " .. from end
    if to and to >= 0 and to <= 255 then out = out .. " icmp code " .. to end
  end
  return out
end

local groups_chains, sg_rules

local function comment(text) return ' comment "' .. text:gsub('[^%w%-%.%* /]', "_") .. '"' end

local function rule(...)
  local parts = {}
  for _, p in ipairs({ ... }) do if p and p ~= "" then parts[#parts + 1] = p end end
  return "    " .. table.concat(parts, " ")
end

--- The names of a NACL's chains in the router.
-- @tparam string acl_id the NACL id
-- @tparam boolean egress outbound rules?
-- @treturn string the chain name
function filters.acl_chain(acl_id, egress)
  return (egress and "out_" or "in_") .. acl_id:gsub("[^%w]", "_")
end

-- One NACL direction as a chain: entries by rule number, first match.
local function acl_chain(acl, egress, out)
  local entries = {}
  for _, e in ipairs(list(acl.Entries)) do
    if (e.Egress == true) == egress and e.CidrBlock and tonumber(e.RuleNumber) and tonumber(e.RuleNumber) < 32767 then
      entries[#entries + 1] = e
    end
  end
  table.sort(entries, function(a, b) return tonumber(a.RuleNumber) < tonumber(b.RuleNumber) end)
  local dir = egress and "out" or "in"
  out[#out + 1] = "  chain " .. filters.acl_chain(acl.NetworkAclId, egress) .. " {"
  for _, e in ipairs(entries) do
    local pr = type(e.PortRange) == "table" and e.PortRange or {}
    local icmp = type(e.IcmpTypeCode) == "table" and e.IcmpTypeCode or {}
    local l4 = match_l4(e.Protocol, pr.From or icmp.Type, pr.To or icmp.Code)
    if l4 then
      out[#out + 1] = rule((egress and "ip daddr " or "ip saddr ") .. e.CidrBlock, l4, "counter",
        e.RuleAction == "allow" and "return" or "drop", comment(acl.NetworkAclId .. " " .. dir .. " " .. e.RuleNumber))
    end
  end
  out[#out + 1] = rule("counter drop", comment(acl.NetworkAclId .. " " .. dir .. " *"))
  out[#out + 1] = "  }"
end

local function set_of(names)
  local quoted = {}
  for i, n in ipairs(names) do quoted[i] = '"' .. n .. '"' end
  return "{ " .. table.concat(quoted, ", ") .. " }"
end

-- Locally made ICMP errors and redirects never leave: a router drops silently, as AWS's does.
local SILENT_OUTPUT = {
  "  chain output {",
  "    type filter hook output priority 0; policy accept;",
  "    icmp type { destination-unreachable, time-exceeded, redirect, parameter-problem } drop",
  "  }",
}

local function header(prefix)
  -- declared, then deleted, then written: one transaction that replaces the table whole
  return { "table ip " .. prefix, "delete table ip " .. prefix, "table ip " .. prefix .. " {" }
end

-- The drops of the routes: a packet routed to the sink (a blackhole route, or no route) is
-- dropped in the forward hook and counted by the route table that sent it there, known by the
-- links that look it up: `tables` = {{id, links}}. The kernel keeps no counter per route.
local function route_drops(out, sink, tables)
  for _, t in ipairs(tables) do
    out[#out + 1] = rule("oifname " .. set_of({ sink }), "iifname " .. set_of(t.links), "counter drop",
      comment(t.id .. " no route or blackhole"))
  end
  out[#out + 1] = rule("oifname " .. set_of({ sink }), "counter drop", comment("sink"))
end

-- A TGW attachment without an association: every packet it brings is dropped (a blackhole rule),
-- counted here before routing: `unrouted` = {{id, links}}.
local function unassociated(out, unrouted)
  out[#out + 1] = "  chain prerouting {"
  out[#out + 1] = "    type filter hook prerouting priority -10; policy accept;"
  for _, t in ipairs(unrouted or {}) do
    out[#out + 1] = rule("iifname " .. set_of(t.links), "counter", comment(t.id .. " no association"))
  end
  out[#out + 1] = "  }"
end

-- The security groups of the VPC's ENIs, on the router's side of each ENI's link: a chain per ENI
-- and direction (any rule of any group admits: `return`; else the final `drop`), and the chain
-- `groups` the forward hook goes to once the NACLs let a packet through: a packet of a known
-- connection passes, and an ICMP error about one (conntrack: the groups are stateful), a new one
-- is checked against its source ENI's outbound rules and its destination ENI's inbound rules.
-- A Lambda ENI accepts no
-- connection (Lambda's Hyperplane ENIs are one-way, foundation-networking.html). Traffic to the
-- VPC resolver is the router's own input, never filtered (AWS's groups do not filter Amazon DNS).
-- Dropped here, a packet is lost silently (a drop in the ENI's own output hook would fail the
-- sender's send() with EPERM, where AWS's drop is silent and a connect times out).
groups_chains = function(out, enis, sgs)
  local egress_map, ingress_map = {}, {}
  for _, e in ipairs(enis) do
    local id = e.link
    local all = table.concat(e.eni.groups, ",")
    out[#out + 1] = "  chain out_" .. id .. " {"
    sg_rules(e.eni.groups, sgs, e.members.egress, true, out)
    out[#out + 1] = rule("counter drop", comment(all .. " out *"))
    out[#out + 1] = "  }"
    out[#out + 1] = "  chain in_" .. id .. " {"
    if not e.eni.lambda then sg_rules(e.eni.groups, sgs, e.members.ingress, false, out) end
    out[#out + 1] = rule("counter drop", comment(all .. " in *"))
    out[#out + 1] = "  }"
    egress_map[#egress_map + 1] = '"' .. id .. '" : jump out_' .. id
    ingress_map[#ingress_map + 1] = '"' .. id .. '" : jump in_' .. id
  end
  out[#out + 1] = "  chain groups {"
  out[#out + 1] = "    ct state established,related accept"
  if #egress_map > 0 then
    out[#out + 1] = "    iifname vmap { " .. table.concat(egress_map, ", ") .. " }"
    out[#out + 1] = "    oifname vmap { " .. table.concat(ingress_map, ", ") .. " }"
  end
  out[#out + 1] = "    accept"
  out[#out + 1] = "  }"
end

--- A VPC router's rule set: the NACLs of its subnets on the forward hook, and its route tables'
-- drops counted.
-- @tparam string prefix the table's name (the sandbox's prefix)
-- @tparam table ifaces {{name, subnet, tgw}} the router's links
-- @tparam table subnets subnet id -> {acl, rtb, ...}
-- @tparam table acls NACL id -> describe-network-acls entry
-- @tparam table sinks {sink = link of the route tables' drops, nodest = link of addresses no ENI
-- holds, vpc = the VPC's id, resolver = its base + 2}
-- @tparam table enis {{link, eni = {groups, lambda}, members = `group_members`' result}} the
-- VPC's ENIs, whose security groups the router applies on their links
-- @tparam table sgs group id -> describe-security-groups entry
-- @treturn string the nft file
function filters.router(prefix, ifaces, subnets, acls, sinks, enis, sgs)
  local out = header(prefix)
  groups_chains(out, enis, sgs)
  local by_rtb, rtb_order = {}, {}
  for _, i in ipairs(ifaces) do
    local id = subnets[i.subnet].rtb or "no-route-table"
    if not by_rtb[id] then by_rtb[id] = { id = id, links = {} }; rtb_order[#rtb_order + 1] = by_rtb[id] end
    table.insert(by_rtb[id].links, i.name)
  end
  local used = {}
  for _, i in ipairs(ifaces) do
    local acl = subnets[i.subnet].acl
    if acl and acls[acl] then used[acl] = true end
  end
  local ids = {}
  for id in pairs(used) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    acl_chain(acls[id], true, out)
    acl_chain(acls[id], false, out)
  end
  -- links grouped by subnet, ENIs and TGW links apart
  local by_subnet, order = {}, {}
  for _, i in ipairs(ifaces) do
    local g = by_subnet[i.subnet]
    if not g then
      g = { eni = {}, tgw = {}, all = {} }
      by_subnet[i.subnet] = g
      order[#order + 1] = i.subnet
    end
    table.insert(i.tgw and g.tgw or g.eni, i.name)
    table.insert(g.all, i.name)
  end
  table.sort(order)
  local function checks(from, to)
    local a, b = subnets[from].acl, subnets[to].acl
    local parts = {}
    if a and acls[a] then parts[#parts + 1] = "jump " .. filters.acl_chain(a, true) end
    if b and acls[b] then parts[#parts + 1] = "jump " .. filters.acl_chain(b, false) end
    return parts
  end
  local pairs_out = {}
  for _, x in ipairs(order) do
    for _, y in ipairs(order) do
      local gx, gy = by_subnet[x], by_subnet[y]
      local chain = "p_" .. (x .. "_" .. y):gsub("[^%w_]", "_")
      -- into a TGW link: the source subnet's outbound and the TGW subnet's inbound rules, also
      -- when they are one subnet; to an ENI: only when it leaves a subnet (tgw-nacls.html)
      if #gy.tgw > 0 then
        local c = checks(x, y)
        out[#out + 1] = "  chain " .. chain .. "_t {"
        for _, p in ipairs(c) do out[#out + 1] = "    " .. p end
        out[#out + 1] = "    goto groups"
        out[#out + 1] = "  }"
        pairs_out[#pairs_out + 1] = rule("iifname " .. set_of(gx.all), "oifname " .. set_of(gy.tgw), "jump " .. chain .. "_t")
      end
      if #gy.eni > 0 then
        if x == y then
          pairs_out[#pairs_out + 1] = rule("iifname " .. set_of(gx.all), "oifname " .. set_of(gy.eni), "goto groups")
        else
          out[#out + 1] = "  chain " .. chain .. " {"
          for _, p in ipairs(checks(x, y)) do out[#out + 1] = "    " .. p end
          out[#out + 1] = "    goto groups"
          out[#out + 1] = "  }"
          pairs_out[#pairs_out + 1] = rule("iifname " .. set_of(gx.all), "oifname " .. set_of(gy.eni), "jump " .. chain)
        end
      end
    end
  end
  out[#out + 1] = "  chain forward {"
  out[#out + 1] = "    type filter hook forward priority 0; policy drop;"
  route_drops(out, sinks.sink, rtb_order)
  out[#out + 1] = rule("oifname " .. set_of({ sinks.nodest }), "counter drop", comment(sinks.vpc .. " no destination"))
  for _, l in ipairs(pairs_out) do out[#out + 1] = l end
  out[#out + 1] = rule("counter", comment("router unmatched"))
  out[#out + 1] = "  }"
  -- the router itself answers only its own VPC's ENIs, on the resolver's port: base + 2 is not
  -- reachable from another VPC (AmazonDNS-concepts.html; the multi-VPC whitepaper)
  local eni_links = {}
  for _, e in ipairs(enis) do eni_links[#eni_links + 1] = e.link end
  out[#out + 1] = "  chain input {"
  out[#out + 1] = "    type filter hook input priority 0; policy drop;"
  out[#out + 1] = '    iifname "lo" accept'
  if #eni_links > 0 and sinks.resolver then
    out[#out + 1] = rule("iifname " .. set_of(eni_links), "ip daddr " .. sinks.resolver,
      "meta l4proto { tcp, udp } th dport 53 accept")
  end
  out[#out + 1] = rule("counter", comment(sinks.vpc .. " router input"))
  out[#out + 1] = "  }"
  for _, l in ipairs(SILENT_OUTPUT) do out[#out + 1] = l end
  out[#out + 1] = "}"
  return table.concat(out, "\n") .. "\n"
end

--- A TGW's rule set: it filters nothing (TGWs have no ACLs) but stays silent, and counts what its
-- route tables drop.
-- @tparam string prefix the table's name
-- @tparam table tables {{id = TGW route table id, links}} by association
-- @tparam table unrouted {{id = attachment id, links}} without an association
-- @tparam string sink the link of the route tables' drops
-- @treturn string the nft file
function filters.transit(prefix, tables, unrouted, sink)
  local out = header(prefix)
  unassociated(out, unrouted)
  out[#out + 1] = "  chain forward {"
  out[#out + 1] = "    type filter hook forward priority 0; policy accept;"
  route_drops(out, sink, tables)
  out[#out + 1] = "  }"
  for _, l in ipairs(SILENT_OUTPUT) do out[#out + 1] = l end
  out[#out + 1] = "}"
  return table.concat(out, "\n") .. "\n"
end

--- The addresses that count as members of each group, seen from `eni`: {ingress = {[group] =
-- {ip,...}}, egress = {...}}. Outbound rules match group members in the ENI's own VPC only;
-- inbound rules also those of another VPC when `survives(peer_vpc)` (identity kept across the TGW).
-- @tparam table w the indexed world (awsnet.sandbox.twin.plan)
-- @tparam table eni the ENI {vpc, ...}
-- @tparam function survives peer VPC id -> boolean
-- @treturn table the members
function filters.group_members(w, eni, survives)
  local out = { ingress = {}, egress = {} }
  local cache = {}
  for _, id in ipairs(w.order.enis) do
    local peer = w.enis[id]
    local same = peer.vpc == eni.vpc
    if cache[peer.vpc] == nil then cache[peer.vpc] = same or survives(peer.vpc) end
    for _, g in ipairs(peer.groups) do
      if same then
        out.egress[g] = out.egress[g] or {}
        table.insert(out.egress[g], peer.ip)
      end
      if cache[peer.vpc] then
        out.ingress[g] = out.ingress[g] or {}
        table.insert(out.ingress[g], peer.ip)
      end
    end
  end
  return out
end

-- One SG direction's rules: any rule of any group admits (`return` to the groups chain).
sg_rules = function(groups, sgs, members, egress, out)
  local addr = egress and "ip daddr " or "ip saddr "
  local dir = egress and "out" or "in"
  for _, gid in ipairs(groups) do
    local sg = sgs[gid]
    for n, p in ipairs(sg and list(egress and sg.IpPermissionsEgress or sg.IpPermissions) or {}) do
      local l4 = match_l4(p.IpProtocol, p.FromPort, p.ToPort)
      if l4 then
        local note = comment(gid .. " " .. dir .. " " .. n)
        for _, r in ipairs(list(p.IpRanges)) do
          if r.CidrIp then out[#out + 1] = rule(addr .. r.CidrIp, l4, "counter return", note) end
        end
        for _, pair in ipairs(list(p.UserIdGroupPairs)) do
          local ips = members[pair.GroupId]
          if ips and #ips > 0 then
            out[#out + 1] = rule(addr .. "{ " .. table.concat(ips, ", ") .. " }", l4, "counter return", note)
          end
        end
      end
    end
  end
end

return filters
