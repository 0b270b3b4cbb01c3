--- The article's scenario as a runbook: a VPC Lambda in account A writes a row into an RDS MySQL
-- database in account B through a Transit Gateway that A shares with B over AWS RAM.
--
--   local scenario = require "awsnet.scenario.tgw_lambda_rds"
--   local cfg = assert(scenario.config(user_config))   -- defaults from the article filled in
--   local rb = assert(scenario.runbook(cfg, {on_event = print_progress}))
--   rb:plan() rb:apply() rb:destroy()                 -- see awsnet.runbook
--   scenario.verify(cfg, rb) / scenario.prove(cfg, rb) -- in awsnet.scenario.checks
--
-- Every resource carries the tags awsnet:scenario = <name> and awsnet:step = <step id>, so a
-- resource created just before a crash is found and adopted by the next apply; names (RDS, IAM,
-- Lambda, RAM) are derived from <name> too.
-- Errors: "config" (a config that cannot work: a bad name or CIDR, an unknown key, no password),
-- and the API errors of the steps, named by step and account (see awsnet.runbook).
-- @module awsnet.scenario.tgw_lambda_rds
-- @alias scenario
local errors = require "awsnet.errors"
local lambda_zip = require "awsnet.scenario.lambda_zip"

local scenario = {}

-- ------------------------------------------------------------------------------------------
-- Configuration

--- The article's defaults. Accounts: {profile=} or {credentials=}, plus endpoint= for a sandbox;
-- B may also be {role_arn=, source="A"} (AssumeRole from A) or {same_as="A"} (one account: RAM skipped).
scenario.DEFAULTS = {
  name = "awsnet-tgw-demo",
  region = "ap-northeast-1", -- the article's; any region works
  state_file = "awsnet-tgw-demo.state.json",
  timeout = 1800,          -- seconds for any one wait (RDS takes ~10 minutes on AWS)
  poll_interval = 10,
  max_attempts = 10,       -- per API call: throttling and 5xx are retried with backoff (SDK default: 3)
  progress_every = 15,
  accounts = { A = {}, B = {} },
  -- AZs by AZ id, the same zone in every account ("az1" = the region's first, e.g. apne1-az1; or
  -- a full id "apne1-az4"); each account's name for it comes from DescribeAvailabilityZones. A
  -- name ("a", "ap-northeast-1a") is also taken, as the account that creates the subnet names it.
  network = {
    A = { cidr = "10.0.0.0/16", subnet = "10.0.128.0/28", tgw_subnet = "10.0.129.0/28", az = "az1" },
    B = { cidr = "10.1.0.0/16", subnet = "10.1.128.0/28", subnet2 = "10.1.128.16/28", tgw_subnet = "10.1.129.0/28",
      az = "az1", az2 = "az2" },
  },
  extra_columns = false,   -- true: the Lambda's users table also has an email column (not the article's)
  database = { engine = "mysql", instance_class = "db.t3.micro", storage_gb = 20, name = "sampledb",
    username = "admin", password_env = "AWSNET_DB_PASSWORD", port = 3306 },
  lambda = { runtime = "python3.12", timeout = 30, pymysql = lambda_zip.DEFAULT_PYMYSQL },
}

local function merge(defaults, given)
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  for k, v in pairs(given or {}) do
    if type(v) == "table" and type(out[k]) == "table" and #v == 0 then out[k] = merge(out[k], v) else out[k] = v end
  end
  return out
end

local CIDR = "^%d+%.%d+%.%d+%.%d+/%d+$"

-- Every key the scenario reads, so a misspelt one is refused rather than silently replaced by its
-- default. `true` is a leaf; a table lists the keys of a nested table. Keep in step with DEFAULTS
-- and with what the steps, the checks and the runbook read from the config.
local CREDENTIALS_KEYS = { access_key_id = true, secret_access_key = true, session_token = true,
  expiration = true, source = true }
local ACCOUNT_KEYS = { profile = true, credentials = CREDENTIALS_KEYS, endpoint = true, role_arn = true,
  source = true, same_as = true }
local NETWORK_A_KEYS = { cidr = true, subnet = true, tgw_subnet = true, az = true, vpc_id = true, subnet_id = true,
  tgw_subnet_id = true }
local NETWORK_B_KEYS = { subnet2 = true, az2 = true, subnet2_id = true }
for k in pairs(NETWORK_A_KEYS) do NETWORK_B_KEYS[k] = true end
local CONFIG_KEYS = {
  name = true, region = true, state_file = true, timeout = true, poll_interval = true, max_attempts = true,
  progress_every = true, inside_vpc = true, extra_columns = true,
  concurrency = true,      -- apply's steps at once (awsnet.runbook: 0 as many as are ready, 1 one by one)
  same_account = true, -- derived from accounts.B.same_as; accepted so a checked config checks again
  accounts = { A = ACCOUNT_KEYS, B = ACCOUNT_KEYS },
  account_ids = { A = true, B = true },
  network = { A = NETWORK_A_KEYS, B = NETWORK_B_KEYS },
  database = { engine = true, instance_class = true, storage_gb = true, name = true, username = true,
    password_env = true, password_file = true, port = true },
  lambda = { runtime = true, timeout = true, pymysql = true },
  resolver = { server = true, port = true, label = true },
  sandbox = { endpoint = true, twin = true }, -- twin: the sandbox's network twin prefix, when it runs one
}

