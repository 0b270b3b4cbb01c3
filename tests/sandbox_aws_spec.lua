-- The article's whole flow against a sandbox process, driven with awsnet.aws: the TGW shared over
-- RAM, both attachments and routes, RDS in B, a VPC Lambda in A whose invocation inserts a row
-- into the instance's MariaDB while the path is open, and times out once a route is removed.
-- The AWS CLI reads the same state; awsnet.mariadb checks that the row landed.
local cjson = require "cjson"
local aws = require "awsnet.aws"
local mariadb = require "awsnet.mariadb"
local sandbox = require "awsnet.sandbox"
local process = require "awsnet.svc.process"

local A, B = "111111111111", "222222222222"

local HANDLER = [[
import os
import pymysql


def handler(event, context):
    conn = pymysql.connect(host=os.environ["DB_HOST"], user=os.environ["DB_USER"],
                           password=os.environ["DB_PASSWORD"], database=os.environ["DB_NAME"],
                           connect_timeout=int(os.environ["CONNECT_TIMEOUT"]))
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64))")
        cur.execute("INSERT INTO users (name) VALUES (%s)", (event["name"],))
        row_id = cur.lastrowid
    conn.commit()
    conn.close()
    print("inserted", row_id)
    return {"id": row_id, "function": context.function_name}
]]

local zip_of = require "helpers.zip"

