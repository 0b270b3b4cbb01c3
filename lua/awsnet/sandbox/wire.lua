--- What the sandbox's request path needs besides the models: form and target decoding (to find
-- the service and action a request names), XML 1.0's character rule, JSON for the values services
-- keep as text (policies, Lambda payloads), base64 and timestamps. Requests are read and answers
-- written by the service models (`awsnet.aws.protocol`'s server side), not here.
-- @module awsnet.sandbox.wire
local cjson = require "cjson"
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
local errors = require "awsnet.errors"
local server = require "awsnet.aws.protocol.server"

local wire = {}

--- Decodes form encoding: "+" is a space, %XX a byte (the protocols' server side's rule).
-- @function url_decode
-- @tparam string s the encoded text
-- @treturn string
wire.url_decode = server.url_decode
local url_decode = wire.url_decode

--- Decodes `a=1&b=2` into a flat map (the protocols' server side's rule).
-- @function parse_form
-- @tparam ?string text the form (nil is empty)
-- @treturn table name -> value
wire.parse_form = server.parse_form

--- Splits a request target into its path and its decoded query map.
-- @tparam string target "/path?a=1"
-- @treturn string the decoded path
-- @treturn table the query map
function wire.split_target(target)
  local path, query = target:match("^([^?]*)%??(.*)$")
  return url_decode(path), wire.parse_form(query)
end

--- Marks `items` as a list, so an empty one is still `[]` in JSON (the protocol writers mark
-- lists by the model; this is for values kept or printed as JSON).
-- @tparam[opt] table items the elements (default: a new empty list)
-- @treturn table items, marked
function wire.array(items)
  return jsoncodec.array(items)
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

-- A table is a JSON array when marked, or when its keys are exactly 1..n (decoded JSON arrays).
local json_array = jsoncodec.is_array

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
