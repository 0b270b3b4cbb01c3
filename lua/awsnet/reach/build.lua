--- Compiles the table form of a snapshot into the C model (awsnet.core.reach).
-- Resolves every id to an index, merges what several accounts see of one resource (a shared
-- TGW is one TGW; the owner's route tables go with the participant's attachments), expands
-- prefix lists, computes propagated TGW routes, and keeps the names and rule texts the hops
-- are reported with. Everything it cannot use is listed in `skipped`.
-- @module awsnet.reach.build
local core = require "awsnet.core"
local errors = require "awsnet.errors"
local states = require "awsnet.reach.states"

local creach = core.reach
local build = {}

local RT_LOCAL, RT_TGW, RT_PCX, RT_OTHER = creach.RT_LOCAL, creach.RT_TGW, creach.RT_PCX, creach.RT_OTHER
local RANK_STATIC, RANK_PREFIX_LIST, RANK_PROPAGATED, RANK_OTHER_PROPAGATED = 0, 1, 2, 3

-- Protocols as security groups and NACLs write them.
local PROTOCOLS = { ["-1"] = -1, all = -1, tcp = 6, udp = 17, icmp = 1, icmpv6 = 58 }

local function str(v) return type(v) == "string" and v or nil end
local function list(v) return type(v) == "table" and v or {} end

local function protocol_number(p)
  if type(p) == "number" then return math.tointeger(p) end
  if type(p) ~= "string" then return nil end
  return PROTOCOLS[p:lower()] or math.tointeger(tonumber(p))
end

local function tag_name(res)
  for _, t in ipairs(list(res.Tags or res.TagSet)) do
    if t.Key == "Name" then return str(t.Value) end
  end
end

-- The compiling state: the C model plus everything Lua keeps to name things.
local Builder = {}
Builder.__index = Builder

