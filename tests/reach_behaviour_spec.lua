-- Behaviour AWS documents (issue 12, section 2), each on a small snapshot built here as the table
-- form. Every expected answer comes from the AWS rule cited next to it (docs/aws-network-semantics.md),
-- not from running the evaluator.
local reach = require "awsnet.reach"
local states = require "awsnet.reach.states"
local copy = require("helpers.tables").copy

local A = "111111111111"
local ALLOW_ALL = { { 100, false, "allow", "0.0.0.0/0" }, { 32767, false, "deny", "0.0.0.0/0" },
  { 100, true, "allow", "0.0.0.0/0" }, { 32767, true, "deny", "0.0.0.0/0" } }

-- ---- a tiny snapshot builder (one account, one region) ---------------------------------------

local function world()
  local r = { Vpcs = {}, Subnets = {}, RouteTables = {}, NetworkAcls = {}, SecurityGroups = {},
    NetworkInterfaces = {}, AvailabilityZones = {
      { ZoneName = "us-east-1a", ZoneId = "use1-az1" }, { ZoneName = "us-east-1b", ZoneId = "use1-az2" } } }
  return { accounts = { [A] = { ["us-east-1"] = r } } }, r
end

-- entries: {number, egress, action, cidr[, protocol, from, to]} (protocol "-1" when absent)
local function entries(list)
  local out = {}
  for _, e in ipairs(list) do
    out[#out + 1] = { RuleNumber = e[1], Egress = e[2], RuleAction = e[3], CidrBlock = e[4], Protocol = e[5] or "-1",
      PortRange = e[6] and { From = e[6], To = e[7] or e[6] } or nil }
  end
  return out
end

