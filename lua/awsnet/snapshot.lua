--- Snapshots of accounts: the describe-* output an evaluator needs, saved as JSON in the folder
-- layout awsnet.reach.load reads (Batfish's): <out>/aws_configs/accounts/<id>/<region>/<Key>.json,
-- each file holding {<Key> = [...]} exactly as `aws ec2 describe-*` prints it, plus the keys
-- awsnet.reach adds: VpcAttributes (describe-vpc-attribute per VPC), TransitGatewayRoutes
-- (search-transit-gateway-routes per route table) and TransitGatewayPropagations.
--
--   local snap = assert(snapshot.take{out = dir, region = "us-east-1",
--                                     accounts = { {client = fn(service) -> aws client}, ... }})
--   -- snap = {dir, accounts = {{id, region, path, counts = {Vpcs = 2, ...}}}}
--
-- The calls of all accounts run concurrently (awsnet.aws's concurrent helper); then, as concurrently,
-- the calls that need their results (VPC attributes, TGW routes and propagations).
local cjson = require "cjson"
local errors = require "awsnet.errors"
local process = require "awsnet.svc.process"

local snapshot = {}

--- What is collected: {service, operation, result key}; the file is named after the key.
snapshot.CALLS = {
  { "ec2", "DescribeAvailabilityZones", "AvailabilityZones" },
  { "ec2", "DescribeVpcs", "Vpcs" },
  { "ec2", "DescribeSubnets", "Subnets" },
  { "ec2", "DescribeRouteTables", "RouteTables" },
  { "ec2", "DescribeSecurityGroups", "SecurityGroups" },
  { "ec2", "DescribeNetworkAcls", "NetworkAcls" },
  { "ec2", "DescribeNetworkInterfaces", "NetworkInterfaces" },
  { "ec2", "DescribeInstances", "Reservations" },
  { "ec2", "DescribeInternetGateways", "InternetGateways" },
  { "ec2", "DescribeNatGateways", "NatGateways" },
  { "ec2", "DescribeVpcPeeringConnections", "VpcPeeringConnections" },
  { "ec2", "DescribeTransitGateways", "TransitGateways" },
  { "ec2", "DescribeTransitGatewayAttachments", "TransitGatewayAttachments" },
  { "ec2", "DescribeTransitGatewayVpcAttachments", "TransitGatewayVpcAttachments" },
  { "ec2", "DescribeTransitGatewayRouteTables", "TransitGatewayRouteTables" },
  { "rds", "DescribeDBInstances", "DBInstances" },
  { "lambda", "ListFunctions", "Functions" },
}

---------------------------------------------------------------------------------------------
-- EC2 answers in the AWS CLI's names

-- EC2 answers XML whose element names are the API's wire names (vpcSet, groupDescription);
-- the CLI, botocore and every describe-* file use the model's member names (Vpcs, Description).
-- Most differ only by the first letter; these do not (per parent element where it matters).
local EC2_NAMES = {
  vpcSet = "Vpcs", subnetSet = "Subnets", routeTableSet = "RouteTables", securityGroupInfo = "SecurityGroups",
  networkAclSet = "NetworkAcls", networkInterfaceSet = "NetworkInterfaces", reservationSet = "Reservations",
  instancesSet = "Instances", internetGatewaySet = "InternetGateways", natGatewaySet = "NatGateways",
  vpcPeeringConnectionSet = "VpcPeeringConnections", transitGatewaySet = "TransitGateways",
  availabilityZoneInfo = "AvailabilityZones", routeSet = "Routes", associationSet = "Associations", tagSet = "Tags",
  groups = "UserIdGroupPairs", groupSet = "Groups", entrySet = "Entries", groupDescription = "Description",
  privateIpAddressesSet = "PrivateIpAddresses", ipv6AddressesSet = "Ipv6Addresses",
  cidrBlockAssociationSet = "CidrBlockAssociations", ipv6CidrBlockAssociationSet = "Ipv6CidrBlockAssociations",
  attachmentSet = "Attachments", natGatewayAddressSet = "NatGatewayAddresses", propagatingVgwSet = "PropagatingVgws",
  zoneState = "State", messageSet = "Messages", prefixListSet = "PrefixLists", ipv4PrefixSet = "Ipv4Prefixes",
}
local EC2_INSTANCE_NAMES = { groupSet = "SecurityGroups", instanceState = "State", dnsName = "PublicDnsName",
  ipAddress = "PublicIpAddress" }
local EC2_INTEGERS = { From = true, To = true, Code = true, Type = true }

local function cli_value(v, parent)
  if type(v) ~= "table" then return v end
  local out = {}
  if v[1] ~= nil or next(v) == nil then
    for i, x in ipairs(v) do out[i] = cli_value(x, parent) end
    return out
  end
  for k, x in pairs(v) do
    local name = (parent == "instancesSet" and EC2_INSTANCE_NAMES[k]) or EC2_NAMES[k] or (k:sub(1, 1):upper() .. k:sub(2))
    local value = cli_value(x, k)
    if EC2_INTEGERS[name] and (parent == "portRange" or parent == "icmpTypeCode") then
      value = math.tointeger(tonumber(value)) or value
    elseif name == "Value" and type(parent) == "string" and parent:match("^enable") then
      -- describe-vpc-attribute's {"Value": true}: the XML text "true" is a boolean here
      if value == "true" then value = true elseif value == "false" then value = false end
    end
    out[name] = value
  end
  return out
end

--- An EC2 answer as the AWS CLI prints it (member names, not XML names), without requestId.
function snapshot.cli_names(result)
  local out = cli_value(result)
  out.RequestId, out.NextToken = nil, nil
  return out
end

-- Runs `jobs` (functions returning value or nil, err) concurrently when the aws module offers it.
local function run_jobs(aws, jobs)
  if aws and aws.concurrent then return aws.concurrent(jobs) end
  local results = {}
  for i, job in ipairs(jobs) do results[i] = table.pack(job()) end
  return results
end

-- All items of a paged list call.
local function collect(client, op, key, params)
  local items = {}
  for page, err in client:pages(op, params or {}) do
    if not page then return nil, err end
    if client.service == "ec2" then page = snapshot.cli_names(page) end
    for _, item in ipairs(page[key] or {}) do items[#items + 1] = item end
  end
  return items
end

local function write_json(path, key, items)
  local f, err = io.open(path, "w")
  if not f then return errors.fail("snapshot", "cannot write " .. path .. ": " .. tostring(err)) end
  local doc = { [key] = items }
  f:write(cjson.encode(doc), "\n")
  f:close()
  return true
end

-- The calls that follow from the first round: per VPC its DNS attributes, per TGW route table
-- its routes and propagations. Each job returns {key, entries}.
local function follow_up_jobs(account, first)
  local ec2 = function() return account.client("ec2") end
  local jobs = {}
  for _, vpc in ipairs(first.Vpcs) do
    for _, attr in ipairs({ "enableDnsSupport", "enableDnsHostnames" }) do
      jobs[#jobs + 1] = function()
        local res, err = ec2():call("DescribeVpcAttribute", { VpcId = vpc.VpcId, Attribute = attr })
        if not res then return nil, err end
        return { "VpcAttributes", { snapshot.cli_names(res) } }
      end
    end
  end
  for _, rt in ipairs(first.TransitGatewayRouteTables) do
    local id = rt.TransitGatewayRouteTableId
    jobs[#jobs + 1] = function()
      local res, err = ec2():call("SearchTransitGatewayRoutes", { TransitGatewayRouteTableId = id,
        Filter = { { Name = "type", Value = { "static", "propagated" } } } })
      if not res then return nil, err end
      res = snapshot.cli_names(res)
      return { "TransitGatewayRoutes", { { TransitGatewayRouteTableId = id,
        Routes = res.Routes or {},
        AdditionalRoutesAvailable = res.AdditionalRoutesAvailable or false } } }
    end
    jobs[#jobs + 1] = function()
      local items, err = collect(ec2(), "GetTransitGatewayRouteTablePropagations",
        "TransitGatewayRouteTablePropagations", { TransitGatewayRouteTableId = id })
      if not items then return nil, err end
      return { "TransitGatewayPropagations", { { TransitGatewayRouteTableId = id,
        TransitGatewayRouteTablePropagations = items } } }
    end
  end
  return jobs
end

--- Takes a snapshot of every account in opts.accounts ({client = fn(service), id = optional
-- account id}); opts.out is the snapshot folder, opts.region the region, opts.aws the aws module
-- (for its concurrent helper). Returns {dir, accounts = {...}} or nil, err (naming the account).
function snapshot.take(opts)
  assert(type(opts) == "table" and type(opts.out) == "string" and type(opts.accounts) == "table",
    "snapshot.take{out=, region=, accounts=} expected")
  local region = opts.region or "us-east-1"
  local aws = opts.aws
  -- 1: who each account is
  local id_jobs = {}
  for i, a in ipairs(opts.accounts) do
    id_jobs[i] = function()
      if a.id then return a.id end
      local res, err = a.client("sts"):call("GetCallerIdentity", {})
      if not res then return nil, err end
      return res.Account
    end
  end
  local ids = run_jobs(aws, id_jobs)
  -- 2: every describe call of every account at once
  local jobs, where = {}, {}
  for i, a in ipairs(opts.accounts) do
    if not ids[i][1] then return nil, ids[i][2] end
    a.id = ids[i][1]
    for _, c in ipairs(snapshot.CALLS) do
      jobs[#jobs + 1] = function() return collect(a.client(c[1]), c[2], c[3]) end
      where[#jobs] = { account = a, call = c }
    end
  end
  local results = run_jobs(aws, jobs)
  local data = {}
  for j, r in ipairs(results) do
    local w = where[j]
    if not r[1] then
      local err = r[2]
      err.op = string.format("snapshot of account %s: %s:%s", w.account.id, w.call[1], w.call[2])
      return nil, err
    end
    data[w.account] = data[w.account] or {}
    data[w.account][w.call[3]] = r[1]
  end
  -- 3: what needs the first round's answers
  local more, more_where = {}, {}
  for _, a in ipairs(opts.accounts) do
    for _, key in ipairs({ "VpcAttributes", "TransitGatewayRoutes", "TransitGatewayPropagations" }) do
      data[a][key] = {}
    end
    for _, job in ipairs(follow_up_jobs(a, data[a])) do
      more[#more + 1] = job
      more_where[#more] = a
    end
  end
  for j, r in ipairs(run_jobs(aws, more)) do
    local a = more_where[j]
    if not r[1] then
      r[2].op = "snapshot of account " .. a.id
      return nil, r[2]
    end
    local list = data[a][r[1][1]]
    for _, entry in ipairs(r[1][2]) do list[#list + 1] = entry end
  end
  -- 4: the files
  local out = { dir = opts.out, accounts = {} }
  for _, a in ipairs(opts.accounts) do
    local path = string.format("%s/aws_configs/accounts/%s/%s", opts.out, a.id, region)
    local ok, err = process.run("mkdir -p " .. process.quote(path))
    if not ok then return nil, err end
    local counts = {}
    for key, list in pairs(data[a]) do
      ok, err = write_json(path .. "/" .. key .. ".json", key, list)
      if not ok then return nil, err end
      counts[key] = #list
    end
    out.accounts[#out.accounts + 1] = { id = a.id, region = region, path = path, counts = counts }
  end
  return out
end

return snapshot
