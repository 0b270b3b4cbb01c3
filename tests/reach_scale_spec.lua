-- The loader stays linear at organisation scale (issue 12, "Scale"), checked without a clock:
-- the work is counted (Lua VM instructions through a count hook, and the builder's own count of
-- the ENIs its functions and databases passes look at), on bench/reach/org.lua's generated
-- organisations, so a quadratic association (every ENI scanned for each Lambda subnet or each
-- database) fails here on any machine. bench/reach measures the times and memory.
local reach = require "awsnet.reach"
local org = require "bench.reach.org"

-- Thousands of Lua VM instructions reach.load runs on the organisation, and the builder's count.
local function work(nvpc, services)
  local data = org.generate(nvpc, services)
  local k = 0
  debug.sethook(function() k = k + 1 end, "", 1000)
  local ok, model = pcall(reach.load, data)
  debug.sethook()
  assert(ok, model)
  assert(model, "load failed")
  local scanned = model._b.scanned
  local counts = model.counts
  model:close()
  return k, scanned, counts
end

describe("reach load at scale", function()
  local with300, scanned300, counts300
  lazy_setup(function() with300, scanned300, counts300 = work(300, true) end)

  it("generates what the bench describes", function()
    assert.equal(300, counts300.vpcs)
    assert.equal(1200, counts300.subnets)
    assert.equal(900, counts300.security_groups)
    -- 2 instances, 2 TGW attachment ENIs, 2 Lambda Hyperplane ENIs, 1 RDS ENI per VPC
    assert.equal(300 * 7, counts300.network_interfaces)
  end)

  it("associates each function subnet and database through an index, not a scan of every ENI", function()
    -- 600 function subnets and 300 databases, one candidate ENI each: a scan would look at
    -- 2,100 ENIs for each of the 900
    assert.is_true(scanned300 <= 2 * 900, "candidates looked at: " .. tostring(scanned300))
  end)

  it("costs about the same with a Lambda and a database per VPC as without", function()
    local without = work(300, false)
    -- measured 1.07; the quadratic association was 2.2
    assert.is_true(with300 / without <= 1.3, string.format("%d vs %d thousand instructions", with300, without))
  end)

  it("does twice the work for twice the VPCs", function()
    local half = work(150, true)
    -- measured 1.99; the quadratic association was 2.7
    assert.is_true(with300 / half <= 2.3, string.format("%d vs %d thousand instructions", with300, half))
  end)
end)
