-- Blocked paths on the article's snapshot (tests/fixtures/reach/article): every pair and every
-- triple of prove's faults at once, each with its exact blockers in path order and a fix set
-- that, made in a copy of the snapshot and traced again, is reachable; the blocked path past a
-- missing route (the one joining connection, or a stop when there are none or several); and
-- what `awsnet trace`, its JSON and the report show.
local reach = require "awsnet.reach"
local blocked = require "awsnet.reach.blocked"
local checks = require "awsnet.scenario.checks"
local scenario = require "awsnet.scenario.tgw_lambda_rds"
local process = require "awsnet.svc.process"
local cjson = require "cjson"
local copy = require("helpers.tables").copy

local FIXTURE = "tests/fixtures/reach/article"
local A, B = "111111111111", "222222222222"
local VPC_A, VPC_B = "vpc-0a00000000000000a", "vpc-0b00000000000000b"
local TGW, TRTB = "tgw-0a1b2c3d4e5f60001", "tgw-rtb-0a1b2c3d4e5f60001"
local ATT_A, ATT_B = "tgw-attach-0a00000000000000a", "tgw-attach-0b00000000000000b"
local RTB_A, RTB_B = "rtb-0a0000000000000l1", "rtb-0b00000000000db01"
local SG_LAMBDA, SG_DB, ACL_DB = "sg-0a000000000lambda", "sg-0b00000000000db001", "acl-0b00000000000db01"
-- the Lambda's ENI and the database's, as the fixture lists them
local LAMBDA_IP, DB_IP = "10.0.128.6", "10.1.128.10"

local base = assert(checks.read_snapshot(FIXTURE))
local cfg = assert(scenario.config({ name = "article", state_file = "/nonexistent/state.json" }))
-- the state file's outputs an apply of the article would have left (as in scenario_prove_spec)
local out = {
  vpc_a = { id = VPC_A, cidr = "10.0.0.0/16" }, vpc_b = { id = VPC_B, cidr = "10.1.0.0/16" },
  subnet_b = { id = "subnet-0b0000000000000d1" }, tgw = { id = TGW, route_table = TRTB },
  tgw_attach_a = { id = ATT_A }, tgw_attach_b = { id = ATT_B }, sg_database = { id = SG_DB },
  sg_lambda = { id = SG_LAMBDA }, db = { id = "orders" }, lambda = { id = "writer" },
}

-- What each of prove's faults must block, where on the path (AWS's order of evaluation: the
-- name is resolved before anything is sent; the source's outbound rules, its route table, the
-- TGW route table, the destination subnet's network ACL, the destination's inbound rules; then
-- the reply's route), and the change that admits the packet there.
local EXPECTED = {
  ["DNS support off in A's VPC"] = { 1, "DNS_SUPPORT_DISABLED", VPC_A, "forward",
    { op = "dns_support", vpc = VPC_A } },
  ["Lambda security group without egress tcp/3306 to B"] = { 2, "ENI_SG_RULES_MISMATCH", SG_LAMBDA, "forward",
    { op = "sg_allow", group = SG_LAMBDA, egress = true, protocol = 6, from_port = 3306, to_port = 3306,
      cidr = DB_IP .. "/32" } },
  ["no route in A's VPC to B via the TGW"] = { 3, "NO_ROUTE_TO_DESTINATION", RTB_A, "forward",
    { op = "route", route_table = RTB_A, cidr = "10.1.0.0/16", target = { TransitGatewayId = TGW } } },
  ["no TGW route table route to B's VPC"] = { 4, "TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT", TRTB, "forward",
    { op = "tgw_propagation", route_table = TRTB, attachment = ATT_B, vpc = VPC_B, cidr = "10.1.0.0/16" } },
  ["database subnet's network ACL denies tcp/3306 from A"] = { 5, "SUBNET_ACL_RESTRICTION", ACL_DB, "forward",
    { op = "nacl_allow", acl = ACL_DB, egress = false, below = 99, protocol = 6, from_port = 3306, to_port = 3306,
      cidr = LAMBDA_IP .. "/32" } },
  ["database security group without the tcp/3306 rule from A"] = { 6, "ENI_SG_RULES_MISMATCH", SG_DB, "forward",
    { op = "sg_allow", group = SG_DB, egress = false, protocol = 6, from_port = 3306, to_port = 3306,
      cidr = LAMBDA_IP .. "/32" } },
  ["no route in B's VPC back to A (return path)"] = { 7, "NO_ROUTE_TO_DESTINATION", RTB_B, "return",
    { op = "route", route_table = RTB_B, cidr = "10.0.0.0/16", target = { TransitGatewayId = TGW } } },
}

local function region(data, acct) return data.accounts[acct]["us-east-1"] end

