--- verify and prove for the tgw_lambda_rds scenario (after apply; they read the state file).
--
-- verify: (1) snapshot both accounts and trace Lambda -> database on TCP 3306, forward and return;
--         (2) resolve the endpoint and check it lands on the instance's private IP;
--         (3) invoke the Lambda (CREATE TABLE users, INSERT); (4) read back through the Lambda's
--         verify action, and directly with awsnet.mariadb when this host can reach the database.
-- prove:  the path as built, then with each piece (TGW DNS support, a VPC route either way, the
--         TGW route table's route, each security group rule) removed in a copy of the snapshot.
-- Both write report.md and topology.svg into opts.out_dir and return {ok, checks|cases, report}.
-- Errors: "not_applied" (the state file lists no applied scenario), the snapshot's and the
-- report's errors; a failed check is not an error but `ok = false` with its detail.
-- @module awsnet.scenario.checks
local cjson = require "cjson"
local edit = require "awsnet.reach.edit"
local errors = require "awsnet.errors"
local process = require "awsnet.svc.process"
local report = require "awsnet.report"
local runbook = require "awsnet.runbook"

local checks = {}

local TITLE = "Lambda in account A -> RDS MySQL in account B through a shared Transit Gateway"

-- ------------------------------------------------------------------------------------------
-- Snapshot files as tables (for reading facts and for mutated copies)

--- Reads a snapshot folder into the table form awsnet.reach.load takes:
-- {accounts = {[id] = {[region] = {[Key] = array}}}}, or nil, err.
-- @tparam string dir the snapshot folder
-- @treturn table the table form, or nil, err ("invalid_snapshot")
function checks.read_snapshot(dir)
  return require("awsnet.reach.snapshot").read(dir)
end

local deep_copy = edit.copy

-- Every item under `key` in every account and region of `data`.
local function items(data, key)
  return (edit.items(data, key))
end

-- ------------------------------------------------------------------------------------------
-- Shared setup

local function clock() return runbook.clock() end

-- Runs one check, records it in `list` and reports it through `on_event` as soon as it is done.
-- A check's function returns true (pass), false (fail) or "skip" (not applicable here: it neither
-- passes nor fails the verification), and a detail.
local function timed(list, name, fn, on_event)
  local t0 = clock()
  local ok, detail = fn()
  local status = ok == "skip" and "skip" or (ok and "pass" or "FAIL")
  local c = { name = name, ok = ok and true or false, status = status, detail = detail, seconds = clock() - t0 }
  list[#list + 1] = c
  if on_event then
    on_event{ event = "check", name = c.name, ok = c.ok, status = status, detail = c.detail, seconds = c.seconds,
      message = string.format("%s  %s: %s", status, c.name, tostring(c.detail)) }
  end
  return c
end

local function outputs_or_fail(rb)
  local out, err = rb:outputs()
  if not out then return nil, err end
  for _, need in ipairs({ "lambda", "db", "vpc_a", "vpc_b", "tgw" }) do
    if not (out[need] and out[need].id) then
      return errors.fail("not_applied", "nothing applied yet (no " .. need .. " in " .. rb.state_file .. "): run apply first")
    end
  end
  return out
end

-- Snapshot of both accounts into out_dir/snapshot.
local function take_snapshot(cfg, rb, dir, aws)
  local snapshot = require "awsnet.snapshot"
  process.remove(dir)
  local accounts = { { id = cfg.account_ids.A, client = function(s) return rb.client("A", s) end } }
  if not cfg.same_account then
    accounts[2] = { id = cfg.account_ids.B, client = function(s) return rb.client("B", s) end }
  end
  return snapshot.take{ out = dir, region = cfg.region, accounts = accounts, aws = aws }
end

local function trace(model, out, cfg)
  return model:trace{ src = "lambda:" .. out.lambda.id, dst = "rds:" .. out.db.id, protocol = "tcp",
    port = cfg.database.port }
end

-- The topology for the picture, from the state file's records and, when there is one, the
-- snapshot: per subnet its route table, network ACL and network interfaces (with their security
-- groups); each TGW attachment in its own account's attachment subnet.
local function topology(cfg, out, data)
  local enis, rtbs, acls = {}, {}, {}
  if data then
    enis, rtbs, acls = items(data, "NetworkInterfaces"), items(data, "RouteTables"), items(data, "NetworkAcls")
  end
  local function route_table(subnet_id, vpc_id)
    local main
    for _, rt in ipairs(rtbs) do
      for _, a in ipairs(rt.Associations or {}) do
        if a.SubnetId == subnet_id then return rt.RouteTableId end
        if a.Main and rt.VpcId == vpc_id then main = rt.RouteTableId end
      end
    end
    return main
  end
  local function nacl(subnet_id)
    for _, acl in ipairs(acls) do
      for _, a in ipairs(acl.Associations or {}) do
        if a.SubnetId == subnet_id then return acl.NetworkAclId end
      end
    end
  end
  local function label_of(eni)
    for _, g in ipairs(eni.Groups or {}) do
      if out.sg_lambda and g.GroupId == out.sg_lambda.id then return "Lambda " .. out.lambda.id end
      if out.sg_database and g.GroupId == out.sg_database.id then return "RDS " .. out.db.id end
    end
    return eni.Description and eni.Description ~= "" and eni.Description or "network interface"
  end
  local function acct(name, l, workload)
    local subnets = {}
    local roles = { subnet_ = name == "A" and "Lambda" or "database", subnet2_ = "database (2nd AZ)",
      tgw_subnet_ = "TGW attachment" }
    for _, k in ipairs({ "subnet_", "subnet2_", "tgw_subnet_" }) do
      local r = out[k .. l]
      if r then
        local sub = { id = r.id, cidr = r.cidr, role = roles[k], route_table = route_table(r.id, out["vpc_" .. l].id),
          nacl = nacl(r.id), items = {} }
        for _, eni in ipairs(enis) do
          if eni.SubnetId == r.id and eni.InterfaceType ~= "transit_gateway" then
            local sgs = {}
            for _, g in ipairs(eni.Groups or {}) do sgs[#sgs + 1] = g.GroupId end
            sub.items[#sub.items + 1] = { id = eni.NetworkInterfaceId, label = label_of(eni), sgs = sgs }
          end
        end
        local attach = out["tgw_attach_" .. l]
        if k == "tgw_subnet_" and attach then
          sub.items[#sub.items + 1] = { id = attach.id, label = "TGW attachment" }
        end
        if k == "subnet_" and #sub.items == 0 then sub.items[1] = workload end
        subnets[#subnets + 1] = sub
      end
    end
    return { name = name, id = cfg.account_ids and cfg.account_ids[name], vpc = { id = out["vpc_" .. l].id,
      cidr = out["vpc_" .. l].cidr }, subnets = subnets, workload = workload }
  end
  return {
    accounts = { acct("A", "a", { id = "lambda:" .. out.lambda.id, label = "Lambda " .. out.lambda.id }),
      acct("B", "b", { id = "rds:" .. out.db.id, label = "RDS " .. out.db.id }) },
    tgw = { id = out.tgw.id, account = "A", route_table = out.tgw.route_table },
  }
end

-- The database's private IP: the address of the network interface carrying its security group.
local function db_private_ips(data, out)
  local ips = {}
  for _, eni in ipairs(items(data, "NetworkInterfaces")) do
    for _, g in ipairs(eni.Groups or {}) do
      if g.GroupId == out.sg_database.id then ips[#ips + 1] = eni.PrivateIpAddress end
    end
  end
  return ips
end

-- Which resolver to ask, and how to say it.
local function resolver(cfg, out)
  if cfg.resolver then
    return { server = cfg.resolver.server, port = cfg.resolver.port }, cfg.resolver.label or
      ("resolver " .. cfg.resolver.server .. (cfg.resolver.port and (":" .. cfg.resolver.port) or ""))
  end
  if cfg.inside_vpc then
    -- the Amazon resolver is the VPC CIDR's base + 2
    local a, b, c, d = out.vpc_a.cidr:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)")
    local server = string.format("%d.%d.%d.%d", a, b, c, tonumber(d) + 2)
    return { server = server }, "the VPC's resolver " .. server
  end
  return {}, "the system's resolver (/etc/resolv.conf)"
end

-- Invokes the Lambda with `event`; returns the decoded handler result or nil, err.
local function invoke(rb, fn, event)
  local res, err = rb.client("A", "lambda"):call("Invoke", { FunctionName = fn, Payload = cjson.encode(event) })
  if not res then return nil, err end
  if res.FunctionError then
    return errors.fail("FunctionError", tostring(res.FunctionError) .. ": " .. tostring(res.Payload))
  end
  local ok, body = pcall(cjson.decode, res.Payload or "")
  if not ok or type(body) ~= "table" then return errors.fail("FunctionError", "not JSON: " .. tostring(res.Payload)) end
  return body
end

--- What the Lambda read back, as a mysql session shows it: each statement after `mysql> `,
-- its result laid out by the mysql client's rules (report.mysql_table), and "N rows in set".
-- @tparam table body the verify action's answer ({database, results = {{sql, columns, rows}}})
-- @treturn string the text ("" when there are no results)
function checks.readback_text(body)
  local out = {}
  if body.database then out[#out + 1] = "mysql> USE " .. tostring(body.database) .. ";\nDatabase changed\n\n" end
  for _, res in ipairs(body.results or {}) do
    local n = #(res.rows or {})
    out[#out + 1] = "mysql> " .. tostring(res.sql) .. ";\n"
    out[#out + 1] = n > 0 and report.mysql_table(res) or ""
    out[#out + 1] = n == 0 and "Empty set\n\n" or string.format("%d %s in set\n\n", n, n == 1 and "row" or "rows")
  end
  return table.concat(out)
end

-- ------------------------------------------------------------------------------------------
-- verify

-- The Lambda's ENI in A (describe-network-interfaces' entry), from the snapshot.
local function lambda_eni(data, out)
  for _, acct in pairs(data and data.accounts or {}) do
    for _, region in pairs(acct) do
      for _, e in ipairs(region.NetworkInterfaces or {}) do
        if e.InterfaceType == "lambda" and tostring(e.Description):find(out.lambda.id, 1, true) then return e end
      end
    end
  end
end

-- The network twin's namespace of the Lambda's ENI in A (<prefix>-<eni id>), from the snapshot.
local function lambda_namespace(prefix, data, out)
  local e = lambda_eni(data, out)
  return e and (prefix .. "-" .. e.NetworkInterfaceId)
end

-- Counts the rows of `users` with awsnet.mariadb from inside network namespace `ns` (a child
-- `ip netns exec ns lua5.4`; the password reaches it on stdin, never its command line).
local function count_users_in(ns, target)
  local core = require "awsnet.core"
  local proc = require "awsnet.svc.process"
  local script = [[
local cjson = require "cjson"
local t = cjson.decode(io.read("a"))
local db, err = require("awsnet.mariadb").connect{ host = t.host, port = t.port, user = t.user,
  password = t.password, database = t.database, connect_timeout = 3 }
if not db then io.write(cjson.encode({ err = tostring(err) })) return end
local rows, qerr = db:query("SELECT COUNT(*) AS n FROM users")
db:close()
io.write(cjson.encode(rows and { n = tonumber(rows[1].n) } or { err = tostring(qerr) }))]]
  local dir = proc.tempdir("awsnet-direct")
  local outp = dir .. "/out"
  local pid, perr = core.process.spawn({ "ip", "netns", "exec", ns, "lua5.4", "-e",
    string.format("package.path=%q; package.cpath=%q", package.path, package.cpath), "-e", script },
    -- under `make check` the child loads the sanitised core too, which needs the runtimes preloaded
    { stdin_data = require("cjson").encode(target), stdout = outp, stderr = outp,
      env = os.getenv("AWSNET_SANITIZED") and {} or { LD_PRELOAD = false } })
  if not pid then proc.remove(dir); return nil, perr end
  core.process.wait(pid, 30, false)
  local text = proc.read_file(outp) or ""
  proc.remove(dir)
  local ok, res = pcall(require("cjson").decode, text)
  if not ok or type(res) ~= "table" then return nil, text:sub(1, 500) end
  if res.err then return nil, res.err end
  return res.n
end

--- Runs the four checks. opts: out_dir, aws (module), on_event, stdout (text output),
-- direct = {host, port, tls} where this host reaches the database (the sandbox's MariaDB).
-- @tparam table cfg the scenario config (scenario.config's result, with account_ids)
-- @param rb the scenario's runbook
-- @tparam[opt] table opts {out_dir, aws, on_event, stdout, direct, merge}
-- @treturn table {ok, checks = {{name, ok, detail, seconds}}, report, readback}, or nil, err
function checks.verify(cfg, rb, opts)
  opts = opts or {}
  local out, err = outputs_or_fail(rb)
  if not out then return nil, err end
  local say = opts.stdout and function(...) opts.stdout:write(...) end or function() end
  local list, started = {}, clock()
  local function check(name, fn) return timed(list, name, fn, opts.on_event) end
  local dir = (opts.out_dir or ".")

  -- (1) snapshot and trace
  local data, result
  local c = check("snapshot both accounts", function()
    local snap, serr = take_snapshot(cfg, rb, dir .. "/snapshot", opts.aws)
    if not snap then return false, tostring(serr) end
    local rerr
    data, rerr = checks.read_snapshot(snap.dir)
    if not data then return false, tostring(rerr) end
    local parts = {}
    for _, a in ipairs(snap.accounts) do
      parts[#parts + 1] = string.format("%s: %d VPCs, %d ENIs", a.id, a.counts.Vpcs, a.counts.NetworkInterfaces)
    end
    return true, table.concat(parts, "; ")
  end)
  if c.ok then
    check("trace Lambda -> database tcp/" .. cfg.database.port, function()
      local model, lerr = require("awsnet.reach").load(data)
      if not model then return false, tostring(lerr) end
      result, lerr = trace(model, out, cfg)
      if not result then return false, tostring(lerr) end
      say(tostring(result), "\n")
      return result.reachable, result.reachable and "reachable, forward and return" or
        (tostring(result.code) .. " at " .. report.component_id(result.blocked_at))
    end)
  end

  -- the network the connections below cross
  check("network mode", function()
    if not cfg.sandbox then return true, "AWS" end
    local twin = cfg.sandbox.twin
    if not twin then return "skip", "no network twin: connections gated by the evaluator" end
    local ns = lambda_namespace(twin, data, out)
    local listed = require("awsnet.svc.process").run("ip netns list 2>/dev/null") or ""
    if not ns or not listed:find(ns, 1, true) then
      return false, "the network twin " .. twin .. " has no namespace for the Lambda's ENI"
    end
    return true, "the network twin " .. twin .. ": connections cross Linux namespaces, routes and nftables"
  end)

  -- (2) DNS
  local addresses
  check("resolve " .. tostring(out.db.endpoint), function()
    if cfg.sandbox and not cfg.resolver then
      -- never ask the system's resolver about a sandbox name
      return false, "the sandbox did not say where its DNS server is"
    end
    local server, label = resolver(cfg, out)
    local r, derr = require("awsnet.dns").resolve(out.db.endpoint, { server = server.server, port = server.port,
      timeout = 3 })
    if not r then return false, "via " .. label .. ": " .. tostring(derr) end
    addresses = r.addresses
    local expected = data and db_private_ips(data, out) or {}
    for _, ip in ipairs(r.addresses) do
      for _, want in ipairs(expected) do
        if ip == want then return true, string.format("%s via %s = the instance's private IP", ip, label) end
      end
    end
    return false, string.format("%s via %s, but the instance's private IP is %s", table.concat(r.addresses, ","),
      label, #expected > 0 and table.concat(expected, ",") or "unknown")
  end)

  -- (3) the article's write, through the Lambda
  check("invoke " .. out.lambda.id .. " (CREATE TABLE users, INSERT)", function()
    local body, ierr = invoke(rb, out.lambda.id, { action = "write" })
    if not body then return false, tostring(ierr) end
    return body.statusCode == 200, tostring(body.body)
  end)

  -- (4) read back, through the Lambda and directly
  local readback
  check("read back through the Lambda", function()
    local body, ierr = invoke(rb, out.lambda.id, { action = "verify" })
    if not body then return false, tostring(ierr) end
    readback = body
    local cols = {}
    for _, col in ipairs(body.columns or {}) do cols[#cols + 1] = col.field end
    local ok = body.statusCode == 200 and #(body.rows or {}) > 0
    body.text = checks.readback_text(body)
    say(body.text)
    return ok, string.format("tables: %s; users columns: %s; %d rows", table.concat(body.tables or {}, ","),
      table.concat(cols, ","), #(body.rows or {}))
  end)
  check("read back directly (awsnet.mariadb)", function()
    local twin = cfg.sandbox and cfg.sandbox.twin
    if twin and not opts.direct then
      -- as the field report checked from an EC2 instance: from a host inside A's VPC, the
      -- namespace of the Lambda's ENI (its subnet and groups), across the twin's TGW
      local ns = lambda_namespace(twin, data, out)
      if not ns then return false, "no namespace of the Lambda's ENI in the network twin " .. twin end
      local host = addresses and addresses[1]
      if not host then return false, "no address to connect to" end
      local password, perr = require("awsnet.scenario.tgw_lambda_rds").db_password(cfg)
      if not password then return false, tostring(perr) end
      local port = math.tointeger(tonumber(out.db.port or cfg.database.port))
      local n, nerr = count_users_in(ns, { host = host, port = port,
        user = cfg.database.username, password = password, database = cfg.database.name })
      if not n then return false, "from " .. ns .. ": " .. tostring(nerr) end
      return n >= #(readback and readback.rows or {}) and n > 0,
        string.format("from inside A's VPC (namespace %s): %s:%d has %d rows in users", ns, host, port, n)
    end
    if cfg.sandbox and not opts.direct then
      return "skip", "the sandbox's database is reached through its Lambda only"
    end
    local target = opts.direct or { host = addresses and addresses[1], port = out.db.port }
    if not target.host then return "skip", "no address to connect to" end
    local password, perr = require("awsnet.scenario.tgw_lambda_rds").db_password(cfg)
    if not password then return false, tostring(perr) end
    local db, cerr = require("awsnet.mariadb").connect{ host = target.host, port = target.port or cfg.database.port,
      user = cfg.database.username, password = password, database = cfg.database.name, tls = target.tls,
      connect_timeout = 3 }
    if not db then
      -- awsnet.mariadb says "network" or "timeout" when the host cannot reach the address at all
      if not opts.direct and (cerr.code == "timeout" or cerr.code == "network") then
        return "skip", "this host cannot reach " .. target.host .. " (" .. cerr.code .. ")"
      end
      return false, tostring(cerr)
    end
    local rows, qerr = db:query("SELECT COUNT(*) AS n FROM users")
    db:close()
    if not rows then return false, tostring(qerr) end
    local n = tonumber(rows[1].n)
    return n ~= nil and n >= #(readback and readback.rows or {}) and n > 0, string.format("%s:%s has %s rows in users",
      target.host, tostring(target.port), tostring(n))
  end)

  local ok = true
  for _, chk in ipairs(list) do ok = ok and chk.ok end
  local paths, rerr = report.write(dir, { title = TITLE,
    topology = topology(cfg, out, data), trace = result, checks = list, readback = readback and readback.text,
    timings = { { phase = "verify", seconds = clock() - started } } }, { merge = opts.merge })
  if not paths then return nil, rerr end
  return { ok = ok, checks = list, report = paths, readback = readback }
end

-- ------------------------------------------------------------------------------------------
-- prove

local remove_if = edit.remove_if

-- Removes the VPC route to `dest` via the TGW from every route table of `vpc_id`.
local function drop_vpc_route(data, vpc_id, dest)
  local n = 0
  for _, rt in ipairs(items(data, "RouteTables")) do
    if rt.VpcId == vpc_id then
      local removed
      rt.Routes, removed = remove_if(rt.Routes, function(r) return r.DestinationCidrBlock == dest and r.TransitGatewayId end)
      n = n + removed
    end
  end
  return n
end

local function drop_sg_rules(data, sg_id, field)
  local n = 0
  for _, sg in ipairs(items(data, "SecurityGroups")) do
    if sg.GroupId == sg_id then
      n = n + #(sg[field] or {})
      sg[field] = {}
    end
  end
  return n
end

-- The TGW route table's way to B: its routes and propagation for B's attachment.
local function drop_tgw_route_to(data, attachment_id)
  local n = 0
  for _, entry in ipairs(items(data, "TransitGatewayRoutes")) do
    local removed
    entry.Routes, removed = remove_if(entry.Routes, function(r)
      for _, a in ipairs(r.TransitGatewayAttachments or {}) do
        if a.TransitGatewayAttachmentId == attachment_id then return true end
      end
      return false
    end)
    n = n + removed
  end
  for _, entry in ipairs(items(data, "TransitGatewayPropagations")) do
    local removed
    entry.TransitGatewayRouteTablePropagations, removed = remove_if(entry.TransitGatewayRouteTablePropagations,
      function(p) return p.TransitGatewayAttachmentId == attachment_id end)
    n = n + removed
  end
  return n
end

-- DNS resolution off in a VPC (its enableDnsSupport attribute).
local function disable_vpc_dns(data, vpc_id)
  local n = 0
  for _, attr in ipairs(items(data, "VpcAttributes")) do
    if attr.VpcId == vpc_id and attr.EnableDnsSupport then
      attr.EnableDnsSupport.Value = false
      n = n + 1
    end
  end
  return n
end

-- A deny of the database port from A's CIDR in the network ACLs of the database's subnets,
-- numbered just before their first inbound rule (nothing is changed where that rule is number 1).
-- Where prove's NACL case puts its deny: each network ACL of B's database subnets, with the rule
-- number just below its lowest inbound rule ({acl, number}).
local function nacl_deny_sites(data, out)
  local subnets, sites = {}, {}
  for _, k in ipairs({ "subnet_b", "subnet2_b" }) do
    if out[k] then subnets[out[k].id] = true end
  end
  for _, acl in ipairs(items(data, "NetworkAcls")) do
    local here = false
    for _, a in ipairs(acl.Associations or {}) do here = here or subnets[a.SubnetId] == true end
    local lowest = 32767
    for _, e in ipairs(acl.Entries or {}) do
      if e.Egress ~= true then lowest = math.min(lowest, math.tointeger(e.RuleNumber) or 32767) end
    end
    if here and lowest > 1 then sites[#sites + 1] = { acl = acl, number = lowest - 1 } end
  end
  return sites
end

-- The deny prove's NACL case adds: tcp to the database's port from A's VPC.
local function nacl_deny_entry(cfg, number)
  local port = math.tointeger(tonumber(cfg.database.port))
  return { RuleNumber = number, Egress = false, Protocol = "6", RuleAction = "deny", CidrBlock = cfg.network.A.cidr,
    PortRange = { From = port, To = port } }
end

local function deny_in_nacl(data, out, cfg)
  local sites = nacl_deny_sites(data, out)
  for _, site in ipairs(sites) do
    site.acl.Entries = site.acl.Entries or {}
    table.insert(site.acl.Entries, nacl_deny_entry(cfg, site.number))
  end
  return #sites
end

--- The cases of prove: {case, mutate(data, out, cfg) -> number of things changed}; the first is
-- the path as built, each other one removes one piece (the NACL case adds a deny).
checks.PROVE_CASES = {
  { case = "as built (DNS support, TGW routes both ways, security groups)", mutate = function() return 1 end },
  { case = "DNS support off in A's VPC", mutate = function(data, out) return disable_vpc_dns(data, out.vpc_a.id) end },
  { case = "no route in A's VPC to B via the TGW", mutate = function(data, out, cfg)
    return drop_vpc_route(data, out.vpc_a.id, cfg.network.B.cidr) end },
  { case = "no route in B's VPC back to A (return path)", mutate = function(data, out, cfg)
    return drop_vpc_route(data, out.vpc_b.id, cfg.network.A.cidr) end },
  { case = "no TGW route table route to B's VPC", mutate = function(data, out)
    return drop_tgw_route_to(data, out.tgw_attach_b.id) end },
  { case = "database security group without the tcp/3306 rule from A", mutate = function(data, out)
    return drop_sg_rules(data, out.sg_database.id, "IpPermissions") end },
  { case = "Lambda security group without egress tcp/3306 to B", mutate = function(data, out)
    return drop_sg_rules(data, out.sg_lambda.id, "IpPermissionsEgress") end },
  { case = "database subnet's network ACL denies tcp/3306 from A", mutate = deny_in_nacl },
}

--- prove in reverse: every pair and every triple of the faults of PROVE_CASES (their indices,
-- the as-built case left out), in order.
-- @treturn {{integer,...},...} the combinations
function checks.fault_sets()
  local sets, n = {}, #checks.PROVE_CASES
  for i = 2, n do
    for j = i + 1, n do
      sets[#sets + 1] = { i, j }
    end
  end
  for i = 2, n do
    for j = i + 1, n do
      for k = j + 1, n do sets[#sets + 1] = { i, j, k } end
    end
  end
  return sets
end

--- One row of prove's reverse table: the faults of `set` made in a copy of `data`, the trace's
-- blockers and fix set, and whether the fix set, made in a copy of that copy, gives reachable.
-- @tparam table data the snapshot's table form (left as it was)
-- @tparam {integer,...} set indices into PROVE_CASES
-- @tparam table out the state file's outputs
-- @tparam table cfg the scenario config
-- @treturn table {faults, reachable, blockers, fix, complete, fixed, result, fixed_result}, or nil, err
function checks.reverse_case(data, set, out, cfg)
  local reach = require "awsnet.reach"
  local copy, faults = deep_copy(data), {}
  for _, i in ipairs(set) do
    local case = checks.PROVE_CASES[i]
    faults[#faults + 1] = case.case
    case.mutate(copy, out, cfg)
  end
  local model, err = reach.load(copy)
  if not model then return nil, err end
  local r
  r, err = trace(model, out, cfg)
  if not r then return nil, err end
  local row = { faults = faults, reachable = r.reachable, blockers = {}, fix = {}, result = r }
  for _, b in ipairs(r.blockers) do
    row.blockers[#row.blockers + 1] = string.format("%s at %s (%s)", b.code, report.component_id(b), b.direction)
  end
  for _, c in ipairs(r.fix or {}) do row.fix[#row.fix + 1] = c.change end
  row.complete = r.blocked_path and r.blocked_path.complete
  local fixed_data = require("awsnet.reach.blocked").apply(copy, r.fix)
  local fixed_model
  fixed_model, err = reach.load(fixed_data)
  if not fixed_model then return nil, err end
  row.fixed_result, err = trace(fixed_model, out, cfg)
  if not row.fixed_result then return nil, err end
  row.fixed = row.fixed_result.reachable
  return row
end

-- ------------------------------------------------------------------------------------------
-- prove on the network twin: each case's fault made through the API, a real connection tried
-- from the Lambda's ENI, the twin's drop counters read before and after, the fault undone.

local function call_or_fail(rb, account, service, op, params)
  local res, err = rb.client(account, service):call(op, params)
  if not res then error(errors.new("prove_fault", op .. ": " .. tostring(err)), 0) end
  return res
end

-- The permissions of a group as the snapshot lists them, ready to revoke and authorize again.
local function permissions(data, sg_id, field)
  for _, sg in ipairs(items(data, "SecurityGroups")) do
    if sg.GroupId == sg_id then return sg[field] or {} end
  end
  return {}
end

local function vpc_routes_to(data, vpc_id, dest)
  local found = {}
  for _, rt in ipairs(items(data, "RouteTables")) do
    if rt.VpcId == vpc_id then
      for _, r in ipairs(rt.Routes or {}) do
        if r.DestinationCidrBlock == dest and r.TransitGatewayId then
          found[#found + 1] = { rt = rt.RouteTableId, dest = dest, tgw = r.TransitGatewayId }
        end
      end
    end
  end
  return found
end

-- A prove fault that deletes the routes of an account's VPC to the other network's CIDR through
-- the API (and creates them again to undo it).
local function route_fault(account, vpc, peer)
  return function(rb, data, out, cfg)
    local routes = vpc_routes_to(data, out[vpc].id, cfg.network[peer].cidr)
    for _, r in ipairs(routes) do
      call_or_fail(rb, account, "ec2", "DeleteRoute", { RouteTableId = r.rt, DestinationCidrBlock = r.dest })
    end
    return function()
      for _, r in ipairs(routes) do
        call_or_fail(rb, account, "ec2", "CreateRoute", { RouteTableId = r.rt, DestinationCidrBlock = r.dest,
          TransitGatewayId = r.tgw })
      end
    end
  end
end

-- A prove fault that revokes a security group's rules of one direction through the API (and
-- authorizes them again to undo it).
local function revoke_fault(account, group, field, direction)
  return function(rb, data, out)
    local id = out[group].id
    local perms = permissions(data, id, field)
    call_or_fail(rb, account, "ec2", "RevokeSecurityGroup" .. direction, { GroupId = id, IpPermissions = perms })
    return function()
      call_or_fail(rb, account, "ec2", "AuthorizeSecurityGroup" .. direction, { GroupId = id, IpPermissions = perms })
    end
  end
end

-- Each prove case's fault through the API: a function(rb, data, out, cfg) that makes it and
-- returns the function that undoes it; nil for the case as built.
local TWIN_FAULTS = {
  nil,
  function(rb, _, out)
    call_or_fail(rb, "A", "ec2", "ModifyVpcAttribute", { VpcId = out.vpc_a.id, EnableDnsSupport = { Value = false } })
    return function()
      call_or_fail(rb, "A", "ec2", "ModifyVpcAttribute", { VpcId = out.vpc_a.id, EnableDnsSupport = { Value = true } })
    end
  end,
  route_fault("A", "vpc_a", "B"),
  route_fault("B", "vpc_b", "A"),
  function(rb, data, out)
    local att, props, statics = out.tgw_attach_b.id, {}, {}
    for _, entry in ipairs(items(data, "TransitGatewayPropagations")) do
      for _, pr in ipairs(entry.TransitGatewayRouteTablePropagations or {}) do
        if pr.TransitGatewayAttachmentId == att then props[#props + 1] = entry.TransitGatewayRouteTableId end
      end
    end
    for _, entry in ipairs(items(data, "TransitGatewayRoutes")) do
      for _, r in ipairs(entry.Routes or {}) do
        for _, a in ipairs(r.TransitGatewayAttachments or {}) do
          if a.TransitGatewayAttachmentId == att and r.Type == "static" then
            statics[#statics + 1] = { rt = entry.TransitGatewayRouteTableId, dest = r.DestinationCidrBlock }
          end
        end
      end
    end
    for _, rt in ipairs(props) do
      call_or_fail(rb, "A", "ec2", "DisableTransitGatewayRouteTablePropagation", { TransitGatewayRouteTableId = rt,
        TransitGatewayAttachmentId = att })
    end
    for _, r in ipairs(statics) do
      call_or_fail(rb, "A", "ec2", "DeleteTransitGatewayRoute", { TransitGatewayRouteTableId = r.rt,
        DestinationCidrBlock = r.dest })
    end
    return function()
      for _, rt in ipairs(props) do
        call_or_fail(rb, "A", "ec2", "EnableTransitGatewayRouteTablePropagation", { TransitGatewayRouteTableId = rt,
          TransitGatewayAttachmentId = att })
      end
      for _, r in ipairs(statics) do
        call_or_fail(rb, "A", "ec2", "CreateTransitGatewayRoute", { TransitGatewayRouteTableId = r.rt,
          DestinationCidrBlock = r.dest, TransitGatewayAttachmentId = att })
      end
    end
  end,
  revoke_fault("B", "sg_database", "IpPermissions", "Ingress"),
  revoke_fault("A", "sg_lambda", "IpPermissionsEgress", "Egress"),
  function(rb, data, out, cfg)
    local sites = nacl_deny_sites(data, out)
    for _, site in ipairs(sites) do
      local params = nacl_deny_entry(cfg, site.number)
      params.NetworkAclId = site.acl.NetworkAclId
      call_or_fail(rb, "B", "ec2", "CreateNetworkAclEntry", params)
    end
    return function()
      for _, site in ipairs(sites) do
        call_or_fail(rb, "B", "ec2", "DeleteNetworkAclEntry", { NetworkAclId = site.acl.NetworkAclId,
          RuleNumber = site.number, Egress = false })
      end
    end
  end,
}

-- What the twin shows for one prove case: {connected, moved = "comment +n" at the blocking hop,
-- or nil}. `blocked` is the evaluator's blocking component id (nil: reachable), `rule` its rule text.
local function twin_case(cfg, data, out, resolver_addr, blocked, rule)
  local twin = require "awsnet.sandbox.twin"
  local prefix = cfg.sandbox.twin
  local eni = lambda_eni(data, out)
  local db_ip = db_private_ips(data, out)[1]
  if not eni or not db_ip then return { connected = false, note = "no Lambda ENI or database address" } end
  local ns = prefix .. "-" .. eni.NetworkInterfaceId
  local before = twin.counters(prefix)
  local row = {}
  -- the name first, from the VPC's resolver inside the namespace, then the connection by address
  local dig = process.run(string.format("ip netns exec %s dig +time=1 +tries=1 +short @%s %s 2>&1", process.quote(ns),
    resolver_addr, out.db.endpoint))
  row.resolved = dig ~= nil and dig:match("^%d+%.%d+%.%d+%.%d+") ~= nil
  local res = twin.run_probe { timeout = 1, flows = { { id = "db", ns = ns, src = eni.PrivateIpAddress, dst = db_ip,
    proto = "tcp", port = math.tointeger(tonumber(out.db.port or cfg.database.port)) } } }
  row.connected = row.resolved and res ~= nil and res.db == true
  local after = twin.counters(prefix)
  if blocked then
    -- the counters of the blocking component that moved, in name order; a NACL's rule that the
    -- evaluator names ("inbound rule 99: ...") is the one to show when it moved
    local number = rule and rule:match("rule (%d+):")
    local moved = {}
    for key, n in pairs(after) do
      if key:find(blocked, 1, true) and n > (before[key] or 0) then moved[#moved + 1] = key end
    end
    table.sort(moved)
    local shown = moved[1]
    for _, key in ipairs(moved) do
      if number and key:match(" (%d+)$") == number then shown = key end
    end
    if shown then row.moved = string.format("%s +%d", shown, after[shown] - (before[shown] or 0)) end
  end
  return row
end

--- The prove table. opts: out_dir, aws, on_event, stdout, snapshot_dir (use this snapshot
-- instead of taking one), resolver for the DNS case.
-- @tparam table cfg the scenario config
-- @param rb the scenario's runbook
-- @tparam[opt] table opts {out_dir, aws, on_event, stdout, snapshot_dir, merge}
-- @treturn table {ok, cases = {{case, reachable, code, blocked_at, changed, as_expected}},
-- reverse = {{faults, blockers, fix, fixed}} (every pair and triple of faults, each with the fix set
-- awsnet proposes and whether, made in a copy, it gives reachable), report}, or nil, err
function checks.prove(cfg, rb, opts)
  opts = opts or {}
  local out, err = outputs_or_fail(rb)
  if not out then return nil, err end
  local reach = require "awsnet.reach"
  local dir = opts.out_dir or "."
  local started = clock()
  local base = opts.snapshot_dir
  if not base then
    base = dir .. "/snapshot"
    local snap, serr = take_snapshot(cfg, rb, base, opts.aws)
    if not snap then return nil, serr end
  end
  local data, serr = checks.read_snapshot(base)
  if not data then return nil, serr end
  local cases, ok, first = {}, true, nil
  local twin_on = cfg.sandbox and cfg.sandbox.twin and not opts.snapshot_dir
  local resolver_ip
  if twin_on then
    -- the twin's RDS forwarders and VPC resolvers start with the first Lambda run: one read-only
    -- run first, so that prove alone (without verify before it) finds them
    invoke(rb, out.lambda.id, { action = "verify" })
    for _, v in ipairs(items(data, "Vpcs")) do
      if v.VpcId == out.vpc_a.id then resolver_ip = require("awsnet.sandbox.twin.plan").resolver_address(v.CidrBlock) end
    end
  end
  for i, case in ipairs(checks.PROVE_CASES) do
    local copy = deep_copy(data)
    local changed = case.mutate(copy, out, cfg)
    local model, lerr = reach.load(copy)
    if not model then return nil, lerr end
    local r, terr = trace(model, out, cfg)
    if not r then return nil, terr end
    local row = { case = case.case, reachable = r.reachable, code = r.code, blocked_at = r.blocked_at and
      report.component_id(r.blocked_at), changed = changed }
    cases[#cases + 1] = row
    -- as built it must pass; with a piece removed it must be blocked
    row.as_expected = (r.reachable == (i == 1)) and changed > 0
    local twin_text = ""
    if twin_on then
      -- the same fault in the sandbox, through its API, and what the kernel did with it: the real
      -- connection fails, and the counter that moved is the one at the evaluator's blocking hop
      -- (the name does not resolve when DNS support is off: no resolver answers in the VPC)
      local undo = TWIN_FAULTS[i] and TWIN_FAULTS[i](rb, data, out, cfg)
      local okc, t = pcall(twin_case, cfg, data, out, resolver_ip, not r.reachable and row.blocked_at or nil,
        r.blocked_at and r.blocked_at.rule)
      if undo then undo() end
      if not okc then return nil, t end
      row.twin = t
      local twin_ok = (t.connected == (i == 1)) and (i == 1 or t.moved ~= nil or (not t.resolved and i == 2))
      row.as_expected = row.as_expected and twin_ok
      twin_text = string.format("; twin: %s%s", t.connected and "connected" or (t.resolved and "connection failed" or
        "name not resolved"), t.moved and (", drop counted at " .. t.moved) or "")
    end
    ok = ok and row.as_expected
    if i == 1 then first = r end
    if opts.on_event then
      opts.on_event{ event = "check", name = case.case, ok = row.as_expected, message = string.format("%-58s %s%s%s",
        case.case, r.reachable and "reachable" or "blocked", r.reachable and "" or
        (": " .. tostring(r.code) .. " at " .. tostring(row.blocked_at)), twin_text) }
    end
  end
  -- in reverse: several pieces removed at once, and the fix set proposed for each
  local reverse = {}
  for _, set in ipairs(checks.fault_sets()) do
    local row, rerr = checks.reverse_case(data, set, out, cfg)
    if not row then return nil, rerr end
    row.result, row.fixed_result = nil, nil
    reverse[#reverse + 1] = row
    ok = ok and row.fixed and not row.reachable
    if opts.on_event then
      opts.on_event{ event = "reverse", name = table.concat(row.faults, " + "), ok = row.fixed, message =
        string.format("%s: %d blockers, fix of %d changes %s", table.concat(row.faults, " + "), #row.blockers,
          #row.fix, row.fixed and "-> reachable" or "-> STILL BLOCKED") }
    end
  end
  local paths, rerr = report.write(dir, { title = TITLE,
    topology = topology(cfg, out, data), trace = first, prove = cases, reverse = reverse,
    timings = { { phase = "prove", seconds = clock() - started } } }, { merge = opts.merge })
  if not paths then return nil, rerr end
  return { ok = ok, cases = cases, reverse = reverse, report = paths }
end

return checks
