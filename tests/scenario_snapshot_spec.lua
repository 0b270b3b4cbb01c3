-- EC2 answers (XML wire names, as awsnet.aws returns them) turned into the CLI's names that
-- describe-* files and awsnet.reach use.
local snapshot = require "awsnet.snapshot"

describe("snapshot.cli_names", function()
  it("renames EC2 sets and fields the way the CLI prints them", function()
    local xml_shaped = {
      requestId = "r-1", nextToken = "t",
      securityGroupInfo = { {
        groupId = "sg-1", groupName = "db", groupDescription = "awsnet db", vpcId = "vpc-1",
        ipPermissions = { { ipProtocol = "tcp", fromPort = 3306, toPort = 3306,
          ipRanges = { { cidrIp = "10.0.0.0/16" } }, groups = { { groupId = "sg-2", userId = "111111111111" } } } },
        ipPermissionsEgress = {}, tagSet = { { key = "Name", value = "db" } },
      } },
    }
    local cli = snapshot.cli_names(xml_shaped)
    assert.is_nil(cli.RequestId)
    assert.is_nil(cli.NextToken)
    local sg = cli.SecurityGroups[1]
    assert.equals("awsnet db", sg.Description)
    assert.equals("10.0.0.0/16", sg.IpPermissions[1].IpRanges[1].CidrIp)
    assert.equals("sg-2", sg.IpPermissions[1].UserIdGroupPairs[1].GroupId)
    assert.same({}, sg.IpPermissionsEgress)
    assert.same({ { Key = "Name", Value = "db" } }, sg.Tags)
  end)

  it("types port ranges and VPC attribute values as the CLI does", function()
    local acl = snapshot.cli_names({ networkAclSet = { { entrySet = { { ruleNumber = 100,
      portRange = { from = "1024", to = "65535" }, egress = true, ruleAction = "allow", protocol = "6" } } } } }).NetworkAcls[1]
    assert.same({ From = 1024, To = 65535 }, acl.Entries[1].PortRange)
    assert.equals("6", acl.Entries[1].Protocol)
    local attr = snapshot.cli_names({ vpcId = "vpc-1", enableDnsSupport = { value = "false" } })
    assert.same({ VpcId = "vpc-1", EnableDnsSupport = { Value = false } }, attr)
  end)

  it("names instance fields by their place", function()
    local r = snapshot.cli_names({ reservationSet = { { instancesSet = { { instanceId = "i-1",
      groupSet = { { groupId = "sg-1" } }, instanceState = { name = "running" },
      networkInterfaceSet = { { groupSet = { { groupId = "sg-1" } } } } } } } } })
    local i = r.Reservations[1].Instances[1]
    assert.equals("sg-1", i.SecurityGroups[1].GroupId)
    assert.equals("running", i.State.Name)
    assert.equals("sg-1", i.NetworkInterfaces[1].Groups[1].GroupId)
  end)
end)
