--- A local two-account AWS endpoint for the demo and the tests.
--
--   local sandbox = require "awsnet.sandbox"
--   local sb = assert(sandbox.start{port=0, accounts={"111111111111", "222222222222"}})
--   sb.endpoint                  -- "http://127.0.0.1:<port>"
--   sb:serve_for(0.5)            -- answers requests for half a second (or sb:step(timeout_ms))
--   sb:snapshot(), sb:model()    -- its network as describe-* data, and as an awsnet.reach model
--   sb:dns_server()              -- {host, port} of the dnsmasq answering for RDS endpoint names
--   sb:reset()                   -- forgets every resource; sb:stop() ends it all
--   local proc = assert(sandbox.spawn{port=0})  -- the same in its own process (`awsnet sandbox`),
--                                               -- for clients that block: proc.endpoint, proc.stop()
--
-- Credentials: an access key id of 12 digits is that account, with the secret "test" (or
-- opts.secrets[account]); keys returned by STS AssumeRole act as the role's account (their keys
-- come from /dev/urandom). Every request's SigV4 signature is checked: it must sign Host and the
-- body itself (no UNSIGNED-PAYLOAD; an x-amz-content-sha256 must be the body's hash), and its
-- credential scope must name the service the request addresses (query Version and Action, or the
-- REST path), which answers it. Errors never quote a request's secret members (MasterUserPassword,
-- Lambda environment variables, ...).
-- Requests are read and answers written by botocore's service models, through the server side of
-- awsnet.aws.protocol (the client's own wire names and writers): handlers take params and return
-- results by the models' member names. EC2 refuses a parameter its model does not know
-- (UnknownParameter, as AWS does); STS, IAM, RDS, RAM and Lambda ignore one (AWS documents nothing).
-- opts: port (default 4566; 0 = any), accounts, organization (N: an organisation of N accounts,
-- the first of `accounts` its management account; awsnet.sandbox.organizations), regions (the
-- enabled ones DescribeRegions lists; default every region served but one opt-in region, which
-- is disabled), populate ({vpcs = n} per account and enabled region), warm_databases (n MariaDB
-- servers started before serving, for CreateDBInstance: awsnet.sandbox.rds.warm), secrets, region, seed, state_dir (saved world,
-- survives restarts), transition_s (pending -> available time, default 1), faults = {throttle=,
-- error5xx=, reset=, latency_ms=} (rates in 0..1, drawn from the seed; a reset comes after the
-- action ran, so the client cannot tell whether it took effect), max_skew_s (default 900), log
-- (function of a line: where the sandbox reports what clients do not see, such as its backing
-- servers; default stderr), limits (some of sandbox.LIMITS' keys, to change them); faults.rate_limit
-- (requests a second per account, region and service, AWS-style throttling past it); twin ("on",
-- "auto" or "off", the default: the network twin, awsnet.sandbox.twin, realises the VPCs with
-- Linux namespaces; "auto" without the privilege says so once and goes on without it).
--
-- Regions: a request acts in the region of its credential scope, which must be one of the `aws`
-- partition's (awsnet.sandbox.regions); resources belong to an account and a region, and each
-- region has its own zones, ARNs, endpoints and DNS names. IAM roles and STS sessions are global.
--
-- Limits (sandbox.LIMITS): the request head must arrive within 10 s of its first byte and the body
-- within 60 s of the head (a deadline, not reset by each byte: 408 and the connection closes);
-- bodies up to 1 MiB, but CreateFunction and UpdateFunctionCode up to AWS's 69905067 bytes (a
-- 50 MB zip, base64 in JSON) and Invoke up to AWS's 6 MB payload, answered past it with 413 in the
-- service's protocol (Lambda's RequestEntityTooLargeException / RequestTooLargeException); a
-- function's code at most 50 MB zipped and 250 MB unzipped (a zip bomb is refused). An Invoke
-- runs in a child process: the sandbox answers it when the run ends and serves other clients
-- meanwhile.
-- @module awsnet.sandbox
local core = require "awsnet.core"
local errors = require "awsnet.errors"
local wire = require "awsnet.sandbox.wire"
local state_mod = require "awsnet.sandbox.state"
local auth = require "awsnet.sandbox.auth"
local aws_model = require "awsnet.aws.model"
local protocol = require "awsnet.aws.protocol"
local process = require "awsnet.svc.process"

local sandbox = {}

