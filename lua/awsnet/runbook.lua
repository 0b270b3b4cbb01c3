--- Runbook step engine: ordered, dependent steps that create or adopt cloud resources, with a state
-- file so that `apply` and `destroy` can be re-run after a failure or a crash at any point.
--
--   local rb = runbook.new{name=, steps=, state_file=, client=, config=, on_event=}
--   rb:plan()     -- what apply would do, step by step, with the API calls; changes nothing
--   rb:apply()    -- creates or adopts each resource in dependency order and waits for it; steps
--                 -- whose needs are met run at once (opts.concurrency: at most so many; 1 = one
--                 -- after another), each waiting while the others go on
--   rb:levels()   -- the graph's levels: the steps that can run together, level by level
--   rb:destroy()  -- deletes, in reverse order, every resource the state file lists as owned
--
-- A step is a table:
--   id       unique name, the key in the state file       account  which account it acts in
--   title    what it does, in words                      needs    ids of steps it depends on
--   enabled  function(config) -> false to skip the step (e.g. RAM when both accounts are one)
--   calls    API calls create makes ("ec2:CreateTransitGateway"), for the plan
--   find(ctx, known)  -> record or nil [, err]: looks the resource up, by `known.id` when the
--                     state has it, else by the tags create puts on it (read-only calls only)
--   create(ctx)       -> record or nil, err
--   wait(ctx, record) -> true or nil, err: until the resource is usable (optional)
--   delete(ctx, record) -> true or nil, err (optional: steps without it own nothing)
--   wait_deleted(ctx, record) -> true or nil, err (optional)
--   tagged   false when find needs other steps' records (not findable on its own)
-- A record is {id=, ...} with plain, non-secret attributes that later steps read as ctx.out[step].
-- `external = true` in a record marks a resource the runbook did not create: never deleted.
--
-- The state file is JSON, replaced atomically every time it changes (written to `<state>.tmp`,
-- fsynced, renamed over it, the folder fsynced: after a crash or a power cut it is the old or
-- the new state, never a mix): before a create call the step is marked pending, and the id is
-- saved as soon as the create call returns, so a crash between the two is recovered by find
-- (create-or-adopt by tag; find checks the resource's own tags, not only the server's filter).
-- Concurrent steps are coroutines of one Lua process: a step gives way only where it waits
-- (`runbook.sleep`, through `ctx:poll`, and while its API calls are on the wire: awsnet.http's
-- cooperative requests), never inside a state write, so the state file is always
-- every step's last saved record and a kill at any point leaves what a sequential run would.
-- apply and destroy hold an exclusive lock on `<state>.lock` from start to end, so two runs on one
-- state file never interleave; a `<state>.tmp` a crash left is removed once the lock is held.
-- Errors: a step's own error, named by step and account (err.step, err.account, err.op), "state"
-- (the state file cannot be read or written), "locked" (another run holds the state file: err.file,
-- err.pid when known), "timeout" (a poll ran out of time), "interrupted" (SIGINT or SIGTERM: the
-- state file has every resource made so far).
-- @module awsnet.runbook
local cjson = require "cjson"
local errors = require "awsnet.errors"
local process = require "awsnet.svc.process"

local runbook = {}

local STATE_VERSION = 1

-- The coroutines of a concurrent apply (weak keys): in them runbook.sleep yields to the others.
local scheduled = setmetatable({}, { __mode = "k" })

--- Seconds since boot, to 10 ms: a clock that no settimeofday moves, for timings and timeouts.
-- @treturn number seconds (os.time() where /proc/uptime is missing)
function runbook.clock()
  local f = io.open("/proc/uptime", "r")
  if not f then return os.time() end
  local t = f:read("n")
  f:close()
  return t
end

