--- A scripted loopback HTTP server for specs (tests/helpers/http_server.lua in its own process).
--
--   local stub = require "helpers.stub_http"
--   local srv = stub.start()            -- in setup(); srv:stop() in teardown()
--   srv:routes{ {method="POST", path="/", responses={{status=200, body="..."}}} }
--   ... srv.url ... srv:requests()      -- what the server received, oldest first
local cjson = require "cjson"
local socket = require "socket"
local process = require "awsnet.svc.process"

local stub = {}
local Server = {}
Server.__index = Server

function Server:routes(list)
  local tmp = self.routes_path .. ".tmp"
  process.write_file(tmp, cjson.encode({ routes = list }))
  assert(os.rename(tmp, self.routes_path))
  self:clear()
end

function Server:requests()
  local out = {}
  local text = process.read_file(self.log_path) or ""
  for line in text:gmatch("[^\n]+") do out[#out + 1] = cjson.decode(line) end
  return out
end

function Server:clear() process.write_file(self.log_path, "") end

function Server:stop()
  if self.proc then self.proc.stop(2) end
  self.proc = nil
  os.execute("rm -rf " .. process.quote(self.dir))
end

--- The parameters of a form-encoded (query protocol) request body.
function stub.form(body)
  local out = {}
  for pair in body:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    out[k] = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return out
end

function stub.start()
  local dir = process.tempdir("awsnet-stub")
  local port = process.free_port()
  local srv = setmetatable({ dir = dir, port = port, url = "http://127.0.0.1:" .. port,
    routes_path = dir .. "/routes.json", log_path = dir .. "/requests.jsonl" }, Server)
  srv:routes({})
  srv.proc = process.spawn({ "lua5.4", "tests/helpers/http_server.lua", port, srv.routes_path, srv.log_path },
    { log = dir .. "/server.log", cleanup_dir = dir })
  local ok, err = process.wait_until(function()
    local c = socket.connect("127.0.0.1", port)
    if c then c:close() end
    return c ~= nil
  end, 10, "the stub HTTP server")
  if not ok then
    srv:stop()
    error(tostring(err))
  end
  return srv
end

return stub
