--- Signed AWS API calls for any service of AWS's own service models (botocore's data folder):
-- requests built and answers parsed by shape (awsnet.aws.protocol), with retries, clock-skew
-- correction, pagination and waiters from the model's paginators-1.json and waiters-2.json.
--
--   local aws = require "awsnet.aws"
--   local ec2 = aws.client("ec2", {region=, profile=, credentials=, endpoint=, env=, ...})
--   local out, err = ec2:call("DescribeVpcs", {Filters = {{Name = "vpc-id", Values = {"vpc-1"}}}})
--   for page, err in ec2:pages("DescribeRouteTables", params) do ... end  -- page false + err on failure
--   local last, err = ec2:wait("VpcAvailable", {VpcIds = {id}}, {timeout = 600})
--   ec2:build(op, params) -> {method, url, headers, body} unsigned, no I/O; ec2:parse(op, response)
--   ec2:operations(), ec2:help(op); aws.model (awsnet.aws.model); aws.print_json(result)
--   local results, errs = aws.call_many{{ec2, "DescribeVpcs"}, {rds, "DescribeDBInstances"}, ...}
--   local pages, errs = aws.pages_many{{ec2, "DescribeSubnets"}, {ec2, "DescribeRouteTables"}, ...}
--
-- Parameters and results use the model's member names (`Vpcs`, `Filters`, `Values`), typed by
-- shape: lists are arrays (empty ones encode as `[]` with `aws.json`), integers Lua integers,
-- timestamps ISO 8601 strings as the AWS CLI prints them. The botocore customisations that change
-- what users see are in aws/customizations.lua. `service_or_model` is a service's botocore name
-- ("ec2", "elbv2", ...), a model from `aws.model.load`, or a model table {metadata, shapes,
-- operations, paginators, waiters}.
--
-- `call_many` runs all calls at once over one curl multi (each with its own retries) and returns
-- results[i] or errs[i] for calls[i]; `pages_many` does the same following every call's pages
-- (pages[i] is the array of pages). Errors: `nil, err` with code (AWS's code, or
-- "invalid_parameter" with `path`, "unknown_operation", "no_credentials", "no_region",
-- "invalid_response", "timeout", "refused", "connection", "http_<status>", ...), message,
-- status, request_id, op ("ec2:DescribeVpcs") and attempts.
--
-- Client options: region (else AWS_REGION, AWS_DEFAULT_REGION, the profile's; global services
-- need none), profile, credentials (a table, or a provider from awsnet.credentials), endpoint (else
-- AWS_ENDPOINT_URL_<SERVICE_ID>, AWS_ENDPOINT_URL, unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true;
-- else the model's endpoint: https://<endpointPrefix>.<region>.amazonaws.com, a global service's
-- partition endpoint, amazonaws.com.cn in China), models (search path options for awsnet.aws.model:
-- {path, default_path, api_version}), env (a table replacing the process environment),
-- max_attempts (else AWS_MAX_ATTEMPTS, the profile's max_attempts, 3), retry_mode ("standard",
-- "adaptive" — treated as standard — or "legacy", default 5 attempts), timeout, connect_timeout,
-- ca_file (else AWS_CA_BUNDLE), verify, http (an awsnet.http client), and for tests clock (epoch
-- seconds), sleep(seconds), random() -> [0, 1).
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
local customizations = require "awsnet.aws.customizations"
local errors = require "awsnet.errors"
local http = require "awsnet.http"
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
local model = require "awsnet.aws.model"
local protocol = require "awsnet.aws.protocol"
local sigv4 = require "awsnet.sigv4"
local time = require "awsnet.aws.time"

local aws = { model = model, customizations = customizations }

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

local Client = {}
Client.__index = Client
Client.__name = "awsnet.aws.client"

function Client.__tostring(c)
  return string.format("awsnet.aws.client %s %s %s", c.service, c.region or "(no region)", c.endpoint or "")
end

local function env_true(v) return v ~= nil and v:lower() == "true" end

