--- RDS in the sandbox: DB subnet groups and DB instances (mysql, mariadb). Each instance gets an
-- ENI in one of its subnets, an endpoint name served by the sandbox's dnsmasq, and a real MariaDB
-- server on loopback with the master user and password given.
-- @module awsnet.sandbox.rds
local errors = require "awsnet.errors"
local wire = require "awsnet.sandbox.wire"
local ec2 = require "awsnet.sandbox.ec2"

local rds = { actions = {} }

--- The handler of each API action: `actions.<Action>(ctx, params)` -> the result table, or nil,
-- err with AWS's error code and HTTP status. `ctx` = {sandbox, state, account, arn, user_id,
-- region, request_id}.
-- @table actions
local A = rds.actions
local array = wire.array

local function fail(code, message, status) return errors.fail(code, message, { status = status or 400 }) end

local function need(p, ...) return wire.need(p, "InvalidParameterValue", ...) end

-- ---------------------------------------------------------------------------------------------
-- Subnet groups

local function group_key(account, name) return account .. ":" .. name:lower() end

local function render_group(g, ctx)
  local subnets = {}
  for i, sid in ipairs(g.subnets) do
    local s = ctx.state:get("subnet", sid)
    subnets[i] = { SubnetIdentifier = sid, SubnetStatus = "Active",
                   SubnetAvailabilityZone = { Name = s and ctx.state:az_name(g.owner, s.az_id) } }
  end
  return {
    DBSubnetGroupName = g.name, DBSubnetGroupDescription = g.description, VpcId = g.vpc, SubnetGroupStatus = "Complete",
    Subnets = array(subnets), DBSubnetGroupArn = "arn:aws:rds:" .. ctx.region .. ":" .. g.owner .. ":subgrp:" .. g.name,
  }
end

local function find_group(ctx, name)
  local g = name and ctx.state:get("db_subnet_group", group_key(ctx.account, name))
  if not g then return fail("DBSubnetGroupNotFoundFault", "DBSubnetGroup " .. tostring(name) .. " not found.", 404) end
  return g
end

function A.CreateDBSubnetGroup(ctx, p)
  local ok, err = need(p, "DBSubnetGroupName", "DBSubnetGroupDescription")
  if not ok then return nil, err end
  if ctx.state:get("db_subnet_group", group_key(ctx.account, p.DBSubnetGroupName)) then
    return fail("DBSubnetGroupAlreadyExists", "The DB subnet group '" .. p.DBSubnetGroupName .. "' already exists.")
  end
  local ids = (p.SubnetIds or {})
  if #ids == 0 then return fail("InvalidParameterValue", "The request must contain the parameter SubnetIds") end
  local vpc, zones, nzones = nil, {}, 0
  for _, sid in ipairs(ids) do
    local s, serr = ec2.lookup(ctx, "subnet", sid, "InvalidSubnet")
    if not s then return nil, serr end
    if vpc and s.vpc ~= vpc then return fail("InvalidSubnet", "Subnets must all be in the same VPC") end
    vpc = s.vpc
    if not zones[s.az_id] then zones[s.az_id] = true; nzones = nzones + 1 end
  end
  if nzones < 2 then
    return fail("DBSubnetGroupDoesNotCoverEnoughAZs",
      "The DB subnet group doesn't meet Availability Zone (AZ) coverage requirement. Current AZ coverage: " ..
      next(zones) .. ". Add subnets to cover at least 2 AZs.")
  end
  local g = ctx.state:put("db_subnet_group", {
    id = group_key(ctx.account, p.DBSubnetGroupName), owner = ctx.account, name = p.DBSubnetGroupName:lower(),
    description = p.DBSubnetGroupDescription, vpc = vpc, subnets = ids,
  })
  return { DBSubnetGroup = render_group(g, ctx) }
end

