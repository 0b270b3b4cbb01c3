-- A scripted HTTP/1.1 server on 127.0.0.1 for the tests (lua-socket; test-only), run as its own
-- process:  lua5.4 tests/helpers/http_server.lua PORT ROUTES.json LOG.jsonl
--
-- ROUTES.json is re-read on every request, so a test can change the script while the server
-- runs: {"routes": [{"method", "path", "path_prefix", "body_contains", "header": [name, value],
-- "responses": [{"status", "headers", "body", "body_size", "delay", "action"}]}]}.
-- The first route whose conditions all hold answers; its responses are served in order and the
-- last one repeats. `action`: "reset" (close with RST, no answer), "close" (close, no answer),
-- "truncate" (promise more body than is sent, then close), "hang" (never answer). Every request
-- received is appended to LOG.jsonl as {method, target, path, query, headers, body, conn}, where
-- `conn` numbers the TCP connections (to see reuse).
-- Connections are served concurrently (select loop), so delayed answers overlap.
local socket = require "socket"
local cjson = require "cjson"

local port, routes_path, log_path = tonumber(arg[1]), arg[2], arg[3]
local server = assert(socket.bind("127.0.0.1", port))
server:settimeout(0)

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local served = {} -- route index -> answers given, reset when the routes file changes
local last_routes_text

local function routes()
  local text = read_file(routes_path) or '{"routes":[]}'
  if text ~= last_routes_text then served, last_routes_text = {}, text end
  return cjson.decode(text).routes
end

local function matches(route, req)
  if route.method and route.method ~= req.method then return false end
  if route.path and route.path ~= req.path then return false end
  if route.path_prefix and req.path:sub(1, #route.path_prefix) ~= route.path_prefix then return false end
  if route.body_contains and not req.body:find(route.body_contains, 1, true) then return false end
  if route.query_contains and not req.query:find(route.query_contains, 1, true) then return false end
  if route.header and req.headers[route.header[1]:lower()] ~= route.header[2] then return false end
  return true
end

local function answer_for(req)
  for i, route in ipairs(routes()) do
    if matches(route, req) then
      served[i] = (served[i] or 0) + 1
      local list = route.responses
      return list[math.min(served[i], #list)]
    end
  end
  return { status = 404, body = "no route for " .. req.method .. " " .. req.path }
end

local function log(req)
  local f = assert(io.open(log_path, "a"))
  f:write(cjson.encode(req), "\n")
  f:close()
end

local function render(a)
  local body = a.body or ""
  if a.body_size then body = string.rep("x", a.body_size) end
  local lines = { string.format("HTTP/1.1 %d %s", a.status or 200, a.reason or "Status") }
  local headers = a.headers or {}
  local has_length = false
  for k, v in pairs(headers) do
    lines[#lines + 1] = k .. ": " .. v
    if k:lower() == "content-length" then has_length = true end
  end
  if a.action == "truncate" then
    lines[#lines + 1] = "Content-Length: " .. (#body + 1000)
  elseif not has_length then
    lines[#lines + 1] = "Content-Length: " .. #body
  end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. body
end

-- connection state: {sock, id, buf, pending = {due, answer} or nil, out = string or nil}
local conns = {}
local accepted = 0

local function parse(c)
  local head_end = c.buf:find("\r\n\r\n", 1, true)
  if not head_end then return nil end
  local head = c.buf:sub(1, head_end - 1)
  local method, target = head:match("^(%S+) (%S+) HTTP/1%.%d")
  local headers = {}
  for name, value in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
    local k = name:lower()
    headers[k] = headers[k] and (headers[k] .. ", " .. value) or value
  end
  local len = tonumber(headers["content-length"] or "0")
  if #c.buf < head_end + 3 + len then return nil end
  local body = c.buf:sub(head_end + 4, head_end + 3 + len)
  c.buf = c.buf:sub(head_end + 4 + len)
  local path, query = target:match("^([^?]*)%??(.*)$")
  return { method = method, target = target, path = path, query = query, headers = headers, body = body }
end

local function drop(c, rst)
  if rst then c.sock:setoption("linger", { on = true, timeout = 0 }) end
  c.sock:close()
  conns[c.sock] = nil
end

while true do
  local recv = { server }
  local send = {}
  local now = socket.gettime()
  local wait = 0.5
  for _, c in pairs(conns) do
    recv[#recv + 1] = c.sock
    if c.out then send[#send + 1] = c.sock end
    if c.pending and c.pending.due then wait = math.min(wait, math.max(0, c.pending.due - now)) end
  end
  local readable, writable = socket.select(recv, send, wait)
  for _, s in ipairs(readable) do
    if s == server then
      local client = server:accept()
      if client then
        client:settimeout(0)
        accepted = accepted + 1
        conns[client] = { sock = client, id = accepted, buf = "" }
      end
    elseif conns[s] then
      local c = conns[s]
      local data, err, partial = s:receive(65536)
      data = data or partial
      if data and #data > 0 then c.buf = c.buf .. data end
      if err == "closed" then
        drop(c)
      elseif not c.pending and not c.out then
        local req = parse(c)
        if req then
          req.conn = c.id
          log(req)
          local a = answer_for(req)
          c.pending = { due = a.action ~= "hang" and now + (a.delay or 0) or nil, answer = a }
        end
      end
    end
  end
  for _, s in ipairs(writable) do
    local c = conns[s]
    if c and c.out then
      local sent, _, last = s:send(c.out)
      local n = sent or last or 0
      c.out = n < #c.out and c.out:sub(n + 1) or nil
      if not c.out and c.close_after then drop(c) end
    end
  end
  now = socket.gettime()
  for _, c in pairs(conns) do
    local p = c.pending
    if p and p.due and p.due <= now then
      c.pending = nil
      local a = p.answer
      if a.action == "reset" then
        drop(c, true)
      elseif a.action == "close" then
        drop(c)
      else
        c.out = render(a)
        c.close_after = a.action == "truncate"
      end
    end
  end
end
