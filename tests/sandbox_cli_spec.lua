-- Fidelity: the real AWS CLI (Debian's awscli) drives the sandbox, run as its own process,
-- through the article's cross-account flow, every implemented operation and AWS's error cases.
-- The CLI runs warm (tests/helpers/sandbox_awscli.py runs awscli.clidriver, the code /usr/bin/aws
-- runs, once per command in one Python process); one test runs the /usr/bin/aws program itself.
local cjson = require "cjson"
local sandbox = require "awsnet.sandbox"
local process = require "awsnet.svc.process"
local q = process.quote

local A, B = "111111111111", "222222222222"

describe("sandbox with the AWS CLI", function()
  local sb, home, cli_proc, requests, answers

  setup(function()
    sb = assert(sandbox.spawn { port = 0, transition_s = 0, seed = 7 })
    home = process.tempdir("awsnet-awscli")
    assert(process.run("mkfifo " .. q(home .. "/in") .. " " .. q(home .. "/out")))
    cli_proc = process.spawn({ "/usr/bin/python3", "tests/helpers/sandbox_awscli.py", home .. "/in", home .. "/out" },
      { log = home .. "/driver.log" })
    requests = assert(io.open(home .. "/in", "w"))
    answers = assert(io.open(home .. "/out", "r"))
  end)
  teardown(function()
    if requests then requests:close() end
    if answers then answers:close() end
    if cli_proc then cli_proc.stop() end
    if sb then sb.stop() end
    if home then os.execute("rm -rf " .. q(home)) end
  end)

  -- Runs `aws <args>` as `account` (in `region`, default us-east-1); returns the decoded JSON
  -- output, or nil, stderr text.
  local function aws(account, args, secret, region)
    requests:write(cjson.encode({ args = "--endpoint-url " .. sb.endpoint .. " --output json " .. args, env = {
      HOME = home, AWS_CONFIG_FILE = "/dev/null", AWS_SHARED_CREDENTIALS_FILE = "/dev/null", AWS_ACCESS_KEY_ID = account,
      AWS_SECRET_ACCESS_KEY = secret or "test", AWS_DEFAULT_REGION = region or "us-east-1", AWS_PAGER = "",
      AWS_MAX_ATTEMPTS = "1",
    } }), "\n")
    requests:flush()
    local line = assert(answers:read("l"), "the AWS CLI driver died")
    local answer = cjson.decode(line)
    if answer.rc ~= 0 then return nil, answer.err end
    if answer.out:match("^%s*$") then return {} end
    return cjson.decode(answer.out)
  end

  local function must(account, args)
    local out, err = aws(account, args)
    assert(out, "aws " .. args .. ": " .. tostring(err))
    return out
  end

  local function fails_with(code, account, args, secret, region)
    local out, err = aws(account, args, secret, region)
    assert.is_nil(out, "expected " .. code .. " from aws " .. args)
    assert.matches("%(" .. code:gsub("%p", "%%%0") .. "%)", err)
    return err
  end

  -- the same in another region
  local function must_in(region, account, args)
    local out, err = aws(account, args, nil, region)
    assert(out, "aws --region " .. region .. " " .. args .. ": " .. tostring(err))
    return out
  end

  it("plays the cross-account Transit Gateway flow, both accounts seeing the same state", function()
    assert.same({ Account = A, Arn = "arn:aws:iam::" .. A .. ":root", UserId = A }, must(A, "sts get-caller-identity"))
    local vpc_a = must(A, "ec2 create-vpc --cidr-block 10.0.0.0/16").Vpc.VpcId
    assert.matches("^vpc%-%x+$", vpc_a)
    assert.equals(21, #vpc_a)
    local subnet_a = must(A, "ec2 create-subnet --vpc-id " .. vpc_a ..
      " --cidr-block 10.0.128.0/28 --availability-zone-id use1-az1").Subnet
    local vpc_b = must(B, "ec2 create-vpc --cidr-block 10.1.0.0/16").Vpc.VpcId
    local subnet_b = must(B, "ec2 create-subnet --vpc-id " .. vpc_b ..
      " --cidr-block 10.1.128.0/28 --availability-zone-id use1-az1").Subnet
    -- the same AZ ID has different names in the two accounts, as AWS maps them
    assert.equals(subnet_a.AvailabilityZoneId, subnet_b.AvailabilityZoneId)
    assert.are_not.equal(subnet_a.AvailabilityZone, subnet_b.AvailabilityZone)

    local tgw = must(A, "ec2 create-transit-gateway --description article " ..
      "--options AutoAcceptSharedAttachments=enable,DnsSupport=enable").TransitGateway
    assert.matches("^tgw%-%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x$", tgw.TransitGatewayId)
    assert.equals("arn:aws:ec2:us-east-1:" .. A .. ":transit-gateway/" .. tgw.TransitGatewayId, tgw.TransitGatewayArn)
    assert.equals("pending", tgw.State)
    must(A, "ec2 wait vpc-available --vpc-ids " .. vpc_a)
    must(B, "ec2 wait subnet-available --subnet-ids " .. subnet_b.SubnetId)
    assert.equals("available", must(A, "ec2 describe-transit-gateways --transit-gateway-ids " ..
      tgw.TransitGatewayId).TransitGateways[1].State)
    local att_a = must(A, "ec2 create-transit-gateway-vpc-attachment --transit-gateway-id " .. tgw.TransitGatewayId ..
      " --vpc-id " .. vpc_a .. " --subnet-ids " .. subnet_a.SubnetId).TransitGatewayVpcAttachment
    assert.matches("^tgw%-attach%-%x+$", att_a.TransitGatewayAttachmentId)

    -- B cannot see or use the TGW before it accepts the share
    assert.same({}, must(B, "ec2 describe-transit-gateways").TransitGateways)
    fails_with("InvalidTransitGatewayID.NotFound", B, "ec2 create-transit-gateway-vpc-attachment --transit-gateway-id " ..
      tgw.TransitGatewayId .. " --vpc-id " .. vpc_b .. " --subnet-ids " .. subnet_b.SubnetId)

    local share = must(A, "ram create-resource-share --name article-tgw --resource-arns " .. tgw.TransitGatewayArn ..
      " --principals " .. B).resourceShare
    assert.matches("^arn:aws:ram:us%-east%-1:" .. A .. ":resource%-share/", share.resourceShareArn)
    local invitations = must(B, "ram get-resource-share-invitations").resourceShareInvitations
    assert.equals(1, #invitations)
    assert.equals("PENDING", invitations[1].status)
    assert.same({}, must(B, "ram get-resource-shares --resource-owner OTHER-ACCOUNTS").resourceShares)
    local accepted = must(B, "ram accept-resource-share-invitation --resource-share-invitation-arn " ..
      invitations[1].resourceShareInvitationArn).resourceShareInvitation
    assert.equals("ACCEPTED", accepted.status)
    assert.equals("article-tgw", must(B, "ram get-resource-shares --resource-owner OTHER-ACCOUNTS").resourceShares[1].name)
    assert.same({ "ec2:TransitGateway" },
      { must(B, "ram list-resources --resource-owner OTHER-ACCOUNTS").resources[1].type })
    assert.equals(tgw.TransitGatewayId, must(B, "ec2 describe-transit-gateways").TransitGateways[1].TransitGatewayId)

    local att_b = must(B, "ec2 create-transit-gateway-vpc-attachment --transit-gateway-id " .. tgw.TransitGatewayId ..
      " --vpc-id " .. vpc_b .. " --subnet-ids " .. subnet_b.SubnetId).TransitGatewayVpcAttachment
    local seen = {}
    for _, att in ipairs(must(A, "ec2 describe-transit-gateway-vpc-attachments").TransitGatewayVpcAttachments) do
      seen[att.TransitGatewayAttachmentId] = att.VpcOwnerId .. "/" .. att.State
    end
    assert.same({ [att_a.TransitGatewayAttachmentId] = A .. "/available",
                  [att_b.TransitGatewayAttachmentId] = B .. "/available" }, seen)

    -- both add routes through the TGW; the TGW's default route table learnt both VPCs
    for _, side in ipairs({ { A, vpc_a, "10.1.0.0/16" }, { B, vpc_b, "10.0.0.0/16" } }) do
      local rtb = must(side[1], "ec2 describe-route-tables --filters Name=vpc-id,Values=" .. side[2] ..
        " Name=association.main,Values=true").RouteTables[1]
      must(side[1], "ec2 create-route --route-table-id " .. rtb.RouteTableId .. " --destination-cidr-block " .. side[3] ..
        " --transit-gateway-id " .. tgw.TransitGatewayId)
      local routes = must(side[1], "ec2 describe-route-tables --route-table-ids " .. rtb.RouteTableId).RouteTables[1].Routes
      assert.equals(2, #routes)
      assert.same({ DestinationCidrBlock = side[3], TransitGatewayId = tgw.TransitGatewayId, Origin = "CreateRoute",
                    State = "active" }, routes[2])
    end
    local tgw_rtb = must(A, "ec2 describe-transit-gateway-route-tables").TransitGatewayRouteTables[1]
    assert.is_true(tgw_rtb.DefaultAssociationRouteTable)
    local found = must(A, "ec2 search-transit-gateway-routes --transit-gateway-route-table-id " ..
      tgw_rtb.TransitGatewayRouteTableId .. " --filters Name=type,Values=propagated").Routes
    assert.same({ "10.0.0.0/16", "10.1.0.0/16" }, { found[1].DestinationCidrBlock, found[2].DestinationCidrBlock })
    -- TGW route tables stay with the owner
    assert.same({}, must(B, "ec2 describe-transit-gateway-route-tables").TransitGatewayRouteTables)

    -- a VPC with a live attachment cannot go
    fails_with("DependencyViolation", A, "ec2 delete-vpc --vpc-id " .. vpc_a)
  end)

  it("plays the article's whole cross-account flow in ap-northeast-1, each region seeing its own resources", function()
    local R = "ap-northeast-1"
    local function m(account, args) return must_in(R, account, args) end
    -- the region's zones: a, c and d, apne1-az1, -az2 and -az4, named per account
    local names, ids = {}, {}
    for i, z in ipairs(m(A, "ec2 describe-availability-zones").AvailabilityZones) do
      names[i], ids[#ids + 1] = z.ZoneName, z.ZoneId
      assert.equals(R, z.RegionName)
    end
    table.sort(ids)
    assert.same({ "ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d" }, names)
    assert.same({ "apne1-az1", "apne1-az2", "apne1-az4" }, ids)

    -- A's VPC, its subnet in a zone named as the article names it; B's subnets placed by AZ id
    local vpc_a = m(A, "ec2 create-vpc --cidr-block 10.0.0.0/16").Vpc.VpcId
    local subnet_a = m(A, "ec2 create-subnet --vpc-id " .. vpc_a ..
      " --cidr-block 10.0.1.0/24 --availability-zone ap-northeast-1a").Subnet
    assert.equals("ap-northeast-1a", subnet_a.AvailabilityZone)
    assert.matches("^apne1%-az[124]$", subnet_a.AvailabilityZoneId)
    assert.matches("^arn:aws:ec2:ap%-northeast%-1:", subnet_a.SubnetArn)
    fails_with("InvalidParameterValue", A, "ec2 create-subnet --vpc-id " .. vpc_a ..
      " --cidr-block 10.0.2.0/24 --availability-zone us-east-1a", nil, R)
    local vpc_b = m(B, "ec2 create-vpc --cidr-block 10.1.0.0/16").Vpc.VpcId
    local subnets_b = {}
    for i, zone in ipairs({ "apne1-az1", "apne1-az2" }) do
      subnets_b[i] = m(B, "ec2 create-subnet --vpc-id " .. vpc_b .. " --cidr-block 10.1." .. i ..
        ".0/24 --availability-zone-id " .. zone).Subnet.SubnetId
    end

    -- the TGW in A, shared with B over RAM (a regional share: us-east-1 has no invitation)
    local tgw = m(A, "ec2 create-transit-gateway --description article " ..
      "--options AutoAcceptSharedAttachments=enable").TransitGateway
    assert.equals("arn:aws:ec2:" .. R .. ":" .. A .. ":transit-gateway/" .. tgw.TransitGatewayId, tgw.TransitGatewayArn)
    m(A, "ec2 create-transit-gateway-vpc-attachment --transit-gateway-id " .. tgw.TransitGatewayId ..
      " --vpc-id " .. vpc_a .. " --subnet-ids " .. subnet_a.SubnetId)
    local share = m(A, "ram create-resource-share --name article --resource-arns " .. tgw.TransitGatewayArn ..
      " --principals " .. B).resourceShare.resourceShareArn
    assert.matches("^arn:aws:ram:ap%-northeast%-1:" .. A .. ":resource%-share/", share)
    for _, inv in ipairs(must(B, "ram get-resource-share-invitations").resourceShareInvitations) do
      assert.are_not.equal(share, inv.resourceShareArn)
    end
    local inv
    for _, i in ipairs(m(B, "ram get-resource-share-invitations").resourceShareInvitations) do
      if i.resourceShareArn == share then inv = i.resourceShareInvitationArn end
    end
    m(B, "ram accept-resource-share-invitation --resource-share-invitation-arn " .. assert(inv))
    assert.equals(tgw.TransitGatewayId, m(B, "ec2 describe-transit-gateways").TransitGateways[1].TransitGatewayId)
    m(B, "ec2 create-transit-gateway-vpc-attachment --transit-gateway-id " .. tgw.TransitGatewayId ..
      " --vpc-id " .. vpc_b .. " --subnet-ids " .. subnets_b[1])
    for _, side in ipairs({ { A, vpc_a, "10.1.0.0/16" }, { B, vpc_b, "10.0.0.0/16" } }) do
      local rtb = m(side[1], "ec2 describe-route-tables --filters Name=vpc-id,Values=" .. side[2] ..
        " Name=association.main,Values=true").RouteTables[1].RouteTableId
      m(side[1], "ec2 create-route --route-table-id " .. rtb .. " --destination-cidr-block " .. side[3] ..
        " --transit-gateway-id " .. tgw.TransitGatewayId)
    end

    -- RDS in B, open to A's VPC, named in the region's DNS, which the sandbox's DNS server answers
    local sg_db = m(B, "ec2 create-security-group --group-name rds --description rds --vpc-id " .. vpc_b).GroupId
    m(B, "ec2 authorize-security-group-ingress --group-id " .. sg_db .. " --protocol tcp --port 3306 --cidr 10.0.0.0/16")
    m(B, "rds create-db-subnet-group --db-subnet-group-name article --db-subnet-group-description article " ..
      "--subnet-ids " .. table.concat(subnets_b, " "))
    m(B, "rds create-db-instance --db-instance-identifier article-db --db-instance-class db.t3.micro --engine mysql " ..
      "--master-username admin --master-user-password article-pw-1 --db-name sampledb --allocated-storage 20 " ..
      "--db-subnet-group-name article --vpc-security-group-ids " .. sg_db)
    m(B, "rds wait db-instance-available --db-instance-identifier article-db")
    local db = m(B, "rds describe-db-instances --db-instance-identifier article-db").DBInstances[1]
    assert.matches("^article%-db%.%w+%.ap%-northeast%-1%.rds%.amazonaws%.com$", db.Endpoint.Address)
    assert.matches("^arn:aws:rds:ap%-northeast%-1:" .. B .. ":db:article%-db$", db.DBInstanceArn)
    assert.matches("^ap%-northeast%-1[acd]$", db.AvailabilityZone)
    local answer = assert(require("awsnet.dns").resolve(db.Endpoint.Address,
      { server = sb.dns.host, port = sb.dns.port, timeout = 2 }))
    assert.matches("^10%.1%.1%.%d+$", answer.addresses[1])

    -- the Lambda in A runs the article's statements across the TGW
    local dir = process.tempdir("awsnet-cli-apne1")
    process.write_file(dir .. "/index.py", table.concat({
      "import os", "import pymysql", "", "",
      "def handler(event, context):",
      "    conn = pymysql.connect(host=os.environ['DB_HOST'], user='admin', password=os.environ['DB_PASSWORD'],",
      "                           database='sampledb', connect_timeout=3)",
      "    with conn.cursor() as cur:",
      "        cur.execute('CREATE TABLE IF NOT EXISTS users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50))')",
      "        cur.execute(\"INSERT INTO users (name) VALUES ('テストユーザー')\")",
      "        conn.commit()",
      "        cur.execute('SELECT id, name FROM users')",
      "        rows = [list(r) for r in cur.fetchall()]",
      "    conn.close()",
      "    return {'rows': rows, 'region': os.environ['AWS_REGION']}", "" }, "\n"))
    assert(process.run("cd " .. q(dir) .. " && env -u LD_PRELOAD /usr/bin/python3 -m zipfile -c fn.zip index.py"))
    local sg_fn = m(A, "ec2 create-security-group --group-name fn --description fn --vpc-id " .. vpc_a).GroupId
    local trust = cjson.encode({ Version = "2012-10-17", Statement = { { Effect = "Allow",
      Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" } } })
    local role = m(A, "iam create-role --role-name article-fn --assume-role-policy-document " .. q(trust)).Role.Arn
    local fn = m(A, "lambda create-function --function-name article --runtime python3.11 --role " .. role ..
      " --handler index.handler --timeout 10 --zip-file fileb://" .. dir .. "/fn.zip --vpc-config SubnetIds=" ..
      subnet_a.SubnetId .. ",SecurityGroupIds=" .. sg_fn .. " --environment Variables={DB_HOST=" .. db.Endpoint.Address ..
      ",DB_PASSWORD=article-pw-1}")
    assert.equals("arn:aws:lambda:ap-northeast-1:" .. A .. ":function:article", fn.FunctionArn)
    m(A, "lambda wait function-active --function-name article")
    local result = m(A, "lambda invoke --function-name article " .. dir .. "/out.json")
    assert.is_nil(result.FunctionError, process.read_file(dir .. "/out.json"))
    assert.same({ rows = { { 1, "テストユーザー" } }, region = R }, cjson.decode(process.read_file(dir .. "/out.json")))
    os.execute("rm -rf " .. q(dir))

    -- each region sees its own: nothing of ap-northeast-1 in us-east-1 or eu-west-1
    for _, v in ipairs(must(A, "ec2 describe-vpcs").Vpcs) do assert.are_not.equal(vpc_a, v.VpcId) end
    fails_with("InvalidVpcID.NotFound", A, "ec2 describe-vpcs --vpc-ids " .. vpc_a)
    fails_with("InvalidVpcID.NotFound", A, "ec2 describe-vpcs --vpc-ids " .. vpc_a, nil, "eu-west-1")
    local vpc_eu = must_in("eu-west-1", A, "ec2 create-vpc --cidr-block 10.0.0.0/16").Vpc.VpcId
    local in_tokyo = {}
    for _, v in ipairs(m(A, "ec2 describe-vpcs").Vpcs) do in_tokyo[#in_tokyo + 1] = v.VpcId end
    assert.same({ vpc_a }, in_tokyo)
    fails_with("InvalidVpcID.NotFound", A, "ec2 describe-vpcs --vpc-ids " .. vpc_eu, nil, R)
    assert.equals(3, #must_in("eu-west-1", A, "ec2 describe-availability-zones").AvailabilityZones)
    fails_with("InvalidTransitGatewayID.NotFound", A, "ec2 describe-transit-gateways --transit-gateway-ids " ..
      tgw.TransitGatewayId)
    fails_with("DBInstanceNotFound", B, "rds describe-db-instances --db-instance-identifier article-db")
    fails_with("ResourceNotFoundException", A, "lambda get-function --function-name article")
    -- IAM is global: the role made from ap-northeast-1 is seen from us-east-1
    assert.equals(role, must(A, "iam get-role --role-name article-fn").Role.Arn)
    -- a region AWS does not have is refused, as AWS refuses a scope naming another region
    local err = fails_with("AuthFailure", A, "ec2 describe-vpcs", nil, "xx-nowhere-1")
    assert.matches("Credential should be scoped to a valid region, not 'xx-nowhere-1'", err, 1, true)
    fails_with("SignatureDoesNotMatch", A, "sts get-caller-identity", nil, "xx-nowhere-1")
  end)

  it("keeps B's attachment pendingAcceptance until A accepts when the TGW does not auto-accept", function()
    local tgw = must(A, "ec2 create-transit-gateway").TransitGateway
    local vpc_b = must(B, "ec2 create-vpc --cidr-block 10.2.0.0/16").Vpc.VpcId
    local subnet_b = must(B, "ec2 create-subnet --vpc-id " .. vpc_b .. " --cidr-block 10.2.0.0/28").Subnet.SubnetId
    local share = must(A, "ram create-resource-share --name manual --resource-arns " .. tgw.TransitGatewayArn ..
      " --principals " .. B).resourceShare
    local inv
    for _, i in ipairs(must(B, "ram get-resource-share-invitations").resourceShareInvitations) do
      if i.resourceShareArn == share.resourceShareArn then inv = i end
    end
    must(B, "ram accept-resource-share-invitation --resource-share-invitation-arn " .. inv.resourceShareInvitationArn)
    fails_with("ResourceShareInvitationAlreadyAcceptedException", B,
      "ram accept-resource-share-invitation --resource-share-invitation-arn " .. inv.resourceShareInvitationArn)
    local att = must(B, "ec2 create-transit-gateway-vpc-attachment --transit-gateway-id " .. tgw.TransitGatewayId ..
      " --vpc-id " .. vpc_b .. " --subnet-ids " .. subnet_b).TransitGatewayVpcAttachment
    assert.equals("pendingAcceptance", att.State)
    fails_with("UnauthorizedOperation", B, "ec2 accept-transit-gateway-vpc-attachment --transit-gateway-attachment-id " ..
      att.TransitGatewayAttachmentId)
    local accepted = must(A, "ec2 accept-transit-gateway-vpc-attachment --transit-gateway-attachment-id " ..
      att.TransitGatewayAttachmentId).TransitGatewayVpcAttachment
    assert.equals("pending", accepted.State)
    must(B, "ec2 delete-transit-gateway-vpc-attachment --transit-gateway-attachment-id " .. att.TransitGatewayAttachmentId)
    must(A, "ram delete-resource-share --resource-share-arn " .. share.resourceShareArn)
    -- once the share is gone, B no longer sees the TGW
    fails_with("InvalidTransitGatewayID.NotFound", B, "ec2 describe-transit-gateways --transit-gateway-ids " ..
      tgw.TransitGatewayId)
  end)

  it("answers with AWS's codes for bad credentials, missing parameters and unknown ids", function()
    fails_with("SignatureDoesNotMatch", A, "sts get-caller-identity", "wrong-secret")
    fails_with("AuthFailure", A, "ec2 describe-vpcs", "wrong-secret")
    fails_with("InvalidClientTokenId", "999999999999", "sts get-caller-identity")
    fails_with("AuthFailure", "999999999999", "ec2 describe-vpcs")
    fails_with("InvalidSignatureException", A, "ram get-resource-shares --resource-owner SELF", "wrong-secret")
    fails_with("InvalidVpcID.NotFound", A, "ec2 describe-vpcs --vpc-ids vpc-0123456789abcdef0")
    fails_with("InvalidVpcID.NotFound", A, "ec2 delete-vpc --vpc-id vpc-0123456789abcdef0")
    fails_with("InvalidSubnet.Range", A, "ec2 create-subnet --vpc-id " ..
      must(A, "ec2 create-vpc --cidr-block 10.9.0.0/16").Vpc.VpcId .. " --cidr-block 10.8.0.0/24")
    fails_with("InvalidVpc.Range", A, "ec2 create-vpc --cidr-block 10.0.0.0/8")
    fails_with("InvalidTransitGatewayID.NotFound", A, "ec2 describe-transit-gateways --transit-gateway-ids tgw-0123456789abcdef0")
    fails_with("UnknownResourceException", A, "ram create-resource-share --name x --resource-arns " ..
      "arn:aws:ec2:us-east-1:" .. A .. ":transit-gateway/tgw-0123456789abcdef0")
    fails_with("NoSuchEntity", A, "iam get-role --role-name nobody")
  end)

  it("serves IAM roles and cross-account AssumeRole whose keys act as the role's account", function()
    local trust = cjson.encode({ Version = "2012-10-17", Statement = { {
      Effect = "Allow", Principal = { AWS = "arn:aws:iam::" .. A .. ":root" }, Action = "sts:AssumeRole" } } })
    local role = must(B, "iam create-role --role-name deployer --assume-role-policy-document " .. q(trust)).Role
    assert.equals("arn:aws:iam::" .. B .. ":role/deployer", role.Arn)
    fails_with("EntityAlreadyExists", B, "iam create-role --role-name deployer --assume-role-policy-document " .. q(trust))
    must(B, "iam attach-role-policy --role-name deployer --policy-arn arn:aws:iam::aws:policy/AmazonEC2FullAccess")
    fails_with("DeleteConflict", B, "iam delete-role --role-name deployer")
    local creds = must(A, "sts assume-role --role-arn " .. role.Arn .. " --role-session-name run").Credentials
    assert.matches("^ASIA", creds.AccessKeyId)
    local who = assert(process.run(string.format(
      "env -u LD_PRELOAD HOME=%s AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_ACCESS_KEY_ID=%s " ..
      "AWS_SECRET_ACCESS_KEY=%s AWS_SESSION_TOKEN=%s AWS_DEFAULT_REGION=us-east-1 /usr/bin/aws --endpoint-url %s " ..
      "--output text sts get-caller-identity --query Arn", q(home), q(creds.AccessKeyId), q(creds.SecretAccessKey),
      q(creds.SessionToken), sb.endpoint)))
    assert.equals("arn:aws:sts::" .. B .. ":assumed-role/deployer/run", (who:gsub("%s+$", "")))
    fails_with("AccessDenied", B, "sts assume-role --role-arn arn:aws:iam::" .. A .. ":role/none --role-session-name xy")
    must(B, "iam detach-role-policy --role-name deployer --policy-arn arn:aws:iam::aws:policy/AmazonEC2FullAccess")
    must(B, "iam delete-role --role-name deployer")
  end)

  it("drives the VPC building blocks: attributes, route tables, security groups, network ACLs, tags", function()
    local vpc = must(A, "ec2 create-vpc --cidr-block 10.20.0.0/16 --tag-specifications " ..
      q("ResourceType=vpc,Tags=[{Key=Name,Value=blocks}]")).Vpc.VpcId
    assert.equals(vpc, must(A, "ec2 describe-vpcs --filters Name=tag:Name,Values=blocks").Vpcs[1].VpcId)
    assert.is_true(must(A, "ec2 describe-vpc-attribute --vpc-id " .. vpc .. " --attribute enableDnsSupport")
      .EnableDnsSupport.Value)
    must(A, "ec2 modify-vpc-attribute --vpc-id " .. vpc .. " --enable-dns-hostnames")
    assert.is_true(must(A, "ec2 describe-vpc-attribute --vpc-id " .. vpc .. " --attribute enableDnsHostnames")
      .EnableDnsHostnames.Value)
    local subnet = must(A, "ec2 create-subnet --vpc-id " .. vpc .. " --cidr-block 10.20.1.0/24").Subnet.SubnetId
    fails_with("InvalidSubnet.Conflict", A, "ec2 create-subnet --vpc-id " .. vpc .. " --cidr-block 10.20.1.128/25")

    -- route tables: associate, replace and delete routes, disassociate, delete
    local rtb = must(A, "ec2 create-route-table --vpc-id " .. vpc).RouteTable.RouteTableId
    local assoc = must(A, "ec2 associate-route-table --route-table-id " .. rtb .. " --subnet-id " .. subnet).AssociationId
    assert.matches("^rtbassoc%-%x+$", assoc)
    assert.equals(rtb, must(A, "ec2 describe-route-tables --filters Name=association.subnet-id,Values=" .. subnet)
      .RouteTables[1].RouteTableId)
    fails_with("DependencyViolation", A, "ec2 delete-route-table --route-table-id " .. rtb)
    fails_with("InvalidTransitGatewayID.NotFound", A, "ec2 create-route --route-table-id " .. rtb ..
      " --destination-cidr-block 10.99.0.0/16 --transit-gateway-id tgw-0123456789abcdef0")
    fails_with("InvalidRoute.NotFound", A, "ec2 delete-route --route-table-id " .. rtb ..
      " --destination-cidr-block 10.99.0.0/16")
    must(A, "ec2 disassociate-route-table --association-id " .. assoc)
    must(A, "ec2 delete-route-table --route-table-id " .. rtb)

    -- security groups: the default egress rule, ingress and egress changes, deletion
    local sg = must(A, "ec2 create-security-group --group-name app --description app --vpc-id " .. vpc).GroupId
    local described = must(A, "ec2 describe-security-groups --group-ids " .. sg).SecurityGroups[1]
    assert.equals("app", described.Description)
    assert.same({ { IpProtocol = "-1", IpRanges = { { CidrIp = "0.0.0.0/0" } }, Ipv6Ranges = {}, PrefixListIds = {},
                    UserIdGroupPairs = {} } }, described.IpPermissionsEgress)
    fails_with("InvalidGroup.Duplicate", A, "ec2 create-security-group --group-name app --description x --vpc-id " .. vpc)
    must(A, "ec2 authorize-security-group-ingress --group-id " .. sg .. " --protocol tcp --port 443 --cidr 10.0.0.0/8")
    fails_with("InvalidPermission.Duplicate", A, "ec2 authorize-security-group-ingress --group-id " .. sg ..
      " --protocol tcp --port 443 --cidr 10.0.0.0/8")
    must(A, "ec2 revoke-security-group-ingress --group-id " .. sg .. " --protocol tcp --port 443 --cidr 10.0.0.0/8")
    fails_with("InvalidPermission.NotFound", A, "ec2 revoke-security-group-ingress --group-id " .. sg ..
      " --protocol tcp --port 443 --cidr 10.0.0.0/8")
    must(A, "ec2 revoke-security-group-egress --group-id " .. sg ..
      " --ip-permissions IpProtocol=-1,IpRanges=[{CidrIp=0.0.0.0/0}]")
    must(A, "ec2 authorize-security-group-egress --group-id " .. sg ..
      " --ip-permissions IpProtocol=tcp,FromPort=3306,ToPort=3306,IpRanges=[{CidrIp=10.1.0.0/16}]")
    local egress = must(A, "ec2 describe-security-groups --filters Name=group-name,Values=app").SecurityGroups[1]
      .IpPermissionsEgress
    assert.same({ 3306, "10.1.0.0/16" }, { egress[1].FromPort, egress[1].IpRanges[1].CidrIp })
    local default_sg = must(A, "ec2 describe-security-groups --filters Name=vpc-id,Values=" .. vpc ..
      " Name=group-name,Values=default").SecurityGroups[1].GroupId
    fails_with("CannotDelete", A, "ec2 delete-security-group --group-id " .. default_sg)
    must(A, "ec2 delete-security-group --group-id " .. sg)

    -- network ACLs: entries, the association with a subnet, the default ACL staying
    local acl = must(A, "ec2 create-network-acl --vpc-id " .. vpc).NetworkAcl.NetworkAclId
    must(A, "ec2 create-network-acl-entry --network-acl-id " .. acl .. " --ingress --rule-number 100 --protocol tcp " ..
      "--port-range From=3306,To=3306 --cidr-block 10.0.0.0/16 --rule-action allow")
    fails_with("NetworkAclEntryAlreadyExists", A, "ec2 create-network-acl-entry --network-acl-id " .. acl ..
      " --ingress --rule-number 100 --protocol tcp --port-range From=1,To=2 --cidr-block 10.0.0.0/16 --rule-action deny")
    must(A, "ec2 replace-network-acl-entry --network-acl-id " .. acl .. " --ingress --rule-number 100 --protocol -1 " ..
      "--cidr-block 10.0.0.0/16 --rule-action deny")
    local default_acl = must(A, "ec2 describe-network-acls --filters Name=vpc-id,Values=" .. vpc ..
      " Name=default,Values=true").NetworkAcls[1]
    local acl_assoc
    for _, a in ipairs(default_acl.Associations) do if a.SubnetId == subnet then acl_assoc = a.NetworkAclAssociationId end end
    local new_assoc = must(A, "ec2 replace-network-acl-association --association-id " .. acl_assoc ..
      " --network-acl-id " .. acl).NewAssociationId
    fails_with("DependencyViolation", A, "ec2 delete-network-acl --network-acl-id " .. acl)
    local entries = must(A, "ec2 describe-network-acls --network-acl-ids " .. acl).NetworkAcls[1].Entries
    assert.same({ "deny", "-1", 100 }, { entries[1].RuleAction, entries[1].Protocol, entries[1].RuleNumber })
    -- what the API reference requires of an entry: a port range for TCP and UDP, an ICMP type and code
    -- for ICMP, allow or deny, a protocol number up to 255, ports within 0-65535 and in order
    local entry = "ec2 create-network-acl-entry --network-acl-id " .. acl .. " --egress --cidr-block 10.0.0.0/16 "
    fails_with("MissingParameter", A, entry .. "--rule-number 110 --protocol tcp --rule-action allow")
    fails_with("MissingParameter", A, entry .. "--rule-number 110 --protocol 17 --rule-action allow")
    fails_with("MissingParameter", A, entry .. "--rule-number 110 --protocol icmp --rule-action allow")
    fails_with("InvalidParameterValue", A, entry .. "--rule-number 110 --protocol -1 --rule-action permit")
    fails_with("InvalidParameterValue", A, entry .. "--rule-number 110 --protocol 256 --rule-action allow")
    fails_with("InvalidParameterValue", A, entry .. "--rule-number 110 --protocol tcp --rule-action allow " ..
      "--port-range From=443,To=80")
    fails_with("InvalidParameterValue", A, entry .. "--rule-number 110 --protocol tcp --rule-action allow " ..
      "--port-range From=0,To=65536")
    fails_with("InvalidParameterValue", A, entry .. "--rule-number 32767 --protocol -1 --rule-action allow")
    must(A, entry .. "--rule-number 110 --protocol icmp --icmp-type-code Type=8,Code=0 --rule-action allow")
    local out = must(A, "ec2 describe-network-acls --network-acl-ids " .. acl).NetworkAcls[1].Entries
    local icmp
    for _, e in ipairs(out) do if e.RuleNumber == 110 then icmp = e end end
    assert.same({ Protocol = "1", Type = 8, Code = 0, Egress = true },
      { Protocol = icmp.Protocol, Type = icmp.IcmpTypeCode.Type, Code = icmp.IcmpTypeCode.Code, Egress = icmp.Egress })
    assert.is_nil(icmp.PortRange)
    must(A, "ec2 delete-network-acl-entry --network-acl-id " .. acl .. " --egress --rule-number 110")
    must(A, "ec2 replace-network-acl-association --association-id " .. new_assoc ..
      " --network-acl-id " .. default_acl.NetworkAclId)
    must(A, "ec2 delete-network-acl-entry --network-acl-id " .. acl .. " --ingress --rule-number 100")
    must(A, "ec2 delete-network-acl --network-acl-id " .. acl)

    -- tags, zones, prefix lists, interfaces
    must(A, "ec2 create-tags --resources " .. subnet .. " --tags Key=tier,Value=app")
    assert.equals(subnet, must(A, "ec2 describe-subnets --filters Name=tag:tier,Values=app").Subnets[1].SubnetId)
    must(A, "ec2 delete-tags --resources " .. subnet .. " --tags Key=tier")
    assert.same({}, must(A, "ec2 describe-subnets --filters Name=tag:tier,Values=app").Subnets)
    local zones = must(A, "ec2 describe-availability-zones").AvailabilityZones
    assert.equals(6, #zones)
    assert.equals("available", zones[1].State)
    assert.equals("com.amazonaws.us-east-1.s3", must(A, "ec2 describe-managed-prefix-lists --filters " ..
      "Name=prefix-list-name,Values=com.amazonaws.us-east-1.s3").PrefixLists[1].PrefixListName)
    assert.same({}, must(A, "ec2 describe-network-interfaces --filters Name=subnet-id,Values=" .. subnet).NetworkInterfaces)
    must(A, "ec2 delete-subnet --subnet-id " .. subnet)
    must(A, "ec2 delete-vpc --vpc-id " .. vpc)
    fails_with("InvalidVpcID.NotFound", A, "ec2 describe-vpcs --vpc-ids " .. vpc)
  end)

  it("drives Transit Gateway route tables, static and blackhole routes, rejection and deletion", function()
    local tgw = must(A, "ec2 create-transit-gateway --options " ..
      "DefaultRouteTableAssociation=disable,DefaultRouteTablePropagation=disable").TransitGateway.TransitGatewayId
    local vpc = must(A, "ec2 create-vpc --cidr-block 10.30.0.0/16").Vpc.VpcId
    local subnet = must(A, "ec2 create-subnet --vpc-id " .. vpc .. " --cidr-block 10.30.0.0/28").Subnet.SubnetId
    local att = must(A, "ec2 create-transit-gateway-vpc-attachment --transit-gateway-id " .. tgw .. " --vpc-id " .. vpc ..
      " --subnet-ids " .. subnet).TransitGatewayVpcAttachment.TransitGatewayAttachmentId
    local rt = must(A, "ec2 create-transit-gateway-route-table --transit-gateway-id " .. tgw)
      .TransitGatewayRouteTable.TransitGatewayRouteTableId
    assert.matches("^tgw%-rtb%-%x+$", rt)
    must(A, "ec2 associate-transit-gateway-route-table --transit-gateway-route-table-id " .. rt ..
      " --transit-gateway-attachment-id " .. att)
    must(A, "ec2 enable-transit-gateway-route-table-propagation --transit-gateway-route-table-id " .. rt ..
      " --transit-gateway-attachment-id " .. att)
    must(A, "ec2 create-transit-gateway-route --transit-gateway-route-table-id " .. rt ..
      " --destination-cidr-block 10.31.0.0/16 --transit-gateway-attachment-id " .. att)
    must(A, "ec2 create-transit-gateway-route --transit-gateway-route-table-id " .. rt ..
      " --destination-cidr-block 10.32.0.0/16 --blackhole")
    local routes = must(A, "ec2 search-transit-gateway-routes --transit-gateway-route-table-id " .. rt ..
      " --filters Name=type,Values=static,propagated").Routes
    local summary = {}
    for _, r in ipairs(routes) do summary[#summary + 1] = r.DestinationCidrBlock .. " " .. r.Type .. " " .. r.State end
    assert.same({ "10.30.0.0/16 propagated active", "10.31.0.0/16 static active", "10.32.0.0/16 static blackhole" }, summary)
    assert.equals(att, must(A, "ec2 get-transit-gateway-route-table-associations --transit-gateway-route-table-id " .. rt)
      .Associations[1].TransitGatewayAttachmentId)
    assert.equals(att, must(A, "ec2 get-transit-gateway-route-table-propagations --transit-gateway-route-table-id " .. rt)
      .TransitGatewayRouteTablePropagations[1].TransitGatewayAttachmentId)
    fails_with("IncorrectState", A, "ec2 delete-transit-gateway-route-table --transit-gateway-route-table-id " .. rt)
    must(A, "ec2 delete-transit-gateway-route --transit-gateway-route-table-id " .. rt ..
      " --destination-cidr-block 10.32.0.0/16")
    must(A, "ec2 disable-transit-gateway-route-table-propagation --transit-gateway-route-table-id " .. rt ..
      " --transit-gateway-attachment-id " .. att)
    must(A, "ec2 disassociate-transit-gateway-route-table --transit-gateway-route-table-id " .. rt ..
      " --transit-gateway-attachment-id " .. att)
    must(A, "ec2 delete-transit-gateway-route-table --transit-gateway-route-table-id " .. rt)

    -- B's attachment to a shared TGW that does not auto-accept, rejected by A
    local arn = must(A, "ec2 describe-transit-gateways --transit-gateway-ids " .. tgw).TransitGateways[1].TransitGatewayArn
    local share = must(A, "ram create-resource-share --name reject-me").resourceShare.resourceShareArn
    must(A, "ram associate-resource-share --resource-share-arn " .. share .. " --resource-arns " .. arn ..
      " --principals " .. B)
    local assocs = must(A, "ram get-resource-share-associations --association-type PRINCIPAL --resource-share-arns " .. share)
    assert.same({ B }, { assocs.resourceShareAssociations[1].associatedEntity })
    local inv
    for _, i in ipairs(must(B, "ram get-resource-share-invitations").resourceShareInvitations) do
      if i.resourceShareArn == share then inv = i.resourceShareInvitationArn end
    end
    must(B, "ram accept-resource-share-invitation --resource-share-invitation-arn " .. inv)
    local vpc_b = must(B, "ec2 create-vpc --cidr-block 10.40.0.0/16").Vpc.VpcId
    local subnet_b = must(B, "ec2 create-subnet --vpc-id " .. vpc_b .. " --cidr-block 10.40.0.0/28").Subnet.SubnetId
    local att_b = must(B, "ec2 create-transit-gateway-vpc-attachment --transit-gateway-id " .. tgw .. " --vpc-id " .. vpc_b ..
      " --subnet-ids " .. subnet_b).TransitGatewayVpcAttachment.TransitGatewayAttachmentId
    assert.equals("rejecting", must(A, "ec2 reject-transit-gateway-vpc-attachment --transit-gateway-attachment-id " .. att_b)
      .TransitGatewayVpcAttachment.State)
    must(A, "ram disassociate-resource-share --resource-share-arn " .. share .. " --principals " .. B)
    assert.same({}, must(B, "ram get-resource-shares --resource-owner OTHER-ACCOUNTS --resource-share-arns " .. share)
      .resourceShares)

    fails_with("IncorrectState", A, "ec2 delete-transit-gateway --transit-gateway-id " .. tgw)
    must(A, "ec2 delete-transit-gateway-vpc-attachment --transit-gateway-attachment-id " .. att)
    assert.equals("deleting", must(A, "ec2 delete-transit-gateway --transit-gateway-id " .. tgw).TransitGateway.State)
  end)

  it("drives RDS and Lambda", function()
    local vpc = must(B, "ec2 create-vpc --cidr-block 10.50.0.0/16").Vpc.VpcId
    local subnets = {}
    for i, zone in ipairs({ "use1-az1", "use1-az2" }) do
      subnets[i] = must(B, "ec2 create-subnet --vpc-id " .. vpc .. " --cidr-block 10.50." .. i ..
        ".0/28 --availability-zone-id " .. zone).Subnet.SubnetId
    end
    fails_with("DBSubnetGroupDoesNotCoverEnoughAZs", B, "rds create-db-subnet-group --db-subnet-group-name one " ..
      "--db-subnet-group-description one --subnet-ids " .. subnets[1])
    local group = must(B, "rds create-db-subnet-group --db-subnet-group-name cli-db --db-subnet-group-description db " ..
      "--subnet-ids " .. table.concat(subnets, " ")).DBSubnetGroup
    assert.equals(vpc, group.VpcId)
    assert.equals(2, #must(B, "rds describe-db-subnet-groups --db-subnet-group-name cli-db").DBSubnetGroups[1].Subnets)
    local created = must(B, "rds create-db-instance --db-instance-identifier cli-db --db-instance-class db.t3.micro " ..
      "--engine mariadb --master-username admin --master-user-password cli-password-1 --allocated-storage 20 " ..
      "--db-subnet-group-name cli-db --publicly-accessible").DBInstance
    assert.equals("creating", created.DBInstanceStatus)
    fails_with("DBInstanceAlreadyExists", B, "rds create-db-instance --db-instance-identifier cli-db --db-instance-class " ..
      "db.t3.micro --engine mariadb --master-username admin --master-user-password cli-password-1 --allocated-storage 20 " ..
      "--db-subnet-group-name cli-db")
    must(B, "rds wait db-instance-available --db-instance-identifier cli-db")
    local inst = must(B, "rds describe-db-instances --db-instance-identifier cli-db").DBInstances[1]
    assert.is_true(inst.PubliclyAccessible)
    assert.equals(3306, inst.Endpoint.Port)
    fails_with("InvalidDBSubnetGroupStateFault", B, "rds delete-db-subnet-group --db-subnet-group-name cli-db")
    fails_with("InvalidParameterCombination", B, "rds delete-db-instance --db-instance-identifier cli-db")
    assert.equals("deleting", must(B, "rds delete-db-instance --db-instance-identifier cli-db --skip-final-snapshot")
      .DBInstance.DBInstanceStatus)
    fails_with("DBInstanceNotFound", B, "rds describe-db-instances --db-instance-identifier cli-db")
    must(B, "rds delete-db-subnet-group --db-subnet-group-name cli-db")

    -- a function outside any VPC: create, read, change, invoke, delete
    local dir = process.tempdir("awsnet-cli-fn")
    process.write_file(dir .. "/main.py", "def run(event, context):\n    print('event', event)\n" ..
      "    if event.get('fail'):\n        raise ValueError('asked to fail')\n" ..
      "    return {'echo': event, 'name': context.function_name}\n")
    assert(process.run("cd " .. q(dir) .. " && env -u LD_PRELOAD /usr/bin/python3 -m zipfile -c fn.zip main.py"))
    local trust = cjson.encode({ Version = "2012-10-17", Statement = { { Effect = "Allow",
      Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" } } })
    local role = must(A, "iam create-role --role-name echo-fn --assume-role-policy-document " .. q(trust)).Role.Arn
    fails_with("InvalidParameterValueException", A, "lambda create-function --function-name echo --runtime python3.11 " ..
      "--role arn:aws:iam::" .. A .. ":role/missing --handler main.run --zip-file fileb://" .. dir .. "/fn.zip")
    local fn = must(A, "lambda create-function --function-name echo --runtime python3.11 --role " .. role ..
      " --handler main.run --zip-file fileb://" .. dir .. "/fn.zip --environment Variables={MODE=test}")
    assert.equals("arn:aws:lambda:us-east-1:" .. A .. ":function:echo", fn.FunctionArn)
    must(A, "lambda wait function-active --function-name echo")
    assert.equals("Active", must(A, "lambda get-function --function-name echo").Configuration.State)
    assert.equals(3, must(A, "lambda get-function-configuration --function-name echo").Timeout)
    assert.equals(9, must(A, "lambda update-function-configuration --function-name echo --timeout 9").Timeout)
    assert.equals("echo", must(A, "lambda list-functions").Functions[1].FunctionName)
    local result = must(A, "lambda invoke --function-name echo --cli-binary-format raw-in-base64-out " ..
      "--payload " .. q('{"n": 1}') .. " --log-type Tail " .. dir .. "/out.json")
    assert.equals(200, result.StatusCode)
    assert.is_nil(result.FunctionError)
    assert.same({ echo = { n = 1 }, name = "echo" }, cjson.decode(process.read_file(dir .. "/out.json")))
    local log = assert(process.run("printf %s " .. q(result.LogResult) .. " | base64 -d"))
    assert.matches("START RequestId: ", log)
    assert.matches("event {'n': 1}", log, 1, true)
    result = must(A, "lambda invoke --function-name echo --cli-binary-format raw-in-base64-out " ..
      "--payload " .. q('{"fail": true}') .. " " .. dir .. "/out.json")
    assert.equals("Unhandled", result.FunctionError)
    assert.same({ "ValueError", "asked to fail" }, { cjson.decode(process.read_file(dir .. "/out.json")).errorType,
      cjson.decode(process.read_file(dir .. "/out.json")).errorMessage })
    must(A, "lambda delete-function --function-name echo")
    fails_with("ResourceNotFoundException", A, "lambda get-function --function-name echo")
    os.execute("rm -rf " .. q(dir))
  end)
end)
