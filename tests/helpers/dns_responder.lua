--- A deliberately bad DNS server for the tests (lua-socket, test-only): answers every UDP
-- question on 127.0.0.1:PORT the way MODE says, to exercise what dnsmasq will not do.
--   lua5.4 tests/helpers/dns_responder.lua PORT MODE
--   MODE: servfail | refused | malformed (an A record cut short) | nxdomain
-- Prints "ready" once bound.
local socket = require "socket"

local port, mode = tonumber(arg[1]), arg[2]
local RCODE = { servfail = 2, nxdomain = 3, refused = 5, malformed = 0 }
assert(port and RCODE[mode], "usage: dns_responder.lua PORT servfail|refused|malformed|nxdomain")

local udp = assert(socket.udp())
assert(udp:setsockname("127.0.0.1", port))
io.stdout:write("ready\n")
io.stdout:flush()

local function u16(n) return string.char(n >> 8, n & 255) end

while true do
  local query, ip, from_port = udp:receivefrom()
  if query and #query >= 12 then
    local question = query:sub(13)
    local answers, records = 0, ""
    if mode == "malformed" then
      -- one A record that claims 4 bytes of data but carries 2
      answers, records = 1, "\192\012" .. u16(1) .. u16(1) .. "\0\0\0\60" .. u16(4) .. "\10\1"
    end
    local header = query:sub(1, 2) .. u16(0x8180 | RCODE[mode]) .. u16(1) .. u16(answers) .. u16(0) .. u16(0)
    udp:sendto(header .. question .. records, ip, from_port)
  end
end