function A.DescribeDBSubnetGroups(ctx, p)
  local groups
  if p.DBSubnetGroupName then
    local g, err = find_group(ctx, p.DBSubnetGroupName)
    if not g then return nil, err end
    groups = { g }
  else
    groups = ctx.state:list("db_subnet_group", function(g) return g.owner == ctx.account end)
  end
  local out = {}
  for i, g in ipairs(groups) do out[i] = render_group(g, ctx) end
  return { DBSubnetGroups = array(out) }
end

function A.DeleteDBSubnetGroup(ctx, p)
  local g, err = find_group(ctx, p.DBSubnetGroupName)
  if not g then return nil, err end
  for _, inst in ipairs(ctx.state:list("db_instance", function(i) return i.owner == ctx.account end)) do
    if inst.subnet_group == g.id and ctx.state:settle(inst) ~= "deleted" then
      return fail("InvalidDBSubnetGroupStateFault", "Cannot delete the subnet group '" .. g.name ..
        "' because at least one database instance: " .. inst.name .. " is still using it.")
    end
  end
  ctx.state:remove("db_subnet_group", g.id)
  return {}
end

-- ---------------------------------------------------------------------------------------------
-- Endpoint DNS: a dnsmasq the sandbox starts on first use, answering for *.rds.amazonaws.com

--- The address `name` resolves to for a client in `from_vpc` (nil: outside any VPC), or nil.
-- Publicly accessible instances resolve to their public address outside their own VPC.
-- @param state the sandbox state
-- @tparam string name the endpoint name
-- @tparam ?string from_vpc the client's VPC id
-- @treturn ?string the address
-- @treturn ?table the instance
function rds.resolve(state, name, from_vpc)
  for _, inst in ipairs(state:list("db_instance")) do
    if inst.address == name and inst.eni then
      local eni = state:get("eni", inst.eni)
      if not eni then return nil end
      if inst.public and from_vpc ~= inst.vpc then return eni.public_ip, inst end
      return eni.ip, inst
    end
  end
end

-- Every region's endpoint names (<id>.<label>.<region>.rds.amazonaws.com).
local function dns_records(sb)
  local records = {}
  for _, region in ipairs(sb.state:regions()) do
    local st = sb.state:in_region(region)
    for _, inst in ipairs(st:list("db_instance")) do
      local address = inst.address and rds.resolve(st, inst.address, nil)
      if address then records[#records + 1] = { type = "A", name = inst.address, address = address, ttl = 5 } end
    end
  end
  return records
end

--- Brings the sandbox's dnsmasq in line with the instances; starts it on first use (or when
-- `start` is true).
-- @param sb the sandbox
-- @tparam[opt] boolean start start dnsmasq even with no instance yet
-- @return true, or nil, err (dnsmasq could not start or answer)
function rds.sync_dns(sb, start)
  local records = dns_records(sb)
  if not sb.dns then
    if #records == 0 and not start then return true end
    local dnsmasq = require "awsnet.svc.dnsmasq"
    local server, err = dnsmasq.start { domains = { "rds.amazonaws.com" }, records = records }
    if not server then return nil, err end
    sb.dns = server
    return true
  end
  local ok, err = sb.dns:set_records(records)
  if not ok then return nil, err end
  -- dnsmasq restarts to re-read its records: answer requests only once it answers again
  local dns = require "awsnet.dns"
  return require("awsnet.svc.process").wait_until(function()
    local _, derr = dns.resolve("probe.rds.amazonaws.com", { server = sb.dns.host, port = sb.dns.port, timeout = 0.2 })
    return not derr or derr.code ~= "unreachable"
  end, 10, "the sandbox's dnsmasq")
end

-- ---------------------------------------------------------------------------------------------
-- Instances

local ENGINES = { mysql = "8.0.35", mariadb = "10.11.6" }

