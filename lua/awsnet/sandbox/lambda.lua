--- Lambda in the sandbox: functions with Python runtimes that really run. A function with a
-- VpcConfig gets `lambda` ENIs, one per subnet and security-group set, shared between functions
-- like AWS's Hyperplane ENIs and released a while after the last function using them is gone.
-- Invoke runs the handler with /usr/bin/python3 through lambda_bootstrap.py in a child process
-- and answers when it ends, the sandbox serving other clients meanwhile (the action returns a
-- job the sandbox polls; see awsnet.sandbox). With the network twin (awsnet.sandbox.twin) the
-- handler runs inside its ENI's namespace, in a root of its own, as an unprivileged user, and the
-- kernel is its network. Without it the bootstrap acts as the function's network: names resolve
-- as the sandbox's DNS rules say, and a connection reaches a database's backing server only when
-- awsnet.reach traces the path from the function's ENI as reachable; otherwise it is dropped and
-- the connect waits until the socket's timeout. Either way the role's keys and the function's
-- variables reach the bootstrap on its stdin (a pipe), never in a file or on a command line.
-- @module awsnet.sandbox.lambda
local errors = require "awsnet.errors"
local wire = require "awsnet.sandbox.wire"
local ec2 = require "awsnet.sandbox.ec2"
local iam = require "awsnet.sandbox.iam"
local process = require "awsnet.svc.process"

local lambda = { actions = {} }

--- The handler of each API action: `actions.<Action>(ctx, params)` -> the result table, or nil,
-- err with AWS's error code and HTTP status. `ctx` = {sandbox, state, account, arn, user_id,
-- region, request_id}.
-- @table actions
local A = lambda.actions
local array = wire.array
local q = process.quote

local API = "/2015-03-31/functions"

local function fail(code, message, status) return errors.fail(code, message, { status = status or 400 }) end

local function invalid(message) return fail("InvalidParameterValueException", message) end

--- REST-JSON routes: action and the function name from the path.
-- @tparam string method the HTTP method
-- @tparam string path the request path
-- @treturn ?string the action, nil when no route matches
-- @treturn ?table {FunctionName} when the path names a function
function lambda.route(method, path)
  if path == API or path == API .. "/" then
    if method == "POST" then return "CreateFunction" end
    if method == "GET" then return "ListFunctions" end
    return nil
  end
  local name, rest = path:match("^" .. API:gsub("%-", "%%-") .. "/([^/]+)(.*)$")
  if not name then return nil end
  local action = ({
    ["GET "] = "GetFunction", ["DELETE "] = "DeleteFunction",
    ["GET /configuration"] = "GetFunctionConfiguration", ["PUT /configuration"] = "UpdateFunctionConfiguration",
    ["POST /invocations"] = "Invoke",
  })[method .. " " .. rest]
  return action, { FunctionName = name }
end

local RUNTIMES = { ["python3.8"] = true, ["python3.9"] = true, ["python3.10"] = true, ["python3.11"] = true,
                   ["python3.12"] = true, ["python3.13"] = true }

-- A name, a partial ARN or a full ARN -> the plain name and the account the ARN names (nil for
-- a plain name).
local function function_name(given)
  if type(given) ~= "string" then return nil end
  local account, name = given:match("^arn:aws:lambda:[^:]+:(%d+):function:([^:]+)")
  if not account then account, name = given:match("^(%d+):function:([^:]+)") end
  return name or given, account
end