local function vpc(r, id, cidrs)
  local set = {}
  for _, c in ipairs(cidrs) do set[#set + 1] = { CidrBlock = c, CidrBlockState = { State = "associated" } } end
  r.Vpcs[#r.Vpcs + 1] = { VpcId = id, CidrBlock = cidrs[1], CidrBlockAssociationSet = set, OwnerId = A }
  local routes = {}
  for _, c in ipairs(cidrs) do routes[#routes + 1] = { DestinationCidrBlock = c, GatewayId = "local", State = "active" } end
  r.RouteTables[#r.RouteTables + 1] = { RouteTableId = "rtb-main-" .. id, VpcId = id, Routes = routes,
    Associations = { { Main = true } } }
  r.NetworkAcls[#r.NetworkAcls + 1] = { NetworkAclId = "acl-default-" .. id, VpcId = id, IsDefault = true,
    Associations = {}, Entries = entries(ALLOW_ALL) }
end

local function find(list, field, id)
  for _, item in ipairs(list) do if item[field] == id then return item end end
  error("no " .. id)
end

local function subnet(r, id, vpc_id, cidr, az)
  r.Subnets[#r.Subnets + 1] = { SubnetId = id, VpcId = vpc_id, CidrBlock = cidr,
    AvailabilityZone = az == 2 and "us-east-1b" or "us-east-1a", AvailabilityZoneId = az == 2 and "use1-az2" or "use1-az1" }
  -- every subnet starts on its VPC's default NACL, listed as AWS lists it
  table.insert(find(r.NetworkAcls, "NetworkAclId", "acl-default-" .. vpc_id).Associations, { SubnetId = id })
end

-- A custom NACL for the subnets (moved off the default one).
local function nacl(r, id, vpc_id, subnets, list)
  for _, s in ipairs(subnets) do
    for _, acl in ipairs(r.NetworkAcls) do
      for i = #acl.Associations, 1, -1 do
        if acl.Associations[i].SubnetId == s then table.remove(acl.Associations, i) end
      end
    end
  end
  local assoc = {}
  for _, s in ipairs(subnets) do assoc[#assoc + 1] = { SubnetId = s } end
  r.NetworkAcls[#r.NetworkAcls + 1] = { NetworkAclId = id, VpcId = vpc_id, IsDefault = false, Associations = assoc,
    Entries = entries(list) }
end

local function route_table(r, id, vpc_id, subnets, routes)
  local assoc = {}
  for _, s in ipairs(subnets) do assoc[#assoc + 1] = { Main = false, SubnetId = s } end
  local rs = {}
  for _, c in ipairs(find(r.Vpcs, "VpcId", vpc_id).CidrBlockAssociationSet) do
    rs[#rs + 1] = { DestinationCidrBlock = c.CidrBlock, GatewayId = "local", State = "active" }
  end
  for _, rt in ipairs(routes or {}) do rs[#rs + 1] = rt end
  r.RouteTables[#r.RouteTables + 1] = { RouteTableId = id, VpcId = vpc_id, Routes = rs, Associations = assoc }
end

-- perms: {protocol, from, to, cidr}
local function perms(list)
  local out = {}
  for _, p in ipairs(list) do
    out[#out + 1] = { IpProtocol = p[1], FromPort = p[2], ToPort = p[3], IpRanges = { { CidrIp = p[4] } } }
  end
  return out
end

local EGRESS_ALL = { { "-1", nil, nil, "0.0.0.0/0" } }

local function sg(r, id, vpc_id, ingress, egress)
  r.SecurityGroups[#r.SecurityGroups + 1] = { GroupId = id, GroupName = id, VpcId = vpc_id,
    IpPermissions = perms(ingress or {}), IpPermissionsEgress = perms(egress or EGRESS_ALL) }
end

local function eni(r, id, subnet_id, ip, groups, extra)
  local gs = {}
  for _, g in ipairs(groups) do gs[#gs + 1] = { GroupId = g } end
  local e = { NetworkInterfaceId = id, SubnetId = subnet_id, PrivateIpAddress = ip, Groups = gs,
    InterfaceType = "interface", Description = "" }
  for k, v in pairs(extra or {}) do e[k] = v end
  r.NetworkInterfaces[#r.NetworkInterfaces + 1] = e
end

local function load(data) return assert(reach.load(data)) end
local function trace(data, q)
  local m = load(data)
  return assert(m:trace(q)), m
end
local function said(r) return table.concat(r.assumptions, "\n") end

-- One VPC, two subnets in one AZ: a client (10.0.1.10) and a server (10.0.2.10) taking tcp/3306.
local function one_vpc()
  local data, r = world()
  vpc(r, "vpc-1", { "10.0.0.0/16" })
  subnet(r, "subnet-c", "vpc-1", "10.0.1.0/24", 1)
  subnet(r, "subnet-s", "vpc-1", "10.0.2.0/24", 1)
  sg(r, "sg-c", "vpc-1", {})
  sg(r, "sg-s", "vpc-1", { { "tcp", 3306, 3306, "10.0.0.0/16" } })
  eni(r, "eni-c", "subnet-c", "10.0.1.10", { "sg-c" })
  eni(r, "eni-s", "subnet-s", "10.0.2.10", { "sg-s" })
  return data, r
end

-- ---- network ACLs ---------------------------------------------------------------------------

describe("network ACL rules", function()
  -- nacl-basics.html: rules are evaluated in ascending rule number; the first match decides.
  it("are evaluated by rule number, not in the order they are listed", function()
    local data, r = one_vpc()
    nacl(r, "acl-s", "vpc-1", { "subnet-s" }, {
      { 200, false, "allow", "10.0.1.0/24", "6", 3306 }, { 100, false, "deny", "10.0.1.0/24", "6", 3306 },
      { 100, true, "allow", "0.0.0.0/0" }, { 32767, false, "deny", "0.0.0.0/0" }, { 32767, true, "deny", "0.0.0.0/0" } })
    local res = trace(data, { src = "eni-c", dst = "eni-s", port = 3306 })
    assert.is_false(res.reachable)
    assert.equals("SUBNET_ACL_RESTRICTION", res.code)
    assert.equals("acl-s", res.blocked_at.component)
    assert.matches("^inbound rule 100: deny", res.blocked_at.rule)
    -- the same two rules with the numbers swapped: the allow comes first
    local acl = find(r.NetworkAcls, "NetworkAclId", "acl-s")
    acl.Entries[1].RuleNumber, acl.Entries[2].RuleNumber = 100, 200
    assert.is_true(trace(data, { src = "eni-c", dst = "eni-s", port = 3306 }).reachable)
  end)

  -- nacl-basics.html: user rules go up to 32766; 32767 is the "*" rule that denies what no rule matched.
  it("use rule 32766 like any rule, and 32767 is the final deny (*)", function()
    local data, r = one_vpc()
    nacl(r, "acl-s", "vpc-1", { "subnet-s" }, {
      { 32766, false, "allow", "10.0.1.0/24" }, { 32767, false, "deny", "0.0.0.0/0" },
      { 32766, true, "allow", "10.0.1.0/24" }, { 32767, true, "deny", "0.0.0.0/0" } })
    local res = trace(data, { src = "eni-c", dst = "eni-s", port = 3306 })
    assert.is_true(res.reachable, tostring(res))
    assert.matches("inbound rule 32766: allow", res.forward.hops[#res.forward.hops - 2].rule, 1, true)
    -- from another client subnet only the * rule matches
    subnet(r, "subnet-o", "vpc-1", "10.0.3.0/24", 1)
    eni(r, "eni-o", "subnet-o", "10.0.3.10", { "sg-c" })
    res = trace(data, { src = "eni-o", dst = "eni-s", port = 3306 })
    assert.is_false(res.reachable)
    assert.equals("acl-s", res.blocked_at.component)
    assert.equals("inbound rule *: deny all from 0.0.0.0/0", res.blocked_at.rule)
  end)
end)

-- ---- security groups ------------------------------------------------------------------------

describe("security-group rules", function()
  -- security-group-rules.html: IpProtocol is a name or a number ("6" = tcp); "-1" = all protocols and ports.
  it("read protocol \"6\" as tcp and \"-1\" as everything", function()
    local data, r = one_vpc()
    r.SecurityGroups[2].IpPermissions = perms({ { "6", 3306, 3306, "10.0.1.0/24" } })
    local m = load(data)
    assert.is_true(m:trace{ src = "eni-c", dst = "eni-s", port = 3306 }.reachable)
    assert.is_false(m:trace{ src = "eni-c", dst = "eni-s", protocol = "udp", port = 3306 }.reachable)
    r.SecurityGroups[2].IpPermissions = perms({ { "-1", nil, nil, "10.0.1.0/24" } })
    m = load(data)
    for _, q in ipairs({ { "tcp", 1 }, { "tcp", 65535 }, { "udp", 53 }, { "icmp" } }) do
      assert.is_true(m:trace{ src = "eni-c", dst = "eni-s", protocol = q[1], port = q[2] }.reachable, q[1])
    end
  end)

  -- FromPort and ToPort are both included.
  it("include both ends of a port range and nothing beyond", function()
    local data, r = one_vpc()
    r.SecurityGroups[2].IpPermissions = perms({ { "tcp", 1000, 2000, "10.0.1.0/24" } })
    local m = load(data)
    for port, ok in pairs({ [999] = false, [1000] = true, [2000] = true, [2001] = false }) do
      local res = m:trace{ src = "eni-c", dst = "eni-s", port = port }
      assert.equals(ok, res.reachable, "port " .. port)
      if not ok then assert.equals("ENI_SG_RULES_MISMATCH", res.code) end
    end
  end)

  -- The rules of all groups on an ENI are aggregated (security-group-rules.html).
  it("of several groups on one ENI all apply", function()
    local data, r = one_vpc()
    sg(r, "sg-ssh", "vpc-1", { { "tcp", 22, 22, "10.0.1.0/24" } })
    table.insert(find(r.NetworkInterfaces, "NetworkInterfaceId", "eni-s").Groups, { GroupId = "sg-ssh" })
    local m = load(data)
    local by22 = m:trace{ src = "eni-c", dst = "eni-s", port = 22 }
    assert.is_true(by22.reachable)
    assert.equals("sg-ssh", by22.forward.hops[#by22.forward.hops - 1].component)
    assert.is_true(m:trace{ src = "eni-c", dst = "eni-s", port = 3306 }.reachable)
    assert.equals("ENI_SG_RULES_MISMATCH", m:trace{ src = "eni-c", dst = "eni-s", port = 80 }.code)
  end)

  -- Security groups are stateful: a group without outbound rules sends nothing it starts, but its
  -- replies to allowed inbound traffic go out.
  it("without egress rules stop what the ENI starts, not its replies", function()
    local data, r = one_vpc()
    r.SecurityGroups[1].IpPermissionsEgress = {}
    r.SecurityGroups[2].IpPermissionsEgress = {}
    local m = load(data)
    local out = m:trace{ src = "eni-c", dst = "eni-s", port = 3306 }
    assert.is_false(out.reachable)
    assert.equals("ENI_SG_RULES_MISMATCH", out.code)
    assert.equals("sg-c", out.blocked_at.component)
    assert.equals("forward", out.blocked_at.direction)
    r.SecurityGroups[1].IpPermissionsEgress = perms(EGRESS_ALL)
    assert.is_true(load(data):trace{ src = "eni-c", dst = "eni-s", port = 3306 }.reachable)
  end)
end)

-- ---- addresses ------------------------------------------------------------------------------

describe("destinations", function()
  -- An address no ENI holds: the packet reaches the subnet and no one answers.
  it("an address no network interface holds is NO_DESTINATION_ENI, the path up to its subnet shown", function()
    local data = one_vpc()
    local res = trace(data, { src = "eni-c", dst = "10.0.2.99", port = 3306 })
    assert.is_false(res.reachable)
    assert.equals("NO_DESTINATION_ENI", res.code)
    assert.equals("awsnet", require("awsnet.reach.report").CODES.NO_DESTINATION_ENI[1])
    assert.equals("subnet", res.blocked_at.kind)
    assert.equals("subnet-s", res.blocked_at.component)
    local kinds = {}
    for _, h in ipairs(res.forward.hops) do kinds[#kinds + 1] = h.kind end
    assert.same({ "network-interface", "security-group", "route-table", "network-acl", "network-acl", "subnet" }, kinds)
    assert.same({}, res.ret.hops)
    assert.matches("no network interface holds 10.0.2.99", said(res), 1, true)
    assert.matches("NO_DESTINATION_ENI", tostring(res), 1, true)
    assert.is_string(res.fix[1].change)
    assert.matches("the blocked path stops at subnet subnet-s", res.blocked_path.stopped, 1, true)
  end)

  -- A VPC's secondary CIDR has its own local route (VPC_Route_Tables.html) and is propagated to a
  -- TGW like the primary one (tgw-route-tables.html).
  it("in a secondary VPC CIDR are reached through its local route", function()
    local data, r = one_vpc()
    r.Vpcs[1].CidrBlockAssociationSet[2] = { CidrBlock = "100.64.0.0/16", CidrBlockState = { State = "associated" } }
    r.RouteTables[1].Routes[2] = { DestinationCidrBlock = "100.64.0.0/16", GatewayId = "local", State = "active" }
    subnet(r, "subnet-x", "vpc-1", "100.64.1.0/24", 1)
    r.SecurityGroups[2].IpPermissions = perms({ { "tcp", 3306, 3306, "0.0.0.0/0" } })
    eni(r, "eni-x", "subnet-x", "100.64.1.10", { "sg-s" })
    local res = trace(data, { src = "eni-c", dst = "eni-x", port = 3306 })
    assert.is_true(res.reachable, tostring(res))
    assert.equals("100.64.0.0/16 -> local", res.forward.hops[3].rule)
  end)
end)

-- ---- transit gateway ------------------------------------------------------------------------

local TGW, TRTB, TRTB2 = "tgw-1", "tgw-rtb-1", "tgw-rtb-2"

-- VPC A (10.0.0.0/16) and B (10.1.0.0/16) on one TGW: workloads in 10.x.1.0/24 (AZ 1), attachment
-- subnets 10.x.255.0/28 (AZ 1) with the main route table (local routes only), one TGW route table
-- both attachments are associated with and propagate to.
local function two_vpcs()
  local data, r = world()
  for _, v in ipairs({ { "a", "10.0" }, { "b", "10.1" } }) do
    local id, p = "vpc-" .. v[1], v[2]
    vpc(r, id, { p .. ".0.0/16" })
    subnet(r, "subnet-" .. v[1] .. "w", id, p .. ".1.0/24", 1)
    subnet(r, "subnet-" .. v[1] .. "t", id, p .. ".255.0/28", 1)
    route_table(r, "rtb-" .. v[1] .. "w", id, { "subnet-" .. v[1] .. "w" }, { {
      DestinationCidrBlock = v[1] == "a" and "10.1.0.0/16" or "10.0.0.0/16", TransitGatewayId = TGW, State = "active" } })
  end
  sg(r, "sg-a", "vpc-a", {})
  sg(r, "sg-b", "vpc-b", { { "tcp", 3306, 3306, "10.0.0.0/16" } })
  eni(r, "eni-a", "subnet-aw", "10.0.1.10", { "sg-a" })
  eni(r, "eni-b", "subnet-bw", "10.1.1.10", { "sg-b" })
  r.TransitGateways = { { TransitGatewayId = TGW, OwnerId = A, State = "available", Options = {} } }
  r.TransitGatewayRouteTables = { { TransitGatewayRouteTableId = TRTB, TransitGatewayId = TGW, State = "available" } }
  r.TransitGatewayVpcAttachments, r.TransitGatewayAttachments = {}, {}
  for _, v in ipairs({ "a", "b" }) do
    local att = "tgw-attach-" .. v
    r.TransitGatewayVpcAttachments[#r.TransitGatewayVpcAttachments + 1] = { TransitGatewayAttachmentId = att,
      TransitGatewayId = TGW, VpcId = "vpc-" .. v, State = "available", SubnetIds = { "subnet-" .. v .. "t" } }
    r.TransitGatewayAttachments[#r.TransitGatewayAttachments + 1] = { TransitGatewayAttachmentId = att,
      TransitGatewayId = TGW, ResourceType = "vpc", ResourceId = "vpc-" .. v, State = "available",
      Association = { TransitGatewayRouteTableId = TRTB, State = "associated" } }
  end
  r.TransitGatewayPropagations = { { TransitGatewayRouteTableId = TRTB, TransitGatewayRouteTablePropagations = {
    { TransitGatewayAttachmentId = "tgw-attach-a", State = "enabled" },
    { TransitGatewayAttachmentId = "tgw-attach-b", State = "enabled" } } } }
  r.TransitGatewayRoutes = { { TransitGatewayRouteTableId = TRTB, Routes = {} } }
  return data, r
end

local Q = { src = "eni-a", dst = "eni-b", port = 3306 }
local DENY_ALL = { { 32767, false, "deny", "0.0.0.0/0" }, { 32767, true, "deny", "0.0.0.0/0" } }

describe("across a transit gateway", function()
  it("reaches on the base topology", function()
    local res = trace(two_vpcs(), Q)
    assert.is_true(res.reachable, tostring(res))
  end)

  -- tgw-nacls.html, different subnets: instance -> TGW uses the TGW subnet's inbound rules (source
  -- address); TGW -> instance uses its outbound rules (destination address).
  it("evaluates the attachment subnets' NACLs: inbound where the packet enters, outbound where it leaves", function()
    local data, r = two_vpcs()
    nacl(r, "acl-at", "vpc-a", { "subnet-at" }, {
      { 100, false, "deny", "10.0.1.0/24" }, { 200, false, "allow", "0.0.0.0/0" }, { 100, true, "allow", "0.0.0.0/0" } })
    local res = trace(data, Q)
    assert.is_false(res.reachable)
    assert.equals("acl-at", res.blocked_at.component)
    assert.equals("forward", res.blocked_at.direction)
    assert.matches("^inbound rule 100", res.blocked_at.rule)

    data, r = two_vpcs()
    nacl(r, "acl-bt", "vpc-b", { "subnet-bt" }, {
      { 100, false, "allow", "0.0.0.0/0" }, { 100, true, "deny", "10.1.1.0/24" }, { 200, true, "allow", "0.0.0.0/0" } })
    res = trace(data, Q)
    assert.is_false(res.reachable)
    assert.equals("acl-bt", res.blocked_at.component)
    assert.equals("forward", res.blocked_at.direction)
    assert.matches("^outbound rule 100", res.blocked_at.rule)
  end)

  it("does not use the TGW subnet's outbound rules on the way in (nor inbound on the way out)", function()
    local data, r = two_vpcs()
    -- A's TGW subnet: outbound only back to A's workloads, inbound only from them
    nacl(r, "acl-at", "vpc-a", { "subnet-at" }, {
      { 100, false, "allow", "10.0.1.0/24" }, { 100, true, "allow", "10.0.1.0/24" } })
    local res = trace(data, Q)
    assert.is_true(res.reachable, tostring(res))
  end)

  -- tgw-nacls.html, same subnet: instance -> TGW evaluates the NACL's outbound AND inbound rules;
  -- TGW -> instance evaluates neither.
  it("when the workload subnet is itself the attachment subnet", function()
    local data, r = two_vpcs()
    r.TransitGatewayVpcAttachments[1].SubnetIds = { "subnet-aw" }
    -- inbound allows only A's own subnet (the instance -> TGW check), nothing from B
    nacl(r, "acl-aw", "vpc-a", { "subnet-aw" }, {
      { 100, false, "allow", "10.0.1.0/24" }, { 100, true, "allow", "0.0.0.0/0" },
      { 32767, false, "deny", "0.0.0.0/0" }, { 32767, true, "deny", "0.0.0.0/0" } })
    local res = trace(data, Q)
    assert.is_true(res.reachable, tostring(res))
    local checks = 0
    for _, h in ipairs(res.forward.hops) do if h.component == "acl-aw" then checks = checks + 1 end end
    assert.equals(2, checks) -- outbound, then inbound, on the way to the TGW
    for _, h in ipairs(res.ret.hops) do assert.not_equals("acl-aw", h.component) end
    -- without the inbound rule for its own subnet the packet cannot enter the TGW
    find(r.NetworkAcls, "NetworkAclId", "acl-aw").Entries[1].CidrBlock = "10.9.0.0/16"
    res = trace(data, Q)
    assert.is_false(res.reachable)
    assert.equals("acl-aw", res.blocked_at.component)
    assert.equals("forward", res.blocked_at.direction)
    assert.equals("inbound rule *: deny all from 0.0.0.0/0", res.blocked_at.rule)
  end)

  -- tgw-route-tables.html: the reply is looked up in the table the replying side's attachment is
  -- associated with, so a fault there shows on the return path only.
  it("a fault on the return path only: A's attachment not propagated", function()
    local data, r = two_vpcs()
    table.remove(r.TransitGatewayPropagations[1].TransitGatewayRouteTablePropagations, 1)
    local res = trace(data, Q)
    assert.is_false(res.reachable)
    assert.equals("TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT", res.code)
    assert.equals("return", res.blocked_at.direction)
    assert.is_true(res.forward.ok)
  end)

  it("a fault on the return path only: B associated with a second table without A's route", function()
    local data, r = two_vpcs()
    r.TransitGatewayRouteTables[2] = { TransitGatewayRouteTableId = TRTB2, TransitGatewayId = TGW, State = "available" }
    r.TransitGatewayAttachments[2].Association.TransitGatewayRouteTableId = TRTB2
    r.TransitGatewayPropagations[2] = { TransitGatewayRouteTableId = TRTB2, TransitGatewayRouteTablePropagations = {
      { TransitGatewayAttachmentId = "tgw-attach-b", State = "enabled" } } }
    local res = trace(data, Q)
    assert.is_false(res.reachable)
    assert.equals(TRTB2, res.blocked_at.component)
    assert.equals("return", res.blocked_at.direction)
    assert.equals("TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT", res.code)
  end)

  -- tgw-vpc-attachments.html / how-transit-gateways-work.html: traffic stays in the AZ it entered
  -- the TGW in when the egress attachment has a subnet there; else an AZ where it has one.
  it("an attachment with subnets in several AZs: each leg uses the subnet of the AZ it is in", function()
    local data, r = two_vpcs()
    subnet(r, "subnet-aw2", "vpc-a", "10.0.2.0/24", 2)
    subnet(r, "subnet-at2", "vpc-a", "10.0.255.16/28", 2)
    table.insert(find(r.RouteTables, "RouteTableId", "rtb-aw").Associations, { Main = false, SubnetId = "subnet-aw2" })
    eni(r, "eni-a2", "subnet-aw2", "10.0.2.10", { "sg-a" })
    r.TransitGatewayVpcAttachments[1].SubnetIds = { "subnet-at", "subnet-at2" }
    local q = { src = "eni-a2", dst = "eni-b", port = 3306 }
    local res = trace(data, q)
    assert.is_true(res.reachable, tostring(res))
    -- B has no subnet in AZ 2: the request crosses to AZ 1, and says so
    assert.matches("another AZ", said(res), 1, true)
    -- the reply enters the TGW in B's AZ 1 and leaves through A's AZ 1 subnet: its NACL is checked,
    -- the AZ 2 one is not
    nacl(r, "acl-at1", "vpc-a", { "subnet-at" }, DENY_ALL)
    res = trace(data, q)
    assert.is_false(res.reachable)
    assert.equals("acl-at1", res.blocked_at.component)
    assert.equals("return", res.blocked_at.direction)
    nacl(r, "acl-at2", "vpc-a", { "subnet-at2" }, DENY_ALL)
    find(r.NetworkAcls, "NetworkAclId", "acl-at1").Entries = entries(ALLOW_ALL)
    res = trace(data, q)
    assert.is_false(res.reachable)
    assert.equals("acl-at2", res.blocked_at.component)
    assert.equals("forward", res.blocked_at.direction)
  end)

  it("across a secondary CIDR propagated by the VPC attachment", function()
    local data, r = two_vpcs()
    local b = find(r.Vpcs, "VpcId", "vpc-b")
    b.CidrBlockAssociationSet[2] = { CidrBlock = "100.64.0.0/16", CidrBlockState = { State = "associated" } }
    table.insert(find(r.RouteTables, "RouteTableId", "rtb-main-vpc-b").Routes,
      { DestinationCidrBlock = "100.64.0.0/16", GatewayId = "local", State = "active" })
    table.insert(find(r.RouteTables, "RouteTableId", "rtb-aw").Routes,
      { DestinationCidrBlock = "100.64.0.0/16", TransitGatewayId = TGW, State = "active" })
    subnet(r, "subnet-bx", "vpc-b", "100.64.1.0/24", 1)
    route_table(r, "rtb-bx", "vpc-b", { "subnet-bx" }, { { DestinationCidrBlock = "10.0.0.0/16", TransitGatewayId = TGW,
      State = "active" } })
    eni(r, "eni-bx", "subnet-bx", "100.64.1.10", { "sg-b" })
    local res = trace(data, { src = "eni-a", dst = "eni-bx", port = 3306 })
    assert.is_true(res.reachable, tostring(res))
    assert.matches("100.64.0.0/16 -> tgw-attach-b (propagated", res.forward.hops[7].rule, 1, true)
  end)
end)

-- ---- states ---------------------------------------------------------------------------------

describe("resource states", function()
  it("are one table, every entry citing an AWS page or saying it is not documented", function()
    for kind, t in pairs(states.TABLE) do
      for state, e in pairs(t) do
        assert.is_boolean(e.works, kind .. " " .. state)
        assert.truthy(e.source:match("^https://docs%.aws%.amazon%.com/") or e.source:match("^not documented"),
          kind .. " " .. state)
      end
    end
    assert.has_error(function() states.works("bogus", "x") end)
  end)

  it("a transit gateway or an attachment in modifying forwards, with an assumption saying so", function()
    local data, r = two_vpcs()
    r.TransitGateways[1].State = "modifying"
    local res = trace(data, Q)
    assert.is_true(res.reachable, tostring(res))
    assert.matches("tgw-1: state modifying taken as forwarding (not documented", said(res), 1, true)
    data, r = two_vpcs()
    r.TransitGatewayVpcAttachments[2].State = "modifying"
    r.TransitGatewayAttachments[2].State = "modifying"
    res = trace(data, Q)
    assert.is_true(res.reachable)
    assert.matches("tgw-attach-b: state modifying taken as forwarding", said(res), 1, true)
    r.TransitGatewayAttachments[2].State, r.TransitGatewayVpcAttachments[2].State = "deleting", "deleting"
    assert.equals("BAD_STATE_ATTACHMENT", trace(data, Q).code)
  end)

  -- A database VPC with the primary in AZ 1 (10.1.1.10), its Multi-AZ standby in AZ 2 (10.1.2.10)
  -- and a read replica in AZ 1 (10.1.1.11) in another group.
  local function with_db(status)
    local data, r = two_vpcs()
    subnet(r, "subnet-bw2", "vpc-b", "10.1.2.0/24", 2)
    local function rds_eni(id, sid, ip, group)
      eni(r, id, sid, ip, { group }, { Description = "RDSNetworkInterface", RequesterId = "amazon-rds" })
    end
    sg(r, "sg-replica", "vpc-b", { { "tcp", 3306, 3306, "10.0.0.0/16" } })
    rds_eni("eni-db-primary", "subnet-bw", "10.1.1.20", "sg-b")
    rds_eni("eni-db-standby", "subnet-bw2", "10.1.2.20", "sg-b")
    rds_eni("eni-db-replica", "subnet-bw", "10.1.1.21", "sg-replica")
    r.DBInstances = { { DBInstanceIdentifier = "orders", DBInstanceStatus = status or "available",
      AvailabilityZone = "us-east-1a", SecondaryAvailabilityZone = "us-east-1b", MultiAZ = true,
      VpcSecurityGroups = { { VpcSecurityGroupId = "sg-b", Status = "active" } },
      DBSubnetGroup = { VpcId = "vpc-b", Subnets = {
        { SubnetIdentifier = "subnet-bw", SubnetAvailabilityZone = { Name = "us-east-1a" } },
        { SubnetIdentifier = "subnet-bw2", SubnetAvailabilityZone = { Name = "us-east-1b" } } } },
      Endpoint = { Address = "orders.x.us-east-1.rds.amazonaws.com", Port = 3306 } } }
    return data, r
  end

  it("an RDS instance serves while available, backing-up, storage-optimization, configuring-*", function()
    for _, status in ipairs({ "available", "backing-up", "storage-optimization", "configuring-enhanced-monitoring",
      "configuring-log-exports", "configuring-iam-database-auth" }) do
      local res = trace(with_db(status), { src = "eni-a", dst = "rds:orders", port = 3306 })
      assert.is_true(res.reachable, status)
      assert.not_matches("state " .. status, said(res), 1, true)
    end
  end)

  it("an RDS instance does not serve while stopped, starting, failed, inaccessible-*, incompatible-*...", function()
    for _, status in ipairs({ "stopped", "stopping", "starting", "creating", "deleting", "failed", "rebooting",
      "inaccessible-encryption-credentials", "inaccessible-encryption-credentials-recoverable", "incompatible-network",
      "incompatible-parameters", "restore-error" }) do
      local res = trace(with_db(status), { src = "eni-a", dst = "rds:orders", port = 3306 })
      assert.is_false(res.reachable, status)
      assert.equals("BAD_STATE", res.code)
      assert.equals("DBInstanceStatus is " .. status, res.blocked_at.rule)
    end
  end)

  it("an RDS instance in any other state is reachable, with an assumption naming the state", function()
    for _, status in ipairs({ "modifying", "upgrading", "storage-full", "some-future-state" }) do
      local res = trace(with_db(status), { src = "eni-a", dst = "rds:orders", port = 3306 })
      assert.is_true(res.reachable, status)
      assert.matches("rds:orders: state " .. status .. " taken as serving (not documented)", said(res), 1, true)
    end
  end)

  describe("a database", function()
    -- RDS endpoint DNS: the endpoint resolves to the primary, in the instance's own AZ.
    it("is reached at the primary's ENI in its own AZ, not at the Multi-AZ standby's", function()
      local data, r = with_db()
      -- only the primary shares the group now: the standby is told apart by its AZ alone
      find(r.NetworkInterfaces, "NetworkInterfaceId", "eni-db-replica").Groups = { { GroupId = "sg-replica" } }
      local res = trace(data, { src = "eni-a", dst = "rds:orders", port = 3306 })
      assert.is_true(res.reachable)
      assert.equals("10.1.1.20", res.dst_ip)
      assert.equals("eni-db-primary", res.forward.hops[#res.forward.hops].component)
      assert.not_matches("network interfaces fit", said(res))
    end)

    it("names the candidates when several ENIs fit (a read replica sharing the group and AZ)", function()
      local data, r = with_db()
      find(r.NetworkInterfaces, "NetworkInterfaceId", "eni-db-replica").Groups = { { GroupId = "sg-b" } }
      local res = trace(data, { src = "eni-a", dst = "rds:orders", port = 3306 })
      assert.matches("rds:orders: 2 network interfaces fit (eni-db-primary, eni-db-replica)", said(res), 1, true)
    end)

    it("is reached at the address its endpoint resolved to when the snapshot records it", function()
      local data, r = with_db()
      find(r.NetworkInterfaces, "NetworkInterfaceId", "eni-db-replica").Groups = { { GroupId = "sg-b" } }
      r.ResolvedNames = { { Name = "orders.x.us-east-1.rds.amazonaws.com", Addresses = { "10.1.1.21" } } }
      local res = trace(data, { src = "eni-a", dst = "rds:orders", port = 3306 })
      assert.equals("10.1.1.21", res.dst_ip)
      assert.not_matches("network interfaces fit", said(res))
    end)

    it("is reached at the address a resolver gives for its endpoint", function()
      local services = require "helpers.services"
      local d = services.dnsmasq({ domains = { "amazonaws.com" }, records = {
        { type = "A", name = "orders.x.us-east-1.rds.amazonaws.com", address = "10.1.1.21", ttl = 60 } } })
      local ok, err = pcall(function()
        local data, r = with_db()
        find(r.NetworkInterfaces, "NetworkInterfaceId", "eni-db-replica").Groups = { { GroupId = "sg-b" } }
        local res = trace(data, { src = "eni-a", dst = "rds:orders", port = 3306, resolver = "127.0.0.1:" .. d.port })
        assert.is_true(res.reachable, tostring(res))
        assert.equals("10.1.1.21", res.dst_ip)
        assert.matches("rds:orders: its endpoint orders.x.us-east-1.rds.amazonaws.com resolved to 10.1.1.21 "
          .. "(eni-db-replica)", said(res), 1, true)
      end)
      services.stop_all()
      assert(ok, err)
    end)
  end)
end)

-- ---- Lambda ---------------------------------------------------------------------------------

describe("a Lambda's Hyperplane ENI named directly", function()
  -- nacl-ephemeral-ports.html: Lambda uses client ports 1024-65535, Linux 32768-60999.
  it("is a Lambda source: replies are checked for ports 1024-65535", function()
    local data, r = one_vpc()
    eni(r, "eni-l", "subnet-c", "10.0.1.20", { "sg-c" }, { InterfaceType = "lambda",
      Description = "AWS Lambda VPC ENI-writer", RequesterId = "123456789012:awslambda_1" })
    nacl(r, "acl-s", "vpc-1", { "subnet-s" }, {
      { 100, false, "allow", "0.0.0.0/0" }, { 100, true, "allow", "10.0.1.0/24", "6", 32768, 60999 } })
    local m = load(data)
    assert.is_true(m:trace{ src = "eni-c", dst = "eni-s", port = 3306 }.reachable)
    local res = m:trace{ src = "eni-l", dst = "eni-s", port = 3306 }
    assert.is_false(res.reachable)
    assert.equals("SUBNET_ACL_RESTRICTION", res.code)
    assert.equals("return", res.blocked_at.direction)
    assert.matches("client ports 1024-65535 (Lambda)", said(res), 1, true)
  end)
end)

-- keep the helpers honest: a copy of a world is independent of it
describe("the spec's snapshot builder", function()
  it("makes worlds that load and copy", function()
    local data = one_vpc()
    local other = copy(data)
    other.accounts[A]["us-east-1"].Vpcs = {}
    assert.equals(1, #data.accounts[A]["us-east-1"].Vpcs)
  end)
end)
