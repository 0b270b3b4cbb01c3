-- The sandbox in this Lua process: a lua-socket client sends SigV4-signed requests and the test
-- steps the server until the answer is back. Covers what the AWS CLI spec cannot reach quickly:
-- clock skew, fault injection, persistence across restarts, reset, state transitions, seeded ids.
local exchange = require "helpers.sandbox_exchange"
local cjson = require "cjson"
local sigv4 = require "awsnet.sigv4"
local sandbox = require "awsnet.sandbox"
local process = require "awsnet.svc.process"

local A, B = "111111111111", "222222222222"

local function form(params)
  local keys, parts = {}, {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    parts[#parts + 1] = k .. "=" .. tostring(params[k]):gsub("[^%w%-%._~]", function(c)
      return string.format("%%%02X", c:byte())
    end)
  end
  return table.concat(parts, "&")
end

-- Sends one signed request and steps `sb` until the answer arrived: status, headers, body
-- (status "reset" when the connection was aborted).
local function call(sb, service, account, req, opts)
  opts = opts or {}
  local url = "http://127.0.0.1:" .. sb.port .. (req.target or "/")
  local headers = req.headers or {}
  local signed = assert(sigv4.sign({ method = req.method or "POST", url = url, headers = headers, body = req.body or "" },
    { access_key_id = account, secret_access_key = opts.secret or "test" },
    { region = "us-east-1", service = service, time = opts.time }))
  local lines = { (req.method or "POST") .. " " .. (req.target or "/") .. " HTTP/1.1" }
  for k, v in pairs(signed) do lines[#lines + 1] = k .. ": " .. v end
  lines[#lines + 1] = "Content-Length: " .. #(req.body or "")
  local status, hdrs, body = exchange(sb, table.concat(lines, "\r\n") .. "\r\n\r\n" .. (req.body or ""))
  if not status and not hdrs then return "reset" end
  return status, hdrs, body
end

local function query(sb, service, account, params, opts)
  return call(sb, service, account, { body = form(params),
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" } }, opts)
end

local function ec2(sb, account, params, opts)
  params.Version = "2016-11-15"
  return query(sb, "ec2", account, params, opts)
end

local function amz_date(offset)
  return os.date("!%Y%m%dT%H%M%SZ", os.time() + offset)
end

describe("sandbox in-process", function()
  local dir
  setup(function() dir = process.tempdir("awsnet-sandbox-spec") end)
  teardown(function() os.execute("rm -rf " .. process.quote(dir)) end)

  it("verifies signatures, the key's account and the clock", function()
    local sb = assert(sandbox.start { port = 0, transition_s = 0 })
    local status, _, body = query(sb, "sts", A, { Action = "GetCallerIdentity", Version = "2011-06-15" })
    assert.equals(200, status)
    assert.matches("<Account>" .. A .. "</Account>", body)
    assert.matches("<ResponseMetadata><RequestId>[%x-]+</RequestId>", body)
    status, _, body = query(sb, "sts", A, { Action = "GetCallerIdentity", Version = "2011-06-15" }, { time = amz_date(-1000) })
    assert.equals(403, status)
    assert.matches("<Code>SignatureDoesNotMatch</Code>", body)
    assert.matches("<Message>Signature expired: %d+T%d+Z is now earlier than", body)
    status, _, body = ec2(sb, A, { Action = "DescribeVpcs" }, { time = amz_date(1000) })
    assert.equals(400, status)
    assert.matches("<Code>RequestExpired</Code>", body)
    -- within 15 minutes is fine
    status = ec2(sb, A, { Action = "DescribeVpcs" }, { time = amz_date(-600) })
    assert.equals(200, status)
    status, _, body = ec2(sb, "333333333333", { Action = "DescribeVpcs" })
    assert.equals(401, status)
    assert.matches("<Response><Errors><Error><Code>AuthFailure</Code>", body)
    local headers
    status, headers, body = call(sb, "ram", A, { target = "/getresourceshares", body = '{"resourceOwner":"SELF"}' },
      { secret = "nope" })
    assert.equals(403, status)
    assert.equals("InvalidSignatureException", headers["x-amzn-errortype"])
    assert.equals("InvalidSignatureException", cjson.decode(body).__type)
    sb:stop()
  end)

  it("answers EC2 errors for missing parameters, unknown actions and filters it does not know", function()
    local sb = assert(sandbox.start { port = 0 })
    local status, _, body = ec2(sb, A, { Action = "CreateVpc" })
    assert.equals(400, status)
    assert.matches("<Code>MissingParameter</Code>", body)
    status, _, body = ec2(sb, A, { Action = "LaunchRocket" })
    assert.equals(400, status)
    assert.matches("<Code>InvalidAction</Code>", body)
    ec2(sb, A, { Action = "CreateVpc", CidrBlock = "10.0.0.0/16" })
    status, _, body = ec2(sb, A, { Action = "DescribeVpcs", ["Filter.1.Name"] = "no-such-filter", ["Filter.1.Value.1"] = "x" })
    assert.equals(400, status)
    assert.matches("<Code>InvalidParameterValue</Code>", body)
    status, _, body = ec2(sb, A, { Action = "DescribeVpcs", ["Filter.1.Name"] = "cidr", ["Filter.1.Value.1"] = "10.0.*" })
    assert.equals(200, status)
    assert.matches("<cidrBlock>10.0.0.0/16</cidrBlock>", body, 1, true)
    sb:stop()
  end)

  it("moves states from pending to available after the transition time", function()
    local sb = assert(sandbox.start { port = 0, transition_s = 1 })
    local _, _, body = ec2(sb, A, { Action = "CreateTransitGateway" })
    local id = body:match("<transitGatewayId>(tgw%-%x+)</transitGatewayId>")
    assert.matches("<state>pending</state>", body)
    _, _, body = ec2(sb, A, { Action = "DescribeTransitGateways", ["TransitGatewayIds.1"] = id })
    assert.matches("<state>pending</state>", body)
    local deadline = os.time() + 5
    repeat
      sb:serve_for(0.2)
      _, _, body = ec2(sb, A, { Action = "DescribeTransitGateways", ["TransitGatewayIds.1"] = id })
    until body:find("<state>available</state>", 1, true) or os.time() > deadline
    assert.matches("<state>available</state>", body)
    sb:stop()
  end)

  it("gives the same ids for the same seed", function()
    local ids = {}
    for run = 1, 2 do
      local sb = assert(sandbox.start { port = 0, seed = 42 })
      local _, _, body = ec2(sb, A, { Action = "CreateVpc", CidrBlock = "10.0.0.0/16" })
      ids[run] = body:match("<vpcId>(vpc%-%x+)</vpcId>")
      sb:stop()
    end
    assert.is_string(ids[1])
    assert.equals(ids[1], ids[2])
  end)

  it("keeps its world in state_dir across restarts, and forgets it on reset", function()
    local sb = assert(sandbox.start { port = 0, state_dir = dir .. "/world" })
    local _, _, body = ec2(sb, B, { Action = "CreateVpc", CidrBlock = "10.1.0.0/16" })
    local vpc = body:match("<vpcId>(vpc%-%x+)</vpcId>")
    ec2(sb, B, { Action = "CreateTransitGateway", ["Options.AmazonSideAsn"] = "64600" })
    sb:stop()
    sb = assert(sandbox.start { port = 0, state_dir = dir .. "/world" })
    _, _, body = ec2(sb, B, { Action = "DescribeVpcs" })
    assert.matches(vpc, body, 1, true)
    -- numbers come back as AWS writes them, not as the floats JSON decoding gives
    _, _, body = ec2(sb, B, { Action = "DescribeTransitGateways" })
    assert.matches("<amazonSideAsn>64600</amazonSideAsn>", body, 1, true)
    -- new ids continue the sequence instead of repeating the first ones
    _, _, body = ec2(sb, B, { Action = "CreateVpc", CidrBlock = "10.2.0.0/16" })
    assert.are_not.equal(vpc, body:match("<vpcId>(vpc%-%x+)</vpcId>"))
    sb:reset()
    _, _, body = ec2(sb, B, { Action = "DescribeVpcs" })
    assert.matches("<vpcSet></vpcSet>", body)
    sb:stop()
  end)

  it("injects throttles, 5xx, resets and latency at the configured rates, reproducibly", function()
    local function tally(seed)
      local sb = assert(sandbox.start { port = 0, seed = seed,
        faults = { throttle = 0.3, error5xx = 0.2, reset = 0.1, latency_ms = 5 } })
      local counts = { ok = 0, throttle = 0, error5xx = 0, reset = 0 }
      local sequence = {}
      for _ = 1, 60 do
        local status, _, body = ec2(sb, A, { Action = "DescribeVpcs" })
        local kind = status == "reset" and "reset" or (status == 503 and body:find("RequestLimitExceeded", 1, true)
          and "throttle") or (status == 500 and "error5xx") or (status == 200 and "ok") or tostring(status)
        counts[kind] = (counts[kind] or 0) + 1
        sequence[#sequence + 1] = kind
      end
      sb:stop()
      return counts, table.concat(sequence, ",")
    end
    local counts, seq1 = tally(5)
    for _, kind in ipairs({ "ok", "throttle", "error5xx", "reset" }) do
      assert.is_true(counts[kind] > 0, kind .. " never happened")
    end
    assert.equals(60, counts.ok + counts.throttle + counts.error5xx + counts.reset)
    local _, seq2 = tally(5)
    assert.equals(seq1, seq2)
  end)

  it("refuses a busy port and bad options", function()
    local sb = assert(sandbox.start { port = 0 })
    local other, err = sandbox.start { port = sb.port }
    assert.is_nil(other)
    assert.equals("in_use", err.code)
    sb:stop()
    assert.has_error(function() sandbox.start { accounts = { "12" } } end)
  end)
end)
