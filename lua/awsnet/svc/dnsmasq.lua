--- A dnsmasq on a free loopback port serving fixed records, authoritative for chosen domains.
--
--   local dns = assert(dnsmasq.start{
--     domains = {"example.test"},           -- names under these that have no record: NXDOMAIN
--     records = {
--       {type="A", name="db.example.test", address="10.1.128.5", ttl=60},
--       {type="CNAME", name="alias.example.test", target="db.example.test", ttl=30},
--       {type="TXT", name="big.example.test", text={"...", "..."}},
--     }})
--   -- dns.host, dns.port; dns:set_records(records) rewrites and restarts; dns:stop()
-- @module awsnet.svc.dnsmasq
local process = require "awsnet.svc.process"
local errors = require "awsnet.errors"

local dnsmasq = {}
local Server = {}
Server.__index = Server

local function config_text(opts)
  local lines = {}
  for _, d in ipairs(opts.domains or {}) do lines[#lines + 1] = "local=/" .. d .. "/" end
  for _, r in ipairs(opts.records or {}) do
    local ttl = r.ttl and ("," .. r.ttl) or ""
    if r.type == "A" or r.type == "AAAA" then
      lines[#lines + 1] = string.format("host-record=%s,%s%s", r.name, r.address, ttl)
    elseif r.type == "CNAME" then
      lines[#lines + 1] = string.format("cname=%s,%s%s", r.name, r.target, ttl)
    elseif r.type == "TXT" then
      local parts = type(r.text) == "table" and r.text or { r.text }
      local quoted = {}
      for i, t in ipairs(parts) do quoted[i] = '"' .. t:gsub('[\\"]', "\\%0") .. '"' end
      lines[#lines + 1] = string.format("txt-record=%s,%s", r.name, table.concat(quoted, ","))
    elseif r.type == "PTR" then
      lines[#lines + 1] = string.format("ptr-record=%s,%s", r.name, r.target)
    else
      error("unsupported record type " .. tostring(r.type))
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

function Server:_launch()
  process.write_file(self.dir .. "/dnsmasq.conf", config_text(self.opts))
  -- readiness is read from the log: a restart must not see the previous run's "started" line
  os.remove(self.dir .. "/dnsmasq.log")
  for attempt = 1, 5 do
    self.port = self.opts.port or self.port or process.free_port()
    local argv = {
      "dnsmasq", "--keep-in-foreground", "--conf-file=" .. self.dir .. "/dnsmasq.conf",
      "--port=" .. self.port, "--listen-address=" .. self.host, "--bind-interfaces",
      "--no-resolv", "--no-hosts", "--no-poll", "--user=root", "--group=root",
      "--pid-file=" .. self.dir .. "/dnsmasq.pid", "--log-facility=" .. self.dir .. "/dnsmasq.log",
      "--log-queries", "--local-ttl=" .. (self.opts.local_ttl or 0), "--edns-packet-max=1232",
    }
    self.proc = process.spawn(argv, { log = self.dir .. "/stderr.log", cleanup_dir = self.dir })
    local up, err = process.wait_until(function()
      if not self.proc.alive() then return true end
      local log = process.read_file(self.dir .. "/dnsmasq.log") or ""
      return log:find("started", 1, true) ~= nil
    end, 10, "dnsmasq to start")
    if up and self.proc.alive() then return true end
    if err and err.code == "interrupted" then
      self.proc.stop(); self.proc = nil
      return nil, err
    end
    local log = (process.read_file(self.dir .. "/stderr.log") or "") .. (process.read_file(self.dir .. "/dnsmasq.log") or "")
    self.proc.stop(); self.proc = nil
    if attempt == 5 or self.opts.port or not log:find("in use", 1, true) then
      return errors.fail("start", "dnsmasq did not start: " .. log:sub(-1000))
    end
    self.port = nil
  end
end

--- Replaces the served records (dnsmasq re-reads its config only on restart; same port kept).
-- @within Server
-- @tparam table records as for `start`
-- @return true, or nil, err ("start": dnsmasq did not come back)
-- @raise on a record type other than A, AAAA, CNAME, TXT, PTR
function Server:set_records(records)
  self.opts.records = records
  if self.proc then self.proc.stop() end
  return self:_launch()
end

--- Stops dnsmasq and removes its folder; harmless twice; also on `__close`.
-- @within Server
function Server:stop()
  if self.proc then self.proc.stop(); self.proc = nil end
  if self.dir then process.remove(self.dir); self.dir = nil end
end
Server.__close = Server.stop

--- Starts dnsmasq. opts: records, domains, port, host (default 127.0.0.1).
-- Without `port` a free one is picked (and another one tried when it is taken meanwhile).
-- @tparam[opt] table opts {records, domains, port, host, local_ttl}
-- @return the server {host, port, `set_records`, `stop`}, or nil, err ("start", with its log)
-- @raise on a record type other than A, AAAA, CNAME, TXT, PTR
function dnsmasq.start(opts)
  opts = opts or {}
  local self = setmetatable({ opts = opts, host = opts.host or "127.0.0.1",
    dir = process.tempdir("awsnet-dnsmasq") }, Server)
  local ok, err = self:_launch()
  if not ok then self:stop(); return nil, err end
  return self
end

return dnsmasq
