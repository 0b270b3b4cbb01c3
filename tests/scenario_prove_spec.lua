-- prove on the article's snapshot (the reach fixture: two accounts, shared TGW, Lambda -> RDS):
-- the real evaluator on copies of the data with one piece removed at a time; and the report.
local checks = require "awsnet.scenario.checks"
local scenario = require "awsnet.scenario.tgw_lambda_rds"
local runbook = require "awsnet.runbook"
local process = require "awsnet.svc.process"
local cjson = require "cjson"

local FIXTURE = "tests/fixtures/reach/article"

describe("scenario prove", function()
  local dir, rb, cfg

  before_each(function()
    dir = process.tempdir("awsnet-prove-test")
    cfg = assert(scenario.config({ name = "article", state_file = dir .. "/state.json" }))
    cfg.account_ids = { A = "111111111111", B = "222222222222" }
    -- the state file an apply of the article would have left
    local resources = {
      vpc_a = { id = "vpc-0a00000000000000a", cidr = "10.0.0.0/16" },
      subnet_a = { id = "subnet-0a0000000000000l1", cidr = "10.0.128.0/28" },
      vpc_b = { id = "vpc-0b00000000000000b", cidr = "10.1.0.0/16" },
      subnet_b = { id = "subnet-0b0000000000000d1", cidr = "10.1.130.0/28" },
      tgw = { id = "tgw-0a1b2c3d4e5f60001", route_table = "tgw-rtb-0a1b2c3d4e5f60001" },
      tgw_attach_a = { id = "tgw-attach-0a00000000000000a" }, tgw_attach_b = { id = "tgw-attach-0b00000000000000b" },
      sg_database = { id = "sg-0b00000000000db001" }, sg_lambda = { id = "sg-0a000000000lambda" },
      db = { id = "orders", endpoint = "orders.c0abcdef1234.us-east-1.rds.amazonaws.com", port = 3306 },
      lambda = { id = "writer" },
    }
    process.write_file(cfg.state_file, cjson.encode({ version = 1, runbook = "article", resources = resources }))
    rb = runbook.new{ name = "article", steps = scenario.steps(), state_file = cfg.state_file, config = cfg,
      client = function() error("prove on a given snapshot makes no API call") end }
  end)
  after_each(function() os.execute("rm -rf " .. process.quote(dir)) end)

  it("reads a snapshot folder into reach's table form", function()
    local data = checks.read_snapshot(FIXTURE)
    assert.equals("vpc-0a00000000000000a", data.accounts["111111111111"]["us-east-1"].Vpcs[1].VpcId)
    assert.equals("orders", data.accounts["222222222222"]["us-east-1"].DBInstances[1].DBInstanceIdentifier)
    assert(require("awsnet.reach").load(data))
  end)

  it("shows the path reachable as built and blocked with each piece removed", function()
    local events = {}
    local r = assert(checks.prove(cfg, rb, { snapshot_dir = FIXTURE, out_dir = dir,
      on_event = function(e) events[#events + 1] = e end }))
    local by_case = {}
    for _, c in ipairs(r.cases) do by_case[c.case] = c end
    assert.is_true(r.cases[1].reachable)
    local expected = {
      ["DNS support off in A's VPC"] = { "DNS_SUPPORT_DISABLED", "vpc-0a00000000000000a" },
      ["no route in A's VPC to B via the TGW"] = { "NO_ROUTE_TO_DESTINATION" },
      ["no route in B's VPC back to A (return path)"] = { "NO_ROUTE_TO_DESTINATION" },
      ["database security group without the tcp/3306 rule from A"] = { "ENI_SG_RULES_MISMATCH", "sg-0b00000000000db001" },
      ["Lambda security group without egress tcp/3306 to B"] = { "ENI_SG_RULES_MISMATCH", "sg-0a000000000lambda" },
      ["database subnet's network ACL denies tcp/3306 from A"] = { "SUBNET_ACL_RESTRICTION", "acl-0b00000000000db01" },
    }
    for case, want in pairs(expected) do
      local c = assert(by_case[case], case)
      assert.is_false(c.reachable, case)
      assert.equals(want[1], c.code, case)
      if want[2] then assert.equals(want[2], c.blocked_at, case) end
    end
    local tgw = by_case["no TGW route table route to B's VPC"]
    assert.is_false(tgw.reachable)
    assert.matches("^TGW_RTB", tgw.code)
    assert.is_true(r.ok)
    local counts = {}
    for _, e in ipairs(events) do counts[e.event] = (counts[e.event] or 0) + 1 end
    assert.same({ check = #checks.PROVE_CASES, reverse = #checks.fault_sets() }, counts)
    -- in reverse: every pair and triple blocked, each with a fix set that makes it reachable
    assert.equals(#checks.fault_sets(), #r.reverse)
    for _, row in ipairs(r.reverse) do
      assert.is_false(row.reachable)
      assert.is_true(row.fixed, table.concat(row.faults, " + "))
      assert.equals(#row.faults, #row.blockers)
      assert.equals(#row.faults, #row.fix)
    end
    local md = assert(process.read_file(r.report.markdown))
    assert.matches("## Prove in reverse: pieces removed at once, and the fix set awsnet proposes", md, 1, true)
    assert.matches("| DNS support off in A's VPC + no route in A's VPC to B via the TGW | DNS_SUPPORT_DISABLED at "
      .. "vpc-0a00000000000000a (forward); NO_ROUTE_TO_DESTINATION at rtb-0a0000000000000l1 (forward) | ", md, 1, true)
    assert.matches("| DNS support off in A's VPC | blocked | DNS_SUPPORT_DISABLED | vpc-0a00000000000000a |", md, 1, true)
    assert.matches("<svg", assert(process.read_file(r.report.svg)))
  end)

  it("says when nothing is applied yet", function()
    os.remove(cfg.state_file)
    local r, err = checks.prove(cfg, rb, { snapshot_dir = FIXTURE, out_dir = dir })
    assert.is_nil(r)
    assert.equals("not_applied", err.code)
  end)
end)
