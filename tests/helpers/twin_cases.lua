--- The differential test of the evaluator against the kernel: a seeded generator of topologies
-- (2-6 VPCs over 1-3 accounts, one TGW with one or two route tables, random subnets in two AZs,
-- secondary CIDRs, route tables, security groups, network ACLs) and of one fault, built in an in-process sandbox
-- with its network twin through the sandbox's API; flows between chosen ENIs are probed inside
-- the twin (TCP, UDP, ICMP; 300 ms) and traced with awsnet.reach on the sandbox's snapshot.
--
--   local cases = require "helpers.twin_cases"
--   local out = cases.run(seed, {sandbox = sb})  -- {flows, disagreements, fault, seconds}
--   cases.save_reproducer(dir, seed, out)        -- the snapshot, the flows, both answers
local direct = require "helpers.sandbox_direct"
local cjson = require "cjson"
local process = require "awsnet.svc.process"

local cases = {}

cases.ACCOUNTS = { "111111111111", "222222222222", "333333333333" }
cases.REGION = "ap-northeast-1"
local SERVICES = { { "tcp", 22 }, { "tcp", 80 }, { "tcp", 443 }, { "udp", 53 }, { "icmp" } }

-- A small seeded generator (xorshift32), independent of math.random's state.
local function rng(seed)
  local x = (seed * 2654435761 + 12345) % 4294967296
  if x == 0 then x = 1 end
  local r = {}
  function r.next()
    x = x ~ (x << 13) & 0xffffffff
    x = x ~ (x >> 17)
    x = x ~ (x << 5) & 0xffffffff
    return x
  end
  function r.int(lo, hi) return lo + r.next() % (hi - lo + 1) end
  function r.chance(p) return (r.next() % 10000) / 10000 < p end
  function r.pick(t) return t[r.int(1, #t)] end
  return r
end

local function must(res, err, what)
  if not res then error(what .. ": " .. tostring(err and (err.code .. " " .. tostring(err.message)) or "failed"), 2) end
  return res
end

-- A random SG or NACL port rule: {proto, from, to}.
local function random_service(r)
  local s = r.pick(SERVICES)
  if s[1] == "icmp" then return { "icmp", -1, -1 } end
  if r.chance(0.2) then return { s[1], 0, 65535 } end
  return { s[1], s[2], s[2] }
end

--- Builds the topology of `seed` in `sb` (a sandbox started with cases.ACCOUNTS, transition 0,
-- a twin) and returns what the flows need: {vpcs, enis, fault_steps}.
-- @param sb the sandbox
-- @tparam integer seed the case
-- @treturn table the topology
function cases.build(sb, seed)
  local r = rng(seed)
  local n_acct = r.int(1, 3)
  local api = {}
  for i = 1, n_acct do api[i] = direct(sb, cases.ACCOUNTS[i], cases.REGION) end
  local A = api[1]
  local topo = { vpcs = {}, enis = {}, sgs = {}, acls = {}, trtbs = {}, atts = {}, rtbs = {}, accounts = n_acct }
  local tgw = must(A("ec2", "CreateTransitGateway", { Options = { AutoAcceptSharedAttachments = "enable",
    DefaultRouteTableAssociation = "disable", DefaultRouteTablePropagation = "disable" } }), nil, "tgw").TransitGateway
  topo.tgw = tgw.TransitGatewayId
  for i = 1, r.int(1, 2) do
    topo.trtbs[i] = must(A("ec2", "CreateTransitGatewayRouteTable", { TransitGatewayId = topo.tgw }))
      .TransitGatewayRouteTable.TransitGatewayRouteTableId
  end
  if n_acct > 1 then
    local others = {}
    for i = 2, n_acct do others[#others + 1] = cases.ACCOUNTS[i] end
    local share = must(A("ram", "CreateResourceShare", { name = "twin-" .. seed, resourceArns = { tgw.TransitGatewayArn },
      principals = others, allowExternalPrincipals = true }), nil, "share").resourceShare.resourceShareArn
    for i = 2, n_acct do
      local inv = must(api[i]("ram", "GetResourceShareInvitations", { resourceShareArns = { share } }), nil, "invitations")
      for _, v in ipairs(inv.resourceShareInvitations or {}) do
        must(api[i]("ram", "AcceptResourceShareInvitation", { resourceShareInvitationArn = v.resourceShareInvitationArn }))
      end
    end
  end
  local n_vpc = r.int(2, 6)
  for i = 1, n_vpc do
    local owner = i <= n_acct and i or r.int(1, n_acct)
    local E = api[owner]
    local cidr = string.format("10.%d.0.0/16", i)
    local v = { id = must(E("ec2", "CreateVpc", { CidrBlock = cidr }), nil, "vpc").Vpc.VpcId, cidr = cidr, api = E,
                subnets = {}, index = i }
    topo.vpcs[i] = v
    local zones = must(E("ec2", "DescribeAvailabilityZones", {})).AvailabilityZones
    -- a secondary CIDR sometimes, with a subnet of its own
    if r.chance(0.3) then
      v.secondary = string.format("10.%d.0.0/16", 100 + i)
      must(E("ec2", "AssociateVpcCidrBlock", { VpcId = v.id, CidrBlock = v.secondary }), nil, "secondary CIDR")
    end
    for j = 1, r.int(1, 3) do
      local az = zones[r.int(1, 2)].ZoneId
      local block = (v.secondary and j == 1) and string.format("10.%d.1.0/24", 100 + i) or
        string.format("10.%d.%d.0/24", i, j)
      local s = must(E("ec2", "CreateSubnet", { VpcId = v.id, CidrBlock = block, AvailabilityZoneId = az }), nil,
        "subnet").Subnet
      v.subnets[j] = { id = s.SubnetId, az = az }
    end
    local rts = must(E("ec2", "DescribeRouteTables", { Filters = { { Name = "vpc-id", Values = { v.id } } } })).RouteTables
    v.rtbs = { rts[1].RouteTableId }
    if #v.subnets > 1 and r.chance(0.5) then
      local rt = must(E("ec2", "CreateRouteTable", { VpcId = v.id })).RouteTable.RouteTableId
      v.rtbs[2] = rt
      must(E("ec2", "AssociateRouteTable", { RouteTableId = rt, SubnetId = v.subnets[r.int(1, #v.subnets)].id }))
    end
    -- security groups: the default one and maybe another, with random inbound rules
    local groups = must(E("ec2", "DescribeSecurityGroups", { Filters = { { Name = "vpc-id", Values = { v.id } } } }))
      .SecurityGroups
    v.sgs = { groups[1].GroupId }
    if r.chance(0.6) then
      v.sgs[2] = must(E("ec2", "CreateSecurityGroup", { GroupName = "g" .. i, Description = "twin", VpcId = v.id })).GroupId
    end
    for _, g in ipairs(v.sgs) do
      -- often an open group, so that routes, ACLs and faults decide as often as the groups do
      if r.chance(0.45) then
        E("ec2", "AuthorizeSecurityGroupIngress", { GroupId = g, IpPermissions = { { IpProtocol = "-1",
          IpRanges = { { CidrIp = "10.0.0.0/8" } } } } })
      end
      for _ = 1, r.int(0, 3) do
        local svc = random_service(r)
        local perm = { IpProtocol = svc[1], FromPort = svc[2], ToPort = svc[3] }
        if r.chance(0.2) then
          perm.UserIdGroupPairs = { { GroupId = r.pick(v.sgs) } }
        else
          perm.IpRanges = { { CidrIp = r.chance(0.5) and "10.0.0.0/8" or string.format("10.%d.0.0/16", r.int(1, n_vpc)) } }
        end
        E("ec2", "AuthorizeSecurityGroupIngress", { GroupId = g, IpPermissions = { perm } })
      end
      if r.chance(0.15) then
        E("ec2", "RevokeSecurityGroupEgress", { GroupId = g, IpPermissions = { { IpProtocol = "-1",
          IpRanges = { { CidrIp = "0.0.0.0/0" } } } } })
        local svc = random_service(r)
        E("ec2", "AuthorizeSecurityGroupEgress", { GroupId = g, IpPermissions = { { IpProtocol = svc[1],
          FromPort = svc[2], ToPort = svc[3], IpRanges = { { CidrIp = "10.0.0.0/8" } } } } })
      end
      topo.sgs[#topo.sgs + 1] = { id = g, api = E }
    end
    -- a custom network ACL on one subnet, sometimes
    if r.chance(0.4) then
      local acl = must(E("ec2", "CreateNetworkAcl", { VpcId = v.id })).NetworkAcl.NetworkAclId
      local number = 100
      for _, egress in ipairs({ false, true }) do
        for _ = 1, r.int(0, 2) do
          local svc = random_service(r)
          E("ec2", "CreateNetworkAclEntry", { NetworkAclId = acl, RuleNumber = number, Protocol = ({ tcp = "6", udp = "17",
            icmp = "1" })[svc[1]], RuleAction = r.chance(0.3) and "deny" or "allow", Egress = egress,
            CidrBlock = r.chance(0.5) and "10.0.0.0/8" or string.format("10.%d.0.0/16", r.int(1, n_vpc)),
            PortRange = svc[1] ~= "icmp" and { From = svc[2], To = svc[3] } or nil,
            IcmpTypeCode = svc[1] == "icmp" and { Type = -1, Code = -1 } or nil })
          number = number + 10
        end
        E("ec2", "CreateNetworkAclEntry", { NetworkAclId = acl, RuleNumber = 200, Protocol = "-1", RuleAction = "allow",
          Egress = egress, CidrBlock = r.chance(0.8) and "0.0.0.0/0" or "10.0.0.0/9" })
      end
      local subnet = v.subnets[r.int(1, #v.subnets)].id
      local acls = must(E("ec2", "DescribeNetworkAcls", { Filters = { { Name = "association.subnet-id",
        Values = { subnet } } } })).NetworkAcls
      for _, a in ipairs(acls[1] and acls[1].Associations or {}) do
        if a.SubnetId == subnet then
          must(E("ec2", "ReplaceNetworkAclAssociation", { AssociationId = a.NetworkAclAssociationId, NetworkAclId = acl }))
        end
      end
      topo.acls[#topo.acls + 1] = { id = acl, api = E, number = number }
    end
    -- hosts: one or two ENIs per subnet
    for _, s in ipairs(v.subnets) do
      for _ = 1, r.int(1, 2) do
        local e = must(E("ec2", "CreateNetworkInterface", { SubnetId = s.id, Groups = { r.pick(v.sgs) } }), nil, "eni")
          .NetworkInterface
        topo.enis[#topo.enis + 1] = { id = e.NetworkInterfaceId, ip = e.PrivateIpAddress, vpc = i }
      end
    end
    -- the TGW attachment: one subnet per AZ, sometimes not in every AZ
    local per_az, att_subnets = {}, {}
    for _, s in ipairs(v.subnets) do
      if not per_az[s.az] and (r.chance(0.85) or #att_subnets == 0) then
        per_az[s.az] = true
        att_subnets[#att_subnets + 1] = s.id
      end
    end
    local att = must(E("ec2", "CreateTransitGatewayVpcAttachment", { TransitGatewayId = topo.tgw, VpcId = v.id,
      SubnetIds = att_subnets }), nil, "attachment").TransitGatewayVpcAttachment.TransitGatewayAttachmentId
    topo.atts[i] = att
  end
  -- TGW associations and propagations (the attachments are available: transition 0)
  for i, att in ipairs(topo.atts) do
    if r.chance(0.93) then
      must(A("ec2", "AssociateTransitGatewayRouteTable", { TransitGatewayRouteTableId = r.pick(topo.trtbs),
        TransitGatewayAttachmentId = att }), nil, "associate")
    end
    for _, rt in ipairs(topo.trtbs) do
      if r.chance(0.85) then
        must(A("ec2", "EnableTransitGatewayRouteTablePropagation", { TransitGatewayRouteTableId = rt,
          TransitGatewayAttachmentId = att }), nil, "propagate")
      end
    end
    if r.chance(0.1) then
      A("ec2", "CreateTransitGatewayRoute", { TransitGatewayRouteTableId = r.pick(topo.trtbs),
        DestinationCidrBlock = string.format("10.%d.%d.0/24", i, r.int(1, 3)), Blackhole = true })
    end
  end
  -- VPC routes to the others through the TGW: a summary or one per VPC, some missing
  for _, v in ipairs(topo.vpcs) do
    for _, rt in ipairs(v.rtbs) do
      if r.chance(0.5) then
        v.api("ec2", "CreateRoute", { RouteTableId = rt, DestinationCidrBlock = "10.0.0.0/8", TransitGatewayId = topo.tgw })
      else
        for _, o in ipairs(topo.vpcs) do
          for _, block in ipairs({ o.cidr, o.secondary }) do
            if o ~= v and r.chance(0.85) then
              v.api("ec2", "CreateRoute", { RouteTableId = rt, DestinationCidrBlock = block, TransitGatewayId = topo.tgw })
            end
          end
        end
      end
    end
  end
  return topo, r
end

-- The article's shape: A's VPC and B's VPC over a TGW that A shares with B, one host ENI in
-- each, B's group open to A's VPC on TCP 3306 and ICMP.
--- The article's shape in `sb`: see tests/twin_spec.lua; returns {tgw, [1] = A's side, [2] = B's}.
-- @param sb the sandbox
-- @treturn table the sides
function cases.article(sb)
  local a, b = direct(sb, cases.ACCOUNTS[1], cases.REGION), direct(sb, cases.ACCOUNTS[2], cases.REGION)
  local t = {}
  t.tgw = must(a("ec2", "CreateTransitGateway", { Options = { AutoAcceptSharedAttachments = "enable" } })).TransitGateway
  local share = must(a("ram", "CreateResourceShare", { name = "twin", resourceArns = { t.tgw.TransitGatewayArn },
    principals = { cases.ACCOUNTS[2] }, allowExternalPrincipals = true })).resourceShare.resourceShareArn
  local invitations = must(b("ram", "GetResourceShareInvitations", { resourceShareArns = { share } }))
  for _, inv in ipairs(invitations.resourceShareInvitations) do
    must(b("ram", "AcceptResourceShareInvitation", { resourceShareInvitationArn = inv.resourceShareInvitationArn }))
  end
  local sides = { { a, "10.0.0.0/16", "10.0.128.0/28", "10.1.0.0/16" }, { b, "10.1.0.0/16", "10.1.128.0/28", "10.0.0.0/16" } }
  for _, side in ipairs(sides) do
    local api = side[1]
    local vpc = must(api("ec2", "CreateVpc", { CidrBlock = side[2] })).Vpc.VpcId
    local zone = must(api("ec2", "DescribeAvailabilityZones", {})).AvailabilityZones[1].ZoneId
    local subnet = must(api("ec2", "CreateSubnet", { VpcId = vpc, CidrBlock = side[3], AvailabilityZoneId = zone }))
      .Subnet.SubnetId
    local att = must(api("ec2", "CreateTransitGatewayVpcAttachment", { TransitGatewayId = t.tgw.TransitGatewayId,
      VpcId = vpc, SubnetIds = { subnet } })).TransitGatewayVpcAttachment.TransitGatewayAttachmentId
    local rtb = must(api("ec2", "DescribeRouteTables", { Filters = { { Name = "vpc-id", Values = { vpc } } } }))
      .RouteTables[1].RouteTableId
    must(api("ec2", "CreateRoute", { RouteTableId = rtb, DestinationCidrBlock = side[4],
      TransitGatewayId = t.tgw.TransitGatewayId }))
    local sg = must(api("ec2", "DescribeSecurityGroups", { Filters = { { Name = "vpc-id", Values = { vpc } } } }))
      .SecurityGroups[1].GroupId
    local eni = must(api("ec2", "CreateNetworkInterface", { SubnetId = subnet, Groups = { sg } })).NetworkInterface
    t[#t + 1] = { api = api, vpc = vpc, subnet = subnet, att = att, rtb = rtb, sg = sg, eni = eni.NetworkInterfaceId,
                  ip = eni.PrivateIpAddress, peer_cidr = side[4] }
  end
  must(t[2].api("ec2", "AuthorizeSecurityGroupIngress", { GroupId = t[2].sg, IpPermissions = {
    { IpProtocol = "tcp", FromPort = 3306, ToPort = 3306, IpRanges = { { CidrIp = "10.0.128.0/28" } } },
    { IpProtocol = "icmp", FromPort = -1, ToPort = -1, IpRanges = { { CidrIp = "10.0.0.0/16" } } } } }))
  return t
end

-- One fault through the API, as the issue lists them; returns its description.
local function apply_fault(sb, topo, r)
  local kind = r.int(0, 8)
  local A = direct(sb, cases.ACCOUNTS[1], cases.REGION)
  if kind == 0 then return "none" end
  if kind == 1 then
    local v = r.pick(topo.vpcs)
    local rt = r.pick(v.rtbs)
    local routes = v.api("ec2", "DescribeRouteTables", { RouteTableIds = { rt } }).RouteTables[1].Routes
    local tg = {}
    for _, x in ipairs(routes) do if x.TransitGatewayId then tg[#tg + 1] = x.DestinationCidrBlock end end
    if #tg == 0 then return "none (no route to remove)" end
    local dest = r.pick(tg)
    v.api("ec2", "DeleteRoute", { RouteTableId = rt, DestinationCidrBlock = dest })
    return "route " .. dest .. " removed from " .. rt
  elseif kind == 2 then
    local v = r.pick(topo.vpcs)
    local rt = r.pick(topo.trtbs)
    A("ec2", "DeleteTransitGatewayRoute", { TransitGatewayRouteTableId = rt, DestinationCidrBlock = v.cidr })
    A("ec2", "CreateTransitGatewayRoute", { TransitGatewayRouteTableId = rt, DestinationCidrBlock = v.cidr, Blackhole = true })
    return "TGW route " .. v.cidr .. " blackholed in " .. rt
  elseif kind == 3 then
    local att, rt = r.pick(topo.atts), r.pick(topo.trtbs)
    A("ec2", "DisableTransitGatewayRouteTablePropagation", { TransitGatewayRouteTableId = rt, TransitGatewayAttachmentId = att })
    return "propagation of " .. att .. " to " .. rt .. " removed"
  elseif kind == 4 then
    local att = r.pick(topo.atts)
    for _, rt in ipairs(topo.trtbs) do
      A("ec2", "DisassociateTransitGatewayRouteTable", { TransitGatewayRouteTableId = rt, TransitGatewayAttachmentId = att })
    end
    return "association of " .. att .. " removed"
  elseif kind == 5 or kind == 6 then
    local g = r.pick(topo.sgs)
    local sg = g.api("ec2", "DescribeSecurityGroups", { GroupIds = { g.id } }).SecurityGroups[1]
    local perms = sg.IpPermissions or {}
    if #perms == 0 then return "none (no SG rule)" end
    local p = r.pick(perms)
    g.api("ec2", "RevokeSecurityGroupIngress", { GroupId = g.id, IpPermissions = { p } })
    if kind == 6 and p.IpProtocol ~= "-1" and p.IpProtocol ~= "icmp" and p.IpRanges and p.IpRanges[1] then
      g.api("ec2", "AuthorizeSecurityGroupIngress", { GroupId = g.id, IpPermissions = { { IpProtocol = p.IpProtocol,
        FromPort = p.FromPort, ToPort = p.FromPort, IpRanges = { { CidrIp = "10.200.0.0/16" } } } } })
      return "SG rule of " .. g.id .. " narrowed"
    end
    return "SG rule of " .. g.id .. " removed"
  elseif kind == 7 then
    if #topo.acls == 0 then return "none (no custom NACL)" end
    local a = r.pick(topo.acls)
    a.api("ec2", "DeleteNetworkAclEntry", { NetworkAclId = a.id, RuleNumber = 200, Egress = r.chance(0.5) })
    return "NACL rule 200 of " .. a.id .. " removed"
  else
    if #topo.acls == 0 then return "none (no custom NACL)" end
    local a = r.pick(topo.acls)
    local svc = random_service(r)
    a.api("ec2", "CreateNetworkAclEntry", { NetworkAclId = a.id, RuleNumber = 50, Protocol = ({ tcp = "6", udp = "17",
      icmp = "1" })[svc[1]], RuleAction = "deny", Egress = r.chance(0.5), CidrBlock = "10.0.0.0/8",
      PortRange = svc[1] ~= "icmp" and { From = svc[2], To = svc[3] } or nil,
      IcmpTypeCode = svc[1] == "icmp" and { Type = -1, Code = -1 } or nil })
    return "deny inserted before the allows of " .. a.id
  end
end

--- Runs case `seed`: builds it, applies its fault, probes and traces its flows, and tears it
-- down (sb:reset()). Returns {seed, fault, flows = {{src, dst, proto, port, sport, kernel,
-- evaluator, code}}, disagreements = n, snapshot (kept only on a disagreement), seconds}.
-- @param sb the sandbox (with a twin)
-- @tparam integer seed the case
-- @tparam[opt] table opts {keep_snapshot = true: keep it also when all agree}
-- @treturn table the outcome
function cases.run(sb, seed, opts)
  local started = process.clock()
  -- the topology realised at once, then the fault as a change the twin follows call by call
  local topo, r = sb:twin_batch(function() return cases.build(sb, seed) end)
  local fault = apply_fault(sb, topo, r)
  assert(sb.twin:settle(30), "the twin did not settle")
  assert(not sb.twin.last_error, tostring(sb.twin.last_error))
  -- up to 8 flows between ENIs of different VPCs (and sometimes the same VPC)
  local flows, listen, used_sport = {}, {}, {}
  for k = 1, 8 do
    local src, dst = r.pick(topo.enis), r.pick(topo.enis)
    if src ~= dst then
      local svc = SERVICES[r.int(1, #SERVICES)]
      local sport
      repeat sport = r.int(32768, 60999) until not used_sport[sport]
      used_sport[sport] = true
      flows[#flows + 1] = { id = tostring(k), src = src.id, dst = dst.ip, dst_eni = dst.id, proto = svc[1], port = svc[2],
        sport = sport }
    end
  end
  for _, e in ipairs(topo.enis) do listen[#listen + 1] = { eni = e.id, tcp = { 22, 80, 443 }, udp = { 53 } } end
  local kernel = assert(sb.twin:probe(listen, flows, 0.3))
  local model = assert(sb:model())
  local out = { seed = seed, fault = fault, flows = {}, disagreements = 0, accounts = topo.accounts, vpcs = #topo.vpcs }
  for _, f in ipairs(flows) do
    local res = model:trace { src = f.src, dst = f.dst, protocol = f.proto, port = f.port,
      src_port = f.proto ~= "icmp" and f.sport or nil }
    local row = { src = f.src, dst = f.dst, proto = f.proto, port = f.port, sport = f.sport, kernel = kernel[f.id] == true,
      evaluator = res.reachable == true, code = res.code, explanation = tostring(res) }
    if row.kernel ~= row.evaluator then out.disagreements = out.disagreements + 1 end
    out.flows[#out.flows + 1] = row
  end
  if out.disagreements > 0 or (opts and opts.keep_snapshot) then out.snapshot = sb:snapshot() end
  sb:twin_batch(function() sb:reset() end)
  out.seconds = process.clock() - started
  return out
end

--- Traces a reproducer's flows again on its snapshot: {{flow, evaluator}} (the evaluator's
-- verdict now, to set against the recorded kernel's).
-- @tparam string path a reproducer (save_reproducer's file)
-- @treturn table the flows and verdicts
function cases.retrace(path)
  local saved = cjson.decode(assert(process.read_file(path)))
  local model = assert(require("awsnet.reach").load(saved.snapshot))
  local out = {}
  for _, f in ipairs(saved.flows) do
    local res = model:trace { src = f.src, dst = f.dst, protocol = f.proto, port = f.port ~= cjson.null and f.port or nil,
      src_port = f.proto ~= "icmp" and f.sport or nil }
    out[#out + 1] = { flow = f, evaluator = res.reachable == true }
  end
  return out
end

--- Saves a disagreement as a reproducer: <dir>/case-<seed>.json with the snapshot, the flows and
-- both answers. Returns the path.
-- @tparam string dir the folder
-- @tparam table out `run`'s result
-- @treturn string the path
function cases.save_reproducer(dir, out)
  process.mkdir(dir)
  local path = string.format("%s/case-%d.json", dir, out.seed)
  process.write_file(path, cjson.encode(out))
  return path
end

return cases