-- MySQL's reserved words (8.0) and RDS's own user: neither a master user name nor a database name.
local RESERVED = {}
for w in ([[accessible add all alter analyze and as asc asensitive before between bigint binary blob both by call
  cascade case change char character check collate column condition constraint continue convert create cross cube
  cume_dist current_date current_time current_timestamp current_user cursor database databases day_hour
  day_microsecond day_minute day_second dec decimal declare default delayed delete dense_rank desc describe
  deterministic distinct distinctrow div double drop dual each else elseif empty enclosed escaped except exists exit
  explain false fetch first_value float float4 float8 for force foreign from fulltext function generated get grant
  group grouping groups having high_priority hour_microsecond hour_minute hour_second if ignore in index infile inner
  inout insensitive insert int int1 int2 int3 int4 int8 integer intersect interval into io_after_gtids
  io_before_gtids is iterate join json_table key keys kill lag last_value lateral lead leading leave left like limit
  linear lines load localtime localtimestamp lock long longblob longtext loop low_priority master_bind
  master_ssl_verify_server_cert match maxvalue mediumblob mediumint mediumtext middleint minute_microsecond
  minute_second mod modifies natural not no_write_to_binlog nth_value ntile null numeric of on optimize
  optimizer_costs option optionally or order out outer outfile over partition percent_rank precision primary
  procedure purge range rank read reads read_write real recursive references regexp release rename repeat replace
  require resignal restrict return revoke right rlike row row_number rows schema schemas second_microsecond select
  sensitive separator set show signal smallint spatial specific sql sqlexception sqlstate sqlwarning sql_big_result
  sql_calc_found_rows sql_small_result ssl starting stored straight_join system table terminated then tinyblob
  tinyint tinytext to trailing trigger true undo union unique unlock unsigned update usage use using utc_date
  utc_time utc_timestamp values varbinary varchar varcharacter varying virtual when where while window with write
  xor year_month zerofill rdsadmin]]):gmatch("%S+") do RESERVED[w] = true end

-- nil, or the error (a value) for a name outside RDS's rules for MySQL and MariaDB: 1 to `max` letters,
-- digits or underscores, a letter first, not a reserved word.
local function check_name(param, value, max)
  if type(value) ~= "string" or #value < 1 or #value > max or not value:match("^[A-Za-z][A-Za-z0-9_]*$")
     or RESERVED[value:lower()] then
    return select(2, fail("InvalidParameterValue", string.format("The parameter %s is not a valid identifier. It must be " ..
      "1 to %d letters, digits or underscores, begin with a letter and not be a reserved word.", param, max)))
  end
end

local function render_instance(inst, ctx)
  local sgs = {}
  for i, g in ipairs(inst.groups) do sgs[i] = { VpcSecurityGroupId = g, Status = "active" } end
  local g = ctx.state:get("db_subnet_group", inst.subnet_group)
  local status = ctx.state:settle(inst)
  return {
    DBInstanceIdentifier = inst.name, DBInstanceClass = inst.class, Engine = inst.engine, EngineVersion = inst.engine_version,
    DBInstanceStatus = status, MasterUsername = inst.master_user, DBName = inst.db_name, AllocatedStorage = inst.storage,
    Endpoint = status ~= "creating" and { Address = inst.address, Port = inst.port, HostedZoneId = "Z2R2ITUGPM61AM" } or nil,
    VpcSecurityGroups = array(sgs), DBSubnetGroup = g and render_group(g, ctx),
    PubliclyAccessible = inst.public, AvailabilityZone = inst.az, MultiAZ = false, StorageEncrypted = false,
    DBInstanceArn = "arn:aws:rds:" .. ctx.region .. ":" .. inst.owner .. ":db:" .. inst.name, DbiResourceId = inst.resource_id,
    IAMDatabaseAuthenticationEnabled = false, DeletionProtection = false, InstanceCreateTime = wire.timestamp(inst.created),
  }
end

local function find_instance(ctx, name)
  local inst = name and ctx.state:get("db_instance", ctx.account .. ":" .. name:lower())
  if not inst or ctx.state:settle(inst) == "deleted" then
    return fail("DBInstanceNotFound", "DBInstance " .. tostring(name) .. " not found.", 404)
  end
  return inst
