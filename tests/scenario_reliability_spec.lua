-- Reliability of the scenario against the sandbox:
-- * with injected faults (10% throttling, 5% 5xx, 2% connection resets) apply -> verify ->
--   destroy succeeds for every seed and nothing is left behind;
-- * `apply` killed with SIGKILL after a random step, then `apply` again, completes, and
--   `destroy` afterwards leaves nothing.
-- `make test` runs a few seeds; `make soak` runs many (AWSNET_SOAK_RUNS, default 20).
local sandboxed = require "awsnet.scenario.sandboxed"
local scenario = require "awsnet.scenario.tgw_lambda_rds"
local checks = require "awsnet.scenario.checks"
local process = require "awsnet.svc.process"
local cjson = require "cjson"

local RUNS = tonumber(os.getenv("AWSNET_SOAK_RUNS")) or 2
local FAULTS = { throttle = 0.10, error5xx = 0.05, reset = 0.02 }

describe("scenario reliability #reliability", function()
  local sb, out_dir

  after_each(function()
    if sb then sb:stop(); sb = nil end
    if out_dir then os.execute("rm -rf " .. process.quote(out_dir)); out_dir = nil end
  end)

  local function runbook_for(name)
    local cfg = assert(scenario.config(sb:config{ name = name }))
    return cfg, assert(scenario.runbook(cfg))
  end

  -- destroy succeeds, nothing tagged remains and the sandbox holds what it held `before`
  local function destroy_leaves_nothing(rb, before)
    local destroyed, err = rb:destroy()
    assert(destroyed, err and tostring(err))
    assert.same({}, assert(rb:leftovers()))
    assert.same(before, sb:resources())
  end

  for seed = 1, RUNS do
    it("apply -> verify -> destroy passes under faults, seed " .. seed, function()
      sb = assert(sandboxed.start{ faults = FAULTS, seed = seed })
      out_dir = process.tempdir("awsnet-reliability")
      local cfg, rb = runbook_for("faults-" .. seed)
      local before = sb:resources()
      local applied, err = rb:apply()
      assert(applied, err and tostring(err))
      assert.is_true(applied.created > 10)
      local v = assert(checks.verify(cfg, rb, { out_dir = out_dir }))
      for _, c in ipairs(v.checks) do assert(c.ok, c.name .. ": " .. tostring(c.detail)) end
      destroy_leaves_nothing(rb, before)
    end)
  end

  for run = 1, math.max(1, RUNS // 2) do
    it("survives SIGKILL at a random step of apply, run " .. run, function()
      sb = assert(sandboxed.start{ seed = 100 + run })
      local cfg, rb = runbook_for("kill-" .. run)
      local before = sb:resources()
      local steps = #rb.steps
      local kill_after = math.random(1, steps - 1)
      -- apply in a child process, killed once `kill_after` steps are done
      local cfg_file = sb.dir .. "/config.json"
      process.write_file(cfg_file, cjson.encode(sb:config{ name = "kill-" .. run }))
      local log = sb.dir .. "/apply.log"
      -- the child's scratch folders (the Lambda zip's) go under the sandbox's folder, which
      -- after_each removes: a SIGKILL between making one and removing it leaves nothing behind
      local tmp = sb.dir .. "/tmp"
      os.execute("mkdir -p " .. process.quote(tmp))
      local env = { TMPDIR = tmp }
      -- under `make check` the child loads the sanitised core too, so it needs the runtime preloaded
      if os.getenv("AWSNET_SANITIZED") then env.LD_PRELOAD = os.getenv("LD_PRELOAD") or "" end
      local child = process.spawn(sandboxed.awsnet_command({ "scenario", "apply", "--config", cfg_file, "--json" }),
        { log = log, env = env })
      local function done_steps()
        local _, n = (process.read_file(log) or ""):gsub('"event":"done"', "")
        return n
      end
      assert(process.wait_until(function() return done_steps() >= kill_after or not child.alive() end, 60, "apply steps"))
      os.execute("kill -KILL " .. child.pid)
      while child.alive() do process.sleep(0.02) end
      child.stop(0)
      assert.is_true(done_steps() >= kill_after, "the child stopped before step " .. kill_after)
      assert.is_true(done_steps() < steps, "the child finished before it could be killed")
      -- the state file is whole, and the next apply completes
      local saved = cjson.decode((assert(process.read_file(cfg.state_file))))
      assert.is_table(saved.resources)
      local applied, err = rb:apply()
      assert(applied, err and tostring(err))
      assert.equals(steps, #applied.steps)
      local again = assert(rb:apply())
      assert.is_false(again.changed)
      destroy_leaves_nothing(rb, before)
    end)
  end
end)
