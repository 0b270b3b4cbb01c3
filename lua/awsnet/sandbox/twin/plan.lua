--- What the network twin realises for a sandbox snapshot: namespaces, veth links, `ip` lines and
-- one nftables rule set per namespace (pure: no I/O; awsnet.sandbox.twin.apply carries it out).
--
-- The shape, read from the describe-* data the sandbox answers with (awsnet.sandbox.snapshot),
-- never from awsnet.reach, so that the kernel checks the evaluator instead of repeating it:
--   * one namespace per VPC: its router. Each subnet's route table is a kernel table per
--     (route table, AZ); a packet is looked up in the table of the subnet of the link it came in
--     on. The local route is a `throw`, which hands the lookup on to the router's main table of
--     the VPC's ENIs (/32 each, the rest to a sink); a route to a TGW leaves by the TGW's link in
--     the subnet's AZ (none there: the sink, the TGW has no ENI in that AZ); a blackhole or an
--     unsupported target goes to the sink. No route: the sink. A sink is a link whose packets
--     the forward hook drops, counted per route table. Network ACLs are chains of the
--     router's forward hook, first match by rule number, evaluated where traffic leaves and
--     enters a subnet (tgw-nacls.html for the TGW's subnets).
--   * one namespace per ENI (not the TGW's): its private address and a default route to the
--     router, whose forward hook applies the ENI's security groups on its link, stateful
--     (conntrack).
--   * one namespace per TGW: a link per attachment subnet; a packet is looked up in the table of
--     the attachment's associated route table, in the AZ it came from, and leaves by the
--     destination attachment's link in that AZ, else by its first subnet's (the evaluator's
--     deterministic reading of AZ affinity); no association: a blackhole rule.
-- Links are veth pairs without ARP whose ends share one MAC address, so a frame sent on one end
-- is the other end's own: no addresses on links, no neighbour traffic. Every drop is silent
-- (sinks and blackhole rules, nftables `drop`, no ICMP errors from routers).
-- @module awsnet.sandbox.twin.plan
local filters = require "awsnet.sandbox.twin.filters"

local plan = {}

local function list(v) return type(v) == "table" and v or {} end

local function ipv4(s)
  local a, b, c, d = tostring(s):match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  return ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d)
end

local function ip_string(n)
  return string.format("%d.%d.%d.%d", n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255)
end

--- The VPC resolver's address: the primary CIDR's base + 2 (AmazonDNS-concepts.html).
-- @tparam string cidr the VPC's primary CIDR
-- @treturn string the address
function plan.resolver_address(cidr)
  local base = ipv4(cidr:match("^([^/]+)"))
  return ip_string(base + 2)
end

-- Every region's data of every account, flattened into one view by resource id.
local function index(snapshot)
  local w = { vpcs = {}, subnets = {}, rtbs = {}, acls = {}, sgs = {}, enis = {}, tgws = {}, atts = {},
              assoc = {}, trtb_routes = {}, dns = {}, order = { vpcs = {}, enis = {}, tgws = {}, atts = {} } }
  local accounts = {}
  for id in pairs(list(snapshot.accounts)) do accounts[#accounts + 1] = id end
  table.sort(accounts)
  for _, account in ipairs(accounts) do
    local regions = {}
    for r in pairs(snapshot.accounts[account]) do regions[#regions + 1] = r end
    table.sort(regions)
    for _, region in ipairs(regions) do
      local d = snapshot.accounts[account][region]
      for _, v in ipairs(list(d.Vpcs)) do
        local cidrs = {}
        for _, a in ipairs(list(v.CidrBlockAssociationSet)) do
          local st = type(a.CidrBlockState) == "table" and a.CidrBlockState.State or "associated"
          if st == "associated" then cidrs[#cidrs + 1] = a.CidrBlock end
        end
        if #cidrs == 0 then cidrs[1] = v.CidrBlock end
        w.vpcs[v.VpcId] = { id = v.VpcId, cidr = v.CidrBlock, cidrs = cidrs, dns = true }
        w.order.vpcs[#w.order.vpcs + 1] = v.VpcId
      end
      for _, a in ipairs(list(d.VpcAttributes)) do
        local flag = type(a.EnableDnsSupport) == "table" and a.EnableDnsSupport.Value
        w.dns[a.VpcId] = flag ~= false
      end
      for _, s in ipairs(list(d.Subnets)) do
        w.subnets[s.SubnetId] = { id = s.SubnetId, vpc = s.VpcId, cidr = s.CidrBlock,
                                  az = s.AvailabilityZoneId or s.AvailabilityZone }
      end
      for _, rt in ipairs(list(d.RouteTables)) do w.rtbs[rt.RouteTableId] = rt end
      for _, acl in ipairs(list(d.NetworkAcls)) do w.acls[acl.NetworkAclId] = acl end
      for _, sg in ipairs(list(d.SecurityGroups)) do w.sgs[sg.GroupId] = sg end
      for _, e in ipairs(list(d.NetworkInterfaces)) do
        if e.InterfaceType ~= "transit_gateway" and e.PrivateIpAddress and e.SubnetId then
          local groups = {}
          for _, g in ipairs(list(e.Groups)) do groups[#groups + 1] = g.GroupId end
          w.enis[e.NetworkInterfaceId] = { id = e.NetworkInterfaceId, subnet = e.SubnetId, vpc = e.VpcId,
            ip = e.PrivateIpAddress, groups = groups, lambda = e.InterfaceType == "lambda" }
          w.order.enis[#w.order.enis + 1] = e.NetworkInterfaceId
        end
      end
      for _, t in ipairs(list(d.TransitGateways)) do
        local o = list(t.Options)
        w.tgws[t.TransitGatewayId] = { id = t.TransitGatewayId, available = t.State == "available",
                                       sgref = o.SecurityGroupReferencingSupport == "enable" }
        w.order.tgws[#w.order.tgws + 1] = t.TransitGatewayId
      end
      for _, a in ipairs(list(d.TransitGatewayVpcAttachments)) do
        if not w.atts[a.TransitGatewayAttachmentId] then
          local o = list(a.Options)
          w.atts[a.TransitGatewayAttachmentId] = { id = a.TransitGatewayAttachmentId, tgw = a.TransitGatewayId,
            vpc = a.VpcId, subnets = list(a.SubnetIds), available = a.State == "available",
            sgref = o.SecurityGroupReferencingSupport ~= "disable" }
          w.order.atts[#w.order.atts + 1] = a.TransitGatewayAttachmentId
        end
      end
      for _, a in ipairs(list(d.TransitGatewayAttachments)) do
        local assoc = type(a.Association) == "table" and a.Association
        if assoc and assoc.State == "associated" then w.assoc[a.TransitGatewayAttachmentId] = assoc.TransitGatewayRouteTableId end
      end
      for _, tr in ipairs(list(d.TransitGatewayRoutes)) do w.trtb_routes[tr.TransitGatewayRouteTableId] = list(tr.Routes) end
    end
  end
  for id, v in pairs(w.vpcs) do if w.dns[id] == false then v.dns = false end end
  return w
end

-- Each subnet's route table (explicit association, else the VPC's main table) and NACL.
local function subnet_tables(w)
  local main = {}
  for _, rt in pairs(w.rtbs) do
    for _, a in ipairs(list(rt.Associations)) do
      if a.Main then main[rt.VpcId] = rt.RouteTableId end
    end
  end
  for _, rt in pairs(w.rtbs) do
    for _, a in ipairs(list(rt.Associations)) do
      if a.SubnetId and w.subnets[a.SubnetId] then w.subnets[a.SubnetId].rtb = rt.RouteTableId end
    end
  end
  for _, s in pairs(w.subnets) do s.rtb = s.rtb or main[s.vpc] end
  for _, acl in pairs(w.acls) do
    for _, a in ipairs(list(acl.Associations)) do
      if a.SubnetId and w.subnets[a.SubnetId] then w.subnets[a.SubnetId].acl = acl.NetworkAclId end
    end
  end
end

-- The VPC's attachment to `tgw_id` (the first the data lists), or nil.
local function attachment_of(w, vpc_id, tgw_id)
  for _, id in ipairs(w.order.atts) do
    local a = w.atts[id]
    if a.vpc == vpc_id and a.tgw == tgw_id then return a end
  end
end

-- The attachment's subnet in `az`, or nil.
local function att_subnet_in(w, att, az)
  for _, sid in ipairs(att.subnets) do
    if w.subnets[sid] and w.subnets[sid].az == az then return sid end
  end
end

--- The plan for a snapshot. `names` allocates short, stable names (awsnet.sandbox.twin keeps one
-- per sandbox): names:ns(kind, id), names:link(kind, id), names:table(key), names.prefix.
-- @tparam table snapshot the sandbox's snapshot (accounts -> regions -> describe-* keys)
-- @tparam table names the name allocator
-- @treturn table {namespaces = {[ns] = {kind = "eni"|"router"|"tgw", lines = {{key, add, del,
--   order}}, nft = text or nil}}, links = {[key] = {a_ns, b_ns, name, mac}}, enis = {[eni id] =
--   {ns, ip, vpc, subnet, link}}, vpcs = {[vpc id] = {ns, resolver, dns, cidrs}}}
function plan.build(snapshot, names)
  local w = index(snapshot)
  subnet_tables(w)
  local out = { namespaces = {}, links = {}, enis = {}, vpcs = {} }
  local function ns(name, kind)
    local n = out.namespaces[name]
    if not n then
      n = { lines = {}, nft = nil }
      out.namespaces[name] = n
    end
    n.kind = kind or n.kind
    return n
  end
  local function line(n, order, key, add, del)
    n.lines[#n.lines + 1] = { key = key, add = add, del = del, order = order }
  end
  -- a route of kernel table `tno` (`dest` "default" or a CIDR; `spec` what follows it in `ip route`)
  local function route_line(n, tno, dest, spec)
    line(n, 3, "route " .. tno .. " " .. dest, string.format("route replace table %d %s", tno, spec),
      string.format("route del table %d %s", tno, dest))
  end
  -- A route table as kernel table `tno`: a line per route (spec_of(route, dest) gives its `ip route`
  -- spec, nil to leave it out), and a default to the sink `bh` when the table has none, so a packet
  -- without a route is dropped and counted.
  local function table_lines(n, tno, routes, bh, spec_of)
    local has_default = false
    for _, r in ipairs(routes) do
      local dest = r.DestinationCidrBlock
      local spec = dest and spec_of(r, dest)
      if spec then
        if dest == "0.0.0.0/0" then has_default = true end
        route_line(n, tno, dest, spec)
      end
    end
    if not has_default then route_line(n, tno, "default", "default dev " .. bh) end
  end
  local function link(a_ns, b_ns, name)
    out.links[a_ns .. "/" .. name] = { a_ns = a_ns, b_ns = b_ns, name = name, mac = names:mac(name) }
    line(ns(a_ns), 1, "link " .. name, "link set " .. name .. " arp off up", nil)
    line(ns(b_ns), 1, "link " .. name, "link set " .. name .. " arp off up", nil)
  end

  -- A router's sinks: links whose packets the forward hook drops, counted by the route table that
  -- sent them there (a blackhole route in the kernel counts nothing). A veth pair inside the
  -- namespace (Debian's kernels may lack the dummy module).
  local function sinks(nsname)
    local n = ns(nsname)
    local bh, nd = names:link("b", nsname), names:link("n", nsname)
    for _, d in ipairs({ bh, nd }) do
      line(n, 0, "sink " .. d, "link add " .. d .. " type veth peer name " .. d .. "p", nil)
      line(n, 1, "sink up " .. d, "link set " .. d .. " arp off up", nil)
      line(n, 1, "sink up " .. d .. "p", "link set " .. d .. "p arp off up", nil)
    end
    n.sink, n.nodest = bh, nd
    return bh, nd
  end

  -- TGWs that carry traffic, and their attachments' links (one per attachment subnet).
  local att_links = {}   -- [subnet id .. "|" .. att id] = link name
  for _, tid in ipairs(w.order.tgws) do
    local t = w.tgws[tid]
    if t.available then ns(names:ns("t", tid), "tgw") end
  end
  for _, aid in ipairs(w.order.atts) do
    local a = w.atts[aid]
    local t = w.tgws[a.tgw]
    if a.available and t and t.available and w.vpcs[a.vpc] then
      for _, sid in ipairs(a.subnets) do
        if w.subnets[sid] then
          local name = names:link("a", aid .. "|" .. sid)
          att_links[sid .. "|" .. aid] = name
          link(names:ns("v", a.vpc), names:ns("t", a.tgw), name)
        end
      end
    end
  end

  -- Each VPC's router: ENI links, subnet tables, the main table of ENIs, the resolver.
  local vpc_ifaces = {}  -- [vpc] = {{name, subnet, tgw = bool}}
  for _, vid in ipairs(w.order.vpcs) do
    local v = w.vpcs[vid]
    local rns = names:ns("v", vid)
    local n = ns(rns, "router")
    vpc_ifaces[vid] = {}
    local resolver = plan.resolver_address(v.cidr)
    out.vpcs[vid] = { ns = rns, resolver = resolver, dns = v.dns, cidrs = v.cidrs }
    line(n, 2, "addr " .. resolver, "address replace " .. resolver .. "/32 dev lo", "address del " .. resolver .. "/32 dev lo")
    local _, nd = sinks(rns)
    line(n, 3, "route main default", "route replace default dev " .. nd, nil)
  end
  for _, eid in ipairs(w.order.enis) do
    local e = w.enis[eid]
    local s = w.subnets[e.subnet]
    if s and w.vpcs[s.vpc] then
      local ens, rns = names:ns("e", eid), names:ns("v", s.vpc)
      local name = names:link("e", eid)
      local n = ns(ens, "eni")
      link(ens, rns, name)
      line(n, 2, "addr", "address replace " .. e.ip .. "/32 dev " .. name, nil)
      line(n, 3, "route default", "route replace default dev " .. name .. " src " .. e.ip, nil)
      line(ns(rns), 3, "route main " .. e.ip, "route replace " .. e.ip .. "/32 dev " .. name,
        "route del " .. e.ip .. "/32 dev " .. name)
      table.insert(vpc_ifaces[s.vpc], { name = name, subnet = s.id, eni = eid })
      out.enis[eid] = { ns = ens, ip = e.ip, vpc = s.vpc, subnet = s.id, link = name }
    end
  end
  for key, name in pairs(att_links) do
    local sid = key:match("^([^|]+)")
    local s = w.subnets[sid]
    table.insert(vpc_ifaces[s.vpc], { name = name, subnet = sid, tgw = true })
  end

  -- Route tables as kernel tables, one per (route table, AZ); each link looks up its subnet's.
  for vid, ifaces in pairs(vpc_ifaces) do
    local rns = names:ns("v", vid)
    local n = ns(rns)
    local bh = n.sink
    table.sort(ifaces, function(a, b) return a.name < b.name end)
    local made = {}
    for _, i in ipairs(ifaces) do
      local s = w.subnets[i.subnet]
      local rt = s.rtb and w.rtbs[s.rtb]
      local key = (s.rtb or "none") .. "@" .. tostring(s.az)
      local tno = names:table(rns .. "/" .. key)
      line(n, 4, "rule " .. i.name, string.format("rule add pref 100 iif %s lookup %d", i.name, tno),
        string.format("rule del pref 100 iif %s lookup %d", i.name, tno))
      if not made[key] then
        made[key] = true
        table_lines(n, tno, rt and list(rt.Routes) or {}, bh, function(r, dest)
          if r.State == "blackhole" then return dest .. " dev " .. bh end
          if r.GatewayId == "local" then return "throw " .. dest end
          if r.TransitGatewayId then
            local att = attachment_of(w, vid, r.TransitGatewayId)
            local sid = att and att_subnet_in(w, att, s.az)
            local via = sid and att_links[sid .. "|" .. att.id]
            return dest .. " dev " .. (via or bh)
          end
          return dest .. " dev " .. bh -- targets the twin does not realise (IGW, NAT, peering, ...)
        end)
      end
    end
    local enis = {}
    for _, i in ipairs(ifaces) do
      if i.eni then
        local src = w.enis[i.eni]
        enis[#enis + 1] = { link = i.name, eni = src, members = filters.group_members(w, src,
          function(peer_vpc) return plan.refs_survive(w, src.vpc, peer_vpc) end) }
      end
    end
    n.nft = filters.router(names.prefix, ifaces, w.subnets, w.acls, { sink = bh, nodest = n.nodest, vpc = vid,
      resolver = out.vpcs[vid].resolver }, enis,
      w.sgs)
  end

  -- Each TGW: its route tables per AZ, and which one each attachment link looks up.
  for _, tid in ipairs(w.order.tgws) do
    local t = w.tgws[tid]
    if t.available then
      local tns = names:ns("t", tid)
      local n = ns(tns)
      local bh = sinks(tns)
      line(n, 3, "route main default", "route replace default dev " .. bh, nil)
      local made = {}
      local counted, unrouted, by_rt = {}, {}, {}
      for _, aid in ipairs(w.order.atts) do
        local a = w.atts[aid]
        for _, sid in ipairs(a.tgw == tid and a.subnets or {}) do
          local name = att_links[sid .. "|" .. aid]
          if name then
            local az = w.subnets[sid].az
            local rtb = w.assoc[aid]
            local group_key = rtb or aid
            if not by_rt[group_key] then
              by_rt[group_key] = { id = group_key, links = {} }
              table.insert(rtb and counted or unrouted, by_rt[group_key])
            end
            table.insert(by_rt[group_key].links, name)
            if not rtb then
              line(n, 4, "rule " .. name, "rule add pref 100 iif " .. name .. " blackhole",
                "rule del pref 100 iif " .. name .. " blackhole")
            else
              local key = rtb .. "@" .. tostring(az)
              local tno = names:table(tns .. "/" .. key)
              line(n, 4, "rule " .. name, string.format("rule add pref 100 iif %s lookup %d", name, tno),
                string.format("rule del pref 100 iif %s lookup %d", name, tno))
              if not made[key] then
                made[key] = true
                table_lines(n, tno, w.trtb_routes[rtb] or {}, bh, function(r, dest)
                  if r.State == "deleted" then return nil end
                  local target = list(r.TransitGatewayAttachments)[1]
                  local out_att = r.State == "active" and target and w.atts[target.TransitGatewayAttachmentId]
                  if out_att and out_att.available and out_att.tgw == tid then
                    local osid = att_subnet_in(w, out_att, az) or out_att.subnets[1]
                    local via = osid and att_links[osid .. "|" .. out_att.id]
                    if via then return dest .. " dev " .. via end
                  end
                  return dest .. " dev " .. bh
                end)
              end
            end
          end
        end
      end
      n.nft = filters.transit(names.prefix, counted, unrouted, bh)
    end
  end
  return out
end

--- Whether security-group identity survives between two VPCs (inbound rules only): the same VPC
-- always; across a TGW when referencing is enabled on the TGW and both attachments, and neither
-- attachment is in use1-az3 (tgw-vpc-attachments.html).
-- @tparam table w the indexed world
-- @tparam string vpc_a the ENI's VPC
-- @tparam string vpc_b the peer's VPC
-- @treturn boolean
function plan.refs_survive(w, vpc_a, vpc_b)
  if vpc_a == vpc_b then return true end
  for _, tid in ipairs(w.order.tgws) do
    local t = w.tgws[tid]
    local a, b = attachment_of(w, vpc_a, tid), attachment_of(w, vpc_b, tid)
    if a and b then
      if not (t.sgref and a.sgref and b.sgref) then return false end
      for _, att in ipairs({ a, b }) do
        for _, sid in ipairs(att.subnets) do
          if w.subnets[sid] and w.subnets[sid].az == "use1-az3" then return false end
        end
      end
      return true
    end
  end
  return false
end

return plan
