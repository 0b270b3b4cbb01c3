-- bench/reach/org.lua: a generated organisation as a snapshot, for bench/reach/run.lua and
-- tests/reach_scale_spec.lua (issue 12, "Scale").
-- N VPCs in 50 accounts (VPC i in account i % 50), one transit gateway shared by the first
-- account, 20 TGW route tables (each attachment associated with one, propagated to all). Per VPC:
-- 4 subnets in 2 AZs, 3 security groups of 10 rules, a custom NACL of 20 entries, a route table of
-- 30 routes (local + 29 to the TGW, towards the VPCs 37*n before and after, so every path has a
-- return route), 2 instances, and with `services`: a Lambda function in 2 subnets (its Hyperplane
-- ENIs listed) and an RDS instance (its ENI listed). Every ENI is in describe-network-interfaces,
-- instances' also under Reservations, as the CLI prints them.
-- With `dual` (issue 17), every VPC is dual stack as AWS makes one: a /56 per VPC, a /64 per subnet,
-- an IPv6 address per ENI, and next to each IPv4 route, NACL entry and security-group range its
-- IPv6 twin (NACL entries numbered one above, 32768 beside 32767); the TGW attachments have
-- Ipv6Support, the Lambda functions Ipv6AllowedForDualStack, the databases NetworkType DUAL.
local org = {}

org.ACCOUNTS, org.REGION, org.TGW = 50, "us-east-1", "tgw-0org00000000000001"
local NACCOUNTS, TGW_TABLES = org.ACCOUNTS, 20
local PEERS = 14 -- VPCs routed to on each side: 29 routes with local = 30

function org.account(i) return string.format("%012d", 200000000000 + i % NACCOUNTS) end
local function ip(n) return string.format("%d.%d.%d.%d", n >> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255) end
local function vpc_net(i) return (10 << 24) + i * 2048 end -- a /21 each: 8,192 VPCs fit in 10/8
local function vpc_cidr(i) return ip(vpc_net(i)) .. "/21" end
local function subnet_id(i, k) return string.format("subnet-%012d%05d", i, k) end
local function sg_id(i, g) return string.format("sg-%012d%05d", i, g) end

-- IPv6: VPC i's /56 and subnet k's /64 in it (2600:1f18::/32 holds them all), and the twins of the
-- IPv4 CIDRs the organisation uses.
local function vpc6_prefix(i) return string.format("2600:1f18:%x:%02x", i >> 8, i & 255) end
local function vpc6_cidr(i) return vpc6_prefix(i) .. "00::/56" end
local function subnet6_prefix(i, k) return string.format("%s%02x", vpc6_prefix(i), k - 1) end
local TWIN = { ["10.0.0.0/8"] = "2600:1f18::/32", ["10.255.0.0/16"] = "2600:1f18:ff00::/40",
  ["10.254.0.0/16"] = "2600:1f18:fe00::/40", ["172.16.0.0/12"] = "fd00::/8", ["0.0.0.0/0"] = "::/0",
  ["192.168.0.0/16"] = "fd00:c0a8::/32" }
local twin_of = {} -- VPC CIDR -> its /56, filled as VPCs are made
local function twin(c) return TWIN[c] or twin_of[c] or error("org: no IPv6 twin for " .. c) end
org.vpc6_cidr = vpc6_cidr

--- The VPC `n`-th on the routed ring of `i` (n in -PEERS..PEERS, not 0): it routes back to i.
function org.peer(nvpc, i, n) return (i + n * 37) % nvpc end
org.PEERS = PEERS

--- Names the trace endpoints of VPC i.
function org.instance(i, k) return string.format("i-%012d%05d", i, k) end
function org.lambda(i) return string.format("lambda:fn-%06d", i) end
function org.rds(i) return string.format("rds:db-%06d", i) end

