--- Value checks for command-line options, as argparse converters: each takes the text and returns
-- the value, or nil and a one-line reason that names the option.
-- @module awsnet.cli.args
local args = {}

local function integer_in(text, lo, hi)
  local n = text:match("^%d+$") and math.tointeger(tonumber(text))
  if n and n >= lo and n <= hi then return n end
  return nil
end

--- A converter for an integer option between `lo` and `hi`.
-- @tparam string option the option's name, for the message
-- @tparam integer lo smallest value
-- @tparam integer hi largest value
-- @treturn function converter: text -> integer, or nil, message
function args.integer(option, lo, hi)
  return function(text)
    local n = integer_in(text, lo, hi)
    if n then return n end
    return nil, string.format("%s must be an integer from %d to %d, not '%s'", option, lo, hi, text)
  end
end

--- A port number, 0 to 65535.
args.port = args.integer("--port", 0, 65535)

--- An ICMP type, 0 to 255.
args.byte = args.integer("--icmp-type", 0, 255)

local PROTOCOL_NAMES = { tcp = "tcp", udp = "udp", icmp = "icmp", icmpv6 = "icmpv6", all = "all", ["-1"] = -1 }

--- An IP protocol: tcp, udp, icmp, icmpv6, all, -1 (all) or a protocol number 0 to 255.
-- @tparam string text the option's text
-- @return the name or number, or nil, message
function args.protocol(text)
  local named = PROTOCOL_NAMES[text:lower()]
  if named then return named end
  local n = integer_in(text, 0, 255)
  if n then return n end
  return nil, "--protocol must be tcp, udp, icmp, icmpv6, all or a protocol number 0-255, not '" .. text .. "'"
end

--- A comma-separated list of 12-digit AWS account ids.
-- @tparam string text the option's text
-- @treturn {string,...} the ids, or nil, message
function args.accounts(text)
  local ids = {}
  for id in text:gmatch("[^,]+") do
    if not id:match("^%d%d%d%d%d%d%d%d%d%d%d%d$") then
      return nil, "--accounts takes 12-digit account ids, not '" .. id .. "'"
    end
    ids[#ids + 1] = id
  end
  if #ids == 0 then return nil, "--accounts needs at least one account id" end
  return ids
end

--- A comma-separated list of names (profiles, ...), empty items dropped.
-- @tparam string text the option's text
-- @treturn {string,...} the names
function args.list(text)
  local items = {}
  for item in text:gmatch("[^,]+") do items[#items + 1] = item end
  return items
end

--- A non-negative number (seconds, ...).
-- @tparam string option the option's name, for the message
-- @treturn function converter: text -> number, or nil, message
function args.seconds(option)
  return function(text)
    local n = tonumber(text)
    if n and n >= 0 and n == n and n ~= math.huge then return n end
    return nil, option .. " must be a number of seconds, not '" .. text .. "'"
  end
end

local FAULT_NAMES = { throttle = "rate", error5xx = "rate", reset = "rate", latency_ms = "ms", rate_limit = "per_s" }

--- Sandbox faults: `name=value,...` with throttle, error5xx, reset (rates 0..1), latency_ms and
-- rate_limit (requests a second per account, region and service).
-- @tparam string text the option's text
-- @treturn table name -> number, or nil, message
function args.faults(text)
  local faults = {}
  for item in text:gmatch("[^,]+") do
    local name, value = item:match("^([%w_]+)=(.+)$")
    local kind = FAULT_NAMES[name]
    local n = tonumber(value)
    if not kind then
      return nil, "--faults: unknown fault '" .. tostring(name or item) ..
        "' (throttle, error5xx, reset, latency_ms, rate_limit)"
    end
    if not n or n < 0 or (kind == "rate" and n > 1) then
      return nil, "--faults: " .. name .. " must be " .. (kind == "rate" and "a rate from 0 to 1"
        or kind == "per_s" and "requests a second" or "milliseconds")
    end
    faults[name] = n
  end
  return faults
end

return args
