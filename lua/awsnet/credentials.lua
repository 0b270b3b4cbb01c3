--- AWS credentials and region, resolved the way the AWS SDKs and CLI do.
--
--   local provider = credentials.provider{profile=, credentials=, env=, http=}
--   local creds, err = provider:get()   -- cached; refreshed 10 minutes before it expires
--   local creds, err = credentials.resolve{...}          -- the chain once, no cache
--   local region = credentials.region{region=, profile=, env=}
--
-- The chain, in order (the first source that applies answers; a source that applies and fails
-- returns its error rather than falling through):
--   1. `opts.credentials` (a table {access_key_id, secret_access_key, session_token}).
--   2. The environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN — skipped
--      when `opts.profile` names a profile explicitly, so two profiles never share env keys.
--   3. The profile (`opts.profile`, else AWS_PROFILE, else "default") from the shared files
--      (AWS_CONFIG_FILE, default ~/.aws/config with [profile x] sections;
--      AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials with [x] sections):
--      a. role_arn with source_profile or credential_source (Environment, Ec2InstanceMetadata,
--         EcsContainer): STS AssumeRole with external_id, role_session_name, duration_seconds;
--      b. aws_access_key_id/aws_secret_access_key[/aws_session_token] in the credentials file;
--      c. credential_process (its JSON output, Version 1);
--      d. keys in the config file.
--   4. Container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on 169.254.170.2) or
--      AWS_CONTAINER_CREDENTIALS_FULL_URI (plain http only to loopback or the ECS/EKS agent
--      addresses), with AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE] as Authorization.
--   5. EC2 instance metadata, IMDSv2 (token first, v1 only when the token call is not
--      supported): AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_EC2_METADATA_DISABLED=true turns it off.
--      As the last source its failure (403, unreachable) ends the chain with "no_credentials".
-- `opts.env` (a table or a function) replaces the process environment, so tests and scripts can
-- describe two accounts side by side. Region: `opts.region`, AWS_REGION, AWS_DEFAULT_REGION, the
-- profile's `region`.
--
-- Credentials are tables {access_key_id, secret_access_key, session_token, expiration (epoch
-- s or nil), source}; `tostring` shows only the key id and the source. Errors: "no_credentials"
-- (its message and `err.tried` list each source tried and why it gave nothing; `err.imds_code` is
-- "imds" when instance metadata answered wrong or not at all), "profile_not_found",
-- "invalid_config", "credential_process", "container", "imds" (credential_source
-- Ec2InstanceMetadata only), and the STS error codes of AssumeRole.
-- @module awsnet.credentials
local cjson = require "cjson"
local errors = require "awsnet.errors"
local read_file = require("awsnet.svc.process").read_file
local time = require "awsnet.aws.time"

local credentials = {}

local REFRESH_BEFORE = 600 -- seconds before expiry at which cached credentials are renewed
local ECS_HOST = "http://169.254.170.2"
local IMDS_ENDPOINT = "http://169.254.169.254"

local Credentials = { __name = "awsnet.credentials" }
Credentials.__index = Credentials

function Credentials.__tostring(c)
  return string.format("awsnet.credentials %s from %s%s", c.access_key_id, c.source,
    c.expiration and (" until " .. time.iso8601(c.expiration)) or "")
end

local function make(access_key_id, secret, token, expiration, source)
  return setmetatable({ access_key_id = access_key_id, secret_access_key = secret,
    session_token = token ~= "" and token or nil, expiration = expiration, source = source }, Credentials)
end

local function fail(code, message, fields)
  fields = fields or {}
  fields.op = fields.op or "credentials"
  return errors.fail(code, message, fields)
end

--- The environment lookup for `opts`: `opts.env` (table or function) or the process's.
-- Empty values count as unset.
-- @tparam[opt] table opts {env=}
-- @treturn function name -> value or nil
function credentials.getenv(opts)
  local env = opts and opts.env
  local raw
  if type(env) == "table" then
    raw = function(k) return env[k] end
  elseif type(env) == "function" then
    raw = env
  else
    raw = os.getenv
  end
  return function(k)
    local v = raw(k)
    if v == "" then return nil end
    return v
  end
end

-- ---- shared config and credentials files ---------------------------------------------------

--- INI text -> {section -> {key -> value}}. Indented lines belong to a nested block
-- ("s3 =\n  max_concurrent_requests = 10") and are skipped; comments start with # or ;.
local function parse_ini(text)
  local sections, current = {}, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("\r$", "")
    local section = line:match("^%s*%[%s*(.-)%s*%]%s*$")
    if section then
      sections[section] = sections[section] or {}
      current = sections[section]
    elseif current and not line:match("^%s*[#;]") and not line:match("^%s+%S") then
      local k, v = line:match("^([^=]-)%s*=%s*(.-)%s*$")
      if k and k ~= "" then current[k:lower()] = v end
    end
  end
  return sections
