-- The step engine on its own: order, plan, create-or-adopt, the state file, destroy, errors.
-- The steps here act on a table standing for a cloud account, so every engine path (crash between
-- create and save, resource deleted behind the runbook's back, external resources) can be forced.
-- The engine against the sandbox's AWS APIs is tested in scenario_spec.lua.
local runbook = require "awsnet.runbook"
local cjson = require "cjson"

local function tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function read_json(path)
  local f = assert(io.open(path))
  local t = cjson.decode(f:read("a"))
  f:close()
  return t
end

-- A cloud: resources by id, each with the tag its creator put on it. calls logs every call made.
local function new_cloud()
  return { resources = {}, next = 0, calls = {} }
end

-- A step creating one tagged resource of `kind` in `cloud`; `after` names its dependency.
local function resource_step(cloud, id, account, needs, hooks)
  hooks = hooks or {}
  return {
    id = id, account = account, needs = needs, title = "make " .. id,
    calls = { "cloud:Create" .. id },
    find = function(_, known)
      cloud.calls[#cloud.calls + 1] = "find " .. id
      if cloud.unreachable then error("the process is dying") end
      for rid, r in pairs(cloud.resources) do
        if (known and rid == known.id) or (not known and r.tag == id) then
          return { id = rid, state = r.state }
        end
      end
      return nil
    end,
    create = function(ctx)
      cloud.calls[#cloud.calls + 1] = "create " .. id
      for _, n in ipairs(needs or {}) do assert(ctx.out[n] and ctx.out[n].id, id .. " needs " .. n) end
      cloud.next = cloud.next + 1
      local rid = id .. "-" .. cloud.next
      cloud.resources[rid] = { tag = id, state = "pending" }
      if hooks.after_create then hooks.after_create(rid) end
      return { id = rid, password = "s3cret-never-saved" }
    end,
    wait = function(ctx, rec)
      local polls = 0
      return ctx:poll(id .. " available", function()
        polls = polls + 1
        if polls >= 2 then cloud.resources[rec.id].state = "available" end
        return cloud.resources[rec.id].state == "available"
      end, { interval = 0 })
    end,
    delete = function(_, rec)
      cloud.calls[#cloud.calls + 1] = "delete " .. id
      if hooks.delete_error then return nil, hooks.delete_error end
      if not cloud.resources[rec.id] then return nil, { code = "Invalid" .. id .. "ID.NotFound", message = "gone" } end
      cloud.resources[rec.id] = nil
      return true
    end,
  }
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

describe("runbook engine", function()
  local cloud, state_file, events

  local function make(steps, opts)
    opts = opts or {}
    events = {}
    return runbook.new{
      name = "test", steps = steps, state_file = state_file,
      client = function() error("no client in these tests") end,
      accounts = { A = "111111111111", B = "222222222222" },
      config = opts.config or { progress_every = 0 },
      on_event = function(e) events[#events + 1] = e end,
    }
  end

  -- A crash right after the cloud made the resource: nothing the process does afterwards works.
  local function crash() cloud.unreachable = true; error("killed") end

  local function chain(hooks)
    return {
      resource_step(cloud, "vpc", "A", nil, hooks and hooks.vpc),
      resource_step(cloud, "db", "B", { "net" }, hooks and hooks.db),
      resource_step(cloud, "net", "B", { "vpc" }, hooks and hooks.net),
    }
  end

  before_each(function()
    cloud = new_cloud()
    state_file = tmpname()
  end)
  after_each(function() os.remove(state_file) end)

  it("orders steps after what they need and refuses cycles and unknown needs", function()
    local rb = make(chain())
    local ids = {}
    for i, s in ipairs(rb.steps) do ids[i] = s.id end
    assert.same({ "vpc", "net", "db" }, ids)
    assert.has_error(function()
      make({ { id = "a", account = "A", needs = { "b" } }, { id = "b", account = "A", needs = { "a" } } })
    end, "steps have a dependency cycle")
    assert.has_error(function() make({ { id = "a", account = "A", needs = { "zz" } } }) end)
    assert.has_error(function() runbook.new{ name = "x" } end)
  end)

  it("plans without changing anything, listing the calls per step", function()
    local plan = assert(make(chain()):plan())
    assert.same({ "create", "create", "create" }, { plan[1].action, plan[2].action, plan[3].action })
    assert.same({ "cloud:Createnet" }, plan[2].calls)
    assert.equals("B", plan[2].account)
    assert.equals(0, count(cloud.resources))
    assert.is_nil(io.open(state_file))
    -- only the first step can be looked up: the others depend on something not there yet
    assert.same({ "find vpc" }, cloud.calls)
  end)

  it("applies in order, waits, and a second apply changes nothing", function()
    local rb = make(chain())
    local s = assert(rb:apply())
    assert.equals(3, s.created)
    assert.is_true(s.changed)
    assert.equals(3, count(cloud.resources))
    for _, r in pairs(cloud.resources) do assert.equals("available", r.state) end
    assert.same({ "vpc", "net", "db" }, { s.steps[1].step, s.steps[2].step, s.steps[3].step })
    local waiting = 0
    for _, e in ipairs(events) do if e.event == "waiting" then waiting = waiting + 1 end end
    assert.is_true(waiting >= 3)

    local again = assert(make(chain()):apply())
    assert.is_false(again.changed)
    assert.same({ created = 0, adopted = 0, kept = 3 }, { created = again.created, adopted = again.adopted, kept = again.kept })
    assert.equals(3, count(cloud.resources))
    local plan = assert(make(chain()):plan())
    for _, a in ipairs(plan) do assert.equals("keep", a.action) end
  end)

  it("keeps secrets out of the state file", function()
    assert(make(chain()):apply())
    local f = assert(io.open(state_file))
    local text = f:read("a")
    f:close()
    assert.is_nil(text:find("s3cret", 1, true))
    local st = read_json(state_file)
    assert.equals("test", st.runbook)
    assert.equals("A", st.resources.vpc.account)
  end)

  it("saves each id as soon as it exists, and adopts by tag after a crash before the save", function()
    -- the process dies right after the cloud made `net` (before the engine could save its id)
    local rb = make(chain({ net = { after_create = crash } }))
    local s, err = rb:apply()
    assert.is_nil(s)
    assert.equals("net", err.step)
    cloud.unreachable = false
    local st = read_json(state_file)
    assert.matches("^vpc%-", st.resources.vpc.id)
    assert.is_true(st.resources.net.pending)
    assert.equals(2, count(cloud.resources))

    local again = assert(make(chain()):apply())
    assert.same({ "keep", "adopt", "create" }, { again.steps[1].action, again.steps[2].action, again.steps[3].action })
    assert.equals(3, count(cloud.resources))
  end)

  it("recreates a resource deleted behind its back", function()
    assert(make(chain()):apply())
    for rid, r in pairs(cloud.resources) do if r.tag == "db" then cloud.resources[rid] = nil end end
    local s = assert(make(chain()):apply())
    assert.equals(1, s.created)
    assert.equals("db", s.steps[3].step)
  end)

  it("adopts what a create made when its answer was lost and the retry failed", function()
    local steps = chain()
    local create = steps[3].create
    steps[3].create = function(ctx)
      create(ctx)
      return nil, { code = "InvalidSubnet.Conflict", message = "the retry collides with the first try" }
    end
    local s = assert(make(steps):apply())
    assert.equals("adopt", s.steps[2].action)
    assert.equals(3, count(cloud.resources))
  end)

  it("deletes duplicates a retried create left, and counts a delete whose answer was lost", function()
    assert(make(chain()):apply())
    -- a second vpc with the same tags (a create retried after its answer was lost)
    cloud.resources["vpc-dup"] = { tag = "vpc", state = "available" }
    local steps = chain()
    local delete = steps[3].delete
    steps[3].delete = function(ctx, rec)
      delete(ctx, rec)
      return nil, { code = "IncorrectState", message = "already deleted" }
    end
    local s = assert(make(steps):destroy())
    assert.equals(4, s.deleted)
    assert.equals(0, count(cloud.resources))
  end)

  it("names the step, the account and the AWS code in an error", function()
    local steps = chain()
    steps[3].create = function() return nil, { code = "InvalidSubnet.Conflict", message = "overlaps" } end
    local s, err = make(steps):apply()
    assert.is_nil(s)
    assert.equals("InvalidSubnet.Conflict", err.code)
    assert.equals("net", err.step)
    assert.equals("B", err.account)
    assert.equals("step net (account B 222222222222): InvalidSubnet.Conflict: overlaps", tostring(err))
  end)

  it("destroys in reverse order, counts gone as deleted, and is safe to re-run", function()
    assert(make(chain()):apply())
    -- someone deleted the database already
    for rid, r in pairs(cloud.resources) do if r.tag == "db" then cloud.resources[rid] = nil end end
    cloud.calls = {}
    local s = assert(make(chain()):destroy())
    assert.equals(3, s.deleted)
    local deletes = {}
    for _, c in ipairs(cloud.calls) do if c:match("^delete") then deletes[#deletes + 1] = c end end
    assert.same({ "delete db", "delete net", "delete vpc" }, deletes)
    assert.equals(0, count(cloud.resources))
    assert.is_nil(io.open(state_file))
    local again = assert(make(chain()):destroy())
    assert.equals(0, again.deleted)
  end)

  it("stops destroy on a real error and keeps what is left in the state", function()
    assert(make(chain()):apply())
    local s, err = make(chain({ vpc = { delete_error = { code = "DependencyViolation", message = "in use" } } })):destroy()
    assert.is_nil(s)
    assert.equals("DependencyViolation", err.code)
    assert.equals("vpc", err.step)
    local st = read_json(state_file)
    assert.same({ "vpc" }, (function() local k = {}; for id in pairs(st.resources) do k[#k + 1] = id end; return k end)())
    assert(make(chain()):destroy())
    assert.equals(0, count(cloud.resources))
  end)

  it("destroys what a crash left pending, found by its tag", function()
    assert.is_nil(make(chain({ net = { after_create = crash } })):apply())
    cloud.unreachable = false
    assert.equals(2, #assert(make(chain()):leftovers()))
    assert(make(chain()):destroy())
    assert.equals(0, count(cloud.resources))
    assert.same({}, assert(make(chain()):leftovers()))
  end)

  it("never deletes an external resource and skips disabled steps", function()
    local steps = chain()
    cloud.resources["vpc-given"] = { tag = "theirs", state = "available" }
    steps[1].find = function() return { id = "vpc-given", external = true } end
    steps[1].create = function() error("must not create") end
    steps[2].enabled = function(cfg) return cfg.with_db end
    local s = assert(make(steps, { config = { with_db = false } }):apply())
    assert.equals(2, #s.steps)
    assert(make(steps, { config = { with_db = false } }):destroy())
    assert.same({ ["vpc-given"] = { tag = "theirs", state = "available" } }, cloud.resources)
  end)

  it("refuses a state file of another runbook", function()
    local f = assert(io.open(state_file, "w"))
    f:write(cjson.encode({ version = 1, runbook = "other", resources = {} }))
    f:close()
    local s, err = make(chain()):apply()
    assert.is_nil(s)
    assert.equals("state", err.code)
    assert.equals(0, count(cloud.resources))
  end)

  -- ---- the state file on disk: fsync then rename, and the lock of a run -----------------------

  local file = require("awsnet.core").file
  local core_process = require("awsnet.core").process

  local function exists(path)
    local f = io.open(path, "r")
    if f then f:close() end
    return f ~= nil
  end

  local function mode_of(path)
    local p = assert(io.popen("stat -c %a " .. path))
    local m = p:read("l")
    p:close()
    return m
  end

  it("replaces the state file through an fsynced temp file, ignoring and removing one a crash left", function()
    -- a writer killed mid-write left half a state file next to where the state goes
    local tmp = state_file .. ".tmp"
    local f = assert(io.open(tmp, "w"))
    f:write('{"version":1,"runbook":"test","resou')
    f:close()
    local s = assert(make(chain()):apply())
    assert.equals(3, s.created)
    assert.is_false(exists(tmp))
    assert.is_false(exists(state_file .. ".lock"))
    assert.equals("test", read_json(state_file).runbook)
    assert.equals("600", mode_of(state_file))
    -- the same after a good state exists: the leftover is neither read nor kept
    f = assert(io.open(tmp, "w"))
    f:write("{ not json")
    f:close()
    assert.same({ "keep", "keep", "keep" }, (function()
      local again = assert(make(chain()):apply())
      return { again.steps[1].action, again.steps[2].action, again.steps[3].action }
    end)())
    assert.is_false(exists(tmp))
  end)

  it("write_atomic: whole content, mode, a leftover temp refused as 'exists', errors as nil, message", function()
    assert.is_true(file.write_atomic(state_file, "one\n", tonumber("640", 8)))
    assert.equals("640", mode_of(state_file))
    assert.is_true(file.write_atomic(state_file, string.rep("x", 100000)))
    local f = assert(io.open(state_file))
    assert.equals(100000, #f:read("a"))
    f:close()
    assert.equals("600", mode_of(state_file))
    f = assert(io.open(state_file .. ".tmp", "w"))
    f:close()
    local ok, msg, code = file.write_atomic(state_file, "two")
    assert.is_nil(ok)
    assert.equals("exists", code)
    assert.matches(".tmp", msg, 1, true)
    os.remove(state_file .. ".tmp")
    ok, msg, code = file.write_atomic("/nonexistent-awsnet-dir/state.json", "x")
    assert.is_nil(ok)
    assert.equals("io", code)
    assert.matches("No such file", msg)
    assert.is_false(exists("/nonexistent-awsnet-dir/state.json.tmp"))
    -- misuse raises
    assert.has_error(function() file.write_atomic() end)
    assert.has_error(function() file.write_atomic("", "x") end)
    assert.has_error(function() file.write_atomic(state_file, {}) end)
    assert.has_error(function() file.write_atomic(state_file, "x", tonumber("1000", 8)) end)
    assert.has_error(function() file.write_atomic(string.rep("a", 5000), "x") end)
    assert.has_error(function() file.lock({}) end)
    assert.has_error(function() file.lock("a\0b") end)
  end)

  it("refuses a second run on the same state file at once with 'locked', naming the file and pid", function()
    local held = assert(make(chain()):lock())
    local s, err = make(chain()):apply()
    assert.is_nil(s)
    assert.equals("locked", err.code)
    assert.equals(state_file, err.file)
    assert.equals(core_process.pid(), err.pid)
    assert.matches(state_file, err.message, 1, true)
    assert.matches("pid " .. core_process.pid(), err.message, 1, true)
    s, err = make(chain()):destroy()
    assert.is_nil(s)
    assert.equals("locked", err.code)
    assert.same({}, cloud.calls)   -- refused before any lookup
    held:close()
    held:close()                   -- harmless twice
    assert.is_false(exists(state_file .. ".lock"))
    assert(make(chain()):apply())
  end)

  it("holds the lock for the whole apply, and another process's run is refused with its pid", function()
    -- during apply, a second run is refused
    local steps = chain()
    local create = steps[2].create
    local inner
    steps[2].create = function(ctx)
      inner = { make(chain()):apply() }
      return create(ctx)
    end
    assert(make(steps):apply())
    assert.is_nil(inner[1])
    assert.equals("locked", inner[2].code)

    -- another process holds it: its pid is in the message; once it is killed, the lock is free
    local cpath = (os.getenv("AWSNET_BUILD") or "build") .. "/?.so"
    local pid = assert(core_process.spawn({ "lua5.4", "-e", string.format("package.cpath = %q; " ..
      "local core = require 'awsnet.core'; local l = assert(core.file.lock(%q)); core.process.sleep(30); l:close()",
      cpath, state_file .. ".lock") }, {}))
    local deadline = runbook.clock() + 10
    repeat
      runbook.sleep(0.02)
      local f = io.open(state_file .. ".lock")
      local holder = f and f:read("n")
      if f then f:close() end
    until holder == pid or runbook.clock() > deadline
    local s, err = make(chain()):destroy()
    assert.is_nil(s)
    assert.equals("locked", err.code)
    assert.equals(pid, err.pid)
    core_process.kill(pid, "SIGKILL")
    core_process.wait(pid, 10)
    local d = assert(make(chain()):destroy())
    assert.equals(3, d.deleted)
    assert.is_false(exists(state_file .. ".lock"))
  end)

  it("releases the lock when apply raises, when it fails and when the handle is collected", function()
    local rb = make(chain())
    rb.on_event = function() error("the progress printer broke") end
    assert.has_error(function() rb:apply() end)
    assert.is_false(exists(state_file .. ".lock"))
    local steps = chain()
    steps[1].create = function() return nil, { code = "UnauthorizedOperation", message = "no" } end
    assert.is_nil(make(steps):apply())
    assert.is_false(exists(state_file .. ".lock"))
    assert(make(chain()):apply())

    local held = assert(make(chain()):lock())
    assert.equals("locked", select(2, make(chain()):lock()).code)
    assert.equals("userdata", type(held))
    held = nil -- luacheck: ignore (dropped for the collector)
    collectgarbage()
    collectgarbage()
    assert(make(chain()):lock()):close()
  end)

  it("times out a wait with a clear error", function()
    local steps = chain()
    steps[1].wait = function(ctx) return ctx:poll("forever", function() return false end, { timeout = 0.05, interval = 0.01 }) end
    local s, err = make(steps):apply()
    assert.is_nil(s)
    assert.equals("timeout", err.code)
    assert.matches("forever", err.message)
  end)

  it("runs independent steps at once: one starts while another waits, the state file stays exact", function()
    -- two independent slow steps and one that needs both
    local slow = function(id, needs)
      local step = resource_step(cloud, id, "A", needs)
      step.wait = function(ctx, rec)
        local polls = 0
        return ctx:poll(id .. " available", function()
          polls = polls + 1
          -- every step's saved record is in the file while any one of them waits
          local saved = read_json(state_file).resources
          for other, r in pairs(cloud.resources) do
            local tag = r.tag
            assert.equals(other, saved[tag] and saved[tag].id, "state file holds " .. tag)
          end
          if polls >= 3 then cloud.resources[rec.id].state = "available" end
          return cloud.resources[rec.id].state == "available"
        end, { interval = 0.05 })
      end
      return step
    end
    local steps = { slow("tgw"), slow("vpc_b"), slow("attach", { "tgw", "vpc_b" }) }
    local rb = make(steps)
    local levels = rb:levels()
    assert.same({ { "tgw", "vpc_b" }, { "attach" } }, { { levels[1][1].id, levels[1][2].id }, { levels[2][1].id } })
    local s = assert(rb:apply())
    assert.equals(3, s.created)
    -- both of level 1 were created before either was done waiting
    local order = {}
    for _, e in ipairs(events) do
      if e.event == "step" or e.event == "done" then order[#order + 1] = e.event .. " " .. e.step end
    end
    assert.same({ "step tgw", "step vpc_b" }, { order[1], order[2] })
    assert.same({ "step attach", "done attach" }, { order[5], order[6] })
    -- one after another with concurrency 1
    cloud, events = new_cloud(), {}
    os.remove(state_file)
    local seq = runbook.new { name = "test", steps = { slow("tgw"), slow("vpc_b"), slow("attach", { "tgw", "vpc_b" }) },
      state_file = state_file, client = function() end, concurrency = 1, config = { progress_every = 0 },
      on_event = function(e)
        if e.event == "step" or e.event == "done" then events[#events + 1] = e.event .. " " .. e.step end
      end }
    assert(seq:apply())
    assert.same({ "step tgw", "done tgw", "step vpc_b", "done vpc_b", "step attach", "done attach" }, events)
  end)
end)
