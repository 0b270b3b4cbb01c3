--- The sandbox's network twin: its VPCs, subnets, ENIs, route tables, TGWs, security groups and
-- network ACLs as Linux network namespaces, veth links, routes and nftables rule sets, so that
-- the kernel is the data plane (awsnet.sandbox.twin.plan says what is realised and how).
--
--   local twin = require "awsnet.sandbox.twin"
--   local t, err = twin.start{mode = "auto", log = fn}  -- nil, err when "on" without privilege;
--                                                        -- nil, nil (and one log line) for auto
--   local job = t:sync(snapshot)   -- realises the snapshot: nil when nothing changes, else a
--                                  -- job whose poll() is nil until applied, then true or nil, err
--   t:tick()                       -- runs the queued changes (call often: the server loop does)
--   t.last_error                   -- the last change that failed (nil: none), as logged
--   t:exec_argv(eni_id, argv)      -- argv run inside an ENI's namespace
--   t:stop()                       -- removes every namespace it made, and only those
--
-- Names: every namespace is "<prefix>-<resource id>" (an ENI's, a VPC's router, a TGW's), every
-- link "<prefix><kind><n>" (15 bytes at most), every nftables
-- table "<prefix>", with a prefix drawn at random per twin and checked unused, so that several
-- sandboxes run at once and one never touches another's. A watchdog removes them all when the
-- sandbox's process ends, a SIGKILL included.
-- @module awsnet.sandbox.twin
local core = require "awsnet.core"
local errors = require "awsnet.errors"
local process = require "awsnet.svc.process"
local plan_mod = require "awsnet.sandbox.twin.plan"
local apply = require "awsnet.sandbox.twin.apply"

local twin = {}

local Twin = {}
Twin.__index = Twin

--- The message `--twin auto` logs once when the twin cannot run.
twin.UNAVAILABLE = "network twin unavailable: needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN); connections gated by the evaluator"

-- Capability bits (linux/capability.h) the twin needs: namespaces and links, and dropping a
-- Lambda's privileges.
local CAPS = { { 21, "CAP_SYS_ADMIN" }, { 12, "CAP_NET_ADMIN" }, { 7, "CAP_SETUID" }, { 6, "CAP_SETGID" } }

local function command_path(name)
  for dir in ("/usr/sbin:/sbin:/usr/bin:/bin"):gmatch("[^:]+") do
    local f = io.open(dir .. "/" .. name, "r")
    if f then f:close(); return dir .. "/" .. name end
  end
end

--- Whether this process can run a twin: true, or nil and what it lacks.
-- @treturn ?boolean true when it can
-- @treturn ?string what is missing
function twin.available()
  local status = process.read_file("/proc/self/status") or ""
  local hex = status:match("CapEff:%s*(%x+)")
  local eff = hex and tonumber(hex, 16) or 0
  local missing = {}
  for _, c in ipairs(CAPS) do
    if eff & (1 << c[1]) == 0 then missing[#missing + 1] = c[2] end
  end
  if #missing > 0 then return nil, "needs root (" .. table.concat(missing, ", ") .. ")" end
  for _, cmd in ipairs({ { "ip", "iproute2" }, { "nft", "nftables" } }) do
    if not command_path(cmd[1]) then return nil, "needs " .. cmd[1] .. " (Debian package " .. cmd[2] .. ")" end
  end
  return true
end

local function random_prefix()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(8)
  f:close()
  local alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
  local out = { "aw" }
  for i = 1, 4 do
    local b = bytes:byte(i) % #alphabet + 1
    out[#out + 1] = alphabet:sub(b, b)
  end
  return table.concat(out)
end

local function prefix_in_use(prefix)
  local listed = process.run("ip netns list 2>/dev/null", { interruptible = false }) or ""
  return listed:find("%f[%w]" .. prefix .. "%-") ~= nil
end

-- Short names that stay the same for a resource while the twin lives.
local function name_allocator(prefix)
  local n = { prefix = prefix, seen = {}, count = {}, tables = {}, next_table = 1000, macs = {}, next_mac = 0 }
  local function index(kind, id)
    local key = kind .. "|" .. id
    if not n.seen[key] then
      n.count[kind] = (n.count[kind] or 0) + 1
      n.seen[key] = string.format("%x", n.count[kind])
    end
    return n.seen[key]
  end
  -- a namespace is named by its resource's id, so that whoever knows the prefix finds an ENI's
  function n.ns(_, _, id) return prefix .. "-" .. id end
  function n.link(_, kind, id) return prefix .. kind .. index("link" .. kind, id) end
  function n.table(_, key)
    if not n.tables[key] then
      n.tables[key] = n.next_table
      n.next_table = n.next_table + 1
    end
    return n.tables[key]
  end
  function n.mac(_, name)
    if not n.macs[name] then
      n.next_mac = n.next_mac + 1
      local v = n.next_mac
      n.macs[name] = string.format("02:%02x:%02x:%02x:%02x:%02x", prefix:byte(3) % 256, prefix:byte(6) % 256,
        v >> 16 & 255, v >> 8 & 255, v & 255)
    end
    return n.macs[name]
  end
  return n
end

--- Starts a twin for a sandbox. opts.mode: "on" (an error without the privilege), "auto" (logs
-- `twin.UNAVAILABLE` once and returns nil), "off" (nil). opts.log: a function of a line.
-- @tparam table opts {mode, log}
-- @return the twin, or nil (no twin), or nil, err ("twin_unavailable" for "on")
function twin.start(opts)
  local mode = opts.mode or "off"
  if mode == "off" then return nil end
  local ok, lack = twin.available()
  if not ok then
    if mode == "on" then
      return errors.fail("twin_unavailable", "network twin unavailable: " .. lack ..
        "; run as root or with --twin off")
    end
    local log = opts.log or function(line) io.stderr:write(line, "\n") end
    log("awsnet sandbox: " .. (lack:match("^needs root") and twin.UNAVAILABLE or
      ("network twin unavailable: " .. lack .. "; connections gated by the evaluator")))
    return nil
  end
  local prefix
  repeat prefix = random_prefix() until not prefix_in_use(prefix)
  local self = setmetatable({ prefix = prefix, names = name_allocator(prefix), plan = nil, queue = {},
    running = nil, dir = process.tempdir("awsnet-twin"), serial = 0, log = opts.log, busy = {} }, Twin)
  -- removes the namespaces (and what runs in them) and the folder when this process ends, however
  self.guard = process.run_on_exit(apply.remove_all_command(prefix) .. "; rm -rf " .. process.quote(self.dir))
  return self
end

--- Realises `snapshot` (the sandbox's describe-* data): queues the change from the plan last
-- queued. Returns nil when nothing changes, else a job {poll(), done()}: poll() is nil until the
-- change ran, then true, or nil, err ("twin_apply", with the commands' errors).
-- @tparam table snapshot the sandbox's snapshot
-- @treturn ?table the job
function Twin:sync(snapshot)
  local new = plan_mod.build(snapshot, self.names)
  new.busy = self.busy
  self.serial = self.serial + 1
  local script, files = apply.script(self.plan, new, self.dir .. "/" .. self.serial)
  self.plan = new
  if not script then return nil end
  local entry = { script = script, files = files, log = self.dir .. "/" .. self.serial .. ".log" }
  self.queue[#self.queue + 1] = entry
  self:tick()
  local job = {}
  function job.poll()
    if not entry.finished then self:tick() end
    if not entry.finished then return nil end
    if entry.err then return nil, entry.err end
    return true
  end
  function job.done() return job.poll() ~= nil or entry.err ~= nil end
  return job
end

--- Runs the queue: starts the next change when none runs, reaps the one that ended.
-- @treturn boolean whether a change is still queued or running
function Twin:tick()
  local r = self.running
  if r then
    local how, code = core.process.wait(r.pid, 0, false)
    if not how then return true end
    r.entry.finished = true
    if how ~= "exited" or code ~= 0 then
      local text = process.read_file(r.entry.log) or ""
      r.entry.err = errors.new("twin_apply", "the network twin could not apply a change: " .. text:sub(-2000))
      self.last_error = r.entry.err
      if self.log then self.log("awsnet sandbox: " .. r.entry.err.message) end
    end
    for _, f in ipairs(r.entry.files) do os.remove(f) end
    os.remove(r.entry.log)
    self.running = nil
  end
  local entry = table.remove(self.queue, 1)
  if not entry then return false end
  local log = entry.log
  local pid = assert(core.process.spawn({ "/bin/sh", entry.script }, { stdin = "/dev/null", stdout = log, stderr = log,
    group = true, env = { LD_PRELOAD = false } }))
  self.running = { pid = pid, entry = entry }
  return true
end

--- Waits (up to `timeout` seconds, default 30) until every queued change has run.
-- @tparam[opt] number timeout seconds
-- @treturn boolean true when idle
function Twin:settle(timeout)
  local deadline = core.httpd.monotonic() + (timeout or 30)
  while self:tick() do
    if core.httpd.monotonic() > deadline then return false end
    core.process.sleep(0.005, false)
  end
  return true
end

--- Where an ENI lives in the twin: {ns, ip, vpc, subnet}, or nil.
-- @tparam string eni_id the ENI id
-- @treturn ?table
function Twin:eni(eni_id) return self.plan and self.plan.enis[eni_id] end

--- Where a VPC's router lives: {ns, resolver, dns, cidrs}, or nil.
-- @tparam string vpc_id the VPC id
-- @treturn ?table
function Twin:vpc(vpc_id) return self.plan and self.plan.vpcs[vpc_id] end

--- `argv` prefixed so that it runs inside namespace `ns` (ip netns exec).
-- @tparam string ns a namespace of this twin
-- @tparam {string,...} argv the command
-- @treturn {string,...} the command to run
function Twin:exec_argv(ns, argv)
  assert(ns:sub(1, #self.prefix + 1) == self.prefix .. "-", "not a namespace of this twin")
  local out = { command_path("ip") or "ip", "netns", "exec", ns }
  for _, a in ipairs(argv) do out[#out + 1] = a end
  return out
end

--- Probes flows inside the twin with the project's probe and responder (twin/probe.py, one
-- process that enters the namespaces): responders listen on the given ENIs, every flow starts at
-- once and counts as open when it completes within `timeout` seconds.
-- @tparam table listen {{eni = id, tcp = {ports}, udp = {ports}}}
-- @tparam table flows {{id, src = eni id, dst = address, proto = "tcp"|"udp"|"icmp", port, sport}}
-- @tparam[opt=0.3] number timeout seconds
-- @return {[id] = boolean}, or nil, err ("twin_probe")
function Twin:probe(listen, flows, timeout)
  local req = { timeout = timeout or 0.3, listen = {}, flows = {} }
  for _, l in ipairs(listen) do
    local e = self:eni(l.eni)
    if e then req.listen[#req.listen + 1] = { ns = e.ns, ip = e.ip, tcp = l.tcp or {}, udp = l.udp or {} } end
  end
  for _, f in ipairs(flows) do
    local e = self:eni(f.src)
    if not e then return errors.fail("twin_probe", "no ENI " .. tostring(f.src) .. " in the twin") end
    req.flows[#req.flows + 1] = { id = f.id, ns = e.ns, src = e.ip, dst = f.dst, proto = f.proto, port = f.port or 0,
      sport = f.sport or 0 }
  end
  return twin.run_probe(req)
end

--- Runs the twin's probe (twin/probe.py) on a request naming namespaces: {timeout, listen =
-- {{ns, ip, tcp, udp}}, flows = {{id, ns, src, dst, proto, port, sport}}} (any twin's, also
-- another process's). Returns {[id] = boolean}, or nil, err ("twin_probe").
-- @tparam table req the request
-- @return the answers, or nil, err
function twin.run_probe(req)
  local cjson = require "cjson"
  local dir = process.tempdir("awsnet-probe")
  local path = dir .. "/probe.json"
  process.write_file(path, cjson.encode(req))
  local script = assert(package.searchpath("awsnet.sandbox.twin.probe", (package.path:gsub("%.lua", ".py"))))
  local how, code, out = core.process.capture({ "/usr/bin/python3", script }, { stdin = path, timeout = 30,
    env = { LD_PRELOAD = false } })
  process.remove(dir)
  local ok, res = pcall(cjson.decode, out or "")
  if how ~= "exited" or code ~= 0 or not ok or type(res) ~= "table" then
    return errors.fail("twin_probe", "the probe failed: " .. tostring(out):sub(1, 2000))
  end
  return res
end

--- The namespaces this twin has made (from the kernel's list, by its prefix).
-- @treturn {string,...} sorted names
function Twin:namespaces()
  local out = {}
  for line in (process.run("ip netns list 2>/dev/null") or ""):gmatch("[^\n]+") do
    local name = line:match("^(%S+)")
    if name and name:sub(1, #self.prefix + 1) == self.prefix .. "-" then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

--- The packet counters of every rule of the twin with prefix `prefix` (this process's or another
-- sandbox's: read from the kernel), by the rule's comment ("acl-... in 100", "rtb-... no route or
-- blackhole", "sg-... in *"), summed over its namespaces.
-- @tparam string prefix the twin's prefix
-- @treturn table {[comment] = packets}
function twin.counters(prefix)
  local cjson = require "cjson"
  local out = {}
  local listed = process.run("ip netns list 2>/dev/null", { interruptible = false }) or ""
  for name in listed:gmatch("(%S+)[^\n]*") do
    if name:sub(1, #prefix + 1) == prefix .. "-" then
      for _, family in ipairs({ "ip", "netdev" }) do
        local text = process.run(string.format("nsenter --net=/run/netns/%s nft -j list table %s %s 2>/dev/null",
          process.quote(name), family, prefix), { interruptible = false })
        local ok, doc = pcall(cjson.decode, text or "")
        for _, item in ipairs(ok and type(doc) == "table" and doc.nftables or {}) do
          local r = item.rule
          if r and r.comment then
            for _, e in ipairs(r.expr or {}) do
              if type(e) == "table" and e.counter then out[r.comment] = (out[r.comment] or 0) + (e.counter.packets or 0) end
            end
          end
        end
      end
    end
  end
  return out
end

--- Removes every namespace the twin made (with its links, rule sets and processes) and its
-- folder; the twin is unusable afterwards.
function Twin:stop()
  if self.stopped then return end
  self.stopped = true
  if self.running then
    core.process.kill(-self.running.pid, "KILL")
    core.process.wait(self.running.pid, 5, false)
    self.running = nil
  end
  self.queue = {}
  require("awsnet.sandbox.twin.services").stop(self)
  process.run(apply.remove_all_command(self.prefix), { interruptible = false })
  process.remove(self.dir)
  if self.guard then self.guard.cancel(); self.guard = nil end
end
Twin.__gc = Twin.stop
Twin.__close = Twin.stop

return twin
