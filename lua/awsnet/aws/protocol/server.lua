--- The server side of the protocols, the mirror of `build` and `parse`: a request read back into
-- params by the operation's input shape, and a result (by the model's member names) written as the
-- answer by its output shape, with errors in each protocol's shape. The same wire names, scalar
-- texts and writers as the client side (query.lua, json.lua, rest.lua, xml.lua), so the two cannot
-- drift: what `build` sends, `parse_request` reads back; what `render` writes, `parse` reads back.
--
-- A request member the model does not know is reported to `opts.on_unknown(path)` and left out;
-- the caller decides (EC2 refuses it with UnknownParameter, as AWS does).
-- A result's keys that start with "_" are the caller's own and never go on the wire; any other key
-- the output shape does not have is reported to `opts.on_unknown` and left out.
-- @module awsnet.aws.protocol.server
local errors = require "awsnet.errors"
local json = require "awsnet.aws.protocol.json"
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
local rest = require "awsnet.aws.protocol.rest"
local scalar = require "awsnet.aws.protocol.scalar"
local shape = require "awsnet.aws.shape"
local xml = require "awsnet.aws.protocol.xml"
local xmldoc = require "awsnet.aws.protocol.xmldoc"

local server = {}

local trait = shape.trait

local function invalid(path, message)
  return errors.fail("invalid_parameter", string.format("%s: %s", path, message), { path = path })
end