--- Sleeps `seconds` (fractions allowed); SIGINT and SIGTERM cut it short (through the C core:
-- a shell's `sleep` would take a terminal's Ctrl-C in our place).
-- @tparam number seconds how long; nothing happens for 0 or less
-- @return true, or nil, err with code "interrupted" and err.signal "SIGINT" or "SIGTERM"
function runbook.sleep(seconds)
  -- inside a concurrent apply: the other steps go on meanwhile
  if scheduled[coroutine.running()] then
    coroutine.yield(seconds)
    local err = process.interrupted()
    if err then return nil, err end
    return true
  end
  if seconds > 0 then return process.sleep(seconds) end
  local err = process.interrupted()
  if err then return nil, err end
  return true
end

-- Error codes that mean the resource is already gone (delete is then done).
local GONE = { "NotFound", "NoSuchEntity", "ResourceNotFoundException", "UnknownResource",
  "InvalidParameterValue.NotFound" }

--- True when an error says the resource does not exist (any service's wording).
-- @param err an error value or message
-- @treturn boolean
function runbook.is_gone(err)
  local code = type(err) == "table" and err.code or tostring(err)
  for _, g in ipairs(GONE) do
    if code:find(g, 1, true) then return true end
  end
  return false
end

-- Copies a record without the keys that hold secrets, so the state file never holds one.
local function public_record(rec)
  local out = {}
  for k, v in pairs(rec) do
    if not errors.is_secret_key(k) and type(v) ~= "function" then out[k] = v end
  end
  return out
end

-- ------------------------------------------------------------------------------------------
-- State file

local function read_state(path, name)
  local f = io.open(path, "r")
  if not f then return { version = STATE_VERSION, runbook = name, resources = {} } end
  local text = f:read("a")
  f:close()
  local ok, state = pcall(cjson.decode, text)
  if not ok or type(state) ~= "table" or type(state.resources) ~= "table" then
    return errors.fail("state", "state file " .. path .. " is not a runbook state file")
  end
  if state.runbook ~= name then
    return errors.fail("state", string.format("state file %s belongs to runbook '%s', not '%s'",
      path, tostring(state.runbook), name))
  end
  return state
end

-- The C core's file primitives (write_atomic, lock), loaded on first use.
local function core_file() return require("awsnet.core").file end

local function write_state(path, state)
  local ok, err = core_file().write_atomic(path, cjson.encode(state) .. "\n", tonumber("600", 8))
  if not ok then return errors.fail("state", "cannot write state file: " .. tostring(err)) end
  return true
end

-- Takes the lock of the state file at `path`; returns the lock handle, or nil, err ("locked"
-- naming the file and the other run's pid when its lock file says it, "state" otherwise). Once
-- held, a temporary file a crashed writer left is stale and removed.
local function lock_state(path)
  local lock_path = path .. ".lock"
  local lock, msg, code = core_file().lock(lock_path)
  if not lock then
    if code ~= "locked" then return errors.fail("state", "cannot lock state file: " .. tostring(msg)) end
    local f = io.open(lock_path, "r")
    local pid = f and f:read("n")
    if f then f:close() end
    pid = math.type(pid) == "integer" and pid or nil
    return nil, errors.new("locked", string.format("state file %s is in use by another run%s (lock %s)", path,
      pid and (" (pid " .. pid .. ")") or "", lock_path), { file = path, lock = lock_path, pid = pid })
  end
  os.remove(path .. ".tmp")
  return lock
end

-- ------------------------------------------------------------------------------------------
-- Step order

-- Orders steps so that each comes after its needs, keeping the given order otherwise.
local function order_steps(steps)
  local by_id = {}
  for i, s in ipairs(steps) do
    assert(type(s.id) == "string", "step " .. i .. " has no id")
    assert(not by_id[s.id], "duplicate step id " .. s.id)
    by_id[s.id] = s
  end
  for _, s in ipairs(steps) do
    for _, n in ipairs(s.needs or {}) do
      assert(by_id[n], string.format("step %s needs unknown step %s", s.id, n))
    end
  end
  local done, ordered = {}, {}
  while #ordered < #steps do
    local progressed = false
    for _, s in ipairs(steps) do
      if not done[s.id] then
        local ready = true
        for _, n in ipairs(s.needs or {}) do
          if not done[n] then ready = false; break end
        end
        if ready then
          done[s.id] = true
          ordered[#ordered + 1] = s
          progressed = true
          break
        end
      end
    end
    assert(progressed, "steps have a dependency cycle")
  end
  return ordered
end

-- ------------------------------------------------------------------------------------------
-- Step context: what a step function sees

local Context = {}
Context.__index = Context

--- The API client for `service` in this step's account (or in `account`).
-- @within Context
-- @tparam string service "ec2", "rds", ...
-- @tparam[opt] string account another account's name ("A", "B")
-- @return the client the runbook's `client` function gives
function Context:client(service, account)
  return self.runbook.client(account or self.account, service)
end

--- Reports progress of this step (shown by the command line, or as a JSON event).
-- @within Context
-- @tparam string message what is happening
function Context:progress(message)
  self.runbook:emit{ event = "progress", step = self.step.id, account = self.account, message = message,
    elapsed = runbook.clock() - self.started }
end

--- Calls `check()` until it returns true; `what` says what is awaited. `check` may return
-- nil, err to stop. opts: timeout (seconds, default config.timeout or 900), interval.
-- @within Context
-- @tparam string what what is awaited, in words
-- @tparam function check () -> true when done, nil to go on, or nil, err to stop
-- @tparam[opt] table opts {timeout, interval (default config.poll_interval or 5)}
-- @return true, or nil, err (check's, "timeout" or "interrupted")
function Context:poll(what, check, opts)
  opts = opts or {}
  local cfg = self.runbook.config
  local timeout = opts.timeout or cfg.timeout or 900
  local interval = opts.interval or cfg.poll_interval or 5
  local started = runbook.clock()
  local last_report = -math.huge
  while true do
    local done, err = check()
    if done then return true end
    if err then return nil, err end
    local now = runbook.clock()
    if now - started > timeout then
      return errors.fail("timeout", string.format("timed out after %g s waiting for %s", timeout, what))
    end
    if now - last_report >= (cfg.progress_every or 5) then
      last_report = now
      self.runbook:emit{ event = "waiting", step = self.step.id, account = self.account, what = what,
        elapsed = now - started }
    end
    local slept, serr = runbook.sleep(interval)
    if not slept then return nil, serr end
  end
end

-- ------------------------------------------------------------------------------------------
-- The runbook

local Runbook = {}
Runbook.__index = Runbook

--- Creates a runbook. opts: name, steps, state_file, client(account, service) -> API client,
-- config (handed to steps as ctx.config), accounts (name -> label shown in messages, e.g. the
-- account id), on_event(event) for progress, concurrency (steps of apply at once: 0, the
-- default, as many as are ready; 1 one after another; else config.concurrency).
-- @tparam table opts {name, steps, state_file, client, config, accounts, on_event, concurrency}
-- @return the runbook (`rb:plan`, `rb:apply`, `rb:destroy`, ...)
-- @raise when name, steps, state_file or client is missing
function runbook.new(opts)
  assert(type(opts) == "table", "runbook.new: options table expected")
  assert(type(opts.name) == "string", "runbook.new: name expected")
  assert(type(opts.steps) == "table", "runbook.new: steps expected")
  assert(type(opts.state_file) == "string", "runbook.new: state_file expected")
  assert(type(opts.client) == "function", "runbook.new: client function expected")
  local self = setmetatable({
    name = opts.name,
    steps = order_steps(opts.steps),
    state_file = opts.state_file,
    client = opts.client,
    config = opts.config or {},
    concurrency = opts.concurrency or (opts.config or {}).concurrency or 0,
    accounts = opts.accounts or {},
    on_event = opts.on_event or function() end,
  }, Runbook)
  return self
end

--- Sends an event (tagged with the runbook's name) to on_event.
-- @within Runbook
-- @tparam table event {event = "step" | "done" | "waiting" | "progress" | ..., step, account, ...}
function Runbook:emit(event)
  event.runbook = self.name
  self.on_event(event)
end

--- The context a step's functions get (`Context` methods, ctx.config, ctx.out).
-- @within Runbook
-- @tparam table step the step
-- @tparam table out the records of the steps done so far, by step id
-- @return the context
function Runbook:context(step, out)
  return setmetatable({ runbook = self, step = step, account = step.account, config = self.config,
    out = out, started = runbook.clock() }, Context)
end

--- An error that names the step, the account and the original code.
-- @within Runbook
-- @tparam table step the step
-- @param err the step's error (an error value, or anything else as its message)
-- @treturn table a new error with step, account, account_id and op naming where
function Runbook:step_error(step, err)
  if type(err) ~= "table" then err = errors.new("error", tostring(err)) end
  local label = self.accounts[step.account]
  local where = string.format("step %s (account %s%s)", step.id, tostring(step.account),
    label and (" " .. label) or "")
  local fields = {}
  for k, v in pairs(err) do fields[k] = v end
  fields.step, fields.account, fields.account_id = step.id, step.account, label
  fields.op = err.op and (where .. ": " .. err.op) or where
  if err.code == "interrupted" then
    -- the state file is saved after every change: the next apply or destroy goes on from it
    process.interrupt_note(string.format("stopped at step %s; the state file %s lists every resource made so far: " ..
      "run apply or destroy again", step.id, self.state_file))
  end
  return errors.new(err.code or "error", err.message, fields)
end

--- False when the step's `enabled(config)` says to skip it.
-- @within Runbook
-- @tparam table step the step
-- @treturn boolean
function Runbook:enabled(step)
  return step.enabled == nil or step.enabled(self.config) ~= false
end

--- The state as last saved: {version, runbook, resources = {[step id] = record}}.
-- @within Runbook
-- @treturn table the state, or nil, err ("state": unreadable, or another runbook's)
function Runbook:state()
  return read_state(self.state_file, self.name)
end

--- Takes the exclusive lock of the state file (`<state>.lock`, flock): apply and destroy hold it
-- from start to end. Released by `close`, by leaving a `<close>` variable's scope and by garbage
-- collection; a process that dies releases it too.
-- @within Runbook
-- @return the lock handle, or nil, err ("locked": another run holds it, err.file and err.pid
-- when its lock file names it; "state": the lock file cannot be made)
function Runbook:lock()
  return lock_state(self.state_file)
end

-- Calls a step function, turning a raised error into a returned one.
local function protected(fn, ...)
  local ok, a, b = pcall(fn, ...)
  if not ok then
    -- an interrupt raised deep down (an assert on a command) keeps its code, so the run stops
    if errors.is(a) and a.code == "interrupted" then return nil, a end
    return nil, errors.new("error", tostring(a))
  end
  return a, b
end

-- Looks up the current resource of a step: by the state's record, else by its tags.
local function lookup(step, ctx, known)
  if not step.find then return known end
  local rec, err = protected(step.find, ctx, known and known.id and known or nil)
  if err then return nil, err end
  if not rec and known and known.id and not known.pending then
    -- the saved id is gone (deleted behind our back): look for a tagged one before recreating
    rec, err = protected(step.find, ctx, nil)
    if err then return nil, err end
  end
  return rec
end

--- What apply would do: a list of {step, account, title, action = "create"|"adopt"|"keep"|"skip",
-- id, calls}. Read-only calls only. Returns the list, or nil, err.
-- @within Runbook
-- @treturn table the actions, or nil, err (a find's error, "state")
function Runbook:plan()
  local state, err = self:state()
  if not state then return nil, err end
  local actions, out, pending = {}, {}, {}
  for _, step in ipairs(self.steps) do
    local a = { step = step.id, account = step.account, title = step.title, calls = {} }
    if not self:enabled(step) then
      a.action = "skip"
    else
      local blocked = false
      for _, n in ipairs(step.needs or {}) do if pending[n] then blocked = true end end
      local rec
      if not blocked then
        rec, err = lookup(step, self:context(step, out), state.resources[step.id])
        if err then return nil, self:step_error(step, err) end
      end
      if rec then
        out[step.id] = rec
        a.id = rec.id
        a.action = (state.resources[step.id] and state.resources[step.id].id == rec.id) and "keep" or "adopt"
      else
        pending[step.id] = true
        a.action = "create"
        a.calls = step.calls or {}
      end
    end
    actions[#actions + 1] = a
  end
  return actions
end

--- Saves one step's record (or removes it with rec == nil) and writes the state file.
-- Keys holding secrets and functions are not saved.
-- @within Runbook
-- @tparam table state the state
-- @tparam table step the step
-- @tparam[opt] table rec the record
-- @return true, or nil, err ("state")
function Runbook:save(state, step, rec)
  state.resources[step.id] = rec and public_record(rec) or nil
  if rec then state.resources[step.id].account = step.account end
  return write_state(self.state_file, state)
end

--- Runs one step of apply; returns the action taken, or nil, err.
-- @within Runbook
-- @tparam table state the state, saved as the step goes
-- @tparam table step the step
-- @tparam table out the records so far; the step's is added
-- @treturn string "keep", "adopt" or "create", or nil, err
-- @treturn table the record
function Runbook:apply_step(state, step, out)
  local ctx = self:context(step, out)
  local rec, err = lookup(step, ctx, state.resources[step.id])
  if err then return nil, err end
  local action
  if rec then
    local saved = state.resources[step.id]
    action = (saved and saved.id == rec.id and not saved.pending) and "keep" or "adopt"
    if action == "adopt" then
      local ok, serr = self:save(state, step, rec)
      if not ok then return nil, serr end
    end
  else
    action = "create"
    self:emit{ event = "step", step = step.id, account = step.account, title = step.title, action = "create" }
    local ok, serr = self:save(state, step, { pending = true })
    if not ok then return nil, serr end
    rec, err = protected(step.create, ctx)
    if not rec then
      -- a create whose answer was lost and that was retried fails as a duplicate: the first
      -- one is there, with its tags
      rec = step.find and protected(step.find, ctx, nil)
      if not rec then return nil, err end
      action = "adopt"
    end
    ok, serr = self:save(state, step, rec)
    if not ok then return nil, serr end
  end
  out[step.id] = rec
  if step.wait then
    local ok, werr = protected(step.wait, ctx, rec)
    if not ok then return nil, werr end
    -- waiting may have learnt more of the record (an endpoint once the database is up)
    ok, werr = self:save(state, step, rec)
    if not ok then return nil, werr end
  end
  return action, rec
end

--- Creates or adopts every enabled step's resource in dependency order, waiting for each.
-- Returns {created, adopted, kept, changed, steps = {{step, account, action, id, seconds}}} or
-- nil, err (err names the step and the account; what was done so far is in the state file).
-- @within Runbook
-- @treturn table the summary, or nil, err
function Runbook:apply()
  local lock <close>, lerr = self:lock()
  if not lock then return nil, lerr end
  return self:apply_locked()
end

--- The dependency graph's levels: level 1 holds the enabled steps that need nothing (or only
-- disabled steps), level n those whose needs are all in levels below n. A concurrent apply runs
-- each step as soon as its needs are done, so steps of one level run together at the latest.
-- @within Runbook
-- @treturn table an array of levels, each an array of steps (in the runbook's order)
function Runbook:levels()
  local level, levels = {}, {}
  for _, step in ipairs(self.steps) do   -- ordered: every need comes first
    if self:enabled(step) then
      local l = 1
      for _, n in ipairs(step.needs or {}) do
        if level[n] then l = math.max(l, level[n] + 1) end
      end
      level[step.id] = l
      levels[l] = levels[l] or {}
      table.insert(levels[l], step)
    end
  end
  return levels
end

-- Records a finished step in the summary and tells it.
local function step_done(self, summary, step, action, rec, seconds)
  local key = action == "create" and "created" or action == "adopt" and "adopted" or "kept"
  summary[key] = summary[key] + 1
  summary.steps[#summary.steps + 1] = { step = step.id, account = step.account, action = action,
    id = rec.id, seconds = seconds }
  self:emit{ event = "done", step = step.id, account = step.account, title = step.title,
    action = action, id = rec.id, seconds = seconds }
end

-- Runs the enabled steps as coroutines, each started once its needs are done (at most
-- `self.concurrency` at once when it is above 0); a step that waits yields its wait, and the
-- scheduler sleeps until the earliest one is due. The first failure stops the run: steps still
-- waiting are left where they are (their state is saved, as after a kill).
local function run_graph(self, state, summary, out)
  local pending, done, running = {}, {}, {}
  for _, step in ipairs(self.steps) do
    if self:enabled(step) then pending[#pending + 1] = step else done[step.id] = true end
  end
  local function ready(step)
    for _, n in ipairs(step.needs or {}) do if not done[n] then return false end end
    return true
  end
  local limit = self.concurrency > 0 and self.concurrency or math.huge
  while #pending > 0 or #running > 0 do
    local i = 1
    while i <= #pending and #running < limit do
      local step = pending[i]
      if ready(step) then
        local stop = process.interrupted() -- SIGINT or SIGTERM: no new step
        if stop then return nil, self:step_error(step, stop) end
        table.remove(pending, i)
        local co = coroutine.create(function() return self:apply_step(state, step, out) end)
        scheduled[co] = true
        require("awsnet.http").cooperate(co)   -- its API calls give way while on the wire
        running[#running + 1] = { co = co, step = step, wake = 0, t0 = runbook.clock() }
      else
        i = i + 1
      end
    end
    if #running == 0 then
      return nil, self:step_error(pending[1], errors.new("error", "steps wait on each other"))
    end
    local now, next_wake = runbook.clock(), math.huge
    local k = 1
    while k <= #running do
      local r = running[k]
      if r.wake <= now then
        local ok, a, b = coroutine.resume(r.co)
        -- steps' own errors come back as values (protected): what is raised here is the caller's
        -- (an on_event that fails), raised on as a sequential apply would
        if not ok then error(a, 0) end
        if coroutine.status(r.co) == "dead" then
          table.remove(running, k)
          if not a then return nil, self:step_error(r.step, b) end
          done[r.step.id] = true
          step_done(self, summary, r.step, a, b, runbook.clock() - r.t0)
          k = #running + 1   -- a step is done: start what it unblocked first
        else
          r.wake = runbook.clock() + (tonumber(a) or 0)
          next_wake = math.min(next_wake, r.wake)
          k = k + 1
        end
      else
        next_wake = math.min(next_wake, r.wake)
        k = k + 1
      end
    end
    local more = false
    for _, step in ipairs(pending) do if ready(step) then more = true; break end end
    if not (more and #running < limit) and next_wake > runbook.clock() and next_wake < math.huge then
      local slept, serr = process.sleep(math.max(0, next_wake - runbook.clock()))
      if not slept then return nil, self:step_error(running[1].step, serr) end
    end
  end
  return true
end

--- apply's work, with the lock held.
-- @within Runbook
-- @treturn table the summary, or nil, err
function Runbook:apply_locked()
  local state, err = self:state()
  if not state then return nil, err end
  local summary = { created = 0, adopted = 0, kept = 0, steps = {} }
  local out = {}
  local started = runbook.clock()
  if self.concurrency ~= 1 then
    local ok, gerr = run_graph(self, state, summary, out)
    if not ok then return nil, gerr end
  else
    for _, step in ipairs(self.steps) do
      if self:enabled(step) then
        local stop = process.interrupted() -- SIGINT or SIGTERM: no new step
        if stop then return nil, self:step_error(step, stop) end
        local t0 = runbook.clock()
        local action, rec = self:apply_step(state, step, out)
        if not action then return nil, self:step_error(step, rec) end
        step_done(self, summary, step, action, rec, runbook.clock() - t0)
      end
    end
  end
  summary.changed = summary.created + summary.adopted > 0
  summary.seconds = runbook.clock() - started
  summary.outputs = out
  return summary
end

--- The records of the last apply, by step id, read from the state file (for verify and reports).
-- @within Runbook
-- @treturn table records by step id, or nil, err ("state")
function Runbook:outputs()
  local state, err = self:state()
  if not state then return nil, err end
  return state.resources
end

--- Resources of this runbook still there, found by their tags (what destroy should have left:
-- none). Steps with `tagged = false` cannot be found on their own and are not asked (a route goes
-- with its route table). Returns a list of {step, account, id}, or nil, err.
-- @within Runbook
-- @treturn table the resources found, or nil, err (a find's error)
function Runbook:leftovers()
  local found = {}
  for _, step in ipairs(self.steps) do
    if self:enabled(step) and step.find and step.delete and step.tagged ~= false then
      local rec, err = protected(step.find, self:context(step, {}), nil)
      if err then return nil, self:step_error(step, err) end
      if rec and not rec.external then
        found[#found + 1] = { step = step.id, account = step.account, id = rec.id }
      end
    end
  end
  return found
end

--- Deletes one resource of `step` and waits until it is gone. A delete that fails although the
-- resource is gone or going (its first answer was lost and it was retried) counts as done.
-- @within Runbook
-- @tparam table step the step
-- @param ctx the step's context
-- @tparam table rec the record of the resource
-- @return true, or nil, err
function Runbook:delete_one(step, ctx, rec)
  self:emit{ event = "step", step = step.id, account = step.account, title = step.title, action = "delete", id = rec.id }
  local ok, err = protected(step.delete, ctx, rec)
  if not ok and not runbook.is_gone(err) then
    local still = step.find and protected(step.find, ctx, rec)
    if still then return nil, err end
  end
  if step.wait_deleted then return protected(step.wait_deleted, ctx, rec) end
  return true
end

--- Deletes every owned resource the state file lists, in reverse dependency order, waiting for
-- each deletion; resources already gone count as deleted. A tagged step is then looked up again
-- by its tags, so that a duplicate a retried create left behind goes too. Safe to re-run.
-- Returns {deleted, steps = {...}} or nil, err.
-- @within Runbook
-- @treturn table the summary, or nil, err (named by step and account)
function Runbook:destroy()
  local lock <close>, lerr = self:lock()
  if not lock then return nil, lerr end
  return self:destroy_locked()
end

--- destroy's work, with the lock held.
-- @within Runbook
-- @treturn table the summary, or nil, err
function Runbook:destroy_locked()
  local state, err = self:state()
  if not state then return nil, err end
  local out = {}
  for id, rec in pairs(state.resources) do out[id] = rec end
  local summary = { deleted = 0, steps = {} }
  local started = runbook.clock()
  for i = #self.steps, 1, -1 do
    local step = self.steps[i]
    local stop = process.interrupted() -- SIGINT or SIGTERM: no new step
    if stop then return nil, self:step_error(step, stop) end
    local rec = state.resources[step.id]
    if rec and step.delete then
      local ctx = self:context(step, out)
      local seen = {}
      if rec.pending or rec.external then rec = nil end
      if rec == nil and step.find and state.resources[step.id].pending then
        -- created or not before a crash: the tags tell
        local ferr
        rec, ferr = protected(step.find, ctx, nil)
        if ferr then return nil, self:step_error(step, ferr) end
      end
      while rec and rec.id and not rec.external and not seen[rec.id] do
        seen[rec.id] = true
        local t0 = runbook.clock()
        local ok, derr = self:delete_one(step, ctx, rec)
        if not ok then return nil, self:step_error(step, derr) end
        local seconds = runbook.clock() - t0
        summary.deleted = summary.deleted + 1
        summary.steps[#summary.steps + 1] = { step = step.id, account = step.account, action = "delete", id = rec.id,
          seconds = seconds }
        self:emit{ event = "done", step = step.id, account = step.account, title = step.title, action = "delete",
          id = rec.id, seconds = seconds }
        rec = nil
        if step.find and step.tagged ~= false then
          local ferr
          rec, ferr = protected(step.find, ctx, nil)
          if ferr then return nil, self:step_error(step, ferr) end
        end
      end
    end
    if state.resources[step.id] then
      local ok, serr = self:save(state, step, nil)
      if not ok then return nil, serr end
    end
  end
  summary.seconds = runbook.clock() - started
  if next(state.resources) == nil then os.remove(self.state_file) end
  return summary
end

return runbook
