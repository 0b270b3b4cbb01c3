--- Raw HTTP with an in-process sandbox (awsnet.sandbox.start): sends `text` on a new loopback
-- connection and steps the sandbox until the whole answer is back (by its Content-Length) or the
-- connection closes. Returns status, headers (lower-case names), body; nothing when no byte came
-- back (the sandbox reset the connection).
local socket = require "socket"

return function(sb, text)
  local c = assert(socket.tcp())
  c:settimeout(2)
  assert(c:connect("127.0.0.1", sb.port))
  assert(c:send(text))
  c:settimeout(0)
  local got = {}
  for _ = 1, 3000 do
    sb:step(10)
    local data, err, partial = c:receive(65536)
    local chunk = data or partial
    if chunk and #chunk > 0 then got[#got + 1] = chunk end
    local all = table.concat(got)
    local head_end = all:find("\r\n\r\n", 1, true)
    local len = tonumber(all:match("[Cc]ontent%-[Ll]ength: (%d+)"))
    if head_end and len and #all >= head_end + 3 + len then break end
    if err == "closed" then break end
  end
  c:close()
  local all = table.concat(got)
  if all == "" then return end
  local head, body = all:match("^(.-)\r\n\r\n(.*)$")
  local hdrs = {}
  for k, v in (head or ""):gmatch("\r\n([^:]+): ([^\r]*)") do hdrs[k:lower()] = v end
  return tonumber(all:match("^HTTP/1%.1 (%d+)")), hdrs, body
end