-- The partition a region is in, by its name (as endpoints.json's regionRegex says).
local function partition_name(region)
  if not region then return "aws" end
  if region:match("^cn%-") then return "aws-cn" end
  if region:match("^us%-gov%-") then return "aws-us-gov" end
  if region:match("^us%-isob%-") then return "aws-iso-b" end
  if region:match("^us%-iso%-") then return "aws-iso" end
  return "aws"
end

-- What endpoints.json says of a service in the partition of `region`: {hostname, signing_region}
-- for a global service (IAM), and the partition's DNS suffix.
local function partition_of(prefix, region, models_opts)
  local ok, doc = pcall(model.partitions, models_opts)
  if not ok or type(doc) ~= "table" then return nil end
  local name = partition_name(region)
  for _, part in ipairs(doc.partitions or {}) do
    if part.partition == name then
      local svc = (part.services or {})[prefix] or {}
      local info = { dns_suffix = part.dnsSuffix }
      if svc.isRegionalized == false and svc.partitionEndpoint then
        local e = (svc.endpoints or {})[svc.partitionEndpoint] or {}
        info.global_host = e.hostname or string.format("%s.%s", prefix, part.dnsSuffix)
        info.global_region = (e.credentialScope or {}).region or svc.partitionEndpoint
      end
      return info
    end
  end
end

--- The default endpoint URL and signing region of a model's service in `region`.
local function default_endpoint(m, region, models_opts)
  local prefix = m.metadata.endpointPrefix or m.service
  local part = partition_of(prefix, region, models_opts)
  if part and part.global_host then return "https://" .. part.global_host, part.global_region end
  if not region then return nil end
  local suffix = (part and part.dns_suffix) or (region:match("^cn%-") and "amazonaws.com.cn" or "amazonaws.com")
  return string.format("https://%s.%s.%s", prefix, region, suffix), region
end

-- botocore's AWS_ENDPOINT_URL_<SERVICE>: the serviceId upper-cased, spaces as "_".
local function env_id(m)
  local id = m.metadata.serviceId or m.metadata.endpointPrefix or m.service or ""
  return (id:gsub("[ %-]", "_"):upper())
end

--- The endpoint URL (no trailing slash) and signing region for a model's service.
local function resolve_endpoint(m, region, opts, getenv)
  local explicit = opts.endpoint
  if not explicit and not env_true(getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) then
    explicit = getenv("AWS_ENDPOINT_URL_" .. env_id(m)) or getenv("AWS_ENDPOINT_URL")
  end
  local url, signing_region = default_endpoint(m, region, opts.models)
  if explicit then
    -- a global service signs for its partition's region wherever it is sent
    local global = url and signing_region ~= region and signing_region
    return (explicit:gsub("/+$", "")), global or region or signing_region
  end
  return url, signing_region
end

local function load_model(service_or_model, opts)
  if type(service_or_model) == "table" and getmetatable(service_or_model)
    and getmetatable(service_or_model).__name == "awsnet.aws.model" then
    return service_or_model
  end
  local m, err = model.load(service_or_model, opts.models)
  if not m then error("awsnet.aws: " .. tostring(err), 3) end
  return m
end

--- A client for a service or model (see the module comment). A service with no model installed,
-- or an invalid model table, raises: it is a setup error, not a failure of the world.
-- @param service_or_model a botocore service name ("ec2"), a model from `aws.model.load`, or a
-- model table {metadata, shapes, operations, paginators, waiters}
-- @tparam[opt] table opts the client options of the module comment (region, profile,
-- credentials, endpoint, ...)
-- @return the client (`client:call`, `client:pages`, `client:wait`, ...)
-- @raise when no model is found for the service, or on arguments of the wrong type
function aws.client(service_or_model, opts)
  local t = type(service_or_model)
  assert(t == "string" or t == "table", "awsnet.aws.client: service name or model expected, got " .. t)
  opts = opts or {}
  assert(type(opts) == "table", "client options must be a table")
  local m = load_model(service_or_model, opts)
  local getenv = credentials.getenv(opts)
  local settings = credentials.profile_settings(opts)
  local region = credentials.region(opts)
  local endpoint, signing_region = resolve_endpoint(m, region, opts, getenv)
  local mode = (opts.retry_mode or getenv("AWS_RETRY_MODE") or settings.retry_mode or "standard"):lower()
  local provider = opts.credentials
  if not (type(provider) == "table" and provider.get) then provider = credentials.provider(opts) end
  local service = m.service or m.metadata.endpointPrefix
  return setmetatable({
    service = service, model = m, opts = opts,
    signing_name = m.metadata.signingName or m.metadata.endpointPrefix or service,
    region = region or signing_region, signing_region = signing_region, endpoint = endpoint,
    provider = provider, retry_mode = mode,
    max_attempts = math.tointeger(opts.max_attempts or tonumber(getenv("AWS_MAX_ATTEMPTS") or "")
      or tonumber(settings.max_attempts or "")) or (mode == "legacy" and 5 or 3),
    http = opts.http, clock = opts.clock or os.time, sleep = opts.sleep or http.sleep,
    random = opts.random or math.random, clock_offset = 0, quota = QUOTA,
    ca_file = opts.ca_file or getenv("AWS_CA_BUNDLE"),
  }, Client)
end

local function op_error(self, op, err, attempts)
  err.op = self.service .. ":" .. op
  err.attempts = attempts
  return err
end

--- An operation's request, unsigned, no I/O: {method, url, headers, body}; `url` is absolute when
-- the client has an endpoint (else the path and query).
-- @within Client
-- @tparam string op the operation's name ("DescribeVpcs")
-- @tparam[opt] table params the input, by the model's member names
-- @treturn table the request, or nil, err ("invalid_parameter" with `path`, "unknown_operation")
-- @raise on arguments of the wrong type
function Client:build(op, params)
  assert(type(op) == "string", "operation name must be a string")
  assert(params == nil or type(params) == "table", "parameters must be a table")
  local req, err = protocol.build(self.model, op, customizations.input(self.model, op, params or {}),
    { endpoint = self.endpoint })
  if not req then return nil, err end
  if self.endpoint then
    local scheme, host, base = self.endpoint:match("^(%a[%w+.-]*://)([^/]*)(.*)$")
    if scheme then
      host = req.host or host
      base = base:gsub("/+$", "")
      req.url = scheme .. host .. base .. req.url
    end
  end
  req.host = nil
  return req
end

--- An operation's answer {status, headers, body} read by shape, no I/O.
-- @within Client
-- @tparam string op the operation's name
-- @tparam table response {status, headers, body}
-- @treturn table the result, or nil, err (AWS's error code, "http_<status>" for an answer with no
-- AWS error in it, "invalid_response", "unknown_operation")
-- @raise on arguments of the wrong type
function Client:parse(op, response)
  assert(type(op) == "string", "operation name must be a string")
  assert(type(response) == "table", "response must be a table {status, headers, body}")
  local result, err = protocol.parse(self.model, op, response)
  if not result then
    -- an answer with no AWS error in it (an HTML page from a proxy): named by its status
    if err and err.status and err.code == tostring(err.status) then err.code = "http_" .. err.status end
    return nil, err
  end
  return customizations.output(self.model, op, result)
end

--- The names of the service's operations, sorted.
-- @within Client
-- @treturn {string,...} the names
function Client:operations() return self.model:operations() end

--- An operation's input members (types, required), output members and paging, as text.
-- @within Client
-- @tparam string op the operation's name
-- @treturn string the text, or nil, err ("unknown_operation")
-- @raise when `op` is not a string
function Client:help(op) return self.model:help(op) end

-- The signed HTTP request for one attempt, or nil, err.
function Client:_request(op, params)
  if not self.endpoint or not self.signing_region then
    return errors.fail("no_region", "no region for " .. self.service .. " (set region, AWS_REGION or a profile region)")
  end
  local req, berr = self:build(op, params)
  if not req then return nil, berr end
  local creds, err = self.provider:get()
  if not creds then return nil, err end
  req.headers["User-Agent"] = "awsnet/" .. core.VERSION
  local signed, sign_err = sigv4.sign(req, creds, { region = self.signing_region, service = self.signing_name,
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

--- True when an error is a throttling answer (the SDKs' list of throttling codes, or HTTP 429).
-- @tparam table err the error {code, status}
-- @treturn boolean
function aws.is_throttling(err)
  return THROTTLING[err.code] == true or err.status == 429
end

local function http_client(c) return c.http or http end

--- Runs calls = {{client, op, params}, ...} at once (see the module comment).
-- @tparam table calls an array of {client, op, params}
-- @treturn table results: results[i] is the result of calls[i] when it succeeded
-- @treturn table errs: errs[i] is the error of calls[i] when it failed
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
          result, err = p.client:parse(p.op, res)
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

--- One call, with the client's retries.
-- @within Client
-- @tparam string op the operation's name ("DescribeVpcs")
-- @tparam[opt] table params the input, by the model's member names
-- @treturn table the result, or nil, err (the codes of the module comment)
-- @raise when `op` is not a string
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

local function is_list(v)
  return type(v) == "table" and (getmetatable(v) == jsoncodec.array_mt or v[1] ~= nil or next(v) == nil)
end

local function truthy(v)
  if v == nil or v == false or v == "" or v == jsoncodec.null then return false end
  if type(v) == "table" and next(v) == nil then return false end
  return true
end

--- The JMESPath subset botocore's paginators and waiters use: `A.B`, `A[].B` (projections, with
-- `[]` flattening), `A[-1].B`, `a || b`, and `length(path) <op> \`n\``.
local function search(expr, data)
  expr = expr:match("^%s*(.-)%s*$")
  if expr:find("||", 1, true) then
    for alt in (expr .. "||"):gmatch("(.-)||") do
      local v = search(alt, data)
      if truthy(v) then return v end
    end
    return nil
  end
  local inner, cmp, n = expr:match("^length%((.-)%)%s*([=!<>]=?)%s*`(%-?%d+)`$")
  if inner then
    local v = search(inner, data)
    local len = (type(v) == "table" or type(v) == "string") and #v or 0
    n = tonumber(n)
    if cmp == "==" then return len == n elseif cmp == "!=" then return len ~= n
    elseif cmp == ">" then return len > n elseif cmp == ">=" then return len >= n
    elseif cmp == "<" then return len < n else return len <= n end
  end
  local cur, projecting = data, false
  for seg in expr:gmatch("[^.]+") do
    local name, rest = seg:match("^([%w_]*)(.*)$")
    if name ~= "" then
      if projecting then
        local out = jsoncodec.array()
        for _, x in ipairs(cur) do
          local y = type(x) == "table" and x[name] or nil
          if y ~= nil then out[#out + 1] = y end
        end
        cur = out
      else
        cur = type(cur) == "table" and cur[name] or nil
      end
    end
    for index in rest:gmatch("%[(.-)%]") do
      if type(cur) ~= "table" then return nil end
      if index == "" then
        local out = jsoncodec.array()
        for _, x in ipairs(cur) do
          if projecting and is_list(x) then
            for _, y in ipairs(x) do out[#out + 1] = y end
          else
            out[#out + 1] = x
          end
        end
        cur, projecting = out, true
      else
        local k = math.tointeger(tonumber(index))
        if not k then return nil end
        if k < 0 then k = #cur + k end
        cur = cur[k + 1]
      end
    end
    if cur == nil then return nil end
  end
  return cur
end
--- Evaluates `expr` on `data` in the JMESPath subset of paginators and waiters: `A.B`, `A[].B`,
-- `A[-1].B`, `a || b`, `length(path) <op> \`n\``.
-- @function search
-- @tparam string expr the expression
-- @param data the result to search
-- @return the value found (nil when the path is absent), or a boolean for `length(...)`
aws.search = search

local function as_list(v) return type(v) == "table" and v or { v } end

-- The paginator of `op`, or nil (an operation that does not page is called once).
function Client:_paginator(op)
  local p = self.model:paginator(op)
  if not p or not p.input_token or not p.output_token then return nil end
  return p
end

-- The parameters for the page after `page`, or nil when it was the last one.
function Client:_next_params(op, page, params)
  local p = self:_paginator(op)
  if not p then return nil end
  if p.more_results and not truthy(search(p.more_results, page)) then return nil end
  local inputs, outputs = as_list(p.input_token), as_list(p.output_token)
  local nextp, any, same = shallow_copy(params), false, true
  for i, out in ipairs(outputs) do
    local token = search(out, page)
    if token == jsoncodec.null or token == "" then token = nil end
    if token ~= nil then any = true end
    if token ~= params[inputs[i]] then same = false end
    nextp[inputs[i]] = token
  end
  if not any or same then return nil end
  return nextp
end

--- Iterates over every page: `for page, err in client:pages(op, params)`; a failure ends the
-- loop with page = false and err set. Tokens, `more_results` and several tokens at once as the
-- model's paginators-1.json says; an operation that does not page gives one page.
-- @within Client
-- @tparam string op the operation's name
-- @tparam[opt] table params the input of the first page
-- @treturn function an iterator giving each page (a table), then false, err on a failure
-- @raise when `op` is not a string
function Client:pages(op, params)
  assert(type(op) == "string", "operation name must be a string")
  local p = shallow_copy(params)
  local done = false
  return function()
    if done then return nil end
    local page, err = self:call(op, p)
    if not page then
      done = true
      return false, err
    end
    local nextp = self:_next_params(op, page, p)
    if nextp then p = nextp else done = true end
    return page
  end
end

--- The keys of a paginated result that hold its items: the paginator's result_key(s) (for
-- gathering pages).
-- @within Client
-- @tparam string op the operation's name
-- @treturn ?{string,...} the keys, or nil when the operation does not page or names none
function Client:result_keys(op)
  local p = self:_paginator(op)
  return p and p.result_key and as_list(p.result_key) or nil
end

--- Follows the pages of many calls at once (see the module comment).
-- @tparam table calls an array of {client, op, params}
-- @treturn table pages: pages[i] is the array of the pages of calls[i] (those read before a failure)
-- @treturn table errs: errs[i] is the error that ended calls[i]
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
        local nextp = l.client:_next_params(l.op, results[j], l.params)
        if nextp then
          l.params = nextp
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

local function equal(a, b)
  if a == b then return true end
  return type(a) == "number" and type(b) == "number" and a == b
end

-- Does the acceptor match this attempt's outcome?
local function matches(a, result, err)
  local m = a.matcher
  if m == "error" then
    if type(a.expected) == "boolean" then return (err ~= nil) == a.expected end
    return err ~= nil and err.code == a.expected
  end
  if m == "status" then
    local status = err and err.status or (result and 200)
    return status == a.expected
  end
  if not result then return false end
  local v = search(a.argument, result)
  if m == "path" then return equal(v, a.expected) end
  if m == "pathAll" then
    if not is_list(v) or #v == 0 then return false end
    for _, x in ipairs(v) do if not equal(x, a.expected) then return false end end
    return true
  end
  if m == "pathAny" then
    if not is_list(v) then return false end
    for _, x in ipairs(v) do if equal(x, a.expected) then return true end end
    return false
  end
  return false
end

--- Polls until the waiter `name` of the model's waiters-2.json is satisfied; opts {timeout,
-- delay (else the waiter's), max_attempts (else the waiter's maxAttempts)}. Acceptors: path,
-- pathAll, pathAny, status and error, first match wins, as botocore.
-- @within Client
-- @tparam string name the waiter's name ("VpcAvailable")
-- @tparam[opt] table params the input of the waiter's operation
-- @tparam[opt] table opts {timeout, delay, max_attempts}
-- @return the last result (true when success was an error matcher, e.g. a deletion seen as not
-- found), or nil, err ("timeout", "waiter_failed" with `state` and `reason`, the call's error when
-- no acceptor matched it, "unknown_waiter")
-- @raise when `name` is not a string
function Client:wait(name, params, opts)
  assert(type(name) == "string", "waiter name must be a string")
  local w, werr = self.model:waiter(name)
  if not w then return nil, werr end
  opts = opts or {}
  local delay = opts.delay or w.delay or 15
  local max_attempts = opts.max_attempts or (not opts.timeout and w.maxAttempts) or math.huge
  local deadline = opts.timeout and (self.clock() + opts.timeout) or math.huge
  local op = self.service .. ":" .. name
  local attempt = 0
  while true do
    attempt = attempt + 1
    local result, err = self:call(w.operation, params)
    local state, acceptor
    for _, a in ipairs(w.acceptors or {}) do
      if matches(a, result, err) then state, acceptor = a.state, a break end
    end
    if state == "success" then return result or true end
    if state == "failure" then
      return errors.fail("waiter_failed", string.format("%s reached a failure state (%s %s = %s)", name,
        acceptor.matcher, tostring(acceptor.argument or ""), tostring(acceptor.expected)),
        { op = op, state = acceptor.expected, reason = err })
    end
    if not state and err then return nil, err end
    if attempt >= max_attempts then
      return errors.fail("timeout", string.format("%s not reached after %d attempts", name, attempt), { op = op })
    end
    if self.clock() + delay > deadline then
      return errors.fail("timeout", name .. " not reached within " .. opts.timeout .. " s", { op = op })
    end
    self.sleep(delay)
  end
end

--- The waiters of the client's service, sorted.
-- @within Client
-- @treturn {string,...} the names (empty when the service has none), or nil, err ("invalid_model")
function Client:waiters() return self.model:waiters() end

-- Writes `v` as Python's json.dumps(indent=4) does: "key": value, nested levels by 4 spaces.
-- The pads and each key's `"key": ` text are made once (snapshots write the same keys millions
-- of times); a string with nothing to escape is quoted as it is.
local pads, key_texts = {}, {}
local function pad_of(n)
  local p = pads[n]
  if not p then p = string.rep(" ", n); pads[n] = p end
  return p
end
local function key_text(k)
  local t = key_texts[k]
  if not t then
    t = jsoncodec.scalar(tostring(k)) .. ": "
    if type(k) == "string" and #k <= 64 then key_texts[k] = t end
  end
  return t
end

local function pretty(v, indent, out)
  local tv = type(v)
  if tv == "string" then
    out[#out + 1] = v:find('[%c"\\]') and jsoncodec.scalar(v) or ('"' .. v .. '"')
  elseif tv == "table" and v ~= jsoncodec.null then
    local n = #out
    if jsoncodec.is_array(v) then
      local len = #v
      if len == 0 then out[n + 1] = "[]" return end
      local inner = pad_of(indent + 4)
      out[n + 1] = "[\n"
      for i = 1, len do
        out[#out + 1] = inner
        pretty(v[i], indent + 4, out)
        out[#out + 1] = i < len and ",\n" or "\n"
      end
      out[#out + 1] = pad_of(indent) .. "]"
    else
      local keys = jsoncodec.keys(v)
      local len = #keys
      if len == 0 then out[n + 1] = "{}" return end
      local inner = pad_of(indent + 4)
      out[n + 1] = "{\n"
      for i = 1, len do
        local k = keys[i]
        out[#out + 1] = inner .. key_text(k)
        pretty(v[k], indent + 4, out)
        out[#out + 1] = i < len and ",\n" or "\n"
      end
      out[#out + 1] = pad_of(indent) .. "}"
    end
  else
    out[#out + 1] = jsoncodec.scalar(v)   -- raises for what JSON cannot hold (aws.json returns it)
  end
end

--- A result as the AWS CLI prints it (key order aside) with
-- `aws ... --output json`: JSON indented by 4 spaces, lists as arrays (empty ones `[]`), integers
-- exact, keys sorted.
-- @param result the value to write (a result, or any value JSON can hold)
-- @treturn string the text (with a final newline), or nil, err ("invalid_parameter") for values
-- JSON cannot hold
function aws.json(result)
  local out = {}
  local ok, err = pcall(pretty, result, 0, out)
  if not ok then return errors.fail("invalid_parameter", tostring(err)) end
  return table.concat(out) .. "\n"
end

--- Writes aws.json(result) to `file`.
-- @param result the value to write
-- @param[opt] file an open file (default io.stdout)
-- @return true, or nil, err ("invalid_parameter", as `json`)
function aws.print_json(result, file)
  local text, err = aws.json(result)
  if not text then return nil, err end
  ;(file or io.stdout):write(text)
  return true
end

return aws
