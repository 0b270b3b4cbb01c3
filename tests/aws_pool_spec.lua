-- awsnet.aws.pool against a scripted loopback server: a call's next page starts as soon as its
-- previous page arrives, not when a slow call elsewhere answers (no rounds); per_key bounds the
-- calls of one key at once; a throttle is retried after a timer of the loop, not a sleep, and
-- counted.
local aws = require "awsnet.aws"
local pool = require "awsnet.aws.pool"
local stub = require "helpers.stub_http"

local CREDS = { access_key_id = "AKIDAWSNETTEST", secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" }

local function xml(body) return { status = 200, headers = { ["Content-Type"] = "text/xml;charset=UTF-8" }, body = body } end
local function subnets(n, token)
  return xml("<DescribeSubnetsResponse><subnetSet><item><subnetId>subnet-" .. n .. "</subnetId></item></subnetSet>" ..
    (token and ("<nextToken>" .. token .. "</nextToken>") or "") .. "</DescribeSubnetsResponse>")
end
local VPCS = xml("<DescribeVpcsResponse><vpcSet><item><vpcId>vpc-1</vpcId></item></vpcSet></DescribeVpcsResponse>")

describe("awsnet.aws.pool", function()
  local srv, slept
  setup(function() srv = stub.start() end)
  teardown(function() if srv then srv:stop() end end)

  local function ec2()
    slept = {}
    return assert(aws.client("ec2", { region = "eu-west-1", credentials = CREDS, endpoint = srv.url, env = {},
      sleep = function(s) slept[#slept + 1] = s end, random = function() return 0.1 end }))
  end

  it("follows each call's pages as they arrive, while a slow call is still out", function()
    srv:routes({
      { body_contains = "Action=DescribeVpcs", responses = { { status = 200, body = VPCS.body, headers = VPCS.headers,
        delay = 1.5 } } },
      { body_contains = "NextToken=p2", responses = { subnets(2, "p3") } },
      { body_contains = "NextToken=p3", responses = { subnets(3, "p4") } },
      { body_contains = "NextToken=p4", responses = { subnets(4) } },
      { body_contains = "Action=DescribeSubnets", responses = { subnets(1, "p2") } },
    })
    local c = ec2()
    local p = pool.new { per_key = 4 }
    local order = {}
    p:call(c, "DescribeVpcs", {}, { key = "a", done = function(r) order[#order + 1] = "vpcs " .. r.Vpcs[1].VpcId end })
    p:pages(c, "DescribeSubnets", {}, { key = "b", page = function(page)
      order[#order + 1] = page.Subnets[1].SubnetId
    end, done = function(err) order[#order + 1] = "subnets done " .. tostring(err) end })
    assert(p:run())
    p:close()
    assert.same({ "subnet-1", "subnet-2", "subnet-3", "subnet-4", "subnets done nil", "vpcs vpc-1" }, order)
    assert.equal(5, p.stats.calls)
  end)

  it("holds a key's calls beyond per_key until one of its calls ends", function()
    srv:routes({
      { body_contains = "VpcId.1=vpc-slow", responses = { { status = 200, body = VPCS.body, headers = VPCS.headers,
        delay = 1 } } },
      { body_contains = "Action=DescribeVpcs", responses = { VPCS } },
    })
    local function run(per_key)
      local c, order = ec2(), {}
      local p = pool.new { per_key = per_key }
      p:call(c, "DescribeVpcs", { VpcIds = { "vpc-slow" } }, { key = "k", done = function() order[#order + 1] = "slow" end })
      p:call(c, "DescribeVpcs", {}, { key = "k", done = function() order[#order + 1] = "fast" end })
      assert(p:run())
      p:close()
      return order
    end
    assert.same({ "slow", "fast" }, run(1))
    assert.same({ "fast", "slow" }, run(2))
  end)

  it("retries a throttle after a timer of its loop and counts it", function()
    srv:routes({ { body_contains = "Action=DescribeVpcs", responses = {
      { status = 503, body = "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Rate exceeded" ..
        "</Message></Error></Errors></Response>" }, VPCS } } })
    local c = ec2()
    local p = pool.new {}
    local got
    p:call(c, "DescribeVpcs", {}, { done = function(r, err) got = r or err end })
    assert(p:run())
    p:close()
    assert.equal("vpc-1", got.Vpcs[1].VpcId)
    assert.same({ calls = 2, retries = 1, throttles = 1, errors = 0 }, p.stats)
    assert.same({}, slept)   -- the client's sleep was not used
    assert.equal(2, #srv:requests())
  end)
end)