local function trace(data, q)
  local model = assert(reach.load(data))
  return assert(model:trace(q or { src = "lambda:writer", dst = "rds:orders", protocol = "tcp", port = 3306 }))
end

describe("blocked paths: prove's faults two and three at a time", function()
  it("knows every fault prove uses", function()
    local names = {}
    for i = 2, #checks.PROVE_CASES do names[#names + 1] = checks.PROVE_CASES[i].case end
    table.sort(names)
    local want = {}
    for name in pairs(EXPECTED) do want[#want + 1] = name end
    table.sort(want)
    assert.same(want, names)
    assert.equals(21 + 35, #checks.fault_sets()) -- C(7,2) + C(7,3)
  end)

  for _, set in ipairs(checks.fault_sets()) do
    local names = {}
    for _, i in ipairs(set) do names[#names + 1] = checks.PROVE_CASES[i].case end
    it(table.concat(names, " + "), function()
      local row = assert(checks.reverse_case(base, set, out, cfg))
      local r = row.result
      assert.is_false(r.reachable)
      -- the exact blockers, in path order, and one change each, as data
      local want = {}
      for _, name in ipairs(names) do want[#want + 1] = EXPECTED[name] end
      table.sort(want, function(x, y) return x[1] < y[1] end)
      local got, want_blockers, want_actions, got_actions = {}, {}, {}, {}
      for i, b in ipairs(r.blockers) do got[i] = { b.code, b.component, b.direction } end
      for i, w in ipairs(want) do want_blockers[i], want_actions[i] = { w[2], w[3], w[4] }, w[5] end
      assert.same(want_blockers, got)
      for i, c in ipairs(r.fix) do got_actions[i] = c.action end
      assert.same(want_actions, got_actions)
      assert.equals(want_blockers[1][1], r.code) -- the first blocker is the trace's blocking hop
      for _, b in ipairs(r.blockers) do
        assert.is_string(b.setting)
        assert.is_string(b.change)
      end
      assert.is_true(r.blocked_path.complete, r.blocked_path.stopped)
      -- made in a copy of the snapshot, the fix set gives reachable, forward and return
      assert.is_true(row.fixed, tostring(row.fixed_result))
      assert.is_true(row.fixed_result.ret.ok)
    end)
  end
end)

describe("blocked paths past a missing route", function()
  local function without_routes_to_tgw(data)
    for _, acct in ipairs({ A, B }) do
      for _, rt in ipairs(region(data, acct).RouteTables) do
        for i = #rt.Routes, 1, -1 do
          if rt.Routes[i].TransitGatewayId then table.remove(rt.Routes, i) end
        end
      end
    end
  end
  local function peering(data)
    region(data, A).VpcPeeringConnections = { { VpcPeeringConnectionId = "pcx-0ab0000000000001",
      Status = { Code = "active" }, RequesterVpcInfo = { VpcId = VPC_A, OwnerId = A, CidrBlock = "10.0.0.0/16" },
      AccepterVpcInfo = { VpcId = VPC_B, OwnerId = B, CidrBlock = "10.1.0.0/16" } } }
  end
  local function detach(data)
    for _, acct in ipairs({ A, B }) do
      local d = region(data, acct)
      d.TransitGatewayAttachments, d.TransitGatewayVpcAttachments = {}, {}
    end
  end

  it("goes through the one peering connection when it is the only one, and says so", function()
    local data = copy(base)
    without_routes_to_tgw(data)
    detach(data)
    peering(data)
    local r = trace(data)
    assert.is_false(r.reachable)
    local got = {}
    for i, b in ipairs(r.blockers) do got[i] = { b.code, b.component, b.direction, b.action.target } end
    assert.same({
      { "NO_ROUTE_TO_DESTINATION", RTB_A, "forward", { VpcPeeringConnectionId = "pcx-0ab0000000000001" } },
      { "NO_ROUTE_TO_DESTINATION", RTB_B, "return", { VpcPeeringConnectionId = "pcx-0ab0000000000001" } },
    }, got)
    assert.is_true(r.blocked_path.complete)
    assert.equals(2, #r.blocked_path.assumptions)
    assert.matches("pcx%-0ab0000000000001", r.blocked_path.assumptions[1])
    local kinds = {}
    for _, h in ipairs(r.blocked_path.forward.hops) do kinds[#kinds + 1] = h.kind end
    assert.truthy(table.concat(kinds, " "):find("peering-connection", 1, true))
    assert.is_true(trace((blocked.apply(data, r.fix))).reachable)
  end)

  it("stops where several connections join the two VPCs, and says why", function()
    local data = copy(base)
    table.remove(region(data, A).RouteTables[1].Routes, 2) -- A's route to B via the TGW
    peering(data)                                           -- and a peering connection too
    local r = trace(data)
    assert.equals(1, #r.blockers)
    assert.same({ "NO_ROUTE_TO_DESTINATION", RTB_A }, { r.blockers[1].code, r.blockers[1].component })
    assert.is_nil(r.blockers[1].action)
    assert.is_false(r.blocked_path.complete)
    assert.matches("several connections", r.blocked_path.stopped)
    assert.matches("several connections", tostring(r))
  end)

  it("stops where no connection joins them, and says why", function()
    local data = copy(base)
    table.remove(region(data, A).RouteTables[1].Routes, 2)
    detach(data)
    local r = trace(data)
    assert.equals(1, #r.blockers)
    assert.is_false(r.blocked_path.complete)
    assert.matches("no transit gateway or peering connection joins it to " .. VPC_B, r.blocked_path.stopped, 1, true)
    -- a TGW route table with no route where the destination's VPC is not attached to that TGW
    data = copy(base)
    for _, acct in ipairs({ A, B }) do
      for _, key in ipairs({ "TransitGatewayAttachments", "TransitGatewayVpcAttachments" }) do
        local atts = region(data, acct)[key]
        for i = #atts, 1, -1 do
          if atts[i].TransitGatewayAttachmentId == ATT_B then table.remove(atts, i) end
        end
      end
    end
    r = trace(data)
    assert.equals("TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT", r.blockers[1].code)
    assert.matches("no transit gateway or peering connection joins it", r.blocked_path.stopped)
  end)

  it("moves a deny numbered 1 out of the way (no free number before it)", function()
    local data = copy(base)
    local acl = region(data, B).NetworkAcls[1]
    table.insert(acl.Entries, { RuleNumber = 1, Egress = false, Protocol = "-1", RuleAction = "deny",
      CidrBlock = "10.0.0.0/8" })
    local r = trace(data)
    assert.same({ "SUBNET_ACL_RESTRICTION", ACL_DB }, { r.blockers[1].code, r.blockers[1].component })
    assert.equals("inbound rule 1: deny all from 10.0.0.0/8", r.blockers[1].setting)
    assert.is_true(trace((blocked.apply(data, r.fix))).reachable)
  end)

  it("fixes every ENI of a Lambda function in two subnets, not only the one it reports", function()
    local data = copy(base)
    local a = region(data, A)
    a.Subnets[#a.Subnets + 1] = { SubnetId = "subnet-0a0000000000000l2", VpcId = VPC_A, CidrBlock = "10.0.128.16/28",
      AvailabilityZone = "us-east-1a", AvailabilityZoneId = "use1-az1" }
    a.RouteTables[1].Associations[#a.RouteTables[1].Associations + 1] = { Main = false,
      SubnetId = "subnet-0a0000000000000l2" }
    a.NetworkAcls[1].Associations[#a.NetworkAcls[1].Associations + 1] = { SubnetId = "subnet-0a0000000000000l2" }
    table.insert(a.Functions[1].VpcConfig.SubnetIds, "subnet-0a0000000000000l2")
    region(data, B).SecurityGroups[1].IpPermissions = {} -- neither ENI is let in
    local r = trace(data)
    assert.equals(LAMBDA_IP, r.source)
    assert.same({ { "ENI_SG_RULES_MISMATCH", SG_DB } }, { { r.blockers[1].code, r.blockers[1].component } })
    -- the second ENI (10.0.128.20, outside the database NACL's 10.0.128.0/28) needs more
    local cidrs = {}
    for _, c in ipairs(r.fix) do cidrs[#cidrs + 1] = c.action.op .. " " .. c.action.cidr end
    assert.same({ "sg_allow " .. LAMBDA_IP .. "/32", "nacl_allow 10.0.128.20/32", "sg_allow 10.0.128.20/32",
      "nacl_allow 10.0.128.20/32" }, cidrs)
    assert.is_true(trace((blocked.apply(data, r.fix))).reachable)
  end)

  it("leaves a reachable trace without blockers or fix", function()
    local r = trace(copy(base))
    assert.same({}, r.blockers)
    assert.is_false(r.fix)
    assert.is_nil(r:data().blockers)
  end)
end)

describe("blocked paths shown", function()
  local dir
  before_each(function() dir = process.tempdir("awsnet-blocked-spec") end)
  after_each(function() os.execute("rm -rf " .. process.quote(dir)) end)

  -- The data as a snapshot folder (aws_configs/accounts/<id>/<region>/<Key>.json).
  local function write_folder(data)
    for acct, regions in pairs(data.accounts) do
      for name, res in pairs(regions) do
        local d = string.format("%s/aws_configs/accounts/%s/%s", dir, acct, name)
        assert(os.execute("mkdir -p " .. process.quote(d)))
        for key, list in pairs(res) do process.write_file(d .. "/" .. key .. ".json", cjson.encode({ [key] = list })) end
      end
    end
  end

  local function three_faults()
    local data = copy(base)
    for _, name in ipairs({ "no route in B's VPC back to A (return path)", "database security group without the "
      .. "tcp/3306 rule from A", "DNS support off in A's VPC" }) do
      for _, c in ipairs(checks.PROVE_CASES) do
        if c.case == name then c.mutate(data, out, cfg) end
      end
    end
    return data
  end

  it("awsnet trace prints every blocker and the fix set, and --json carries them", function()
    write_folder(three_faults())
    local cmd = string.format("lua5.4 bin/awsnet trace %s --src lambda:writer --dst rds:orders --port 3306",
      process.quote(dir))
    local p = assert(io.popen(cmd .. " 2>&1"))
    local text = p:read("a")
    p:close()
    assert.matches("blockers (3, in path order):", text, 1, true)
    for _, id in ipairs({ VPC_A, SG_DB, RTB_B }) do assert.matches(id, text, 1, true) end
    assert.matches("fix (3 changes, together):", text, 1, true)
    assert.matches("add a route for 10.0.0.0/16 in " .. RTB_B .. " via " .. TGW, text, 1, true)
    p = assert(io.popen(cmd .. " --json"))
    local data = cjson.decode(p:read("a"))
    p:close()
    assert.is_false(data.reachable)
    local codes = {}
    for i, b in ipairs(data.blockers) do codes[i] = b.code end
    assert.same({ "DNS_SUPPORT_DISABLED", "ENI_SG_RULES_MISMATCH", "NO_ROUTE_TO_DESTINATION" }, codes)
    assert.equals(3, #data.fix)
    assert.equals("sg_allow", data.fix[2].action.op)
    assert.is_true(data.blocked_path.complete)
  end)

  it("the report lists every blocker and the picture marks each", function()
    local r = trace(three_faults())
    local report = require "awsnet.report"
    local paths = assert(report.write(dir, { title = "t", trace = r }))
    local md = assert(process.read_file(paths.markdown))
    assert.matches("## Blockers: every setting on the path that refuses the packet", md, 1, true)
    for _, id in ipairs({ VPC_A, SG_DB, RTB_B }) do assert.matches("| " .. id .. " |", md, 1, true) end
    assert.matches("### Fix set", md, 1, true)
    local svg = assert(process.read_file(paths.svg))
    for _, code in ipairs({ "DNS_SUPPORT_DISABLED", "ENI_SG_RULES_MISMATCH", "NO_ROUTE_TO_DESTINATION" }) do
      assert.matches('data-code="' .. code .. '"', svg, 1, true)
    end
    assert.matches("blocker 3: NO_ROUTE_TO_DESTINATION at " .. RTB_B, svg, 1, true)
  end)
end)

describe("blocked paths on every snapshot of the fixtures", function()
  it("say every failed trace in words and JSON, and their complete fix sets make the path reachable", function()
    local snapshot = require "awsnet.reach.snapshot"
    local dirs = {}
    local p = assert(io.popen("find tests/fixtures -name aws_configs -type d | sort"))
    for d in p:lines() do dirs[#dirs + 1] = d:gsub("/aws_configs$", "") end
    p:close()
    local applied, fixed, failed = 0, 0, 0
    for _, dir in ipairs(dirs) do
      local model = reach.load(dir)
      local data = model and snapshot.read(dir)
      local names = model and model:endpoints() or {}
      for i = 1, math.min(#names, 25) do
        for j = 1, math.min(#names, 25) do
          for _, port in ipairs(i ~= j and { 22, 3306 } or {}) do
            local q = { src = names[i], dst = names[j], port = port }
            local r = model:trace(q)
            if r and not r.reachable then
              failed = failed + 1
              assert.matches("blockers %(%d+, in path order%)", tostring(r))
              assert.is_table(cjson.decode(r:json()).blockers)
              assert.equals(r.code, r.blockers[1].code, dir .. " " .. names[i] .. " -> " .. names[j])
              local changed, missed = blocked.apply(data, r.fix)
              if #missed == 0 and r.blocked_path.complete then
                applied = applied + 1
                local again = assert(assert(reach.load(changed)):trace(q))
                assert.is_true(again.reachable, dir .. " " .. names[i] .. " -> " .. names[j] .. ": " .. tostring(r.fix))
                fixed = fixed + 1
              end
            end
          end
        end
      end
    end
    -- enough of each to mean something (the Batfish snapshots and the article)
    assert.is_true(failed > 500 and applied > 200, failed .. " failed, " .. applied .. " fixed")
    assert.equals(applied, fixed)
  end)
end)
