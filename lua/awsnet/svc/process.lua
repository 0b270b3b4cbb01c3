--- Background processes for local services (MariaDB, dnsmasq, the sandbox), with a guard.
-- Processes start, are waited for and are stopped through the C core (awsnet.core.process:
-- fork/exec, waitpid, kill), with no shell in between unless a command line asks for one. Every
-- started process gets a watchdog that kills it and removes its working folder when the Lua
-- process that started it dies (even by SIGKILL), so a killed test run or demo never leaves a
-- server or a temp folder behind.
--
-- Interrupts: once `process.handle_interrupts()` has run (the command line does it first),
-- SIGINT and SIGTERM only set a flag. Sleeps, waits and commands end early then and return the
-- error {code = "interrupted", signal = "SIGINT"|"SIGTERM"}, so that callers stop what they do,
-- stop their children (stop() waits whatever the flag says) and remove their folders.
-- @module awsnet.svc.process
local errors = require "awsnet.errors"

local process = {}

-- The C core, loaded on first use: quote and command work without it.
local function core() return require("awsnet.core").process end

--- The interrupt received since the handlers were installed, as an error value
-- {code = "interrupted", signal = "SIGINT"|"SIGTERM", signo}; nil when there was none.
-- @treturn ?table the error value
function process.interrupted()
  local signo, name = core().interrupted()
  if not signo then return nil end
  return errors.new("interrupted", "interrupted by " .. name, { signal = name, signo = signo })
end

local function interrupt_error()
  return process.interrupted() or errors.new("interrupted", "interrupted", { signal = "SIGINT", signo = 2 })
end

--- Installs the SIGINT and SIGTERM handlers of a command-line program. After an interrupt the
-- process exits with 128 + the signal (130, 143), whatever status it returns, and its last line
-- on stderr says what was left consistent (process.interrupt_note).
function process.handle_interrupts()
  assert(core().signals.install{ exit_status = true })
  core().signals.note("child processes stopped, temporary folders removed")
end

--- Sets what the exit line after an interrupt says was left consistent (one line).
-- @tparam string text the line
function process.interrupt_note(text)
  core().signals.note(text)
end

