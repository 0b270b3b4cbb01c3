--- Wire formats of the AWS protocols the sandbox speaks: query/EC2 form parameters in, EC2 XML,
-- query XML (STS, IAM, RDS) and JSON (RAM, Lambda) out, with AWS's error shapes.
-- @module awsnet.sandbox.wire
local cjson = require "cjson"
local errors = require "awsnet.errors"

local wire = {}

local function url_decode(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
--- Decodes form encoding: "+" is a space, %XX a byte.
-- @function url_decode
-- @tparam string s the encoded text
-- @treturn string
wire.url_decode = url_decode

--- Decodes `a=1&b=2` into a flat map.
-- @tparam ?string text the form (nil is empty)
-- @treturn table name -> value
function wire.parse_form(text)
  local out = {}
  for pair in (text or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    out[url_decode(k)] = url_decode(v)
  end
  return out
end

--- Splits a request target into its path and its decoded query map.
-- @tparam string target "/path?a=1"
-- @treturn string the decoded path
-- @treturn table the query map
function wire.split_target(target)
  local path, query = target:match("^([^?]*)%??(.*)$")
  return url_decode(path), wire.parse_form(query)
end

--- Nests flat query keys: "Filter.1.Value.2" = v becomes p.Filter[1].Value[2] = v.
-- @tparam table flat name -> value
-- @treturn table the nested parameters
function wire.nest(flat)
  local root = {}
  for key, value in pairs(flat) do
    local node, parts = root, {}
    for part in key:gmatch("[^.]+") do parts[#parts + 1] = math.tointeger(tonumber(part)) or part end
    if #parts == 0 then goto next_key end   -- "=" alone: nothing to set
    for i = 1, #parts - 1 do
      local p = parts[i]
      if type(node[p]) ~= "table" then node[p] = {} end
      node = node[p]
    end
    node[parts[#parts]] = value
    ::next_key::
  end
  return root
end

--- The array of a query list whatever its wire wrapping: `X.1`, `X.member.1`, `X.Name.1`.
-- @param v the nested parameter (anything but a table is an empty list)
-- @treturn table the array
function wire.list(v)
  if type(v) ~= "table" then return {} end
  if v[1] ~= nil then return v end
  for _, child in pairs(v) do
    if type(child) == "table" and child[1] ~= nil then return child end
  end
  return {}
end

-- Lists carry their XML element name (or none: the protocol's default) in a metatable.
local LIST = {}

--- Marks `items` as a list. In XML each element is named `tag` (default: the protocol's "item"
-- or "member") and the list itself `xml_name` (default: the field name, first letter lowered
-- for EC2), so one table renders as AWS's XML and as the JSON the AWS CLI prints.
-- @tparam[opt] table items the elements (default: a new empty list)
-- @tparam[opt] string tag the XML name of each element
-- @tparam[opt] string xml_name the XML name of the list
-- @treturn table items, marked
function wire.array(items, tag, xml_name)
  return setmetatable(items or {}, { [LIST] = true, tag = tag, xml_name = xml_name })
end

--- Gives some fields of `obj` other XML names: {Description = "groupDescription"}.
-- @tparam table obj the object
-- @tparam table names field -> XML name
-- @treturn table obj
function wire.xml_names(obj, names)
  return setmetatable(obj, { xml_names = names })
end

local function is_list(t)
  local mt = getmetatable(t)
  return mt ~= nil and mt[LIST] == true, mt and mt.tag
end

local function xml_name_of(parent, key, value, lower_first)
  local mt = type(value) == "table" and getmetatable(value)
  if mt and mt.xml_name then return mt.xml_name end
  local pmt = getmetatable(parent)
  if pmt and pmt.xml_names and pmt.xml_names[key] then return pmt.xml_names[key] end
  if lower_first then return (key:gsub("^%u", string.lower)) end
  return key
end

--- True when XML 1.0 can carry `s`: valid UTF-8 of characters #x9 | #xA | #xD | #x20-#xD7FF |
-- #xE000-#xFFFD | #x10000-#x10FFFF (no other control character, surrogate, U+FFFE or U+FFFF).
-- @param s the value
-- @treturn boolean
function wire.xml_text_ok(s)
  if type(s) ~= "string" then return false end
  if s:find("[%z\1-\8\11\12\14-\31]") or not utf8.len(s) then return false end
  return not s:find("\xef\xbf[\xbe\xbf]")
end

local XML_ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;",
  ["\r"] = "&#13;" }

local function xml_escape(s)
  s = tostring(s)
  -- what XML cannot carry at all (it should never have been stored) becomes U+FFFD, so one
  -- value cannot break every other answer that holds it
  if not wire.xml_text_ok(s) then
    local out = {}
    for _, c in utf8.codes(utf8.len(s) and s or s:gsub("[\128-\255]", "?"), true) do
      local ok = c == 9 or c == 10 or c == 13 or (c >= 0x20 and c <= 0xD7FF) or (c >= 0xE000 and c <= 0xFFFD)
        or c >= 0x10000
      out[#out + 1] = ok and utf8.char(c) or "\u{FFFD}"
    end
    s = table.concat(out)
  end
  return (s:gsub("[&<>\"'\r]", XML_ESCAPES))
end
--- Escapes & < > " ' (and a carriage return, which XML would read as a line feed) for XML text
-- and attributes; a character XML 1.0 cannot carry becomes U+FFFD.
-- @function xml_escape
-- @param s the value (turned into a string)
-- @treturn string
wire.xml_escape = xml_escape

local function scalar_text(v)
  if type(v) == "boolean" then return v and "true" or "false" end
  -- numbers read back from a saved state are floats: 3306.0 goes out as 3306
  if math.type(v) == "float" and v == math.floor(v) then return string.format("%d", v) end
  return xml_escape(v)
end

local function render_xml(out, name, value, item_tag, lower_first)
  if type(value) ~= "table" then
    out[#out + 1] = "<" .. name .. ">" .. scalar_text(value) .. "</" .. name .. ">"
    return
  end
  out[#out + 1] = "<" .. name .. ">"
  local list, tag = is_list(value)
  if list then
    for _, v in ipairs(value) do render_xml(out, tag or item_tag, v, item_tag, lower_first) end
  else
    local keys = {}
    for k in pairs(value) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      render_xml(out, xml_name_of(value, k, value[k], lower_first), value[k], item_tag, lower_first)
    end
  end
  out[#out + 1] = "</" .. name .. ">"
end

local function xml_members(value, item_tag, lower_first)
  local out = {}
  local keys = {}
  for k in pairs(value or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    render_xml(out, xml_name_of(value, k, value[k], lower_first), value[k], item_tag, lower_first)
  end
  return table.concat(out)
end

local EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"

--- An EC2 response: <ActionResponse><requestId/>members</ActionResponse>.
-- @tparam string action the action
-- @tparam table members the result
-- @tparam string request_id the request id
-- @treturn table the HTTP response {status, headers, body}
function wire.ec2_response(action, members, request_id)
  return {
    status = 200, headers = { ["Content-Type"] = "text/xml;charset=UTF-8" },
    body = string.format('<?xml version="1.0" encoding="UTF-8"?>\n' ..
      '<%sResponse xmlns="%s"><requestId>%s</requestId>%s</%sResponse>',
      action, EC2_NS, request_id, xml_members(members, "item", true), action),
  }
end

--- An EC2 error response (<Response><Errors><Error>...).
-- @tparam integer status the HTTP status
-- @tparam string code AWS's error code
-- @tparam string message the message
-- @tparam string request_id the request id
-- @treturn table the HTTP response {status, headers, body}
function wire.ec2_error(status, code, message, request_id)
  return {
    status = status, headers = { ["Content-Type"] = "text/xml;charset=UTF-8" },
    body = string.format('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s</Code>' ..
      '<Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>',
      xml_escape(code), xml_escape(message), request_id),
  }
end

--- A query-protocol response (STS, IAM, RDS) with its ResponseMetadata.
-- @tparam string action the action
-- @tparam table result the result
-- @tparam string namespace the service's XML namespace
-- @tparam string request_id the request id
-- @treturn table the HTTP response {status, headers, body}
function wire.query_response(action, result, namespace, request_id)
  return {
    status = 200, headers = { ["Content-Type"] = "text/xml" },
    body = string.format('<%sResponse xmlns="%s"><%sResult>%s</%sResult><ResponseMetadata>' ..
      '<RequestId>%s</RequestId></ResponseMetadata></%sResponse>',
      action, namespace, action, xml_members(result, "member", false), action, request_id, action),
  }
end

--- A query-protocol error response (<ErrorResponse>, Sender or Receiver by status).
-- @tparam integer status the HTTP status
-- @tparam string code AWS's error code
-- @tparam string message the message
-- @tparam string namespace the service's XML namespace
-- @tparam string request_id the request id
-- @treturn table the HTTP response {status, headers, body}
function wire.query_error(status, code, message, namespace, request_id)
  return {
    status = status, headers = { ["Content-Type"] = "text/xml" },
    body = string.format('<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code>' ..
      '<Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>',
      namespace, status >= 500 and "Receiver" or "Sender", xml_escape(code), xml_escape(message), request_id),
  }
end

-- A table is a JSON array when marked, or when its keys are exactly 1..n (decoded JSON arrays).
local function json_array(t)
  if is_list(t) then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function json_encode(v, out)
  local t = type(v)
  if t == "table" then
    if json_array(v) then
      out[#out + 1] = "["
      for i, item in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        json_encode(item, out)
      end
      out[#out + 1] = "]"
    elseif v == cjson.null then
      out[#out + 1] = "null"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = cjson.encode(k) .. ":"
        json_encode(v[k], out)
      end
      out[#out + 1] = "}"
    end
  else
    out[#out + 1] = cjson.encode(v)
  end
end

--- JSON text where tables marked with wire.array are arrays (empty ones too).
-- Object keys are sorted, so the text is the same for the same value.
-- @param v the value
-- @treturn string
function wire.json(v)
  local out = {}
  json_encode(v, out)
  return table.concat(out)
end

--- Decodes a JSON request body: {} for an empty one, nil when it is not a JSON object or array.
-- @tparam ?string text the body
-- @treturn ?table
function wire.json_decode(text)
  if text == nil or text == "" then return {} end
  local ok, v = pcall(cjson.decode, text)
  if ok and type(v) == "table" then return v end
  return nil
end

--- A JSON response (RAM, Lambda).
-- @tparam integer status the HTTP status
-- @param value the body's value (nil: an empty body)
-- @tparam string request_id the request id (x-amzn-RequestId)
-- @tparam[opt] table extra_headers more headers
-- @treturn table the HTTP response {status, headers, body}
function wire.json_response(status, value, request_id, extra_headers)
  local headers = { ["Content-Type"] = "application/json", ["x-amzn-RequestId"] = request_id }
  for k, v in pairs(extra_headers or {}) do headers[k] = v end
  return { status = status, headers = headers, body = value == nil and "" or wire.json(value) }
end

--- A JSON error response: x-amzn-ErrorType and {message, __type}.
-- @tparam integer status the HTTP status
-- @tparam string code AWS's error code
-- @tparam string message the message
-- @tparam string request_id the request id
-- @treturn table the HTTP response {status, headers, body}
function wire.json_error(status, code, message, request_id)
  return {
    status = status,
    headers = { ["Content-Type"] = "application/json", ["x-amzn-RequestId"] = request_id,
                ["x-amzn-ErrorType"] = code },
    body = wire.json({ message = message, Message = message, __type = code }),
  }
end

--- nil, err with `code` unless every named parameter is present (non-empty) in `p`.
-- @tparam table p the parameters
-- @tparam string code the error code to answer with ("ValidationError", ...)
-- @param ... the names
-- @return true, or nil, err (status 400)
function wire.need(p, code, ...)
  for _, name in ipairs({ ... }) do
    if p[name] == nil or p[name] == "" then
      return errors.fail(code, "The request must contain the parameter " .. name, { status = 400 })
    end
  end
  return true
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

--- Base64 text of `data` (the client side's encoder: one definition of the alphabet's use).
-- @tparam string data bytes
-- @treturn string
function wire.base64_encode(data) return require("awsnet.aws.protocol.scalar").base64(data) end

--- Decodes base64 text; nil when it is not valid base64.
-- @param text the text (white space is ignored)
-- @treturn ?string the bytes
function wire.base64_decode(text)
  if type(text) ~= "string" then return nil end
  text = text:gsub("%s", "")
  if #text % 4 ~= 0 or text:find("[^%w%+/=]") or text:find("=[^=]") then return nil end
  local out = {}
  for i = 1, #text, 4 do
    local n, pad = 0, 0
    for k = 0, 3 do
      local ch = text:sub(i + k, i + k)
      local v = 0
      if ch == "=" then pad = pad + 1 else v = B64:find(ch, 1, true) - 1 end
      n = (n << 6) | v
    end
    local bytes = string.char((n >> 16) & 255, (n >> 8) & 255, n & 255)
    out[#out + 1] = bytes:sub(1, 3 - pad)
  end
  return table.concat(out)
end

--- ISO 8601 UTC time as AWS prints it.
-- @tparam integer epoch seconds
-- @treturn string "2026-11-29T10:30:00.000Z"
function wire.timestamp(epoch)
  return os.date("!%Y-%m-%dT%H:%M:%S.000Z", epoch)
end

return wire