end

local function home_path(getenv, name)
  local home = getenv("HOME") or ""
  return home .. "/.aws/" .. name
end

local function config_path(getenv) return getenv("AWS_CONFIG_FILE") or home_path(getenv, "config") end
local function credentials_path(getenv)
  return getenv("AWS_SHARED_CREDENTIALS_FILE") or home_path(getenv, "credentials")
end

--- {config = {profile -> settings}, credentials = {profile -> keys}} from the shared files.
local function load_files(getenv)
  local out = { config = {}, credentials = {} }
  local config_text = read_file(config_path(getenv))
  if config_text then
    for section, values in pairs(parse_ini(config_text)) do
      local name = section == "default" and "default" or section:match("^profile%s+(.+)$")
      if name then out.config[name] = values end
    end
  end
  local creds_text = read_file(credentials_path(getenv))
  if creds_text then out.credentials = parse_ini(creds_text) end
  return out
end

local function profile_name(opts, getenv)
  if opts.profile then return opts.profile, true end
  return getenv("AWS_PROFILE") or getenv("AWS_DEFAULT_PROFILE") or "default", false
end

--- The settings of the profile in the config file (region, role_arn, max_attempts, ...).
-- @tparam[opt] table opts {profile=, env=}
-- @treturn table the settings, keys in lower case (empty when the profile is not there)
-- @treturn string the profile's name
function credentials.profile_settings(opts)
  opts = opts or {}
  local getenv = credentials.getenv(opts)
  local name = profile_name(opts, getenv)
  return load_files(getenv).config[name] or {}, name
end

--- The region for `opts`, or nil.
-- @tparam[opt] table opts {region=, profile=, env=}
-- @treturn ?string the region
function credentials.region(opts)
  opts = opts or {}
  if opts.region then return opts.region end
  local getenv = credentials.getenv(opts)
  return getenv("AWS_REGION") or getenv("AWS_DEFAULT_REGION") or credentials.profile_settings(opts).region
end

local function static_keys(t, source)
  if t and t.aws_access_key_id and t.aws_secret_access_key then
    return make(t.aws_access_key_id, t.aws_secret_access_key, t.aws_session_token, nil, source)
  end
end

-- ---- single sources -------------------------------------------------------------------------

local function from_env(getenv)
  local id, secret = getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
  if id and secret then return make(id, secret, getenv("AWS_SESSION_TOKEN"), nil, "environment") end
end

-- Credentials from a decoded JSON document (container, IMDS, credential_process), or nil.
local function from_document(t, token_field, source)
  if type(t) ~= "table" or type(t.AccessKeyId) ~= "string" or type(t.SecretAccessKey) ~= "string" then
    return nil
  end
  local token = t[token_field]
  local expiration = t.Expiration ~= nil and time.parse_iso8601(t.Expiration) or nil
  return make(t.AccessKeyId, t.SecretAccessKey, type(token) == "string" and token or nil, expiration, source)
end

local function from_json(text, token_field, source)
  local ok, t = pcall(cjson.decode, text)
  return ok and from_document(t, token_field, source) or nil
end

local function from_process(command)
  local p = io.popen(command, "r")
  if not p then return fail("credential_process", "cannot start credential_process") end
  local out = p:read("a")
  local ok, how, status = p:close()
  if not ok then
    return fail("credential_process", string.format("credential_process %s with %s", how, tostring(status)))
  end
  local doc_ok, doc = pcall(cjson.decode, out)
  if not doc_ok or type(doc) ~= "table" or doc.Version ~= 1 then
    return fail("credential_process", "credential_process output is not JSON with Version 1")
  end
  local creds = from_document(doc, "SessionToken", "credential_process")
  if not creds then return fail("credential_process", "credential_process output lacks AccessKeyId/SecretAccessKey") end
  return creds
end

local function http_get(opts, req)
  if opts.http then return opts.http:request(req) end
  return require("awsnet.http").request(req)
end

local function loopback_or_agent(host)
  host = host:lower()
  return host:match("^127%.%d+%.%d+%.%d+$") or host == "localhost" or host == "[::1]" or host == "169.254.170.2"
    or host == "169.254.170.23" or host == "[fd00:ec2::23]"
end

