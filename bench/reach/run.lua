-- bench/reach: the evaluator at enterprise scale, on one core.
-- A generated model (1,000 VPCs, 5,000 subnets, 50,000 routes, 10,000 security groups with
-- 100,000 rules, 20 TGW route tables) in the table form reach.load accepts; measured: load time,
-- traces per second from Lua one at a time, pairs per second through matrix. Each figure is
-- printed with its ratio to the project's target. There is no local peer to run side by side:
-- Batfish needs its JVM service and Reachability Analyzer is a paid cloud API taking minutes
-- per analysis; the ratios are against the targets, and trace against matrix. A figure that
-- misses its target is measured once more; missed again, the run exits 1.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("AWSNET_BUILD") or "build") .. "/?.so;" .. package.cpath
local reach = require "awsnet.reach"

local NVPC, SUBNETS, SGS, SG_RULES, ROUTES_PER_TABLE, TGW_TABLES = 1000, 5, 10, 10, 25, 20
local ACCOUNT, REGION, TGW = "111111111111", "us-east-1", "tgw-0bench000000000001"

local function ip(n) return string.format("%d.%d.%d.%d", n >> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255) end
local BASE = 10 << 24
local function vpc_net(i) return BASE + i * 4096 end -- a /20 each
local function vpc_cidr(i) return ip(vpc_net(i)) .. "/20" end
local function peer(i, n) return (i + n * 37) % NVPC end

