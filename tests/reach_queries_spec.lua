-- who_can_reach and matrix on the article's topology.
local reach = require "awsnet.reach"
local snapshot = require "awsnet.reach.snapshot"

local FIXTURE = "tests/fixtures/reach/article"
local B = "222222222222"

local copy = require("helpers.tables").copy

describe("reach who_can_reach", function()
  it("gives exactly the Lambda subnet, and the Lambda's ENI", function()
    local model = assert(reach.load(FIXTURE))
    local w = assert(model:who_can_reach{ dst = "rds:orders", protocol = "tcp", port = 3306 })
    assert.equals(1, #w.ranges)
    assert.same({ "10.0.128.0/28" }, w.ranges[1].cidrs)
    assert.equals("10.0.128.0", w.ranges[1].first)
    assert.equals("10.0.128.15", w.ranges[1].last)
    assert.equals("subnet-0a0000000000000l1", w.ranges[1].subnet)
    assert.same({ "eni-0a000000000lambda" }, w.enis)
    assert.same({}, model:who_can_reach{ dst = "rds:orders", protocol = "tcp", port = 5432 }.ranges)
  end)

  it("follows a NACL that admits part of the subnet, to the address", function()
    local data = assert(snapshot.read(FIXTURE))
    data = copy(data)
    local entries = data.accounts[B]["us-east-1"].NetworkAcls[1].Entries
    -- deny 10.0.128.4/30 before the allow: the subnet splits into three runs
    table.insert(entries, { CidrBlock = "10.0.128.4/30", Egress = false, Protocol = "-1", RuleAction = "deny",
      RuleNumber = 90 })
    local model = assert(reach.load(data))
    local w = assert(model:who_can_reach{ dst = "rds:orders", protocol = "tcp", port = 3306 })
    local got = {}
    for _, r in ipairs(w.ranges) do got[#got + 1] = r.first .. "-" .. r.last end
    assert.same({ "10.0.128.0-10.0.128.3", "10.0.128.8-10.0.128.15" }, got)
    assert.same({ "10.0.128.8/29" }, w.ranges[2].cidrs)
    -- the Lambda's ENI (10.0.128.6) is in the denied part
    assert.same({}, w.enis)
  end)
end)

describe("reach matrix", function()
  it("computes every pair with its explanation code", function()
    local model = assert(reach.load(FIXTURE))
    local mx = assert(model:matrix{ sources = { "lambda:writer", "eni-0b00000000000tgw1", "10.0.128.9" },
      destinations = { "rds:orders", "10.0.129.5" }, protocol = "tcp", port = 3306 })
    assert.same({ { true, false }, { false, false }, { true, false } }, mx.reachable)
    assert.same({ { false, "ENI_SG_RULES_MISMATCH" }, { "ENI_SG_RULES_MISMATCH", "ENI_SG_RULES_MISMATCH" },
      { false, "SUBNET_ACL_RESTRICTION" } }, mx.codes)
    -- the same answers as tracing one pair at a time
    for i, s in ipairs({ "lambda:writer", "eni-0b00000000000tgw1", "10.0.128.9" }) do
      for j, d in ipairs({ "rds:orders", "10.0.129.5" }) do
        local r = assert(model:trace{ src = s, dst = d, port = 3306 })
        assert.equals(r.reachable, mx.reachable[i][j])
      end
    end
  end)

  it("returns an error for an unknown endpoint and raises on misuse", function()
    local model = assert(reach.load(FIXTURE))
    local mx, err = model:matrix{ sources = { "lambda:nope" }, destinations = { "rds:orders" }, port = 3306 }
    assert.is_nil(mx)
    assert.equals("unknown_endpoint", err.code)
    assert.has_error(function() model:matrix{ sources = "x" } end)
    assert.has_error(function() model:who_can_reach("rds:orders") end)
  end)
end)