--- Quotes `s` for /bin/sh.
-- @param s the value (turned into a string)
-- @treturn string `s` itself when it is safe, else single-quoted
function process.quote(s)
  s = tostring(s)
  if s:match("^[%w%-%./_=:,@+]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end
local q = process.quote

--- Joins an argument vector into a shell command line.
-- @tparam {string,...} argv the program and its arguments
-- @treturn string
function process.command(argv)
  local parts = {}
  for i, a in ipairs(argv) do parts[i] = q(a) end
  return table.concat(parts, " ")
end

-- argv with numbers as strings (the core takes strings only, callers pass ports as numbers).
local function strings(argv)
  local out = {}
  for i, a in ipairs(argv) do out[i] = math.type(a) and tostring(a) or a end
  return out
end

-- Runs argv with its output captured; returns the output, or nil, err.
local function capture(argv, name, opts)
  opts = opts or {}
  local how, code, out = core().capture(argv, { timeout = opts.timeout, interruptible = opts.interruptible ~= false })
  if how == "exited" and code == 0 then return out end
  if code == "interrupted" then return nil, interrupt_error() end
  if code == "timeout" then
    return errors.fail("timeout", string.format("%s: timed out after %g s: %s", name, opts.timeout, out))
  end
  if not how then return errors.fail("process", tostring(code)) end
  return errors.fail("process", string.format("%s: %s %s: %s", name, how == "exited" and "exit" or "signal", code, out))
end

--- Runs a command line through /bin/sh; returns its output (stdout and stderr), or nil, err with
-- the output in the message. opts: timeout (seconds), interruptible (default true: SIGINT or
-- SIGTERM kills the command and returns the "interrupted" error; false for cleanup work).
-- @tparam string cmdline the command line
-- @tparam[opt] table opts {timeout, interruptible}
-- @treturn string the output, or nil, err ("process": how it ended and its output; "timeout";
-- "interrupted")
function process.run(cmdline, opts)
  return capture({ "/bin/sh", "-c", cmdline }, cmdline:match("^%S+"), opts)
end

--- Runs `argv` without a shell; returns its output, or nil, err. opts as for run.
-- @tparam {string,...} argv the program and its arguments
-- @tparam[opt] table opts {timeout, interruptible}
-- @treturn string the output, or nil, err (as for `run`)
function process.call(argv, opts)
  return capture(strings(argv), argv[1], opts)
end

--- Removes a file or folder tree; done even after an interrupt (cleanup is what follows one).
-- @tparam string path the file or folder
-- @return the output (empty), or nil, err ("process")
function process.remove(path)
  return process.call({ "rm", "-rf", "--", path }, { interruptible = false })
end

--- Creates a folder and its parents; `mode` (e.g. "700") is set on the folder itself.
-- @tparam string path the folder
-- @tparam[opt] string mode chmod mode
-- @return a true value, or nil, err ("process")
function process.mkdir(path, mode)
  local ok, err = process.call({ "mkdir", "-p", "--", path }, { interruptible = false })
  if ok and mode then ok, err = process.call({ "chmod", mode, "--", path }, { interruptible = false }) end
  return ok, err
end

--- The pid of this Lua process.
-- @treturn integer
function process.self_pid()
  return core().pid()
end

--- True while process `pid` exists (a child of this process that has ended is reaped here).
-- @param pid the process id (anything but a positive integer gives false)
-- @treturn boolean false also for a zombie
function process.alive(pid)
  pid = math.tointeger(pid)
  if not pid or pid <= 0 then return false end
  local how, why = core().wait(pid, 0, false)
  if how then return false end
  if why == "timeout" then return true end
  -- not a child of this process: /proc tells
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local stat = f:read("a")
  f:close()
  -- a zombie has exited already
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

--- Creates a fresh private temp folder.
-- @tparam[opt="awsnet"] string prefix the folder name's start
-- @treturn string the path
-- @raise when mktemp fails
function process.tempdir(prefix)
  -- -t: in $TMPDIR when it is set (so a caller can keep a child's scratch folders in one place
  -- it removes), else /tmp
  local out = assert(process.call({ "mktemp", "-d", "-t", (prefix or "awsnet") .. ".XXXXXX" }, { interruptible = false }))
  return (out:gsub("%s+$", ""))
end

--- Seconds on a clock that no settimeofday moves (fractions).
-- @treturn number
function process.clock()
  return require("awsnet.core").httpd.monotonic()
end

--- Sleeps for `seconds` (fractions allowed); returns true, or nil, err (code "interrupted") when
-- SIGINT or SIGTERM cut it short.
-- @tparam number seconds how long (0 or less: no wait)
-- @return true, or nil, err ("interrupted")
function process.sleep(seconds)
  if core().sleep(math.max(0, seconds)) then return true end
  return nil, interrupt_error()
end

-- The options every background process starts with: its own session (a Ctrl-C reaches this
-- process only, which then stops it in order), no terminal, no LD_PRELOAD (sanitiser runtimes
-- are for our core only).
local function background(env, log)
  local all = { LD_PRELOAD = false }
  for k, v in pairs(env or {}) do all[k] = v end
  return { env = all, session = true, stdin = "/dev/null", stdout = log or "/dev/null", stderr = log or "/dev/null" }
end

-- Starts a watchdog in its own session that runs `then_cmd` once this Lua process has exited,
-- however it ends (a SIGKILL included); returns the watchdog's pid.
local function start_guard(then_cmd)
  local guard = string.format("while kill -0 %d 2>/dev/null; do sleep 1; done; %s", process.self_pid(), then_cmd)
  return assert(core().spawn({ "/bin/sh", "-c", guard }, background()))
end

-- Ends a watchdog (its shell and its `sleep`: the whole session's group) and reaps it.
local function stop_guard(pid)
  if not pid then return end
  core().kill(-pid, "KILL")
  core().wait(pid, 5, false)
end

--- Removes `dir` when this Lua process exits, even if it is killed (for scratch folders of a
-- long-running process such as the sandbox; removing it earlier is fine). Returns a handle whose
-- cancel() ends the watchdog (once the folder is removed otherwise).
-- @tparam string dir the folder
-- @treturn table {pid, cancel}
function process.remove_on_exit(dir)
  return process.run_on_exit("rm -rf " .. q(dir))
end

--- Runs the shell command `cmd` when this Lua process exits, even if it is killed (a watchdog in
-- its own session). Returns a handle whose cancel() ends the watchdog without running it.
-- @tparam string cmd the shell command
-- @treturn table {pid, cancel}
function process.run_on_exit(cmd)
  local pid = start_guard(cmd)
  return { pid = pid, cancel = function() stop_guard(pid); pid = nil end }
end

--- Starts `argv` (no shell) in the background in its own session; stdout/stderr go to `log`.
-- `cleanup_dir` (optional) is removed by the watchdog when this Lua process dies. `env`: names
-- to set (false: unset) over this process's environment, which it inherits without LD_PRELOAD.
-- Returns a handle {pid, stop(grace), alive()}; raises when the program cannot be run.
-- @tparam {string,...} argv the program and its arguments (strings)
-- @tparam[opt] table opts {log, cleanup_dir, env}
-- @treturn table the handle
-- @raise when the program cannot be run, or on argv entries that are not strings
function process.spawn(argv, opts)
  opts = opts or {}
  local pid = assert(core().spawn(strings(argv), background(opts.env, opts.log)))
  -- The watchdog: when this Lua process is gone, kill the service's session and remove its folder.
  local handle = { pid = pid, guard_pid = start_guard(string.format(
    "kill -TERM -%d 2>/dev/null; sleep 2; kill -KILL -%d 2>/dev/null; %s", pid, pid,
    opts.cleanup_dir and ("rm -rf " .. q(opts.cleanup_dir)) or "true")) }
  local ended -- {how, code} once reaped

  -- Reaps the process if it ends within `timeout` seconds (nil: no limit); true once it has.
  local function reaped(timeout)
    if ended then return true end
    local how, code = core().wait(pid, timeout, false)
    if how then ended = { how = how, code = code } end
    -- anything but a timeout: it is no child of ours any more (reaped elsewhere)
    if not how and code ~= "timeout" then ended = { how = "unknown" } end
    return ended ~= nil
  end

  function handle.alive() return not reaped(0) end

  --- Stops the process's session group (TERM, then KILL after `grace` seconds, default 10) and
  -- its watchdog; waits for it whether or not an interrupt is pending. Returns {how, code}.
  function handle.stop(grace)
    if not reaped(0) then
      core().kill(-pid, "TERM")
      if not reaped(grace or 10) then
        core().kill(-pid, "KILL")
        reaped(10)
      end
    end
    stop_guard(handle.guard_pid)
    handle.guard_pid = nil
    return ended
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
-- @treturn integer a port in 20000-59999
-- @raise when none is found
function process.free_port()
  local used = ports_in_use()
  for _ = 1, 1000 do
    local p = math.random(20000, 59999)
    if not used[p] then return p end
  end
  error("no free port found")
end

--- Polls `ready()` until it returns true or `timeout` seconds pass.
-- Returns nil, err (code "interrupted") as soon as SIGINT or SIGTERM has arrived.
-- @tparam function ready () -> true when done
-- @tparam number timeout seconds
-- @tparam[opt] string what what is awaited, for the message
-- @return true, or nil, err ("timeout", "interrupted")
function process.wait_until(ready, timeout, what)
  local deadline = process.clock() + timeout
  repeat
    if ready() then return true end
    local ok, err = process.sleep(0.05)
    if not ok then return nil, err end
  until process.clock() > deadline
  return errors.fail("timeout", "timed out after " .. timeout .. " s waiting for " .. (what or "a service"))
end

--- Writes `text` to `path`.
-- @tparam string path the file
-- @tparam string text its content
-- @tparam[opt] string mode chmod mode ("600")
-- @raise when the file cannot be written
function process.write_file(path, text, mode)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  if mode then assert(process.call({ "chmod", mode, "--", path }, { interruptible = false })) end
end

--- Reads a whole file, or nil.
-- @tparam string path the file
-- @treturn ?string its content
function process.read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

return process
