--- The shape of every describe-* value the reachability loader reads, and a check of a snapshot
-- against it: a value of the wrong type anywhere the loader reads (a string where a list belongs,
-- an object where an array does) is an error naming the file and the JSON path, never an empty
-- list and a confident verdict. Fields the loader does not read are not checked; JSON null counts
-- as absent.
-- @module awsnet.reach.shape
local errors = require "awsnet.errors"

local shape = {}

local S, B, I, N = "string", "boolean", "integer", "number" -- N: a string or a number (protocols)
local function array(item) return { array = item } end
local function object(fields) return { object = fields } end

local TAGS = array(object{ Key = S, Value = S })
local function tagged(fields)
  fields.Tags, fields.TagSet = TAGS, TAGS
  return object(fields)
end

local IPV6_CIDRS = array(object{ Ipv6CidrBlock = S, Ipv6CidrBlockState = object{ State = S } })
local PERMISSION = object{ IpProtocol = N, FromPort = I, ToPort = I, IpRanges = array(object{ CidrIp = S }),
  Ipv6Ranges = array(object{ CidrIpv6 = S }),
  PrefixListIds = array(object{ PrefixListId = S }), UserIdGroupPairs = array(object{ GroupId = S, UserId = S }) }
local ENI = tagged{ NetworkInterfaceId = S, SubnetId = S, Groups = array(object{ GroupId = S }), PrivateIpAddress = S,
  PrivateIpAddresses = array(object{ PrivateIpAddress = S }), Association = object{ PublicIp = S },
  Ipv6Addresses = array(object{ Ipv6Address = S }),
  InterfaceType = S, Description = S, RequesterId = S, Attachment = object{ DeviceIndex = I } }
local TGW_ROUTES = tagged{ TransitGatewayRouteTableId = S, Routes = array(object{ Type = S, DestinationCidrBlock = S,
  PrefixListId = S, State = S, TransitGatewayAttachments = array(object{ TransitGatewayAttachmentId = S }) }) }

--- What the loader reads under each top-level key (each an array of objects).
shape.KEYS = {
  AvailabilityZones = object{ ZoneName = S, ZoneId = S },
  PrefixLists = object{ PrefixListId = S, Cidrs = array(S) },
  ManagedPrefixLists = tagged{ PrefixListId = S, Entries = array(object{ Cidr = S }) },
  TransitGateways = tagged{ TransitGatewayId = S, OwnerId = S, State = S,
    Options = object{ SecurityGroupReferencingSupport = S, DnsSupport = S } },
  TransitGatewayRouteTables = tagged{ TransitGatewayRouteTableId = S, State = S },
  VpcAttributes = object{ VpcId = S, EnableDnsSupport = object{ Value = B }, EnableDnsHostnames = object{ Value = B } },
  Vpcs = tagged{ VpcId = S, OwnerId = S, CidrBlock = S,
    CidrBlockAssociationSet = array(object{ CidrBlock = S, CidrBlockState = object{ State = S } }),
    Ipv6CidrBlockAssociationSet = IPV6_CIDRS },
  RouteTables = tagged{ RouteTableId = S, VpcId = S,
    Associations = array(object{ Main = B, SubnetId = S, AssociationState = object{ State = S } }),
    Routes = array(object{ DestinationCidrBlock = S, DestinationPrefixListId = S, DestinationIpv6CidrBlock = S,
      Origin = S, GatewayId = S, TransitGatewayId = S, VpcPeeringConnectionId = S, NatGatewayId = S,
      NetworkInterfaceId = S, InstanceId = S, EgressOnlyInternetGatewayId = S, LocalGatewayId = S,
      CarrierGatewayId = S, CoreNetworkArn = S, State = S }) },
  NetworkAcls = tagged{ NetworkAclId = S, IsDefault = B, VpcId = S, Associations = array(object{ SubnetId = S }),
    Entries = array(object{ RuleNumber = I, Protocol = N, Ipv6CidrBlock = S, CidrBlock = S, Egress = B,
      RuleAction = S, PortRange = object{ From = I, To = I }, IcmpTypeCode = object{ Type = I, Code = I } }) },
  SecurityGroups = tagged{ GroupId = S, GroupName = S, IpPermissions = array(PERMISSION),
    IpPermissionsEgress = array(PERMISSION) },
  Subnets = tagged{ SubnetId = S, VpcId = S, CidrBlock = S, AvailabilityZone = S, AvailabilityZoneId = S,
    Ipv6CidrBlockAssociationSet = IPV6_CIDRS },
  VpcPeeringConnections = tagged{ VpcPeeringConnectionId = S, RequesterVpcInfo = object{ VpcId = S },
    AccepterVpcInfo = object{ VpcId = S }, Status = object{ Code = S } },
  NetworkInterfaces = ENI,
  Reservations = object{ Instances = array(object{ InstanceId = S, NetworkInterfaces = array(ENI) }) },
  TransitGatewayAttachments = tagged{ TransitGatewayAttachmentId = S, TransitGatewayId = S, ResourceType = S,
    ResourceId = S, State = S, CreationTime = S,
    Association = object{ TransitGatewayRouteTableId = S, State = S } },
  TransitGatewayVpcAttachments = tagged{ TransitGatewayAttachmentId = S, TransitGatewayId = S, VpcId = S, State = S,
    SubnetIds = array(S), Options = object{ SecurityGroupReferencingSupport = S, ApplianceModeSupport = S,
      Ipv6Support = S } },
  TransitGatewayAssociations = object{ TransitGatewayRouteTableId = S,
    Associations = array(object{ TransitGatewayAttachmentId = S, State = S }) },
  TransitGatewayPropagations = object{ TransitGatewayRouteTableId = S,
    TransitGatewayRouteTablePropagations = array(object{ TransitGatewayAttachmentId = S, State = S }) },
  TransitGatewayRoutes = TGW_ROUTES,
  TransitGatewayStaticRoutes = TGW_ROUTES,
  Functions = object{ FunctionName = S,
    VpcConfig = object{ VpcId = S, SubnetIds = array(S), SecurityGroupIds = array(S), Ipv6AllowedForDualStack = B } },
  DBInstances = object{ DBInstanceIdentifier = S, DBInstanceStatus = S, AvailabilityZone = S, PubliclyAccessible = B,
    NetworkType = S,
    VpcSecurityGroups = array(object{ VpcSecurityGroupId = S }),
    DBSubnetGroup = object{ VpcId = S, Subnets = array(object{ SubnetIdentifier = S,
      SubnetAvailabilityZone = object{ Name = S } }) },
    Endpoint = object{ Address = S, Port = I } },
  ResolvedNames = object{ Name = S, Addresses = array(S) },
  NotCollected = object{ Key = S, Reason = S },
}

