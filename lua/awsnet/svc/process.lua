--- Background processes for local services (MariaDB, dnsmasq, the sandbox), with a guard.
-- Plain Lua has no fork, so processes are started through /bin/sh. Every started process gets a
-- watchdog that kills it and removes its working folder when the Lua process that started it
-- dies, so an interrupted test run or demo never leaves a server or a temp folder behind.
local errors = require "awsnet.errors"

local process = {}

--- Quotes `s` for /bin/sh.
function process.quote(s)
  s = tostring(s)
  if s:match("^[%w%-%./_=:,@+]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end
local q = process.quote

--- Joins an argument vector into a shell command line.
function process.command(argv)
  local parts = {}
  for i, a in ipairs(argv) do parts[i] = q(a) end
  return table.concat(parts, " ")
end

--- Runs a command line; returns its output, or nil, err with the output in the message.
function process.run(cmdline)
  local f = assert(io.popen(cmdline .. " 2>&1", "r"))
  local out = f:read("a")
  local ok, how, status = f:close()
  if ok then return out end
  return errors.fail("process", string.format("%s: %s %s: %s", cmdline:match("^%S+"), how, status, out))
end

--- The pid of this Lua process.
function process.self_pid()
  local f = assert(io.open("/proc/self/stat", "r"))
  local pid = f:read("n")
  f:close()
  return math.tointeger(pid)
end

--- True while process `pid` exists.
function process.alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local stat = f:read("a")
  f:close()
  -- a zombie has exited already
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

--- Creates a fresh private temp folder.
function process.tempdir(prefix)
  -- -t: in $TMPDIR when it is set (so a caller can keep a child's scratch folders in one place
  -- it removes), else /tmp
  local out = assert(process.run("mktemp -d -t " .. q((prefix or "awsnet") .. ".XXXXXX")))
  return (out:gsub("%s+$", ""))
end

--- Sleeps for `seconds` (fractions allowed).
function process.sleep(seconds)
  os.execute("sleep " .. string.format("%.3f", seconds))
end

-- Starts a watchdog in its own session that runs `then_cmd` once this Lua process has exited,
-- however it ends (a SIGKILL included); returns the watchdog's pid.
local function start_guard(then_cmd)
  local guard = string.format("while kill -0 %d 2>/dev/null; do sleep 1; done; %s", process.self_pid(), then_cmd)
  local out = assert(process.run("env -u LD_PRELOAD setsid sh -c " .. q(guard) .. " </dev/null >/dev/null 2>&1 & echo $!"))
  return math.tointeger(tonumber(out:match("%d+")))
end

--- Removes `dir` when this Lua process exits, even if it is killed (for scratch folders of a
-- long-running process such as the sandbox; removing it earlier is fine).
function process.remove_on_exit(dir)
  start_guard("rm -rf " .. q(dir))
end

--- Starts `argv` in the background in its own session; stdout/stderr go to `log`.
-- `cleanup_dir` (optional) is removed by the watchdog when this Lua process dies.
-- The started program does not inherit LD_PRELOAD (sanitiser runtimes are for our core only).
-- Returns a handle {pid, stop(), alive()}.
function process.spawn(argv, opts)
  opts = opts or {}
  local env = ""
  for k, v in pairs(opts.env or {}) do env = env .. q(k .. "=" .. v) .. " " end
  local cmd = string.format("env -u LD_PRELOAD %s setsid %s </dev/null >>%s 2>&1 & echo $!",
    env, process.command(argv), q(opts.log or "/dev/null"))
  local out = assert(process.run(cmd))
  local pid = assert(math.tointeger(tonumber(out:match("%d+"))), "no pid from " .. cmd)
  -- The watchdog: when this Lua process is gone, kill the service's session and remove its folder.
  local handle = { pid = pid, guard_pid = start_guard(string.format(
    "kill -TERM -%d 2>/dev/null; sleep 2; kill -KILL -%d 2>/dev/null; %s", pid, pid,
    opts.cleanup_dir and ("rm -rf " .. q(opts.cleanup_dir)) or "true")) }

  function handle.alive() return process.alive(pid) end

  --- Stops the process (TERM, then KILL after `grace` seconds) and its watchdog.
  function handle.stop(grace)
    os.execute(string.format("kill -TERM -%d 2>/dev/null", pid))
    local deadline = os.time() + (grace or 10)
    while process.alive(pid) and os.time() <= deadline do process.sleep(0.05) end
    if process.alive(pid) then os.execute(string.format("kill -KILL -%d 2>/dev/null", pid)) end
    while process.alive(pid) do process.sleep(0.02) end
    if handle.guard_pid then os.execute(string.format("kill -KILL %d 2>/dev/null", handle.guard_pid)) end
  end
  return handle
end

--- Loopback TCP/UDP ports in use, read from /proc/net.
local function ports_in_use()
  local used = {}
  for _, f in ipairs({ "tcp", "tcp6", "udp", "udp6" }) do
    local h = io.open("/proc/net/" .. f, "r")
    if h then
      for line in h:lines() do
        local port = line:match("^%s*%d+: %x+:(%x+) ")
        if port then used[tonumber(port, 16)] = true end
      end
      h:close()
    end
  end
  return used
end

--- A port that is free on loopback for both TCP and UDP right now.
function process.free_port()
  local used = ports_in_use()
  for _ = 1, 1000 do
    local p = math.random(20000, 59999)
    if not used[p] then return p end
  end
  error("no free port found")
end

--- Polls `ready()` until it returns true or `timeout` seconds pass.
function process.wait_until(ready, timeout, what)
  local deadline = os.time() + timeout
  repeat
    if ready() then return true end
    process.sleep(0.05)
  until os.time() > deadline
  return errors.fail("timeout", "timed out after " .. timeout .. " s waiting for " .. (what or "a service"))
end

--- Writes `text` to `path`.
function process.write_file(path, text, mode)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  if mode then os.execute("chmod " .. mode .. " " .. q(path)) end
end

--- Reads a whole file, or nil.
function process.read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

return process
