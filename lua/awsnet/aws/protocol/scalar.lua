--- Scalar conversions shared by the AWS protocols: timestamps (ISO 8601, epoch seconds, RFC 822
-- HTTP dates) both ways, base64, number text, and version-4 UUIDs for idempotency tokens.
-- @module awsnet.aws.protocol.scalar
local scalar = {}

-- ---- dates ---------------------------------------------------------------------------------

-- Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m > 2 and m - 3 or m + 9) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = (z >= 0 and z or z - 146096) // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  return m <= 2 and y + 1 or y, m, d
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
  Nov = 11, Dec = 12 }
local MONTH_NAMES = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }
local DAY_NAMES = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" } -- 1970-01-01 was a Thursday

local function epoch_of(y, mo, d, h, mi, s)
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
end

-- Seconds plus a fraction text ("123") as an integer or a float.
local function with_fraction(secs, frac)
  if not frac or frac == "" or not frac:find("[1-9]") then return secs end
  return secs + tonumber("0." .. frac)
end

--- Reads a timestamp: ISO 8601 ("2014-04-29T18:30:38Z", with a fraction, an offset or neither),
-- epoch seconds (a number or its text), or an RFC 822 / HTTP date ("Tue, 29 Apr 2014 18:30:38 GMT").
-- @param v a number or a string
-- @treturn number epoch seconds (an integer when whole), or nil when `v` is no timestamp
function scalar.to_epoch(v)
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil end
    return math.tointeger(v) or v
  end
  if type(v) ~= "string" then return nil end
  local s = v:match("^%s*(.-)%s*$")
  if s:match("^-?%d+$") then return math.tointeger(tonumber(s)) end
  if s:match("^-?%d+%.%d*$") then
    local n = tonumber(s)
    return math.tointeger(n) or n
  end
  local y, mo, d, rest = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)(.*)$")
  if y then
    local h, mi, sec, frac, zone = "0", "0", "0", nil, ""
    if rest ~= "" then
      h, mi, sec, frac, zone = rest:match("^[Tt ](%d%d):(%d%d):?(%d?%d?)%.?(%d*)(.*)$")
      if not h then return nil end
      if sec == "" then sec = "0" end
    end
    local offset = 0
    if zone ~= "" and zone ~= "Z" and zone ~= "z" then
      local sign, oh, om = zone:match("^([+-])(%d%d):?(%d%d)$")
      if not sign then return nil end
      offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
    end
    local secs = epoch_of(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)) - offset
    return with_fraction(secs, frac)
  end
  local dd, mon, yy, hh, mm, ss, frac = s:match("^%a+,%s+(%d+)%s+(%a+)%s+(%d%d%d%d)%s+(%d%d):(%d%d):(%d%d)%.?(%d*)%s*%a*$")
  if dd and MONTHS[mon] then
    return with_fraction(epoch_of(tonumber(yy), MONTHS[mon], tonumber(dd), tonumber(hh), tonumber(mm), tonumber(ss)),
      frac)
  end
  return nil
end

local function split(epoch)
  local whole = math.floor(epoch)
  local frac = epoch - whole
  whole = math.tointeger(whole)
  local days, secs = whole // 86400, whole % 86400
  local y, mo, d = civil_from_days(days)
  return y, mo, d, secs // 3600, secs % 3600 // 60, secs % 60, frac, days
end

-- The fraction as 1 to 6 digits ("" when none), rounded to microseconds.
local function fraction_digits(frac, keep_zeros)
  local micro = math.floor(frac * 1e6 + 0.5)
  if micro <= 0 then return "" end
  if micro >= 1000000 then micro = 999999 end
  local digits = string.format("%06d", micro)
  if not keep_zeros then digits = digits:gsub("0+$", "") end
  return "." .. digits
end

--- Formats epoch seconds as a request's timestamp, as botocore's serializers do.
-- @tparam number epoch seconds since 1970 (may have a fraction)
-- @tparam string format "iso8601" (2014-04-29T18:30:38Z, with milliseconds when there is a
-- fraction), "unixTimestamp" (a number), or "rfc822" (Tue, 29 Apr 2014 18:30:38 GMT)
-- @return string (or a number for "unixTimestamp")
function scalar.format_timestamp(epoch, format)
  local f = (format or "iso8601"):lower()
  if f == "unixtimestamp" then return math.tointeger(epoch) or epoch end
  local y, mo, d, h, mi, s, frac, days = split(epoch)
  if f == "rfc822" then
    return string.format("%s, %02d %s %04d %02d:%02d:%02d GMT", DAY_NAMES[days % 7 + 1], d, MONTH_NAMES[mo], y, h, mi, s)
  end
  local ms = math.floor(frac * 1000 + 0.5)
  local fr = ms > 0 and string.format(".%03d", math.min(ms, 999)) or ""
  return string.format("%04d-%02d-%02dT%02d:%02d:%02d%sZ", y, mo, d, h, mi, s, fr)
end

