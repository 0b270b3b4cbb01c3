-- Bad snapshots: every one an error naming the file and the resource, never a crash.
local reach = require "awsnet.reach"
local process = require "awsnet.svc.process"

local A = "111111111111"

local function write(path, text)
  os.execute("mkdir -p " .. process.quote(path:match("^(.*)/")))
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local VPC = '{"Vpcs": [{"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16", "State": "available"}]}'

describe("reach with bad input", function()
  local dir
  before_each(function() dir = process.tempdir("awsnet-reach") end)
  after_each(function() os.execute("rm -rf " .. process.quote(dir)) end)

  local function region_file(name) return dir .. "/aws_configs/accounts/" .. A .. "/us-east-1/" .. name end

  local function expect_error(pattern, file_pattern)
    local model, err = reach.load(dir)
    assert.is_nil(model)
    assert.equals("invalid_snapshot", err.code)
    assert.matches(pattern, err.message)
    if file_pattern then assert.matches(file_pattern, err.file) end
    return err
  end

  it("reports malformed JSON with the file", function()
    write(region_file("Vpcs.json"), '{"Vpcs": [ {"VpcId": "vpc-1", ')
    expect_error("malformed JSON", "Vpcs%.json$")
  end)

  it("reports a top level that is not an object", function()
    write(region_file("Vpcs.json"), '[1, 2]')
    expect_error("not a JSON object", "Vpcs%.json$")
  end)

  it("reports an invalid CIDR with the file and the resource", function()
    write(region_file("Vpcs.json"), VPC)
    write(region_file("Subnets.json"), '{"Subnets": [{"SubnetId": "subnet-1", "VpcId": "vpc-1", ' ..
      '"CidrBlock": "10.0.300.0/24", "AvailabilityZone": "us-east-1a"}]}')
    local err = expect_error("subnet%-1: invalid CIDR 10%.0%.300%.0/24", "Subnets%.json$")
    assert.equals("subnet-1", err.resource)
  end)

  it("reports an unknown reference", function()
    write(region_file("Vpcs.json"), VPC)
    write(region_file("Subnets.json"), '{"Subnets": [{"SubnetId": "subnet-1", "VpcId": "vpc-404", ' ..
      '"CidrBlock": "10.0.1.0/24", "AvailabilityZone": "us-east-1a"}]}')
    expect_error("subnet%-1: unknown VPC vpc%-404", "Subnets%.json$")
  end)

  it("reports duplicate ids within one account", function()
    write(region_file("Vpcs.json"), '{"Vpcs": [{"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16"}, ' ..
      '{"VpcId": "vpc-1", "CidrBlock": "10.1.0.0/16"}]}')
    expect_error("vpc%-1: duplicate id", "Vpcs%.json$")
  end)

  it("reports a wrong shape (an object where an array belongs)", function()
    write(region_file("Vpcs.json"), '{"Vpcs": {"VpcId": "vpc-1"}}')
    expect_error("expected a JSON array")
  end)

  it("reports missing ids and bad rules", function()
    write(region_file("Vpcs.json"), '{"Vpcs": [{"CidrBlock": "10.0.0.0/16"}]}')
    expect_error("missing VpcId")
    write(region_file("Vpcs.json"), VPC)
    write(region_file("SecurityGroups.json"), '{"SecurityGroups": [{"GroupId": "sg-1", "VpcId": "vpc-1", ' ..
      '"IpPermissions": [{"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": []}]}]}')
    expect_error("sg%-1: bad port range 90%-80", "SecurityGroups%.json$")
  end)

  it("reports empty snapshots", function()
    local model, err = reach.load(dir)
    assert.is_nil(model)
    assert.equals("invalid_snapshot", err.code)
    write(region_file("Vpcs.json"), '{"Vpcs": []}')
    expect_error("empty snapshot")
    model, err = reach.load(dir .. "/nowhere")
    assert.is_nil(model)
    assert.matches("no snapshot folder", err.message)
  end)

  it("reports bad table forms without raising", function()
    local model, err = reach.load({})
    assert.is_nil(model)
    assert.matches("accounts", err.message)
    model, err = reach.load({ accounts = { [A] = { ["us-east-1"] = { Vpcs = { "vpc-1" } } } } })
    assert.is_nil(model)
    assert.matches("accounts/111111111111/us%-east%-1/Vpcs", err.message)
    model, err = reach.load({ accounts = { [A] = 7 } })
    assert.is_nil(model)
    assert.equals("invalid_snapshot", err.code)
  end)

  it("survives garbage in every field of every kind", function()
    -- every known key with values of the wrong type: an error or a model, never a Lua error
    local kinds = { "Vpcs", "Subnets", "RouteTables", "SecurityGroups", "NetworkAcls", "NetworkInterfaces",
      "Reservations", "TransitGateways", "TransitGatewayAttachments", "TransitGatewayVpcAttachments",
      "TransitGatewayRouteTables", "TransitGatewayRoutes", "TransitGatewayPropagations", "DBInstances", "Functions",
      "VpcAttributes", "ManagedPrefixLists", "PrefixLists", "AvailabilityZones", "VpcPeeringConnections" }
    local junk = { 1, "x", true, {}, { 1 }, { Value = {} }, -1, 1e300 }
    for _, kind in ipairs(kinds) do
      for _, v in ipairs(junk) do
        local item = { VpcId = v, SubnetId = v, CidrBlock = v, RouteTableId = v, GroupId = v, NetworkAclId = v,
          Routes = v, Entries = v, IpPermissions = { { IpProtocol = v, FromPort = v, ToPort = v, IpRanges = v } },
          Associations = v, NetworkInterfaceId = v, PrivateIpAddress = v, TransitGatewayId = v, State = v,
          TransitGatewayAttachmentId = v, TransitGatewayRouteTableId = v, SubnetIds = v, FunctionName = v,
          VpcConfig = v, DBInstanceIdentifier = v, Instances = v, PrefixListId = v, Cidrs = v }
        local data = { accounts = { [A] = { ["us-east-1"] = {
          Vpcs = { { VpcId = "vpc-1", CidrBlock = "10.0.0.0/16" } }, [kind] = { item } } } } }
        local ok, model, err = pcall(reach.load, data)
        assert(ok, kind .. ": " .. tostring(model))
        assert(model or (err and err.code == "invalid_snapshot"), kind)
      end
    end
  end)

  it("refuses a trace query string it did not make (the result keeps one to walk again)", function()
    local model = assert(reach.load("tests/fixtures/reach/article"))
    local r = assert(model:trace{ src = "lambda:writer", dst = "rds:orders", protocol = "tcp", port = 3306 })
    local q = rawget(r, "_q")
    assert.equals("string", type(q))
    local m = model._m
    assert.equals("string", type(m:walk(q)))
    local creach = require("awsnet.core").reach
    local _, _, _, _, dip, proto, port = creach.query(q)
    assert.same({ "10.1.128.10", 6, 3306 }, { creach.ipstr(dip), proto, port })
    -- wrong length, then each index field pushed out of range, the code byte out of range, a source
    -- address of the other family: an argument error, not a read outside the model (the layout:
    -- src_eni, src_subnet, dst_eni, dst_ip (16 bytes), 10 bytes of ports and flags whose last is the
    -- code, src_ip (16 bytes))
    assert.equals(54, #q)
    for _, forged in ipairs({ "", q .. "x", q:sub(2),
      string.pack("=i4", 1 << 30) .. q:sub(5), q:sub(1, 4) .. string.pack("=i4", -1) .. q:sub(9),
      q:sub(1, 8) .. string.pack("=i4", 1 << 30) .. q:sub(13), q:sub(1, 37) .. "\255" .. q:sub(39),
      q:sub(1, 38) .. ("\1"):rep(16) }) do
      local ok, err = pcall(m.walk, m, forged)
      assert.is_false(ok)
      assert.matches("trace query", err)
      if #forged ~= #q or forged:byte(38) == 255 or forged:byte(-1) == 1 then
        assert.is_false((pcall(creach.query, forged)))
      end
    end
    model:close()
  end)

  it("lets a result tell its verdict and query after its model is closed", function()
    local model = assert(reach.load("tests/fixtures/reach/article"))
    local r = assert(model:trace{ src = "lambda:writer", dst = "rds:orders", protocol = "tcp", port = 22 })
    model:close()
    assert.is_false(r.reachable)
    assert.equals("ENI_SG_RULES_MISMATCH", r.code)
    assert.same({ 6, 22, "10.1.128.10" }, { r.protocol, r.port, r.dst_ip })
    -- the hops need the model: asking for them now is a clear error
    assert.has_error(function() return r.forward end)
  end)
end)
