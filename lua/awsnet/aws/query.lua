--- The AWS query protocol (STS, IAM, RDS) and its EC2 variant: form-encoded requests, XML
-- responses.
--
-- Parameters are nested Lua tables keyed by the API reference's wire names. Arrays flatten the
-- protocol's way: EC2 `Filter.1.Name`, `Filter.1.Value.1`; query `Tags.member.1.Key` (or the
-- service's member name, e.g. RDS `VpcSecurityGroupIds.VpcSecurityGroupId.1`). Booleans are
-- sent as "true"/"false".
--
-- Responses: lists become arrays (EC2 `item`, query `member`, the service's member names), the
-- result is the <OpResult> element (query) or the <OpResponse> element (EC2). Text becomes a
-- boolean when it is "true"/"false" (except in key/value/name/description fields), an integer
-- when the element's name, or its last camel-case word, says it holds one (Port, toPort, Count,
-- Number, Size, Storage, Asn, Mtu, Timeout, Seconds, Period, Iops, Percentage, Capacity, Max…);
-- IDs, account numbers and everything else stay strings. An empty EC2 `…Set` element is an empty array.
-- @module awsnet.aws.query
local core = require "awsnet.core"
local errors = require "awsnet.errors"
local sigv4 = require "awsnet.sigv4"

local query = {}

local function is_array(t)
  return next(t) == nil or t[1] ~= nil
end

local function scalar(v)
  if type(v) == "boolean" then return v and "true" or "false" end
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
  return tostring(v)
end

