-- bench/apply: the demo's apply in the sandbox as a graph (independent steps at once, the default)
-- against the same apply one step after another (concurrency 1), in the same run, against the
-- same sandbox with the same transition delays, best of 3 each (a destroy between runs).
-- Target: the graph's apply takes at most half the sequential apply's time. A missed target is
-- measured once more; missed again, the run exits 1.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("AWSNET_BUILD") or "build") .. "/?.so;" .. package.cpath
local scenario = require "awsnet.scenario.tgw_lambda_rds"
local sandboxed = require "awsnet.scenario.sandboxed"

local ROUNDS = tonumber(os.getenv("BENCH_ROUNDS") or "3")
local TRANSITION = tonumber(os.getenv("BENCH_TRANSITION") or "1")   -- the sandbox's default

-- one MariaDB server kept ready: the sandbox's CreateDBInstance then does not hold the whole
-- sandbox while a server starts (AWS answers it at once and makes the instance meanwhile), which
-- would stop every other step's calls alike; both applies use it
local sb = assert(sandboxed.start { transition = TRANSITION, seed = 16, warm_databases = 1 })
local ok, err = pcall(function()
  -- one apply (then its destroy) with `concurrency`; returns the apply's seconds
  local function apply_once(concurrency, k)
    local cfg = assert(scenario.config(sb:config { name = "bench-apply-" .. concurrency .. "-" .. k,
      concurrency = concurrency, poll_interval = 0.05 }))
    local rb = assert(scenario.runbook(cfg, {}))
    local summary = assert(rb:apply())
    assert(summary.created > 0, "the apply created nothing")
    assert(rb:destroy())
    return summary.seconds
  end
  local function best(concurrency)
    local b = math.huge
    for k = 1, ROUNDS do b = math.min(b, apply_once(concurrency, k)) end
    return b
  end
  local function measure()
    local seq, graph = best(1), best(0)
    print(string.format("%-34s %10s %10s %8s %8s", "apply (sandbox, transition " .. TRANSITION .. " s)", "graph",
      "sequential", "ratio", "target"))
    print(string.format("%-34s %9.2fs %9.2fs %7.2fx %7s", "best of " .. ROUNDS, graph, seq, seq / graph, ">= 2x"))
    return seq / graph >= 2
  end
  if not measure() then
    print("target missed: measuring once more")
    if not measure() then error("bench/apply: the graph's apply is not twice as fast as the sequential one", 0) end
  end
end)
sb:stop()
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