end

-- The account's endpoint label: like AWS, one random label per account and region.
local function account_label(ctx)
  local acct = ctx.state:account(ctx.account)
  acct.rds_labels = acct.rds_labels or {}
  local label = acct.rds_labels[ctx.region]
  if not label then
    -- a world saved before labels were per region kept its one label for its region
    label = (acct.rds_label and ctx.region == ctx.state.data.region) and acct.rds_label
      or ctx.state:token(12, "abcdefghijklmnopqrstuvwxyz0123456789")
    acct.rds_labels[ctx.region] = label
  end
  return label
end

--- Starts the MariaDB server behind `inst` when it is not running (first use, or after a restart).
-- @param sb the sandbox
-- @tparam table inst the instance object
-- @return the awsnet.svc.mariadb_server server, or nil, err
function rds.backing(sb, inst)
  sb.databases = sb.databases or {}
  -- the same identifier may name an instance in each region: the endpoint name tells them apart
  local key = inst.address or inst.id
  local srv = sb.databases[key]
  if srv then return srv end
  local mariadb_server = require "awsnet.svc.mariadb_server"
  local err
  local database = inst.db_name or "mysql_app"
  srv = sb.warm_databases and table.remove(sb.warm_databases)
  if srv then
    -- a server started beforehand: the instance's database and master user made in it
    local ok, serr = srv:sql(string.format("CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8mb4; " ..
      "CREATE USER %s@'%%' IDENTIFIED BY %s; GRANT ALL ON %s.* TO %s@'%%'; FLUSH PRIVILEGES;",
      mariadb_server.sql_ident(database), mariadb_server.sql_string(inst.master_user),
      mariadb_server.sql_string(inst.master_password), mariadb_server.sql_ident(database),
      mariadb_server.sql_string(inst.master_user)))
    if not ok then srv:stop(); return nil, serr end
    srv.database, srv.user, srv.password = database, inst.master_user, inst.master_password
  else
    srv, err = mariadb_server.start { database = database, user = inst.master_user,
                                      password = inst.master_password, tls = true }
    if not srv then return nil, err end
  end
  -- the RDS master user may create databases and users, not only use one
  srv:sql(string.format("GRANT ALL ON *.* TO %s@'%%' WITH GRANT OPTION; FLUSH PRIVILEGES;",
    mariadb_server.sql_string(inst.master_user)))
  sb.databases[key] = srv
  -- where the data lives, for whoever checks it from outside (the log has no password)
  sb:log("RDS %s (%s) is backed by MariaDB on %s:%d", inst.name, inst.owner, srv.host, srv.port)
  return srv
end