describe("sandbox driven by awsnet.aws", function()
  local sb
  local c = { [A] = {}, [B] = {} }

  -- every element or key of the sandbox's answers must be one the model reads (AWS's wire names)
  local protocol = require "awsnet.aws.protocol"
  local original_parse = protocol.parse
  local unknown = {}
  -- not in the model: EC2's requestId (answers are written by the model, so nothing else is)
  local NOT_MODELED = { requestId = true }

  setup(function()
    protocol.parse = function(m, op, resp, opts)
      opts = opts or {}
      if (resp.status or 200) < 300 then
        opts.on_unknown = function(parent, key)
          if not NOT_MODELED[key] then unknown[m.service .. ":" .. op .. " " .. tostring(parent) .. "/" .. key] = true end
        end
      end
      return original_parse(m, op, resp, opts)
    end
    sb = assert(sandbox.spawn { port = 0, transition_s = 0.2, seed = 11 })
    for _, account in ipairs({ A, B }) do
      for _, svc in ipairs({ "ec2", "ram", "rds", "lambda", "iam", "sts" }) do
        c[account][svc] = aws.client(svc, { region = "us-east-1", endpoint = sb.endpoint, max_attempts = 1,
          credentials = { access_key_id = account, secret_access_key = "test" } })
      end
    end
  end)
  teardown(function()
    protocol.parse = original_parse
    if sb then sb.stop() end
  end)

  local function call(account, svc, op, params)
    local out, err = c[account][svc]:call(op, params or {})
    assert(out, tostring(err))
    return out
  end

  local function wait(account, svc, name, params)
    local out, err = c[account][svc]:wait(name, params, { timeout = 60, delay = 0.3 })
    assert(out, tostring(err))
    return out
  end

  -- what botocore has no waiter for: polled with call, as the scenario does
  local function poll(what, fn)
    local result
    process.wait_until(function()
      result = fn()
      return result
    end, 60, what)
    return result
  end

  local function cli(account, args)
    local out = assert(process.run(string.format(
      "env -u LD_PRELOAD HOME=/tmp AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null " ..
      "AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 /usr/bin/aws " ..
      "--endpoint-url %s --output json %s", account, sb.endpoint, args)))
    return cjson.decode(out)
  end

  it("runs the article: the Lambda writes the row while the path is open, times out when a route goes", function()
    assert.equals(B, call(B, "sts", "GetCallerIdentity").Account)
    -- networks in both accounts
    local vpc_a = call(A, "ec2", "CreateVpc", { CidrBlock = "10.0.0.0/16" }).Vpc.VpcId
    local subnet_a = call(A, "ec2", "CreateSubnet", { VpcId = vpc_a, CidrBlock = "10.0.128.0/28",
      AvailabilityZoneId = "use1-az1" }).Subnet.SubnetId
    local vpc_b = call(B, "ec2", "CreateVpc", { CidrBlock = "10.1.0.0/16" }).Vpc.VpcId
    local subnets_b = {}
    for i, zone in ipairs({ "use1-az1", "use1-az2" }) do
      subnets_b[i] = call(B, "ec2", "CreateSubnet", { VpcId = vpc_b, CidrBlock = "10.1.12" .. (7 + i) .. ".0/28",
        AvailabilityZoneId = zone }).Subnet.SubnetId
    end
    wait(A, "ec2", "VpcAvailable", { VpcIds = { vpc_a } })

    -- the TGW in A, shared with B over RAM
    local tgw = call(A, "ec2", "CreateTransitGateway", { Options = { AutoAcceptSharedAttachments = "enable" } })
      .TransitGateway
    poll("the TGW to be available", function()
      return call(A, "ec2", "DescribeTransitGateways", { TransitGatewayIds = { tgw.TransitGatewayId } })
        .TransitGateways[1].State == "available"
    end)
    call(A, "ec2", "CreateTransitGatewayVpcAttachment", { TransitGatewayId = tgw.TransitGatewayId, VpcId = vpc_a,
      SubnetIds = { subnet_a } })
    call(A, "ram", "CreateResourceShare", { name = "article", resourceArns = { tgw.TransitGatewayArn }, principals = { B } })
    local invitations = poll("the RAM invitation", function()
      local inv = call(B, "ram", "GetResourceShareInvitations", {}).resourceShareInvitations
      return #inv > 0 and inv
    end)
    call(B, "ram", "AcceptResourceShareInvitation",
      { resourceShareInvitationArn = invitations[1].resourceShareInvitationArn })
    local att_b = call(B, "ec2", "CreateTransitGatewayVpcAttachment", { TransitGatewayId = tgw.TransitGatewayId,
      VpcId = vpc_b, SubnetIds = { subnets_b[1] } }).TransitGatewayVpcAttachment.TransitGatewayAttachmentId
    poll("B's attachment to be available", function()
      return call(A, "ec2", "DescribeTransitGatewayAttachments", { TransitGatewayAttachmentIds = { att_b } })
        .TransitGatewayAttachments[1].State == "available"
    end)

    -- the AWS CLI sees what awsnet.aws made
    local seen = {}
    for _, att in ipairs(cli(A, "ec2 describe-transit-gateway-attachments").TransitGatewayAttachments) do
      seen[#seen + 1] = att.ResourceOwnerId .. ":" .. att.ResourceId
    end
    table.sort(seen)
    assert.same({ A .. ":" .. vpc_a, B .. ":" .. vpc_b }, seen)

    -- routes both ways
    local rtb_a = call(A, "ec2", "DescribeRouteTables", { Filters = { { Name = "vpc-id", Values = { vpc_a } } } })
      .RouteTables[1].RouteTableId
    call(A, "ec2", "CreateRoute", { RouteTableId = rtb_a, DestinationCidrBlock = "10.1.0.0/16",
      TransitGatewayId = tgw.TransitGatewayId })
    local rtb_b = call(B, "ec2", "DescribeRouteTables", { Filters = { { Name = "vpc-id", Values = { vpc_b } } } })
      .RouteTables[1].RouteTableId
    call(B, "ec2", "CreateRoute", { RouteTableId = rtb_b, DestinationCidrBlock = "10.0.0.0/16",
      TransitGatewayId = tgw.TransitGatewayId })

    -- RDS in B, open to A's VPC on 3306
    local sg_db = call(B, "ec2", "CreateSecurityGroup", { GroupName = "rds", Description = "rds", VpcId = vpc_b }).GroupId
    call(B, "ec2", "AuthorizeSecurityGroupIngress", { GroupId = sg_db, IpPermissions = { { IpProtocol = "tcp",
      FromPort = 3306, ToPort = 3306, IpRanges = { { CidrIp = "10.0.0.0/16" } } } } })
    call(B, "rds", "CreateDBSubnetGroup", { DBSubnetGroupName = "db", DBSubnetGroupDescription = "db",
      SubnetIds = subnets_b })
    call(B, "rds", "CreateDBInstance", { DBInstanceIdentifier = "orders", DBInstanceClass = "db.t3.micro",
      Engine = "mysql", MasterUsername = "admin", MasterUserPassword = "article-pw-1", DBName = "app",
      DBSubnetGroupName = "db", VpcSecurityGroupIds = { sg_db }, AllocatedStorage = 20, PubliclyAccessible = false })
    local db = wait(B, "rds", "DBInstanceAvailable", { DBInstanceIdentifier = "orders" }).DBInstances[1]
    assert.matches("^orders%.%w+%.us%-east%-1%.rds%.amazonaws%.com$", db.Endpoint.Address)
    -- the sandbox's DNS answers with the instance's private address
    local dns = require "awsnet.dns"
    local answer = assert(dns.resolve(db.Endpoint.Address, { server = sb.dns.host, port = sb.dns.port, timeout = 2 }))
    assert.matches("^10%.1%.128%.%d+$", answer.addresses[1])

    -- the Lambda in A
    local sg_fn = call(A, "ec2", "CreateSecurityGroup", { GroupName = "fn", Description = "fn", VpcId = vpc_a }).GroupId
    local trust = cjson.encode({ Version = "2012-10-17", Statement = { { Effect = "Allow",
      Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" } } })
    local role = call(A, "iam", "CreateRole", { RoleName = "writer", AssumeRolePolicyDocument = trust }).Role.Arn
    local env = { DB_HOST = db.Endpoint.Address, DB_USER = "admin", DB_PASSWORD = "article-pw-1", DB_NAME = "app",
                  CONNECT_TIMEOUT = "1" }
    call(A, "lambda", "CreateFunction", { FunctionName = "writer", Runtime = "python3.11", Role = role,
      Handler = "index.handler", Timeout = 5, Code = { ZipFile = zip_of { ["index.py"] = HANDLER } },
      VpcConfig = { SubnetIds = { subnet_a }, SecurityGroupIds = { sg_fn } }, Environment = { Variables = env } })
    wait(A, "lambda", "FunctionActive", { FunctionName = "writer" })
    local enis = cli(A, "ec2 describe-network-interfaces --filters Name=interface-type,Values=lambda").NetworkInterfaces
    assert.equals(1, #enis)

    local out = call(A, "lambda", "Invoke", { FunctionName = "writer", Payload = '{"name": "alice"}', LogType = "Tail" })
    assert.is_nil(out.FunctionError, out.Payload)
    assert.same({ id = 1, ["function"] = "writer" }, cjson.decode(out.Payload))
    assert.equals(200, out.StatusCode)

    -- the row is in the instance's database
    local log = process.read_file(sb.log)
    local port = assert(tonumber(log:match("RDS orders %(" .. B .. "%) is backed by MariaDB on 127%.0%.0%.1:(%d+)")))
    local conn = assert(mariadb.connect { host = "127.0.0.1", port = port, user = "admin", password = "article-pw-1",
      database = "app", tls = "off" })
    assert.same({ { id = 1, name = "alice" } }, (conn:query("SELECT id, name FROM users")))

    -- `awsnet snapshot --resolver` records where the endpoint resolves, and the model reaches the
    -- database at the ENI holding that address
    local snapdir = process.tempdir("awsnet-resolved")
    local ran = assert(process.run(string.format("env -u LD_PRELOAD AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=test " ..
      "AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null lua5.4 bin/awsnet snapshot --region us-east-1 " ..
      "--endpoint %s --out %s --resolver %s:%d 2>&1", B, sb.endpoint, process.quote(snapdir), sb.dns.host, sb.dns.port)))
    local region_dir = snapdir .. "/aws_configs/accounts/" .. B .. "/us-east-1/"
    local resolved = cjson.decode((assert(process.read_file(region_dir .. "ResolvedNames.json"), ran))).ResolvedNames
    assert.same({ { Name = db.Endpoint.Address, Addresses = { answer.addresses[1] } } }, resolved)
    local model = assert(require("awsnet.reach").load(snapdir))
    local rds_eni
    for _, e in ipairs(cjson.decode(process.read_file(region_dir .. "NetworkInterfaces.json")).NetworkInterfaces) do
      if e.PrivateIpAddress == answer.addresses[1] then rds_eni = e.NetworkInterfaceId end
    end
    assert.equals(model:endpoint(rds_eni, "dst").eni, model:endpoint("rds:orders", "dst").eni)
    -- a name the resolver does not know is said, and nothing is recorded for it
    local names, failed = require("awsnet.snapshot").resolve_names({ db, { Endpoint = {
      Address = "gone.cluster-x.us-east-1.rds.amazonaws.com" } } }, sb.dns.host .. ":" .. sb.dns.port)
    assert.equals(1, #names)
    assert.matches("^gone%.cluster%-x%.us%-east%-1%.rds%.amazonaws%.com: %a+", failed[1])
    -- a resolver that answers nothing (a closed port) is not asked about more than three names
    local many = {}
    for i = 1, 4 do many[i] = { Endpoint = { Address = "db" .. i .. ".x.us-east-1.rds.amazonaws.com" } } end
    local none, silent = require("awsnet.snapshot").resolve_names(many, "127.0.0.1:1")
    assert.same({ 0, 4 }, { #none, #silent })
    assert.matches(": unreachable$", silent[3])
    assert.matches(": not asked", silent[4])
    os.execute("rm -rf " .. process.quote(snapdir))

    -- without DNS support in A's VPC the endpoint name does not resolve
    call(A, "ec2", "ModifyVpcAttribute", { VpcId = vpc_a, EnableDnsSupport = { Value = false } })
    out = call(A, "lambda", "Invoke", { FunctionName = "writer", Payload = '{"name": "dave"}' })
    assert.equals("Unhandled", out.FunctionError)
    assert.matches("Name or service not known", cjson.decode(out.Payload).errorMessage)
    call(A, "ec2", "ModifyVpcAttribute", { VpcId = vpc_a, EnableDnsSupport = { Value = true } })

    -- without A's route to B the SYN is dropped: the handler's connect times out
    call(A, "ec2", "DeleteRoute", { RouteTableId = rtb_a, DestinationCidrBlock = "10.1.0.0/16" })
    out = call(A, "lambda", "Invoke", { FunctionName = "writer", Payload = '{"name": "bob"}' })
    assert.equals("Unhandled", out.FunctionError)
    assert.matches("timed out", cjson.decode(out.Payload).errorMessage)
    -- and with a connect timeout longer than the function's, the function times out
    env.CONNECT_TIMEOUT = "30"
    call(A, "lambda", "UpdateFunctionConfiguration", { FunctionName = "writer", Timeout = 2,
      Environment = { Variables = env } })
    out = call(A, "lambda", "Invoke", { FunctionName = "writer", Payload = '{"name": "carol"}' })
    assert.equals("Unhandled", out.FunctionError)
    assert.matches("Task timed out after 2%.00 seconds", cjson.decode(out.Payload).errorMessage)
    assert.same({ { n = 1 } }, (conn:query("SELECT COUNT(*) AS n FROM users")))
    conn:close()

    -- deleting the function releases its ENI later, as AWS does
    call(A, "lambda", "DeleteFunction", { FunctionName = "writer" })
    process.wait_until(function()
      return #cli(A, "ec2 describe-network-interfaces --filters Name=interface-type,Values=lambda").NetworkInterfaces == 0
    end, 10, "the lambda ENI to go")
    assert.same({}, cli(A, "ec2 describe-network-interfaces --filters Name=interface-type,Values=lambda").NetworkInterfaces)
    call(B, "rds", "DeleteDBInstance", { DBInstanceIdentifier = "orders", SkipFinalSnapshot = true })
    assert.same({}, unknown)
  end)
end)
