-- Ctrl-C and SIGTERM (issue 14). The C core's spawn/wait/kill and its sleeps that SIGINT and
-- SIGTERM cut short; then real commands stopped mid-run (`awsnet sandbox`, `awsnet demo`, a
-- `scenario apply`): each exits 130 or 143 within a second or two, leaves no process of its
-- own behind (found by a tag in their environment or their TMPDIR on their command line) and
-- nothing in the TMPDIR it was given; an interrupted apply leaves a state file the next apply
-- and destroy go on from.
local core = require "awsnet.core"
local process = require "awsnet.svc.process"
local runbook = require "awsnet.runbook"
local cjson = require "cjson"

local P = core.process
local clock = core.httpd.monotonic
local ROOT = os.getenv("PWD") or "."
local AWSNET = ROOT .. "/bin/awsnet"

-- Waits (not interruptible: this process has no handlers) until `ready()` or `timeout` seconds.
local function wait_for(ready, timeout)
  local deadline = clock() + timeout
  repeat
    if ready() then return true end
    P.sleep(0.05, false)
  until clock() > deadline
  return false
end

local function read(path) return process.read_file(path) or "" end

-- Processes that carry `tag` in their environment or `dir` on their command line, as "pid cmd".
local function processes_of(tag, dir)
  local found = {}
  local me = P.pid()
  for pid in assert(process.call({ "ls", "/proc" }, { interruptible = false })):gmatch("%d+") do
    if tonumber(pid) ~= me then
      local env = read("/proc/" .. pid .. "/environ")
      local cmd = read("/proc/" .. pid .. "/cmdline"):gsub("%z", " ")
      if env:find(tag, 1, true) or cmd:find(dir, 1, true) then found[#found + 1] = pid .. " " .. cmd end
    end
  end
  return found
end

local function entries(dir)
  local out = assert(process.call({ "ls", "-A", dir }, { interruptible = false }))
  local list = {}
  for name in out:gmatch("[^\n]+") do list[#list + 1] = name end
  return list
end

local function last_line(text)
  return text:match("([^\n]*)\n?$")
end

-- A command run the way a user runs it: its own process group (as a terminal's job), its own
-- TMPDIR and a tag in its environment that every descendant inherits.
local Run = {}
Run.__index = Run

local runs = {}

local function start(argv, name)
  local base = process.tempdir("awsnet-signals")
  local self = setmetatable({ base = base, tmp = base .. "/tmp", out = base .. "/out", log = base .. "/stdout",
    err = base .. "/stderr", tag = "AWSNET_SIGNALS_TAG=" .. name .. "-" .. math.random(1, 1e9) }, Run)
  assert(process.mkdir(self.tmp))
  assert(process.mkdir(self.out))
  local full = {}
  for i, a in ipairs(argv) do full[i] = a:gsub("{out}", self.out) end
  self.pid = assert(P.spawn(full, { group = true, stdin = "/dev/null", stdout = self.log, stderr = self.err,
    env = { TMPDIR = self.tmp, AWSNET_SIGNALS_TAG = self.tag:match("=(.*)") } }))
  runs[#runs + 1] = self
  return self
end

-- Sends `sig` (to the process group when `group`), waits for the exit; returns how, code, seconds.
function Run:interrupt(sig, group)
  local t0 = clock()
  assert(P.kill(group and -self.pid or self.pid, sig))
  local how, code = P.wait(self.pid, 20, false)
  self.ended = how ~= nil
  return how, code, clock() - t0
end

-- Nothing of the run is left: no process, nothing in its TMPDIR. A process that is still on its
-- way out gets half a second.
function Run:assert_clean()
  local left
  wait_for(function() left = processes_of(self.tag, self.base); return #left == 0 end, 0.5)
  assert.same({}, left)
  assert.same({}, entries(self.tmp))
end

function Run:cleanup()
  if not self.ended then
    P.kill(-self.pid, "KILL")
    P.wait(self.pid, 5, false)
  end
  for _, line in ipairs(processes_of(self.tag, self.base)) do
    P.kill(math.tointeger(tonumber(line:match("^%d+"))), "KILL")
  end
  process.remove(self.base)
end

describe("signals #signals", function()
  after_each(function()
    for i = #runs, 1, -1 do runs[i]:cleanup(); runs[i] = nil end
    P.signals.restore()
  end)

  describe("the C core", function()
    it("spawns, waits for and kills a child, without a shell", function()
      local dir = process.tempdir("awsnet-signals-core")
      finally(function() process.remove(dir) end)
      local pid = assert(P.spawn({ "sh", "-c", 'printf "%s %s" "$X" "$(pwd)"; echo oops >&2; exit 3' },
        { env = { X = "x-value" }, cwd = dir, stdout = dir .. "/out", stderr = dir .. "/out" }))
      assert.same({ "exited", 3 }, { P.wait(pid, 10) })
      assert.equals("x-value " .. dir .. "oops\n", read(dir .. "/out"))

      pid = assert(P.spawn({ "sleep", "30" }, { group = true }))
      assert.same({ nil, "timeout" }, { P.wait(pid, 0.05) })
      assert.is_true(P.kill(-pid, "TERM"))
      assert.same({ "signalled", 15 }, { P.wait(pid, 5) })
      local ok, _, why = P.kill(pid, 0)
      assert.is_nil(ok)
      assert.equals("gone", why)

      local missing, msg = P.spawn({ "awsnet-no-such-program" })
      assert.is_nil(missing)
      assert.matches("cannot run awsnet%-no%-such%-program: No such file", msg)
    end)

    it("gives a child only the environment it is told with clear_env", function()
      local how, code, out = P.capture({ "env" }, { clear_env = true, env = { ONLY = "this", GONE = false } })
      assert.same({ "exited", 0, "ONLY=this\n" }, { how, code, out })
      how, code, out = P.capture({ "sh", "-c", 'echo "${HOME:-unset}"' }, { env = { HOME = false } })
      assert.same({ "exited", 0, "unset\n" }, { how, code, out })
    end)

    it("hands a child its stdin_data through a pipe, filled before it starts (no file, no argv)", function()
      local dir = process.tempdir("awsnet-stdin-data")
      local out = dir .. "/out"
      local secret = "AWS_SECRET_ACCESS_KEY=" .. string.rep("k", 40) .. "\n" .. string.rep("x", 60000)
      local pid = assert(P.spawn({ "sh", "-c", 'cat; readlink /proc/self/fd/0 >&2' }, { stdin_data = secret,
        stdout = out, stderr = dir .. "/err" }))
      assert.same({ "exited", 0 }, { P.wait(pid, 10) })
      assert.equals(secret, process.read_file(out))
      assert.matches("^pipe:", process.read_file(dir .. "/err"))
      -- more than a pipe holds, and both stdin and stdin_data, are refused before anything runs
      assert.has_error(function() P.spawn({ "true" }, { stdin_data = string.rep("y", 65537) }) end)
      assert.has_error(function() P.spawn({ "true" }, { stdin_data = "x", stdin = "/dev/null" }) end)
      process.remove(dir)
    end)

    it("kills a captured pipeline's whole group on timeout", function()
      local tag = "awsnet-signals-pipe-" .. math.random(1, 1e9)
      local t0 = clock()
      local how, why = P.capture({ "sh", "-c", "sleep 30 | cat; echo never" }, { timeout = 0.2, env = { T = tag } })
      assert.same({ nil, "timeout" }, { how, why })
      assert.is_true(clock() - t0 < 2)
      assert.same({}, processes_of(tag, tag))
    end)

    it("cuts a sleep short on SIGTERM and keeps the signal for the next ones", function()
      assert.is_true(P.signals.install())
      assert.is_nil(P.interrupted())
      local killer = assert(P.spawn({ "sh", "-c", "sleep 0.2; kill -TERM " .. P.pid() }))
      local t0 = clock()
      assert.same({ false, 15 }, { P.sleep(5) })
      assert.is_true(clock() - t0 < 2)
      assert.same({ 15, "SIGTERM" }, { P.interrupted() })
      P.wait(killer, 5, false)
      -- every later interruptible sleep returns at once; a cleanup's sleep still sleeps
      t0 = clock()
      assert.same({ false, 15 }, { P.sleep(5) })
      assert.is_true(P.sleep(0.1, false))
      assert.is_true(clock() - t0 >= 0.09 and clock() - t0 < 1) -- the clock counts whole ms
      -- the Lua layers turn it into one error value
      local ok, err = process.sleep(1)
      assert.is_nil(ok)
      assert.same({ "interrupted", "SIGTERM" }, { err.code, err.signal })
      ok, err = runbook.sleep(1)
      assert.is_nil(ok)
      assert.equals("interrupted", err.code)
      local out, rerr = process.run("sleep 5")
      assert.is_nil(out)
      assert.equals("interrupted", rerr.code)
      assert.is_true(P.signals.restore())
      assert.is_nil(P.interrupted())
    end)

    it("ends an HTTP transfer waiting for a silent server, and the retry pause, on SIGTERM", function()
      local http = require "awsnet.http"
      local dir = process.tempdir("awsnet-signals-http")
      -- a server that takes the connection (the kernel's backlog) and never answers
      local server = assert(P.spawn({ "python3", "-c", "import socket, time\n" ..
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(4)\n" ..
        "print(s.getsockname()[1], flush=True); time.sleep(30)" }, { group = true, stdout = dir .. "/port" }))
      assert.is_true(wait_for(function() return read(dir .. "/port"):match("%d+\n") end, 10))
      local port = read(dir .. "/port"):match("%d+")
      P.signals.install()
      local killer = assert(P.spawn({ "sh", "-c", "sleep 0.3; kill -TERM " .. P.pid() }))
      local t0 = clock()
      local res, err = http.request{ method = "GET", url = "http://127.0.0.1:" .. port .. "/", timeout = 20 }
      local took = clock() - t0
      P.kill(-server, "KILL")
      P.wait(server, 5, false)
      P.wait(killer, 5, false)
      process.remove(dir)
      assert.is_nil(res)
      assert.equals("interrupted", err.code)
      assert.is_true(took < 2, "the transfer went on for " .. took .. " s")
      -- the pause between retries returns at once too
      t0 = clock()
      assert.is_false(core.http.sleep(5))
      assert.is_true(clock() - t0 < 1)
      assert.is_true(P.signals.restore())
    end)

    it("ends a wait early on SIGINT, and the child is still there to stop", function()
      P.signals.install()
      local child = assert(P.spawn({ "sleep", "30" }, { group = true }))
      local killer = assert(P.spawn({ "sh", "-c", "sleep 0.2; kill -INT " .. P.pid() }))
      local t0 = clock()
      assert.same({ nil, "interrupted", 2 }, { P.wait(child, 10) })
      assert.is_true(clock() - t0 < 2)
      P.kill(-child, "KILL")
      assert.same({ "signalled", 9 }, { P.wait(child, 5, false) })
      P.wait(killer, 5, false)
    end)

    it("refuses bad arguments", function()
      local bad = {
        function() P.spawn({}) end,
        function() P.spawn("ls") end,
        function() P.spawn({ "ls", 1 }) end,
        function() P.spawn({ "ls\0x" }) end,
        function() P.spawn({ "ls" }, { bogus = true }) end,
        function() P.spawn({ "ls" }, { env = { ["A=B"] = "x" } }) end,
        function() P.spawn({ "ls" }, { env = { A = 1 } }) end,
        function() P.spawn({ "ls" }, { stdout = "" }) end,
        function() P.spawn({ "ls" }, { group = "yes" }) end,
        function() P.capture({ "ls" }, { timeout = -1 }) end,
        function() P.capture({ "ls" }, { stdout = "/dev/null" }) end,
        function() P.wait(0) end,
        function() P.wait(1, -1) end,
        function() P.wait(1, 0, "no") end,
        function() P.kill(0, "TERM") end,
        function() P.kill(-1, "TERM") end,
        function() P.kill(1, "NOSUCH") end,
        function() P.kill(1, 999) end,
        function() P.sleep(-1) end,
        function() P.sleep(0 / 0) end,
        function() P.sleep(1e9) end,
        function() P.signals.install{ exit_status = "yes" } end,
        function() P.signals.note() end,
      }
      for i, f in ipairs(bad) do assert.has_error(f, nil, "case " .. i) end
    end)
  end)

  describe("commands", function()
    it("`awsnet sandbox` stops on SIGTERM with its DNS server, and exits 143", function()
      local port = process.free_port()
      local run = start({ "lua5.4", AWSNET, "sandbox", "--port", tostring(port) }, "sandbox")
      assert.is_true(wait_for(function() return read(run.log):find("listening on", 1, true) ~= nil end, 30),
        read(run.err))
      -- dnsmasq's folder, and the network twin's when it runs (as root: --twin auto)
      local prefix = read(run.log):match("network twin (aw%w+)")
      assert.equals(prefix and 2 or 1, #entries(run.tmp))
      local how, code, seconds = run:interrupt("TERM")
      assert.same({ "exited", 143 }, { how, code })
      assert.is_true(seconds < 2, seconds .. " s")
      assert.matches("^awsnet: interrupted by SIGTERM; the sandbox stopped", last_line(read(run.err)))
      run:assert_clean()
      if prefix then
        assert.falsy((process.run("ip netns list") or ""):find(prefix .. "-", 1, true), "the twin's namespaces are left")
      end
    end)

    it("`awsnet demo` stops on Ctrl-C (SIGINT to its process group) during apply, and exits 130", function()
      local run = start({ "lua5.4", AWSNET, "demo", "--out", "{out}" }, "demo")
      assert.is_true(wait_for(function() return read(run.log):find("created   subnet_a", 1, true) ~= nil end, 60),
        read(run.log) .. read(run.err))
      local how, code, seconds = run:interrupt("INT", true)
      assert.same({ "exited", 130 }, { how, code })
      assert.is_true(seconds < 2, seconds .. " s")
      assert.matches("^awsnet: interrupted by SIGINT; the local sandbox", last_line(read(run.err)))
      run:assert_clean()
    end)

    it("`awsnet demo` stops on SIGTERM once the database runs, its MariaDB and folders gone", function()
      local run = start({ "lua5.4", AWSNET, "demo", "--out", "{out}" }, "demo-db")
      assert.is_true(wait_for(function() return read(run.log):find("created   db ", 1, true) ~= nil end, 90),
        read(run.log) .. read(run.err))
      local mariadbd = {}
      for _, p in ipairs(processes_of(run.tag, run.base)) do
        if p:find("mariadbd", 1, true) then mariadbd[#mariadbd + 1] = p end
      end
      local how, code, seconds = run:interrupt("TERM")
      assert.same({ "exited", 143 }, { how, code })
      assert.is_true(seconds < 3, seconds .. " s")
      assert.is_true(#mariadbd > 0)
      run:assert_clean()
    end)

    it("`scenario apply` stops on SIGTERM with a whole state file; apply then destroy finish the job", function()
      local sandboxed = require "awsnet.scenario.sandboxed"
      local scenario = require "awsnet.scenario.tgw_lambda_rds"
      local sb = assert(sandboxed.start{ seed = 14 })
      finally(function() sb:stop() end)
      local user_cfg = sb:config{ name = "signals" }
      local cfg = assert(scenario.config(user_cfg))
      local rb = assert(scenario.runbook(cfg))
      local before = sb:resources()
      local cfg_file = sb.dir .. "/config.json"
      process.write_file(cfg_file, cjson.encode(user_cfg))
      local run = start(sandboxed.awsnet_command({ "scenario", "apply", "--config", cfg_file, "--json" }), "apply")
      local function done_steps() return select(2, read(run.log):gsub('"event":"done"', "")) end
      assert.is_true(wait_for(function() return done_steps() >= 3 end, 60), read(run.err))
      local how, code, seconds = run:interrupt("TERM")
      assert.same({ "exited", 143 }, { how, code })
      assert.is_true(seconds < 2, seconds .. " s")
      assert.matches("^awsnet: interrupted by SIGTERM; stopped at step %S+; the state file", last_line(read(run.err)))
      run:assert_clean()
      assert.is_true(done_steps() < #rb.steps)
      local saved = cjson.decode(read(cfg.state_file))
      assert.is_table(saved.resources)
      assert.is_not_nil(next(saved.resources))
      local applied, err = rb:apply()
      assert(applied, err and tostring(err))
      assert.is_true(applied.kept + applied.adopted >= 3)
      local destroyed
      destroyed, err = rb:destroy()
      assert(destroyed, err and tostring(err))
      assert.same({}, assert(rb:leftovers()))
      assert.same(before, sb:resources())
    end)
  end)
end)
