-- `awsnet snapshot --organization` against the sandbox standing for an organisation (issue 16):
-- every account x region collected at once with throttles and latency injected, a member account
-- whose OrganizationAccountAccessRole was deleted recorded in manifest.json with AWS's code (the
-- others complete), a disabled opt-in region refused and recorded, what was collected equal to
-- what the AWS CLI lists for the same account, reach.load stating the failures, and Ctrl-C
-- keeping the whole account x region folders. Also the adaptive mode's rate curve.
local aws = require "awsnet.aws"
local cjson = require "cjson"
local core = require "awsnet.core"
local organization = require "awsnet.snapshot.organization"
local process = require "awsnet.svc.process"
local ratelimit = require "awsnet.aws.ratelimit"
local sandbox = require "awsnet.sandbox"
local q = process.quote

local P = core.process
local clock = core.httpd.monotonic
local AWSNET = (os.getenv("PWD") or ".") .. "/bin/awsnet"
local MANAGEMENT, BROKEN = "111111111111", "300000000002"
local REGIONS = { "eu-west-1", "us-east-1" }

local function read_json(path)
  local f = assert(io.open(path, "r"))
  local doc = cjson.decode(f:read("a"))
  f:close()
  return doc
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

describe("awsnet snapshot --organization #organization", function()
  local sb, dir
  setup(function()
    sb = assert(sandbox.spawn { port = 0, transition_s = 0, seed = 16, organization = 6, regions = REGIONS,
      populate = { vpcs = 2 }, faults = { rate_limit = 10, latency_ms = 5 } })
    dir = process.tempdir("awsnet-orgsnap")
  end)
  teardown(function()
    if sb then sb.stop() end
    if dir then process.remove(dir) end
  end)

  local function caller_client(service, region, provider)
    return assert(aws.client(service, { region = region, endpoint = sb.endpoint, max_attempts = 10,
      credentials = provider or { access_key_id = MANAGEMENT, secret_access_key = "test" } }))
  end

  local function cli(account, args)
    return assert(process.run(string.format(
      "env -u LD_PRELOAD HOME=%s AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER= " ..
      "AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_MAX_ATTEMPTS=10 " ..
      "/usr/bin/aws --endpoint-url %s --output json %s", q(dir), account, sb.endpoint, args)))
  end

  it("collects every account and region, and records the account whose role is gone", function()
    -- the member account's own administrator removes the role the organisation made
    local iam = assert(aws.client("iam", { region = "us-east-1", endpoint = sb.endpoint, max_attempts = 10,
      credentials = { access_key_id = BROKEN, secret_access_key = "test" } }))
    assert(iam:call("DetachRolePolicy", { RoleName = "OrganizationAccountAccessRole",
      PolicyArn = "arn:aws:iam::aws:policy/AdministratorAccess" }))
    assert(iam:call("DeleteRole", { RoleName = "OrganizationAccountAccessRole" }))

    local events = {}
    local out = dir .. "/all"
    local manifest = assert(organization.take { out = out, client = caller_client, regions = "all",
      on_event = function(e) events[#events + 1] = e end })
    assert.equal(MANAGEMENT, manifest.organization.management)
    assert.equal("arn:aws:iam::" .. MANAGEMENT .. ":root", manifest.by)
    assert.equal(6, #manifest.accounts)
    -- the failing account, with STS's code; nothing else failed despite the throttles
    assert.equal(1, #manifest.failures)
    local f = manifest.failures[1]
    assert.same({ BROKEN, "sts:AssumeRole", "AccessDenied" }, { f.account, f.operation, f.code })
    assert.is_true(manifest.calls.throttles > 0, "the sandbox throttled some calls")
    assert.is_true(manifest.calls.retries >= manifest.calls.throttles)
    local complete = 0
    for _, a in ipairs(manifest.accounts) do
      if a.id == BROKEN then
        assert.equal("failed", a.status)
        assert.is_false(exists(out .. "/aws_configs/accounts/" .. a.id))
      else
        -- --regions all: the enabled regions DescribeRegions lists, not the disabled opt-in one
        local names = {}
        for _, r in ipairs(a.regions) do
          names[#names + 1] = r.region
          assert.equal("complete", r.status)
          assert.equal(2, r.counts.Vpcs)
          complete = complete + 1
        end
        assert.same(REGIONS, names)
      end
    end
    assert.equal(5 * 2, complete)
    -- what one member account holds, as the AWS CLI lists it with that account's own keys
    local member = "300000000003"
    for _, region in ipairs(REGIONS) do
      local listed = cjson.decode((cli(member, "ec2 describe-subnets --region " .. region))).Subnets
      local saved = read_json(string.format("%s/aws_configs/accounts/%s/%s/Subnets.json", out, member, region)).Subnets
      local ids = function(list)
        local t = {}
        for _, s in ipairs(list) do t[#t + 1] = s.SubnetId .. " " .. s.CidrBlock .. " " .. s.VpcId end
        table.sort(t)
        return t
      end
      assert.equal(4, #listed)
      assert.same(ids(listed), ids(saved))
    end
    -- events: every account and account x region told, progress with the call counts
    local regions_done, progress = 0, nil
    for _, e in ipairs(events) do
      if e.event == "region" and e.status == "complete" then regions_done = regions_done + 1 end
      if e.event == "progress" then progress = e end
    end
    assert.equal(10, regions_done)
    assert.is_table(progress)
    -- reach.load: the failed account in skipped and in every trace's assumptions
    local model = assert(require("awsnet.reach").load(out))
    local said
    for _, s in ipairs(model.skipped) do
      if s.account == BROKEN and s.reason:find("AccessDenied", 1, true) then said = true end
    end
    assert.is_true(said, "the failed account is in model.skipped")
    local r = assert(model:trace { src = "10.1.1.10", dst = "10.1.2.10", protocol = "tcp", port = 443 })
    local text = table.concat(r.assumptions, "\n")
    assert.truthy(text:find("account " .. BROKEN .. " not collected (sts:AssumeRole: AccessDenied)", 1, true), text)
  end)

  it("assumes a member's role again before its session ends", function()
    -- sessions of an hour: a clock 3100 s ahead sees each within 10 minutes of its end
    local function run(skewed)
      local assumed = 0
      local manifest = assert(organization.take { out = dir .. "/reassume", regions = { "us-east-1" },
        accounts = { MANAGEMENT, "300000000003", "300000000004" }, clock = skewed,
        client = function(service, region, provider)
          local c = caller_client(service, region, provider)
          if service == "sts" then
            local parse = c.parse
            c.parse = function(self, op, res)
              local out, err = parse(self, op, res)
              if out and op == "AssumeRole" then assumed = assumed + 1 end
              return out, err
            end
          end
          return c
        end })
      for _, a in ipairs(manifest.accounts) do
        for _, r in ipairs(a.regions) do assert.equal("complete", r.status) end
      end
      assert.same({}, manifest.failures)
      return assumed
    end
    assert.equal(2, run(nil))
    -- each member's session once more (not again within a minute)
    assert.equal(4, run(function() return os.time() + 3100 end))
  end)

  it("records a disabled region per account and keeps the others (CLI, --json events)", function()
    local out = dir .. "/optin"
    local argv = string.format("env AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=test AWS_CONFIG_FILE=/dev/null " ..
      "AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_MAX_ATTEMPTS=10 lua5.4 %s snapshot --organization --json " ..
      "--regions us-east-1,af-south-1 --accounts %s,300000000001 --endpoint %s --out %s; echo rc=$?",
      MANAGEMENT, q(AWSNET), MANAGEMENT, sb.endpoint, q(out))
    local text = assert(process.run(argv))
    assert.truthy(text:find("rc=1", 1, true), text)   -- saved, with failures
    local lines = 0
    for line in text:gmatch("[^\n]+") do
      if line:sub(1, 1) == "{" then
        assert.is_table(cjson.decode(line))
        lines = lines + 1
      end
    end
    assert.is_true(lines >= 4)
    local manifest = read_json(out .. "/manifest.json")
    assert.equal(2, #manifest.failures)
    for _, f in ipairs(manifest.failures) do
      -- the first answer refusing credentials in a region the account has not enabled (each
      -- service's code for it: EC2's, STS and RDS's, Lambda's)
      assert.equal("af-south-1", f.region)
      assert.truthy(({ AuthFailure = 1, InvalidClientTokenId = 1, UnrecognizedClientException = 1 })[f.code], f.code)
    end
    assert.is_true(exists(out .. "/aws_configs/accounts/300000000001/us-east-1/Vpcs.json"))
    assert.is_false(exists(out .. "/aws_configs/accounts/300000000001/af-south-1"))
  end)

  it("shows a progress line on a terminal", function()
    -- util-linux's script(1) gives the command a terminal and records what it wrote there
    local out = dir .. "/tty"
    local typescript = dir .. "/typescript"
    local cmd = string.format("env AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=test AWS_CONFIG_FILE=/dev/null " ..
      "AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_MAX_ATTEMPTS=10 lua5.4 %s snapshot --organization " ..
      "--regions us-east-1 --accounts %s,300000000001 --endpoint %s --out %s", MANAGEMENT, q(AWSNET), MANAGEMENT,
      sb.endpoint, q(out))
    assert(process.run(string.format("script -qec %s %s </dev/null >/dev/null", q(cmd), q(typescript))))
    local text = assert(process.read_file(typescript))
    -- rewritten in place (carriage return, erase line), with what is done and the counts
    assert.truthy(text:find("\r\27%[Kaccounts %d+/2  regions %d+/%d+  calls %d+  retries %d+  errors %d+  %d+ s"), text)
    assert.truthy(text:find("2/2 account x region complete", 1, true), text)
  end)

  it("keeps the whole account x region folders after Ctrl-C", function()
    -- a slower organisation of its own: the run is still going when the signal comes
    local slow = assert(sandbox.spawn { port = 0, seed = 17, organization = 4, regions = REGIONS,
      populate = { vpcs = 2 }, faults = { latency_ms = 100 } })
    finally(function() slow.stop() end)
    local out = dir .. "/stopped"
    local log = dir .. "/stopped.log"
    local pid = assert(P.spawn({ "lua5.4", AWSNET, "snapshot", "--organization", "--json", "--regions",
      "us-east-1,eu-west-1", "--endpoint", slow.endpoint, "--out", out }, { group = true, stdin = "/dev/null",
      stdout = log, stderr = dir .. "/stopped.err", env = { AWS_ACCESS_KEY_ID = MANAGEMENT,
      AWS_SECRET_ACCESS_KEY = "test", AWS_CONFIG_FILE = "/dev/null", AWS_SHARED_CREDENTIALS_FILE = "/dev/null" } }))
    -- as soon as one account x region is on disk
    local deadline = clock() + 30
    while clock() < deadline and not (process.read_file(log) or ""):find('"status":"complete"', 1, true) do
      P.sleep(0.02)
    end
    assert(P.kill(pid, "INT"))
    local how, code = P.wait(pid, 20, false)
    assert.same({ "exited", 130 }, { how, code })
    local manifest = read_json(out .. "/manifest.json")
    assert.is_true(manifest.interrupted)
    local complete, left = 0, 0
    for _, a in ipairs(manifest.accounts) do
      for _, r in ipairs(a.regions) do
        local folder = string.format("%s/aws_configs/accounts/%s/%s", out, a.id, r.region)
        if r.status == "complete" then
          complete = complete + 1
          for key in pairs(r.counts) do assert.is_true(exists(folder .. "/" .. key .. ".json"), folder .. " " .. key) end
        else
          assert.equal("incomplete", r.status)
          assert.is_false(exists(folder))
          left = left + 1
        end
      end
    end
    assert.is_true(complete >= 1)
    -- what was not complete is said by reach.load
    local model = assert(require("awsnet.reach").load(out))
    local incomplete = 0
    for _, s in ipairs(model.skipped) do
      if s.reason:find("snapshot interrupted", 1, true) then incomplete = incomplete + 1 end
    end
    assert.equal(left, incomplete)
  end)
end)

describe("the adaptive retry mode's rate (awsnet.aws.ratelimit)", function()
  it("grows back along the SDKs' cubic curve after a throttle at 10 requests/s", function()
    -- the SDKs' reference values: last max rate 10, throttled at t = 5
    local b = ratelimit.new(0)
    b.last_max_rate, b.last_throttle, b.measured_rate, b.enabled = 10, 5, 1000, true
    local expected = { [5] = 7.0, [6] = 9.64893600966, [7] = 10.000030849917364 }
    for t = 5, 7 do
      b:update(t, false)
      assert.near(expected[t], b:rate(), 1e-9)
    end
  end)

  it("is off until a throttle, then scales the measured rate by 0.7 and makes callers wait", function()
    local b = ratelimit.new(0)
    assert.equal(0, b:acquire(0))
    assert.is_nil(b:rate())
    for i = 1, 20 do b:update(i / 10, false) end   -- 10 requests/s for two seconds
    b:update(2.05, true)
    assert.is_true(b:rate() > 0 and b:rate() < 10)
    local waits = 0
    for _ = 1, 5 do if b:acquire(2.06) > 0 then waits = waits + 1 end end
    assert.is_true(waits > 0, "a throttled bucket holds requests back")
  end)
end)
