--- Signed AWS API calls: clients for ec2 (EC2 query), sts, iam, rds (query), ram and lambda
-- (REST-JSON), with retries, clock-skew correction, pagination and waiters.
--
--   local aws = require "awsnet.aws"
--   local ec2 = aws.client("ec2", {region=, profile=, credentials=, endpoint=, env=, ...})
--   local vpcs, err = ec2:call("DescribeVpcs", {Filter = {{Name = "vpc-id", Value = {"vpc-1"}}}})
--   for page, err in ec2:pages("DescribeRouteTables", params) do ... end  -- page false + err on failure
--   local last, err = ec2:wait("TransitGatewayAvailable", {TransitGatewayId = {id}}, {timeout = 600})
--   local results, errs = aws.call_many{{ec2, "DescribeVpcs"}, {rds, "DescribeDBInstances"}, ...}
--   local pages, errs = aws.pages_many{{ec2, "DescribeSubnets"}, {ec2, "DescribeRouteTables"}, ...}
--
-- `call_many` runs all calls at once over one curl multi (each with its own retries) and returns
-- results[i] or errs[i] for calls[i]; `pages_many` does the same following every call's pages
-- (pages[i] is the array of pages). Parameters and results: see aws/query.lua and
-- aws/restjson.lua. Errors: `nil, err` with code (AWS's code, or "no_credentials", "no_region",
-- "invalid_response", "timeout", "refused", "connection", "http_<status>", ...), message,
-- status, request_id, op ("ec2:DescribeVpcs") and attempts.
--
-- Client options: region (else AWS_REGION, AWS_DEFAULT_REGION, the profile's; IAM needs none),
-- profile, credentials (a table, or a provider from awsnet.credentials), endpoint (else
-- AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true;
-- else https://<service>.<region>.amazonaws.com, IAM's global endpoint, amazonaws.com.cn in
-- China), env (a table replacing the process environment), max_attempts (else AWS_MAX_ATTEMPTS,
-- the profile's max_attempts, 3), retry_mode ("standard", "adaptive" — treated as standard — or
-- "legacy", default 5 attempts), timeout, connect_timeout, ca_file (else AWS_CA_BUNDLE), verify, http (an
-- awsnet.http client), and for tests clock (epoch seconds), sleep(seconds), random() -> [0, 1).
--
-- Retries follow the SDKs' standard mode: throttling codes, transient codes, HTTP 500/502/503/504
-- and connection failures are retried with exponential backoff and full jitter capped at 20 s,
-- drawing on a retry quota of 500 (5 per retry, 10 after a timeout or connection failure);
-- validation and authorisation errors are never retried. When a signature is refused for its
-- time (RequestTimeTooSkewed, SignatureDoesNotMatch, ...) and the response's Date is 5 minutes
-- or more from the local clock, the client adopts the server's clock and retries once.
-- @module awsnet.aws
local core = require "awsnet.core"
local credentials = require "awsnet.credentials"
local errors = require "awsnet.errors"
local http = require "awsnet.http"
local query = require "awsnet.aws.query"
local restjson = require "awsnet.aws.restjson"
local services = require "awsnet.aws.services"
local sigv4 = require "awsnet.sigv4"
local time = require "awsnet.aws.time"
local waiters = require "awsnet.aws.waiters"

local aws = {}

local MAX_BACKOFF = 20
local QUOTA = 500
local RETRY_COST, TIMEOUT_COST = 5, 10
local SKEW_LIMIT = 300

local THROTTLING = {}
for _, c in ipairs({ "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
  "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
  "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown",
  "PriorRequestNotComplete", "EC2ThrottledException" }) do THROTTLING[c] = true end
local TRANSIENT = { RequestTimeout = true, RequestTimeoutException = true, InternalError = true,
  InternalFailure = true, ServiceUnavailable = true, timeout = true, refused = true, connection = true }
local TRANSIENT_STATUS = { [500] = true, [502] = true, [503] = true, [504] = true }
local SKEW_CODES = { RequestTimeTooSkewed = true, RequestExpired = true, RequestInTheFuture = true,
  InvalidSignatureException = true, SignatureDoesNotMatch = true, AuthFailure = true }

local protocols = { ec2 = query, query = query, ["rest-json"] = restjson }

local Client = {}
Client.__index = Client
Client.__name = "awsnet.aws.client"

function Client.__tostring(c)
  return string.format("awsnet.aws.client %s %s %s", c.service, c.region or "(no region)", c.endpoint or "")
end

local function env_true(v) return v ~= nil and v:lower() == "true" end

local function default_endpoint(svc, region)
  if not region then
    if not svc.global then return nil end
    region = "us-east-1"
  end
  local suffix = region:match("^cn%-") and "amazonaws.com.cn" or "amazonaws.com"
  if svc.global then
    if region:match("^cn%-") then return "https://iam.cn-north-1.amazonaws.com.cn", "cn-north-1" end
    if region:match("^us%-gov%-") then return "https://iam.us-gov.amazonaws.com", "us-gov-west-1" end
    return "https://iam.amazonaws.com", "us-east-1"
  end
  return string.format("https://%s.%s.%s", svc.endpoint_prefix, region, suffix), region
end

--- The endpoint URL (no trailing slash) and signing region for a service.
local function resolve_endpoint(svc, region, opts, getenv)
  local explicit = opts.endpoint
  if not explicit and not env_true(getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) then
    explicit = getenv("AWS_ENDPOINT_URL_" .. svc.env_id) or getenv("AWS_ENDPOINT_URL")
  end
  if explicit then
    return (explicit:gsub("/+$", "")), svc.global and "us-east-1" or region
  end
  return default_endpoint(svc, region)
end

--- A client for `service` ("ec2", "sts", "iam", "rds", "ram", "lambda"). See the module comment.
-- No I/O happens here: credentials are resolved on the first call.
-- @tparam string service the service name
-- @tparam[opt] table opts client options (module comment): region, profile, credentials, endpoint,
-- env, max_attempts, retry_mode, timeout, connect_timeout, ca_file, verify, http, clock, sleep, random
-- @return the client (`client:call`, `client:pages`, `client:wait`)
-- @raise on an unknown service or options that are not a table
function aws.client(service, opts)
  local svc = services[service]
  assert(type(svc) == "table", "awsnet.aws: unknown service " .. tostring(service))
  opts = opts or {}
  assert(type(opts) == "table", "client options must be a table")
  local getenv = credentials.getenv(opts)
  local settings = credentials.profile_settings(opts)
  local region = credentials.region(opts)
  local endpoint, signing_region = resolve_endpoint(svc, region, opts, getenv)
  local mode = (opts.retry_mode or getenv("AWS_RETRY_MODE") or settings.retry_mode or "standard"):lower()
  local provider = opts.credentials
  if not (type(provider) == "table" and provider.get) then provider = credentials.provider(opts) end
  return setmetatable({
    service = service, svc = svc, protocol = protocols[svc.protocol], opts = opts,
    region = region or signing_region, signing_region = signing_region, endpoint = endpoint,
    provider = provider, retry_mode = mode,
    max_attempts = math.tointeger(opts.max_attempts or tonumber(getenv("AWS_MAX_ATTEMPTS") or "")
      or tonumber(settings.max_attempts or "")) or (mode == "legacy" and 5 or 3),
    http = opts.http, clock = opts.clock or os.time, sleep = opts.sleep or core.http.sleep,
    random = opts.random or math.random, clock_offset = 0, quota = QUOTA,
    ca_file = opts.ca_file or getenv("AWS_CA_BUNDLE"),
  }, Client)
end

local function op_error(self, op, err, attempts)
  err.op = self.service .. ":" .. op
  err.attempts = attempts
  return err
end

-- The signed HTTP request for one attempt, or nil, err.
function Client:_request(op, params)
  if not self.endpoint or not self.signing_region then
    return errors.fail("no_region", "no region for " .. self.service .. " (set region, AWS_REGION or a profile region)")
  end
  local creds, err = self.provider:get()
  if not creds then return nil, err end
  local req = self.protocol.request(self.svc, self.endpoint, op, params)
  req.headers["User-Agent"] = "awsnet/" .. core.VERSION
  local signed, sign_err = sigv4.sign(req, creds, { region = self.signing_region, service = self.svc.signing_name,
    time = math.floor(self.clock() + self.clock_offset) })
  if not signed then return nil, sign_err end
  req.headers = signed
  req.timeout, req.connect_timeout = self.opts.timeout, self.opts.connect_timeout
  req.ca_file, req.verify = self.ca_file, self.opts.verify
  return req
end

-- "retry" with a delay, "skew" (retry now with the corrected clock), or nil.
function Client:_retry_decision(p, err, res)
  if SKEW_CODES[err.code] and res and not p.skew_retried then
    local server = time.parse_http_date(res.headers.date)
    local here = self.clock()
    if server and math.abs(server - (here + self.clock_offset)) >= SKEW_LIMIT then
      self.clock_offset = server - here
      p.skew_retried = true
      return "skew", 0
    end
  end
  if p.attempt >= self.max_attempts then return nil end
  local retryable = THROTTLING[err.code] or TRANSIENT[err.code] or (err.status and TRANSIENT_STATUS[err.status])
    or (err.status == 429)
  if not retryable then return nil end
  local cost = (err.code == "timeout" or err.code == "connection" or err.code == "refused") and TIMEOUT_COST or RETRY_COST
  if self.quota < cost then return nil end
  self.quota = self.quota - cost
  p.last_cost = cost
  return "retry", self.random() * math.min(MAX_BACKOFF, 2 ^ (p.attempt - 1))
end

function Client:_succeeded(p)
  if p.last_cost then
    self.quota = math.min(QUOTA, self.quota + p.last_cost)
  else
    self.quota = math.min(QUOTA, self.quota + 1)
  end
end

local function http_client(c) return c.http or http end

--- Runs calls = {{client, op, params}, ...} at once; -> results, errs (see the module comment).
-- @tparam {table,...} calls each {client, operation name, params}
-- @treturn table results, results[i] the result of calls[i]
-- @treturn table errs, errs[i] the error of calls[i] (codes as for `Client:call`)
-- @raise when an entry has no client or no operation name
function aws.call_many(calls)
  assert(type(calls) == "table", "call_many expects an array of {client, op, params}")
  local results, errs = {}, {}
  local pending = {}
  for i, c in ipairs(calls) do
    assert(getmetatable(c[1]) == Client, "call_many: entry " .. i .. " has no client")
    assert(type(c[2]) == "string", "call_many: entry " .. i .. " has no operation name")
    pending[#pending + 1] = { i = i, client = c[1], op = c[2], params = c[3] or {}, attempt = 0 }
  end
  while #pending > 0 do
    -- group this round's requests by HTTP client (usually all share one)
    local groups, order = {}, {}
    for _, p in ipairs(pending) do
      p.attempt = p.attempt + 1
      local req, err = p.client:_request(p.op, p.params)
      if req then
        local h = http_client(p.client)
        if not groups[h] then groups[h] = { reqs = {}, calls = {} }; order[#order + 1] = h end
        table.insert(groups[h].reqs, req)
        table.insert(groups[h].calls, p)
      else
        errs[p.i] = op_error(p.client, p.op, err, p.attempt)
      end
    end
    local next_round, delay = {}, 0
    for _, h in ipairs(order) do
      local g = groups[h]
      local responses, http_errs
      if h == http then responses, http_errs = http.request_many(g.reqs) else responses, http_errs = h:request_many(g.reqs) end
      for j, p in ipairs(g.calls) do
        local res = responses[j]
        local result, err
        if res then
          result, err = p.client.protocol.response(p.client.svc, p.op, res)
        else
          err = http_errs[j]
        end
        if result then
          p.client:_succeeded(p)
          results[p.i] = result
        else
          local decision, wait = p.client:_retry_decision(p, err, res)
          if decision then
            if decision == "skew" then p.attempt = p.attempt - 1 end
            next_round[#next_round + 1] = p
            delay = math.max(delay, wait)
          else
            errs[p.i] = op_error(p.client, p.op, err, p.attempt)
          end
        end
      end
    end
    if #next_round > 0 and delay > 0 then next_round[1].client.sleep(delay) end
    pending = next_round
  end
  return results, errs
end

--- One call, retried as the module comment says.
-- @within Client
-- @tparam string op the operation ("DescribeVpcs")
-- @tparam[opt] table params its parameters, as aws/query.lua and aws/restjson.lua take them
-- @treturn table the result, or nil, err {code (AWS's code, "no_credentials", "no_region",
-- "invalid_response", "timeout", "refused", "connection", "http_<status>"), message, status,
-- request_id, op, attempts}
function Client:call(op, params)
  assert(type(op) == "string", "operation name must be a string")
  local results, errs = aws.call_many({ { self, op, params } })
  if results[1] then return results[1] end
  return nil, errs[1]
end

local function shallow_copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

-- The token for the next page of `page`, or nil when it was the last one.
function Client:_next_token(page, params)
  local paging = self.svc.paging
  if not paging then return nil end
  if paging.truncated and page[paging.truncated] ~= true then return nil end
  local token = page[paging.output]
  if token == nil or token == "" or token == params[paging.input] then return nil end
  return token
end

--- Iterates over every page: `for page, err in client:pages(op, params)`; a failure ends the
-- loop with page = false and err set.
-- @within Client
-- @tparam string op the operation
-- @tparam[opt] table params its parameters (the page token is added to a copy)
-- @return an iterator giving each page, or false and the error (as for `Client:call`)
function Client:pages(op, params)
  local p = shallow_copy(params)
  local done = false
  return function()
    if done then return nil end
    local page, err = self:call(op, p)
    if not page then
      done = true
      return false, err
    end
    local token = self:_next_token(page, p)
    if token then p[self.svc.paging.input] = token else done = true end
    return page
  end
end

--- Follows the pages of many calls at once: -> pages, errs (pages[i] = array of pages).
-- @tparam {table,...} calls each {client, operation name, params}
-- @treturn table pages, pages[i] the array of pages of calls[i] (those before a failure)
-- @treturn table errs, errs[i] the error that ended calls[i]
function aws.pages_many(calls)
  local pages, errs = {}, {}
  local live = {}
  for i, c in ipairs(calls) do
    pages[i] = {}
    live[#live + 1] = { i = i, client = c[1], op = c[2], params = shallow_copy(c[3]) }
  end
  while #live > 0 do
    local batch = {}
    for j, l in ipairs(live) do batch[j] = { l.client, l.op, l.params } end
    local results, call_errs = aws.call_many(batch)
    local next_live = {}
    for j, l in ipairs(live) do
      if results[j] then
        table.insert(pages[l.i], results[j])
        local token = l.client:_next_token(results[j], l.params)
        if token then
          l.params[l.client.svc.paging.input] = token
          next_live[#next_live + 1] = l
        end
      else
        errs[l.i] = call_errs[j]
      end
    end
    live = next_live
  end
  return pages, errs
end

--- Polls until the waiter `name` is satisfied; opts {timeout = 600, delay = the waiter's}.
-- -> the last result (true for a deletion seen as "not found"), or nil, err ("timeout",
-- "waiter_failed" with `state`, or the call's error).
-- @within Client
-- @tparam string name the waiter ("TransitGatewayAvailable", see aws/waiters.lua)
-- @tparam table params the parameters of the waiter's describe call
-- @tparam[opt] table opts {timeout = 600, delay = the waiter's}
-- @return the last result, true for a deletion seen as "not found", or nil, err
-- @raise on a waiter the service does not have
function Client:wait(name, params, opts)
  local w = (waiters[self.service] or {})[name]
  assert(w, "awsnet.aws: no waiter " .. tostring(name) .. " for " .. self.service)
  opts = opts or {}
  local timeout, delay = opts.timeout or 600, opts.delay or w.delay
  local deadline = self.clock() + timeout
  local op = self.service .. ":" .. name
  while true do
    local result, err = self:call(w.op, params)
    if result then
      local verdict, state = waiters.judge(w, result)
      if verdict == "success" then return result end
      if verdict == "failure" then
        return errors.fail("waiter_failed", name .. " reached state " .. tostring(state), { op = op, state = state })
      end
    elseif w.not_found and w.not_found[err.code] then
      return true
    else
      return nil, err
    end
    if self.clock() + delay > deadline then
      return errors.fail("timeout", name .. " not reached within " .. timeout .. " s", { op = op })
    end
    self.sleep(delay)
  end
end

return aws
