--- JSON for the AWS protocols: a decoder that keeps 64-bit integers exact and an encoder that
-- writes `[]` for an empty array.
--
-- lua-cjson 2.1.0 (Debian 12) reads every number as a double (2^53 + 1 comes back rounded) and
-- has no `empty_array_mt`, so an empty Lua table always encodes as `{}`. This small recursive
-- decoder reads integer text with `math.tointeger`, floats with `tonumber`, and marks every
-- decoded array with `jsoncodec.array_mt`; the encoder writes a table with that metatable (or one
-- whose keys are 1..n) as an array. Decoded objects remember their key order (`jsoncodec.keys`),
-- which model fragments need for XML member order. `null` decodes to `jsoncodec.null`.
-- @module awsnet.aws.protocol.jsoncodec
local errors = require "awsnet.errors"
local scalar = require "awsnet.aws.protocol.scalar"

local jsoncodec = {}

--- Metatable marking a table as a JSON array (an empty one encodes as `[]`).
jsoncodec.array_mt = { __name = "awsnet.json.array" }

--- The value JSON `null` decodes to.
jsoncodec.null = setmetatable({}, { __name = "awsnet.json.null", __tostring = function() return "null" end })

-- table -> its keys in document order (weak keys: the order goes with the table)
local key_order = setmetatable({}, { __mode = "k" })

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function decode_error(text, pos, what)
  local line = select(2, text:sub(1, pos):gsub("\n", "")) + 1
  error({ json_error = string.format("%s at character %d (line %d)", what, pos, line) }, 0)
end

local function skip(text, pos)
  return text:find("[^ \t\r\n]", pos) or #text + 1
end

local function utf8_of(code)
  return utf8.char(code)
end

