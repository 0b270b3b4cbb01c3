--- The `rest-json` and `rest-xml` protocols: the HTTP binding of members (URI labels, greedy
-- labels, query string, headers, prefixed header maps, status code, payload) around a JSON or
-- XML body.
--
-- Requests follow botocore's BaseRestSerializer: labels are percent-encoded (a greedy `{Key+}`
-- keeps "/"), query values and URI timestamps are ISO 8601, header timestamps RFC 822, header
-- lists comma-joined, `jsonvalue` headers base64 of their JSON. A `payload` member that is a blob
-- or a string is the body as it is; a structure payload is encoded alone; otherwise the members
-- bound to no location make the body (rest-json: a JSON object, `{}` when the input has body
-- members but none is set; rest-xml: an element named by the input's `locationName`).
-- Answers: the same bindings read back, typed by shape.
-- @module awsnet.aws.protocol.rest
local errors = require "awsnet.errors"
local json = require "awsnet.aws.protocol.json"
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
local query = require "awsnet.aws.protocol.query"
local scalar = require "awsnet.aws.protocol.scalar"
local shape = require "awsnet.aws.shape"
local xml = require "awsnet.aws.protocol.xml"
local xmldoc = require "awsnet.aws.protocol.xmldoc"

local rest = {}

local trait = shape.trait

-- A scalar as text for a URI label, a query value or a header.
local function text_of(s, ref, v, ts_default)
  local t = s.type
  if t == "timestamp" then
    return tostring(scalar.format_timestamp(v, trait(ref, s, "timestampFormat") or ts_default))
  end
  if t == "boolean" then return v and "true" or "false" end
  if t == "blob" then return scalar.base64(v) end
  if type(v) == "number" then return scalar.number_text(v) end
  return tostring(v)
end

-- A header value: lists comma-joined (items with a comma or a quote quoted), jsonvalue as base64.
local function header_text(m, ref, v)
  local s = m.shapes[ref.shape]
  if s.type == "list" then
    local ms = m.shapes[s.member.shape]
    local parts = {}
    for i, item in ipairs(v) do
      local txt = text_of(ms, s.member, item, "rfc822")
      if ms.type == "string" and txt:find('[,"]') then txt = '"' .. txt:gsub('[\\"]', "\\%0") .. '"' end
      parts[i] = txt
    end
    return table.concat(parts, ", ")
  end
  if s.type == "string" and trait(ref, s, "jsonvalue") then
    return scalar.base64(jsoncodec.encode(v) or "null")
  end
  return text_of(s, ref, v, "rfc822")
end

local function render_uri(template, labels)
  local missing
  local out = template:gsub("{([^}]+)}", function(name)
    local greedy = name:sub(-1) == "+"
    if greedy then name = name:sub(1, -2) end
    local v = labels[name]
    if v == nil then
      missing = name
      return ""
    end
    return scalar.percent(v, greedy and "/" or nil)
  end)
  return out, missing
end

local function body_members(s)
  local out = {}
  for _, name in ipairs(shape.member_names(s)) do
    if not s.members[name].location then out[#out + 1] = name end
  end
  return out
end

-- The body and its content type for the input's payload or body members.
local function build_body(m, op, input, params, is_xml)
  local payload = input.payload
  if payload then
    local pref = input.members[payload]
    local ps = m.shapes[pref.shape]
    local v = params[payload]
    if ps.type == "blob" or ps.type == "string" then
      if v == nil then return "", nil end
      return v, (ps.type == "blob" and "application/octet-stream" or "text/plain")
    end
    if v == nil then
      if is_xml then return "", nil end
      return "{}", "application/json"
    end
    if is_xml then
      local name = trait(pref, ps, "locationName") or pref.shape
      return xml.write(m, pref, v, name), "application/xml"
    end
    return json.encode(m, pref, v), "application/json"
  end
  local names = body_members(input)
  if #names == 0 then return "", nil end
  local any = false
  for _, n in ipairs(names) do
    if params[n] ~= nil then any = true end
  end
  if is_xml then
    if not any then return "", nil end
    local name = op.input.locationName or op.input.shape
    local ref = { shape = op.input.shape, xmlNamespace = op.input.xmlNamespace }
    return xml.write(m, ref, params, name), "application/xml"
  end
  return json.encode(m, op.input, params), "application/json"
end

--- Builds the unsigned request of a rest-json or rest-xml operation.
-- @tparam table m the model
-- @tparam table op the operation
-- @tparam table params checked parameters
-- @treturn table {method, url, headers, body}, or nil, err ("invalid_parameter")
function rest.build(m, op, params)
  local http = op.http or {}
  local template = http.requestUri or "/"
  local path, fixed_query = template:match("^([^?]*)%??(.*)$")
  local labels, qs, headers = {}, {}, {}
  local explicit = {}
  local input = op.input and m.shapes[op.input.shape]
  local map_queries = {}
  for _, name in ipairs(input and shape.member_names(input) or {}) do
    local ref = input.members[name]
    local s = m.shapes[ref.shape]
    local v = params[name]
    local wire = trait(ref, s, "locationName") or name
    if v ~= nil then
      if ref.location == "uri" then
        labels[wire] = text_of(s, ref, v, "iso8601")
      elseif ref.location == "querystring" then
        if s.type == "map" then
          map_queries[#map_queries + 1] = { s, v }
        elseif s.type == "list" then
          for _, item in ipairs(v) do
            qs[#qs + 1] = { wire, text_of(m.shapes[s.member.shape], s.member, item, "iso8601") }
          end
          explicit[wire] = true
        else
          qs[#qs + 1] = { wire, text_of(s, ref, v, "iso8601") }
          explicit[wire] = true
        end
      elseif ref.location == "header" then
        if not (s.type == "list" and #v == 0) then headers[wire] = header_text(m, ref, v) end
      elseif ref.location == "headers" then
        for _, k in ipairs(jsoncodec.keys(v)) do headers[wire .. k] = tostring(v[k]) end
      end
    end
  end
  -- a map bound to the query string adds the keys no member set
  for _, mq in ipairs(map_queries) do
    local s, v = mq[1], mq[2]
    for _, k in ipairs(jsoncodec.keys(v)) do
      if not explicit[k] then
        local vs = m.shapes[s.value.shape]
        if vs.type == "list" then
          for _, item in ipairs(v[k]) do qs[#qs + 1] = { k, tostring(item) } end
        else
          qs[#qs + 1] = { k, tostring(v[k]) }
        end
      end
    end
  end
  local url, missing = render_uri(path, labels)
  if missing then
    return errors.fail("invalid_parameter", missing .. ": missing the URI label " .. missing, { path = missing })
  end
  local parts = {}
  for piece in fixed_query:gmatch("[^&]+") do parts[#parts + 1] = piece end
  for _, kv in ipairs(qs) do parts[#parts + 1] = scalar.percent(kv[1]) .. "=" .. scalar.percent(kv[2]) end
  if #parts > 0 then url = url .. "?" .. table.concat(parts, "&") end
  local body, ctype = "", nil
  if input then
    local err
    body, ctype = build_body(m, op, input, params, m.metadata.protocol == "rest-xml")
    if body == nil then
      err = ctype
      return nil, err
    end
  end
  if body ~= "" and ctype then
    local has = false
    for k in pairs(headers) do
      if k:lower() == "content-type" then has = true end
    end
    if not has then headers["Content-Type"] = ctype end
  end
  return { method = http.method or "POST", url = url, headers = headers, body = body }
end

-- ---- answers -------------------------------------------------------------------------------

local function header_value(m, ref, raw, opts)
  local s = m.shapes[ref.shape]
  if s.type == "list" then
    local ms = m.shapes[s.member.shape]
    local out = jsoncodec.array()
    if ms.type == "timestamp" and not trait(s.member, ms, "timestampFormat") then
      -- HTTP dates hold a comma themselves: "Mon, 16 Dec 2019 23:48:18 GMT, Tue, ..."
      for d in raw:gmatch("%a%a%a, [^,]+") do out[#out + 1] = xml.scalar(ms, d, opts) end
      return out
    end
    local i, n = 1, #raw
    while i <= n do
      local item
      local q = raw:match("^%s*()\"", i)
      if q then
        local j, buf = q + 1, {}
        while j <= n do
          local c = raw:sub(j, j)
          if c == "\\" then
            buf[#buf + 1] = raw:sub(j + 1, j + 1)
            j = j + 2
          elseif c == '"' then
            j = j + 1
            break
          else
            buf[#buf + 1] = c
            j = j + 1
          end
        end
        item = table.concat(buf)
        i = (raw:find(",", j, true) or n) + 1
      else
        local e = raw:find(",", i, true) or (n + 1)
        item = raw:sub(i, e - 1):match("^%s*(.-)%s*$")
        i = e + 1
      end
      out[#out + 1] = xml.scalar(ms, item, opts)
    end
    return out
  end
  if s.type == "string" and trait(ref, s, "jsonvalue") then
    local decoded = scalar.unbase64(raw)
    return decoded and jsoncodec.decode(decoded)
  end
  return xml.scalar(s, raw, opts)
end

-- The members bound to the status code, headers and header maps, into `result`.
local function bind_http(m, s, resp, result, opts)
  local lower = {}
  for k, v in pairs(resp.headers) do lower[k:lower()] = v end
  for _, name in ipairs(shape.member_names(s)) do
    local ref = s.members[name]
    local wire = trait(ref, m.shapes[ref.shape], "locationName") or name
    if ref.location == "statusCode" then
      result[name] = resp.status
    elseif ref.location == "header" then
      local raw = lower[wire:lower()]
      if raw ~= nil then result[name] = header_value(m, ref, raw, opts) end
    elseif ref.location == "headers" then
      local prefix = wire:lower()
      local map = {}
      for k, v in pairs(resp.headers) do
        if k:lower():sub(1, #prefix) == prefix then map[k:sub(#prefix + 1)] = v end
      end
      result[name] = map
    end
  end
end

--- Parses a successful rest-json or rest-xml answer.
-- @tparam table m the model
-- @tparam table op the operation
-- @tparam table resp {status, headers, body}
-- @tparam table opts parse options
-- @treturn table the result, or nil, err ("invalid_response")
function rest.parse(m, op, resp, opts)
  if not op.output then return {} end
  local out_shape = m.shapes[op.output.shape]
  local is_xml = m.metadata.protocol == "rest-xml"
  local result = {}
  local payload = out_shape.payload
  local body = resp.body or ""
  if payload then
    local pref = out_shape.members[payload]
    local ps = m.shapes[pref.shape]
    if ps.type == "blob" or ps.type == "string" then
      result[payload] = body
    elseif body:find("%S") then
      if is_xml then
        local root, err = xmldoc.parse(body)
        if not root then return errors.fail("invalid_response", "the answer is not XML: " .. err.message) end
        result[payload] = xml.parse(m, pref, root, opts)
      else
        local v, err = jsoncodec.decode(body)
        if v == nil then return errors.fail("invalid_response", "the answer is not JSON: " .. err.message) end
        result[payload] = json.decode_shape(m, pref, v, opts)
      end
    end
  elseif body:find("%S") then
    if is_xml then
      local root, err = xmldoc.parse(body)
      if not root then return errors.fail("invalid_response", "the answer is not XML: " .. err.message) end
      result = xml.parse(m, op.output, root, opts)
    else
      local v, err = jsoncodec.decode(body)
      if v == nil then return errors.fail("invalid_response", "the answer is not JSON: " .. err.message) end
      result = json.decode_shape(m, op.output, v, opts) or {}
    end
  end
  bind_http(m, out_shape, resp, result, opts)
  return result
end

--- Reads an error answer: rest-json (`x-amzn-errortype`, then the body's code) or rest-xml
-- (`<ErrorResponse><Error>` or `<Error>`).
-- @tparam table m the model
-- @tparam table resp {status, headers, body}
-- @tparam table opts parse options
-- @return nil
-- @treturn table err
function rest.error(m, resp, opts)
  local _, err
  if m.metadata.protocol == "rest-xml" then
    _, err = query.error(m, resp, opts)
  else
    _, err = json.error(m, resp, opts, true)
  end
  local eshape = shape.error_shape(m, err.code)
  if eshape then
    err.data = err.data or {}
    bind_http(m, m.shapes[eshape], resp, err.data, opts)
  end
  return nil, err
end

-- for the server side (awsnet.aws.protocol.server): the same scalar texts both ways
rest.text_of, rest.header_text, rest.header_value = text_of, header_text, header_value

return rest
