-- The article's scenario against the real sandbox (EC2, RAM, RDS on MariaDB, IAM, Lambda running
-- the Python handler, DNS; all over signed HTTP on loopback): plan, apply, apply again, verify,
-- prove, destroy — and the sandbox holds nothing afterwards.
local sandboxed = require "awsnet.scenario.sandboxed"
local scenario = require "awsnet.scenario.tgw_lambda_rds"
local checks = require "awsnet.scenario.checks"
local cli_scenario = require "awsnet.cli.scenario"
local process = require "awsnet.svc.process"
local cjson = require "cjson"

describe("scenario against the sandbox", function()
  local sb, cfg, rb, dir, before

  setup(function()
    sb = assert(sandboxed.start{ seed = 42 })
    dir = process.tempdir("awsnet-scenario-sandbox")
    cfg = assert(scenario.config(sb:config{ name = "net" }))
    rb = assert(scenario.runbook(cfg))
    before = sb:resources()   -- what the sandbox holds before anything is created
  end)
  teardown(function()
    if sb then sb:stop() end
    if dir then os.execute("rm -rf " .. process.quote(dir)) end
  end)

  it("plans without creating anything, listing the calls per account", function()
    local plan = assert(rb:plan())
    assert.equals(#rb.steps, #plan)
    for _, a in ipairs(plan) do assert.equals("create", a.action) end
    assert.same(before, sb:resources())
    -- the graph apply follows, level by level, as the command line prints it
    local f = assert(io.tmpfile())
    assert.equals(0, (cli_scenario.execute("plan", sb:config{ name = "net" }, { stdout = f })))
    f:seek("set")
    local text = f:read("a")
    f:close()
    assert.truthy(text:find("level 1: vpc_a, tgw, vpc_b, iam_role\n", 1, true), text)
    assert.truthy(text:find("level 6: lambda\n", 1, true), text)
    -- every step's needs lie in lower levels
    local level = {}
    for l, steps in ipairs(rb:levels()) do for _, st in ipairs(steps) do level[st.id] = l end end
    for _, st in ipairs(rb.steps) do
      for _, n in ipairs(st.needs or {}) do
        if level[n] then assert.is_true(level[n] < level[st.id], n .. " before " .. st.id) end
      end
    end
  end)

  it("applies every step, then a second apply changes nothing", function()
    local s, err = rb:apply()
    assert(s, err and tostring(err))
    assert.equals(#rb.steps, s.created)
    local again = assert(rb:apply())
    assert.is_false(again.changed)
    assert.equals(#rb.steps, again.kept)
    local out = assert(rb:outputs())
    assert.matches("^net%.", out.db.endpoint)
    -- the state file has every id and no password
    local text = assert(process.read_file(cfg.state_file))
    assert.is_nil(text:find(assert(scenario.db_password(cfg)), 1, true))
    assert.equals(out.lambda.id, cjson.decode(text).resources.lambda.id)
  end)

  it("verifies: the path traces, the name resolves to the instance, the Lambda writes and reads back", function()
    local v = assert(checks.verify(cfg, rb, { out_dir = dir }))
    for _, c in ipairs(v.checks) do assert(c.ok, c.name .. ": " .. tostring(c.detail)) end
    assert.same({ "users" }, v.readback.tables)
    assert.equals("テストユーザー", v.readback.rows[1].name)
    assert.matches("|  1 | テストユーザー        |", v.readback.text, 1, true)
    local md = assert(process.read_file(v.report.markdown))
    assert.matches("Result: **reachable**", md, 1, true)
    assert.matches("mysql> SHOW COLUMNS FROM users;", md, 1, true)
    assert.matches("| id    | int(11)     | NO   | PRI | NULL    | auto_increment |", md, 1, true)
    assert.matches("テストユーザー", md, 1, true)
    assert.matches("<svg", assert(process.read_file(v.report.svg)))
  end)

  it("traces from the command line on the snapshot verify took (exit status = reachable)", function()
    local function trace(port)
      local ok, _, status = os.execute(string.format("bin/awsnet trace %s --src lambda:net-writer --dst rds:net " ..
        "--port %d >%s 2>&1", process.quote(dir .. "/snapshot"), port, process.quote(dir .. "/trace.out")))
      return ok and 0 or status, process.read_file(dir .. "/trace.out")
    end
    local open, text = trace(3306)
    assert.equals(0, open, text)
    assert.matches("^REACHABLE", text)
    local closed
    closed, text = trace(22)
    assert.equals(1, closed, text)
    assert.matches("ENI_SG_RULES_MISMATCH", text)
  end)

  it("proves what each piece does", function()
    local p = assert(checks.prove(cfg, rb, { out_dir = dir, snapshot_dir = dir .. "/snapshot", merge = true }))
    assert.is_true(p.ok)
    local codes = {}
    for _, c in ipairs(p.cases) do codes[#codes + 1] = c.code or "reachable" end
    assert.same({ "reachable", "DNS_SUPPORT_DISABLED", "NO_ROUTE_TO_DESTINATION", "NO_ROUTE_TO_DESTINATION",
      "TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT", "ENI_SG_RULES_MISMATCH", "ENI_SG_RULES_MISMATCH",
      "SUBNET_ACL_RESTRICTION" }, codes)
    -- in reverse: two or three pieces removed at once, each fixed by the set awsnet proposes
    assert.equals(#checks.fault_sets(), #p.reverse)
    for _, row in ipairs(p.reverse) do assert.is_true(row.fixed, table.concat(row.faults, " + ")) end
    -- one report with verify's checks and prove's table
    local md = assert(process.read_file(p.report.markdown))
    assert.matches("## Checks", md, 1, true)
    assert.matches("## Prove", md, 1, true)
  end)

  it("prints the plan and JSON events from the command line", function()
    local f = assert(io.tmpfile())
    assert.equals(0, (cli_scenario.execute("apply", sb:config{ name = "net" }, { json = true, stdout = f })))
    f:seek("set")
    local last
    for line in f:lines() do last = cjson.decode(line) end
    f:close()
    assert.equals("result", last.event)
    assert.is_false(last.result.changed)
  end)

  it("destroys everything; a second destroy has nothing to do and the sandbox is as before", function()
    local s, err = rb:destroy()
    assert(s, err and tostring(err))
    assert.is_true(s.deleted >= #rb.steps - 1)   -- B's acceptance of the share owns nothing
    assert.same({}, assert(rb:leftovers()))
    assert.equals(0, assert(rb:destroy()).deleted)
    assert.same(before, sb:resources())
  end)
end)
