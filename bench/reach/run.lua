-- bench/reach: the evaluator at enterprise scale, on one core.
-- A generated model (1,000 VPCs, 5,000 subnets, 50,000 routes, 10,000 security groups with
-- 100,000 rules, 20 TGW route tables) in the table form reach.load accepts; measured: load time,
-- traces per second from Lua one at a time, pairs per second through matrix. Each figure is
-- printed with its ratio to the project's target. There is no local peer to run side by side:
-- Batfish needs its JVM service and Reachability Analyzer is a paid cloud API taking minutes
-- per analysis; the ratios are against the targets, and trace against matrix. A figure that
-- misses its target is measured once more; missed again, the run exits 1.
-- Then the generated organisations of issue 12 (bench/reach/org.lua; see "organisations" below):
-- load with and without Lambdas and databases, the slope against VPC count, peak memory against
-- the snapshot's JSON, and traces at 5,000 VPCs; then the same organisation in dual stack
-- (issue 17): IPv6 traces against IPv4 traces on one model, printed as their cost ratio. And the
-- blocked path's cost against a plain failed trace (bench/reach/blocked.lua;
-- `AWSNET_BENCH_REACH=blocked` runs that section alone).
-- A process that only loads a snapshot folder (`run.lua --load DIR`): prints the CPU seconds of
-- reach.load and the process's peak resident memory (VmHWM, kB), for the organisation figures;
-- `--bare`: the peak of the interpreter alone, before anything is loaded.
local function vm_hwm()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s*(%d+)")
    if kb then return tonumber(kb) end
  end
end
if arg[1] == "--bare" then
  print(vm_hwm())
  os.exit(0)
end

package.path = "lua/?.lua;lua/?/init.lua;bench/?.lua;" .. package.path
package.cpath = (os.getenv("AWSNET_BUILD") or "build") .. "/?.so;" .. package.cpath
local reach = require "awsnet.reach"

if arg[1] == "--load" then
  local t0 = os.clock()
  local m = assert(reach.load(arg[2]))
  print(string.format("%.6f %d %d", os.clock() - t0, vm_hwm(), m.counts.vpcs))
  os.exit(0)
end

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

-- The blocked path against a plain failed trace (issue 18). AWSNET_BENCH_REACH=blocked runs this
-- section alone.
local blocked_ok = require("reach.blocked").run(model, report, {
  eni = function(vpc, k) return string.format("eni-%012d%05d", vpc, k) end, peer = peer })
if os.getenv("AWSNET_BENCH_REACH") == "blocked" then
  model:close()
  os.exit(blocked_ok and 0 or 1)
end

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
if not blocked_ok then
  print("reach: the blocked-path target missed twice")
  os.exit(1)
end
model:close()
model = nil -- luacheck: ignore 311
collectgarbage()