local function generate()
  local r = { Vpcs = {}, Subnets = {}, RouteTables = {}, NetworkAcls = {}, SecurityGroups = {},
    NetworkInterfaces = {}, TransitGateways = {}, TransitGatewayVpcAttachments = {}, TransitGatewayAttachments = {},
    TransitGatewayRouteTables = {}, TransitGatewayPropagations = {} }
  r.TransitGateways[1] = { TransitGatewayId = TGW, OwnerId = ACCOUNT, State = "available", Options = {} }
  for t = 1, TGW_TABLES do
    local id = string.format("tgw-rtb-%017d", t)
    r.TransitGatewayRouteTables[t] = { TransitGatewayRouteTableId = id, TransitGatewayId = TGW, State = "available" }
    r.TransitGatewayPropagations[t] = { TransitGatewayRouteTableId = id, TransitGatewayRouteTablePropagations = {} }
  end
  for i = 0, NVPC - 1 do
    local vid = string.format("vpc-%017d", i)
    r.Vpcs[#r.Vpcs + 1] = { VpcId = vid, CidrBlock = vpc_cidr(i), OwnerId = ACCOUNT, State = "available" }
    local subnets = {}
    for k = 0, SUBNETS - 1 do
      local sid = string.format("subnet-%012d%05d", i, k)
      subnets[#subnets + 1] = sid
      r.Subnets[#r.Subnets + 1] = { SubnetId = sid, VpcId = vid, CidrBlock = ip(vpc_net(i) + k * 512) .. "/23",
        AvailabilityZone = "us-east-1" .. string.char(97 + k % 3), AvailabilityZoneId = "use1-az" .. (k % 3 + 1) }
    end
    for t = 0, 1 do
      local routes = { { DestinationCidrBlock = vpc_cidr(i), GatewayId = "local", Origin = "CreateRouteTable",
        State = "active" } }
      -- both ways: the VPCs 37*n before and after this one, so every path has a return route
      for n = 1, ROUTES_PER_TABLE - 1 do
        local other = peer(i, (n + 1) // 2 * (n % 2 == 1 and 1 or -1))
        routes[#routes + 1] = { DestinationCidrBlock = vpc_cidr(other), TransitGatewayId = TGW, Origin = "CreateRoute",
          State = "active" }
      end
      local assoc = {}
      if t == 0 then
        assoc[1] = { Main = true }
      else
        for _, sid in ipairs(subnets) do assoc[#assoc + 1] = { Main = false, SubnetId = sid } end
      end
      r.RouteTables[#r.RouteTables + 1] = { RouteTableId = string.format("rtb-%012d%05d", i, t), VpcId = vid,
        Associations = assoc, Routes = routes }
    end
    local entries = {}
    for e, port in ipairs({ 22, 443, 3306, 5432 }) do
      entries[#entries + 1] = { RuleNumber = e * 10, Egress = false, Protocol = "6", RuleAction = "allow",
        CidrBlock = "10.0.0.0/8", PortRange = { From = port, To = port } }
    end
    entries[#entries + 1] = { RuleNumber = 100, Egress = false, Protocol = "6", RuleAction = "allow",
      CidrBlock = "10.0.0.0/8", PortRange = { From = 1024, To = 65535 } }
    entries[#entries + 1] = { RuleNumber = 100, Egress = true, Protocol = "-1", RuleAction = "allow", CidrBlock = "10.0.0.0/8" }
    entries[#entries + 1] = { RuleNumber = 32767, Egress = false, Protocol = "-1", RuleAction = "deny", CidrBlock = "0.0.0.0/0" }
    entries[#entries + 1] = { RuleNumber = 32767, Egress = true, Protocol = "-1", RuleAction = "deny", CidrBlock = "0.0.0.0/0" }
    local assoc = {}
    for _, sid in ipairs(subnets) do assoc[#assoc + 1] = { SubnetId = sid } end
    r.NetworkAcls[#r.NetworkAcls + 1] = { NetworkAclId = string.format("acl-%017d", i), VpcId = vid, IsDefault = true,
      Associations = assoc, Entries = entries }
    local groups = {}
    for g = 0, SGS - 1 do
      local gid = string.format("sg-%012d%05d", i, g)
      groups[#groups + 1] = gid
      local perms = {}
      for k = 1, SG_RULES - 2 do
        perms[#perms + 1] = { IpProtocol = "tcp", FromPort = 8000 + k, ToPort = 8000 + k,
          IpRanges = { { CidrIp = vpc_cidr(peer(i, k)) } } }
      end
      perms[#perms + 1] = { IpProtocol = "tcp", FromPort = 443, ToPort = 443, IpRanges = { { CidrIp = "10.0.0.0/8" } } }
      r.SecurityGroups[#r.SecurityGroups + 1] = { GroupId = gid, VpcId = vid, GroupName = gid, IpPermissions = perms,
        IpPermissionsEgress = { { IpProtocol = "-1", IpRanges = { { CidrIp = "0.0.0.0/0" } } } } }
    end
    for k, sid in ipairs(subnets) do
      local addr = ip(vpc_net(i) + (k - 1) * 512 + 10)
      r.NetworkInterfaces[#r.NetworkInterfaces + 1] = { NetworkInterfaceId = string.format("eni-%012d%05d", i, k),
        SubnetId = sid, VpcId = vid, PrivateIpAddress = addr, InterfaceType = "interface",
        Groups = { { GroupId = groups[k] }, { GroupId = groups[k + 1] } } }
    end
    local aid = string.format("tgw-attach-%012d", i)
    r.TransitGatewayVpcAttachments[#r.TransitGatewayVpcAttachments + 1] = { TransitGatewayAttachmentId = aid,
      TransitGatewayId = TGW, VpcId = vid, State = "available", SubnetIds = { subnets[1], subnets[2], subnets[3] } }
    r.TransitGatewayAttachments[#r.TransitGatewayAttachments + 1] = { TransitGatewayAttachmentId = aid,
      TransitGatewayId = TGW, ResourceType = "vpc", ResourceId = vid, State = "available",
      Association = { State = "associated", TransitGatewayRouteTableId = r.TransitGatewayRouteTables[i % TGW_TABLES + 1]
        .TransitGatewayRouteTableId } }
    for t = 1, TGW_TABLES do
      local props = r.TransitGatewayPropagations[t].TransitGatewayRouteTablePropagations
      props[#props + 1] = { TransitGatewayAttachmentId = aid, ResourceId = vid, ResourceType = "vpc", State = "enabled" }
    end
  end
  return { accounts = { [ACCOUNT] = { [REGION] = r } } }
end

-- Prints a figure against its target; returns whether the target is met.
local function report(what, value, unit, target, higher_is_better)
  local ratio = higher_is_better and value / target or target / value
  print(string.format("%-34s %12.3f %-9s target %-10s ratio %.2f %s", what, value, unit,
    (higher_is_better and ">= " or "<= ") .. target, ratio, ratio >= 1 and "ok" or "MISSED"))
  return ratio >= 1
end

-- Generates the input and loads it; returns the seconds reach.load took and the model.
local function measure_load()
  local data = generate()
  collectgarbage()
  local t0 = os.clock()
  local model = assert(reach.load(data))
  local seconds = os.clock() - t0
  -- the model keeps nothing of its input: let it go, as a script that loaded a snapshot would
  data = nil -- luacheck: ignore 311
  collectgarbage()
  return seconds, model
end

local load_s, model = measure_load()
local c = model.counts
print(string.format("model: %d VPCs, %d subnets, %d routes, %d security groups with %d rules, %d TGW route tables "
  .. "(%d TGW routes), %d ENIs", c.vpcs, c.subnets, c.routes, c.security_groups, c.security_group_rules,
  c.tgw_route_tables, c.tgw_routes, c.network_interfaces))
assert(c.vpcs == 1000 and c.subnets == 5000 and c.routes == 50000 and c.security_groups == 10000
  and c.security_group_rules >= 100000 and c.tgw_route_tables == 20)

-- Sources in a subnet with an attachment ENI in its AZ; destinations in a VPC it routes to.
local queries = {}
for i = 0, 999 do
  local j = peer(i, 1 + i % 5)
  queries[#queries + 1] = { src = string.format("eni-%012d%05d", i, 1 + i % 3),
    dst = string.format("eni-%012d%05d", j, 1 + (i + 1) % 3), protocol = "tcp", port = 443 }
end
local reachable = 0
for _, q in ipairs(queries) do
  local r = assert(model:trace(q))
  if r.reachable then reachable = reachable + 1 end
end
assert(reachable == #queries, "bench traces should all be reachable, got " .. reachable)

-- Best of ROUNDS runs of N traces each (as timeit does): a busy moment of the machine only
-- adds time, so the fastest run is the closest to what the code costs.
local N, ROUNDS = 100000, 5
local function measure_trace()
  local rate = 0
  for _ = 1, ROUNDS do
    local t0 = os.clock()
    for n = 1, N do
      local r = model:trace(queries[n % #queries + 1])
      if not r.reachable then error("unexpected") end
    end
    rate = math.max(rate, N / (os.clock() - t0))
  end
  return rate
end
local trace_rate = measure_trace()

local sources, destinations = {}, {}
for i = 0, 999 do
  sources[#sources + 1] = string.format("eni-%012d%05d", i, 1)
  destinations[#destinations + 1] = string.format("eni-%012d%05d", (i * 7) % 1000, 2)
end
local ok_pairs
local function measure_matrix()
  local t0 = os.clock()
  local mx = assert(model:matrix{ sources = sources, destinations = destinations, protocol = "tcp", port = 443 })
  local rate = (#sources * #destinations) / (os.clock() - t0)
  ok_pairs = 0
  for _, row in ipairs(mx.reachable) do for _, v in ipairs(row) do if v then ok_pairs = ok_pairs + 1 end end end
  return rate
end
local matrix_rate = measure_matrix()

print(string.format("matrix: %d of %d pairs reachable", ok_pairs, #sources * #destinations))
local load_ok = report("load (s)", load_s, "s", 2, false)
local trace_ok = report("trace from Lua, one at a time", trace_rate, "traces/s", 200000, true)
local matrix_ok = report("matrix", matrix_rate, "pairs/s", 2000000, true)
print(string.format("matrix per pair vs trace from Lua: %.1fx faster", matrix_rate / trace_rate))

-- Each missed figure once more (the load last: it replaces the model the others use).
if not (load_ok and trace_ok and matrix_ok) then
  print("reach: measuring the missed figures again")
  if not trace_ok then
    trace_ok = report("trace from Lua, one at a time (re-run)", measure_trace(), "traces/s", 200000, true)
  end
  if not matrix_ok then matrix_ok = report("matrix (re-run)", measure_matrix(), "pairs/s", 2000000, true) end
  if not load_ok then
    model:close()
    model = nil
    collectgarbage()
    local seconds, again = measure_load()
    again:close()
    load_ok = report("load (s) (re-run)", seconds, "s", 2, false)
  end
  if not (load_ok and trace_ok and matrix_ok) then
    print("reach: target(s) missed twice")
    os.exit(1)
  end
end