local NAMES = { [S] = "a string", [B] = "a boolean", [I] = "an integer", [N] = "a string or a number" }

local function kind_of(v)
  local t = type(v)
  if t == "table" then
    if next(v) == nil then return "an empty list" end
    return v[1] ~= nil and "a JSON array" or "a JSON object"
  end
  if t == "number" then return math.type(v) == "integer" and "an integer" or "a number" end
  if t == "userdata" then return "null" end
  return "a " .. t
end

local function is_null(v) return v == nil or (type(v) == "userdata" and v == shape.null) end

-- Checks v against spec; on a mismatch returns the message and the path pieces, innermost first.
local check
local function scalar_ok(v, spec)
  local t = type(v)
  if spec == S then return t == "string" end
  if spec == B then return t == "boolean" end
  if spec == I then return t == "number" and math.tointeger(v) ~= nil end
  return t == "number" or t == "string" -- N
end

check = function(v, spec)
  if type(spec) == "string" then
    if scalar_ok(v, spec) then return nil end
    return { string.format("expected %s, got %s", NAMES[spec], kind_of(v)) }
  end
  if type(v) ~= "table" then
    return { string.format("expected %s, got %s", spec.array and "a JSON array" or "a JSON object", kind_of(v)) }
  end
  if spec.array then
    if next(v) ~= nil and v[1] == nil then return { "expected a JSON array, got a JSON object" } end
    local item = spec.array
    for i = 1, #v do
      local bad = check(v[i], item)
      if bad then
        bad[#bad + 1] = "[" .. (i - 1) .. "]"
        return bad
      end
    end
    return nil
  end
  if v[1] ~= nil then return { "expected a JSON object, got a JSON array" } end
  for field, fspec in pairs(spec.object) do
    local fv = v[field]
    if not is_null(fv) then
      local bad = check(fv, fspec)
      if bad then
        bad[#bad + 1] = "." .. field
        return bad
      end
    end
  end
  return nil
end

--- Checks one region's data (a describe file's top-level object, or a region table of the table
-- form) against what the loader reads.
-- @tparam table doc {Key = value, ...}
-- @tparam string file what the error names as the file
-- @tparam[opt] boolean per_key name the file `<file>/<Key>` (the table form: one "file" per key)
-- @treturn true, or nil, err ("invalid_snapshot" with `file` and `path`, the JSON path of the value)
function shape.check(doc, file, per_key)
  for key, v in pairs(doc) do
    local spec = shape.KEYS[key]
    if spec and not is_null(v) then
      local bad = check(v, array(spec))
      if bad then
        local parts = { "$." .. tostring(key) }
        for i = #bad, 2, -1 do parts[#parts + 1] = bad[i] end
        local path = table.concat(parts)
        if per_key then file = file .. "/" .. tostring(key) end
        return errors.fail("invalid_snapshot", string.format("%s: %s: %s", file, path, bad[1]),
          { file = file, path = path })
      end
    end
  end
  return true
end

-- cjson's null, when cjson is there (the table form may come from elsewhere).
do
  local ok, cjson = pcall(require, "cjson.safe")
  shape.null = ok and cjson.null or nil
end

return shape