local function region(acc)
  if not acc then
    acc = { Vpcs = {}, Subnets = {}, RouteTables = {}, NetworkAcls = {}, SecurityGroups = {}, NetworkInterfaces = {},
      Reservations = {}, TransitGateways = {}, TransitGatewayVpcAttachments = {} }
  end
  return acc
end

local function nacl_entries()
  local e = {}
  local function add(number, egress, proto, action, cidr, lo, hi)
    e[#e + 1] = { RuleNumber = number, Egress = egress, Protocol = proto, RuleAction = action, CidrBlock = cidr,
      PortRange = lo and { From = lo, To = hi } or nil }
  end
  for n, port in ipairs({ 22, 80, 443, 3306, 5432, 6379, 8080, 8443 }) do
    add(n * 10, false, "6", "allow", "10.0.0.0/8", port, port)
  end
  add(90, false, "6", "deny", "10.255.0.0/16", 0, 65535)
  add(100, false, "6", "allow", "10.0.0.0/8", 1024, 65535)
  add(110, false, "17", "allow", "10.0.0.0/8", 53, 53)
  add(120, false, "1", "allow", "10.0.0.0/8")
  add(32767, false, "-1", "deny", "0.0.0.0/0")
  add(10, true, "6", "deny", "10.254.0.0/16", 0, 65535)
  add(20, true, "6", "allow", "10.0.0.0/8", 0, 65535)
  add(30, true, "17", "allow", "10.0.0.0/8", 0, 65535)
  add(40, true, "1", "allow", "10.0.0.0/8")
  add(50, true, "-1", "allow", "172.16.0.0/12")
  add(100, true, "-1", "allow", "10.0.0.0/8")
  add(32767, true, "-1", "deny", "0.0.0.0/0")
  assert(#e == 20)
  return e
end

local function eni(id, i, k, host, groups, extra, dual)
  local sid = subnet_id(i, k)
  local addr = ip(vpc_net(i) + (k - 1) * 512 + host)
  local n = { NetworkInterfaceId = id, SubnetId = sid, VpcId = string.format("vpc-%017d", i),
    AvailabilityZone = "us-east-1" .. ((k - 1) % 2 == 0 and "a" or "b"), PrivateIpAddress = addr,
    PrivateIpAddresses = { { Primary = true, PrivateIpAddress = addr } }, InterfaceType = "interface",
    Status = "in-use", OwnerId = org.account(i), Description = "",
    Ipv6Addresses = dual and { { Ipv6Address = string.format("%s::%x", subnet6_prefix(i, k), host) } } or nil }
  -- (no empty list: cjson would write it as an object)
  for _, g in ipairs(groups) do
    n.Groups = n.Groups or {}
    n.Groups[#n.Groups + 1] = { GroupId = sg_id(i, g), GroupName = sg_id(i, g) }
  end
  for key, v in pairs(extra or {}) do n[key] = v end
  return n
end

-- The IPv6 twins of a list of NACL entries (see the module comment).
local function nacl_twins(entries)
  local n = #entries
  for i = 1, n do
    local e = entries[i]
    entries[#entries + 1] = { RuleNumber = e.RuleNumber + 1, Egress = e.Egress, RuleAction = e.RuleAction,
      Protocol = e.Protocol == "1" and "58" or e.Protocol, Ipv6CidrBlock = twin(e.CidrBlock), PortRange = e.PortRange }
  end
  return entries
end

-- Each permission's Ipv6Ranges: the twins of its IpRanges.
local function sg_twins(perms)
  for _, p in ipairs(perms) do
    if p.IpRanges then
      p.Ipv6Ranges = {}
      for _, r in ipairs(p.IpRanges) do p.Ipv6Ranges[#p.Ipv6Ranges + 1] = { CidrIpv6 = twin(r.CidrIp) } end
    end
  end
  return perms
end

--- The snapshot in the table form, `{accounts = {[id] = {[region] = {Key = array}}}}`.
-- @tparam integer nvpc VPCs
-- @tparam boolean services with a Lambda function and an RDS instance per VPC
-- @tparam[opt] boolean dual dual stack (see the module comment)
function org.generate(nvpc, services, dual)
  if dual then
    for i = 0, nvpc - 1 do twin_of[vpc_cidr(i)] = vpc6_cidr(i) end
  end
  local accounts = {}
  local function res(i)
    local a = org.account(i)
    accounts[a] = accounts[a] or { [org.REGION] = region() }
    return accounts[a][org.REGION]
  end
  local owner = res(0)
  owner.TransitGatewayRouteTables, owner.TransitGatewayPropagations, owner.TransitGatewayAttachments = {}, {}, {}
  for t = 1, TGW_TABLES do
    local id = string.format("tgw-rtb-%017d", t)
    owner.TransitGatewayRouteTables[t] = { TransitGatewayRouteTableId = id, TransitGatewayId = org.TGW, State = "available" }
    owner.TransitGatewayPropagations[t] = { TransitGatewayRouteTableId = id, TransitGatewayRouteTablePropagations = {} }
  end
  for a = 0, math.min(nvpc, NACCOUNTS) - 1 do
    local r = res(a)
    r.TransitGateways[1] = { TransitGatewayId = org.TGW, OwnerId = org.account(0), State = "available",
      Options = { DnsSupport = "enable", SecurityGroupReferencingSupport = "disable" } }
    r.AvailabilityZones = { { ZoneName = "us-east-1a", ZoneId = "use1-az1" }, { ZoneName = "us-east-1b", ZoneId = "use1-az2" } }
    if services then r.Functions, r.DBInstances = {}, {} end
  end
  for i = 0, nvpc - 1 do
    local r, acct = res(i), org.account(i)
    local vid = string.format("vpc-%017d", i)
    r.Vpcs[#r.Vpcs + 1] = { VpcId = vid, CidrBlock = vpc_cidr(i), OwnerId = acct, State = "available",
      CidrBlockAssociationSet = { { CidrBlock = vpc_cidr(i), CidrBlockState = { State = "associated" } } },
      Ipv6CidrBlockAssociationSet = dual and { { Ipv6CidrBlock = vpc6_cidr(i), Ipv6Pool = "Amazon",
        Ipv6CidrBlockState = { State = "associated" } } } or nil }
    local subnets = {}
    for k = 1, 4 do
      subnets[k] = subnet_id(i, k)
      r.Subnets[#r.Subnets + 1] = { SubnetId = subnets[k], VpcId = vid, CidrBlock = ip(vpc_net(i) + (k - 1) * 512) .. "/23",
        AvailabilityZone = "us-east-1" .. ((k - 1) % 2 == 0 and "a" or "b"), AvailabilityZoneId = "use1-az" .. ((k - 1) % 2 + 1),
        OwnerId = acct, State = "available", Ipv6CidrBlockAssociationSet = dual and { {
          Ipv6CidrBlock = subnet6_prefix(i, k) .. "::/64", Ipv6CidrBlockState = { State = "associated" } } } or nil }
    end
    local routes = { { DestinationCidrBlock = vpc_cidr(i), GatewayId = "local", Origin = "CreateRouteTable", State = "active" } }
    for n = 1, 2 * PEERS + 1 do
      local other = org.peer(nvpc, i, (n + 1) // 2 * (n % 2 == 1 and 1 or -1))
      if n == 2 * PEERS + 1 then other = nil end
      routes[#routes + 1] = { DestinationCidrBlock = other and vpc_cidr(other) or "192.168.0.0/16", Origin = "CreateRoute",
        TransitGatewayId = org.TGW, State = "active" }
    end
    if dual then
      for n = 1, #routes do
        local t = {}
        for key, v in pairs(routes[n]) do t[key] = v end
        t.DestinationCidrBlock, t.DestinationIpv6CidrBlock = nil, twin(routes[n].DestinationCidrBlock)
        routes[#routes + 1] = t
      end
    end
    local assoc = { { Main = true, RouteTableAssociationId = string.format("rtbassoc-%012d%05d", i, 0),
      AssociationState = { State = "associated" } } }
    for k, sid in ipairs(subnets) do
      assoc[#assoc + 1] = { Main = false, SubnetId = sid, RouteTableAssociationId = string.format("rtbassoc-%012d%05d", i, k),
        AssociationState = { State = "associated" } }
    end
    r.RouteTables[#r.RouteTables + 1] = { RouteTableId = string.format("rtb-%017d", i), VpcId = vid, OwnerId = acct,
      Associations = assoc, Routes = routes }
    local nassoc = {}
    for k, sid in ipairs(subnets) do
      nassoc[k] = { NetworkAclAssociationId = string.format("aclassoc-%012d%05d", i, k), SubnetId = sid }
    end
    r.NetworkAcls[#r.NetworkAcls + 1] = { NetworkAclId = string.format("acl-%017d", i), VpcId = vid, IsDefault = false,
      OwnerId = acct, Associations = nassoc, Entries = dual and nacl_twins(nacl_entries()) or nacl_entries() }
    for g = 1, 3 do
      local perms = {
        { IpProtocol = "tcp", FromPort = 443, ToPort = 443, IpRanges = { { CidrIp = "10.0.0.0/8" } } },
        { IpProtocol = "tcp", FromPort = 5432, ToPort = 5432, IpRanges = { { CidrIp = "10.0.0.0/8" } } },
        { IpProtocol = "-1", UserIdGroupPairs = { { GroupId = sg_id(i, g), UserId = acct } } },
      }
      for n = 1, 6 do
        perms[#perms + 1] = { IpProtocol = "tcp", FromPort = 8000 + n, ToPort = 8000 + n,
          IpRanges = { { CidrIp = vpc_cidr(org.peer(nvpc, i, n)) } } }
      end
      r.SecurityGroups[#r.SecurityGroups + 1] = { GroupId = sg_id(i, g), GroupName = sg_id(i, g), VpcId = vid, OwnerId = acct,
        Description = "bench", IpPermissions = dual and sg_twins(perms) or perms,
        IpPermissionsEgress = { { IpProtocol = "-1", IpRanges = { { CidrIp = "0.0.0.0/0" } },
          Ipv6Ranges = dual and { { CidrIpv6 = "::/0" } } or nil } } }
    end
    for k = 1, 2 do
      local n = eni(string.format("eni-%012d%05d", i, k), i, k, 10, { 1, 2 },
        { Attachment = { DeviceIndex = 0, InstanceId = org.instance(i, k), Status = "attached" } }, dual)
      r.NetworkInterfaces[#r.NetworkInterfaces + 1] = n
      r.Reservations[#r.Reservations + 1] = { ReservationId = string.format("r-%012d%05d", i, k), OwnerId = acct,
        Instances = { { InstanceId = org.instance(i, k), SubnetId = n.SubnetId, VpcId = vid,
          PrivateIpAddress = n.PrivateIpAddress, State = { Name = "running" }, NetworkInterfaces = { n } } } }
    end
    for k = 1, 2 do -- the TGW attachment's ENIs
      r.NetworkInterfaces[#r.NetworkInterfaces + 1] = eni(string.format("eni-%012d%05d", i, 10 + k), i, k, 200, {},
        { InterfaceType = "transit_gateway", RequesterId = "amazon-transit-gateway", RequesterManaged = true,
          Description = "Network Interface for Transit Gateway Attachment" }, dual)
    end
    if services then
      local fname = org.lambda(i):sub(8)
      for k = 3, 4 do
        r.NetworkInterfaces[#r.NetworkInterfaces + 1] = eni(string.format("eni-%012d%05d", i, 20 + k), i, k, 30, { 1 },
          { InterfaceType = "lambda", RequesterId = "AROAEXAMPLE:" .. fname, RequesterManaged = true,
            Description = "AWS Lambda VPC ENI-" .. fname }, dual)
      end
      r.Functions[#r.Functions + 1] = { FunctionName = fname, Runtime = "python3.12", State = "Active",
        VpcConfig = { VpcId = vid, SubnetIds = { subnets[3], subnets[4] }, SecurityGroupIds = { sg_id(i, 1) },
          Ipv6AllowedForDualStack = dual or nil } }
      r.NetworkInterfaces[#r.NetworkInterfaces + 1] = eni(string.format("eni-%012d%05d", i, 30), i, 3, 40, { 3 },
        { RequesterId = "amazon-rds", RequesterManaged = true, Description = "RDSNetworkInterface" }, dual)
      local dbid = org.rds(i):sub(5)
      r.DBInstances[#r.DBInstances + 1] = { DBInstanceIdentifier = dbid, Engine = "postgres",
        DBInstanceStatus = "available", AvailabilityZone = "us-east-1a", PubliclyAccessible = false, MultiAZ = false,
        NetworkType = dual and "DUAL" or nil,
        Endpoint = { Address = dbid .. ".cexample.us-east-1.rds.amazonaws.com", Port = 5432 },
        VpcSecurityGroups = { { VpcSecurityGroupId = sg_id(i, 3), Status = "active" } },
        DBSubnetGroup = { DBSubnetGroupName = "db-" .. i, VpcId = vid, SubnetGroupStatus = "Complete",
          Subnets = { { SubnetIdentifier = subnets[3], SubnetAvailabilityZone = { Name = "us-east-1a" } },
                      { SubnetIdentifier = subnets[4], SubnetAvailabilityZone = { Name = "us-east-1b" } } } } }
    end
    local aid = string.format("tgw-attach-%012d", i)
    r.TransitGatewayVpcAttachments[#r.TransitGatewayVpcAttachments + 1] = { TransitGatewayAttachmentId = aid,
      TransitGatewayId = org.TGW, VpcId = vid, VpcOwnerId = acct, State = "available", SubnetIds = { subnets[1], subnets[2] },
      Options = { DnsSupport = "enable", ApplianceModeSupport = "disable", Ipv6Support = dual and "enable" or nil } }
    local tid = owner.TransitGatewayRouteTables[i % TGW_TABLES + 1].TransitGatewayRouteTableId
    owner.TransitGatewayAttachments[#owner.TransitGatewayAttachments + 1] = { TransitGatewayAttachmentId = aid,
      TransitGatewayId = org.TGW, TransitGatewayOwnerId = org.account(0), ResourceOwnerId = acct, ResourceType = "vpc",
      ResourceId = vid, State = "available", Association = { TransitGatewayRouteTableId = tid, State = "associated" } }
    for t = 1, TGW_TABLES do
      local props = owner.TransitGatewayPropagations[t].TransitGatewayRouteTablePropagations
      props[#props + 1] = { TransitGatewayAttachmentId = aid, ResourceId = vid, ResourceType = "vpc", State = "enabled" }
    end
  end
  return { accounts = accounts }
end

--- Writes `data` (the table form) as a snapshot folder: `<dir>/aws_configs/accounts/<id>/<region>/<Key>.json`,
-- compact JSON, one file per key. Returns the bytes written. `dir` must exist and be empty.
function org.write(data, dir)
  local cjson = require "cjson"
  local bytes = 0
  for account, regions in pairs(data.accounts) do
    for rname, r in pairs(regions) do
      local folder = string.format("%s/aws_configs/accounts/%s/%s", dir, account, rname)
      assert(os.execute("mkdir -p '" .. folder .. "'"))
      for key, items in pairs(r) do
        local text = cjson.encode({ [key] = items })
        local f = assert(io.open(folder .. "/" .. key .. ".json", "wb"))
        assert(f:write(text))
        f:close()
        bytes = bytes + #text
      end
    end
  end
  return bytes
end

return org
