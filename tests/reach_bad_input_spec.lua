-- Bad input gets a clear error, never a confident wrong verdict (issue 12, section 3): values of
-- the wrong type, missing data, oversized files and odd file names.
local reach = require "awsnet.reach"
local process = require "awsnet.svc.process"
local cjson = require "cjson"

local A, B = "111111111111", "222222222222"
local ARTICLE = "tests/fixtures/reach/article"

local function write(path, text)
  assert(process.mkdir(path:match("^(.*)/")))
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function said(r) return table.concat(r.assumptions, "\n") end

describe("reach on bad input", function()
  local dir
  before_each(function() dir = process.tempdir("awsnet-reach-bad") end)
  after_each(function() process.remove(dir) end)

  local function region_file(name, account) return dir .. "/aws_configs/accounts/" .. (account or A) .. "/us-east-1/" .. name end

  -- A copy of the article's snapshot in dir (cp keeps the layout).
  local function article()
    assert(process.call({ "cp", "-R", ARTICLE .. "/aws_configs", dir .. "/" }))
  end

  describe("a value of the wrong type where the loader reads", function()
    local CASES = {
      { "Vpcs.json", '{"Vpcs": "vpc-1"}', "$.Vpcs", "expected a JSON array, got a string" },
      { "Vpcs.json", '{"Vpcs": {"VpcId": "vpc-1"}}', "$.Vpcs", "expected a JSON array, got a JSON object" },
      { "Vpcs.json", '{"Vpcs": [{"VpcId": "vpc-1", "CidrBlockAssociationSet": "10.0.0.0/16"}]}',
        "$.Vpcs[0].CidrBlockAssociationSet", "expected a JSON array, got a string" },
      { "SecurityGroups.json", '{"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [], ' ..
        '"IpPermissionsEgress": {"IpProtocol": "-1"}}]}', "$.SecurityGroups[0].IpPermissionsEgress",
        "expected a JSON array, got a JSON object" },
      { "SecurityGroups.json", '{"SecurityGroups": [{"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "tcp", ' ..
        '"FromPort": 3306, "ToPort": 3306, "IpRanges": ["10.0.0.0/8"]}]}]}',
        "$.SecurityGroups[0].IpPermissions[0].IpRanges[0]", "expected a JSON object, got a string" },
      { "NetworkAcls.json", '{"NetworkAcls": [{"NetworkAclId": "acl-1", "Entries": [{"RuleNumber": 100, ' ..
        '"Egress": "true", "RuleAction": "allow", "Protocol": "-1", "CidrBlock": "0.0.0.0/0"}]}]}',
        "$.NetworkAcls[0].Entries[0].Egress", "expected a boolean, got a string" },
      { "NetworkAcls.json", '{"NetworkAcls": [{"NetworkAclId": "acl-1", "Entries": [{"RuleNumber": "100"}]}]}',
        "$.NetworkAcls[0].Entries[0].RuleNumber", "expected an integer, got a string" },
      { "NetworkInterfaces.json", '{"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "Groups": "sg-1"}]}',
        "$.NetworkInterfaces[0].Groups", "expected a JSON array, got a string" },
      { "Instances.json", '{"Reservations": [{"Instances": [{"InstanceId": "i-1", "NetworkInterfaces": ' ..
        '[{"NetworkInterfaceId": "eni-1", "Groups": [{"GroupId": 7}]}]}]}]}',
        "$.Reservations[0].Instances[0].NetworkInterfaces[0].Groups[0].GroupId", "expected a string, got a number" },
      { "TransitGatewayVpcAttachments.json", '{"TransitGatewayVpcAttachments": [{"TransitGatewayAttachmentId": ' ..
        '"tgw-attach-1", "SubnetIds": "subnet-1"}]}', "$.TransitGatewayVpcAttachments[0].SubnetIds",
        "expected a JSON array, got a string" },
      { "DBInstances.json", '{"DBInstances": [{"DBInstanceIdentifier": "db", "DBSubnetGroup": [1]}]}',
        "$.DBInstances[0].DBSubnetGroup", "expected a JSON object, got a JSON array" },
      { "Functions.json", '{"Functions": [{"FunctionName": "f", "VpcConfig": {"SubnetIds": "subnet-1"}}]}',
        "$.Functions[0].VpcConfig.SubnetIds", "expected a JSON array, got a string" },
    }
    for _, c in ipairs(CASES) do
      local file, text, path, why = c[1], c[2], c[3], c[4]
      it("is invalid_snapshot naming the file and " .. path, function()
        article()
        write(region_file(file), text) -- replaces the article's file of that name
        local model, err = reach.load(dir)
        assert.is_nil(model)
        assert.equals("invalid_snapshot", err.code)
        assert.matches(file:gsub("%p", "%%%0") .. "$", err.file)
        assert.equals(path, err.path)
        assert.matches(path .. ": " .. why, err.message, 1, true)
      end)
    end

    it("a top-level [] is invalid_snapshot too", function()
      article()
      write(region_file("Vpcs.json"), "  []\n")
      local model, err = reach.load(dir)
      assert.is_nil(model)
      assert.equals("invalid_snapshot", err.code)
      assert.matches("Vpcs%.json: top level is not a JSON object", err.message)
    end)

    it("in the table form names the account, region, key and path", function()
      local model, err = reach.load({ accounts = { [A] = { ["us-east-1"] = {
        Vpcs = { { VpcId = "vpc-1", CidrBlock = "10.0.0.0/16" } },
        RouteTables = { { RouteTableId = "rtb-1", VpcId = "vpc-1", Routes = "local" } } } } } })
      assert.is_nil(model)
      assert.equals("accounts/" .. A .. "/us-east-1/RouteTables", err.file)
      assert.equals("$.RouteTables[0].Routes", err.path)
    end)

    it("leaves JSON null and fields the loader does not read alone", function()
      article()
      local vpcs = cjson.decode(process.read_file(region_file("Vpcs.json")))
      vpcs.Vpcs[1].Tags = cjson.null
      vpcs.Vpcs[1].InstanceTenancy = { odd = true }
      write(region_file("Vpcs.json"), cjson.encode(vpcs))
      assert.truthy(reach.load(dir))
    end)
  end)

  describe("what is missing", function()
    it("a missing security-groups file is in skipped and in each trace it could change", function()
      article()
      assert(os.remove(region_file("SecurityGroups.json", B)))
      local model = assert(reach.load(dir))
      local found
      for _, s in ipairs(model.skipped) do
        if s.account == B and s.resource == "SecurityGroups" then found = s end
      end
      assert.truthy(found, "no skipped entry for B's SecurityGroups")
      assert.matches("missing from the snapshot", found.reason)
      local r = assert(model:trace{ src = "lambda:writer", dst = "rds:orders", port = 3306 })
      -- B's database ENI names a group the snapshot lacks: not silently dropped
      assert.matches("SecurityGroups of account " .. B .. ", us-east-1 missing from the snapshot", said(r), 1, true)
      assert.matches("eni-0b00000000000rds1 names security group sg-0b00000000000db001, which the snapshot lacks",
        said(r), 1, true)
      -- a trace that stays in account A is not changed by B's missing file
      local inside = assert(model:trace{ src = "eni-0a000000000lambda", dst = "10.0.128.5", port = 3306 })
      assert.not_matches("account " .. B, said(inside), 1, true)
    end)

    it("missing route tables and network ACLs are said the same way", function()
      article()
      assert(os.remove(region_file("NetworkAcls.json", A)))
      assert(os.remove(region_file("RouteTables.json", A)))
      local model = assert(reach.load(dir))
      local r = assert(model:trace{ src = "lambda:writer", dst = "rds:orders", port = 3306 })
      assert.is_false(r.reachable)
      assert.matches("RouteTables of account " .. A .. ", us-east-1 missing", said(r), 1, true)
      assert.matches("NetworkAcls of account " .. A .. ", us-east-1 missing", said(r), 1, true)
    end)

    it("a part the collector could not read (NotCollected) is listed and said", function()
      article()
      write(region_file("NotCollected.json", B), '{"NotCollected": [{"Key": "NetworkAcls", ' ..
        '"Reason": "ec2:DescribeNetworkAcls: UnauthorizedOperation"}]}')
      local model = assert(reach.load(dir))
      local listed
      for _, s in ipairs(model.skipped) do
        if s.account == B and s.resource == "NetworkAcls" then listed = s.reason end
      end
      assert.matches("not collected: ec2:DescribeNetworkAcls: UnauthorizedOperation", listed, 1, true)
      local r = assert(model:trace{ src = "lambda:writer", dst = "rds:orders", port = 3306 })
      assert.matches("NetworkAcls in account " .. B .. ", us-east-1: not collected", said(r), 1, true)
    end)

    it("awsnet snapshot writes NotCollected for a call the endpoint does not offer", function()
      local snapshot = require "awsnet.snapshot"
      local answers = {
        DescribeVpcs = { Vpcs = { { VpcId = "vpc-1", CidrBlock = "10.0.0.0/16", OwnerId = A } } },
        DescribeSubnets = { Subnets = { { SubnetId = "subnet-1", VpcId = "vpc-1", CidrBlock = "10.0.1.0/24",
          AvailabilityZone = "us-east-1a" } } },
      }
      local fake_aws = { pages_many = function(calls)
        local pages, errs = {}, {}
        for i, c in ipairs(calls) do
          if c[2] == "DescribeSecurityGroups" then
            errs[i] = { code = "InvalidAction" }
          else
            pages[i] = { answers[c[2]] or {} }
          end
        end
        return pages, errs
      end }
      local snap = assert(snapshot.take{ out = dir, region = "us-east-1", aws = fake_aws,
        accounts = { { id = A, client = function(service) return { service = service } end } } })
      assert.matches("DescribeSecurityGroups: InvalidAction", table.concat(snap.skipped, "\n"), 1, true)
      local nc = cjson.decode(process.read_file(region_file("NotCollected.json"))).NotCollected
      assert.same({ { Key = "SecurityGroups", Reason = "ec2:DescribeSecurityGroups: InvalidAction" } }, nc)
      local model = assert(reach.load(dir))
      local listed
      for _, s in ipairs(model.skipped) do if s.resource == "SecurityGroups" then listed = s.reason end end
      assert.matches("not collected", listed, 1, true)
    end)
  end)

  describe("files", function()
    it("over the size limit are refused with a clear error; the limit is an option", function()
      article()
      local model, err = reach.load(dir, { max_file_size = 64 })
      assert.is_nil(model)
      assert.equals("invalid_snapshot", err.code)
      assert.matches("over the limit of 64 bytes per file %(max_file_size%)", err.message)
      assert.equals(64, err.limit)
      assert.truthy(reach.load(dir)) -- the default is 1 GiB
      assert.equals(1 << 30, require("awsnet.reach.snapshot").MAX_FILE_SIZE)
      assert.has_error(function() reach.load(dir, { max_file_size = -1 }) end)
      assert.has_error(function() reach.load(dir, 5) end)
    end)

    it("with odd characters in their names (and their folder's) load", function()
      local odd = dir .. "/snap 'x' $(touch pwned)"
      assert(process.mkdir(odd))
      assert(process.call({ "cp", "-R", ARTICLE .. "/aws_configs", odd .. "/" }))
      local region = odd .. "/aws_configs/accounts/" .. A .. "/us-east-1/"
      assert(os.rename(region .. "Vpcs.json", region .. "Vpcs \"quoted\" $HOME `id`\nline ü.json"))
      local model = assert(reach.load(odd))
      assert.equals(2, model.counts.vpcs)
      assert.is_true(model:trace{ src = "lambda:writer", dst = "rds:orders", port = 3306 }.reachable)
      assert.is_nil(io.open("pwned", "r"))
    end)
  end)
end)