--- Decodes form encoding: "+" is a space, %XX a byte.
-- @tparam string s the encoded text
-- @treturn string the decoded text
function server.url_decode(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
local url_decode = server.url_decode

--- Decodes form encoding (`a=1&b=2`, "+" a space, %XX a byte) into a map, in order as pairs too.
-- @tparam ?string text the form
-- @treturn table name -> value
function server.parse_form(text)
  local out = {}
  for pair in (text or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    out[url_decode(k)] = url_decode(v)
  end
  return out
end

-- ---- query and ec2 requests ---------------------------------------------------------------------

-- The wire name of a member as query.lua writes it, so that both sides read one rule.
local wire_name = require("awsnet.aws.protocol.query").wire_name

local read_form

-- The value under `key` read by `ref`'s shape from the flat form `f` (key -> value), with
-- `prefixes` the set of every dotted prefix of its keys; consumed keys are marked in `used`.
function read_form(m, ec2, ref, f, prefixes, used, key)
  local s = m.shapes[ref.shape]
  local t = s.type
  if t == "structure" then
    if not prefixes[key] then return nil end
    local out = {}
    for _, name in ipairs(shape.member_names(s)) do
      local mref = s.members[name]
      local w = wire_name(ec2, mref, m.shapes[mref.shape], name)
      local v, err = read_form(m, ec2, mref, f, prefixes, used, key == "" and w or (key .. "." .. w))
      if err then return nil, err end
      out[name] = v
    end
    return out
  elseif t == "list" then
    if f[key] == "" and not ec2 then
      used[key] = true
      return jsoncodec.array()
    end
    local base = key
    if not ec2 then
      local mref = s.member
      local inner = trait(mref, m.shapes[mref.shape], "locationName")
      if trait(ref, s, "flattened") then
        if inner then
          local head = key:match("^(.*)%.[^.]*$")
          base = (head and (head .. ".") or "") .. inner
        end
      else
        base = key .. "." .. (inner or "member")
        -- AWS's own API examples write such lists as `Name.member.N` too (RDS's SubnetIds)
        if inner and not prefixes[base] and prefixes[key .. ".member"] then base = key .. ".member" end
      end
    end
    if not prefixes[base] then return nil end
    local out, i = jsoncodec.array(), 1
    while prefixes[base .. "." .. i] do
      local v, err = read_form(m, ec2, s.member, f, prefixes, used, base .. "." .. i)
      if err then return nil, err end
      out[#out + 1] = v
      i = i + 1
    end
    return out
  elseif t == "map" then
    local base = trait(ref, s, "flattened") and key or (key .. ".entry")
    if not prefixes[base] then return nil end
    local kname = wire_name(false, s.key, m.shapes[s.key.shape], "key")
    local vname = wire_name(false, s.value, m.shapes[s.value.shape], "value")
    local out, i = {}, 1
    while prefixes[base .. "." .. i] do
      local entry = base .. "." .. i
      local k = read_form(m, ec2, s.key, f, prefixes, used, entry .. "." .. kname)
      local v, err = read_form(m, ec2, s.value, f, prefixes, used, entry .. "." .. vname)
      if err then return nil, err end
      if k ~= nil then out[k] = v end
      i = i + 1
    end
    return out
  end
  local text = f[key]
  if text == nil then return nil end
  used[key] = true
  if t == "boolean" and text ~= "true" and text ~= "false" then
    return invalid(key, "expected true or false, got " .. text)
  end
  local v = xml.scalar(s, text, { timestamp = "epoch" })
  if v == nil then return invalid(key, "not a valid " .. t .. ": " .. text) end
  return v
end

local function query_request(m, op, req, opts)
  local f
  if (req.method or "POST") == "POST" then
    f = server.parse_form(req.body)
  else
    f = server.parse_form((req.url or req.target or ""):match("%?(.*)$"))
  end
  f.Action, f.Version = nil, nil
  local prefixes, used = { [""] = true }, {}
  for k in pairs(f) do
    local at = 1
    while true do
      local dot = k:find(".", at, true)
      if not dot then break end
      prefixes[k:sub(1, dot - 1)] = true
      at = dot + 1
    end
    prefixes[k] = true
  end
  local params = {}
  if op.input then
    local err
    params, err = read_form(m, m.metadata.protocol == "ec2", op.input, f, prefixes, used, "")
    if err then return nil, err end
  end
  local unknown = {}
  for k in pairs(f) do
    if not used[k] then unknown[#unknown + 1] = k end
  end
  table.sort(unknown)
  for _, k in ipairs(unknown) do
    if opts.on_unknown then opts.on_unknown(k) end
  end
  return params or {}
end

-- ---- json and rest-json requests ------------------------------------------------------------------

-- The keys of a decoded JSON object no member of `ref`'s structure reads, reported as paths.
local function json_unknown(m, ref, v, path, report)
  local s = m.shapes[ref.shape]
  if type(v) ~= "table" then return end
  if s.type == "structure" and not s.document then
    local by_wire = {}
    for name, mref in pairs(s.members or {}) do
      if not shape.http_bound(mref) then by_wire[trait(mref, m.shapes[mref.shape], "locationName") or name] = mref end
    end
    for k, item in pairs(v) do
      local p = path == "" and tostring(k) or (path .. "." .. tostring(k))
      if by_wire[k] then json_unknown(m, by_wire[k], item, p, report) else report(p) end
    end
  elseif s.type == "list" then
    for i, item in ipairs(v) do json_unknown(m, s.member, item, path .. "." .. i, report) end
  elseif s.type == "map" then
    for k, item in pairs(v) do json_unknown(m, s.value, item, path .. "." .. tostring(k), report) end
  end
end

local function json_body(m, ref, body, opts)
  if body == nil or not body:find("%S") then return {} end
  local v, err = jsoncodec.decode(body)
  local s = m.shapes[ref.shape]
  if v ~= nil and s.document then return v end
  if v == nil or type(v) ~= "table" then
    return errors.fail("invalid_request", "the body is not a JSON object" .. (err and (": " .. err.message) or ""))
  end
  if opts.on_unknown then json_unknown(m, ref, v, "", opts.on_unknown) end
  return json.decode_shape(m, ref, v, { timestamp = "epoch" }) or {}
end

-- A request path against a requestUri template: label -> decoded text, or nil when it does not fit.
local function match_uri(template, path)
  local names = {}
  local pattern = template:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"):gsub("{([^}]+)}", function(name)
    name = name:gsub("%%", "")
    if name:sub(-1) == "+" then
      names[#names + 1] = name:sub(1, -2)
      return "(.+)"
    end
    names[#names + 1] = name
    return "([^/]+)"
  end)
  local caps = { path:match("^" .. pattern .. "/?$") }
  if #caps == 0 and #names > 0 then return nil end
  if #names == 0 and not path:match("^" .. pattern .. "/?$") then return nil end
  local out = {}
  for i, name in ipairs(names) do
    out[name] = caps[i]:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return out
end

local function rest_request(m, op, req, opts)
  local http = op.http or {}
  local target = req.url or req.target or "/"
  local path, qtext = target:match("^([^?]*)%??(.*)$")
  local labels = match_uri((http.requestUri or "/"):match("^[^?]*"), path) or {}
  local qpairs = {}
  for pair in qtext:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    qpairs[#qpairs + 1] = { url_decode(k), url_decode(v) }
  end
  local headers = {}
  for k, v in pairs(req.headers or {}) do headers[k:lower()] = v end
  local input = op.input and m.shapes[op.input.shape]
  if not input then return {} end
  local params
  local payload = input.payload
  if payload then
    params = {}
    local pref = input.members[payload]
    local ps = m.shapes[pref.shape]
    if ps.type == "blob" or ps.type == "string" then
      if req.body and req.body ~= "" then params[payload] = req.body end
    elseif req.body and req.body:find("%S") then
      local v, err = json_body(m, pref, req.body, opts)
      if not v then return nil, err end
      params[payload] = v
    end
  else
    local err
    params, err = json_body(m, op.input, req.body, opts)
    if not params then return nil, err end
  end
  local explicit = {}
  -- the keys of the requestUri's own query ("?foo=bar&hello") are the operation's, not members
  for piece in ((http.requestUri or ""):match("%?(.*)$") or ""):gmatch("[^&]+") do
    explicit[url_decode(piece:match("^[^=]*"))] = true
  end
  for _, name in ipairs(shape.member_names(input)) do
    local ref = input.members[name]
    local s = m.shapes[ref.shape]
    local wire = trait(ref, s, "locationName") or name
    if ref.location == "uri" then
      if labels[wire] ~= nil then params[name] = xml.scalar(s, labels[wire], { timestamp = "epoch" }) end
    elseif ref.location == "querystring" and s.type ~= "map" then
      explicit[wire] = true
      for _, kv in ipairs(qpairs) do
        if kv[1] == wire then
          if s.type == "list" then
            params[name] = params[name] or jsoncodec.array()
            table.insert(params[name], xml.scalar(m.shapes[s.member.shape], kv[2], { timestamp = "epoch" }))
          else
            params[name] = xml.scalar(s, kv[2], { timestamp = "epoch" })
          end
        end
      end
    elseif ref.location == "header" then
      local raw = headers[wire:lower()]
      if raw ~= nil then params[name] = rest.header_value(m, ref, raw, { timestamp = "epoch" }) end
    elseif ref.location == "headers" then
      local prefix = wire:lower()
      for k, v in pairs(req.headers or {}) do
        if k:lower():sub(1, #prefix) == prefix then
          params[name] = params[name] or {}
          params[name][k:sub(#prefix + 1)] = v
        end
      end
    end
  end
  -- a map bound to the query string takes every query parameter (as Smithy's httpQueryParams
  -- does on a server), those a member also reads included
  local fixed = {}
  for piece in ((http.requestUri or ""):match("%?(.*)$") or ""):gmatch("[^&]+") do
    fixed[url_decode(piece:match("^[^=]*"))] = true
  end
  for _, name in ipairs(shape.member_names(input)) do
    local ref = input.members[name]
    local s = m.shapes[ref.shape]
    if ref.location == "querystring" and s.type == "map" then
      for _, kv in ipairs(qpairs) do
        if not fixed[kv[1]] then
          params[name] = params[name] or {}
          if m.shapes[s.value.shape].type == "list" then
            params[name][kv[1]] = params[name][kv[1]] or jsoncodec.array()
            table.insert(params[name][kv[1]], kv[2])
          else
            params[name][kv[1]] = kv[2]
          end
          explicit[kv[1]] = "map"
        end
      end
    end
  end
  -- query parameters no member reads: reported like unknown body members
  for _, kv in ipairs(qpairs) do
    if not explicit[kv[1]] and opts.on_unknown then opts.on_unknown("?" .. kv[1]) end
  end
  return params
end

--- Reads a request into params by the operation's input shape (the mirror of `build`).
-- @tparam table m the model
-- @tparam table op the operation
-- @tparam table req {method, url (or target: path and query), headers, body}
-- @tparam table opts {on_unknown = function(path) for each part of the request no member reads}
-- @treturn table params by member name (timestamps as epoch seconds, blobs raw bytes), or nil,
-- err ("invalid_parameter" with `path`, "invalid_request" for a body that is not JSON)
function server.parse_request(m, op, req, opts)
  local p = m.metadata.protocol
  if p == "query" or p == "ec2" then return query_request(m, op, req, opts) end
  if p == "json" then
    if not op.input then return {} end
    return json_body(m, op.input, req.body, opts)
  end
  if p == "rest-json" then return rest_request(m, op, req, opts) end
  return errors.fail("invalid_model", "no server side for protocol " .. tostring(p))
end

-- ---- results --------------------------------------------------------------------------------------

-- What XML 1.0 cannot carry (control characters, surrogates, U+FFFE/U+FFFF) as U+FFFD, so one
-- stored value cannot break every answer that holds it.
local function xml_safe(s)
  if not s:find("[%z\1-\8\11\12\14-\31\128-\255]") then return s end
  if utf8.len(s) and not s:find("[%z\1-\8\11\12\14-\31]") and not s:find("\xef\xbf[\xbe\xbf]") then return s end
  local out = {}
  for _, c in utf8.codes(utf8.len(s) and s or s:gsub("[\128-\255]", "?"), true) do
    local ok = c == 9 or c == 10 or c == 13 or (c >= 0x20 and c <= 0xD7FF) or (c >= 0xE000 and c <= 0xFFFD)
      or c >= 0x10000
    out[#out + 1] = ok and utf8.char(c) or "\u{FFFD}"
  end
  return table.concat(out)
end

local normalize

-- A result value made the checked value the writers take: timestamps as epoch seconds, integral
-- floats (a state read back from JSON) as integers, lists marked; unknown keys reported.
function normalize(m, ref, v, path, opts)
  if v == nil or v == jsoncodec.null then return nil end
  local s = m.shapes[ref.shape]
  local t = s.type
  local report = opts.on_unknown
  if t == "structure" then
    if s.document then return v end
    if type(v) ~= "table" then
      if report then report(path .. " (not a structure)") end
      return nil
    end
    local out = {}
    for k, item in pairs(v) do
      local mref = s.members and s.members[k]
      if mref then
        out[k] = normalize(m, mref, item, path == "" and k or (path .. "." .. k), opts)
      elseif report and not (type(k) == "string" and k:sub(1, 1) == "_") then
        report(path == "" and tostring(k) or (path .. "." .. tostring(k)))
      end
    end
    return out
  elseif t == "list" then
    if type(v) ~= "table" then return nil end
    local out = jsoncodec.array()
    for i = 1, #v do out[i] = normalize(m, s.member, v[i], path .. "." .. i, opts) end
    return out
  elseif t == "map" then
    if type(v) ~= "table" then return nil end
    local out = {}
    for k, item in pairs(v) do out[k] = normalize(m, s.value, item, path .. "." .. tostring(k), opts) end
    return out
  elseif t == "timestamp" then
    if type(v) == "number" then return v end
    return scalar.to_epoch(tostring(v))
  elseif t == "boolean" then
    return v == true or v == "true"
  elseif t == "integer" or t == "long" or t == "short" or t == "byte" then
    local n = tonumber(v)
    return n and math.tointeger(n) or n
  elseif t == "float" or t == "double" then
    if type(v) == "string" then return scalar.float(v) end
    local n = tonumber(v)
    return n and n + 0.0
  end
  v = tostring(v)
  if opts.xml then v = xml_safe(v) end
  return v
end

--- A result by the output shape as the checked value the writers take (see `render`).
-- @tparam table m the model
-- @tparam table ref the shape reference
-- @param v the result
-- @tparam[opt] table opts {on_unknown = function(path), xml = true to make text XML-safe}
-- @return the value
function server.normalize(m, ref, v, opts)
  return normalize(m, ref, v, "", opts or {})
end

local function xml_ns(m)
  local ns = m.metadata.xmlNamespace
  if type(ns) == "table" then ns = ns.uri end
  if ns and ns:sub(-1) ~= "/" then ns = ns .. "/" end
  return ns
end

-- The output structure's members as XML elements, in the model's order.
local function xml_members(m, ref, v)
  if not ref then return "" end
  local s = m.shapes[ref.shape]
  local out = {}
  for _, name in ipairs(shape.member_names(s)) do
    local mref = s.members[name]
    local value = v[name]
    if not shape.absent(value) then
      out[#out + 1] = xml.write(m, mref, value, trait(mref, m.shapes[mref.shape], "locationName") or name)
    end
  end
  return table.concat(out)
end

local XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'

--- Writes a result as the operation's answer by its output shape (the mirror of `parse`).
-- ec2: `<OpResponse xmlns=...><requestId/>members</OpResponse>` (an operation without output
-- answers `<return>true</return>`, as EC2 does); query: `<OpResponse><OpResult>members</OpResult>
-- <ResponseMetadata><RequestId/></ResponseMetadata></OpResponse>`; json: the members as a JSON
-- object; rest-json: the status code, headers and payload members bound as the model says, the rest
-- as a JSON object.
-- @tparam table m the model
-- @tparam table op the operation
-- @tparam ?table result by member name
-- @tparam table opts {request_id = "...", on_unknown = function(path)}
-- @treturn table {status, headers, body}
function server.render(m, op, result, opts)
  local p = m.metadata.protocol
  local rid = opts.request_id or ""
  local v = op.output and normalize(m, op.output, result or {}, "", { on_unknown = opts.on_unknown,
    xml = p == "ec2" or p == "query" }) or {}
  if p == "ec2" then
    local body = op.output and xml_members(m, op.output, v) or "<return>true</return>"
    return { status = 200, headers = { ["Content-Type"] = "text/xml;charset=UTF-8" },
      body = string.format('%s<%sResponse xmlns="%s"><requestId>%s</requestId>%s</%sResponse>',
        XML_DECL, op.name, xml_ns(m), xmldoc.escape(rid), body, op.name) }
  elseif p == "query" then
    local inner = ""
    if op.output then
      local wrapper = op.output.resultWrapper or (op.name .. "Result")
      inner = "<" .. wrapper .. ">" .. xml_members(m, op.output, v) .. "</" .. wrapper .. ">"
    end
    return { status = 200, headers = { ["Content-Type"] = "text/xml" },
      body = string.format('<%sResponse xmlns="%s">%s<ResponseMetadata><RequestId>%s</RequestId>'
        .. '</ResponseMetadata></%sResponse>', op.name, xml_ns(m), inner, xmldoc.escape(rid), op.name) }
  elseif p == "json" then
    local body = op.output and json.encode(m, op.output, v) or "{}"
    return { status = 200, body = body, headers = { ["x-amzn-RequestId"] = rid,
      ["Content-Type"] = "application/x-amz-json-" .. (m.metadata.jsonVersion or "1.0") } }
  elseif p == "rest-json" then
    local http = op.http or {}
    local resp = { status = http.responseCode or 200, body = "",
      headers = { ["x-amzn-RequestId"] = rid, ["Content-Type"] = "application/json" } }
    if not op.output then return resp end
    local s = m.shapes[op.output.shape]
    local has_body = false
    for _, name in ipairs(shape.member_names(s)) do
      local ref = s.members[name]
      local ms = m.shapes[ref.shape]
      local value = v[name]
      local wire = trait(ref, ms, "locationName") or name
      if ref.location == "statusCode" then
        if value ~= nil then resp.status = value end
      elseif ref.location == "header" then
        if value ~= nil and not (ms.type == "list" and #value == 0) then resp.headers[wire] = rest.header_text(m, ref, value) end
      elseif ref.location == "headers" then
        for _, k in ipairs(jsoncodec.keys(value or {})) do resp.headers[wire .. k] = tostring(value[k]) end
      elseif not ref.location then
        has_body = true
      end
    end
    if s.payload then
      local pref = s.members[s.payload]
      local ps = m.shapes[pref.shape]
      local value = v[s.payload]
      if ps.type == "blob" or ps.type == "string" then
        resp.body = value or ""
        resp.headers["Content-Type"] = ps.type == "blob" and "application/octet-stream" or "text/plain"
      elseif value ~= nil then
        resp.body = json.encode(m, pref, value)
      end
    elseif has_body then
      resp.body = json.encode(m, op.output, v)
    end
    return resp
  end
  return errors.fail("invalid_model", "no server side for protocol " .. tostring(p))
end

--- Writes an error answer in the protocol's shape.
-- ec2: `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`;
-- query: `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`
-- (Sender below 500, Receiver from 500); json and rest-json: `x-amzn-ErrorType` and a body
-- {__type, message} with the modeled error's other members (`err.data`) by their shape.
-- @tparam table m the model
-- @tparam table err {code, message, status (default 400), data}
-- @tparam table opts {request_id}
-- @treturn table {status, headers, body}
function server.render_error(m, err, opts)
  local p = m.metadata.protocol
  local status = err.status or 400
  local rid = opts.request_id or ""
  local esc = function(s) return xmldoc.escape(xml_safe(tostring(s or ""))) end
  if p == "ec2" then
    return { status = status, headers = { ["Content-Type"] = "text/xml;charset=UTF-8" },
      body = string.format('%s<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors>'
        .. '<RequestID>%s</RequestID></Response>', XML_DECL, esc(err.code), esc(err.message), esc(rid)) }
  elseif p == "query" then
    return { status = status, headers = { ["Content-Type"] = "text/xml" },
      body = string.format('<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message>'
        .. '</Error><RequestId>%s</RequestId></ErrorResponse>', xml_ns(m), status >= 500 and "Receiver" or "Sender",
        esc(err.code), esc(err.message), esc(rid)) }
  end
  local body = {}
  local eshape = shape.error_shape(m, err.code)
  if eshape and type(err.data) == "table" then
    local v = normalize(m, { shape = eshape }, err.data, "", {})
    body = jsoncodec.decode(json.encode(m, { shape = eshape }, v)) or {}
  end
  body.__type = err.code
  body.message = err.message
  local ctype = p == "json" and ("application/x-amz-json-" .. (m.metadata.jsonVersion or "1.0")) or "application/json"
  return { status = status, body = jsoncodec.encode(body),
    headers = { ["Content-Type"] = ctype, ["x-amzn-RequestId"] = rid, ["x-amzn-ErrorType"] = err.code } }
end

return server