local function from_container(opts, getenv)
  local relative, full = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
  if not relative and not full then return nil end
  local url = relative and (ECS_HOST .. relative) or full
  local scheme, host = url:match("^(%a+)://(%b[])")
  if not scheme then scheme, host = url:match("^(%a+)://([^/:?#]+)") end
  if not scheme or not (scheme:lower() == "https" or (scheme:lower() == "http" and loopback_or_agent(host))) then
    return fail("container", "container credentials URL must be https or http to a loopback/agent address")
  end
  local headers = {}
  local token_file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
  local token = token_file and read_file(token_file) or getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN")
  if token_file and not token then return fail("container", "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") end
  if token then
    token = token:gsub("%s+$", "")
    if token:find("[\r\n]") then return fail("container", "authorization token has a line break") end
    headers.Authorization = token
  end
  local res, err = http_get(opts, { url = url, headers = headers, timeout = 2, connect_timeout = 1 })
  if not res then return fail("container", "container credentials endpoint: " .. err.code) end
  if res.status ~= 200 then return fail("container", "container credentials endpoint answered " .. res.status) end
  return from_json(res.body, "Token", "container") or fail("container", "container credentials are not valid JSON")
end

local function from_imds(opts, getenv)
  if (getenv("AWS_EC2_METADATA_DISABLED") or ""):lower() == "true" then return nil end
  local base = (getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT") or IMDS_ENDPOINT):gsub("/$", "")
  local timeout = tonumber(getenv("AWS_METADATA_SERVICE_TIMEOUT") or "1")
  local function call(method, path, headers)
    local res, err = http_get(opts, { method = method, url = base .. path, headers = headers,
      timeout = timeout, connect_timeout = timeout })
    if not res then return fail("imds", "instance metadata unreachable: " .. err.code) end
    return res
  end
  local res, err = call("PUT", "/latest/api/token", { ["X-aws-ec2-metadata-token-ttl-seconds"] = "21600" })
  if not res then return nil, err end
  local headers = {}
  if res.status == 200 then
    headers["X-aws-ec2-metadata-token"] = res.body
  elseif res.status ~= 404 and res.status ~= 405 then -- 404/405: an IMDS without v2
    return fail("imds", "instance metadata token request answered " .. res.status)
  end
  local path = "/latest/meta-data/iam/security-credentials/"
  res, err = call("GET", path, headers)
  if not res then return nil, err end
  local role = res.status == 200 and res.body:match("^%s*([^\r\n]+)")
  if not role then return fail("imds", "no instance profile role (status " .. res.status .. ")") end
  res, err = call("GET", path .. role, headers)
  if not res then return nil, err end
  if res.status ~= 200 then return fail("imds", "instance metadata credentials answered " .. res.status) end
  return from_json(res.body, "Token", "imds") or fail("imds", "instance metadata credentials are not valid JSON")
end

-- ---- profiles and AssumeRole ---------------------------------------------------------------

local profile_credentials

local function assume_role(ctx, name, settings)
  local source, err
  if settings.source_profile then
    if ctx.visiting[settings.source_profile] and settings.source_profile ~= name then
      return fail("invalid_config", "source_profile loop through profile " .. settings.source_profile)
    end
    if settings.source_profile == name then
      source = static_keys(ctx.files.credentials[name], "profile " .. name)
        or static_keys(settings, "profile " .. name)
      if not source then return fail("invalid_config", "profile " .. name .. " is its own source_profile without keys") end
    else
      source, err = profile_credentials(ctx, settings.source_profile, true)
    end
  elseif settings.credential_source then
    local cs = settings.credential_source
    if cs == "Environment" then
      source = from_env(ctx.getenv)
    elseif cs == "Ec2InstanceMetadata" then
      source, err = from_imds(ctx.opts, ctx.getenv)
    elseif cs == "EcsContainer" then
      source, err = from_container(ctx.opts, ctx.getenv)
    else
      return fail("invalid_config", "unknown credential_source " .. cs)
    end
    if not source and not err then
      return fail("no_credentials", "credential_source " .. cs .. " has no credentials")
    end
  else
    return fail("invalid_config", "profile " .. name .. " has role_arn but no source_profile or credential_source")
  end
  if not source then return nil, err end

  local aws = require "awsnet.aws"
  local region = settings.region or ctx.getenv("AWS_REGION") or ctx.getenv("AWS_DEFAULT_REGION") or "us-east-1"
  local sts = aws.client("sts", { region = region, credentials = source, env = ctx.opts.env, http = ctx.opts.http })
  local result, call_err = sts:call("AssumeRole", {
    RoleArn = settings.role_arn,
    RoleSessionName = settings.role_session_name or ("awsnet-" .. os.time()),
    ExternalId = settings.external_id,
    DurationSeconds = settings.duration_seconds and math.tointeger(tonumber(settings.duration_seconds)) or nil,
  })
  if not result then return nil, call_err end
  local c = result.Credentials
  if type(c) ~= "table" or not c.AccessKeyId or not c.SecretAccessKey then
    return fail("invalid_response", "AssumeRole answered without credentials")
  end
  return make(c.AccessKeyId, c.SecretAccessKey, c.SessionToken, time.parse_iso8601(c.Expiration),
    "assume-role " .. settings.role_arn)
end

-- The credentials a profile gives; as a source_profile (`as_source`), only what the profile
-- itself holds counts (keys, role_arn, credential_process), as in the AWS CLI.
profile_credentials = function(ctx, name, as_source)
  local settings = ctx.files.config[name]
  local keys = ctx.files.credentials[name]
  if not settings and not keys then
    return fail("profile_not_found", "profile " .. name .. " is in neither the config nor the credentials file")
  end
  settings = settings or {}
  ctx.visiting[name] = true
  local role_arn = settings.role_arn or (keys and keys.role_arn)
  if role_arn then
    local merged = {}
    for k, v in pairs(keys or {}) do merged[k] = v end
    for k, v in pairs(settings) do merged[k] = v end
    merged.role_arn = role_arn
    return assume_role(ctx, name, merged)
  end
  local c = static_keys(keys, "profile " .. name)
  if c then return c end
  if settings.credential_process then return from_process(settings.credential_process) end
  c = static_keys(settings, "profile " .. name)
  if c then return c end
  if as_source then return fail("no_credentials", "source_profile " .. name .. " has no credentials") end
  return nil
end

--- Runs the chain once; -> credentials or nil, err.
-- @tparam[opt] table opts {credentials=, profile=, env=, http=} (see the module comment)
-- @treturn table credentials, or nil, err with a code of the module comment's list;
-- "no_credentials" when no source had any (err.tried lists them, with why)
function credentials.resolve(opts)
  opts = opts or {}
  if opts.credentials then
    local c = opts.credentials
    if type(c) == "table" and c.get then return c:get() end
    if type(c) ~= "table" or not c.access_key_id or not c.secret_access_key then
      return fail("no_credentials", "explicit credentials need access_key_id and secret_access_key")
    end
    return make(c.access_key_id, c.secret_access_key, c.session_token, c.expiration, c.source or "explicit")
  end
  local getenv = credentials.getenv(opts)
  local name, explicit = profile_name(opts, getenv)
  -- What each source was and why it gave nothing: the no_credentials message lists them, so a
  -- machine without credentials is told so rather than shown instance metadata's last refusal.
  local tried = {}
  if explicit then
    tried[1] = "environment (skipped: profile '" .. name .. "' given explicitly)"
  else
    local c = from_env(getenv)
    if c then return c end
    tried[1] = "environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set)"
  end
  local ctx = { opts = opts, getenv = getenv, files = load_files(getenv), visiting = {} }
  local c, err = profile_credentials(ctx, name, false)
  if c or (err and not (err.code == "profile_not_found" and not explicit)) then return c, err end
  tried[#tried + 1] = string.format("profile '%s' in %s, %s (%s)", name, config_path(getenv),
    credentials_path(getenv), err and "not found" or "no keys")
  tried[#tried + 1] = "credential_process (not set)"
  c, err = from_container(opts, getenv)
  if c or err then return c, err end
  tried[#tried + 1] = "container (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI not set)"
  -- Instance metadata is tried on any machine, so its failure (403, unreachable) means "not on
  -- an instance with a role" here, as in botocore; named with credential_source it stays "imds".
  c, err = from_imds(opts, getenv)
  if c then return c end
  tried[#tried + 1] = "instance metadata (" ..
    (err and err.message:gsub("^instance metadata ", "") or "disabled by AWS_EC2_METADATA_DISABLED") .. ")"
  return fail("no_credentials", "no credentials found; tried: " .. table.concat(tried, ", "),
    { tried = tried, imds_code = err and err.code or nil })
end

local Provider = {}
Provider.__index = Provider
Provider.__name = "awsnet.credentials.provider"

function Provider.__tostring(p)
  return "awsnet.credentials.provider" .. (p.cached and (" holding " .. tostring(p.cached)) or "")
end

--- Cached credentials, resolved again when they expire within 10 minutes.
-- @within Provider
-- @treturn table credentials, or nil, err (as `resolve`)
function Provider:get()
  local c = self.cached
  local now = (self.opts.clock or os.time)()
  if c and (not c.expiration or c.expiration - now > REFRESH_BEFORE) then return c end
  local fresh, err = credentials.resolve(self.opts)
  if not fresh then return nil, err end
  self.cached = fresh
  return fresh
end

--- A caching provider for `opts` (see the module comment); `opts.clock` replaces os.time.
-- Nothing is resolved until `provider:get()`.
-- @tparam[opt] table opts as for `resolve`, plus clock
-- @return the provider
function credentials.provider(opts)
  return setmetatable({ opts = opts or {} }, Provider)
end

return credentials