-- ---- organisations (issue 12, "Scale") ----------------------------------------------------------
-- bench/reach/org.lua's organisations of 1,000, 2,500 and 5,000 VPCs in 50 accounts, with and
-- without a Lambda function and an RDS instance per VPC, written as snapshot folders (compact
-- JSON) under a temporary folder removed at the end, loaded by reach.load through the real
-- folder path, each load in a process of its own: best of 3 CPU times; peak memory (VmHWM of
-- that process minus a bare interpreter's) against the snapshot's size. Targets: load with the
-- services <= 1.3x without; log-log slope of load time against VPCs <= 1.15; peak memory <= 2x
-- the JSON; traces from Lua at 5,000 VPCs >= 200,000/s (random Lambda/instance sources to
-- instance/RDS destinations in the VPCs they route to).
local org = require "reach.org"
local SIZES, LOAD_RUNS = { 1000, 2500, 5000 }, 3
local LUA = os.getenv("LUA") or "lua5.4"
local tmp = assert(io.popen("mktemp -d /tmp/awsnet-bench-reach.XXXXXX")):read("l")
assert(tmp and tmp:match("^/tmp/awsnet%-bench%-reach%."), "mktemp failed")
local function cleanup() os.execute("rm -rf '" .. tmp .. "'") end

local function run_load(dir)
  local p = assert(io.popen(string.format("%s bench/reach/run.lua --load '%s'", LUA, dir)))
  local out = p:read("a")
  p:close()
  local cpu, hwm = out:match("^(%S+) (%d+)")
  if not cpu then cleanup() error("load process failed: " .. out) end
  return tonumber(cpu), tonumber(hwm)
end
local bare = (function()
  local p = assert(io.popen(LUA .. " bench/reach/run.lua --bare"))
  local v = tonumber(p:read("a"))
  p:close()
  return v
end)()

local dirs, json_bytes = {}, {}
for _, n in ipairs(SIZES) do
  for _, services in ipairs({ true, false }) do
    local dir = string.format("%s/%d-%s", tmp, n, services and "services" or "plain")
    assert(os.execute("mkdir -p '" .. dir .. "'"))
    local data = org.generate(n, services)
    json_bytes[dir] = org.write(data, dir)
    data = nil -- luacheck: ignore 311
    collectgarbage()
    dirs[#dirs + 1] = { n = n, services = services, dir = dir }
  end
end

local org_load, peak = {}, {}
local function measure_loads(which)
  for _, d in ipairs(dirs) do
    if not which or which(d) then
      local best, hwm = math.huge, 0
      for _ = 1, LOAD_RUNS do
        local cpu, kb = run_load(d.dir)
        best, hwm = math.min(best, cpu), math.max(hwm, kb)
      end
      -- a re-run keeps the better of its figures and the first run's
      local ratio = (hwm - bare) * 1024 / json_bytes[d.dir]
      org_load[d.dir] = math.min(org_load[d.dir] or math.huge, best)
      peak[d.dir] = math.min(peak[d.dir] or math.huge, ratio)
    end
  end
end
measure_loads()

local function dir_of(n, services) return string.format("%s/%d-%s", tmp, n, services and "services" or "plain") end
local function slope()
  -- least squares of log(time) on log(VPCs)
  local sx, sy, sxx, sxy, k = 0, 0, 0, 0, #SIZES
  for _, n in ipairs(SIZES) do
    local x, y = math.log(n), math.log(org_load[dir_of(n, true)])
    sx, sy, sxx, sxy = sx + x, sy + y, sxx + x * x, sxy + x * y
  end
  return (k * sxy - sx * sy) / (k * sxx - sx * sx)
end
local function worst(f)
  local w = -math.huge
  for _, n in ipairs(SIZES) do w = math.max(w, f(n)) end
  return w
end
local function services_ratio(n) return org_load[dir_of(n, true)] / org_load[dir_of(n, false)] end
local function memory_ratio(n) return peak[dir_of(n, true)] end

print(string.format("organisations: 50 accounts; per VPC 4 subnets, 3 groups of 10 rules, a NACL of 20 entries, "
  .. "30 routes, 2 instances (+ a Lambda in 2 subnets and an RDS instance); bare interpreter %d kB", bare))
print(string.format("%6s %12s %12s %8s %10s %10s %9s", "VPCs", "load svc (s)", "load (s)", "ratio", "JSON (MB)",
  "peak (MB)", "peak/JSON"))
local function table_rows()
  for _, n in ipairs(SIZES) do
    local d = dir_of(n, true)
    print(string.format("%6d %12.3f %12.3f %8.2f %10.1f %10.1f %9.2f", n, org_load[d], org_load[dir_of(n, false)],
      services_ratio(n), json_bytes[d] / 1e6, peak[d] * json_bytes[d] / 1e6, peak[d]))
  end
end
table_rows()

-- traces at the largest size, from Lua one at a time
local NT = SIZES[#SIZES]
local big = assert(reach.load(dir_of(NT, true)))
local rng_state = 12345
local function rnd(k) -- a fixed LCG: the same queries every run
  rng_state = (rng_state * 1103515245 + 12345) % 2147483648
  return rng_state % k
end
local oq = {}
for q = 1, 10000 do
  local i = rnd(NT)
  local side = rnd(2 * org.PEERS) - org.PEERS
  local j = org.peer(NT, i, side >= 0 and side + 1 or side)
  local src = rnd(2) == 0 and org.lambda(i) or org.instance(i, 1 + rnd(2))
  local to_db = rnd(2) == 0
  oq[q] = { src = src, dst = to_db and org.rds(j) or org.instance(j, 1 + rnd(2)), protocol = "tcp",
    port = to_db and 5432 or 443 }
end
local oreach = 0
for _, q in ipairs(oq) do if assert(big:trace(q)).reachable then oreach = oreach + 1 end end
local function measure_org_trace()
  local rate = 0
  for _ = 1, ROUNDS do
    local t0 = os.clock()
    for n = 1, N do big:trace(oq[n % #oq + 1]) end
    rate = math.max(rate, N / (os.clock() - t0))
  end
  return rate
end
local org_rate = measure_org_trace()
print(string.format("traces at %d VPCs: %d of %d sample queries reachable", NT, oreach, #oq))

local function org_report(again)
  local tag = again and " (re-run)" or ""
  local ok = report("load with services / without" .. tag, worst(services_ratio), "x (worst)", 1.3, false)
  ok = report("load time vs VPCs, log-log slope" .. tag, slope(), "", 1.15, false) and ok
  ok = report("peak memory / snapshot JSON" .. tag, worst(memory_ratio), "x (worst)", 2, false) and ok
  return report(string.format("trace from Lua at %d VPCs%s", NT, tag), org_rate, "traces/s", 200000, true) and ok
end
-- (a miss is reported after the dual-stack figures, which are measured in any case)
local org_missed = false
if not org_report(false) then
  print("reach: measuring the organisation figures again")
  org_rate = math.max(org_rate, measure_org_trace())
  measure_loads()
  table_rows()
  org_missed = not org_report(true)
end
big:close()
big = nil -- luacheck: ignore 311
collectgarbage()

-- ---- dual stack (issue 17) -----------------------------------------------------------------------
-- The organisation of NT VPCs in dual stack (bench/reach/org.lua, `dual`: every VPC, subnet, ENI,
-- route, NACL entry and group rule has its IPv6 twin), written and loaded as the others; the same
-- random queries traced in IPv4 and in IPv6 (family = "ipv6") on that one model, side by side: the
-- rounds alternate the two families, best of ROUNDS each. Target: an IPv6 trace costs at most 1.3x
-- an IPv4 trace (the ratio of the IPv4 rate to the IPv6 rate).
local dual_dir = string.format("%s/%d-dual", tmp, NT)
assert(os.execute("mkdir -p '" .. dual_dir .. "'"))
do
  local data = org.generate(NT, true, true)
  org.write(data, dual_dir)
end
collectgarbage()
local dual = assert(reach.load(dual_dir))
local oq6 = {}
for q, v in ipairs(oq) do
  oq6[q] = { src = v.src, dst = v.dst, protocol = v.protocol, port = v.port, family = "ipv6" }
end
local reach4, reach6 = 0, 0
for q = 1, #oq do
  local r4, r6 = assert(dual:trace(oq[q])), assert(dual:trace(oq6[q]))
  if r4.reachable then reach4 = reach4 + 1 end
  if r6.reachable then reach6 = reach6 + 1 end
  assert(r4.reachable == r6.reachable, "dual stack: the families disagree on " .. oq[q].src .. " -> " .. oq[q].dst)
end
print(string.format("dual stack at %d VPCs: %d (IPv4) and %d (IPv6) of %d sample queries reachable", NT, reach4,
  reach6, #oq))
local rate4, rate6 = 0, 0
local function measure_dual()
  for _ = 1, ROUNDS do
    local t0 = os.clock()
    for n = 1, N do dual:trace(oq[n % #oq + 1]) end
    rate4 = math.max(rate4, N / (os.clock() - t0))
    t0 = os.clock()
    for n = 1, N do dual:trace(oq6[n % #oq6 + 1]) end
    rate6 = math.max(rate6, N / (os.clock() - t0))
  end
end
measure_dual()
local function dual_report(again)
  local tag = again and " (re-run)" or ""
  print(string.format("dual stack: IPv4 %.0f traces/s, IPv6 %.0f traces/s%s", rate4, rate6, tag))
  return report("IPv6 trace cost / IPv4 (dual stack)" .. tag, rate4 / rate6, "x", 1.3, false)
end
local dual_missed = false
if not dual_report(false) then
  print("reach: measuring the dual-stack figures again")
  measure_dual()
  dual_missed = not dual_report(true)
end
dual:close()
cleanup()
if org_missed then print("reach: organisation target(s) missed twice") end
if dual_missed then print("reach: dual-stack target missed twice") end
if org_missed or dual_missed then os.exit(1) end
