--- IPv4 CIDR arithmetic for the sandbox's validations (subnet ranges, overlaps, free addresses).
-- @module awsnet.sandbox.cidr
local cidr = {}

local function ip_number(text)
  local a, b, c, d = (text or ""):match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  local n = 0
  for _, part in ipairs({ a, b, c, d }) do
    local v = tonumber(part)
    if v > 255 then return nil end
    n = n * 256 + v
  end
  return n
end
--- A dotted IPv4 address as an integer, or nil.
-- @function ip_number
-- @tparam string text the address
-- @treturn ?integer
cidr.ip_number = ip_number

--- An integer as a dotted IPv4 address.
-- @tparam integer n the address
-- @treturn string
function cidr.ip_string(n)
  return string.format("%d.%d.%d.%d", (n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255)
end

--- First address and size of a block, or nil.
-- @tparam string block "10.0.0.0/16"
-- @treturn ?integer the first address
-- @treturn ?integer the number of addresses
function cidr.range(block)
  local ip, len = (block or ""):match("^([%d.]+)/(%d+)$")
  local n, bits = ip_number(ip), tonumber(len)
  if not n or not bits or bits > 32 then return nil end
  local size = 1 << (32 - bits)
  return n - n % size, size
end

--- The prefix length of a block, or nil when it is not one.
-- @tparam string block "10.0.0.0/16"
-- @treturn ?integer
function cidr.prefix_len(block)
  if not cidr.range(block) then return nil end
  return tonumber(block:match("/(%d+)$"))
end

--- The block with its host bits cleared ("10.0.0.5/16" -> "10.0.0.0/16"), or nil.
-- @tparam string block a block
-- @treturn ?string
function cidr.normalize(block)
  local base = cidr.range(block)
  if not base then return nil end
  return cidr.ip_string(base) .. "/" .. block:match("/(%d+)$")
end

--- True when `inner` (block or address) lies inside `outer`.
-- @tparam string outer a block
-- @tparam string inner a block or an address
-- @treturn boolean
function cidr.contains(outer, inner)
  local ob, os_ = cidr.range(outer)
  local ib, is = cidr.range(inner:find("/", 1, true) and inner or inner .. "/32")
  return ob ~= nil and ib ~= nil and ib >= ob and ib + is <= ob + os_
end

--- True when two blocks share an address.
-- @tparam string a a block
-- @tparam string b a block
-- @treturn boolean
function cidr.overlaps(a, b)
  local ab, as = cidr.range(a)
  local bb, bs = cidr.range(b)
  return ab ~= nil and bb ~= nil and ab < bb + bs and bb < ab + as
end

return cidr