local function new_builder(origins)
  return setmetatable({
    m = creach.new(),
    idx = { vpc = {}, subnet = {}, rtb = {}, acl = {}, sg = {}, eni = {}, tgw = {}, att = {}, trtb = {},
            pcx = {} },
    info = { vpc = {}, subnet = {}, att = {}, tgw = {} },
    endpoints = {},        -- "eni-..", "i-..", "lambda:x", "rds:x" -> endpoint record
    rds_names = {},        -- endpoint address -> rds record
    subnet_ids = {},       -- [subnet index] = subnet id
    subnet_vpc = {},       -- [subnet index] = VPC index
    eni_ids = {},          -- [ENI index] = ENI id (the snapshot's ENIs; not the assumed ones)
    lambda_enis = {},      -- subnet id -> {Hyperplane ENI, ...} (see choosable_eni)
    rds_enis = {},         -- VPC id -> {ENI requested by RDS, ...}
    scanned = 0,           -- candidates the functions and databases passes looked at
    skipped = {},
    notes = {},            -- component id -> {assumption...}: said by each trace through it
    missing = {},          -- {account, region, key, text}: data a trace in that account depends on
    origins = origins or {},
  }, Builder)
end

-- Names and rule texts live in the C model (out of the Lua heap the GC walks).
function Builder:comp(id, kind, where, name)
  return self.m:component(id, kind, where.account, name)
end

function Builder:rule(text)
  return self.m:rule(text)
end

-- An assumption every trace through component `id` states.
function Builder:note(id, text)
  local n = self.notes[id]
  if not n then n = {} self.notes[id] = n end
  for _, t in ipairs(n) do if t == text then return end end
  n[#n + 1] = text
end

function Builder:skip(where, what, reason)
  self.skipped[#self.skipped + 1] = { account = where.account, region = where.region, key = where.key,
    resource = what, reason = reason }
end

function Builder:file(where)
  local o = self.origins[where.account]
  o = o and o[where.region]
  return (o and o[where.key]) or string.format("accounts/%s/%s/%s", where.account, where.region, where.key)
end

function Builder:fail(where, resource, message)
  local file = self:file(where)
  return errors.new("invalid_snapshot", string.format("%s: %s: %s", file, resource or "?", message),
    { file = file, resource = resource })
end

-- Walks every resource list named `key` in every account and region: fn(resource, where).
-- Raises a tagged error value (caught in build.compile) to stop at the first bad input.
local STOP = {}
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

function Builder:each(data, key, fn)
  for _, account in ipairs(sorted_keys(data.accounts)) do
    local regions = data.accounts[account]
    if type(regions) ~= "table" then
      self:raise({ account = account, region = "?", key = key }, account, "account entry must be a table of regions")
    end
    for _, region in ipairs(sorted_keys(regions)) do
      local res = regions[region]
      local items = type(res) == "table" and res[key]
      if items ~= nil and items ~= false then
        local where = { account = account, region = region, key = key }
        if type(items) ~= "table" or (next(items) ~= nil and items[1] == nil) then
          self:raise(where, key, "expected a JSON array")
        end
        for _, item in ipairs(items) do
          if type(item) ~= "table" then self:raise(where, key, "expected an object in the array") end
          self.at = where
          fn(item, where)
        end
      end
    end
  end
end

function Builder:raise(where, resource, message)
  error({ STOP, self:fail(where, resource, message) })
end

function Builder:need_id(res, field, where)
  local id = str(res[field])
  if not id then self:raise(where, field, "missing " .. field) end
  return id
end

-- Registers id in index `kind`; the same id twice in one list is an error, the same id from
-- another account or region (a shared resource seen from both sides) is merged: first wins.
function Builder:claim(kind, id, where)
  -- (a table per kind: no key string made per resource)
  local all = self.seen or {}
  self.seen = all
  local seen = all[kind] or {}
  all[kind] = seen
  local key = id
  local prev = seen[key]
  if prev then
    if prev.account == where.account and prev.region == where.region and prev.key == where.key then
      self:raise(where, id, "duplicate id")
    end
    return false
  end
  seen[key] = where
  return true
end

-- The resource's id when this is the first time it is seen (see claim), else nil.
function Builder:first_sight(res, field, kind, where)
  local id = self:need_id(res, field, where)
  return self:claim(kind, id, where) and id or nil
end

function Builder:cidr_ok(cidr, where, resource)
  if type(cidr) ~= "string" or not creach.cidr(cidr) then
    self:raise(where, resource, "invalid CIDR " .. tostring(cidr))
  end
  return cidr
end

-- ---- passes, in dependency order -----------------------------------------------------------

function Builder:zones(data)
  self.az_ids, self.az_codes = {}, {}
  self:each(data, "AvailabilityZones", function(az, where)
    if str(az.ZoneName) and str(az.ZoneId) then
      self.az_ids[where.account .. "/" .. az.ZoneName] = az.ZoneId
    end
  end)
end

-- AZ IDs are the same zone in every account; names are not. Returns an integer code.
function Builder:az_code(subnet, where)
  local id = str(subnet.AvailabilityZoneId) or self.az_ids[where.account .. "/" .. tostring(subnet.AvailabilityZone)]
  if not id then
    id = where.account .. "/" .. tostring(subnet.AvailabilityZone)
    self.az_assumed = true
  end
  local code = self.az_codes[id]
  if not code then
    self.nazs = (self.nazs or 0) + 1
    code = self.nazs
    self.az_codes[id] = code
  end
  return code
end

function Builder:prefix_lists(data)
  self.pls = {}
  self:each(data, "PrefixLists", function(pl, where)
    local id = self:need_id(pl, "PrefixListId", where)
    self.pls[id] = {}
    for _, c in ipairs(list(pl.Cidrs)) do
      if creach.cidr(c) then self.pls[id][#self.pls[id] + 1] = c end
    end
  end)
  -- describe-managed-prefix-lists has no entries; accept them inline as `Entries`
  -- (get-managed-prefix-list-entries output) on each list.
  self:each(data, "ManagedPrefixLists", function(pl, where)
    local id = self:need_id(pl, "PrefixListId", where)
    if pl.Entries == nil then
      self:skip(where, id, "managed prefix list without Entries (add get-managed-prefix-list-entries output)")
      return
    end
    local cidrs = {}
    for _, e in ipairs(list(pl.Entries)) do
      local c = str(e.Cidr)
      if c then cidrs[#cidrs + 1] = self:cidr_ok(c, where, id) end
    end
    self.pls[id] = cidrs
  end)
end

function Builder:transit_gateways(data)
  self:each(data, "TransitGateways", function(t, where)
    local id = self:need_id(t, "TransitGatewayId", where)
    local info = self.info.tgw[id]
    -- the owner's copy wins over what a participant of the share sees
    if info and not (str(t.OwnerId) == where.account and info.owner ~= where.account) then return end
    local opts = list(t.Options)
    local works, assumed = states.works("tgw", str(t.State))
    self.info.tgw[id] = { res = t, where = where, owner = str(t.OwnerId) or where.account,
      available = works, assumed = assumed and (id .. ": " .. assumed), sgref = opts.SecurityGroupReferencingSupport == "enable",
      dns = opts.DnsSupport ~= "disable", default_rtb = str(opts.AssociationDefaultRouteTableId) }
  end)
  for id, info in pairs(self.info.tgw) do
    self.idx.tgw[id] = self.m:tgw(self:comp(id, "transit-gateway", info.where, tag_name(info.res)),
      info.available, info.sgref)
  end
end

function Builder:tgw_route_tables(data)
  self:each(data, "TransitGatewayRouteTables", function(t, where)
    local id = self:first_sight(t, "TransitGatewayRouteTableId", "trtb", where)
    if not id then return end
    self.idx.trtb[id] = self.m:tgw_route_table(self:comp(id, "tgw-route-table", where, tag_name(t)), true,
      t.State == nil or t.State == "available")
  end)
end

-- A table referenced by an association but absent (only its owner can describe it).
function Builder:unknown_trtb(id, where)
  if not self.idx.trtb[id] then
    self.idx.trtb[id] = self.m:tgw_route_table(self:comp(id, "tgw-route-table", where), false, true)
    self.unknown_trtbs = true
  end
  return self.idx.trtb[id]
end

function Builder:vpcs(data)
  local dns = {}
  -- describe-vpc-attribute output, one object per VPC and attribute, under "VpcAttributes"
  self:each(data, "VpcAttributes", function(a)
    local id = str(a.VpcId)
    if not id then return end
    dns[id] = dns[id] or {}
    if type(a.EnableDnsSupport) == "table" then dns[id].support = a.EnableDnsSupport.Value end
    if type(a.EnableDnsHostnames) == "table" then dns[id].hostnames = a.EnableDnsHostnames.Value end
  end)
  self:each(data, "Vpcs", function(v, where)
    local id = self:first_sight(v, "VpcId", "vpc", where)
    if not id then return end
    local cidrs = {}
    for _, a in ipairs(list(v.CidrBlockAssociationSet)) do
      local st = type(a.CidrBlockState) == "table" and a.CidrBlockState.State or "associated"
      if str(a.CidrBlock) and st == "associated" then
        cidrs[#cidrs + 1] = self:cidr_ok(a.CidrBlock, where, id)
      end
    end
    if #cidrs == 0 and v.CidrBlock ~= nil then cidrs[1] = self:cidr_ok(v.CidrBlock, where, id) end
    local d = dns[id] or {}
    local support = d.support
    self.info.vpc[id] = { cidrs = cidrs, cidrs6 = self:ipv6_cidrs(v, where, id), where = where,
      dns_support = support ~= false,
      dns_known = support ~= nil, dns_hostnames = d.hostnames, owner = str(v.OwnerId) or where.account }
    self.idx.vpc[id] = self.m:vpc(self:comp(id, "vpc", where, tag_name(v)), support ~= false)
  end)
end

-- The associated IPv6 CIDRs of a VPC or subnet (Ipv6CidrBlockAssociationSet).
function Builder:ipv6_cidrs(res, where, id)
  local out = {}
  for _, a in ipairs(list(res.Ipv6CidrBlockAssociationSet)) do
    local st = type(a.Ipv6CidrBlockState) == "table" and a.Ipv6CidrBlockState.State or "associated"
    if str(a.Ipv6CidrBlock) and st == "associated" then out[#out + 1] = self:cidr_ok(a.Ipv6CidrBlock, where, id) end
  end
  return out
end

function Builder:route_tables(data)
  self.subnet_rtb = {}
  self:each(data, "RouteTables", function(t, where)
    local id = self:first_sight(t, "RouteTableId", "rtb", where)
    if not id then return end
    local vpc = self.idx.vpc[str(t.VpcId) or ""]
    if not vpc then self:raise(where, id, "unknown VPC " .. tostring(t.VpcId)) end
    local r = self.m:route_table(self:comp(id, "route-table", where, tag_name(t)))
    self.idx.rtb[id] = r
    self:table_routes({ res = t, where = where, idx = r, id = id })
    for _, a in ipairs(list(t.Associations)) do
      local state = type(a.AssociationState) == "table" and a.AssociationState.State or "associated"
      if state == "associated" then
        if a.Main == true then self.m:main_route_table(vpc, r) end
        if str(a.SubnetId) then self.subnet_rtb[a.SubnetId] = r end
      end
    end
  end)
end

local function is_icmp(proto) return proto == 1 or proto == 58 end

-- An ICMP or ICMPv6 rule's types and codes in the evaluator's 16 bits (type << 8 | code): -1 (or
-- nothing) is every type, or every code of the type.
local function icmp_range(icmp_type, code)
  local t, c = math.tointeger(icmp_type), math.tointeger(code)
  if not t or t < 0 or t > 255 then return 0, 65535 end
  if not c or c < 0 or c > 255 then return t << 8, (t << 8) | 255 end
  return (t << 8) | c, (t << 8) | c
end

-- A rule's ports (or ICMP types and codes) in words.
local function what_text(proto, lo, hi)
  if proto == -1 then return "all" end
  local name = proto == 6 and "tcp" or proto == 17 and "udp" or proto == 1 and "icmp" or proto == 58 and "icmpv6"
    or ("proto " .. proto)
  if proto == 6 or proto == 17 then return name .. " " .. (lo == hi and lo or (lo .. "-" .. hi)) end
  if is_icmp(proto) and not (lo == 0 and hi == 65535) then
    return string.format("%s type %d%s", name, lo >> 8, lo == hi and (" code " .. (lo & 255)) or "")
  end
  return name
end

local function port_range(e, proto)
  if is_icmp(proto) then
    local tc = type(e.IcmpTypeCode) == "table" and e.IcmpTypeCode or {}
    return icmp_range(tc.Type, tc.Code)
  end
  local pr = e.PortRange
  if proto ~= 6 and proto ~= 17 then return 0, 65535 end
  if type(pr) ~= "table" then return 0, 65535 end
  local lo, hi = math.tointeger(pr.From), math.tointeger(pr.To)
  if not lo or not hi then return 0, 65535 end
  return lo, hi
end

function Builder:network_acls(data)
  self.subnet_acl, self.default_acl = {}, {}
  self:each(data, "NetworkAcls", function(n, where)
    local id = self:first_sight(n, "NetworkAclId", "acl", where)
    if not id then return end
    local a = self.m:network_acl(self:comp(id, "network-acl", where, tag_name(n)))
    self.idx.acl[id] = a
    if n.IsDefault == true and str(n.VpcId) then self.default_acl[n.VpcId] = a end
    for _, assoc in ipairs(list(n.Associations)) do
      if str(assoc.SubnetId) then self.subnet_acl[assoc.SubnetId] = a end
    end
    for _, e in ipairs(list(n.Entries)) do
      local number = math.tointeger(e.RuleNumber)
      local proto = protocol_number(e.Protocol)
      if not number or not proto then self:raise(where, id, "bad NACL entry " .. tostring(number)) end
      -- an entry is IPv4 (CidrBlock) or IPv6 (Ipv6CidrBlock); 32767 and 32768 are the catch-all
      -- deny rules of each family ("*")
      local cidr = self:cidr_ok(str(e.CidrBlock) or e.Ipv6CidrBlock, where, id)
      local lo, hi = port_range(e, proto)
      local egress = e.Egress == true
      local allow = e.RuleAction == "allow"
      local text = string.format("%s rule %s: %s %s %s %s", egress and "outbound" or "inbound",
        (number == 32767 or number == 32768) and "*" or tostring(number), allow and "allow" or "deny",
        what_text(proto, lo, hi), egress and "to" or "from", cidr)
      local ok, err = self.m:acl_rule(a, egress, number, proto, lo, hi, cidr, allow, self:rule(text))
      if not ok then self:raise(where, id, err) end
    end
  end)
end

-- Two passes, the groups then their rules (a rule may name any group): a lazily read snapshot
-- decodes the files twice rather than holding every group until the last one is known.
function Builder:security_groups(data)
  local firsts, n = {}, 0 -- [n-th group listed] = its id when first seen there, else false
  self:each(data, "SecurityGroups", function(g, where)
    local id = self:first_sight(g, "GroupId", "sg", where)
    n = n + 1
    firsts[n] = id or false
    if not id then return end
    self.idx.sg[id] = self.m:security_group(self:comp(id, "security-group", where, str(g.GroupName)))
  end)
  n = 0
  self:each(data, "SecurityGroups", function(g, where)
    n = n + 1
    if not firsts[n] then return end
    local grp = { res = g, where = where, id = firsts[n] }
    self:sg_rules(grp, list(g.IpPermissions), false)
    self:sg_rules(grp, list(g.IpPermissionsEgress), true)
  end)
end

function Builder:sg_rules(g, perms, egress)
  local m, sg, where = self.m, self.idx.sg[g.id], g.where
  local dir = egress and "outbound" or "inbound"
  for _, p in ipairs(perms) do
    local proto = protocol_number(p.IpProtocol)
    if not proto then self:raise(where, g.id, "bad IpProtocol " .. tostring(p.IpProtocol)) end
    local lo, hi = 0, 65535
    if proto == 6 or proto == 17 then
      lo, hi = math.tointeger(p.FromPort) or 0, math.tointeger(p.ToPort) or 65535
      if lo == -1 then lo, hi = 0, 65535 end
      if lo < 0 or hi > 65535 or lo > hi then self:raise(where, g.id, "bad port range " .. lo .. "-" .. hi) end
    elseif is_icmp(proto) then
      -- FromPort is the ICMP type, ToPort the code (-1: all)
      lo, hi = icmp_range(p.FromPort, p.ToPort)
    end
    local what = proto == -1 and "all traffic" or what_text(proto, lo, hi)
    local peer = egress and "to" or "from"
    local function add(cidr, ref, label)
      local ok, err = m:sg_rule(sg, egress, proto, lo, hi, cidr, ref,
        self:rule(string.format("%s: allow %s %s %s", dir, what, peer, label)))
      if not ok then self:raise(where, g.id, err) end
    end
    for _, r in ipairs(list(p.IpRanges)) do
      add(self:cidr_ok(r.CidrIp, where, g.id), nil, r.CidrIp)
    end
    for _, r in ipairs(list(p.Ipv6Ranges)) do
      add(self:cidr_ok(r.CidrIpv6, where, g.id), nil, r.CidrIpv6)
    end
    for _, r in ipairs(list(p.PrefixListIds)) do
      local cidrs = self.pls[str(r.PrefixListId) or ""]
      if not cidrs then
        self:skip(where, g.id, "rule names unknown prefix list " .. tostring(r.PrefixListId) .. " (matches nothing)")
      else
        for _, c in ipairs(cidrs) do add(c, nil, c .. " (" .. r.PrefixListId .. ")") end
      end
    end
    for _, r in ipairs(list(p.UserIdGroupPairs)) do
      local ref = self.idx.sg[str(r.GroupId) or ""]
      local label = (str(r.UserId) and r.UserId ~= where.account) and (r.UserId .. "/" .. tostring(r.GroupId))
        or tostring(r.GroupId)
      if ref then
        add(nil, ref, label)
      else
        self:skip(where, g.id, "rule references unknown group " .. label .. " (matches nothing)")
      end
    end
  end
end

local function vpc_index(self, vpc_id)
  return self.idx.vpc[str(vpc_id) or ""]
end

function Builder:subnets(data)
  self:each(data, "Subnets", function(s, where)
    local id = self:first_sight(s, "SubnetId", "subnet", where)
    if not id then return end
    local vpc = vpc_index(self, s.VpcId)
    if not vpc then self:raise(where, id, "unknown VPC " .. tostring(s.VpcId)) end
    -- dual stack: the IPv6 CIDR is the subnet's second; an IPv6-only subnet has no CidrBlock
    local cidrs6 = self:ipv6_cidrs(s, where, id)
    local cidr = (s.CidrBlock == nil and cidrs6[1]) or self:cidr_ok(s.CidrBlock, where, id)
    local az = self:az_code(s, where)
    local acl = self.subnet_acl[id] or self.default_acl[s.VpcId] or -1
    if acl == -1 then self:skip(where, id, "no network ACL known for the subnet: NACLs treated as allow-all") end
    local idx, err = self.m:subnet(self:comp(id, "subnet", where, tag_name(s)), vpc, cidr, az,
      self.subnet_rtb[id] or -1, acl)
    if not idx then self:raise(where, id, err) end
    for _, c in ipairs(cidrs6) do
      if c ~= cidr then self.m:subnet_cidr(idx, c) end
    end
    self.idx.subnet[id] = idx
    self.subnet_ids[idx] = id
    self.subnet_vpc[idx] = vpc
    -- (four fields: what the ENI, function and database passes read, in a table of four slots)
    self.info.subnet[id] = { vpc = s.VpcId, cidr = s.CidrBlock ~= nil and cidr or nil, cidr6 = cidrs6[1],
      az_name = str(s.AvailabilityZone) }
  end)
end

function Builder:peerings(data)
  self:each(data, "VpcPeeringConnections", function(p, where)
    local id = self:first_sight(p, "VpcPeeringConnectionId", "pcx", where)
    if not id then return end
    local a = vpc_index(self, type(p.RequesterVpcInfo) == "table" and p.RequesterVpcInfo.VpcId)
    local b = vpc_index(self, type(p.AccepterVpcInfo) == "table" and p.AccepterVpcInfo.VpcId)
    if not a or not b then
      self:skip(where, id, "peering with a VPC outside the snapshot")
      return
    end
    local active = type(p.Status) == "table" and p.Status.Code == "active"
    self.idx.pcx[id] = self.m:peering(self:comp(id, "peering-connection", where, tag_name(p)), a, b, active)
  end)
end

-- A route table's routes, compiled as its table is (so its decoded routes need not outlive the
-- pass; peering connections, which routes name, are compiled before).
function Builder:table_routes(t)
  local where, id = t.where, t.id
  self.at = where
  for _, r in ipairs(list(t.res.Routes)) do
    local dests
    local rank = RANK_STATIC
    if str(r.DestinationCidrBlock) then
      dests = { self:cidr_ok(r.DestinationCidrBlock, where, id) }
    elseif str(r.DestinationPrefixListId) then
      dests, rank = self.pls[r.DestinationPrefixListId], RANK_PREFIX_LIST
      if not dests then
        self:skip(where, id, "route to unknown prefix list " .. r.DestinationPrefixListId)
        dests = {}
      end
    elseif str(r.DestinationIpv6CidrBlock) then
      dests = { self:cidr_ok(r.DestinationIpv6CidrBlock, where, id) }
    else
      self:skip(where, id, "route without a destination")
      dests = {}
    end
    if r.Origin == "EnableVgwRoutePropagation" then rank = RANK_PROPAGATED end
    local kind, target, label = RT_OTHER, -1
    if r.GatewayId == "local" then
      kind, label = RT_LOCAL, "local"
    elseif str(r.TransitGatewayId) then
      label = r.TransitGatewayId
      if self.idx.tgw[r.TransitGatewayId] then kind, target = RT_TGW, self.idx.tgw[r.TransitGatewayId] end
    elseif str(r.VpcPeeringConnectionId) then
      label = r.VpcPeeringConnectionId
      if self.idx.pcx[label] then kind, target = RT_PCX, self.idx.pcx[label] end
    else
      label = str(r.GatewayId) or str(r.NatGatewayId) or str(r.NetworkInterfaceId) or str(r.InstanceId)
        or str(r.EgressOnlyInternetGatewayId) or str(r.LocalGatewayId) or str(r.CarrierGatewayId)
        or str(r.CoreNetworkArn) or "?"
    end
    local blackhole = r.State == "blackhole"
    for _, d in ipairs(dests) do
      local text = string.format("%s -> %s%s%s", d, label,
        str(r.DestinationPrefixListId) and (" (" .. r.DestinationPrefixListId .. ")") or "",
        blackhole and " (blackhole)" or "")
      local ok, err = self.m:route(t.idx, d, kind, target, rank, blackhole, self:rule(text))
      if not ok then self:raise(where, id, err) end
    end
  end
end

-- The ENIs the functions and databases passes choose from, indexed once as they are added (a scan
-- of every ENI per function subnet and per database made the load quadratic): Hyperplane ENIs by
-- subnet id, ENIs RDS requested by VPC id, each {id, subnet, sgs} (its addresses are its endpoint
-- record's). Other ENIs keep nothing here: at organisation scale they are most of the snapshot.
-- `scanned` counts the candidates those passes look at (tests/reach_scale_spec.lua).
local NONE = {}

function Builder:choosable_eni(id, res, sg_ids)
  local by, key
  if res.InterfaceType == "lambda" then
    by, key = self.lambda_enis, res.SubnetId
  elseif res.Description == "RDSNetworkInterface" or res.RequesterId == "amazon-rds" then
    by, key = self.rds_enis, self.info.subnet[res.SubnetId].vpc
  end
  if by and key then
    local l = by[key]
    if not l then l = {} by[key] = l end
    l[#l + 1] = { id = id, subnet = res.SubnetId, sgs = sg_ids }
  end
end

-- The ENIs a database's may be: any at the address its endpoint resolves to (an index by address
-- made at the first such lookup), each {id, vpc}; then those RDS requested in its VPC, each
-- {id, subnet, sgs} (db_eni tells the two apart by `sgs`).
function Builder:db_candidates(vpc, resolved)
  local rds = self.rds_enis[vpc or ""] or NONE
  if not resolved then return rds end
  if not self.ip_enis then
    self.ip_enis = {}
    for _, id in pairs(self.eni_ids) do
      local ep = self.endpoints[id]
      for _, addr in ipairs({ ep.ip_s or false, ep.ip6_s or false }) do
        if addr then
          local l = self.ip_enis[addr] or {}
          self.ip_enis[addr] = l
          l[#l + 1] = { id = id, vpc = ep.vpc }
        end
      end
    end
  end
  local out = {}
  table.move(self.ip_enis[resolved] or NONE, 1, #(self.ip_enis[resolved] or NONE), 1, out)
  table.move(rds, 1, #rds, #out + 1, out)
  return out
end

local function group_ids(groups)
  local out = {}
  for _, g in ipairs(list(groups)) do
    if str(g.GroupId) then out[#out + 1] = g.GroupId end
  end
  return out
end

-- A group an ENI names that the snapshot lacks: its rules are unknown (the ENI may admit more
-- than the model shows), listed in `skipped` and said by each trace through the ENI.
function Builder:missing_group(eni_id, group_id, where)
  self:skip(where, eni_id, "names security group " .. group_id .. ", which the snapshot lacks")
  self:note(eni_id, string.format("%s names security group %s, which the snapshot lacks: its rules are not "
    .. "evaluated", eni_id, group_id))
end

function Builder:add_eni(id, res, where, kind)
  if not self:claim("eni", id, where) then return end
  local subnet = self.idx.subnet[str(res.SubnetId) or ""]
  if not subnet then
    self:skip(where, id, "network interface in unknown subnet " .. tostring(res.SubnetId))
    return
  end
  local sgs, sg_ids = {}, group_ids(res.Groups)
  for _, g in ipairs(sg_ids) do
    if self.idx.sg[g] then sgs[#sgs + 1] = self.idx.sg[g] else self:missing_group(id, g, where) end
  end
  local ip6s = {}
  for _, a in ipairs(list(res.Ipv6Addresses)) do
    local v6 = str(a.Ipv6Address) and creach.ip(a.Ipv6Address)
    -- kept in the one form core.reach.ipstr writes (RFC 5952), so texts compare
    if v6 then ip6s[#ip6s + 1] = creach.ipstr(v6) end
  end
  local ip = str(res.PrivateIpAddress) or ip6s[1] -- an ENI of an IPv6-only subnet has no IPv4 address
  if not ip then self:raise(where, id, "network interface without PrivateIpAddress") end
  local e, err = self.m:eni(self:comp(id, kind, where, str(res.Description)), self.idx.subnet[res.SubnetId], ip, sgs)
  if not e then self:raise(where, id, err .. " " .. ip) end
  local function more(addr)
    if addr ~= ip then
      local ok, aerr = self.m:eni_ip(e, addr)
      if not ok then self:raise(where, id, aerr .. " " .. addr) end
    end
  end
  for _, a in ipairs(list(res.PrivateIpAddresses)) do
    if str(a.PrivateIpAddress) then more(a.PrivateIpAddress) end
  end
  for _, a in ipairs(ip6s) do more(a) end
  local ip4 = str(res.PrivateIpAddress)
  self.idx.eni[id] = e
  self.eni_ids[e] = id
  self:choosable_eni(id, res, sg_ids)
  -- a Hyperplane ENI named directly is a Lambda source: its replies go to 1024-65535
  local ep = { eni = e, ip_n = ip4 and creach.ip(ip4), ip_s = ip4, ip6_n = ip6s[1] and creach.ip(ip6s[1]),
    ip6_s = ip6s[1], label = id, vpc = self.info.subnet[res.SubnetId].vpc,
    hyperplane = res.InterfaceType == "lambda" or nil }
  -- (rare: a ninth field in the constructor would double every ENI's table)
  if type(res.Association) == "table" and str(res.Association.PublicIp) then ep.public_ip = res.Association.PublicIp end
  self.endpoints[id] = ep
  return e
end

function Builder:interfaces(data)
  self:each(data, "NetworkInterfaces", function(n, where)
    self:add_eni(self:need_id(n, "NetworkInterfaceId", where), n, where, "network-interface")
  end)
  self:each(data, "Reservations", function(r, where)
    for _, inst in ipairs(list(r.Instances)) do
      local iid = str(inst.InstanceId)
      local primary
      for _, n in ipairs(list(inst.NetworkInterfaces)) do
        local nid = str(n.NetworkInterfaceId)
        if nid then
          if not self.idx.eni[nid] then self:add_eni(nid, n, where, "network-interface") end
          if self.idx.eni[nid] and (not primary or (type(n.Attachment) == "table" and n.Attachment.DeviceIndex == 0)) then
            primary = nid
          end
        end
      end
      if iid and primary then
        local p = self.endpoints[primary]
        self.endpoints[iid] = { eni = p.eni, ip_n = p.ip_n, ip_s = p.ip_s, ip6_n = p.ip6_n, ip6_s = p.ip6_s, label = iid,
          vpc = p.vpc }
      end
    end
  end)
end

function Builder:attachments(data)
  local atts = {}
  local function merge(id, where)
    local a = atts[id]
    if not a then
      a = { id = id, where = where }
      atts[id] = a
      atts[#atts + 1] = a
    end
    return a
  end
  self:each(data, "TransitGatewayAttachments", function(t, where)
    local a = merge(self:need_id(t, "TransitGatewayAttachmentId", where), where)
    a.tgw = a.tgw or str(t.TransitGatewayId)
    a.type = str(t.ResourceType) or a.type
    if a.type == "vpc" then a.vpc = a.vpc or str(t.ResourceId) end
    a.states = a.states or {}
    a.states[#a.states + 1] = t.State
    if type(t.Association) == "table" and str(t.Association.TransitGatewayRouteTableId)
        and (t.Association.State == nil or t.Association.State == "associated") then
      a.assoc = t.Association.TransitGatewayRouteTableId
    end
    a.res = a.res or t
    a.created = a.created or str(t.CreationTime)
  end)
  self:each(data, "TransitGatewayVpcAttachments", function(t, where)
    local a = merge(self:need_id(t, "TransitGatewayAttachmentId", where), where)
    a.tgw = a.tgw or str(t.TransitGatewayId)
    a.type, a.vpc = "vpc", str(t.VpcId)
    a.states = a.states or {}
    a.states[#a.states + 1] = t.State
    a.subnets = a.subnets or list(t.SubnetIds)
    local opts = list(t.Options)
    a.sgref = opts.SecurityGroupReferencingSupport ~= "disable"
    -- AWS's default is disable; it decides propagation only ("does not filter IPv6 traffic":
    -- API_CreateTransitGatewayVpcAttachmentRequestOptions.html)
    a.ipv6 = opts.Ipv6Support == "enable"
    a.appliance = opts.ApplianceModeSupport == "enable"
    a.res = a.res or t
  end)
  -- get-transit-gateway-route-table-associations per table, wrapped as
  -- {"TransitGatewayAssociations": [{"TransitGatewayRouteTableId": ..., "Associations": [...]}]}
  self:each(data, "TransitGatewayAssociations", function(w)
    for _, as in ipairs(list(w.Associations)) do
      local a = atts[str(as.TransitGatewayAttachmentId) or ""]
      if a and (as.State == nil or as.State == "associated") then a.assoc = str(w.TransitGatewayRouteTableId) end
    end
  end)
  for _, a in ipairs(atts) do
    self.at = a.where
    local tgw = self.idx.tgw[a.tgw or ""]
    if not tgw then
      self:skip(a.where, a.id, "attachment to unknown transit gateway " .. tostring(a.tgw))
    else
      local available = true
      for _, st in ipairs(a.states or {}) do
        local works, assumed = states.works("attachment", st)
        available = available and works
        if assumed then self:note(a.id, a.id .. ": " .. assumed) end
      end
      -- a TGW taken as forwarding in a state no AWS page explains: said by each trace through it
      local tinfo = self.info.tgw[a.tgw]
      if tinfo.assumed then self:note(a.id, tinfo.assumed) end
      local vpc = a.vpc and self.idx.vpc[a.vpc] or -1
      if a.type == "vpc" and vpc == -1 then
        self:skip(a.where, a.id, "attachment of a VPC outside the snapshot " .. tostring(a.vpc))
      end
      local assoc = -1
      if a.assoc then assoc = self.idx.trtb[a.assoc] or self:unknown_trtb(a.assoc, a.where) end
      local idx = self.m:tgw_attachment(self:comp(a.id, "tgw-attachment", a.where, tag_name(a.res)), tgw, vpc,
        available, a.sgref ~= false, assoc)
      self.idx.att[a.id] = idx
      self.info.att[a.id] = { vpc = a.vpc, type = a.type, idx = idx, created = a.created, ipv6 = a.ipv6 == true }
      if vpc ~= -1 then
        for _, s in ipairs(a.subnets or {}) do
          local sidx = self.idx.subnet[s]
          if not sidx then
            self:skip(a.where, a.id, "attachment subnet outside the snapshot " .. tostring(s))
          elseif self.info.subnet[s].vpc ~= a.vpc then
            self:raise(a.where, a.id, "attachment subnet " .. s .. " is not in " .. a.vpc)
          else
            self.m:attachment_subnet(idx, sidx)
          end
        end
      end
    end
  end
end

-- CIDRs already installed in one TGW route table, to find overlaps in a few lookups:
-- `exact[key(net, len)]` for each installed CIDR and `inside[key(prefix, l)]` for each of its
-- shorter prefixes (key = net * 64 + len for IPv4; for IPv6, whose network core.reach gives as 16
-- bytes, the prefix's bytes and its length: a string never equals an IPv4 key) whose length `l`
-- is one of `qlens`, the lengths that will be asked about (every shorter one made the load
-- superlinear: 20 entries per CIDR and table in tables too big for the caches); `lens` lists the
-- installed lengths.
local function cidr_key(net, len, v6)
  if not v6 then
    return (len == 0 and 0 or net & ((0xffffffff << (32 - len)) & 0xffffffff)) * 64 + len
  end
  local full, rest = len // 8, len % 8
  local tail = rest > 0 and string.char(net:byte(full + 1) & ((0xff << (8 - rest)) & 0xff)) or ""
  return net:sub(1, full) .. tail .. "/" .. len
end

-- `parsed`: CIDR text -> {net, len, v6}, shared by the sets of one load (each VPC's CIDR is asked
-- about once per TGW route table it propagates into).
local function new_cidr_set(qlens, parsed)
  return { exact = {}, inside = {}, lens = {}, qlens = qlens, parsed = parsed }
end

local function parse_cidr(set, cidr)
  local p = set.parsed[cidr]
  if not p then
    local net, len, family = creach.cidr(cidr)
    p = { net, len, family == "ipv6" }
    set.parsed[cidr] = p
  end
  return p[1], p[2], p[3]
end

-- The installed CIDR sharing an address with `cidr`, or nil.
local function overlapping(set, cidr)
  local net, len, v6 = parse_cidr(set, cidr)
  for l in pairs(set.lens) do
    if l <= len then
      local hit = set.exact[cidr_key(net, l, v6)]
      if hit then return hit end
    end
  end
  return set.inside[cidr_key(net, len, v6)] or set.exact[cidr_key(net, len, v6)]
end

local function install(set, cidr)
  local net, len, v6 = parse_cidr(set, cidr)
  set.exact[cidr_key(net, len, v6)] = cidr
  set.lens[len] = true
  for l in pairs(set.qlens) do
    if l < len then set.inside[cidr_key(net, l, v6)] = cidr end
  end
end

function Builder:tgw_routes(data)
  local propagated_tables = {}
  local qlens = {} -- the lengths of the CIDRs propagations install (the VPCs')
  local order -- the attachment ids in propagation order
  local rule_of = {} -- attachment id -> {CIDR -> the text of its propagated route}
  local parsed = {} -- CIDR text -> its numbers (see new_cidr_set)
  for _, v in pairs(self.info.vpc) do
    for _, c in ipairs(v.cidrs) do
      local _, len = creach.cidr(c)
      qlens[len] = true
    end
    for _, c in ipairs(v.cidrs6) do
      local _, len = creach.cidr(c)
      qlens[len] = true
    end
  end
  -- Propagations (Batfish's wrapper of get-transit-gateway-route-table-propagations):
  -- {"TransitGatewayPropagations": [{"TransitGatewayRouteTableId": ..., "TransitGatewayRouteTablePropagations": [...]}]}
  -- every record of a table first (a table's propagations may come in several), then each table once
  local tables = {} -- {tid, t, where} in the order the tables are first listed
  self:each(data, "TransitGatewayPropagations", function(w, where)
    local tid = str(w.TransitGatewayRouteTableId)
    local t = tid and self.idx.trtb[tid]
    if not t then
      self:skip(where, tostring(tid), "propagations of an unknown TGW route table")
      return
    end
    local is_enabled = propagated_tables[tid]
    if not is_enabled then
      is_enabled = {}
      propagated_tables[tid] = is_enabled
      tables[#tables + 1] = { tid, t, where }
    end
    for _, p in ipairs(list(w.TransitGatewayRouteTablePropagations)) do
      local aid = str(p.TransitGatewayAttachmentId) or ""
      if p.State == "enabled" and self.info.att[aid] then is_enabled[aid] = true end
    end
  end)
  for _, entry in ipairs(tables) do
    local tid, t, where = entry[1], entry[2], entry[3]
    local is_enabled = propagated_tables[tid]
    local any = next(is_enabled) ~= nil
    -- A VPC whose CIDR overlaps one already propagated into the table is not propagated
    -- (tgw-vpc-attachments.html): the earlier attachment keeps the route.
    if any and not order then
      -- every attachment ranked once by (creation time, id); each table takes its own in that order
      order = {}
      for aid in pairs(self.info.att) do order[#order + 1] = aid end
      table.sort(order, function(x, y)
        local cx, cy = self.info.att[x].created or "", self.info.att[y].created or ""
        if cx ~= cy then return cx < cy end
        return x < y
      end)
    end
    local installed = new_cidr_set(qlens, parsed)
    for _, aid in ipairs(any and order or NONE) do
      if is_enabled[aid] then
        -- one text per attachment and CIDR, whichever tables it propagates into
        local texts = rule_of[aid] or {}
        rule_of[aid] = texts
        local att = self.info.att[aid]
        local vinfo = att.type == "vpc" and self.info.vpc[att.vpc or ""]
        if vinfo then
          -- a VPC attachment with IPv6 support propagates the VPC's IPv6 CIDRs too (tgw-route-tables.html)
          local cidrs = vinfo.cidrs
          if att.ipv6 and #vinfo.cidrs6 > 0 then
            cidrs = table.move(vinfo.cidrs6, 1, #vinfo.cidrs6, #vinfo.cidrs + 1, table.move(vinfo.cidrs, 1, #vinfo.cidrs, 1, {}))
          end
          for _, c in ipairs(cidrs) do
            local clash = overlapping(installed, c)
            if clash then
              self:skip(where, aid, string.format("%s not propagated into %s: overlaps %s", c, tid, clash))
            else
              install(installed, c)
              texts[c] = texts[c] or self:rule(string.format("%s -> %s (propagated from %s)", c, aid, att.vpc))
              self.m:tgw_route(t, c, att.idx, RANK_PROPAGATED, false, texts[c])
            end
          end
        else
          self:skip(where, aid, "propagation from a non-VPC attachment or unknown VPC: its routes are unknown")
        end
      end
    end
  end
  -- Routes: Batfish's static-route wrapper, or search-transit-gateway-routes output wrapped with
  -- the table id the same way: {"TransitGatewayRoutes": [{"TransitGatewayRouteTableId": ..., "Routes": [...]}]}.
  local function add_routes(w, where)
    local tid = str(w.TransitGatewayRouteTableId)
    local t = tid and self.idx.trtb[tid]
    if not t then
      self:skip(where, tostring(tid), "routes of an unknown TGW route table")
      return
    end
    for _, r in ipairs(list(w.Routes)) do
      local propagated = r.Type == "propagated"
      -- propagated routes come from the propagations when those are known (they are the truth
      -- a runbook edits); the listed ones are used only for tables without propagation data
      if not (propagated and propagated_tables[tid]) then
        local dests = str(r.DestinationCidrBlock) and { self:cidr_ok(r.DestinationCidrBlock, where, tid) }
          or self.pls[str(r.PrefixListId) or ""] or {}
        local rank = propagated and RANK_PROPAGATED or (str(r.PrefixListId) and RANK_PREFIX_LIST or RANK_STATIC)
        local aid = type(r.TransitGatewayAttachments) == "table" and type(r.TransitGatewayAttachments[1]) == "table"
          and str(r.TransitGatewayAttachments[1].TransitGatewayAttachmentId)
        local att = aid and self.idx.att[aid]
        local blackhole = r.State == "blackhole" or not att
        if propagated and att and self.info.att[aid].type ~= "vpc" then rank = RANK_OTHER_PROPAGATED end
        for _, d in ipairs(dests) do
          self.m:tgw_route(t, d, att or -1, rank, blackhole, self:rule(string.format("%s -> %s (%s%s)", d,
            aid or "blackhole", propagated and "propagated" or "static", blackhole and ", blackhole" or "")))
        end
      end
    end
  end
  self:each(data, "TransitGatewayStaticRoutes", add_routes)
  self:each(data, "TransitGatewayRoutes", add_routes)
  -- the tables whose routes follow their propagations, each with the attachments propagating into it
  -- (a blocked path's fix propagates there)
  self.propagated_tables = propagated_tables
end

-- A Hyperplane ENI (Lambda) or an RDS ENI the snapshot does not list: placed at the first
-- usable address of the subnet (base + 4) and reported as an assumption.
-- With `dual` (a dual-stack function or database) and an IPv6 CIDR on the subnet, the ENI also
-- gets the IPv6 address base + 4 (AWS reserves the first four of an IPv6 subnet too). Returns the
-- ENI, its IPv4 address (nil in an IPv6-only subnet) and its IPv6 address (nil without).
local function base_plus_4(cidr)
  local net = creach.cidr(cidr)
  if type(net) == "string" then return creach.ipstr(net:sub(1, 15) .. string.char(net:byte(16) | 4)) end
  return creach.ipstr(net + 4)
end

function Builder:synthetic_eni(id, subnet_id, sgs, where, why, dual)
  local s = self.info.subnet[subnet_id]
  local ip = s.cidr and base_plus_4(s.cidr)
  local ip6 = (dual or not ip) and s.cidr6 and base_plus_4(s.cidr6) or nil
  local sg_idx = {}
  for _, g in ipairs(sgs) do
    if self.idx.sg[g] then sg_idx[#sg_idx + 1] = self.idx.sg[g] else self:missing_group(id, g, where) end
  end
  local e = self.m:eni(self:comp(id, "network-interface", where, why), self.idx.subnet[subnet_id], ip or ip6, sg_idx)
  if ip and ip6 then self.m:eni_ip(e, ip6) end
  self.assumed = self.assumed or {}
  self.assumed[#self.assumed + 1] = string.format("%s: no ENI in the snapshot, assumed at %s in %s", why,
    ip and ip6 and (ip .. " and " .. ip6) or ip or ip6, subnet_id)
  return e, ip, ip6
end

local function same_set(a, b)
  if #a ~= #b then return false end
  local s = {}
  for _, x in ipairs(a) do s[x] = true end
  for _, x in ipairs(b) do if not s[x] then return false end end
  return true
end

function Builder:functions(data)
  self:each(data, "Functions", function(f, where)
    local name = self:need_id(f, "FunctionName", where)
    local vc = type(f.VpcConfig) == "table" and f.VpcConfig or {}
    local subnets, sgs = list(vc.SubnetIds), list(vc.SecurityGroupIds)
    if #subnets == 0 then
      self:skip(where, name, "function without VPC configuration (not in any VPC)")
      return
    end
    -- Ipv6AllowedForDualStack: the function's Hyperplane ENIs send IPv6 too
    local dual = vc.Ipv6AllowedForDualStack == true
    local ep = { enis = {}, ips = {}, ips6 = dual and {} or nil, label = "lambda:" .. name, lambda = true,
      vpc = str(vc.VpcId) }
    for _, sid in ipairs(subnets) do
      if not self.idx.subnet[sid] then
        self:skip(where, name, "function subnet outside the snapshot " .. sid)
      else
        local found
        for _, e in ipairs(self.lambda_enis[sid] or NONE) do
          self.scanned = self.scanned + 1
          if same_set(e.sgs, sgs) then
            if not found or e.id < found then found = e.id end
          end
        end
        local idx, ip, ip6
        if found then
          local e = self.endpoints[found]
          idx, ip, ip6 = e.eni, e.ip_s, e.ip6_s
        else
          idx, ip, ip6 = self:synthetic_eni("lambda:" .. name .. "@" .. sid, sid, sgs, where,
            "Hyperplane ENI of lambda:" .. name, dual)
        end
        ep.enis[#ep.enis + 1], ep.ips[#ep.ips + 1] = idx, ip or false
        if dual then ep.ips6[#ep.ips6 + 1] = ip6 or false end
        ep.eni, ep.ip_n, ep.ip_s = ep.eni or idx, ep.ip_n or (ip and creach.ip(ip)), ep.ip_s or ip
        if dual then ep.ip6_n, ep.ip6_s = ep.ip6_n or (ip6 and creach.ip(ip6)), ep.ip6_s or ip6 end
      end
    end
    if #ep.enis > 0 then self.endpoints["lambda:" .. name] = ep end
  end)
end

-- The ENI a database is reached at. describe-network-interfaces does not tie an RDS ENI to its
-- instance; the endpoint resolves to the primary's ENI, in the instance's own AZ (a Multi-AZ
-- standby or a read replica sharing the groups is not the destination). So: the ENI holding the
-- address the endpoint resolved to when the snapshot records it (`ResolvedNames`); else the RDS
-- ENIs of the VPC carrying the instance's groups, in its AZ; several left are named in an
-- assumption. Returns the ENI id (or nil) and the assumptions.
function Builder:db_eni(id, d, vpc, sg_ids, address)
  local resolved = address and self.resolved and self.resolved[address:lower()]
  local candidates = {}
  for _, e in ipairs(self:db_candidates(vpc, resolved)) do
    self.scanned = self.scanned + 1
    if not e.sgs then -- at the resolved address
      if e.vpc == vpc then return e.id, {} end
    else
      local s = self.info.subnet[e.subnet]
      if s.vpc == vpc and same_set(e.sgs, sg_ids)
          and (not str(d.AvailabilityZone) or s.az_name == nil or s.az_name == d.AvailabilityZone) then
        candidates[#candidates + 1] = e.id
      end
    end
  end
  table.sort(candidates)
  if #candidates > 1 then
    return candidates[1], { string.format("rds:%s: %d network interfaces fit (%s): took %s; trace with a resolver "
      .. "(or record the endpoint's address in the snapshot) to pick the one its endpoint resolves to",
      id, #candidates, table.concat(candidates, ", "), candidates[1]) }
  end
  return candidates[1], {}
end

-- DNS answers the snapshot records: {"ResolvedNames": [{"Name": ..., "Addresses": ["10.1.128.10"]}]}.
function Builder:resolved_names(data)
  self.resolved = {}
  self:each(data, "ResolvedNames", function(r)
    local name, addrs = str(r.Name), list(r.Addresses)
    local first = str(addrs[1]) and creach.ip(addrs[1])
    if name and first then self.resolved[name:lower()] = creach.ipstr(first) end
  end)
end

function Builder:databases(data)
  self:each(data, "DBInstances", function(d, where)
    local id = self:need_id(d, "DBInstanceIdentifier", where)
    local sg_ids = {}
    for _, g in ipairs(list(d.VpcSecurityGroups)) do
      if str(g.VpcSecurityGroupId) then sg_ids[#sg_ids + 1] = g.VpcSecurityGroupId end
    end
    local group = type(d.DBSubnetGroup) == "table" and d.DBSubnetGroup or {}
    local vpc = str(group.VpcId)
    local endpoint = type(d.Endpoint) == "table" and d.Endpoint or {}
    local found, notes = self:db_eni(id, d, vpc, sg_ids, str(endpoint.Address))
    -- NetworkType DUAL: the endpoint answers AAAA with the ENI's IPv6 address too
    -- (USER_VPC.WorkingWithRDSInstanceinaVPC.html#USER_VPC.IP_addressing)
    local dual = d.NetworkType == "DUAL"
    local idx, ip, pub, ip6
    if found then
      local e = self.endpoints[found]
      idx, ip, pub, ip6 = e.eni, e.ip_s, e.public_ip, e.ip6_s
    else
      local sid
      for _, s in ipairs(list(group.Subnets)) do
        local sname = str(s.SubnetIdentifier)
        local az = type(s.SubnetAvailabilityZone) == "table" and s.SubnetAvailabilityZone.Name
        if sname and self.idx.subnet[sname] and (not sid or az == d.AvailabilityZone) then sid = sname end
      end
      if not sid then
        self:skip(where, id, "database without a subnet in the snapshot")
        return
      end
      idx, ip, ip6 = self:synthetic_eni("rds:" .. id, sid, sg_ids, where, "ENI of rds:" .. id, dual)
    end
    if not dual then ip6 = nil end
    local status = str(d.DBInstanceStatus)
    local serves, assumed = states.works("rds", status)
    if assumed then notes[#notes + 1] = "rds:" .. id .. ": " .. assumed end
    local rec = { eni = idx, ip_n = ip and creach.ip(ip), ip_s = ip, ip6_n = ip6 and creach.ip(ip6), ip6_s = ip6,
      network_type = str(d.NetworkType) or "IPV4", label = "rds:" .. id, rds = true, vpc = vpc,
      public = d.PubliclyAccessible == true, public_ip = pub, address = str(endpoint.Address),
      port = math.tointeger(endpoint.Port), available = serves, status = status,
      assumptions = #notes > 0 and notes or nil }
    self.endpoints["rds:" .. id] = rec
    if rec.address then self.rds_names[rec.address:lower()] = rec end
  end)
end

local KNOWN_KEYS = {
  Vpcs = true, Subnets = true, RouteTables = true, SecurityGroups = true, NetworkAcls = true,
  NetworkInterfaces = true, Reservations = true, TransitGateways = true, TransitGatewayAttachments = true,
  TransitGatewayVpcAttachments = true, TransitGatewayRouteTables = true, TransitGatewayStaticRoutes = true,
  TransitGatewayRoutes = true, TransitGatewayPropagations = true, TransitGatewayAssociations = true,
  DBInstances = true, Functions = true, VpcAttributes = true, ManagedPrefixLists = true, PrefixLists = true,
  AvailabilityZones = true, VpcPeeringConnections = true, ResolvedNames = true, NotCollected = true,
}

function Builder:unknown_keys(data)
  self.known_items = 0
  for account, regions in pairs(data.accounts) do
    if type(regions) ~= "table" then
      self:raise({ account = account, region = "?", key = "?" }, account, "account entry must be a table of regions")
    end
    for region, res in pairs(regions) do
      if type(res) ~= "table" then
        self:raise({ account = account, region = region, key = "?" }, region, "region entry must be a table")
      end
      for key, v in pairs(res) do
        if KNOWN_KEYS[key] then
          self.known_items = self.known_items + (type(v) == "table" and #v or 0)
        else
          local n = type(v) == "table" and #v or 0
          if n > 0 or type(v) ~= "table" then
            self:skip({ account = account, region = region, key = key }, key,
              string.format("not modelled (%d item%s)", n, n == 1 and "" or "s"))
          end
        end
      end
    end
  end
end

-- What a trace depends on in each account and region that has subnets.
local DEPENDS = { "SecurityGroups", "RouteTables", "NetworkAcls" }

-- One mechanism for what is missing: a file a trace depends on that is absent, or a part the
-- collector could not read (`NotCollected`: [{"Key": ..., "Reason": ...}], written by every
-- producer of snapshots), goes to `skipped` and to `missing`, which each trace through that
-- account states.
function Builder:missing_data(data)
  local told = {}
  self:each(data, "NotCollected", function(n, where)
    local key = str(n.Key) or "?"
    local text = string.format("%s in account %s, %s: not collected (%s)", key, where.account, where.region,
      str(n.Reason) or "no reason given")
    self:skip(where, key, "not collected: " .. (str(n.Reason) or "no reason given"))
    self.missing[#self.missing + 1] = { account = where.account, region = where.region, key = key, text = text }
    told[where.account .. "/" .. where.region .. "/" .. key] = true
  end)
  for _, account in ipairs(sorted_keys(data.accounts)) do
    for _, region in ipairs(sorted_keys(data.accounts[account])) do
      local res = data.accounts[account][region]
      if type(res.Subnets) == "table" and res.Subnets[1] ~= nil then
        for _, key in ipairs(DEPENDS) do
          if res[key] == nil and not told[account .. "/" .. region .. "/" .. key] then
            local where = { account = account, region = region, key = key }
            self:skip(where, key, "missing from the snapshot")
            self.missing[#self.missing + 1] = { account = account, region = region, key = key,
              text = string.format("%s of account %s, %s missing from the snapshot", key, account, region) }
          end
        end
      end
    end
  end
end

-- security-group referencing across a TGW is not supported for attachments in use1-az3
function Builder:no_sgref_az()
  if self.az_codes["use1-az3"] then self.m:no_sgref_az(self.az_codes["use1-az3"]) end
end

-- In order: each pass reads what the ones before it indexed.
local PASSES = { Builder.unknown_keys, Builder.missing_data, Builder.zones, Builder.prefix_lists,
  Builder.transit_gateways, Builder.tgw_route_tables, Builder.vpcs, Builder.peerings, Builder.route_tables,
  Builder.network_acls, Builder.security_groups, Builder.subnets, Builder.no_sgref_az, Builder.interfaces,
  Builder.attachments, Builder.tgw_routes, Builder.functions, Builder.resolved_names, Builder.databases }

--- Compiles `data` (the table form); returns the builder state, or nil, err.
-- @tparam table data {accounts = {[id] = {[region] = {Key = array}}}}
-- @tparam[opt] table origins origins[account][region][Key] = file path, for messages
-- @treturn table the builder state (the C model, names, endpoints, skipped, counts), or nil, err
-- ("invalid_snapshot" with file and resource)
function build.compile(data, origins)
  local b = new_builder(origins)
  local ok, err = pcall(function()
    if type(data.accounts) ~= "table" then
      b:raise({ account = "?", region = "?", key = "accounts" }, "accounts", "table form needs an `accounts` table")
    end
    for _, pass in ipairs(PASSES) do
      pass(b, data)
      b.seen = nil -- (each kind's ids are claimed in one pass)
    end
    b.m:finish()
  end)
  if not ok then
    b.m:close()
    if type(err) == "table" and err[1] == STOP then return nil, err[2] end
    -- a file of a lazily read snapshot that does not decode or check (awsnet.reach.snapshot)
    if errors.is(err) then return nil, err end
    -- a shape no check above foresaw (a number where an object belongs...): still the
    -- snapshot's fault, named by the file being read
    local where = b.at or { account = "?", region = "?", key = "?" }
    return nil, b:fail(where, where.key, "unexpected content: " .. tostring(err):gsub("^.-:%d+: ", ""))
  end
  -- what only the build needed (and what would keep the input alive)
  for _, k in ipairs({ "rtb_res", "subnet_rtb", "subnet_acl", "default_acl", "pls", "az_ids", "at", "lambda_enis",
    "rds_enis", "ip_enis" }) do b[k] = nil end
  for _, t in pairs(b.info.tgw) do t.res = nil end
  if b.known_items == 0 then
    b.m:close()
    return errors.fail("invalid_snapshot", "empty snapshot: no resource of a known kind", { file = "" })
  end
  return b
end

return build
