--- Snapshots of accounts: the describe-* output an evaluator needs, saved as JSON in the folder
-- layout awsnet.reach.load reads (Batfish's): <out>/aws_configs/accounts/<id>/<region>/<Key>.json,
-- each file holding {<Key> = [...]} exactly as `aws ec2 describe-*` prints it.
--
--   local snap = assert(snapshot.take{out = dir, region = "us-east-1",
--                                     accounts = { {client = fn(service) -> aws client}, ... }})
--   -- snap = {dir, accounts = {{id, region, path, counts = {Vpcs = 2, ...}}}}
--
-- The calls of all accounts run concurrently (awsnet.aws's concurrent helper); transit gateway
-- route tables are followed by their routes and propagations, which Batfish keeps in two wrapper
-- files (TransitGatewayStaticRoutes, TransitGatewayPropagations).
local cjson = require "cjson"
local errors = require "awsnet.errors"
local process = require "awsnet.svc.process"

local snapshot = {}

--- What is collected: {service, operation, result key, file name}.
snapshot.CALLS = {
  { "ec2", "DescribeAvailabilityZones", "AvailabilityZones", "AvailabilityZones" },
  { "ec2", "DescribeVpcs", "Vpcs", "Vpcs" },
  { "ec2", "DescribeSubnets", "Subnets", "Subnets" },
  { "ec2", "DescribeRouteTables", "RouteTables", "RouteTables" },
  { "ec2", "DescribeSecurityGroups", "SecurityGroups", "SecurityGroups" },
  { "ec2", "DescribeNetworkAcls", "NetworkAcls", "NetworkAcls" },
  { "ec2", "DescribeNetworkInterfaces", "NetworkInterfaces", "NetworkInterfaces" },
  { "ec2", "DescribeInstances", "Reservations", "Reservations" },
  { "ec2", "DescribeInternetGateways", "InternetGateways", "InternetGateways" },
  { "ec2", "DescribeNatGateways", "NatGateways", "NatGateways" },
  { "ec2", "DescribeVpcPeeringConnections", "VpcPeeringConnections", "VpcPeeringConnections" },
  { "ec2", "DescribeTransitGateways", "TransitGateways", "TransitGateways" },
  { "ec2", "DescribeTransitGatewayAttachments", "TransitGatewayAttachments", "TransitGatewayAttachments" },
  { "ec2", "DescribeTransitGatewayVpcAttachments", "TransitGatewayVpcAttachments", "TransitGatewayVpcAttachments" },
  { "ec2", "DescribeTransitGatewayRouteTables", "TransitGatewayRouteTables", "TransitGatewayRouteTables" },
  { "rds", "DescribeDBInstances", "DBInstances", "RdsInstances" },
  { "lambda", "ListFunctions", "Functions", "LambdaFunctions" },
}

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
    for _, item in ipairs(page[key] or {}) do items[#items + 1] = item end
  end
  return items
end

local function write_json(path, key, items)
  local f, err = io.open(path, "w")
  if not f then return errors.fail("snapshot", "cannot write " .. path .. ": " .. tostring(err)) end
  local doc = { [key] = setmetatable(items, cjson.array_mt) }
  f:write(cjson.encode(doc), "\n")
  f:close()
  return true
end

-- Routes and propagations of the transit gateway route tables this account owns.
local function tgw_route_jobs(account, tables)
  local jobs = {}
  for _, rt in ipairs(tables) do
    local id = rt.TransitGatewayRouteTableId
    jobs[#jobs + 1] = function()
      local res, err = account.client("ec2"):call("SearchTransitGatewayRoutes", { TransitGatewayRouteTableId = id,
        Filters = { { Name = "type", Values = { "static", "propagated" } } } })
      if not res then return nil, err end
      return { kind = "routes", entry = { TransitGatewayRouteTableId = id,
        Routes = setmetatable(res.Routes or {}, cjson.array_mt),
        AdditionalRoutesAvailable = res.AdditionalRoutesAvailable or false } }
    end
    jobs[#jobs + 1] = function()
      local items, err = collect(account.client("ec2"), "GetTransitGatewayRouteTablePropagations",
        "TransitGatewayRouteTablePropagations", { TransitGatewayRouteTableId = id })
      if not items then return nil, err end
      return { kind = "propagations", entry = { TransitGatewayRouteTableId = id,
        TransitGatewayRouteTablePropagations = setmetatable(items, cjson.array_mt) } }
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
    data[w.account][w.call[4]] = { key = w.call[3], items = r[1] }
  end
  -- 3: routes of the TGW route tables each account owns
  local route_jobs, route_where = {}, {}
  for _, a in ipairs(opts.accounts) do
    for _, job in ipairs(tgw_route_jobs(a, data[a].TransitGatewayRouteTables.items)) do
      route_jobs[#route_jobs + 1] = job
      route_where[#route_jobs] = a
    end
  end
  for _, a in ipairs(opts.accounts) do
    data[a].TransitGatewayStaticRoutes = { key = "TransitGatewayStaticRoutes", items = {} }
    data[a].TransitGatewayPropagations = { key = "TransitGatewayPropagations", items = {} }
  end
  for j, r in ipairs(run_jobs(aws, route_jobs)) do
    local a = route_where[j]
    if not r[1] then return nil, r[2] end
    local file = r[1].kind == "routes" and "TransitGatewayStaticRoutes" or "TransitGatewayPropagations"
    local items = data[a][file].items
    items[#items + 1] = r[1].entry
  end
  -- 4: the files
  local out = { dir = opts.out, accounts = {} }
  for _, a in ipairs(opts.accounts) do
    local path = string.format("%s/aws_configs/accounts/%s/%s", opts.out, a.id, region)
    local ok, err = process.run("mkdir -p " .. process.quote(path))
    if not ok then return nil, err end
    local counts = {}
    for file, d in pairs(data[a]) do
      ok, err = write_json(path .. "/" .. file .. ".json", d.key, d.items)
      if not ok then return nil, err end
      counts[d.key] = #d.items
    end
    out.accounts[#out.accounts + 1] = { id = a.id, region = region, path = path, counts = counts }
  end
  return out
end

return snapshot
