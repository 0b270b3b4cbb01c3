--- The `json` protocol (1.0 and 1.1) by shape, and the JSON bodies rest-json shares with it.
--
-- Requests: POST to the operation's requestUri with `X-Amz-Target: <targetPrefix>.<Op>` and
-- `Content-Type: application/x-amz-json-<jsonVersion>`, the input as a JSON object (at least
-- `{}`); members under their `locationName`, timestamps as epoch seconds unless the shape says
-- otherwise, blobs base64, documents as given. Services that are awsQueryCompatible also get
-- `x-amzn-query-mode: true`.
-- Answers are decoded by `jsoncodec` (64-bit integers exact) and typed by shape; nulls are
-- skipped. Errors: the code from `x-amzn-query-error` (awsQueryCompatible), `x-amzn-errortype`
-- (rest-json), else the body's `__type` or `code`, with a `namespace#` prefix and a `:uri`
-- suffix removed.
-- @module awsnet.aws.protocol.json
local errors = require "awsnet.errors"
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
local scalar = require "awsnet.aws.protocol.scalar"
local shape = require "awsnet.aws.shape"

local json = {}

local trait = shape.trait

local to_wire

-- A checked value as the JSON value it is sent as.
function to_wire(m, ref, v)
  local s = m.shapes[ref.shape]
  local t = s.type
  if t == "structure" then
    if s.document then return v end
    local out, order = {}, {}
    for _, name in ipairs(shape.member_names(s)) do
      local value = v[name]
      local mref = s.members[name]
      if not shape.absent(value) and not mref.location then
        local wire = trait(mref, m.shapes[mref.shape], "locationName") or name
        out[wire] = to_wire(m, mref, value)
        order[#order + 1] = wire
      end
    end
    return jsoncodec.with_keys(out, order)
  end
  if t == "list" then
    local out = jsoncodec.array()
    for i, item in ipairs(v) do out[i] = to_wire(m, s.member, item) end
    return out
  end
  if t == "map" then
    local out, order = {}, {}
    for _, k in ipairs(jsoncodec.keys(v)) do
      out[k] = to_wire(m, s.value, v[k])
      order[#order + 1] = k
    end
    return jsoncodec.with_keys(out, order)
  end
  if t == "timestamp" then return scalar.format_timestamp(v, trait(ref, s, "timestampFormat") or "unixTimestamp") end
  if t == "blob" then return scalar.base64(v) end
  if (t == "float" or t == "double") and (v ~= v or v == math.huge or v == -math.huge) then
    return scalar.number_text(v)
  end
  return v
end

--- The JSON text of a checked value by shape (a structure's members that go elsewhere in a
-- rest request, `location`, are left out).
-- @tparam table m the model
-- @tparam table ref the shape reference
-- @param v the checked value
-- @treturn string the JSON text, or nil, err
function json.encode(m, ref, v)
  return jsoncodec.encode(to_wire(m, ref, v))
end

local from_wire

local function is_null(v)
  return v == nil or v == jsoncodec.null
end

-- A decoded JSON value typed by shape.
function from_wire(m, ref, v, opts)
  local s = m.shapes[ref.shape]
  local t = s.type
  if t == "structure" then
    if s.document then return v end
    if type(v) ~= "table" then return nil end
    local out = {}
    for _, name in ipairs(shape.member_names(s)) do
      local mref = s.members[name]
      if not shape.http_bound(mref) then
        local raw = v[trait(mref, m.shapes[mref.shape], "locationName") or name]
        if not is_null(raw) then out[name] = from_wire(m, mref, raw, opts) end
      end
    end
    -- for checking an answer against the model: keys no member reads
    if opts and opts.on_unknown then
      local known = {}
      for name, mref in pairs(s.members or {}) do
        known[trait(mref, m.shapes[mref.shape], "locationName") or name] = true
      end
      for k in pairs(v) do
        if not known[k] then opts.on_unknown(ref.shape, tostring(k)) end
      end
    end
    return out
  end
  if t == "list" then
    if type(v) ~= "table" then return nil end
    local out = jsoncodec.array()
    for i = 1, #v do
      if not is_null(v[i]) then out[#out + 1] = from_wire(m, s.member, v[i], opts) end
    end
    return out
  end
  if t == "map" then
    if type(v) ~= "table" then return nil end
    local out = {}
    for k, item in pairs(v) do
      if not is_null(item) then out[k] = from_wire(m, s.value, item, opts) end
    end
    return out
  end
  if t == "timestamp" then
    local e = scalar.to_epoch(v)
    return e and scalar.timestamp_out(e, opts)
  end
  if t == "blob" then return type(v) == "string" and scalar.unbase64(v) or nil end
  if t == "integer" or t == "long" or t == "short" or t == "byte" then
    return type(v) == "number" and math.tointeger(v) or nil
  end
  if t == "float" or t == "double" then
    if type(v) == "string" then return scalar.float(v) end
    return type(v) == "number" and v + 0.0 or nil
  end
  return v
end

--- Types a decoded JSON value by shape.
-- @tparam table m the model
-- @tparam table ref the shape reference
-- @param v the value from `jsoncodec.decode`
-- @tparam[opt] table opts parse options ({timestamp = ...})
-- @return the typed value
function json.decode_shape(m, ref, v, opts)
  return from_wire(m, ref, v, opts or {})
end

--- Builds the unsigned request of a `json` protocol operation.
-- @tparam table m the model
-- @tparam table op the operation
-- @tparam table params checked parameters
-- @treturn table {method, url, headers, body}, or nil, err
function json.build(m, op, params)
  local md = m.metadata
  local body = "{}"
  if op.input then
    local err
    body, err = json.encode(m, op.input, params)
    if not body then return nil, err end
  end
  local headers = {
    ["X-Amz-Target"] = (md.targetPrefix or "") .. "." .. op.name,
    ["Content-Type"] = "application/x-amz-json-" .. (md.jsonVersion or "1.0"),
  }
  if md.awsQueryCompatible then headers["x-amzn-query-mode"] = "true" end
  local http = op.http or {}
  return { method = http.method or "POST", url = http.requestUri or "/", headers = headers, body = body }
end

--- A header's value, whatever the case of its name.
-- @tparam ?table headers name -> value
-- @tparam string name the name in lower case
-- @treturn ?string the value
function json.header(headers, name)
  for k, v in pairs(headers or {}) do
    if k:lower() == name then return v end
  end
end
local header = json.header

--- Parses a successful `json` protocol answer.
-- @tparam table m the model
-- @tparam table op the operation
-- @tparam table resp {status, headers, body}
-- @tparam table opts parse options
-- @treturn table the result, or nil, err ("invalid_response")
function json.parse(m, op, resp, opts)
  if not op.output then return {} end
  local body = resp.body or ""
  if not body:find("%S") then return {} end
  local v, err = jsoncodec.decode(body)
  if v == nil then
    return errors.fail("invalid_response", "the answer is not JSON: " .. err.message, { status = resp.status })
  end
  return from_wire(m, op.output, v, opts) or {}
end

-- An error code as sent, without "namespace#" and ":uri".
local function clean_code(code)
  code = code:gsub(":.*$", "")
  return (code:gsub("^.*#", ""))
end

--- Reads an error answer of the json or rest-json protocol.
-- @tparam table m the model
-- @tparam table resp {status, headers, body}
-- @tparam table opts parse options
-- @tparam[opt] boolean rest true for rest-json (the `x-amzn-errortype` header first)
-- @return nil
-- @treturn table err {code, message, status, request_id, type, data}
function json.error(m, resp, opts, rest)
  local body = {}
  if (resp.body or ""):find("%S") then
    local v = jsoncodec.decode(resp.body)
    if type(v) == "table" then body = v end
  end
  local raw = (rest and header(resp.headers, "x-amzn-errortype")) or body.__type or body.code
  if is_null(raw) or type(raw) ~= "string" then raw = nil end
  if not raw and not rest then raw = header(resp.headers, "x-amzn-errortype") end
  local code = raw and clean_code(raw) or tostring(resp.status)
  local fields = { status = resp.status, request_id = header(resp.headers, "x-amzn-requestid") }
  local eshape = shape.error_shape(m, code)
  local query_error = m.metadata.awsQueryCompatible and header(resp.headers, "x-amzn-query-error")
  if query_error then
    local qcode, qtype = query_error:match("^([^;]*);(.*)$")
    if qcode and qcode ~= "" then
      code = qcode
      fields.type = qtype
    end
  end
  local message = body.message
  if is_null(message) then message = body.Message end
  if is_null(message) then message = header(resp.headers, "x-amzn-error-message") end
  if eshape then fields.data = from_wire(m, { shape = eshape }, body, opts or {}) end
  return errors.fail(code, type(message) == "string" and message or "", fields)
end

return json
