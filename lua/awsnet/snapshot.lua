--- Snapshots of accounts: the describe-* output an evaluator needs, saved as JSON in the folder
-- layout awsnet.reach.load reads (Batfish's): <out>/aws_configs/accounts/<id>/<region>/<Key>.json,
-- each file holding {<Key> = [...]} exactly as `aws ec2 describe-* --output json` prints it (same
-- keys and types, empty lists as [], 4-space indentation; Lambda environment variable values
-- redacted, listed in REDACTED.txt), plus the keys
-- awsnet.reach adds: VpcAttributes (describe-vpc-attribute per VPC), TransitGatewayRoutes
-- (search-transit-gateway-routes per route table) and TransitGatewayPropagations; and, when the
-- endpoint does not offer a call, NotCollected ([{"Key": <file key>, "Reason": "<service>:<op>: <code>"}]),
-- which awsnet.reach lists in `skipped` and in the assumptions of each trace it could change.
-- With `resolver` (a DNS server, "host[:port]"), each database's endpoint is asked for its A and
-- AAAA records there and the answers are saved as ResolvedNames ([{"Name": ..., "Addresses": [...]}]):
-- awsnet.reach then reaches the database at the ENI holding that address (a Multi-AZ standby or a
-- replica sharing its groups is not the destination). Ask a resolver that answers as the source
-- VPC's would: from outside a VPC, a publicly accessible instance's name gives its public address.
--
--   local snap = assert(snapshot.take{out = dir, region = "us-east-1",
--                                     accounts = { {client = fn(service) -> aws client}, ... }})
--   -- snap = {dir, accounts = {{id, region, path, counts = {Vpcs = 2, ...}}}}
--
-- The calls of all accounts run concurrently (awsnet.aws's concurrent helper); then, as concurrently,
-- the calls that need their results (VPC attributes, TGW routes and propagations).
-- @module awsnet.snapshot
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
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

-- The values a snapshot must not hold: a Lambda's environment variable values (they often carry
-- passwords). Each is replaced by this text; the snapshot's REDACTED.txt says what was.
local REDACTED = "(redacted by awsnet snapshot)"

local function redact_functions(functions, notes)
  for _, fn in ipairs(functions or {}) do
    local vars = type(fn.Environment) == "table" and fn.Environment.Variables
    if type(vars) == "table" then
      for k in pairs(vars) do
        vars[k] = REDACTED
        notes[#notes + 1] = string.format("Functions[%s].Environment.Variables.%s", tostring(fn.FunctionName), k)
      end
    end
  end
end

-- Runs {client, op, params, key} calls at once (every page of each); returns per call the items
-- under `key` of all its pages (EC2 answers in the CLI's names), or nil, err naming the call.
-- Codes of an endpoint that does not offer an operation at all (a sandbox may not): the
-- snapshot then has no such data, and says so in `skipped`.
local UNSUPPORTED = { InvalidAction = true, UnknownOperationException = true, UnsupportedOperation = true }

local function fetch(aws, calls, account_of, skipped, key_of)
  local pages, errs = aws.pages_many(calls)
  local out = {}
  for i, c in ipairs(calls) do
    if errs[i] and UNSUPPORTED[errs[i].code] and skipped then
      skipped[#skipped + 1] = string.format("%s %s:%s: %s", account_of[i].id, c[1].service, c[2], errs[i].code)
      -- said in the snapshot too (NotCollected.json), so every trace it could change says so
      local a = account_of[i]
      a.not_collected = a.not_collected or {}
      local key = key_of and key_of(c) or "?"
      local reason = string.format("%s:%s: %s", c[1].service, c[2], errs[i].code)
      local seen
      for _, n in ipairs(a.not_collected) do seen = seen or (n.Key == key and n.Reason == reason) end
      if not seen then a.not_collected[#a.not_collected + 1] = { Key = key, Reason = reason } end
      pages[i], errs[i] = {}, nil
    end
    if errs[i] then
      local err = errs[i]
      err.op = string.format("snapshot of account %s: %s:%s", account_of[i].id or "?", c[1].service, c[2])
      return nil, err
    end
    local items = jsoncodec.array()
    for _, page in ipairs(pages[i]) do
      if c[4] then
        for _, item in ipairs(page[c[4]] or {}) do items[#items + 1] = item end
      else
        items[#items + 1] = page
      end
    end
    out[i] = items
  end
  return out
end

local function write_text(path, text)
  local f, err = io.open(path, "w")
  if not f then return errors.fail("snapshot", "cannot write " .. path .. ": " .. tostring(err)) end
  f:write(text)
  f:close()
  return true
end

-- {<key> = items} as `aws ... --output json` prints it.
local function write_json(path, key, items)
  local text, err = require("awsnet.aws").json({ [key] = jsoncodec.array(items) })
  if not text then return nil, err end
  return write_text(path, text)
end

-- A resolver that did not answer this many names in a row is not asked about the others (each
-- unanswered question waits out its timeouts: a wrong address would hold a large snapshot for long).
local SILENT_RESOLVER = 3
local NO_ANSWER = { timeout = true, unreachable = true }

--- Where each database's endpoint resolves through `resolver`, as the ResolvedNames key awsnet.reach
-- reads. A name without an answer is left out and said in the second result.
-- @tparam table databases DBInstances items (describe-db-instances)
-- @tparam string resolver the DNS server ("host[:port]", as awsnet.dns takes it)
-- @treturn table [{Name, Addresses}] (A answers first, then AAAA)
-- @treturn table {"<name>: <awsnet.dns code>", ...} for the names that did not resolve
function snapshot.resolve_names(databases, resolver)
  local dns = require "awsnet.dns"
  local names, failed, seen, silent = jsoncodec.array(), {}, {}, 0
  for _, db in ipairs(databases or {}) do
    local name = type(db.Endpoint) == "table" and db.Endpoint.Address
    if type(name) == "string" and not seen[name:lower()] then
      seen[name:lower()] = true
      local addresses, why = jsoncodec.array(), nil
      if silent >= SILENT_RESOLVER then
        why = "not asked (the resolver answered none of the last " .. SILENT_RESOLVER .. " names)"
      else
        for _, qtype in ipairs({ "A", "AAAA" }) do
          local answer, err = dns.resolve(name, { server = resolver, type = qtype })
          if answer then
            for _, a in ipairs(answer.addresses) do addresses[#addresses + 1] = a end
          elseif err.code ~= "nodata" then
            why = why or err.code
            if NO_ANSWER[err.code] then break end
          end
        end
        silent = (#addresses == 0 and NO_ANSWER[why]) and silent + 1 or 0
      end
      if #addresses > 0 then
        names[#names + 1] = { Name = name, Addresses = addresses }
      else
        failed[#failed + 1] = string.format("%s: %s", name, why or "nodata")
      end
    end
  end
  return names, failed
end

--- The calls that follow from the first ones' answers: per VPC its DNS attributes, per TGW route
-- table its routes and propagations.
-- @param ec2 the account's EC2 client in the region
-- @tparam table first the items of snapshot.CALLS by result key (Vpcs, TransitGatewayRouteTables)
-- @treturn table the calls, each {client, op, params, result key, file key, wrap(items) -> the file's item}
function snapshot.follow_up_calls(ec2, first)
  local calls = {}
  for _, vpc in ipairs(first.Vpcs) do
    for _, attr in ipairs({ "enableDnsSupport", "enableDnsHostnames" }) do
      calls[#calls + 1] = { ec2, "DescribeVpcAttribute", { VpcId = vpc.VpcId, Attribute = attr }, nil, "VpcAttributes",
        function(pages) return pages[1] end }
    end
  end
  for _, rt in ipairs(first.TransitGatewayRouteTables) do
    local id = rt.TransitGatewayRouteTableId
    calls[#calls + 1] = { ec2, "SearchTransitGatewayRoutes", { TransitGatewayRouteTableId = id,
      Filters = { { Name = "type", Values = { "static", "propagated" } } } }, "Routes", "TransitGatewayRoutes",
      function(routes) return { TransitGatewayRouteTableId = id, Routes = routes } end }
    calls[#calls + 1] = { ec2, "GetTransitGatewayRouteTablePropagations", { TransitGatewayRouteTableId = id },
      "TransitGatewayRouteTablePropagations", "TransitGatewayPropagations",
      function(props) return { TransitGatewayRouteTableId = id, TransitGatewayRouteTablePropagations = props } end }
  end
  return calls
end

--- Takes a snapshot of every account in opts.accounts ({client = fn(service), id = optional
-- account id}); opts.out is the snapshot folder, opts.region the region, opts.aws the aws module
-- (default awsnet.aws; its pages_many runs the calls concurrently). Returns {dir, accounts =
-- {{id, region, path, counts}}, skipped = {calls the endpoint does not offer}} or nil, err
-- (naming the account and the call).
-- With opts.resolver, where each database's endpoint resolves is saved too (ResolvedNames; a name
-- that does not resolve is listed in `unresolved`).
-- @tparam table opts {out, region = "us-east-1", accounts = {{client, id}, ...}, aws, resolver}
-- @treturn table {dir, accounts = {{id, region, path, counts}}, skipped, redacted, unresolved}, or nil, err (an API
-- error with op naming the account and call, or a file error)
-- @raise without out or accounts
function snapshot.take(opts)
  assert(type(opts) == "table" and type(opts.out) == "string" and type(opts.accounts) == "table",
    "snapshot.take{out=, region=, accounts=} expected")
  local region = opts.region or "us-east-1"
  local aws = opts.aws or require("awsnet.aws")
  -- 1: who each account is
  local calls, account_of = {}, {}
  for _, a in ipairs(opts.accounts) do
    if not a.id then
      calls[#calls + 1] = { a.client("sts"), "GetCallerIdentity", {} }
      account_of[#calls] = a
    end
  end
  local ids, err = fetch(aws, calls, account_of)
  if not ids then return nil, err end
  for i, a in ipairs(account_of) do a.id = ids[i][1].Account end
  -- 2: every describe call of every account at once
  calls, account_of = {}, {}
  for _, a in ipairs(opts.accounts) do
    a.not_collected = nil
    for _, c in ipairs(snapshot.CALLS) do
      calls[#calls + 1] = { a.client(c[1]), c[2], {}, c[3] }
      account_of[#calls] = a
    end
  end
  local skipped = {}
  local items
  items, err = fetch(aws, calls, account_of, skipped, function(c) return c[4] end)
  if not items then return nil, err end
  local data = {}
  for i, c in ipairs(calls) do
    local a = account_of[i]
    data[a] = data[a] or { VpcAttributes = {}, TransitGatewayRoutes = {}, TransitGatewayPropagations = {} }
    data[a][c[4]] = items[i]
  end
  -- 3: what needs the first round's answers
  calls, account_of = {}, {}
  for _, a in ipairs(opts.accounts) do
    for _, c in ipairs(snapshot.follow_up_calls(a.client("ec2"), data[a])) do
      calls[#calls + 1] = c
      account_of[#calls] = a
    end
  end
  items, err = fetch(aws, calls, account_of, skipped, function(c) return c[5] end)
  if not items then return nil, err end
  for i, c in ipairs(calls) do
    local list = data[account_of[i]][c[5]]
    list[#list + 1] = c[6](items[i])
  end
  -- 4: where the databases' endpoints resolve
  local out = { dir = opts.out, accounts = {}, skipped = skipped, redacted = {}, unresolved = {} }
  if opts.resolver then
    for _, a in ipairs(opts.accounts) do
      local failed
      data[a].ResolvedNames, failed = snapshot.resolve_names(data[a].DBInstances, opts.resolver)
      for _, f in ipairs(failed) do
        out.unresolved[#out.unresolved + 1] = string.format("%s %s: the endpoint %s did not resolve through %s", a.id,
          region, f, opts.resolver)
      end
    end
  end
  -- 5: the files
  for _, a in ipairs(opts.accounts) do
    if a.not_collected then data[a].NotCollected = a.not_collected end
    local entry
    entry, err = snapshot.write_region(opts.out, a.id, region, data[a])
    if not entry then return nil, err end
    for _, n in ipairs(entry.redacted) do out.redacted[#out.redacted + 1] = a.id .. " " .. n end
    out.accounts[#out.accounts + 1] = entry
  end
  return out
end

--- Writes one account's files in one region: <dir>/aws_configs/accounts/<id>/<region>/<Key>.json
-- for each key of `data` (Lambda environment values redacted first, listed in REDACTED.txt).
-- The folder is written under <dir>/.partial and renamed into place when whole, so a folder that is there
-- is complete (a snapshot stopped midway keeps only whole account × region folders).
-- @tparam string dir the snapshot folder
-- @tparam string account the account id
-- @tparam string region the region
-- @tparam table data {Key = items}
-- @treturn table {id, region, path, counts = {Key = n}, redacted = {what was redacted}}, or nil, err
function snapshot.write_region(dir, account, region, data)
  local path = string.format("%s/aws_configs/accounts/%s/%s", dir, account, region)
  -- outside aws_configs, so a reader never takes a half-written folder for a region
  local partial = string.format("%s/.partial/%s-%s", dir, account, region)
  local ok, err = true, nil
  -- left by a run that was killed midway
  if io.open(partial, "r") then ok, err = process.remove(partial) end
  local file = require("awsnet.core").file
  if ok then ok, err = file.mkdir(partial) end
  if ok then ok, err = file.mkdir(path:match("^(.*)/[^/]+$")) end
  if not ok then return errors.fail("snapshot", tostring(err)) end
  local counts, notes = {}, {}
  redact_functions(data.Functions, notes)
  if #notes > 0 then
    ok, err = write_text(partial .. "/REDACTED.txt", "awsnet snapshot replaced these values by \"" .. REDACTED
      .. "\" (secrets are never written):\n" .. table.concat(notes, "\n") .. "\n")
    if not ok then return nil, err end
  end
  for key, list in pairs(data) do
    ok, err = write_json(partial .. "/" .. key .. ".json", key, list)
    if not ok then return nil, err end
    counts[key] = #list
  end
  -- an earlier snapshot's folder in the way: replaced
  if not os.rename(partial, path) then
    ok, err = process.remove(path)
    if not ok then return nil, err end
    if not os.rename(partial, path) then return errors.fail("snapshot", "cannot rename " .. partial .. " to " .. path) end
  end
  return { id = account, region = region, path = path, counts = counts, redacted = notes }
end

return snapshot
