--- Timestamps in the forms AWS uses, as UTC epoch seconds (no dependence on the local zone).
-- @module awsnet.aws.time
local time = {}

-- Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function epoch(y, mo, d, h, mi, s)
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
end

--- "2026-11-29T10:30:00Z", "2026-11-29T10:30:00.123Z" or with a "+01:00" offset -> epoch
-- seconds, or nil.
-- @tparam string s the timestamp
-- @treturn ?integer epoch seconds
function time.parse_iso8601(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)%.?%d*(.*)$")
  if not y then return nil end
  local t = epoch(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec))
  if rest == "Z" or rest == "z" or rest == "" then return t end
  local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
  if not sign then return nil end
  local offset = tonumber(oh) * 3600 + tonumber(om) * 60
  return sign == "+" and t - offset or t + offset
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

--- An HTTP Date header ("Sun, 29 Nov 2026 09:30:00 GMT") -> epoch seconds, or nil.
-- @tparam string s the header value
-- @treturn ?integer epoch seconds
function time.parse_http_date(s)
  if type(s) ~= "string" then return nil end
  local d, mon, y, h, mi, sec = s:match("^%a+, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not MONTHS[mon] then return nil end
  return epoch(tonumber(y), MONTHS[mon], tonumber(d), tonumber(h), tonumber(mi), tonumber(sec))
end

--- Epoch seconds -> "2026-11-29T10:30:00Z".
-- @tparam integer t epoch seconds
-- @treturn string the UTC timestamp
function time.iso8601(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

return time
