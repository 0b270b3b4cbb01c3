--- The scenario against a local sandbox: starts `awsnet sandbox` as a child process (with its
-- MariaDB and DNS), and gives the scenario config that points both accounts at it.
-- Used by `awsnet demo`, the reliability specs and `make soak`.
--
--   local sb = assert(sandboxed.start{faults = {throttle = 0.1}, seed = 7})
--   local cfg = sb:config{name = "demo"}      -- a user config for scenario.config
--   ... sb:stop()                             -- also done by a watchdog if this process dies
-- @module awsnet.scenario.sandboxed
local cjson = require "cjson"
local process = require "awsnet.svc.process"

local sandboxed = {}

--- The sandbox's two account ids, A's and B's.
sandboxed.ACCOUNTS = { "111111111111", "222222222222" }

local Handle = {}
Handle.__index = Handle

-- The command that runs this awsnet's command line with the current module paths.
local function awsnet_command(args)
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = string.format("%q", a) end
  return { "lua5.4", "-e", string.format("package.path=%q; package.cpath=%q; require('awsnet.cli').main({%s})",
    package.path, package.cpath, table.concat(quoted, ",")) }
end
--- The argv that runs this awsnet's command line (`awsnet <args>`) with the current module paths.
-- @function awsnet_command
-- @tparam {string,...} args the command line's arguments
-- @treturn {string,...} argv for awsnet.svc.process.spawn
sandboxed.awsnet_command = awsnet_command

--- Starts the sandbox (awsnet.sandbox.spawn). opts: faults {throttle=, error5xx=, reset=}
-- (rates 0..1), seed, transition (seconds a resource stays pending, default 0.2), log,
-- warm_databases (MariaDB servers started ahead: awsnet.sandbox.rds.warm), twin ("auto", "on" or
-- "off", the default: the sandbox's network twin).
-- @tparam[opt] table opts {faults, seed, transition, log, warm_databases, twin}
-- @return the handle (`sb:config`, `sb:resources`, `sb:stop`; sb.endpoint, sb.dns, sb.log), or
-- nil, err (the sandbox did not start: "start")
function sandboxed.start(opts)
  opts = opts or {}
  local dir = process.tempdir("awsnet-sandboxed")
  local sb, err = require("awsnet.sandbox").spawn{ accounts = sandboxed.ACCOUNTS, seed = opts.seed,
    transition_s = opts.transition or 0.2, faults = opts.faults, log = opts.log or (dir .. "/sandbox.log"),
    state_dir = dir .. "/world", warm_databases = opts.warm_databases, twin = opts.twin }
  if not sb then
    process.remove(dir)
    return nil, err
  end
  local self = setmetatable({ dir = dir, sandbox = sb, endpoint = sb.endpoint, log = sb.log }, Handle)
  -- the network the sandbox runs: its twin's prefix, or nil (connections gated by the evaluator)
  self.twin = (process.read_file(sb.log) or ""):match("network twin (aw%w+)")
  -- the sandbox says where its DNS server for the database endpoints listens
  local host, port = (process.read_file(sb.log) or ""):match("DNS for %S+ on ([%d.]+):(%d+)")
  if host then self.dns = { server = host, port = math.tointeger(tonumber(port)) } end
  self.password_file = dir .. "/db-password"
  process.write_file(self.password_file, "pw-" .. math.random(10000000, 99999999) .. "\n", "600")
  return self
end

--- A scenario config for this sandbox; `overrides` are merged over it (name, state_file, ...).
-- @within Handle
-- @tparam[opt] table overrides top-level keys to set
-- @treturn table a user config for scenario.config
function Handle:config(overrides)
  local cfg = {
    -- the article's region (the sandbox serves every region of the aws partition); the AZ ids of
    -- the defaults (az1, az2) are looked up there like on AWS
    name = "awsnet-demo", region = "ap-northeast-1", state_file = self.dir .. "/state.json",
    timeout = 60, poll_interval = 0.05, progress_every = 1,
    accounts = {
      A = { endpoint = self.endpoint, credentials = { access_key_id = sandboxed.ACCOUNTS[1], secret_access_key = "test" } },
      B = { endpoint = self.endpoint, credentials = { access_key_id = sandboxed.ACCOUNTS[2], secret_access_key = "test" } },
    },
    database = { password_file = self.password_file, password_env = false },
    sandbox = { endpoint = self.endpoint, twin = self.twin },
    resolver = self.dns and { server = self.dns.server, port = self.dns.port,
      label = string.format("the sandbox's resolver %s:%d", self.dns.server, self.dns.port) },
  }
  for k, v in pairs(overrides or {}) do cfg[k] = v end
  return cfg
end

local ENDED = { deleted = true, terminated = true, rejected = true, failed = true, DELETED = true }

-- True while a saved sandbox object is a live resource (a RAM invitation lives with its share).
-- `bucket` holds the kinds of the object's region.
local function live(bucket, obj, now)
  local state = obj.state
  if obj.next_state and now >= (obj.ready_at or 0) then state = obj.next_state end
  if ENDED[state] or ENDED[obj.status] then return false end
  if obj.share then
    local share = (bucket.ram_share or {})[obj.share]
    return share ~= nil and live(bucket, share, now)
  end
  return true
end

--- What the sandbox holds right now: a set of "kind id" strings for every resource that is not
-- deleted (read from the world the sandbox saves after each request).
-- @within Handle
-- @treturn table set of "kind id" strings
function Handle:resources()
  local text = process.read_file(self.dir .. "/world/sandbox-state.json")
  local held = {}
  if not text then return held end
  local world = cjson.decode(text)
  -- the global kinds (IAM roles) in `res`, every other kind per region in `regions`
  local buckets = { world.res or {} }
  for _, bucket in pairs(world.regions or {}) do buckets[#buckets + 1] = bucket end
  local now = os.time()
  for _, bucket in ipairs(buckets) do
    for kind, objects in pairs(bucket) do
      for id, obj in pairs(objects) do
        if live(bucket, obj, now) then held[kind .. " " .. tostring(id)] = true end
      end
    end
  end
  return held
end

--- Stops the sandbox and removes its folder; harmless twice; also on `__close`.
-- @within Handle
function Handle:stop()
  if self.sandbox then self.sandbox.stop(); self.sandbox = nil end
  -- the folder holds the database password and the sandbox's world: it goes, interrupted or not
  if self.dir then process.remove(self.dir); self.dir = nil end
  if process.interrupted() then
    process.interrupt_note("the local sandbox, its databases and DNS server are stopped and their folders removed")
  end
end

Handle.__close = Handle.stop

return sandboxed