-- Each service: its name (that of its model), protocol and module.
local SERVICES = {
  ec2 = { name = "ec2", protocol = "ec2", module = "awsnet.sandbox.ec2" },
  sts = { name = "sts", protocol = "query", module = "awsnet.sandbox.sts" },
  iam = { name = "iam", protocol = "query", module = "awsnet.sandbox.iam" },
  rds = { name = "rds", protocol = "query", module = "awsnet.sandbox.rds" },
  ram = { name = "ram", protocol = "json", module = "awsnet.sandbox.ram" },
  lambda = { name = "lambda", protocol = "json", module = "awsnet.sandbox.lambda" },
  organizations = { name = "organizations", protocol = "json", module = "awsnet.sandbox.organizations",
    faults = { { "TooManyRequestsException", 400 }, { "ServiceException", 500 } } },
}

-- The service models (botocore's, through awsnet.aws.model), loaded once per process: requests
-- are read and answers written by them (awsnet.aws.protocol's server side), so the sandbox speaks
-- exactly what the clients parse.
local models = {}
local function model_of(svc)
  local m = models[svc.name]
  if not m then
    m = assert(aws_model.load(svc.name))
    models[svc.name] = m
  end
  return m
end

-- Error codes for injected faults, per protocol: {throttle code, status}, {5xx code, status}.
local FAULTS = {
  ec2 = { { "RequestLimitExceeded", 503 }, { "InternalError", 500 } },
  query = { { "Throttling", 400 }, { "InternalFailure", 500 } },
  json = { { "ThrottlingException", 400 }, { "ServiceUnavailableException", 503 } },
}

--- The sandbox's limits (opts.limits overrides some): seconds for a request's head and body,
-- body bytes per operation, a function's code size.
-- @table LIMITS
sandbox.LIMITS = {
  head_timeout_s = 10, body_timeout_s = 60,
  body_bytes = 1024 * 1024,          -- every operation but these below (AWS gives no figure)
  code_request_bytes = 69905067,     -- Lambda CreateFunction, UpdateFunctionCode (AWS's figure)
  invoke_bytes = 6291456,            -- Lambda Invoke, a synchronous payload (AWS's 6 MB)
  code_zip_bytes = 52428800,         -- a deployment package uploaded directly (50 MB)
  code_unzipped_bytes = 262144000,   -- unzipped (250 MB)
}

local Sandbox = {}
Sandbox.__index = Sandbox

local function error_response(svc, request_id, code, message, status)
  return protocol.render_error(model_of(svc), { code = code, message = message, status = status or 400 },
    { request_id = request_id })
end

-- Turns a failure value (errors object with code/message/status) into the protocol's shape.
local function failure(svc, request_id, err)
  return error_response(svc, request_id, err.code, err.message, err.status)
end

--- The module of a service, loaded on first use.
-- @within Sandbox
-- @tparam string name "ec2", "sts", "iam", "rds", "ram" or "lambda"
-- @treturn table the module (awsnet.sandbox.<name>)
function Sandbox:service_module(name)
  local mod = self.modules[name]
  if not mod then
    mod = require(SERVICES[name].module)
    self.modules[name] = mod
  end
  return mod
end

--- A deterministic stream for faults, separate from the ids so faults do not change ids.
-- @within Sandbox
-- @treturn number the next draw, in [0, 1)
function Sandbox:fault_roll()
  self.fault_rng = state_mod.xorshift32(self.fault_rng)
  return (self.fault_rng % 1000000) / 1000000
end

-- Reads the action and its parameters from the request, per protocol.
local function read_call(svc, mod, req)
  if svc.protocol == "json" then
    local path = wire.split_target(req.target)
    local action = mod.route(req.method, path, req.headers)
    local m = model_of(svc)
    if not action or not m.operations[action] or not mod.actions[action] then
      return errors.fail("UnknownOperationException", "Unknown operation " .. req.method .. " " .. path, { status = 404 })
    end
    -- RAM and Lambda (rest-json): a body member, query parameter or header the model does not
    -- know is accepted and ignored. AWS documents no behaviour for them (unlike EC2's
    -- UnknownParameter), and its SDKs send only what the model has.
    local params, err = protocol.parse_request(m, action, req)
    if not params then
      if err.code == "invalid_request" then
        return errors.fail("SerializationException", "The request body is not valid JSON")
      end
      local code = svc.name == "lambda" and "InvalidParameterValueException" or "InvalidParameterException"
      return errors.fail(code, "Invalid value for " .. tostring(err.path) .. ": " .. err.message, { status = 400 })
    end
    return action, params
  end
  local _, query = wire.split_target(req.target)
  local flat = req.method == "POST" and wire.parse_form(req.body) or query
  local action = flat.Action
  if not action then return errors.fail("MissingAction", "The request must contain the parameter Action") end
  local m = model_of(svc)
  if not m.operations[action] or not mod.actions[action] then
    return errors.fail("InvalidAction", "The action " .. action .. " is not valid for this web service.")
  end
  -- EC2 refuses a parameter its model does not know, as AWS does ("UnknownParameter"). For the
  -- query services (STS, IAM, RDS) AWS documents no behaviour: the sandbox accepts and ignores
  -- what the model does not know, as it does for JSON bodies.
  local unknown
  local params, err = protocol.parse_request(m, action, req, { on_unknown = function(key)
    unknown = unknown or key
  end })
  if not params then
    local code = svc.protocol == "ec2" and "InvalidParameterValue" or "ValidationError"
    return errors.fail(code, "Invalid value for " .. tostring(err.path) .. ": " .. err.message, { status = 400 })
  end
  if unknown and svc.protocol == "ec2" then
    return errors.fail("UnknownParameter", "The parameter " .. unknown .. " is not recognized", { status = 400 })
  end
  return action, params
end

-- The query APIs' Version, per service: what a query request addresses besides its Action.
local VERSION_SERVICE = { ["2016-11-15"] = "ec2", ["2011-06-15"] = "sts", ["2010-05-08"] = "iam", ["2014-10-31"] = "rds" }

-- The service a request addresses by its path (REST-JSON), or its Version and Action (query);
-- nil when it names none the sandbox knows (the credential scope then chooses, and the service
-- refuses what it does not have). `scoped` is the credential scope's service.
local function addressed_service(self, req, scoped)
  local path, query = wire.split_target(req.target)
  if path ~= "/" and path ~= "" then
    if path:find("^/2015%-03%-31/functions") then return "lambda" end
    if self:service_module("ram").route(req.method, path) then return "ram" end
    return nil
  end
  if self:service_module("organizations").route(req.method, path, req.headers) then return "organizations" end
  local flat = req.method == "POST" and wire.parse_form(req.body) or query
  if VERSION_SERVICE[flat.Version] then return VERSION_SERVICE[flat.Version] end
  if not flat.Action then return nil end
  if SERVICES[scoped or ""] and SERVICES[scoped].protocol ~= "json" and self:service_module(scoped).actions[flat.Action] then
    return scoped
  end
  for _, name in ipairs({ "ec2", "sts", "iam", "rds" }) do
    if self:service_module(name).actions[flat.Action] then return name end
  end
end

-- Request members whose values never appear in an error or a log line.
local SECRET_MEMBERS = { MasterUserPassword = true, NewMasterUserPassword = true, Password = true,
  SecretAccessKey = true, SessionToken = true, Variables = true }

-- The secret values of a request's parameters (Lambda's environment variables included).
local function secrets_of(params, out, depth)
  out = out or {}
  if type(params) ~= "table" or (depth or 0) > 6 then return out end
  for k, v in pairs(params) do
    if SECRET_MEMBERS[k] and type(v) == "string" then out[#out + 1] = v
    elseif SECRET_MEMBERS[k] and type(v) == "table" then
      for _, x in pairs(v) do if type(x) == "string" then out[#out + 1] = x end end
    elseif type(v) == "table" then secrets_of(v, out, (depth or 0) + 1) end
  end
  return out
end

-- `text` with every secret value of the request replaced by "***".
local function redact(text, secrets)
  text = tostring(text)
  for _, secret in ipairs(secrets) do
    if #secret >= 3 then
      local at = text:find(secret, 1, true)
      while at do
        text = text:sub(1, at - 1) .. "***" .. text:sub(at + #secret)
        at = text:find(secret, at + 3, true)
      end
    end
  end
  return text
end

local function render(svc, action, result, request_id)
  return protocol.render(model_of(svc), action, result, { request_id = request_id })
end

-- The Lambda operations with their own body limits: method and path -> operation, limit key, code.
local LAMBDA_LIMITS = {
  { "POST", "^/2015%-03%-31/functions/?$", "CreateFunction", "code_request_bytes", "RequestEntityTooLargeException" },
  { "PUT", "^/2015%-03%-31/functions/[^/]+/code$", "UpdateFunctionCode", "code_request_bytes",
    "RequestEntityTooLargeException" },
  { "POST", "^/2015%-03%-31/functions/[^/]+/invocations$", "InvokeFunction", "invoke_bytes", "RequestTooLargeException" },
}

--- The body limit of a request, from its head (the httpd limiter): bytes, and the answer past it.
-- Lambda's operations answer with AWS's codes and messages ("Request must be smaller than
-- 69905067 bytes for the CreateFunction operation"); the others with 413
-- `RequestEntityTooLarge` in the protocol of the credential scope's service (AWS documents no
-- code for them).
-- @within Sandbox
-- @tparam table head {method, target, headers}
-- @treturn integer the limit in bytes
-- @treturn table the response for a body past it
function Sandbox:body_limit(head)
  local path = head.target:match("^[^?]*")
  local limits, svc = self.limits, nil
  local op, limit, code = nil, limits.body_bytes, "RequestEntityTooLarge"
  for _, l in ipairs(LAMBDA_LIMITS) do
    if head.method == l[1] and path:find(l[2]) then op, limit, code, svc = l[3], limits[l[4]], l[5], SERVICES.lambda end
  end
  if not svc then
    local scoped = auth.parse_authorization(head.headers.authorization)
    svc = SERVICES[scoped and scoped.service or ""] or SERVICES.sts
  end
  -- not from the seeded stream: a refused request does not change the ids of the others
  self.refused = (self.refused or 0) + 1
  local request_id = string.format("00000000-0000-4000-a000-%012x", self.refused)
  local message = "Request must be smaller than " .. limit .. " bytes" .. (op and (" for the " .. op .. " operation") or "")
  return limit, error_response(svc, request_id, code, message, 413)
end

--- Answers one HTTP request (the httpd handler).
-- @within Sandbox
-- @tparam table req {method, target, headers, body} as the C httpd gives it
-- @treturn table the response {status, headers, body, delay_ms}, or {reset = true}; AWS errors are
-- responses in the service's protocol (signature, InvalidAction, injected faults, InternalFailure);
-- or {defer = true} when an action's job answers later (req.id names the connection), which
-- `step` polls
function Sandbox:handle(req)
  local request_id = self.state:request_id()
  local scoped = auth.parse_authorization(req.headers.authorization)
  local identity, svc_name, err = auth.check(self, req, addressed_service(self, req, scoped and scoped.service))
  local svc = SERVICES[svc_name or ""] or SERVICES.sts
  if not identity then return failure(svc, request_id, err) end
  local mod = self:service_module(svc_name)
  local action, params = read_call(svc, mod, req)
  if not action then return failure(svc, request_id, params) end
  local fn = mod.actions[action]
  if not fn then
    return error_response(svc, request_id, "InvalidAction", "The action " .. action .. " is not valid for this web service.")
  end
  local response = self:injected_fault(svc, request_id, identity.account .. "/" .. scoped.region .. "/" .. svc.name)
  if response then return response end
  -- the region is the credential scope's (auth.check refused a region the sandbox does not serve):
  -- the request sees that region's resources only
  local region = scoped.region
  local ctx = {
    sandbox = self, state = self.state:in_region(region), account = identity.account, arn = identity.arn,
    user_id = identity.user_id, region = region, request_id = request_id,
    -- an answer given later (a Lambda run's): the result written by the operation's output shape
    render = function(result) return render(svc, action, result, request_id) end,
  }
  for _, m in pairs(self.modules) do
    if m.tick then m.tick(ctx) end
  end
  local ok, result, ferr = pcall(fn, ctx, params)
  if not ok then
    self:log("%s %s: %s", svc_name, action, redact(result, secrets_of(params)))
    return error_response(svc, request_id, "InternalFailure", "The sandbox failed on this request.", 500)
  end
  if self.state_path then self.state:save(self.state_path) end
  -- a reset after the action ran: the client cannot tell whether its call took effect
  if (self.faults.reset or 0) > 0 and self:fault_roll() < self.faults.reset then return { reset = true } end
  -- a job (a Lambda run) answers when it ends, or goes on after the answer below
  if type(result) == "table" and result._job then
    local later = result._later == true
    self.jobs[#self.jobs + 1] = { id = later and req.id or nil, job = result._job, delay_ms = self.faults.latency_ms }
    if later and req.id then return { defer = true } end
    if later then   -- called without a connection: wait for it here
      local job = table.remove(self.jobs)
      local out = job.job.poll()
      while not out do core.process.sleep(0.01, false); out = job.job.poll() end
      return out
    end
  end
  if result == nil then
    -- an error may quote the request: never its secrets
    local secrets = secrets_of(params)
    response = error_response(svc, request_id, ferr.code, redact(ferr.message, secrets), ferr.status)
  else response = render(svc, action, result, request_id) end
  response.delay_ms = self.faults.latency_ms
  -- the network twin follows a change before the call that made it answers
  if result ~= nil and self.twin then return require("awsnet.sandbox.twin.follow").call(self, req, action, response) end
  return response
end

--- A throttle or a server error in place of the answer, at the configured rates (nil: none).
-- With faults.rate_limit, each account x region x service has a token bucket as AWS throttles
-- (rate_limit requests a second, as many at once): a request that finds it empty is throttled.
-- @within Sandbox
-- @tparam table svc the service's entry (protocol, module, namespace)
-- @tparam string request_id the request's id
-- @tparam[opt] string key the caller's account, region and service
-- @treturn ?table the error response
function Sandbox:injected_fault(svc, request_id, key)
  local faults, response = self.faults, nil
  local over = false
  if (faults.rate_limit or 0) > 0 and key then
    local now, rate = core.httpd.monotonic(), faults.rate_limit
    self.buckets = self.buckets or {}
    local b = self.buckets[key] or { tokens = rate, at = now }
    self.buckets[key] = b
    b.tokens, b.at = math.min(rate, b.tokens + (now - b.at) * rate), now
    if b.tokens >= 1 then b.tokens = b.tokens - 1 else over = true end
  end
  if over or ((faults.throttle or 0) > 0 and self:fault_roll() < faults.throttle) then
    local f = (svc.faults or FAULTS[svc.protocol])[1]
    response = error_response(svc, request_id, f[1], "Rate exceeded", f[2])
  elseif (faults.error5xx or 0) > 0 and self:fault_roll() < faults.error5xx then
    local f = (svc.faults or FAULTS[svc.protocol])[2]
    response = error_response(svc, request_id, f[1], "We encountered an internal error. Please try again.", f[2])
  end
  if response then response.delay_ms = faults.latency_ms end
  return response
end

--- The sandbox's world as the describe-* table awsnet.reach.load takes (per account and region).
-- @within Sandbox
-- @treturn table {accounts = {[id] = {[region] = {Key = array}}}}
function Sandbox:snapshot()
  return require("awsnet.sandbox.snapshot").build(self.state, function(account, ctx)
    ctx.sandbox = self
    local st = ctx.state
    local extra = { DBInstances = {}, Functions = {} }
    local rds, lambda = self:service_module("rds"), self:service_module("lambda")
    for _, inst in ipairs(st:list("db_instance", function(i) return i.owner == account and st:settle(i) ~= "deleted" end)) do
      extra.DBInstances[#extra.DBInstances + 1] = rds.render(inst, ctx)
    end
    for _, fn in ipairs(st:list("lambda_fn", function(f) return f.owner == account end)) do
      extra.Functions[#extra.Functions + 1] = lambda.render(fn, ctx)
    end
    return extra
  end)
end

--- A reach model of the sandbox's network right now; nil, err when it cannot be built.
-- @within Sandbox
-- @return the awsnet.reach model, or nil, err ("invalid_snapshot")
function Sandbox:model()
  return require("awsnet.reach").load(self:snapshot())
end

--- The sandbox's DNS server {host, port}, started on first use; nil, err if it cannot start.
-- @within Sandbox
-- @treturn table {host, port}, or nil, err (dnsmasq could not start)
function Sandbox:dns_server()
  if not self.dns then
    local ok, err = self:service_module("rds").sync_dns(self, true)
    if not ok then return nil, err end
  end
  return { host = self.dns.host, port = self.dns.port }
end

--- Writes a line to the sandbox's log (opts.log, a function of a line; default stderr).
-- @within Sandbox
-- @tparam string fmt a string.format format
-- @param ... its values
function Sandbox:log(fmt, ...)
  local line = "awsnet sandbox: " .. string.format(fmt, ...)
  if self.opts.log then self.opts.log(line) else io.stderr:write(line, "\n") end
end

--- Answers the deferred requests whose jobs have ended (and forgets background jobs that ended).
-- @within Sandbox
-- @treturn integer jobs that ended
function Sandbox:poll_jobs()
  local ended = 0
  for i = #self.jobs, 1, -1 do
    local j = self.jobs[i]
    local ok, response = pcall(j.job.poll)
    if not ok then
      self:log("%s", tostring(response))
      response = { status = 500, headers = { ["Content-Type"] = "text/plain" }, body = "sandbox failure" }
    end
    if response then
      table.remove(self.jobs, i)
      ended = ended + 1
      if j.id and self.server then
        response.headers = response.headers or {}
        response.headers.Date = os.date("!%a, %d %b %Y %H:%M:%S GMT")
        response.delay_ms = j.delay_ms
        self.server:respond(j.id, response)
      end
    end
  end
  return ended
end

-- One step of the server, then the jobs: while a job runs, in short slices so its answer goes
-- out soon after it ends.
local function step_once(self, slice_ms)
  if #self.jobs > 0 then slice_ms = math.min(slice_ms, 10) end
  local served = self.server:step(slice_ms, self.handler, self.limiter)
  if #self.jobs > 0 then self:poll_jobs() end
  if self.twin then require("awsnet.sandbox.twin.follow").tick(self) end
  return served
end

--- Runs `fn` with the network twin's following held, then realises the whole change at once
-- (awsnet.sandbox.twin.follow.batch); returns fn's results.
-- @within Sandbox
-- @tparam function fn what to do
-- @return what fn returned
function Sandbox:twin_batch(fn) return require("awsnet.sandbox.twin.follow").batch(self, fn) end

--- Serves requests that arrive within `timeout_ms`; returns how many were answered.
-- After SIGINT or SIGTERM (process.handle_interrupts) it stops the sandbox and raises the error
-- {code = "interrupted", signal}: a loop around it ends there (`serve` returns it instead).
-- @within Sandbox
-- @tparam[opt=0] integer timeout_ms how long to wait for a request
-- @treturn integer requests answered
-- @raise the interrupt error, once the sandbox is stopped
function Sandbox:step(timeout_ms)
  local clock = core.httpd.monotonic
  local deadline = clock() + (timeout_ms or 0) / 1000
  local served = 0
  repeat
    local stop = self:stop_if_interrupted()
    if stop then error(stop, 0) end
    -- in slices, so that an interrupt is seen soon even if it came just before the poll
    local left_ms = math.floor((deadline - clock()) * 1000)
    served = served + step_once(self, math.max(0, math.min(left_ms, 100)))
  until served > 0 or clock() >= deadline
  return served
end

--- Serves until SIGINT or SIGTERM arrives (once process.handle_interrupts has run), then stops
-- the sandbox: its databases, DNS server and Lambda runs, and removes its folders.
-- @within Sandbox
-- @return nil, err {code = "interrupted", signal = "SIGINT"|"SIGTERM"}
function Sandbox:serve()
  while true do
    local stop = self:stop_if_interrupted()
    if stop then return nil, stop end
    step_once(self, 100)
  end
end

--- Stops the sandbox when SIGINT or SIGTERM has arrived; returns the interrupt error then.
-- @within Sandbox
-- @return the error {code = "interrupted", signal}, or nil
function Sandbox:stop_if_interrupted()
  local stop = process.interrupted()
  if not stop then return nil end
  self:stop()
  return errors.new("interrupted", stop.message .. ": the sandbox stopped serving, its servers stopped", stop)
end

--- Serves for `seconds` (fractions allowed); returns how many requests were answered.
-- @within Sandbox
-- @tparam number seconds how long
-- @treturn integer requests answered
function Sandbox:serve_for(seconds)
  local clock = core.httpd.monotonic
  local deadline = clock() + seconds
  local served = 0
  repeat
    local left_ms = math.floor((deadline - clock()) * 1000)
    served = served + self:step(math.max(0, math.min(left_ms, 50)))
  until clock() >= deadline
  return served
end

--- Forgets every resource and session (accounts stay) and stops the databases behind them.
-- @within Sandbox
function Sandbox:reset()
  for id, srv in pairs(self.databases or {}) do srv:stop(); self.databases[id] = nil end
  self.state = state_mod.new(self.opts)
  if self.dns then self:service_module("rds").sync_dns(self) end
  if self.state_path then self.state:save(self.state_path) end
end

--- Stops serving and stops the servers behind the services (databases, DNS); also on `__close`
-- and `__gc`.
-- @within Sandbox
function Sandbox:stop()
  for _, j in ipairs(self.jobs or {}) do j.job.cancel() end
  self.jobs = {}
  if self.server then self.server:close(); self.server = nil end
  for _, mod in pairs(self.modules) do
    if mod.shutdown then mod.shutdown(self) end
  end
  if self.twin then self.twin:stop() end
  if process.interrupted() then
    process.interrupt_note("the sandbox stopped its databases, DNS server and Lambda runs and removed its temporary " ..
      "folders" .. (self.state_path and ("; its world is saved in " .. self.state_path) or ""))
  end
end
Sandbox.__close = Sandbox.stop
Sandbox.__gc = Sandbox.stop

--- Starts a sandbox in this Lua process (serve it with step/serve_for); nil, err on failure.
-- @tparam[opt] table opts {port, accounts, secrets, region, seed, state_dir, transition_s,
-- faults, max_skew_s, log} (module comment)
-- @return the sandbox (`sb:serve_for`, `sb:model`, `sb:stop`, ...), or nil, err ("in_use" when
-- the port is taken, "listen", or an error reading the saved world in state_dir)
function sandbox.start(opts)
  opts = opts or {}
  assert(type(opts) == "table", "sandbox.start: opts must be a table")
  local organizations = require "awsnet.sandbox.organizations"
  if opts.organization then opts = organizations.options(opts) end
  local state_path, st
  if opts.state_dir then
    -- the saved world holds secrets (session keys, master passwords): a folder made here is the
    -- owner's only; one that exists keeps its permissions (the state file itself is 0600)
    local made, merr = process.call({ "mkdir", "-p", "-m", "700", "--", opts.state_dir }, { interruptible = false })
    if not made then return nil, merr end
    state_path = opts.state_dir .. "/sandbox-state.json"
    local err
    st, err = state_mod.load(state_path, opts)
    if err then return nil, err end
  end
  st = st or state_mod.new(opts)
  -- the models first: a sandbox without them cannot speak, and the first client does not wait
  for _, svc in pairs(SERVICES) do
    if not models[svc.name] then
      local m, merr = aws_model.load(svc.name)
      if not m then return nil, merr end
      models[svc.name] = m
    end
  end
  local limits = {}
  for k, v in pairs(sandbox.LIMITS) do limits[k] = (opts.limits or {})[k] or v end
  local largest = math.max(limits.body_bytes, limits.code_request_bytes, limits.invoke_bytes)
  local server, msg, code = core.httpd.listen { host = "127.0.0.1", port = opts.port or 4566,
    max_body_bytes = largest, head_timeout_ms = math.floor(limits.head_timeout_s * 1000),
    body_timeout_ms = math.floor(limits.body_timeout_s * 1000) }
  if not server then return errors.fail(code == "in_use" and "in_use" or "listen", msg) end
  local self = setmetatable({
    opts = opts, state = st, state_path = state_path, server = server, port = server:port(),
    faults = opts.faults or {}, fault_rng = ((opts.seed or 1) * 40503) % 4294967296 + 7,
    modules = {}, max_skew_s = opts.max_skew_s or 900, limits = limits, jobs = {},
    regions = require("awsnet.sandbox.regions").plan(opts.regions),
  }, Sandbox)
  local twin_err
  self.twin, twin_err = require("awsnet.sandbox.twin").start({ mode = opts.twin, log = opts.log })
  if twin_err then server:close(); return nil, twin_err end
  if opts.organization then organizations.setup(self, opts.accounts) end
  if opts.populate then organizations.populate(self, self.regions.enabled, opts.populate) end
  if (opts.warm_databases or 0) > 0 then
    local ok, werr = self:service_module("rds").warm(self, opts.warm_databases)
    if not ok then self:stop(); return nil, werr end
  end
  self.limiter = function(head) return self:body_limit(head) end
  self.endpoint = "http://127.0.0.1:" .. self.port
  -- a bug in the sandbox answers 500 and leaves the server running
  self.handler = function(req)
    local ok, response = pcall(self.handle, self, req)
    if not ok then
      self:log("%s", tostring(response))
      response = { status = 500, headers = { ["Content-Type"] = "text/plain" }, body = "sandbox failure" }
    end
    -- clients correct their clock from it, as they do against AWS
    if response.headers then response.headers.Date = os.date("!%a, %d %b %Y %H:%M:%S GMT") end
    return response
  end
  return self
end

-- The `awsnet` command of this checkout (bin/awsnet next to lua/), else the installed one.
local function awsnet_command()
  local here = package.searchpath("awsnet.sandbox", package.path)
  local root = here and here:match("^(.-)/?lua/awsnet/sandbox%.lua$")
  if root then
    if root == "" then root = "." end
    if root:sub(1, 1) ~= "/" then root = (os.getenv("PWD") or ".") .. "/" .. root end
    local bin = root .. "/bin/awsnet"
    if io.open(bin, "r") then return { "lua5.4", bin } end
  end
  return { "awsnet" }
end

--- Runs a sandbox in its own process (`awsnet sandbox`), for clients that block, such as the AWS
-- CLI. opts as for start plus `log` (file for its output); port 0 or nil picks a free port;
-- twin "auto", "on" or "off" (the default here, unlike the command's auto).
-- Returns {endpoint, port, dns = {host, port}, pid, stop()} once it listens, or nil, err.
-- @tparam[opt] table opts {port, accounts, seed, state_dir, transition_s, faults, log, twin}
-- @treturn table the handle, or nil, err ("start", with the end of its log)
function sandbox.spawn(opts)
  opts = opts or {}
  local dir = process.tempdir("awsnet-sandbox")
  local log = opts.log or (dir .. "/sandbox.log")
  for attempt = 1, 5 do
    local port = (opts.port and opts.port ~= 0) and opts.port or process.free_port()
    local argv = awsnet_command()
    for _, a in ipairs({ "sandbox", "--port", tostring(port), "--seed", tostring(opts.seed or 1) }) do argv[#argv + 1] = a end
    if opts.accounts then argv[#argv + 1] = "--accounts"; argv[#argv + 1] = table.concat(opts.accounts, ",") end
    for _, o in ipairs({ { "--organization", opts.organization }, { "--vpcs", opts.populate and opts.populate.vpcs },
      { "--warm-databases", opts.warm_databases },
      { "--regions", opts.regions and table.concat(opts.regions, ",") } }) do
      if o[2] then argv[#argv + 1] = o[1]; argv[#argv + 1] = tostring(o[2]) end
    end
    if opts.state_dir then argv[#argv + 1] = "--state-dir"; argv[#argv + 1] = opts.state_dir end
    if opts.transition_s then argv[#argv + 1] = "--transition"; argv[#argv + 1] = tostring(opts.transition_s) end
    argv[#argv + 1] = "--twin"; argv[#argv + 1] = opts.twin or "off"
    if opts.faults then
      local parts = {}
      for k, v in pairs(opts.faults) do parts[#parts + 1] = k .. "=" .. v end
      argv[#argv + 1] = "--faults"; argv[#argv + 1] = table.concat(parts, ",")
    end
    os.remove(log)
    -- under `make check` the sandbox process runs the sanitised core too, so it needs the runtimes
    local env = os.getenv("AWSNET_SANITIZED") and { LD_PRELOAD = os.getenv("LD_PRELOAD") or "" } or {}
    -- its scratch folders (dnsmasq's, the databases') inside its own, which stop() removes: a
    -- SIGTERM ends the Lua process before it could remove them itself
    env.TMPDIR = dir
    local proc = process.spawn(argv, { log = log, cleanup_dir = dir, env = env })
    local up, err = process.wait_until(function()
      local text = process.read_file(log) or ""
      return not proc.alive() or text:find("listening on", 1, true) ~= nil
    end, 30, "the sandbox to listen")
    if err and err.code == "interrupted" then
      proc.stop()
      process.remove(dir)
      return nil, err
    end
    if up and proc.alive() then
      local text = process.read_file(log) or ""
      local handle = { port = port, endpoint = "http://127.0.0.1:" .. port, pid = proc.pid, proc = proc, log = log,
        dns = { host = text:match("DNS for %S+ on ([%d.]+):%d+"), port = tonumber(text:match("DNS for %S+ on [%d.]+:(%d+)")) } }
      function handle.stop()
        proc.stop()
        process.remove(dir)
      end
      return handle
    end
    proc.stop()
    local text = process.read_file(log) or ""
    if attempt == 5 or (opts.port and opts.port ~= 0) or not text:find("in_use", 1, true) then
      process.remove(dir)
      return errors.fail("start", "the sandbox did not start: " .. text:sub(-1000))
    end
  end
end

return sandbox
