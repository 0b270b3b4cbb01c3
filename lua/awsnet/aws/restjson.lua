--- The AWS REST-JSON protocol (RAM, Lambda): an HTTP method and path per operation (see
-- aws/services.lua), members placed in the path, the query string, headers, a raw payload, or
-- the JSON body; JSON responses; errors from x-amzn-ErrorType or the body's __type/code.
-- JSON nulls in responses are dropped; blob members listed in a route are base64-encoded.
-- @module awsnet.aws.restjson
local cjson = require "cjson"
local errors = require "awsnet.errors"
local sigv4 = require "awsnet.sigv4"

local restjson = {}

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

--- Standard base64 (with padding), as blob members are sent.
-- @tparam string s bytes
-- @treturn string the encoding
function restjson.base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    out[#out + 1] = B64:sub((n >> 18) + 1, (n >> 18) + 1) .. B64:sub(((n >> 12) & 63) + 1, ((n >> 12) & 63) + 1) ..
      (b and B64:sub(((n >> 6) & 63) + 1, ((n >> 6) & 63) + 1) or "=") .. (c and B64:sub((n & 63) + 1, (n & 63) + 1) or "=")
  end
  return table.concat(out)
end

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = type(v) == "table" and copy(v) or v end
  return out
end

-- JSON cannot tell an empty array from an empty object in a Lua table; empty tables are left out.
local function without_empty(t)
  for k, v in pairs(t) do
    if type(v) == "table" then
      without_empty(v)
      if next(v) == nil then t[k] = nil end
    end
  end
  return t
end

local function encode_blob(body, path)
  local t, last = body, nil
  for part in path:gmatch("[^.]+") do
    if last then
      t = t[last]
      if type(t) ~= "table" then return end
    end
    last = part
  end
  if type(t[last]) == "string" then t[last] = restjson.base64(t[last]) end
end

local function route_of(svc, op)
  local route = svc.routes[op] or (svc.default_route and svc.default_route(op))
  if not route then error("awsnet.aws: no REST route known for " .. svc.signing_name .. ":" .. op, 3) end
  return route
end

--- Builds the HTTP request (without signature) for `op`.
-- @tparam table svc the service (from aws/services.lua), with its route for `op`
-- @tparam string endpoint the endpoint URL, without a trailing "/"
-- @tparam string op the operation
-- @tparam[opt] table params members by name
-- @treturn table {method, url, headers, body}
function restjson.request(svc, endpoint, op, params)
  local route = route_of(svc, op)
  local rest = copy(params or {})
  local path = route.path:gsub("{([%w]+)(%+?)}", function(name, greedy)
    local v = rest[name]
    if v == nil then error("awsnet.aws: " .. op .. " needs " .. name, 4) end
    rest[name] = nil
    local s = tostring(v)
    if greedy == "+" then return (sigv4.uri_encode(s):gsub("%%2F", "/")) end
    return sigv4.uri_encode(s)
  end)
  local q = {}
  for member, name in pairs(route.query or {}) do
    if rest[member] ~= nil then
      q[#q + 1] = sigv4.uri_encode(name) .. "=" .. sigv4.uri_encode(tostring(rest[member]))
      rest[member] = nil
    end
  end
  table.sort(q)
  local headers = {}
  for member, name in pairs(route.headers or {}) do
    if rest[member] ~= nil then
      headers[name] = tostring(rest[member])
      rest[member] = nil
    end
  end
  local body
  if route.payload then
    body = rest[route.payload]
    rest[route.payload] = nil
    if body ~= nil then assert(type(body) == "string", route.payload .. " must be a string") end
  elseif route.method ~= "GET" and route.method ~= "DELETE" then
    for _, blob in ipairs(route.blobs or {}) do encode_blob(rest, blob) end
    body = cjson.encode(without_empty(rest))
    if body == "[]" then body = "{}" end
    headers["Content-Type"] = "application/json"
    rest = {}
  end
  local leftover = next(rest)
  if leftover then error("awsnet.aws: " .. op .. " has no member " .. tostring(leftover), 3) end
  return { method = route.method, url = endpoint .. path .. (#q > 0 and ("?" .. table.concat(q, "&")) or ""),
    headers = headers, body = body }
end

local function drop_nulls(v)
  if type(v) ~= "table" then return v end
  for k, x in pairs(v) do
    if x == cjson.null then v[k] = nil else drop_nulls(x) end
  end
  return v
end

local function decode(body)
  if body == nil or body:match("^%s*$") then return {} end
  local ok, v = pcall(cjson.decode, body)
  if not ok then return nil end
  return drop_nulls(v)
end

--- Turns an HTTP response into the result table, or nil, err.
-- @tparam table svc the service (from aws/services.lua)
-- @tparam string op the operation
-- @tparam table res the HTTP response {status, headers, body}
-- @treturn table the result, or nil, err: AWS's error type (else "http_<status>") with status and
-- request_id, or "invalid_response" when the body is not JSON
function restjson.response(svc, op, res)
  local request_id = res.headers["x-amzn-requestid"] or res.headers["x-amz-request-id"]
  if res.status >= 300 then
    local doc = decode(res.body)
    doc = type(doc) == "table" and doc or {}
    local code = res.headers["x-amzn-errortype"] or doc.__type or doc.code or doc.Code
    if type(code) == "string" then code = code:match("^([^:]*)"):match("([^#]*)$") end
    if code == "" or type(code) ~= "string" then code = nil end
    local message = doc.message or doc.Message or doc.errorMessage
    return errors.fail(code or ("http_" .. res.status),
      type(message) == "string" and message or ("HTTP " .. res.status .. " without an AWS error body"),
      { status = res.status, request_id = request_id })
  end
  local route = route_of(svc, op)
  local result
  if route.response_payload then
    result = { [route.response_payload] = res.body }
  else
    result = decode(res.body)
    if type(result) ~= "table" then
      return errors.fail("invalid_response", "response body is not a JSON object",
        { status = res.status, request_id = request_id })
    end
  end
  for member, header in pairs(route.response_headers or {}) do result[member] = res.headers[header] end
  if route.status_member then result[route.status_member] = res.status end
  return result
end

return restjson