-- The caller's function named by `given`. Another account's function (by its ARN) is refused as
-- AWS refuses it without a resource-based policy granting `permission` (the sandbox has none),
-- never resolved to a function of the caller with the same name.
local function find_function(ctx, given, permission)
  local name, account = function_name(given)
  if account and account ~= ctx.account then
    local arn = string.format("arn:aws:lambda:%s:%s:function:%s", ctx.region, account, name)
    return fail("AccessDeniedException", string.format("User: %s is not authorized to perform: lambda:%s on " ..
      "resource: %s because no resource-based policy allows the lambda:%s action", ctx.arn, permission, arn,
      permission), 403)
  end
  local fn = name and ctx.state:get("lambda_fn", ctx.account .. ":" .. name)
  if not fn then
    return fail("ResourceNotFoundException", "Function not found: arn:aws:lambda:" .. ctx.region .. ":" .. ctx.account ..
      ":function:" .. tostring(name), 404)
  end
  return fn
end

-- ---------------------------------------------------------------------------------------------
-- Files: code and invocation scratch space

local function files_dir(sb)
  if not sb.lambda_dir then
    if sb.opts.state_dir then
      sb.lambda_dir = sb.opts.state_dir .. "/lambda"
      process.mkdir(sb.lambda_dir, "700")
    else
      sb.lambda_dir = process.tempdir("awsnet-sandbox-lambda")
      sb.lambda_guard = process.remove_on_exit(sb.lambda_dir) -- also when the sandbox process is killed
    end
  end
  return sb.lambda_dir
end

