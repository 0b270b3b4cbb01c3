-- The sandbox standing for an organisation (`awsnet sandbox --organization N`), driven by the AWS
-- CLI (botocore's own pagination and parsing): paged ListAccounts from the management account and
-- AccessDeniedException for a member, DescribeOrganization, OrganizationAccountAccessRole assumable
-- from the management account only, a chained role session limited to one hour (AWS's rule), and
-- DescribeRegions with the enabled regions and one opt-in region not opted in, whose requests are
-- refused.
local cjson = require "cjson"
local process = require "awsnet.svc.process"
local sandbox = require "awsnet.sandbox"
local q = process.quote

local MANAGEMENT = "111111111111"

describe("sandbox --organization #organization", function()
  local sb, home
  setup(function()
    sb = assert(sandbox.spawn { port = 0, organization = 23, regions = { "us-east-1", "eu-west-1" } })
    home = process.tempdir("awsnet-sbo")
  end)
  teardown(function()
    if sb then sb.stop() end
    if home then process.remove(home) end
  end)

  -- the AWS CLI as `account` (its root keys), or with `creds` from an AssumeRole; JSON decoded, or
  -- nil and the error text
  local function cli(account, args, creds)
    local keys = creds and string.format("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_SESSION_TOKEN=%s",
      q(creds.AccessKeyId), q(creds.SecretAccessKey), q(creds.SessionToken))
      or string.format("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=test", account)
    local out = process.run(string.format("env -u LD_PRELOAD HOME=%s AWS_CONFIG_FILE=/dev/null " ..
      "AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER= %s AWS_DEFAULT_REGION=us-east-1 /usr/bin/aws " ..
      "--endpoint-url %s --output json %s 2>&1; echo \"rc=$?\"", q(home), keys, sb.endpoint, args))
    local body, rc = out:match("^(.-)rc=(%d+)%s*$")
    if rc ~= "0" then return nil, body end
    return cjson.decode(body)
  end

  it("lists every account over pages, to the management account only", function()
    -- --page-size 7: the CLI follows NextToken over four pages
    local all = assert(cli(MANAGEMENT, "organizations list-accounts --page-size 7"))
    assert.equals(23, #all.Accounts)
    local seen = {}
    for _, a in ipairs(all.Accounts) do
      assert.matches("^%d+$", a.Id)
      assert.is_nil(seen[a.Id])
      seen[a.Id] = true
      assert.equals("ACTIVE", a.Status)
    end
    assert.is_true(seen[MANAGEMENT] and seen["222222222222"])
    local org = assert(cli("222222222222", "organizations describe-organization")).Organization
    assert.equals(MANAGEMENT, org.MasterAccountId)
    assert.matches("^o%-", org.Id)
    local _, err = cli("222222222222", "organizations list-accounts")
    assert.matches("AccessDeniedException", err)
  end)

  it("lets the management account assume OrganizationAccountAccessRole, for an hour when chained", function()
    local role = "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole"
    local r = assert(cli(MANAGEMENT, "sts assume-role --role-arn " .. role .. " --role-session-name mgmt"))
    local who = assert(cli(nil, "sts get-caller-identity", r.Credentials))
    assert.equals("222222222222", who.Account)
    -- another member cannot
    local _, err = cli("300000000001", "sts assume-role --role-arn " .. role .. " --role-session-name other")
    assert.matches("AccessDenied", err)
    -- from the assumed role into a third account's role: role chaining, one hour at most
    local third = "arn:aws:iam::300000000002:role/OrganizationAccountAccessRole"
    _, err = cli(nil, "sts assume-role --role-arn " .. third .. " --role-session-name chained --duration-seconds 7200",
      r.Credentials)
    assert.matches("1 hour session limit for roles assumed by role chaining", err)
  end)

  it("describes the enabled regions and refuses the opt-in region that is not", function()
    local enabled = assert(cli(MANAGEMENT, "ec2 describe-regions")).Regions
    local names = {}
    for _, r in ipairs(enabled) do names[#names + 1] = r.RegionName .. " " .. r.OptInStatus end
    assert.same({ "eu-west-1 opt-in-not-required", "us-east-1 opt-in-not-required" }, names)
    local all = assert(cli(MANAGEMENT, "ec2 describe-regions --all-regions")).Regions
    assert.equals(3, #all)
    local off
    for _, r in ipairs(all) do if r.OptInStatus == "not-opted-in" then off = r.RegionName end end
    assert.is_string(off)
    local _, err = cli(MANAGEMENT, "ec2 describe-vpcs --region " .. off)
    assert.matches("AuthFailure", err)
  end)
end)