-- Edit distance (optimal string alignment: a swap of two neighbours counts as one edit).
local function distance(a, b)
  local d = {}
  for i = 0, #a do d[i] = { [0] = i } end
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      d[i][j] = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        d[i][j] = math.min(d[i][j], d[i - 2][j - 2] + 1)
      end
    end
  end
  return d[#a][#b]
end

-- The known key nearest to `key`, when it is near enough to be a typo of it or one is the start
-- of the other ("password_environment" for "password_env").
local function nearest(key, known)
  local best, best_d
  for k in pairs(known) do
    local a, b = key:lower(), k:lower()
    local d = distance(a, b)
    local prefix = #a >= 4 and #b >= 4 and (a:sub(1, #b) == b or b:sub(1, #a) == a)
    if d <= math.max(2, #key // 3) or prefix then
      if not best_d or d < best_d or (d == best_d and k < best) then best, best_d = k, d end
    end
  end
  return best
end

-- nil, or the error for the first unknown key (in sorted order, at any depth) of `t`.
local function check_keys(t, known, path)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local function where(k) return path and (path .. "." .. k) or k end
  for _, k in ipairs(keys) do
    local sub = known[k]
    if not sub then
      local near = nearest(k, known)
      local hint
      if near then
        hint = string.format(" (did you mean '%s'?)", where(near))
      else -- nothing close: say what is known there
        local names = {}
        for name in pairs(known) do names[#names + 1] = name end
        table.sort(names)
        hint = " (known: " .. table.concat(names, ", ") .. ")"
      end
      return errors.new("config", string.format("unknown key '%s' in config%s", where(k), hint),
        { key = where(k), suggestion = near and where(near) })
    end
    local v = t[k]
    -- a credentials provider object (anything with a metatable) is not a plain table of keys
    if type(sub) == "table" and type(v) == "table" and getmetatable(v) == nil then
      local err = check_keys(v, sub, where(k))
      if err then return err end
    end
  end
end

--- Fills the defaults into a user configuration and checks it; returns the config or nil, err.
-- A key the scenario does not know, at any level, is refused ("config", naming the nearest known key).
-- @tparam[opt] table given the user config (DEFAULTS' shape; tables merge, arrays replace)
-- @treturn table the config (with same_account), or nil, err ("config" with message; for an
-- unknown key also err.key and err.suggestion, full dotted paths)
-- @raise when `given` is neither nil nor a table
function scenario.config(given)
  assert(given == nil or type(given) == "table", "scenario.config: table expected")
  local unknown = given and check_keys(given, CONFIG_KEYS)
  if unknown then return nil, unknown end
  local cfg = merge(scenario.DEFAULTS, given)
  if not cfg.name:match("^[a-z][a-z0-9-]*$") or #cfg.name > 40 then
    return errors.fail("config", "name must be lower-case letters, digits and '-', at most 40 characters")
  end
  for _, acct in ipairs({ "A", "B" }) do
    local net = cfg.network[acct]
    for _, k in ipairs({ "cidr", "subnet", "tgw_subnet" }) do
      if type(net[k]) ~= "string" or not net[k]:match(CIDR) then
        return errors.fail("config", string.format("network.%s.%s must be a CIDR block", acct, k))
      end
    end
    if type(cfg.accounts[acct]) ~= "table" then return errors.fail("config", "accounts." .. acct .. " must be a table") end
  end
  cfg.same_account = cfg.accounts.B.same_as == "A"
  if cfg.same_account and cfg.network.A.cidr == cfg.network.B.cidr then
    return errors.fail("config", "the two VPCs need different CIDR blocks")
  end
  return cfg
end

--- The database password: from the environment variable or the file the config names.
-- Never stored in the state file, never printed.
-- @tparam table cfg the config
-- @treturn string the password, or nil, err ("config": unreadable file, nothing set)
function scenario.db_password(cfg)
  local db = cfg.database
  if db.password_file then
    local f = io.open(db.password_file, "r")
    if not f then return errors.fail("config", "cannot read database.password_file " .. db.password_file) end
    local pw = f:read("l")
    f:close()
    if pw and #pw > 0 then return pw end
  end
  local pw = db.password_env and os.getenv(db.password_env)
  if pw and #pw > 0 then return pw end
  return errors.fail("config", string.format("no database password: set %s or database.password_file",
    tostring(db.password_env)))
end

-- An AZ id in the config: "az1" (the region's az1) or in full ("apne1-az1").
local function is_az_id(v) return v:match("^az%d+$") or v:match("^%l+%d+%-az%d+$") end

-- The availability zone named by a suffix ("a") or in full ("ap-northeast-1a").
local function az(cfg, suffix)
  if #suffix <= 2 then return cfg.region .. suffix end
  return suffix
end

-- CreateSubnet's zone parameter for the config's `value`: an AZ id is looked up in this account's
-- DescribeAvailabilityZones (AZ letters differ between accounts, ids do not); a name is taken as
-- it is. Returns {AvailabilityZoneId=} or {AvailabilityZone=}, or nil, err ("config": no such id).
local function subnet_zone(ctx, value, key)
  if not is_az_id(value) then return { AvailabilityZone = az(ctx.config, value) } end
  local res, err = ctx:client("ec2"):call("DescribeAvailabilityZones", {})
  if not res then return nil, err end
  local ids = {}
  for _, z in ipairs(res.AvailabilityZones or {}) do
    local id = z.ZoneId or ""
    if id == value or id:sub(-#value - 1) == "-" .. value then return { AvailabilityZoneId = id } end
    ids[#ids + 1] = id
  end
  table.sort(ids)
  return errors.fail("config", string.format("%s: no availability zone %s in %s (its AZ ids: %s)", key, value,
    ctx.config.region, table.concat(ids, ", ")))
end

-- ------------------------------------------------------------------------------------------
-- Small helpers for steps

local TAG_SCENARIO, TAG_STEP = "awsnet:scenario", "awsnet:step"

local function tags(cfg, step_id)
  return { { Key = TAG_SCENARIO, Value = cfg.name }, { Key = TAG_STEP, Value = step_id },
    { Key = "Name", Value = cfg.name .. "-" .. step_id } }
end

-- Requests and results use the model's member names (TagSpecifications, Filters, Values).
local function tag_spec(cfg, step_id, resource_type)
  return { { ResourceType = resource_type, Tags = tags(cfg, step_id) } }
end

local function tag_filters(cfg, step_id)
  return { { Name = "tag:" .. TAG_SCENARIO, Values = { cfg.name } }, { Name = "tag:" .. TAG_STEP, Values = { step_id } } }
end

-- Calls an API and returns the result (in the model's member names), or nil, err; a "not found"
-- error is turned into `nil` with no error when `missing_ok` (the resource is not there).
local function call(ctx, service, op, params, missing_ok)
  local res, err = ctx:client(service):call(op, params or {})
  if res then return res end
  if missing_ok and require("awsnet.runbook").is_gone(err) then return nil end
  return nil, err
end

-- States of a resource on its way out (not to adopt), and of one that is gone (deletion done).
local LEAVING_STATES = { deleting = true, ["shutting-down"] = true, rejecting = true }
local GONE_STATES = { deleted = true, terminated = true, failed = true, rejected = true }

local function state_of(obj) return obj.State or obj.state or "" end

-- The value of tag `key` among an EC2 object's own Tags (as Describe returns them).
local function tag_value(obj, key)
  for _, t in ipairs(obj.Tags or {}) do
    if t.Key == key then return t.Value end
  end
end

-- True when `obj` carries the tags create puts on step `step_id`'s resource. The server's tag
-- filter should already have said so; it is checked again on the object itself because an
-- emulator that ignores a filter answers with every resource, and destroy must never delete
-- (nor apply adopt) what this scenario did not make.
local function made_by(obj, cfg, step_id)
  return tag_value(obj, TAG_SCENARIO) == cfg.name and tag_value(obj, TAG_STEP) == step_id
end

--- A step for an EC2 resource that is tagged at creation (VPC, subnet, TGW, attachment, SG).
-- spec: id, account, needs, title, describe (operation), list (result key), id_field, ids_param,
-- create (operation), result (result key of create), params(ctx) -> create parameters without
-- tags, resource_type (for TagSpecifications), delete (operation), record(obj, ctx) -> extra
-- attributes, ready(obj) -> bool, settle(ctx, rec) -> true or nil, err (idempotent fix-ups),
-- given(ctx) -> id of an existing resource the config names instead (used, never changed),
-- vpc (step id of the VPC the resource is in) and tgw (step id of its TGW): when those steps'
-- records are known, a resource found by its tags must be in that VPC and on that TGW too.
local function ec2_step(spec)
  -- the first listed resource that `match` accepts and that is not gone (nor, unless
  -- `leaving_too`, on its way out): the answer is not trusted to hold only what was asked for
  local function describe(ctx, params, match, leaving_too)
    local res, err = call(ctx, "ec2", spec.describe, params, true)
    if not res then return nil, err end
    for _, obj in ipairs(res[spec.list] or {}) do
      local state = state_of(obj)
      if match(obj) and not GONE_STATES[state] and (leaving_too or not LEAVING_STATES[state]) then return obj end
    end
    return nil
  end
  local function by_id(id)
    return { [spec.ids_param] = { id } }, function(obj) return obj[spec.id_field] == id end
  end
  -- made by this step of this scenario: its own tags, and its VPC and TGW when they are known
  local function by_tags(ctx)
    local vpc = spec.vpc and ctx.out[spec.vpc]
    local tgw = spec.tgw and ctx.out[spec.tgw]
    return { Filters = tag_filters(ctx.config, spec.id) }, function(obj)
      return made_by(obj, ctx.config, spec.id) and (not (vpc and vpc.id) or obj.VpcId == vpc.id)
        and (not (tgw and tgw.id) or obj.TransitGatewayId == tgw.id)
    end
  end
  local function to_record(obj, ctx)
    local rec = spec.record and spec.record(obj, ctx) or {}
    rec.id = obj[spec.id_field]
    return rec
  end
  local step = {
    id = spec.id, account = spec.account, needs = spec.needs, title = spec.title, enabled = spec.enabled,
    calls = { "ec2:" .. spec.create },
  }
  for _, c in ipairs(spec.extra_calls or {}) do step.calls[#step.calls + 1] = c end
  function step.find(ctx, known)
    -- a resource the config names (an existing VPC or subnet) is used as it is, never deleted
    local given = spec.given and spec.given(ctx)
    if given then
      local params, match = by_id(given)
      local obj, err = describe(ctx, params, match)
      if not obj then return nil, err or errors.new("NotFound", spec.title .. " " .. given .. " does not exist") end
      local rec = to_record(obj, ctx)
      rec.external = true
      return rec
    end
    local params, match
    if known then params, match = by_id(known.id) else params, match = by_tags(ctx) end
    local obj, err = describe(ctx, params, match)
    if not obj then return nil, err end
    return to_record(obj, ctx)
  end
  function step.create(ctx)
    local params, perr = spec.params(ctx)
    if not params then return nil, perr end
    params.TagSpecifications = tag_spec(ctx.config, spec.id, spec.resource_type)
    local res, err = call(ctx, "ec2", spec.create, params)
    if not res then return nil, err end
    local obj = spec.result and res[spec.result] or res
    return to_record(obj, ctx)
  end
  function step.wait(ctx, rec)
    if spec.ready then
      local ok, err = ctx:poll(spec.title .. " " .. rec.id .. " available", function()
        local obj, derr = describe(ctx, by_id(rec.id))
        if derr then return nil, derr end
        return obj ~= nil and spec.ready(obj)
      end)
      if not ok then return nil, err end
    end
    if spec.settle and not rec.external then return spec.settle(ctx, rec) end
    return true
  end
  function step.delete(ctx, rec)
    local res, err = call(ctx, "ec2", spec.delete, { [spec.id_field] = rec.id })
    if not res then return nil, err end
    return true
  end
  if spec.wait_gone ~= false then
    function step.wait_deleted(ctx, rec)
      return ctx:poll(spec.title .. " " .. rec.id .. " deleted", function()
        local params, match = by_id(rec.id)
        local obj, err = describe(ctx, params, match, true)
        if err then return nil, err end
        return obj == nil
      end)
    end
  end
  return step
end

local function state_is(value)
  return function(obj) return obj.State == value end
end

-- ------------------------------------------------------------------------------------------
-- Steps

local function vpc_steps(acct)
  local net_key = function(ctx) return ctx.config.network[acct] end
  local s = {}
  s[#s + 1] = ec2_step{
    id = "vpc_" .. acct:lower(), account = acct, title = "VPC in " .. acct,
    given = function(ctx) return net_key(ctx).vpc_id end,
    describe = "DescribeVpcs", list = "Vpcs", id_field = "VpcId", ids_param = "VpcIds",
    create = "CreateVpc", result = "Vpc", resource_type = "vpc", delete = "DeleteVpc",
    extra_calls = { "ec2:ModifyVpcAttribute" },
    params = function(ctx) return { CidrBlock = net_key(ctx).cidr } end,
    record = function(obj) return { cidr = obj.CidrBlock } end,
    ready = state_is("available"),
    -- DNS support and DNS host names: needed for the endpoint to resolve to the private address
    settle = function(ctx, rec)
      for _, attr in ipairs({ "enableDnsSupport", "enableDnsHostnames" }) do
        local res, err = call(ctx, "ec2", "DescribeVpcAttribute", { VpcId = rec.id, Attribute = attr })
        if not res then return nil, err end
        local key = attr:sub(1, 1):upper() .. attr:sub(2)
        if not (res[key] and res[key].Value == true) then
          local ok, merr = call(ctx, "ec2", "ModifyVpcAttribute", { VpcId = rec.id, [key] = { Value = true } })
          if not ok then return nil, merr end
        end
      end
      return true
    end,
  }
  local subnets = { { "subnet", "workload subnet", "az" }, { "tgw_subnet", "TGW attachment subnet", "az" } }
  if acct == "B" then table.insert(subnets, 2, { "subnet2", "second database subnet", "az2" }) end
  for _, sub in ipairs(subnets) do
    local key, what, az_key = sub[1], sub[2], sub[3]
    s[#s + 1] = ec2_step{
      id = key .. "_" .. acct:lower(), account = acct, needs = { "vpc_" .. acct:lower() },
      title = what .. " in " .. acct, vpc = "vpc_" .. acct:lower(),
      given = function(ctx) return net_key(ctx)[key .. "_id"] end,
      describe = "DescribeSubnets", list = "Subnets", id_field = "SubnetId", ids_param = "SubnetIds",
      create = "CreateSubnet", result = "Subnet", resource_type = "subnet", delete = "DeleteSubnet",
      extra_calls = { "ec2:DescribeAvailabilityZones" },
      params = function(ctx)
        local zone, zerr = subnet_zone(ctx, net_key(ctx)[az_key], "network." .. acct .. "." .. az_key)
        if not zone then return nil, zerr end
        zone.VpcId, zone.CidrBlock = ctx.out["vpc_" .. acct:lower()].id, net_key(ctx)[key]
        return zone
      end,
      record = function(obj) return { cidr = obj.CidrBlock, az = obj.AvailabilityZone } end,
      ready = state_is("available"),
    }
  end
  return s
end

-- The main route table of a VPC (subnets created here are not associated with another).
local function main_route_table(ctx, vpc_id)
  local res, err = call(ctx, "ec2", "DescribeRouteTables", { Filters = {
    { Name = "vpc-id", Values = { vpc_id } }, { Name = "association.main", Values = { "true" } } } })
  if not res then return nil, err end
  -- the filters are checked again on each table (an emulator may ignore them): routes are added
  -- to and deleted from this VPC's main table only
  for _, rt in ipairs(res.RouteTables or {}) do
    if rt.VpcId == vpc_id then
      for _, a in ipairs(rt.Associations or {}) do
        if a.Main == true then return rt end
      end
    end
  end
  return errors.fail("NoMainRouteTable", "VPC " .. vpc_id .. " has no main route table")
end

-- A route in the main route table of `acct`'s VPC to the other VPC's CIDR through the TGW.
local function route_step(acct, other, attach_step)
  local vpc = "vpc_" .. acct:lower()
  local function find_route(ctx)
    -- no VPC or TGW known (a destroy after a crash before they were saved): no route of ours
    if not (ctx.out[vpc] and ctx.out[vpc].id and ctx.out.tgw and ctx.out.tgw.id) then return nil end
    local rt, err = main_route_table(ctx, ctx.out[vpc].id)
    if not rt then return nil, err end
    local dest = ctx.config.network[other].cidr
    for _, r in ipairs(rt.Routes or {}) do
      if r.DestinationCidrBlock == dest and r.TransitGatewayId == ctx.out.tgw.id and r.State ~= "blackhole" then
        return { id = rt.RouteTableId .. "|" .. dest, route_table = rt.RouteTableId, destination = dest }
      end
    end
    return nil, nil, rt.RouteTableId
  end
  return {
    id = "route_" .. acct:lower(), account = acct, needs = { vpc, "tgw", attach_step },
    title = string.format("route in %s to %s via the TGW", acct, other), tagged = false,
    calls = { "ec2:CreateRoute" },
    find = function(ctx) return find_route(ctx) end,
    create = function(ctx)
      local found, err, rtb = find_route(ctx)
      if found or err then return found, err end
      local dest = ctx.config.network[other].cidr
      local res
      res, err = call(ctx, "ec2", "CreateRoute", { RouteTableId = rtb, DestinationCidrBlock = dest,
        TransitGatewayId = ctx.out.tgw.id })
      if not res then return nil, err end
      return { id = rtb .. "|" .. dest, route_table = rtb, destination = dest }
    end,
    delete = function(ctx, rec)
      local res, err = call(ctx, "ec2", "DeleteRoute", { RouteTableId = rec.route_table,
        DestinationCidrBlock = rec.destination })
      if not res then return nil, err end
      return true
    end,
  }
end

local function has_rule(perms, port, cidr)
  for _, p in ipairs(perms or {}) do
    if p.IpProtocol == "tcp" and p.FromPort == port and p.ToPort == port then
      for _, r in ipairs(p.IpRanges or {}) do if r.CidrIp == cidr then return true end end
    end
  end
  return false
end

local function has_allow_all(perms)
  for _, p in ipairs(perms or {}) do
    if p.IpProtocol == "-1" then
      for _, r in ipairs(p.IpRanges or {}) do if r.CidrIp == "0.0.0.0/0" then return true end end
    end
  end
  return false
end

-- A security group whose only rule is TCP `port` inbound from / outbound to the other VPC.
local function security_group_step(acct, other, direction, what)
  local id = "sg_" .. what
  local ingress = direction == "ingress"
  local function perm(ctx)
    return { { IpProtocol = "tcp", FromPort = ctx.config.database.port, ToPort = ctx.config.database.port,
      IpRanges = { { CidrIp = ctx.config.network[other].cidr, Description = "awsnet " .. ctx.config.name } } } }
  end
  return ec2_step{
    id = id, account = acct, needs = { "vpc_" .. acct:lower() }, vpc = "vpc_" .. acct:lower(),
    title = string.format("security group for the %s (tcp %s %s)", what, ingress and "in from" or "out to", other),
    describe = "DescribeSecurityGroups", list = "SecurityGroups", id_field = "GroupId", ids_param = "GroupIds",
    create = "CreateSecurityGroup", resource_type = "security-group", delete = "DeleteSecurityGroup",
    extra_calls = { ingress and "ec2:AuthorizeSecurityGroupIngress" or "ec2:AuthorizeSecurityGroupEgress",
      not ingress and "ec2:RevokeSecurityGroupEgress" or nil },
    wait_gone = false,
    params = function(ctx)
      return { GroupName = ctx.config.name .. "-" .. what, Description = "awsnet " .. what,
        VpcId = ctx.out["vpc_" .. acct:lower()].id }
    end,
    -- the rule, and for egress no allow-all rule: added or removed only when needed
    settle = function(ctx, rec)
      local res, err = call(ctx, "ec2", "DescribeSecurityGroups", { GroupIds = { rec.id } })
      if not res then return nil, err end
      local sg = (res.SecurityGroups or {})[1] or {}
      local perms = ingress and sg.IpPermissions or sg.IpPermissionsEgress
      local port, cidr = ctx.config.database.port, ctx.config.network[other].cidr
      -- a retried call whose first answer was lost finds its work done: that is success too
      if not has_rule(perms, port, cidr) then
        local ok, aerr = call(ctx, "ec2", ingress and "AuthorizeSecurityGroupIngress" or "AuthorizeSecurityGroupEgress",
          { GroupId = rec.id, IpPermissions = perm(ctx) })
        if not ok and aerr.code ~= "InvalidPermission.Duplicate" then return nil, aerr end
      end
      if not ingress and has_allow_all(perms) then
        local _, rerr = call(ctx, "ec2", "RevokeSecurityGroupEgress", { GroupId = rec.id, IpPermissions = {
          { IpProtocol = "-1", IpRanges = { { CidrIp = "0.0.0.0/0" } } } } }, true)
        if rerr then return nil, rerr end
      end
      return true
    end,
  }
end

local function tgw_step()
  return ec2_step{
    id = "tgw", account = "A", title = "Transit Gateway in A (auto-accepts shared attachments)",
    describe = "DescribeTransitGateways", list = "TransitGateways", id_field = "TransitGatewayId",
    ids_param = "TransitGatewayIds", create = "CreateTransitGateway", result = "TransitGateway",
    resource_type = "transit-gateway", delete = "DeleteTransitGateway",
    params = function(ctx)
      return { Description = "awsnet " .. ctx.config.name, Options = { AutoAcceptSharedAttachments = "enable",
        DefaultRouteTableAssociation = "enable", DefaultRouteTablePropagation = "enable", DnsSupport = "enable" } }
    end,
    record = function(obj)
      local o = obj.Options or {}
      return { arn = obj.TransitGatewayArn, owner = obj.OwnerId, route_table = o.AssociationDefaultRouteTableId }
    end,
    ready = state_is("available"),
  }
end

local function attachment_step(acct)
  local l = acct:lower()
  return ec2_step{
    id = "tgw_attach_" .. l, account = acct, needs = { "tgw", "tgw_subnet_" .. l, acct == "B" and "ram_accept" or nil },
    title = "TGW attachment of " .. acct .. "'s VPC", vpc = "vpc_" .. l, tgw = "tgw",
    describe = "DescribeTransitGatewayVpcAttachments", list = "TransitGatewayVpcAttachments",
    id_field = "TransitGatewayAttachmentId", ids_param = "TransitGatewayAttachmentIds",
    create = "CreateTransitGatewayVpcAttachment", result = "TransitGatewayVpcAttachment",
    resource_type = "transit-gateway-attachment", delete = "DeleteTransitGatewayVpcAttachment",
    params = function(ctx)
      return { TransitGatewayId = ctx.out.tgw.id, VpcId = ctx.out["vpc_" .. l].id,
        SubnetIds = { ctx.out["tgw_subnet_" .. l].id }, Options = { DnsSupport = "enable" } }
    end,
    ready = state_is("available"),
  }
end

-- RAM: A shares the TGW with B; B accepts the invitation (none when both are in one AWS
-- Organization with sharing enabled: the share is then active at once).
local function ram_steps()
  local function share_name(ctx) return ctx.config.name .. "-tgw" end
  local function find_share(ctx, owner)
    local res, err = call(ctx, "ram", "GetResourceShares", { resourceOwner = owner, name = share_name(ctx) })
    if not res then return nil, err end
    for _, s in ipairs(res.resourceShares or {}) do
      if s.status == "ACTIVE" or s.status == "PENDING" then return s end
    end
    return nil
  end
  local share = {
    id = "ram_share", account = "A", needs = { "tgw" }, title = "RAM share of the TGW with B",
    enabled = function(cfg) return not cfg.same_account end,
    calls = { "ram:CreateResourceShare" },
    find = function(ctx)
      local s, err = find_share(ctx, "SELF")
      if not s then return nil, err end
      return { id = s.resourceShareArn }
    end,
    create = function(ctx)
      local res, err = call(ctx, "ram", "CreateResourceShare", { name = share_name(ctx),
        resourceArns = { ctx.out.tgw.arn }, principals = { ctx.config.account_ids.B },
        allowExternalPrincipals = true, tags = { { key = TAG_SCENARIO, value = ctx.config.name } } })
      if not res then return nil, err end
      return { id = res.resourceShare.resourceShareArn }
    end,
    delete = function(ctx, rec)
      local res, err = call(ctx, "ram", "DeleteResourceShare", { resourceShareArn = rec.id })
      if not res then return nil, err end
      return true
    end,
  }
  local accept = {
    id = "ram_accept", account = "B", needs = { "ram_share" }, title = "B accepts the TGW share",
    enabled = function(cfg) return not cfg.same_account end,
    calls = { "ram:GetResourceShareInvitations", "ram:AcceptResourceShareInvitation" },
    find = function(ctx)
      local s, err = find_share(ctx, "OTHER-ACCOUNTS")
      if not s or s.status ~= "ACTIVE" then return nil, err end
      return { id = s.resourceShareArn }
    end,
    create = function(ctx)
      local share_arn = ctx.out.ram_share.id
      local res, err = call(ctx, "ram", "GetResourceShareInvitations", { resourceShareArns = { share_arn } })
      if not res then return nil, err end
      for _, inv in ipairs(res.resourceShareInvitations or {}) do
        if inv.status == "PENDING" then
          local ok, aerr = call(ctx, "ram", "AcceptResourceShareInvitation",
            { resourceShareInvitationArn = inv.resourceShareInvitationArn })
          if not ok then return nil, aerr end
        end
      end
      return { id = share_arn }
    end,
    wait = function(ctx, rec)
      return ctx:poll("the TGW to be visible in B", function()
        local res, err = call(ctx, "ec2", "DescribeTransitGateways", { TransitGatewayIds = { ctx.out.tgw.id } }, true)
        if err then return nil, err end
        return res ~= nil and #(res.TransitGateways or {}) > 0 and rec.id ~= nil
      end)
    end,
  }
  return { share, accept }
end

local function db_steps()
  local subnet_group = {
    id = "db_subnet_group", account = "B", needs = { "subnet_b", "subnet2_b" }, title = "RDS subnet group in B",
    calls = { "rds:CreateDBSubnetGroup" },
    find = function(ctx)
      local res, err = call(ctx, "rds", "DescribeDBSubnetGroups", { DBSubnetGroupName = ctx.config.name }, true)
      local g = res and (res.DBSubnetGroups or {})[1]
      if not g then return nil, err end
      return { id = g.DBSubnetGroupName }
    end,
    create = function(ctx)
      local res, err = call(ctx, "rds", "CreateDBSubnetGroup", { DBSubnetGroupName = ctx.config.name,
        DBSubnetGroupDescription = "awsnet " .. ctx.config.name,
        SubnetIds = { ctx.out.subnet_b.id, ctx.out.subnet2_b.id }, Tags = tags(ctx.config, "db_subnet_group") })
      if not res then return nil, err end
      return { id = ctx.config.name }
    end,
    delete = function(ctx, rec)
      local res, err = call(ctx, "rds", "DeleteDBSubnetGroup", { DBSubnetGroupName = rec.id })
      if not res then return nil, err end
      return true
    end,
  }
  -- the instance, or nil when there is none or it is going (`going_too`: also while deleting)
  local function describe_db(ctx, id, going_too)
    local res, err = call(ctx, "rds", "DescribeDBInstances", { DBInstanceIdentifier = id }, true)
    if not res then return nil, err end
    local db = (res.DBInstances or {})[1]
    local status = db and db.DBInstanceStatus
    if status == "deleted" or (status == "deleting" and not going_too) then return nil end
    return db
  end
  local function record(db)
    local ep = db.Endpoint or {}
    return { id = db.DBInstanceIdentifier, endpoint = ep.Address, port = ep.Port, status = db.DBInstanceStatus,
      az = db.AvailabilityZone }
  end
  local instance = {
    id = "db", account = "B", needs = { "db_subnet_group", "sg_database" },
    title = "RDS MySQL instance in B (not publicly accessible)",
    calls = { "rds:CreateDBInstance" },
    find = function(ctx)
      local db, err = describe_db(ctx, ctx.config.name)
      if not db then return nil, err end
      return record(db)
    end,
    create = function(ctx)
      local cfg = ctx.config
      local password, perr = scenario.db_password(cfg)
      if not password then return nil, perr end
      local res, err = call(ctx, "rds", "CreateDBInstance", {
        DBInstanceIdentifier = cfg.name, DBInstanceClass = cfg.database.instance_class, Engine = cfg.database.engine,
        AllocatedStorage = cfg.database.storage_gb, DBName = cfg.database.name, MasterUsername = cfg.database.username,
        MasterUserPassword = password, DBSubnetGroupName = ctx.out.db_subnet_group.id, Port = cfg.database.port,
        VpcSecurityGroupIds = { ctx.out.sg_database.id }, PubliclyAccessible = false, MultiAZ = false,
        -- the zone of B's first database subnet, by the name B knows it by
        AvailabilityZone = ctx.out.subnet_b.az or az(cfg, cfg.network.B.az), BackupRetentionPeriod = 0, Tags = tags(cfg, "db") })
      if not res then return nil, err end
      return record(res.DBInstance or { DBInstanceIdentifier = cfg.name })
    end,
    wait = function(ctx, rec)
      local ok, err = ctx:poll("RDS instance " .. rec.id .. " available", function()
        local db, derr = describe_db(ctx, rec.id)
        if derr then return nil, derr end
        if db and db.DBInstanceStatus == "available" then
          for k, v in pairs(record(db)) do rec[k] = v end
          return true
        end
        return false
      end)
      if not ok then return nil, err end
      return true
    end,
    delete = function(ctx, rec)
      local res, err = call(ctx, "rds", "DeleteDBInstance", { DBInstanceIdentifier = rec.id, SkipFinalSnapshot = true,
        DeleteAutomatedBackups = true })
      if not res then return nil, err end
      return true
    end,
    wait_deleted = function(ctx, rec)
      return ctx:poll("RDS instance " .. rec.id .. " deleted", function()
        local db, err = describe_db(ctx, rec.id, true)
        if err then return nil, err end
        return db == nil
      end)
    end,
  }
  return { subnet_group, instance }
end

local LAMBDA_TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":' ..
  '{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
local VPC_ACCESS_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"

local function lambda_steps()
  local role = {
    id = "iam_role", account = "A", title = "IAM role for the Lambda (VPC access)",
    calls = { "iam:CreateRole", "iam:AttachRolePolicy" },
    find = function(ctx)
      local res, err = call(ctx, "iam", "GetRole", { RoleName = ctx.config.name .. "-lambda" }, true)
      if not res then return nil, err end
      return { id = res.Role.RoleName, arn = res.Role.Arn }
    end,
    create = function(ctx)
      local res, err = call(ctx, "iam", "CreateRole", { RoleName = ctx.config.name .. "-lambda",
        AssumeRolePolicyDocument = LAMBDA_TRUST, Tags = tags(ctx.config, "iam_role") })
      if not res then return nil, err end
      return { id = res.Role.RoleName, arn = res.Role.Arn }
    end,
    wait = function(ctx, rec)
      local res, err = call(ctx, "iam", "ListAttachedRolePolicies", { RoleName = rec.id })
      if not res then return nil, err end
      for _, p in ipairs(res.AttachedPolicies or {}) do if p.PolicyArn == VPC_ACCESS_POLICY then return true end end
      res, err = call(ctx, "iam", "AttachRolePolicy", { RoleName = rec.id, PolicyArn = VPC_ACCESS_POLICY })
      if not res then return nil, err end
      return true
    end,
    delete = function(ctx, rec)
      local _, err = call(ctx, "iam", "DetachRolePolicy", { RoleName = rec.id, PolicyArn = VPC_ACCESS_POLICY }, true)
      if err then return nil, err end
      local res
      res, err = call(ctx, "iam", "DeleteRole", { RoleName = rec.id })
      if not res then return nil, err end
      return true
    end,
  }
  local function fn_name(ctx) return ctx.config.name .. "-writer" end
  local fn = {
    id = "lambda", account = "A", needs = { "iam_role", "subnet_a", "sg_lambda", "db", "route_a", "route_b" },
    title = "Lambda in A's VPC with RDS_* settings",
    calls = { "lambda:CreateFunction" },
    find = function(ctx)
      local res, err = call(ctx, "lambda", "GetFunction", { FunctionName = fn_name(ctx) }, true)
      if not res then return nil, err end
      return { id = res.Configuration.FunctionName, arn = res.Configuration.FunctionArn }
    end,
    create = function(ctx)
      local cfg = ctx.config
      local password, perr = scenario.db_password(cfg)
      if not password then return nil, perr end
      local zip, zerr = lambda_zip.build({ pymysql = cfg.lambda.pymysql })
      if not zip then return nil, zerr end
      local params = { FunctionName = fn_name(ctx), Runtime = cfg.lambda.runtime, Role = ctx.out.iam_role.arn,
        Handler = lambda_zip.HANDLER, Code = { ZipFile = zip }, Timeout = cfg.lambda.timeout,
        VpcConfig = { SubnetIds = { ctx.out.subnet_a.id }, SecurityGroupIds = { ctx.out.sg_lambda.id } },
        Environment = { Variables = { RDS_HOST = ctx.out.db.endpoint, RDS_USERNAME = cfg.database.username,
          RDS_PASSWORD = password, RDS_DATABASE = cfg.database.name, RDS_PORT = tostring(cfg.database.port),
          RDS_EXTRA_COLUMNS = cfg.extra_columns and "1" or nil } },
        Tags = { [TAG_SCENARIO] = cfg.name, [TAG_STEP] = "lambda" } }
      local res, err
      -- a new IAM role takes a few seconds before Lambda may assume it
      local ok, perr2 = ctx:poll("the IAM role to be usable by Lambda", function()
        res, err = call(ctx, "lambda", "CreateFunction", params)
        if res then return true end
        if err.code == "InvalidParameterValueException" and tostring(err.message):find("assume", 1, true) then
          return false
        end
        return nil, err
      end, { timeout = 120 })
      if not ok then return nil, perr2 end
      return { id = res.FunctionName, arn = res.FunctionArn }
    end,
    wait = function(ctx, rec)
      return ctx:poll("Lambda " .. rec.id .. " active", function()
        local res, err = call(ctx, "lambda", "GetFunction", { FunctionName = rec.id })
        if not res then return nil, err end
        local c = res.Configuration or {}
        if c.State == "Failed" then return errors.fail("LambdaFailed", tostring(c.StateReason)) end
        return c.State == nil or c.State == "Active"
      end)
    end,
    delete = function(ctx, rec)
      local res, err = call(ctx, "lambda", "DeleteFunction", { FunctionName = rec.id })
      if not res then return nil, err end
      return true
    end,
    -- the Lambda's network interfaces linger after the function is gone; its security group
    -- and subnet can be deleted only once they are released
    wait_deleted = function(ctx)
      local sg = ctx.out.sg_lambda and ctx.out.sg_lambda.id
      if not sg then return true end
      return ctx:poll("Lambda network interfaces released", function()
        local res, err = call(ctx, "ec2", "DescribeNetworkInterfaces", { Filters = {
          { Name = "group-id", Values = { sg } } } })
        if not res then return nil, err end
        -- only the interfaces in the group count (an emulator may ignore the filter)
        for _, eni in ipairs(res.NetworkInterfaces or {}) do
          for _, g in ipairs(eni.Groups or {}) do
            if g.GroupId == sg then return false end
          end
        end
        return true
      end)
    end,
  }
  return { role, fn }
end

--- The steps of the scenario, in dependency order.
-- @treturn table steps for awsnet.runbook.new
function scenario.steps()
  local steps = {}
  local function add(list) for _, s in ipairs(list) do steps[#steps + 1] = s end end
  add(vpc_steps("A"))
  add({ tgw_step(), attachment_step("A") })
  add(ram_steps())
  add(vpc_steps("B"))
  add({ attachment_step("B"), route_step("A", "B", "tgw_attach_a"), route_step("B", "A", "tgw_attach_b") })
  add({ security_group_step("B", "A", "ingress", "database") })
  add(db_steps())
  add({ security_group_step("A", "B", "egress", "lambda") })
  add(lambda_steps())
  return steps
end

-- ------------------------------------------------------------------------------------------
-- Clients and the runbook

-- Credentials of a role assumed with `source` (an STS client of account A): fetched on first
-- use, renewed after 50 minutes (they are asked for one hour).
local function assumed_role(source, role_arn, session_name)
  local cached, fetched
  return { get = function()
    if cached and os.time() - fetched < 3000 then return cached end
    local res, err = source:call("AssumeRole", { RoleArn = role_arn, RoleSessionName = session_name, DurationSeconds = 3600 })
    if not res then return nil, err end
    local c = res.Credentials or {}
    cached = { access_key_id = c.AccessKeyId, secret_access_key = c.SecretAccessKey, session_token = c.SessionToken }
    fetched = os.time()
    return cached
  end }
end

--- A function (account, service) -> client for the config's accounts, caching clients.
-- `aws` is the awsnet.aws module. An account is {profile=} or {credentials=} (+ endpoint=), or
-- {role_arn=, source="A"} (AssumeRole with the source account's credentials), or {same_as="A"}.
-- @tparam table cfg the config
-- @tparam table aws the awsnet.aws module (or a stand-in)
-- @treturn function (account, service) -> client
function scenario.client_factory(cfg, aws)
  local cache = {}
  local function client(account, service)
    local a = cfg.accounts[account]
    if a.same_as then return client(a.same_as, service) end
    local key = account .. "/" .. service
    if not cache[key] then
      local creds = a.credentials
      if a.role_arn then
        creds = cache[account .. "/role"] or assumed_role(client(a.source or "A", "sts"), a.role_arn, "awsnet-" .. cfg.name)
        cache[account .. "/role"] = creds
      end
      cache[key] = assert(aws.client(service, { region = cfg.region, profile = a.profile, credentials = creds,
        endpoint = a.endpoint or (a.source and cfg.accounts[a.source].endpoint), max_attempts = cfg.max_attempts }))
    end
    return cache[key]
  end
  return client
end

--- The account ids of A and B (STS GetCallerIdentity); also proves the credentials work.
-- @tparam table cfg the config
-- @tparam function client (account, service) -> client
-- @treturn table {A = id, B = id}, or nil, err (the STS error, op naming the account; "config"
-- when A and B are one account without accounts.B.same_as)
function scenario.account_ids(cfg, client)
  local ids = {}
  for _, acct in ipairs({ "A", "B" }) do
    local res, err = client(acct, "sts"):call("GetCallerIdentity", {})
    if not res then
      err.op = "account " .. acct .. ": sts:GetCallerIdentity"
      return nil, err
    end
    ids[acct] = res.Account
  end
  if not cfg.same_account and ids.A == ids.B then
    return errors.fail("config", "accounts A and B are the same account " .. ids.A .. ": set accounts.B = {same_as = \"A\"}")
  end
  return ids
end

--- The runbook of the scenario. opts: on_event, aws (module, default awsnet.aws), client.
-- Fills cfg.account_ids (STS) unless the config has them.
-- @tparam table cfg the config
-- @tparam[opt] table opts {on_event, aws, client}
-- @return the runbook, or nil, err (as `account_ids`)
function scenario.runbook(cfg, opts)
  opts = opts or {}
  local client = opts.client or scenario.client_factory(cfg, opts.aws or require("awsnet.aws"))
  if not cfg.account_ids then
    local ids, err = scenario.account_ids(cfg, client)
    if not ids then return nil, err end
    cfg.account_ids = ids
  end
  return require("awsnet.runbook").new{
    name = cfg.name, steps = scenario.steps(), state_file = cfg.state_file, client = client, config = cfg,
    accounts = cfg.account_ids, on_event = opts.on_event,
  }
end

return scenario
