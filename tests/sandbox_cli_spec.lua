-- Fidelity: the real AWS CLI (Debian's awscli, /usr/bin/aws) drives the sandbox, run as its own
-- process, through the article's cross-account flow and through AWS's error cases.
local cjson = require "cjson"
local sandbox = require "awsnet.sandbox"
local process = require "awsnet.svc.process"
local q = process.quote

local A, B = "111111111111", "222222222222"

describe("sandbox with the AWS CLI", function()
  local sb, home

  setup(function()
    sb = assert(sandbox.spawn { port = 0, transition_s = 0, seed = 7 })
    home = process.tempdir("awsnet-awscli")
  end)
  teardown(function()
    if sb then sb.stop() end
    if home then os.execute("rm -rf " .. q(home)) end
  end)

  -- Runs `aws <args>` as `account`; returns the decoded JSON output, or nil, stderr text.
  local function aws(account, args, secret)
    local cmd = string.format(
      "env -u LD_PRELOAD -u AWS_PROFILE HOME=%s AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null " ..
      "AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=us-east-1 AWS_PAGER= " ..
      "AWS_MAX_ATTEMPTS=1 /usr/bin/aws --endpoint-url %s --output json %s 2>%s/err; echo \"rc=$?\"",
      q(home), q(account), q(secret or "test"), sb.endpoint, args, q(home))
    local out = assert(process.run(cmd))
    local rc = tonumber(out:match("rc=(%d+)%s*$"))
    local body = out:gsub("rc=%d+%s*$", "")
    if rc ~= 0 then return nil, process.read_file(home .. "/err") or "" end
    if body:match("^%s*$") then return {} end
    return cjson.decode(body)
  end

  local function must(account, args)
    local out, err = aws(account, args)
    assert(out, "aws " .. args .. ": " .. tostring(err))
    return out
  end

  local function fails_with(code, account, args, secret)
    local out, err = aws(account, args, secret)
    assert.is_nil(out, "expected " .. code .. " from aws " .. args)
    assert.matches("%(" .. code:gsub("%p", "%%%0") .. "%)", err)
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
end)