local function flatten(prefix, value, out, svc)
  if type(value) ~= "table" then
    out[#out + 1] = { prefix, scalar(value) }
    return
  end
  if is_array(value) then
    local name = prefix:match("([^.]+)$")
    local member = svc.protocol == "ec2" and "" or ("." .. ((svc.list_members or {})[name] or "member"))
    if #value == 0 and svc.protocol ~= "ec2" and prefix ~= "" then out[#out + 1] = { prefix, "" } end
    for i, v in ipairs(value) do flatten(prefix .. member .. "." .. i, v, out, svc) end
    return
  end
  local keys = {}
  for k in pairs(value) do
    assert(type(k) == "string", "parameter names must be strings")
    keys[#keys + 1] = k
  end
  table.sort(keys)
  for _, k in ipairs(keys) do flatten(prefix == "" and k or (prefix .. "." .. k), value[k], out, svc) end
end

--- The form body for `op` with `params`.
-- @tparam table svc the service (from aws/services.lua)
-- @tparam string op the operation
-- @tparam[opt] table params nested parameters by wire name
-- @treturn string the form-encoded body (Action, Version, then the flattened parameters)
function query.body(svc, op, params)
  local flat = {}
  flatten("", params or {}, flat, svc)
  local parts = { "Action=" .. sigv4.uri_encode(op), "Version=" .. sigv4.uri_encode(svc.version) }
  for _, kv in ipairs(flat) do parts[#parts + 1] = sigv4.uri_encode(kv[1]) .. "=" .. sigv4.uri_encode(kv[2]) end
  return table.concat(parts, "&")
end

--- Builds the HTTP request (without signature) for `op`.
-- @tparam table svc the service (from aws/services.lua)
-- @tparam string endpoint the endpoint URL, without a trailing "/"
-- @tparam string op the operation
-- @tparam[opt] table params nested parameters by wire name
-- @treturn table {method, url, headers, body}
function query.request(svc, endpoint, op, params)
  return {
    method = "POST", url = endpoint .. "/",
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" },
    body = query.body(svc, op, params),
  }
end

-- ---- responses ----------------------------------------------------------------------------

local NUMERIC_WORDS = { "Port", "Count", "Number", "Size", "Storage", "Asn", "Mtu", "Timeout", "Seconds",
  "Period", "Iops", "Percentage", "Capacity" }
local NEVER_TYPED = { key = true, value = true, description = true, name = true, message = true }

local function typed(name, v)
  local lname = type(name) == "string" and name:lower() or ""
  if NEVER_TYPED[lname] then return v end
  if v == "true" then return true elseif v == "false" then return false end
  if #v <= 15 and v:match("^-?%d+$") and type(name) == "string" then
    -- the word must be the name or its last camel-case word: "toPort", "Port", not "Account"
    if name:match("^[Mm]ax%u") then return math.tointeger(tonumber(v)) end
    for _, word in ipairs(NUMERIC_WORDS) do
      if lname == word:lower() or name:sub(-#word) == word then return math.tointeger(tonumber(v)) end
    end
  end
  return v
end

local function type_tree(t, name, ec2)
  for k, v in pairs(t) do
    local field = type(k) == "string" and k or name
    if type(v) == "table" then
      type_tree(v, field, ec2)
    elseif ec2 and v == "" and type(k) == "string" and k:match("Set$") then
      t[k] = {}
    else
      t[k] = typed(field, v)
    end
  end
  return t
end

local function list_names(svc)
  if svc.protocol == "ec2" then return { item = true } end
  return { member = true }
end

-- A service that names list elements after their member (RDS: <DBInstances><DBInstance>) has
-- fields of the same names elsewhere (a DBInstance's own <AvailabilityZone> and <DBSubnetGroup>),
-- so a member name marks a list only where it is the wrapper's one kind of child. Such wrappers
-- become arrays (an empty one, named member .. "s", an empty array).
local function unwrap_lists(t, members)
  for k, v in pairs(t) do
    if type(v) == "table" then
      local only, value = next(v)
      if members[only] and next(v, only) == nil then
        v = (type(value) == "table" and value[1] ~= nil) and value or { value }
        t[k] = v
      end
      unwrap_lists(v, members)
    elseif v == "" and type(k) == "string" and members[k:gsub("s$", "")] then
      t[k] = {}
    end
  end
  return t
end

local function first(v)
  if type(v) == "table" and v[1] ~= nil then return v[1] end
  return v
end

--- The error in an XML error body: EC2 <Response><Errors><Error> or query <ErrorResponse>.
local function error_fields(svc, body)
  local root, doc = core.xml.parse(body, list_names(svc))
  if not root or type(doc) ~= "table" then return nil end
  local e, request_id
  if root == "Response" then
    e = type(doc.Errors) == "table" and first(doc.Errors.Error)
    request_id = doc.RequestID or doc.RequestId
  elseif root == "ErrorResponse" then
    e = first(doc.Error)
    request_id = doc.RequestId
  end
  if type(e) ~= "table" or type(e.Code) ~= "string" then return nil end
  return e.Code, e.Message, request_id
end

--- Turns an HTTP response into the result table, or nil, err.
-- @tparam table svc the service (from aws/services.lua)
-- @tparam string op the operation
-- @tparam table res the HTTP response {status, headers, body}
-- @treturn table the result, or nil, err: AWS's error code (else "http_<status>") with status and
-- request_id, or "invalid_response" when the body is not the XML expected
function query.response(svc, op, res)
  if res.status >= 300 then
    local code, message, request_id = error_fields(svc, res.body)
    return errors.fail(code or ("http_" .. res.status), message or ("HTTP " .. res.status .. " without an AWS error body"),
      { status = res.status, request_id = request_id or res.headers["x-amzn-requestid"] })
  end
  local root, doc, message = core.xml.parse(res.body, list_names(svc))
  if not root then
    return errors.fail("invalid_response", "response is not XML: " .. tostring(message), { status = res.status })
  end
  if type(doc) ~= "table" then doc = {} end
  local ec2 = svc.protocol == "ec2"
  if ec2 then return type_tree(doc, root, true) end
  local result = doc[op .. "Result"]
  if type(result) ~= "table" then result = {} end
  if svc.response_lists then
    local members = {}
    for _, n in ipairs(svc.response_lists) do members[n] = true end
    unwrap_lists(result, members)
  end
  type_tree(result, op .. "Result", false)
  if type(doc.ResponseMetadata) == "table" then result.ResponseMetadata = doc.ResponseMetadata end
  return result
end

return query
