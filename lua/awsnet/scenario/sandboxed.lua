--- The scenario against a local sandbox: starts `awsnet sandbox` as a child process (with its
-- MariaDB and DNS), and gives the scenario config that points both accounts at it.
-- Used by `awsnet demo`, the reliability specs and `make soak`.
--
--   local sb = assert(sandboxed.start{faults = {throttle = 0.1}, seed = 7})
--   local cfg = sb:config{name = "demo"}      -- a user config for scenario.config
--   ... sb:stop()                             -- also done by a watchdog if this process dies
local errors = require "awsnet.errors"
local process = require "awsnet.svc.process"

local sandboxed = {}

sandboxed.ACCOUNTS = { "111111111111", "222222222222" }

local Handle = {}
Handle.__index = Handle

-- True once something listens on TCP `port` on loopback.
local function listening(port)
  local hex = string.format(":%04X ", port)
  for _, f in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    local h = io.open(f, "r")
    if h then
      for line in h:lines() do
        -- state 0A is LISTEN
        if line:find(hex, 1, true) and line:match("^%s*%d+: %x+:%x+ %x+:%x+ 0A") then
          h:close()
          return true
        end
      end
      h:close()
    end
  end
  return false
end

-- The command that runs this awsnet's command line with the current module paths.
local function awsnet_command(args)
  local argv = { "lua5.4", "-e", string.format("package.path=%q; package.cpath=%q", package.path, package.cpath),
    "-e", "require('awsnet.cli').main(arg)", "--" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return argv
end
sandboxed.awsnet_command = awsnet_command

--- Starts the sandbox. opts: faults {throttle=, error5xx=, reset=} (rates 0..1), seed,
-- transition (seconds a resource stays pending, default 0.2), log (file for its output).
function sandboxed.start(opts)
  opts = opts or {}
  local dir = process.tempdir("awsnet-sandboxed")
  local port = process.free_port()
  local args = { "sandbox", "--port", tostring(port), "--accounts", table.concat(sandboxed.ACCOUNTS, ","),
    "--transition", tostring(opts.transition or 0.2), "--state-dir", dir .. "/world" }
  if opts.seed then args[#args + 1] = "--seed"; args[#args + 1] = tostring(opts.seed) end
  if opts.faults then
    local f = {}
    for k, v in pairs(opts.faults) do f[#f + 1] = k .. "=" .. v end
    table.sort(f)
    args[#args + 1] = "--faults"
    args[#args + 1] = table.concat(f, ",")
  end
  local log = opts.log or (dir .. "/sandbox.log")
  local proc = process.spawn(awsnet_command(args), { log = log, cleanup_dir = dir })
  local self = setmetatable({ dir = dir, port = port, proc = proc, log = log,
    endpoint = "http://127.0.0.1:" .. port }, Handle)
  local ok, err = process.wait_until(function() return listening(port) or not proc.alive() end, 30, "the sandbox")
  if not ok or not proc.alive() then
    local out = process.read_file(log) or ""
    self:stop()
    return errors.fail("sandbox", "the sandbox did not start: " .. tostring(err or out:sub(-400)))
  end
  self.password_file = dir .. "/db-password"
  process.write_file(self.password_file, "pw-" .. math.random(10000000, 99999999) .. "\n", "600")
  return self
end

--- A scenario config for this sandbox; `overrides` are merged over it (name, state_file, ...).
function Handle:config(overrides)
  local cfg = {
    name = "awsnet-demo", region = "us-east-1", state_file = self.dir .. "/state.json",
    timeout = 60, poll_interval = 0.05, progress_every = 1,
    accounts = {
      A = { endpoint = self.endpoint, credentials = { access_key_id = sandboxed.ACCOUNTS[1], secret_access_key = "test" } },
      B = { endpoint = self.endpoint, credentials = { access_key_id = sandboxed.ACCOUNTS[2], secret_access_key = "test" } },
    },
    database = { password_file = self.password_file, password_env = false },
    sandbox = { endpoint = self.endpoint },
  }
  for k, v in pairs(overrides or {}) do cfg[k] = v end
  return cfg
end

function Handle:stop()
  if self.proc then self.proc.stop(5); self.proc = nil end
  if self.dir then os.execute("rm -rf " .. process.quote(self.dir)); self.dir = nil end
end

Handle.__close = Handle.stop

return sandboxed
