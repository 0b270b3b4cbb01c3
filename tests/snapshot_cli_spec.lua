-- `awsnet snapshot` against the AWS CLI: the sandbox holds a small network, awsnet snapshots it
-- with the model files the CLI itself uses (AWS CLI v2's own botocore copy), and every file that
-- is one call's output must equal what `aws <service> <command> --output json` prints for the
-- same state (the same keys, types and values; empty lists as []; key order aside).
local aws = require "awsnet.aws"
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
local sandbox = require "awsnet.sandbox"
local snapshot = require "awsnet.snapshot"
local process = require "awsnet.svc.process"
local q = process.quote

local A = "111111111111"
local CLI_MODELS = "/usr/lib/python3/dist-packages/awscli/botocore/data"
-- the CLI's command for each operation the snapshot calls
local COMMANDS = {
  DescribeAvailabilityZones = "ec2 describe-availability-zones", DescribeVpcs = "ec2 describe-vpcs",
  DescribeSubnets = "ec2 describe-subnets", DescribeRouteTables = "ec2 describe-route-tables",
  DescribeSecurityGroups = "ec2 describe-security-groups", DescribeNetworkAcls = "ec2 describe-network-acls",
  DescribeNetworkInterfaces = "ec2 describe-network-interfaces", DescribeInstances = "ec2 describe-instances",
  DescribeInternetGateways = "ec2 describe-internet-gateways", DescribeNatGateways = "ec2 describe-nat-gateways",
  DescribeVpcPeeringConnections = "ec2 describe-vpc-peering-connections",
  DescribeTransitGateways = "ec2 describe-transit-gateways",
  DescribeTransitGatewayAttachments = "ec2 describe-transit-gateway-attachments",
  DescribeTransitGatewayVpcAttachments = "ec2 describe-transit-gateway-vpc-attachments",
  DescribeTransitGatewayRouteTables = "ec2 describe-transit-gateway-route-tables",
  DescribeDBInstances = "rds describe-db-instances", ListFunctions = "lambda list-functions",
}

-- Where two decoded JSON values differ ("" when they are equal): arrays by position, objects by key.
local function diff(a, b, path)
  if type(a) ~= type(b) then return string.format("%s: %s vs %s", path, type(a), type(b)) end
  if type(a) ~= "table" then
    if a ~= b or math.type(a) ~= math.type(b) then return string.format("%s: %s vs %s", path, tostring(a), tostring(b)) end
    return ""
  end
  if jsoncodec.is_array(a) ~= jsoncodec.is_array(b) then return path .. ": array vs object" end
  local keys = {}
  for k in pairs(a) do keys[k] = true end
  for k in pairs(b) do keys[k] = true end
  for k in pairs(keys) do
    local d = diff(a[k], b[k], path .. "." .. tostring(k))
    if d ~= "" then return d end
  end
  return ""
end

describe("awsnet snapshot and the AWS CLI", function()
  local sb, dir
  setup(function()
    sb = assert(sandbox.spawn { port = 0, transition_s = 0, seed = 5 })
    dir = process.tempdir("awsnet-snapcli")
  end)
  teardown(function()
    if sb then sb.stop() end
    if dir then os.execute("rm -rf " .. q(dir)) end
  end)

  local function cli(args)
    local out = assert(process.run(string.format(
      "env -u LD_PRELOAD HOME=%s AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER= " ..
      "AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 /usr/bin/aws " ..
      "--endpoint-url %s --output json %s", q(dir), A, sb.endpoint, args)))
    return out
  end

  it("writes, for every one-call file, what the CLI prints for the same state", function()
    local models = { path = CLI_MODELS, default_path = false }
    local clients = {}
    local function client(service)
      clients[service] = clients[service] or aws.client(service, { region = "us-east-1", endpoint = sb.endpoint,
        models = models, max_attempts = 1, credentials = { access_key_id = A, secret_access_key = "test" } })
      return clients[service]
    end
    local vpc = assert(client("ec2"):call("CreateVpc", { CidrBlock = "10.0.0.0/16" })).Vpc.VpcId
    assert(client("ec2"):call("CreateSubnet", { VpcId = vpc, CidrBlock = "10.0.1.0/24", AvailabilityZoneId = "use1-az1" }))
    local sg = assert(client("ec2"):call("CreateSecurityGroup", { GroupName = "true", Description = "x", VpcId = vpc }))
    assert(client("ec2"):call("AuthorizeSecurityGroupIngress", { GroupId = sg.GroupId, IpPermissions = { {
      IpProtocol = "tcp", FromPort = 3306, ToPort = 3306, IpRanges = { { CidrIp = "10.1.0.0/16" } } } } }))

    local snap = assert(snapshot.take { out = dir .. "/snap", region = "us-east-1", accounts = { { client = client } } })
    local path = snap.accounts[1].path
    local skipped = table.concat(snap.skipped, "\n")
    local compared = 0
    for _, c in ipairs(snapshot.CALLS) do
      local op, key = c[2], c[3]
      if not skipped:find(":" .. op .. ":", 1, true) then
        local mine = assert(process.read_file(path .. "/" .. key .. ".json"), key)
        local theirs = cli(COMMANDS[op])
        local d = diff(jsoncodec.decode(mine), jsoncodec.decode(theirs), key)
        assert.equals("", d, key .. ".json differs from `aws " .. COMMANDS[op] .. "`:\n" .. mine .. "\n" .. theirs)
        compared = compared + 1
      end
    end
    assert.is_true(compared >= 10, "compared " .. compared .. " files; skipped:\n" .. skipped)
    -- the sandbox's wire names are AWS's: a VPC's default network ACL says IsDefault (<default>)
    local acls = jsoncodec.decode(process.read_file(path .. "/NetworkAcls.json")).NetworkAcls
    local default_acl
    for _, acl in ipairs(acls) do if acl.VpcId == vpc and acl.IsDefault == true then default_acl = acl end end
    assert.truthy(default_acl, "no default network ACL with IsDefault = true")
    -- the files awsnet aggregates: element by element what each call prints
    local attrs = jsoncodec.decode(process.read_file(path .. "/VpcAttributes.json")).VpcAttributes
    local checked = 0
    for _, attr in ipairs(attrs) do
      if attr.VpcId == vpc then
        local name = attr.EnableDnsSupport and "enableDnsSupport" or "enableDnsHostnames"
        local theirs = jsoncodec.decode(cli("ec2 describe-vpc-attribute --vpc-id " .. vpc .. " --attribute " .. name))
        assert.equals("", diff(attr, theirs, "VpcAttributes"))
        checked = checked + 1
      end
    end
    assert.equals(2, checked)
    -- four-space indentation and [] as the CLI prints them
    local vpcs = process.read_file(path .. "/Vpcs.json")
    assert.matches('^{\n    "Vpcs": %[\n        {\n', vpcs)
  end)
end)
