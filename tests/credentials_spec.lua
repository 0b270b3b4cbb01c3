-- Every credential source: files in a temp dir, and loopback servers standing in for STS, the
-- container credentials endpoint and EC2 instance metadata.
local aws = require "awsnet.aws"
local credentials = require "awsnet.credentials"
local process = require "awsnet.svc.process"
local stub = require "helpers.stub_http"
local time = require "awsnet.aws.time"

local SECRET_A = "secretAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
local SECRET_B = "secretBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
local ROLE_SECRET = "roleSecretRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR"
local ROLE_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLEROLETOKEN/+=="

local function assume_role_response(expiration, key_id)
  return { status = 200, body = [[<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::222222222222:assumed-role/ops/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>]] .. (key_id or "ASIAROLEKEY") .. [[</AccessKeyId>
      <SecretAccessKey>]] .. ROLE_SECRET .. [[</SecretAccessKey>
      <SessionToken>]] .. ROLE_TOKEN .. [[</SessionToken>
      <Expiration>]] .. time.iso8601(expiration) .. [[</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>sts-req</RequestId></ResponseMetadata>
</AssumeRoleResponse>]] }
end

local form = stub.form

describe("credentials", function()
  local dir, srv, env

  setup(function()
    dir = process.tempdir("awsnet-creds")
    srv = stub.start()
    process.write_file(dir .. "/config", table.concat({
      "[default]", "region = eu-west-1", "",
      "[profile a]", "region = eu-west-1", "max_attempts = 7",
      "s3 =", "  max_concurrent_requests = 10", "",
      "[profile b]", "region = eu-central-1", "",
      "[profile b-role]", "role_arn = arn:aws:iam::222222222222:role/ops", "source_profile = a",
      "external_id = ext-123", "role_session_name = runbook", "duration_seconds = 1800", "region = eu-central-1", "",
      "[profile env-role]", "role_arn = arn:aws:iam::222222222222:role/ops", "credential_source = Environment", "",
      "[profile proc]", "credential_process = " .. dir .. "/proc.sh", "",
      "[profile bad-proc]", "credential_process = " .. dir .. "/bad.sh", "",
      "[profile loop1]", "role_arn = arn:r1", "source_profile = loop2", "",
      "[profile loop2]", "role_arn = arn:r2", "source_profile = loop1", "",
      "[profile config-keys]", "aws_access_key_id = AKIACONFIG", "aws_secret_access_key = " .. SECRET_B, "",
      "[profile b-region-only]", "region = eu-central-1", "",
      "[profile imds-role]", "role_arn = arn:aws:iam::222222222222:role/ops", "credential_source = Ec2InstanceMetadata", "",
    }, "\n"))
    process.write_file(dir .. "/credentials", table.concat({
      "# shared credentials", "[a]", "aws_access_key_id = AKIAACCOUNTA", "aws_secret_access_key = " .. SECRET_A, "",
      "[b]", "aws_access_key_id=AKIAACCOUNTB", "aws_secret_access_key=" .. SECRET_B, "aws_session_token=tokB", "",
      "[default]", "aws_access_key_id = AKIADEFAULT", "aws_secret_access_key = " .. SECRET_A, "",
    }, "\n"))
    process.write_file(dir .. "/proc.sh", "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROC\", " ..
      "\"SecretAccessKey\": \"" .. SECRET_B .. "\", \"SessionToken\": \"procTok\", " ..
      "\"Expiration\": \"2099-01-01T00:00:00Z\"}'\n", "755")
    process.write_file(dir .. "/bad.sh", "#!/bin/sh\necho '{\"SecretAccessKey\": \"" .. SECRET_B .. "\"}'\nexit 3\n", "755")
    process.write_file(dir .. "/token", "container-token-from-file\n")
  end)

  teardown(function()
    if srv then srv:stop() end
    os.execute("rm -rf " .. process.quote(dir))
  end)

  before_each(function()
    env = { AWS_CONFIG_FILE = dir .. "/config", AWS_SHARED_CREDENTIALS_FILE = dir .. "/credentials",
      AWS_EC2_METADATA_DISABLED = "true", AWS_ENDPOINT_URL_STS = srv.url, HOME = dir }
  end)

  it("prefers explicit credentials, then the environment", function()
    env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN = "AKIAENV", SECRET_A, "envTok"
    local c = assert(credentials.resolve({ env = env }))
    assert.equals("AKIAENV", c.access_key_id)
    assert.equals("envTok", c.session_token)
    assert.equals("environment", c.source)
    local e = assert(credentials.resolve({ env = env, credentials = { access_key_id = "AKIAX", secret_access_key = SECRET_B } }))
    assert.equals("AKIAX", e.access_key_id)
  end)

  it("reads profiles from the shared files; an explicit profile ignores environment keys", function()
    env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY = "AKIAENV", SECRET_A
    local a = assert(credentials.resolve({ env = env, profile = "a" }))
    assert.equals("AKIAACCOUNTA", a.access_key_id)
    assert.equals(SECRET_A, a.secret_access_key)
    local b = assert(credentials.resolve({ env = env, profile = "b" }))
    assert.equals("AKIAACCOUNTB", b.access_key_id)
    assert.equals("tokB", b.session_token)
    assert.equals("AKIACONFIG", assert(credentials.resolve({ env = env, profile = "config-keys" })).access_key_id)
    env.AWS_ACCESS_KEY_ID = nil
    env.AWS_PROFILE = "b"
    assert.equals("AKIAACCOUNTB", assert(credentials.resolve({ env = env })).access_key_id)
    env.AWS_PROFILE = nil
    assert.equals("AKIADEFAULT", assert(credentials.resolve({ env = env })).access_key_id)
    local _, err = credentials.resolve({ env = env, profile = "nope" })
    assert.equals("profile_not_found", err.code)
  end)

  it("finds the region in AWS_REGION, AWS_DEFAULT_REGION, then the profile", function()
    assert.equals("eu-central-1", credentials.region({ env = env, profile = "b" }))
    assert.equals("eu-west-1", credentials.region({ env = env }))
    env.AWS_DEFAULT_REGION = "ap-south-1"
    assert.equals("ap-south-1", credentials.region({ env = env, profile = "b" }))
    env.AWS_REGION = "us-west-2"
    assert.equals("us-west-2", credentials.region({ env = env, profile = "b" }))
    assert.equals("sa-east-1", credentials.region({ env = env, region = "sa-east-1" }))
    assert.equals(7, aws.client("ec2", { env = env, profile = "a" }).max_attempts)
  end)

  it("assumes role_arn with source_profile through STS, caches, and refreshes before expiry", function()
    local now = 1795000000
    srv:routes({ { body_contains = "Action=AssumeRole", responses = { assume_role_response(now + 3600, "ASIAFIRST"),
      assume_role_response(now + 7200, "ASIASECOND") } } })
    local provider = credentials.provider({ env = env, profile = "b-role", clock = function() return now end })
    local c = assert(provider:get())
    assert.equals("ASIAFIRST", c.access_key_id)
    assert.equals(ROLE_SECRET, c.secret_access_key)
    assert.equals(ROLE_TOKEN, c.session_token)
    assert.equals(now + 3600, c.expiration)
    local got = srv:requests()
    assert.equals(1, #got)
    local f = form(got[1].body)
    assert.equals("arn:aws:iam::222222222222:role/ops", f.RoleArn)
    assert.equals("runbook", f.RoleSessionName)
    assert.equals("ext-123", f.ExternalId)
    assert.equals("1800", f.DurationSeconds)
    -- signed by the source profile's key, in the profile's region
    assert.matches("Credential=AKIAACCOUNTA/%d+/eu%-central%-1/sts/aws4_request", got[1].headers.authorization)

    assert.equals(c, provider:get())
    assert.equals(1, #srv:requests())
    now = now + 3600 - 300 -- five minutes left: renewed
    assert.equals("ASIASECOND", assert(provider:get()).access_key_id)
    assert.equals(2, #srv:requests())
  end)

  it("assumes a role from environment keys (credential_source) and reports STS errors", function()
    env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY = "AKIAENVSRC", SECRET_A
    srv:routes({ { responses = { assume_role_response(os.time() + 3600) } } })
    assert(credentials.resolve({ env = env, profile = "env-role" }))
    assert.matches("Credential=AKIAENVSRC/", srv:requests()[1].headers.authorization)
    srv:routes({ { responses = { { status = 403, body = [[<ErrorResponse><Error><Type>Sender</Type>
      <Code>AccessDenied</Code><Message>not authorized to perform sts:AssumeRole</Message></Error>
      <RequestId>x</RequestId></ErrorResponse>]] } } } })
    local _, err = credentials.resolve({ env = env, profile = "env-role" })
    assert.equals("AccessDenied", err.code)
    local _, loop = credentials.resolve({ env = env, profile = "loop1" })
    assert.equals("invalid_config", loop.code)
  end)

  it("runs credential_process and keeps its output out of errors", function()
    local c = assert(credentials.resolve({ env = env, profile = "proc" }))
    assert.equals("AKIAPROC", c.access_key_id)
    assert.equals("procTok", c.session_token)
    assert.equals(time.parse_iso8601("2099-01-01T00:00:00Z"), c.expiration)
    local _, err = credentials.resolve({ env = env, profile = "bad-proc" })
    assert.equals("credential_process", err.code)
    assert.is_nil(tostring(err):find(SECRET_B, 1, true))
  end)

  it("gets container credentials with the authorization token", function()
    local body = '{"AccessKeyId":"ASIACONTAINER","SecretAccessKey":"' .. SECRET_B ..
      '","Token":"ctok","Expiration":"2099-01-01T00:00:00Z","RoleArn":"arn:task"}'
    srv:routes({ { path = "/creds", header = { "Authorization", "container-token-from-file" },
      responses = { { status = 200, body = body } } },
      { path = "/creds", header = { "Authorization", "env-token" }, responses = { { status = 200, body = body } } },
      { path = "/creds", responses = { { status = 401, body = "no" } } } })
    local e = { AWS_CONTAINER_CREDENTIALS_FULL_URI = srv.url .. "/creds",
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = dir .. "/token",
      AWS_CONTAINER_AUTHORIZATION_TOKEN = "env-token", AWS_EC2_METADATA_DISABLED = "true", HOME = dir }
    local c = assert(credentials.resolve({ env = e }))
    assert.equals("ASIACONTAINER", c.access_key_id)
    assert.equals("ctok", c.session_token)
    assert.equals("container", c.source)
    e.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = nil
    local own_client = require("awsnet.http").new()
    assert(credentials.resolve({ env = e, http = own_client }))
    own_client:close()
    e.AWS_CONTAINER_AUTHORIZATION_TOKEN = "wrong"
    local _, err = credentials.resolve({ env = e })
    assert.equals("container", err.code)
    assert.equals(3, #srv:requests())
    -- plain http to anything but loopback or the agent is refused before any request
    e.AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://192.0.2.10/creds"
    local _, refused = credentials.resolve({ env = e })
    assert.equals("container", refused.code)
    assert.matches("must be https", refused.message)
    assert.equals(3, #srv:requests())
    -- IPv6 loopback is allowed (nothing listens there: the request itself fails)
    e.AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://[::1]:" .. process.free_port() .. "/creds"
    local _, v6 = credentials.resolve({ env = e })
    assert.matches("endpoint", v6.message)
  end)

  it("gets EC2 instance metadata credentials with an IMDSv2 token first", function()
    local creds = '{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDS","SecretAccessKey":"' .. SECRET_A ..
      '","Token":"itok","Expiration":"2099-01-01T00:00:00Z"}'
    srv:routes({
      { method = "PUT", path = "/latest/api/token", header = { "X-aws-ec2-metadata-token-ttl-seconds", "21600" },
        responses = { { status = 200, body = "imds-session-token" } } },
      { method = "GET", path = "/latest/meta-data/iam/security-credentials/",
        header = { "X-aws-ec2-metadata-token", "imds-session-token" },
        responses = { { status = 200, body = "instance-role\n" } } },
      { method = "GET", path = "/latest/meta-data/iam/security-credentials/instance-role",
        header = { "X-aws-ec2-metadata-token", "imds-session-token" }, responses = { { status = 200, body = creds } } },
    })
    local e = { AWS_EC2_METADATA_SERVICE_ENDPOINT = srv.url .. "/", HOME = dir }
    local c = assert(credentials.resolve({ env = e }))
    assert.equals("ASIAIMDS", c.access_key_id)
    assert.equals("imds", c.source)
    local got = srv:requests()
    assert.equals(3, #got)
    assert.equals("PUT", got[1].method)
    -- container credentials come before instance metadata
    srv:routes({ { path = "/creds", responses = { { status = 200, body = creds:gsub("ASIAIMDS", "ASIACONT") } } } })
    e.AWS_CONTAINER_CREDENTIALS_FULL_URI = srv.url .. "/creds"
    assert.equals("ASIACONT", assert(credentials.resolve({ env = e })).access_key_id)
    -- and nothing at all is a clear error
    local _, err = credentials.resolve({ env = { AWS_EC2_METADATA_DISABLED = "true", HOME = dir .. "/none" } })
    assert.equals("no_credentials", err.code)
    assert.matches("instance metadata (disabled by AWS_EC2_METADATA_DISABLED)", err.message, 1, true)
  end)

  describe("with no credentials anywhere", function()
    -- a lone secret in the environment is not a key pair: it must not apply, nor be shown
    local function bare_env(imds_endpoint)
      return { HOME = dir .. "/none", AWS_SECRET_ACCESS_KEY = SECRET_A, AWS_METADATA_SERVICE_TIMEOUT = "1",
        AWS_EC2_METADATA_SERVICE_ENDPOINT = imds_endpoint }
    end

    local function assert_lists_every_source(err, imds_reason)
      assert.equals("no_credentials", err.code)
      local m = err.message
      assert.matches("^no credentials found; tried: ", m)
      assert.matches("environment (AWS_ACCESS_KEY_ID", m, 1, true)
      assert.matches("profile 'default' in " .. dir .. "/none/.aws/config, " .. dir .. "/none/.aws/credentials", m, 1, true)
      assert.matches("credential_process", m, 1, true)
      assert.matches("container (AWS_CONTAINER_CREDENTIALS_", m, 1, true)
      assert.matches("instance metadata (" .. imds_reason, m, 1, true)
      assert.equals(5, #err.tried)
      assert.is_nil(tostring(err):find(SECRET_A, 1, true))
    end

    it("says so when instance metadata refuses the token (403), listing every source", function()
      srv:routes({ { method = "PUT", path = "/latest/api/token", responses = { { status = 403, body = "Forbidden" } } } })
      local _, err = credentials.resolve({ env = bare_env(srv.url) })
      assert_lists_every_source(err, "token request answered 403")
      assert.equals("imds", err.imds_code)
      assert.equals(1, #srv:requests())
    end)

    it("says so when instance metadata has no role (404) or is unreachable", function()
      srv:routes({ { method = "PUT", path = "/latest/api/token", responses = { { status = 200, body = "t" } } } })
      local _, no_role = credentials.resolve({ env = bare_env(srv.url) })
      assert_lists_every_source(no_role, "no instance profile role (status 404)")
      local _, down = credentials.resolve({ env = bare_env("http://127.0.0.1:" .. process.free_port()) })
      assert_lists_every_source(down, "unreachable: ")
      -- the same through a client: the call fails before any request, with the same error
      local c = aws.client("ec2", { region = "eu-west-1", endpoint = srv.url, env = bare_env(srv.url) })
      srv:routes({})
      local _, via_client = c:call("DescribeVpcs")
      assert.equals("no_credentials", via_client.code)
    end)

    it("names the explicit profile and that the environment was skipped", function()
      env.AWS_EC2_METADATA_DISABLED = nil
      env.AWS_EC2_METADATA_SERVICE_ENDPOINT = srv.url
      env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY = "AKIAENV", SECRET_A
      srv:routes({ { method = "PUT", path = "/latest/api/token", responses = { { status = 403, body = "Forbidden" } } } })
      local _, err = credentials.resolve({ env = env, profile = "b-region-only" })
      assert.equals("no_credentials", err.code)
      assert.matches("environment (skipped: profile 'b-region-only' given explicitly)", err.message, 1, true)
      assert.matches("profile 'b-region-only' in " .. dir .. "/config, " .. dir .. "/credentials (no keys)",
        err.message, 1, true)
      assert.is_nil(err.message:find(SECRET_A, 1, true))
    end)

    it("keeps the instance metadata error when a profile names it as credential_source", function()
      env.AWS_EC2_METADATA_DISABLED = nil
      env.AWS_EC2_METADATA_SERVICE_ENDPOINT = srv.url
      srv:routes({ { method = "PUT", path = "/latest/api/token", responses = { { status = 403, body = "Forbidden" } } } })
      local _, err = credentials.resolve({ env = env, profile = "imds-role" })
      assert.equals("imds", err.code)
      assert.matches("403", err.message)
    end)
  end)

  it("signs two accounts side by side", function()
    srv:routes({ { responses = { { status = 200, body = "<GetCallerIdentityResponse><GetCallerIdentityResult>" ..
      "<Account>1</Account></GetCallerIdentityResult></GetCallerIdentityResponse>" } } } })
    local a = aws.client("sts", { profile = "a", env = env, endpoint = srv.url })
    local b = aws.client("sts", { profile = "b", env = env, endpoint = srv.url })
    assert.equals("eu-west-1", a.region)
    assert.equals("eu-central-1", b.region)
    local _, errs = aws.call_many({ { a, "GetCallerIdentity" }, { b, "GetCallerIdentity" } })
    assert.same({}, errs)
    local seen = {}
    for _, r in ipairs(srv:requests()) do
      seen[r.headers.authorization:match("Credential=(%w+)/")] = r.headers["x-amz-security-token"] or "none"
    end
    assert.same({ AKIAACCOUNTA = "none", AKIAACCOUNTB = "tokB" }, seen)
  end)

  it("never shows secrets in tostring or errors", function()
    local c = assert(credentials.resolve({ env = env, profile = "b" }))
    local text = tostring(c)
    assert.matches("AKIAACCOUNTB", text)
    assert.is_nil(text:find(SECRET_B, 1, true))
    assert.is_nil(text:find("tokB", 1, true))
    local provider = credentials.provider({ env = env, profile = "b" })
    provider:get()
    assert.is_nil(tostring(provider):find(SECRET_B, 1, true))
  end)
end)