local function decode_string(text, pos)
  -- pos is at the opening quote
  local out, i = {}, pos + 1
  while true do
    local s, e = text:find('["\\]', i)
    if not s then decode_error(text, pos, "unterminated string") end
    if s > i then out[#out + 1] = text:sub(i, s - 1) end
    if text:sub(s, s) == '"' then return table.concat(out), e + 1 end
    local c = text:sub(s + 1, s + 1)
    if c == "u" then
      local hex = text:sub(s + 2, s + 5)
      if not hex:match("^%x%x%x%x$") then decode_error(text, s, "bad \\u escape") end
      local code, nexti = tonumber(hex, 16), s + 6
      if code >= 0xD800 and code <= 0xDBFF and text:sub(nexti, nexti + 1) == "\\u" then
        local low = tonumber(text:sub(nexti + 2, nexti + 5), 16)
        if low and low >= 0xDC00 and low <= 0xDFFF then
          code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
          nexti = nexti + 6
        end
      end
      out[#out + 1] = utf8_of(code)
      i = nexti
    elseif ESCAPES[c] then
      out[#out + 1] = ESCAPES[c]
      i = s + 2
    else
      decode_error(text, s, "bad escape")
    end
  end
end

local decode_value

local function decode_array(text, pos)
  local arr = setmetatable({}, jsoncodec.array_mt)
  pos = skip(text, pos + 1)
  if text:sub(pos, pos) == "]" then return arr, pos + 1 end
  local n = 0
  while true do
    local v
    v, pos = decode_value(text, pos)
    n = n + 1
    arr[n] = v
    pos = skip(text, pos)
    local c = text:sub(pos, pos)
    if c == "]" then return arr, pos + 1 end
    if c ~= "," then decode_error(text, pos, "expected ',' or ']'") end
    pos = skip(text, pos + 1)
  end
end

local function decode_object(text, pos)
  local obj, order = {}, {}
  key_order[obj] = order
  pos = skip(text, pos + 1)
  if text:sub(pos, pos) == "}" then return obj, pos + 1 end
  while true do
    if text:sub(pos, pos) ~= '"' then decode_error(text, pos, "expected a string key") end
    local k
    k, pos = decode_string(text, pos)
    pos = skip(text, pos)
    if text:sub(pos, pos) ~= ":" then decode_error(text, pos, "expected ':'") end
    local v
    v, pos = decode_value(text, skip(text, pos + 1))
    if obj[k] == nil then order[#order + 1] = k end
    obj[k] = v
    pos = skip(text, pos)
    local c = text:sub(pos, pos)
    if c == "}" then return obj, pos + 1 end
    if c ~= "," then decode_error(text, pos, "expected ',' or '}'") end
    pos = skip(text, pos + 1)
  end
end

function decode_value(text, pos)
  local c = text:sub(pos, pos)
  if c == "{" then return decode_object(text, pos) end
  if c == "[" then return decode_array(text, pos) end
  if c == '"' then return decode_string(text, pos) end
  local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  if num and #num > 0 then
    local v
    if num:match("^-?%d+$") then
      v = math.tointeger(tonumber(num)) or tonumber(num)
    else
      v = tonumber(num)
    end
    if v == nil then decode_error(text, pos, "bad number") end
    return v, pos + #num
  end
  if text:sub(pos, pos + 3) == "true" then return true, pos + 4 end
  if text:sub(pos, pos + 4) == "false" then return false, pos + 5 end
  if text:sub(pos, pos + 3) == "null" then return jsoncodec.null, pos + 4 end
  decode_error(text, pos, "unexpected " .. (c == "" and "end of text" or ("'" .. c .. "'")))
end

--- Decodes JSON text.
-- @tparam string text the JSON text
-- @treturn any the value (objects as tables, arrays as tables with `array_mt`, null as
-- `jsoncodec.null`), or nil, err ("invalid_json")
function jsoncodec.decode(text)
  if type(text) ~= "string" then error("bad argument #1 to 'decode' (string expected, got " .. type(text) .. ")", 2) end
  local ok, v, pos = pcall(decode_value, text, skip(text, 1))
  if not ok then
    if type(v) == "table" and v.json_error then return errors.fail("invalid_json", v.json_error) end
    error(v, 0)
  end
  pos = skip(text, pos)
  if pos <= #text then return errors.fail("invalid_json", "trailing text at character " .. pos) end
  return v
end

--- The keys of a table: in document order for a decoded object, else sorted.
-- @tparam table t the table
-- @treturn {string,...} the keys
function jsoncodec.keys(t)
  local order = key_order[t]
  local out = {}
  if order then
    for _, k in ipairs(order) do
      if t[k] ~= nil then out[#out + 1] = k end
    end
    return out
  end
  local strings = true
  for k in pairs(t) do
    out[#out + 1] = k
    if strings and type(k) ~= "string" then strings = false end
  end
  -- string keys (the usual case) sort as their texts do, without a comparator call per step
  if strings then table.sort(out) else table.sort(out, function(a, b) return tostring(a) < tostring(b) end) end
  return out
end

--- Gives a table a key order (for `keys` and `encode`), as a decoded object has.
-- @tparam table t the table
-- @tparam {string,...} order its keys in order
-- @treturn table t
function jsoncodec.with_keys(t, order)
  key_order[t] = order
  return t
end

--- True when `t` is (to be encoded as) a JSON array: marked with `array_mt`, or a non-empty
-- sequence with no other keys.
-- @tparam table t the table
-- @treturn boolean
function jsoncodec.is_array(t)
  if getmetatable(t) == jsoncodec.array_mt then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

--- Marks a table as a JSON array and returns it.
-- @tparam[opt] table t the table (default a new one)
-- @treturn table t
function jsoncodec.array(t)
  return setmetatable(t or {}, jsoncodec.array_mt)
end

local ESCAPE_OUT = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
  ["\r"] = "\\r", ["\t"] = "\\t" }

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPE_OUT[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

-- JSON has no text for NaN and the infinities; every other number is written as requests write it
local function encode_number(v)
  if v ~= v or v == math.huge or v == -math.huge then error("cannot encode " .. tostring(v) .. " in JSON", 0) end
  return scalar.number_text(v)
end

local function encode(v, out)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = encode_string(v)
  elseif t == "number" then
    out[#out + 1] = encode_number(v)
  elseif t == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif v == nil or v == jsoncodec.null then
    out[#out + 1] = "null"
  elseif t == "table" then
    if jsoncodec.is_array(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out)
      end
      out[#out + 1] = "]"
    else
      out[#out + 1] = "{"
      local first = true
      for _, k in ipairs(jsoncodec.keys(v)) do
        if not first then out[#out + 1] = "," end
        first = false
        out[#out + 1] = encode_string(tostring(k))
        out[#out + 1] = ":"
        encode(v[k], out)
      end
      out[#out + 1] = "}"
    end
  else
    error("cannot encode a " .. t .. " in JSON", 0)
  end
end

--- The JSON text of a string, number or boolean, or null for nil and jsoncodec.null (what
-- `encode` writes for them, without its pcall and buffer: for writers that lay out tables themselves).
-- @param v the value
-- @treturn string the text
-- @raise for NaN, the infinities and other types
function jsoncodec.scalar(v)
  local t = type(v)
  if t == "string" then return encode_string(v) end
  if t == "number" then return encode_number(v) end
  if t == "boolean" then return v and "true" or "false" end
  if v == nil or v == jsoncodec.null then return "null" end
  error("cannot encode a " .. t .. " in JSON", 0)
end

--- Encodes a value as JSON: integers exactly, an array-marked or sequence table as an array,
-- other tables as objects (keys in document order when decoded, else sorted).
-- @param v the value
-- @treturn string the JSON text, or nil, err ("invalid_parameter") for NaN, infinities, functions
function jsoncodec.encode(v)
  local out = {}
  local ok, err = pcall(encode, v, out)
  if not ok then return errors.fail("invalid_parameter", tostring(err)) end
  return table.concat(out)
end

return jsoncodec
