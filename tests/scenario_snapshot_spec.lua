-- Snapshot files as the AWS CLI prints them: EC2 answers read by the model (member names, typed,
-- empty lists as []), written by aws.json (4-space indentation), Lambda environment values redacted.
local aws = require "awsnet.aws"
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
local snapshot = require "awsnet.snapshot"
local process = require "awsnet.svc.process"

local SGS = [[<DescribeSecurityGroupsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r-1</requestId>
  <securityGroupInfo><item>
    <ownerId>111111111111</ownerId><groupId>sg-1</groupId><groupName>true</groupName>
    <groupDescription>awsnet db</groupDescription><vpcId>vpc-1</vpcId>
    <ipPermissions><item><ipProtocol>tcp</ipProtocol><fromPort>3306</fromPort><toPort>3306</toPort>
      <groups><item><groupId>sg-2</groupId><userId>111111111111</userId></item></groups>
      <ipRanges><item><cidrIp>10.0.0.0/16</cidrIp></item></ipRanges></item></ipPermissions>
    <ipPermissionsEgress/>
    <tagSet><item><key>Name</key><value>db</value></item></tagSet>
  </item></securityGroupInfo>
</DescribeSecurityGroupsResponse>]]

describe("snapshot files", function()
  local ec2 = aws.client("ec2", { region = "us-east-1", credentials = { access_key_id = "a", secret_access_key = "b" } })

  it("read EC2 answers by the model: the CLI's names and types, empty lists as []", function()
    local out = assert(ec2:parse("DescribeSecurityGroups", { status = 200, headers = {}, body = SGS }))
    local sg = out.SecurityGroups[1]
    assert.equals("awsnet db", sg.Description)
    assert.equals("true", sg.GroupName) -- never coerced to a boolean
    assert.equals(3306, sg.IpPermissions[1].FromPort)
    assert.equals(math.type(sg.IpPermissions[1].FromPort), "integer")
    assert.equals("sg-2", sg.IpPermissions[1].UserIdGroupPairs[1].GroupId)
    assert.same({ { Key = "Name", Value = "db" } }, sg.Tags)
    assert.equals(0, #sg.IpPermissionsEgress)
    local text = assert(aws.json(out))
    assert.matches('\n        {\n            "Description": "awsnet db",', text, 1, true)
    assert.matches('"IpPermissionsEgress": []', text, 1, true)
    assert.same(jsoncodec.decode(text).SecurityGroups[1].IpPermissions[1].IpRanges, { { CidrIp = "10.0.0.0/16" } })
  end)

  it("are written as aws --output json, with Lambda environment values redacted and noted", function()
    local dir = process.tempdir("awsnet-snap")
    local fake = { pages_many = function(calls)
      local pages = {}
      for i, c in ipairs(calls) do
        if c[2] == "GetCallerIdentity" then
          pages[i] = { { Account = "111111111111" } }
        elseif c[2] == "ListFunctions" then
          pages[i] = { { Functions = jsoncodec.array { { FunctionName = "writer", MemorySize = 128,
            Environment = { Variables = { RDS_PASSWORD = "hunter2", RDS_HOST = "db" } } } } } }
        else
          pages[i] = { { [c[4] or "x"] = jsoncodec.array() } }
        end
      end
      return pages, {}
    end }
    local snap = assert(snapshot.take { out = dir, region = "us-east-1", aws = fake,
      accounts = { { client = function(service) return { service = service } end } } })
    local path = snap.accounts[1].path
    local fns = process.read_file(path .. "/Functions.json")
    assert.not_matches("hunter2", fns, 1, true)
    assert.matches('"MemorySize": 128\n', fns, 1, true)
    assert.matches("Functions[writer].Environment.Variables.RDS_PASSWORD", process.read_file(path .. "/REDACTED.txt"), 1, true)
    assert.equals('{\n    "Vpcs": []\n}\n', process.read_file(path .. "/Vpcs.json"))
    os.execute("rm -rf " .. process.quote(dir))
  end)
end)