--- Formats epoch seconds as the AWS CLI prints a timestamp (Python's `isoformat` of a UTC time):
-- "2014-04-29T18:30:38+00:00", or "2014-04-29T18:30:38.123000+00:00" with a fraction.
-- @tparam number epoch seconds since 1970
-- @treturn string the text
function scalar.iso_cli(epoch)
  local y, mo, d, h, mi, s, frac = split(epoch)
  return string.format("%04d-%02d-%02dT%02d:%02d:%02d%s+00:00", y, mo, d, h, mi, s, fraction_digits(frac, true))
end

--- A timestamp as a parse result: by default an ISO 8601 string as the AWS CLI prints it;
-- `opts.timestamp = "epoch"` gives epoch seconds, a function gives what it returns for them.
-- @tparam number epoch seconds since 1970
-- @tparam[opt] table opts parse options {timestamp = "iso"|"epoch"|function}
-- @return the value
function scalar.timestamp_out(epoch, opts)
  local how = opts and opts.timestamp
  if how == "epoch" then return epoch end
  if type(how) == "function" then return how(epoch) end
  return scalar.iso_cli(epoch)
end

-- ---- base64 --------------------------------------------------------------------------------

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_INDEX = {}
for i = 1, #B64 do B64_INDEX[B64:byte(i)] = i - 1 end

--- Base64 (standard alphabet, padded).
-- @tparam string s raw bytes
-- @treturn string the encoding
function scalar.base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    out[#out + 1] = B64:sub((n >> 18) + 1, (n >> 18) + 1) .. B64:sub(((n >> 12) & 63) + 1, ((n >> 12) & 63) + 1)
      .. (b and B64:sub(((n >> 6) & 63) + 1, ((n >> 6) & 63) + 1) or "=")
      .. (c and B64:sub((n & 63) + 1, (n & 63) + 1) or "=")
  end
  return table.concat(out)
end

--- Decodes base64 (whitespace ignored; padding optional).
-- @tparam string s the encoding
-- @treturn string the raw bytes, or nil when `s` is not base64
function scalar.unbase64(s)
  s = s:gsub("%s", ""):gsub("=+$", "")
  local out, bits, nbits = {}, 0, 0
  for i = 1, #s do
    local v = B64_INDEX[s:byte(i)]
    if not v then return nil end
    bits = ((bits << 6) | v) & 0xFFFFFF
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      out[#out + 1] = string.char((bits >> nbits) & 0xFF)
    end
  end
  return table.concat(out)
end

-- ---- numbers -------------------------------------------------------------------------------

--- Reads integer text exactly (64-bit), without going through a double.
-- @tparam string s the text
-- @treturn ?integer the value, or nil when `s` is not an integer that fits
function scalar.integer(s)
  s = s:match("^%s*([+-]?%d+)%s*$")
  if not s then return nil end
  return math.tointeger(tonumber(s))
end

local SPECIAL_FLOATS = { NaN = 0 / 0, Infinity = math.huge, ["-Infinity"] = -math.huge }

--- Reads a float's text, with the protocols' "NaN", "Infinity" and "-Infinity".
-- @tparam string s the text
-- @treturn ?number the value (a float), or nil
function scalar.float(s)
  s = s:match("^%s*(.-)%s*$")
  if SPECIAL_FLOATS[s] then return SPECIAL_FLOATS[s] end
  local n = tonumber(s)
  return n and n + 0.0
end

--- A number as request text: integers exactly, floats as the shortest text that reads back the
-- same ("1.5", "NaN", "Infinity"); an integral float as an integer's text.
-- @tparam number v the number
-- @treturn string the text
function scalar.number_text(v)
  if math.type(v) == "integer" then return string.format("%d", v) end
  if v ~= v then return "NaN" end
  if v == math.huge then return "Infinity" end
  if v == -math.huge then return "-Infinity" end
  if v == math.floor(v) and math.abs(v) < 2 ^ 63 then return string.format("%d", math.tointeger(v)) end
  for digits = 15, 17 do
    local s = string.format("%." .. digits .. "g", v)
    if tonumber(s) == v then return s end
  end
  return string.format("%.17g", v)
end

--- Percent-encodes text as AWS wants it (RFC 3986: only A-Z a-z 0-9 - _ . ~ stay as they are).
-- @tparam string s the text
-- @tparam[opt] string keep more characters to keep (e.g. "/" for a greedy URI label)
-- @treturn string the encoding
function scalar.percent(s, keep)
  local class = "[^%w%-_%.~" .. (keep and keep:gsub("%p", "%%%0") or "") .. "]"
  return (s:gsub(class, function(c) return string.format("%%%02X", c:byte()) end))
end

-- ---- UUIDs ---------------------------------------------------------------------------------

--- A random version-4 UUID (from /dev/urandom, else Lua's generator).
-- @treturn string "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"
function scalar.uuid4()
  local bytes
  local f = io.open("/dev/urandom", "rb")
  if f then
    bytes = f:read(16)
    f:close()
  end
  if not bytes or #bytes ~= 16 then
    local t = {}
    for i = 1, 16 do t[i] = string.char(math.random(0, 255)) end
    bytes = table.concat(t)
  end
  local b = { bytes:byte(1, 16) }
  b[7] = (b[7] & 0x0F) | 0x40
  b[9] = (b[9] & 0x3F) | 0x80
  local hex = string.format(string.rep("%02x", 16), table.unpack(b))
  return string.format("%s-%s-%s-%s-%s", hex:sub(1, 8), hex:sub(9, 12), hex:sub(13, 16), hex:sub(17, 20), hex:sub(21))
end

return scalar