-- AWS's limits for a deployment package: a zip of at most 50 MB uploaded directly (the request
-- limit before it, 69905067 bytes, is the sandbox's body limit for CreateFunction), at most
-- 250 MB unzipped (262144000 bytes, AWS's figure and message). A zip bomb is refused from its
-- central directory's sizes before anything is written, and again while extracting, by counting
-- the bytes written (the directory may lie), so it never fills the disk.
local ZIP_BYTES, UNZIPPED_BYTES = 52428800, 262144000

-- Extracts argv[1] into argv[2] with at most argv[3] bytes unzipped; prints "ok", "too_large"
-- or "bad". Names that leave the folder are refused.
local UNZIP = [[
import os, sys, zipfile
src, dest, limit = sys.argv[1], os.path.realpath(sys.argv[2]), int(sys.argv[3])
try:
    with zipfile.ZipFile(src) as zf:
        infos = zf.infolist()
        if len(infos) > 100000 or sum(i.file_size for i in infos) > limit:
            print("too_large"); sys.exit(0)
        total = 0
        for info in infos:
            target = os.path.realpath(os.path.join(dest, info.filename))
            if target != dest and not target.startswith(dest + os.sep):
                print("bad"); sys.exit(0)
            if info.is_dir():
                os.makedirs(target, exist_ok=True); continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with zf.open(info) as f, open(target, "wb") as out:
                while True:
                    block = f.read(1 << 16)
                    if not block: break
                    total += len(block)
                    if total > limit:
                        print("too_large"); sys.exit(0)
                    out.write(block)
except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
    print("bad"); sys.exit(0)
print("ok")
]]

-- Unpacks a zip (Code.ZipFile, a blob: the model's reader has decoded its base64) into a fresh
-- folder; returns the folder, size and CodeSha256, or nil, err.
local function store_code(ctx, fn_id, zip)
  if not zip or #zip < 22 or zip:sub(1, 2) ~= "PK" then
    return invalid("Could not unzip uploaded file. Please check your file.")
  end
  local limits = ctx.sandbox.limits or {}
  local zip_limit, unzipped_limit = limits.code_zip_bytes or ZIP_BYTES, limits.code_unzipped_bytes or UNZIPPED_BYTES
  if #zip > zip_limit then
    return fail("RequestEntityTooLargeException", "Zipped size must be smaller than " .. zip_limit .. " bytes", 413)
  end
  local sha_hex = require("awsnet.core").sigv4.sha256_hex(zip)
  local dir = files_dir(ctx.sandbox) .. "/" .. (ctx.region .. "-" .. fn_id):gsub("[^%w%-_]", "_") .. "-" .. sha_hex:sub(1, 12)
  process.remove(dir)
  process.mkdir(dir)
  process.write_file(dir .. ".zip", zip)
  local verdict = process.run(string.format("env -u LD_PRELOAD /usr/bin/python3 -c %s %s %s %d", q(UNZIP), q(dir .. ".zip"),
    q(dir), unzipped_limit))
  os.remove(dir .. ".zip")
  verdict = verdict and verdict:match("%a[%a_]*")
  if verdict ~= "ok" then
    process.remove(dir)
    if verdict == "too_large" then
      return invalid("Unzipped size must be smaller than " .. unzipped_limit .. " bytes")
    end
    return invalid("Could not unzip uploaded file. Please check your file.")
  end
  local raw = sha_hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
  return dir, #zip, wire.base64_encode(raw)
end

-- ---------------------------------------------------------------------------------------------
-- VPC ENIs (Hyperplane-like: one per subnet and security-group set)

local function sg_key(groups)
  local sorted = {}
  for i, g in ipairs(groups) do sorted[i] = g end
  table.sort(sorted)
  return table.concat(sorted, ",")
end

local function vpc_config(ctx, p)
  local vc = p.VpcConfig
  if type(vc) ~= "table" or #(vc.SubnetIds or {}) == 0 then return nil end
  local subnets, groups, vpc = {}, {}, nil
  for _, sid in ipairs(vc.SubnetIds) do
    local s, err = ec2.lookup(ctx, "subnet", sid, "InvalidSubnetID.NotFound")
    if not s then return invalid("Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. " ..
      "EC2 Error Message: " .. err.message) end
    if vpc and s.vpc ~= vpc then return invalid("All subnets must be in the same VPC") end
    vpc = s.vpc
    subnets[#subnets + 1] = s.id
  end
  if #(vc.SecurityGroupIds or {}) == 0 then return invalid("SecurityGroupIds are required with SubnetIds") end
  for _, gid in ipairs(vc.SecurityGroupIds) do
    local sg, err = ec2.lookup(ctx, "sg", gid, "InvalidGroup.NotFound")
    if not sg then return invalid("Error occurred while DescribeSecurityGroups. EC2 Error Code: InvalidGroup.NotFound. " ..
      "EC2 Error Message: " .. err.message) end
    if sg.vpc ~= vpc then return invalid("Security groups must be in the function's VPC") end
    groups[#groups + 1] = gid
  end
  return { subnets = subnets, groups = groups, vpc = vpc }
end

-- The shared lambda ENI for (subnet, groups), created when missing.
local function ensure_eni(ctx, fn, subnet_id, groups)
  local key = subnet_id .. "|" .. sg_key(groups)
  local shared = ctx.state:list("eni", function(e) return e.lambda_key == key end)[1]
  if shared then
    shared.release_at, shared.status = nil, "in-use"
    return shared
  end
  local eni, err = ec2.create_eni(ctx, ctx.state:get("subnet", subnet_id), { groups = groups, interface_type = "lambda",
    requester_managed = true, requester_id = "AROAZ4SANDBOXLAMBDA:" .. fn.name,
    description = "AWS Lambda VPC ENI-" .. fn.name })
  if not eni then return nil, err end
  eni.lambda_key = key
  return eni
end

local function attach_enis(ctx, fn)
  fn.enis = {}
  if not fn.vpc then return true end
  for _, sid in ipairs(fn.vpc.subnets) do
    local eni, err = ensure_eni(ctx, fn, sid, fn.vpc.groups)
    if not eni then return nil, err end
    fn.enis[#fn.enis + 1] = eni.id
  end
  return true
end

-- ENIs no function uses any more are released after the transition time, as AWS does it later.
local function schedule_release(ctx)
  local used = {}
  for _, fn in ipairs(ctx.state:list("lambda_fn")) do
    for _, id in ipairs(fn.enis or {}) do used[id] = true end
  end
  for _, eni in ipairs(ctx.state:list("eni", function(e) return e.lambda_key ~= nil end)) do
    if not used[eni.id] and not eni.release_at then
      eni.release_at = os.time() + math.max(ctx.state.transition_s, 0)
      eni.status = "available"
    end
  end
end

--- Releases lambda ENIs whose time has come (called before every request).
-- @tparam table ctx the request context
function lambda.tick(ctx)
  for _, eni in ipairs(ctx.state:list("eni", function(e) return e.release_at ~= nil end)) do
    if os.time() >= eni.release_at then ec2.delete_eni(ctx, eni.id) end
  end
end

-- ---------------------------------------------------------------------------------------------
-- Configuration

local function render(fn, ctx)
  local state = ctx.state:settle(fn)
  local env = {}
  for k, v in pairs(fn.env or {}) do env[k] = v end
  return {
    FunctionName = fn.name, FunctionArn = fn.arn, Runtime = fn.runtime, Role = fn.role, Handler = fn.handler,
    CodeSize = fn.code_size, CodeSha256 = fn.code_sha, Description = fn.description or "", Timeout = fn.timeout,
    MemorySize = fn.memory, LastModified = fn.last_modified, Version = "$LATEST", PackageType = "Zip",
    Architectures = array({ "x86_64" }), Environment = next(env) and { Variables = env } or nil,
    VpcConfig = fn.vpc and { SubnetIds = array(fn.vpc.subnets), SecurityGroupIds = array(fn.vpc.groups), VpcId = fn.vpc.vpc }
      or nil,
    State = state, StateReasonCode = state == "Pending" and "Creating" or nil,
    StateReason = state == "Pending" and "The function is being created." or nil,
    LastUpdateStatus = "Successful", EphemeralStorage = { Size = 512 },
  }
end

-- The execution role: one of the caller's own (iam:PassRole cannot pass another account's role:
-- AWS answers AccessDeniedException before it looks at the role), that Lambda may assume.
local function check_role(ctx, role_arn)
  local account = tostring(role_arn):match("^arn:aws:iam::(%d+):role/")
  if account and account ~= ctx.account then
    return fail("AccessDeniedException", string.format("User: %s is not authorized to perform: iam:PassRole on " ..
      "resource: %s", ctx.arn, role_arn), 403)
  end
  local role = iam.role_by_arn(ctx.state, role_arn)
  if not role or not iam.trusts(role, { service = "lambda.amazonaws.com" }) then
    return invalid("The role defined for the function cannot be assumed by Lambda.")
  end
  return role
end

local function apply_settings(ctx, fn, p)
  if p.Runtime ~= nil then
    if not RUNTIMES[p.Runtime] then
      return invalid("Value " .. tostring(p.Runtime) .. " at 'runtime' failed to satisfy constraint: the sandbox runs " ..
        "Python runtimes only")
    end
    fn.runtime = p.Runtime
  end
  if p.Role ~= nil then
    local role, err = check_role(ctx, p.Role)
    if not role then return nil, err end
    fn.role = p.Role
  end
  if p.Handler ~= nil then fn.handler = p.Handler end
  if p.Description ~= nil then fn.description = p.Description end
  if p.Timeout ~= nil then
    local t = math.tointeger(tonumber(p.Timeout))
    if not t or t < 1 or t > 900 then return invalid("Timeout must be between 1 and 900 seconds") end
    fn.timeout = t
  end
  if p.MemorySize ~= nil then
    local m = math.tointeger(tonumber(p.MemorySize))
    if not m or m < 128 or m > 10240 then return invalid("MemorySize must be between 128 and 10240 MB") end
    fn.memory = m
  end
  if p.Environment ~= nil then fn.env = type(p.Environment.Variables) == "table" and p.Environment.Variables or {} end
  if p.VpcConfig ~= nil then
    local vc, err = vpc_config(ctx, p)
    if vc == nil and err then return nil, err end
    fn.vpc = vc
    local ok
    ok, err = attach_enis(ctx, fn)
    if not ok then return nil, err end
  end
  return true
end

function A.CreateFunction(ctx, p)
  for _, name in ipairs({ "FunctionName", "Role", "Runtime", "Handler" }) do
    if type(p[name]) ~= "string" or p[name] == "" then return invalid("The parameter " .. name .. " is required.") end
  end
  if not p.FunctionName:match("^[%w%-_]+$") or #p.FunctionName > 64 then
    return invalid("1 validation error detected: Value '" .. p.FunctionName .. "' at 'functionName' failed to satisfy constraint")
  end
  local id = ctx.account .. ":" .. p.FunctionName
  if ctx.state:get("lambda_fn", id) then
    return fail("ResourceConflictException", "Function already exist: " .. p.FunctionName, 409)
  end
  if type(p.Code) ~= "table" or type(p.Code.ZipFile) ~= "string" then
    return invalid("The sandbox takes code as Code.ZipFile only")
  end
  local fn = {
    id = id, owner = ctx.account, name = p.FunctionName, timeout = 3, memory = 128, env = {},
    arn = string.format("arn:aws:lambda:%s:%s:function:%s", ctx.region, ctx.account, p.FunctionName),
    last_modified = os.date("!%Y-%m-%dT%H:%M:%S.000+0000"),
  }
  local ok, err = apply_settings(ctx, fn, p)
  if not ok then schedule_release(ctx); return nil, err end
  local dir, size, sha = store_code(ctx, id, p.Code.ZipFile)
  if not dir then fn.enis = {}; schedule_release(ctx); return nil, size end
  fn.code_dir, fn.code_size, fn.code_sha = dir, size, sha
  ctx.state:put("lambda_fn", fn)
  ctx.state:transition(fn, "Pending", "Active")
  local out = render(fn, ctx)
  out.State, out.StateReasonCode, out.StateReason = "Pending", "Creating", "The function is being created."
  return out -- 201, the model's responseCode
end

function A.GetFunction(ctx, p)
  local fn, err = find_function(ctx, p.FunctionName, "GetFunction")
  if not fn then return nil, err end
  return { Configuration = render(fn, ctx), Code = { RepositoryType = "S3",
    Location = "http://127.0.0.1/sandbox/lambda/" .. fn.name .. ".zip" }, Tags = {} }
end

function A.GetFunctionConfiguration(ctx, p)
  local fn, err = find_function(ctx, p.FunctionName, "GetFunctionConfiguration")
  if not fn then return nil, err end
  return render(fn, ctx)
end

function A.ListFunctions(ctx)
  local out = {}
  for _, fn in ipairs(ctx.state:list("lambda_fn", function(f) return f.owner == ctx.account end)) do
    out[#out + 1] = render(fn, ctx)
  end
  return { Functions = array(out) }
end

function A.UpdateFunctionConfiguration(ctx, p)
  local fn, err = find_function(ctx, p.FunctionName, "UpdateFunctionConfiguration")
  if not fn then return nil, err end
  if ctx.state:settle(fn) == "Pending" then
    return fail("ResourceConflictException", "The operation cannot be performed at this time. " ..
      "The function is currently in the following state: Pending", 409)
  end
  local ok
  ok, err = apply_settings(ctx, fn, { Role = p.Role, Handler = p.Handler, Description = p.Description, Timeout = p.Timeout,
    MemorySize = p.MemorySize, Environment = p.Environment, VpcConfig = p.VpcConfig, Runtime = p.Runtime })
  schedule_release(ctx)
  if not ok then return nil, err end
  fn.last_modified = os.date("!%Y-%m-%dT%H:%M:%S.000+0000")
  return render(fn, ctx)
end

function A.DeleteFunction(ctx, p)
  local fn, err = find_function(ctx, p.FunctionName, "DeleteFunction")
  if not fn then return nil, err end
  ctx.state:remove("lambda_fn", fn.id)
  schedule_release(ctx)
  if fn.code_dir then process.remove(fn.code_dir) end
  return {} -- 204, the model's responseCode
end

-- ---------------------------------------------------------------------------------------------
-- Invoke

-- What the function's network looks like: DNS answers and, per database address:port, the
-- loopback address of its backing server when the path is open (nil when it is dropped).
local function network_for(ctx, fn)
  local rds = require "awsnet.sandbox.rds"
  local sb = ctx.sandbox
  local names, routes = {}, {}
  local vpc = fn.vpc and ctx.state:get("vpc", fn.vpc.vpc)
  local dns = not vpc or vpc.dns_support
  local model
  for _, inst in ipairs(ctx.state:list("db_instance", function(i) return ctx.state:settle(i) == "available" end)) do
    local address = rds.resolve(ctx.state, inst.address, fn.vpc and fn.vpc.vpc)
    if address then
      names[inst.address] = address
      local eni = ctx.state:get("eni", inst.eni)
      local targets = { eni.ip }
      if eni.public_ip then targets[#targets + 1] = eni.public_ip end
      for _, ip in ipairs(targets) do
        local key = ip .. ":" .. inst.port
        routes[key] = false
        if fn.vpc and #fn.enis > 0 then
          local result, err
          if not model then model, err = sb:model() end
          if model then result, err = model:trace { src = fn.enis[1], dst = eni.ip, protocol = "tcp", port = inst.port } end
          if result and result.reachable and ip == eni.ip then
            local srv = rds.backing(sb, inst)
            if srv then routes[key] = "127.0.0.1:" .. srv.port end
          elseif ip == eni.ip then
            -- AWS says nothing about a drop; the sandbox's log says where the path ends
            sb:log("lambda %s -> %s:%d dropped: %s", fn.name, ip, inst.port, result and tostring(result.code) or tostring(err))
          end
        end
      end
    end
  end
  return names, dns, routes
end

-- Keys of the function's role (its own account's only), from /dev/urandom like STS's.
local function role_credentials(ctx, fn)
  local role = iam.role_by_arn(ctx.state, fn.role)
  if not role or role.account ~= fn.owner then return {} end
  local st = ctx.state
  local secret_token = require("awsnet.sandbox.state").secret_token
  local key = "ASIA" .. secret_token(16)
  local session = { account = role.account, secret = secret_token(40), token = "IQoJb3JpZ2luX2VjE" .. secret_token(80),
    expires = os.time() + 3600, user_id = role.role_id .. ":" .. fn.name,
    arn = string.format("arn:aws:sts::%s:assumed-role/%s/%s", role.account, role.name, fn.name) }
  st.data.sessions[key] = session
  return { AWS_ACCESS_KEY_ID = key, AWS_SECRET_ACCESS_KEY = session.secret, AWS_SESSION_TOKEN = session.token }
end

local function bootstrap_path()
  return assert(package.searchpath("awsnet.sandbox.lambda_bootstrap", (package.path:gsub("%.lua", ".py"))),
    "lambda_bootstrap.py not found next to the sandbox modules")
end

-- What a finished run gives: {payload, function_error, log}; removes its folder.
local function run_result(work, log_path, started, fn, request_id, result_path)
  local core = require("awsnet.core")
  local duration = (core.httpd.monotonic() - started) * 1000
  local output = process.read_file(log_path) or ""
  local result = wire.json_decode(process.read_file(result_path) or "") or { timeout = true }
  process.remove(work)
  local log = { "START RequestId: " .. request_id .. " Version: $LATEST\n", output }
  local payload, function_error
  if result.ok then
    payload = result.ok
  elseif result.error then
    payload, function_error = wire.json(result.error), "Unhandled"
    log[#log + 1] = string.format("[ERROR] %s: %s\n", tostring(result.error.errorType), tostring(result.error.errorMessage))
  else
    payload = wire.json({ errorMessage = string.format("%s %s Task timed out after %.2f seconds",
      os.date("!%Y-%m-%dT%H:%M:%SZ"), request_id, fn.timeout), errorType = "Sandbox.Timedout" })
    function_error = "Unhandled"
    log[#log + 1] = string.format("%s %s Task timed out after %.2f seconds\n", os.date("!%Y-%m-%dT%H:%M:%SZ"),
      request_id, fn.timeout)
  end
  log[#log + 1] = "END RequestId: " .. request_id .. "\n"
  log[#log + 1] = string.format("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\n",
    request_id, duration, math.ceil(duration), fn.memory)
  return { payload = payload, function_error = function_error, log = table.concat(log) }
end

-- Starts the handler in a child process; returns the run: `run.poll()` gives nil while it goes
-- on, then {payload, function_error, log} (once); `run.cancel()` ends it and its folder.
-- The function's ENI in the network twin when the sandbox has one and the function is in a VPC
-- (its first subnet's: AWS does not say which one a run uses), else nil.
local function twin_eni(ctx, fn)
  local twin = ctx.sandbox.twin
  return twin and fn.vpc and fn.enis and fn.enis[1] and twin:eni(fn.enis[1]) or nil
end

-- Readies the twin's services a run needs (the VPC resolver, the RDS forwarders); nil, err.
local function twin_ready(sb)
  sb.twin:settle()
  local services = require "awsnet.sandbox.twin.services"
  local ok, err = services.resolvers(sb)
  if ok then ok, err = services.forwarders(sb) end
  return ok, err
end

local function start_run(ctx, fn, event)
  local cjson = require "cjson"
  local sb = ctx.sandbox
  local eni = twin_eni(ctx, fn)
  local work = process.tempdir("awsnet-lambda-run")
  local request_id = ctx.request_id
  -- in the twin the handler sees its own root: code, result and event at fixed paths inside
  local out_dir = eni and (work .. "/out") or work
  local inside = eni and "/var/result" or work
  local code_dir = eni and "/var/task" or fn.code_dir
  local spec = {
    code_dir = code_dir, handler = fn.handler, event_path = inside .. "/event.json", timeout = fn.timeout,
    function_name = fn.name, function_arn = fn.arn, memory = fn.memory, request_id = request_id,
    result_path = inside .. "/result.json", env = {},
  }
  local argv = { "/usr/bin/python3", eni and "/var/runtime/bootstrap.py" or bootstrap_path(), "-" }
  if eni then
    -- the kernel is the network: the twin's routes, TGW and filters decide, the VPC resolver names
    local ok, err = twin_ready(sb)
    if not ok then
      process.remove(work)
      return nil, err
    end
    spec.network = "kernel"
    local v = sb.twin:vpc(fn.vpc.vpc)
    argv = require("awsnet.sandbox.twin.services").jail_argv(sb.twin, eni.ns, fn.code_dir, work, v and v.resolver, argv)
  else
    spec.names, spec.dns, spec.routes = network_for(ctx, fn)
  end
  process.write_file(out_dir .. "/event.json", event)
  -- only this environment, as in AWS (the function's variables last, so they win)
  local env = {
    PATH = "/usr/local/bin:/usr/bin:/bin", LANG = "C.UTF-8", HOME = eni and "/tmp" or work, TZ = ":UTC",
    PYTHONDONTWRITEBYTECODE = "1",
    AWS_REGION = ctx.region, AWS_DEFAULT_REGION = ctx.region, AWS_LAMBDA_FUNCTION_NAME = fn.name,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE = tostring(fn.memory), AWS_LAMBDA_FUNCTION_VERSION = "$LATEST",
    AWS_LAMBDA_FUNCTION_TIMEOUT = tostring(fn.timeout), LAMBDA_TASK_ROOT = code_dir,
    AWS_EXECUTION_ENV = "AWS_Lambda_" .. fn.runtime,
  }
  -- the role's keys and the function's variables are secrets: not in the environment the process
  -- starts with, nor on its command line, nor in a file: they come in the spec on its stdin (a
  -- pipe the C core fills before the child starts), which the bootstrap puts into os.environ
  -- before the handler is imported
  for k, v in pairs(role_credentials(ctx, fn)) do spec.env[k] = v end
  for k, v in pairs(fn.env or {}) do spec.env[k] = tostring(v) end
  local core = require("awsnet.core")
  local started = core.httpd.monotonic()
  -- through the C core, in its own process group: a timeout, SIGINT or SIGTERM ends the run
  -- and whatever it started
  local log_path = work .. "/log"
  local result_path = out_dir .. "/result.json"
  local pid, perr = core.process.spawn(argv, { clear_env = true, env = env, stdin_data = cjson.encode(spec),
    stdout = log_path, stderr = log_path, group = true })
  if not pid then
    process.remove(work)
    return nil, errors.new("ServiceException", "the sandbox could not start the function: " .. tostring(perr),
      { status = 500 })
  end
  local run_ = {}
  local finished = false
  local function stop_child()
    if pid then
      core.process.kill(-pid, "KILL")
      core.process.wait(pid, 5, false)
      pid = nil
    end
  end
  function run_.cancel()
    if finished then return end
    finished = true
    stop_child()
    process.remove(work)
  end
  function run_.poll()
    if finished then return nil end
    -- the bootstrap ends the handler at its timeout; past it and a grace, the sandbox does
    if pid and not core.process.wait(pid, 0, false) then
      if core.httpd.monotonic() - started < fn.timeout + 5 then return nil end
      stop_child()
    end
    pid = nil
    finished = true
    return run_result(work, log_path, started, fn, request_id, result_path)
  end
  return run_
end

function A.Invoke(ctx, p)
  local fn, err = find_function(ctx, p.FunctionName, "InvokeFunction")
  if not fn then return nil, err end
  local state = ctx.state:settle(fn)
  if state ~= "Active" then
    return fail("ResourceConflictException", "The operation cannot be performed at this time. " ..
      "The function is currently in the following state: " .. state, 409)
  end
  local kind = p.InvocationType or "RequestResponse"
  if kind == "DryRun" then return { StatusCode = 204 } end
  local event = p.Payload or ""
  if event ~= "" and not wire.json_decode(event) then
    return fail("InvalidRequestContentException", "Could not parse request body into json", 400)
  end
  local run_, rerr = start_run(ctx, fn, event)
  if not run_ then return nil, rerr end
  -- an asynchronous invocation is answered at once, its run goes on in the background
  if kind == "Event" then
    return { StatusCode = 202, _job = run_ }
  end
  -- the answer comes when the run ends: the sandbox polls the job meanwhile and serves others
  local job = { cancel = run_.cancel }
  function job.poll()
    local out = run_.poll()
    if not out then return nil end
    return ctx.render({ StatusCode = 200, ExecutedVersion = "$LATEST", FunctionError = out.function_error,
      LogResult = p.LogType == "Tail" and wire.base64_encode(out.log:sub(-4096)) or nil, Payload = out.payload })
  end
  return { _job = job, _later = true }
end

--- A function as GetFunctionConfiguration and ListFunctions show it.
-- @function render
-- @tparam table fn the function object
-- @tparam table ctx the request context
-- @treturn table the configuration
lambda.render = render

--- Removes the sandbox's scratch folder for code (not the state_dir's).
-- @param sb the sandbox
function lambda.shutdown(sb)
  if sb.lambda_dir and not sb.opts.state_dir then process.remove(sb.lambda_dir) end
  if sb.lambda_guard then sb.lambda_guard.cancel(); sb.lambda_guard = nil end
  sb.lambda_dir = nil
end

return lambda