function A.CreateDBInstance(ctx, p)
  local ok, err = need(p, "DBInstanceIdentifier", "DBInstanceClass", "Engine")
  if not ok then return nil, err end
  local name = p.DBInstanceIdentifier:lower()
  if not name:match("^[a-z][a-z0-9%-]*$") or #name > 63 or name:find("%-%-") or name:find("%-$") then
    return fail("InvalidParameterValue", "The parameter DBInstanceIdentifier is not a valid identifier. " ..
      "Identifiers must begin with a letter; must contain only ASCII letters, digits, and hyphens; " ..
      "and must not end with a hyphen or contain two consecutive hyphens.")
  end
  if not ENGINES[p.Engine] then return fail("InvalidParameterValue", "Invalid DB engine: " .. p.Engine) end
  if not p.MasterUsername or not p.MasterUserPassword then
    return fail("InvalidParameterValue", "The parameter MasterUsername and MasterUserPassword must be provided.")
  end
  -- these reach the database's SQL (as quoted identifiers): AWS's own rules first
  err = check_name("MasterUsername", p.MasterUsername, 16) or (p.DBName and check_name("DBName", p.DBName, 64))
  if err then return nil, err end
  if #p.MasterUserPassword < 8 or p.MasterUserPassword:find("[/\"@ ]") then
    return fail("InvalidParameterValue", "The parameter MasterUserPassword is not a valid password. " ..
      "Only printable ASCII characters besides '/', '@', '\"', ' ' may be used.")
  end
  local existing = ctx.state:get("db_instance", ctx.account .. ":" .. name)
  if existing and ctx.state:settle(existing) ~= "deleted" then
    return fail("DBInstanceAlreadyExists", "DB instance already exists")
  end
  local group
  group, err = find_group(ctx, p.DBSubnetGroupName or "default")
  if not group then return nil, err end
  local groups = (p.VpcSecurityGroupIds or {})
  for _, gid in ipairs(groups) do
    local sg, serr = ec2.lookup(ctx, "sg", gid, "InvalidGroup.NotFound")
    if not sg then return nil, serr end
    if sg.vpc ~= group.vpc then
      return fail("InvalidVPCNetworkStateFault", "The DB instance and EC2 security group are in different VPCs.")
    end
  end
  if #groups == 0 then groups = { ctx.state:get("vpc", group.vpc).default_sg } end
  local subnet = ctx.state:get("subnet", group.subnets[1])
  local public = p.PubliclyAccessible == true
  local eni
  eni, err = ec2.create_eni(ctx, subnet, { groups = groups, interface_type = "interface", requester_managed = true,
    requester_id = "amazon-rds", description = "RDSNetworkInterface",
    public_ip = public and string.format("54.%d.%d.%d", ctx.state:random32() % 200 + 20, ctx.state:random32() % 256,
      ctx.state:random32() % 254 + 1) or nil })
  if not eni then return nil, err end
  local inst = ctx.state:put("db_instance", {
    id = ctx.account .. ":" .. name, owner = ctx.account, name = name, class = p.DBInstanceClass, engine = p.Engine,
    engine_version = p.EngineVersion or ENGINES[p.Engine], master_user = p.MasterUsername,
    master_password = p.MasterUserPassword, db_name = p.DBName, storage = math.tointeger(tonumber(p.AllocatedStorage or 20)),
    subnet_group = group.id, groups = groups, public = public, vpc = group.vpc, eni = eni.id,
    az = ctx.state:az_name(ctx.account, subnet.az_id), port = math.tointeger(tonumber(p.Port or 3306)),
    address = string.format("%s.%s.%s.rds.amazonaws.com", name, account_label(ctx), ctx.region),
    resource_id = "db-" .. ctx.state:token(26), created = os.time(),
  })
  ctx.state:transition(inst, "creating", "available")
  local srv
  srv, err = rds.backing(ctx.sandbox, inst)
  if srv then err = select(2, rds.sync_dns(ctx.sandbox)) end
  if not srv or err then
    ec2.delete_eni(ctx, eni.id)
    ctx.state:remove("db_instance", inst.id)
    -- the reason may quote the SQL that holds the password: the log has it, without the password
    local why = tostring(err and err.message or err)
    local at = why:find(inst.master_password, 1, true)
    while at do
      why = why:sub(1, at - 1) .. "***" .. why:sub(at + #inst.master_password)
      at = why:find(inst.master_password, at + 3, true)
    end
    ctx.sandbox:log("RDS %s: the database did not start: %s", inst.name, why)
    return fail("InternalFailure", "the sandbox could not start the database (its log says why)", 500)
  end
  local out = render_instance(inst, ctx)
  out.DBInstanceStatus, out.Endpoint = "creating", nil
  return { DBInstance = out }
end

function A.DescribeDBInstances(ctx, p)
  local list
  if p.DBInstanceIdentifier then
    local inst, err = find_instance(ctx, p.DBInstanceIdentifier)
    if not inst then return nil, err end
    list = { inst }
  else
    list = ctx.state:list("db_instance", function(i) return i.owner == ctx.account and ctx.state:settle(i) ~= "deleted" end)
  end
  local out = {}
  for i, inst in ipairs(list) do out[i] = render_instance(inst, ctx) end
  return { DBInstances = array(out) }
end

function A.DeleteDBInstance(ctx, p)
  local inst, err = find_instance(ctx, p.DBInstanceIdentifier)
  if not inst then return nil, err end
  if p.SkipFinalSnapshot ~= true and not p.FinalDBSnapshotIdentifier then
    return fail("InvalidParameterCombination",
      "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.")
  end
  if inst.state == "deleting" then
    return fail("InvalidDBInstanceState", "Instance " .. inst.name .. " is already being deleted.")
  end
  local out = render_instance(inst, ctx)
  ctx.state:transition(inst, "deleting", "deleted")
  out.DBInstanceStatus = "deleting"
  ec2.delete_eni(ctx, inst.eni)
  inst.eni = nil
  local key = inst.address or inst.id
  local srv = ctx.sandbox.databases and ctx.sandbox.databases[key]
  if srv then
    ctx.sandbox.databases[key] = nil
    if not rds.recycle(ctx.sandbox, srv) then srv:stop() end
  end
  rds.sync_dns(ctx.sandbox)
  return { DBInstance = out }
end

-- Statements that print the statements dropping every database and user an instance made.
local RESET_SQL = "SELECT CONCAT('DROP DATABASE `', REPLACE(schema_name, '`', '``'), '`;') FROM " ..
  "information_schema.schemata WHERE schema_name NOT IN ('mysql', 'information_schema', 'performance_schema', " ..
  "'sys'); SELECT CONCAT('DROP USER ', QUOTE(user), '@', QUOTE(host), ';') FROM mysql.user WHERE user NOT IN " ..
  "('root', 'mariadb.sys', 'mysql', '');"

--- Starts `n` MariaDB servers ahead of use (sandbox.start's warm_databases): CreateDBInstance
-- takes one instead of starting a server while the sandbox waits (the seconds mariadb-install-db
-- takes, during which the sandbox answers no one; AWS answers CreateDBInstance at once), and
-- DeleteDBInstance gives it back emptied.
-- @param sb the sandbox
-- @tparam integer n how many
-- @return true, or nil, err (a server did not start)
function rds.warm(sb, n)
  sb.warm_databases, sb.warm_target = sb.warm_databases or {}, n
  local mariadb_server = require "awsnet.svc.mariadb_server"
  while #sb.warm_databases < n do
    local srv, err = mariadb_server.start { database = "awsnet_warm", user = "awsnet_warm", tls = true }
    if not srv then return nil, err end
    if not rds.recycle(sb, srv) then srv:stop(); return errors.fail("start", "a warm database could not be emptied") end
  end
  return true
end

--- Empties a server (every database and user but the system's) and keeps it for the next
-- instance, while the sandbox keeps fewer than warm_databases ready; false when it does not.
-- @param sb the sandbox
-- @param srv the awsnet.svc.mariadb_server server
-- @treturn boolean
function rds.recycle(sb, srv)
  if #(sb.warm_databases or {}) >= (sb.warm_target or 0) then return false end
  local drops = srv:sql(RESET_SQL)
  if not drops or (drops:match("%S") and not srv:sql(drops)) then return false end
  srv.database, srv.user, srv.password = nil, nil, nil
  table.insert(sb.warm_databases, srv)
  return true
end

--- An instance as DescribeDBInstances shows it.
-- @function render
-- @tparam table inst the instance object
-- @tparam table ctx the request context
-- @treturn table the DBInstance shape
rds.render = render_instance

--- Stops the sandbox's databases and DNS server.
-- @param sb the sandbox
function rds.shutdown(sb)
  for id, srv in pairs(sb.databases or {}) do srv:stop(); sb.databases[id] = nil end
  for _, srv in ipairs(sb.warm_databases or {}) do srv:stop() end
  sb.warm_databases = nil
  if sb.dns then sb.dns:stop(); sb.dns = nil end
end

return rds
