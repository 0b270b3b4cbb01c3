-- The scenario's runbook must never adopt or delete what it did not make, even when the server's
-- tag filter cannot be trusted. The sandbox is reached through a client that drops the Filters
-- parameter of every EC2 Describe call (an emulator that ignores filters answers with every
-- resource of the account), and each account holds resources the scenario did not make: untagged
-- ones, one tagged by another scenario, and an attachment carrying this scenario's tags but
-- attaching another VPC to another TGW. apply must create its own, destroy must leave those.
local sandboxed = require "awsnet.scenario.sandboxed"
local scenario = require "awsnet.scenario.tgw_lambda_rds"
local runbook = require "awsnet.runbook"
local cjson = require "cjson"

describe("runbook against a sandbox that ignores tag filters", function()
  local sb, cfg, raw, rb, foreign, before
  local dropped = 0

  -- the client of (account, service), with Filters removed from EC2 Describe calls
  local function ignoring_filters(client)
    local wrapped = {}
    return function(account, service)
      local c = client(account, service)
      if service ~= "ec2" then return c end
      wrapped[c] = wrapped[c] or { call = function(_, op, params)
        if op:match("^Describe") and params and params.Filters then
          local p = {}
          for k, v in pairs(params) do if k ~= "Filters" then p[k] = v end end
          params, dropped = p, dropped + 1
        end
        return c:call(op, params)
      end }
      return wrapped[c]
    end
  end

  local function ec2(account, op, params)
    local res, err = raw(account, "ec2"):call(op, params)
    return assert(res, err and tostring(err))
  end

  local function tagged(kind, tags)
    local list = {}
    for k, v in pairs(tags) do list[#list + 1] = { Key = k, Value = v } end
    return { { ResourceType = kind, Tags = list } }
  end

  -- true while `id` of `what` (e.g. "Vpc") exists and is not deleted/deleting in `account`
  local function present(account, what, id)
    local list = what == "TransitGatewayVpcAttachment" and "TransitGatewayVpcAttachments" or what .. "s"
    local id_key = what == "TransitGatewayVpcAttachment" and "TransitGatewayAttachmentId"
      or what == "SecurityGroup" and "GroupId" or what .. "Id"
    local res = raw(account, "ec2"):call("Describe" .. list, { [id_key .. "s"] = { id } })
    for _, obj in ipairs(res and res[list] or {}) do
      if obj[id_key] == id and not (obj.State or ""):match("^delet") then return true end
    end
    return false
  end

  local function wait_available(account, op, list, id_key, id)
    local deadline = runbook.clock() + 20
    repeat
      local res = ec2(account, op, { [id_key .. "s"] = { id } })
      local obj = (res[list] or {})[1]
      if obj and obj.State == "available" then return end
      runbook.sleep(0.05)
    until runbook.clock() > deadline
    error(id .. " did not become available")
  end

  setup(function()
    sb = assert(sandboxed.start{ seed = 15 })
    cfg = assert(scenario.config(sb:config{ name = "owned", state_file = sb.dir .. "/owned.state.json" }))
    raw = scenario.client_factory(cfg, require("awsnet.aws"))
    rb = assert(scenario.runbook(cfg, { client = ignoring_filters(raw) }))

    -- what the scenario did not make, in both accounts
    foreign = {}
    local zone = cfg.region .. "a"
    for _, acct in ipairs({ "A", "B" }) do
      local vpc = ec2(acct, "CreateVpc", { CidrBlock = "10.9" .. (acct == "A" and 1 or 2) .. ".0.0/16" }).Vpc.VpcId
      wait_available(acct, "DescribeVpcs", "Vpcs", "VpcId", vpc)
      local subnet = ec2(acct, "CreateSubnet", { VpcId = vpc, CidrBlock = "10.9" .. (acct == "A" and 1 or 2) .. ".1.0/24",
        AvailabilityZone = zone }).Subnet.SubnetId
      local sg = ec2(acct, "CreateSecurityGroup", { VpcId = vpc, GroupName = "theirs", Description = "not ours" }).GroupId
      foreign[#foreign + 1] = { acct, "Vpc", vpc }
      foreign[#foreign + 1] = { acct, "Subnet", subnet }
      foreign[#foreign + 1] = { acct, "SecurityGroup", sg }
    end
    -- another scenario's VPC, tagged like a vpc_a step of it
    local other = ec2("A", "CreateVpc", { CidrBlock = "10.93.0.0/16", TagSpecifications = tagged("vpc",
      { ["awsnet:scenario"] = "someone-else", ["awsnet:step"] = "vpc_a" }) }).Vpc.VpcId
    foreign[#foreign + 1] = { "A", "Vpc", other }
    -- a TGW not ours, and an attachment of A's foreign VPC to it that carries this scenario's tags
    local tgw = ec2("A", "CreateTransitGateway", { Description = "not ours" }).TransitGateway.TransitGatewayId
    wait_available("A", "DescribeTransitGateways", "TransitGateways", "TransitGatewayId", tgw)
    local attach = ec2("A", "CreateTransitGatewayVpcAttachment", { TransitGatewayId = tgw, VpcId = foreign[1][3],
      SubnetIds = { foreign[2][3] }, TagSpecifications = tagged("transit-gateway-attachment",
        { ["awsnet:scenario"] = cfg.name, ["awsnet:step"] = "tgw_attach_a" }) }).TransitGatewayVpcAttachment
    foreign[#foreign + 1] = { "A", "TransitGateway", tgw }
    foreign[#foreign + 1] = { "A", "TransitGatewayVpcAttachment", attach.TransitGatewayAttachmentId }
    wait_available("A", "DescribeTransitGatewayVpcAttachments", "TransitGatewayVpcAttachments",
      "TransitGatewayAttachmentId", attach.TransitGatewayAttachmentId)
    before = sb:resources()
  end)
  teardown(function()
    if sb then sb:stop() end
  end)

  local function foreign_ids()
    local ids = {}
    for _, f in ipairs(foreign) do ids[f[3]] = true end
    return ids
  end

  local function assert_foreign_present()
    for _, f in ipairs(foreign) do
      assert(present(f[1], f[2], f[3]), string.format("%s %s of account %s was deleted", f[2], f[3], f[1]))
    end
  end

  it("apply creates every resource and adopts none of the look-alikes", function()
    local s, err = rb:apply()
    assert(s, err and tostring(err))
    assert.is_true(dropped > 0)          -- the filters really were dropped
    assert.equals(0, s.adopted)
    assert.equals(#s.steps, s.created)
    local theirs = foreign_ids()
    for _, step in ipairs(s.steps) do
      assert.is_nil(theirs[step.id], step.step .. " adopted " .. tostring(step.id))
    end
    local out = assert(rb:outputs())
    assert.not_equals(foreign[#foreign][3], out.tgw_attach_a.id)
    -- a second apply keeps what it made
    local again = assert(rb:apply())
    assert.is_false(again.changed)
  end)

  it("destroy deletes what apply made and leaves every resource it did not make", function()
    local s, err = rb:destroy()
    assert(s, err and tostring(err))
    assert_foreign_present()
    assert.same(before, sb:resources())
    -- leftovers reports what carries this scenario's tags: only the look-alike attachment
    local left = assert(rb:leftovers())
    assert.equals(1, #left)
    assert.equals(foreign[#foreign][3], left[1].id)
  end)

  it("after a crash before any create returned, apply adopts nothing and destroy deletes nothing", function()
    -- every step pending, as a crash right after each "create" was sent would leave it. A's
    -- attachment is left out: with its VPC unknown too, tags alone decide, and the look-alike
    -- carries this scenario's tags (see the report of issue 15)
    local resources = {}
    for _, step in ipairs(rb.steps) do
      if step.id ~= "tgw_attach_a" then resources[step.id] = { pending = true, account = step.account } end
    end
    local f = assert(io.open(cfg.state_file, "w"))
    f:write(cjson.encode({ version = 1, runbook = cfg.name, resources = resources }))
    f:close()
    local d, err = rb:destroy()
    assert(d, err and tostring(err))
    assert.equals(0, d.deleted)
    assert_foreign_present()
    assert.same(before, sb:resources())

    f = assert(io.open(cfg.state_file, "w"))
    f:write(cjson.encode({ version = 1, runbook = cfg.name, resources = resources }))
    f:close()
    local s
    s, err = rb:apply()
    assert(s, err and tostring(err))
    assert.equals(0, s.adopted)
    assert(rb:destroy())
    assert_foreign_present()
    assert.same(before, sb:resources())
  end)
end)
