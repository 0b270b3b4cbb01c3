--- The `awsnet demo` command: the article's scenario, played in the local sandbox.
-- Usage: `awsnet demo [--out DIR] [--json]`.
-- Starts the sandbox (two accounts, RDS on MariaDB, DNS, Lambda running the Python handler),
-- runs plan -> apply -> apply again -> verify -> prove -> destroy, checks that nothing is left,
-- prints the timings, stops everything. Exit status 0 only when every phase did what it should.
-- @module awsnet.cli.demo
local cli_scenario = require "awsnet.cli.scenario"
local runbook = require "awsnet.runbook"

local demo = {}

demo.summary = "Play the article's scenario in the local sandbox (plan, apply, verify, prove, destroy)."
demo.epilog = "Exit status: 0 when every phase did what it should and nothing is left; 1 otherwise; " ..
  "2 when the sandbox cannot start."

--- Adds the command's arguments.
-- @tparam table command the argparse command
function demo.configure(command)
  command:option("--out", "Where report.md and topology.svg are written.", ".")
  command:flag("--json", "Print one JSON object per event instead of text.")
end

local function banner(out, text)
  out:write("\n== ", text, " ", string.rep("=", math.max(0, 74 - #text)), "\n")
end

--- Plays the scenario against a started sandbox handle (awsnet.scenario.sandboxed); returns
-- ok, phases ({{phase, seconds, ok, detail}}). opts: out_dir, stdout, json.
-- @param sb the sandbox handle
-- @tparam table opts {out_dir, stdout, json, name}
-- @treturn boolean true when every phase did what it should and nothing is left
-- @treturn table the phases
-- @raise what a phase raises (run catches it)
function demo.play(sb, opts)
  local stdout = opts.stdout or io.stdout
  local cfg = sb:config{ name = opts.name or "awsnet-demo" }
  local before = sb:resources()
  local phases, all_ok = {}, true
  local function phase(name, command, check)
    if not opts.json then banner(stdout, name) end
    local t0 = runbook.clock()
    local status, result = cli_scenario.execute(command, cfg, { stdout = stdout, json = opts.json, out_dir = opts.out_dir,
      merge_report = command == "prove" })
    local ok, detail = status == 0, nil
    if ok and check then ok, detail = check(result) end
    phases[#phases + 1] = { phase = name, seconds = runbook.clock() - t0, ok = ok, detail = detail }
    all_ok = all_ok and ok
    return ok
  end
  local _ = phase("plan", "plan")
    and phase("apply", "apply", function(r) return r.changed, r.created .. " resources created" end)
    and phase("apply again (must change nothing)", "apply", function(r)
      return not r.changed, r.changed and "apply changed something the second time" or "nothing changed"
    end)
    and phase("verify", "verify")
    and phase("prove", "prove")
  -- after Ctrl-C or SIGTERM nothing more runs: the sandbox, and all it holds, is stopped anyway
  if require("awsnet.svc.process").interrupted() then return false, phases end
  -- destroy runs whatever happened before, so that the sandbox is left empty
  phase("destroy", "destroy")
  -- what the sandbox holds now that it did not hold before the plan
  local left = {}
  for r in pairs(sb:resources()) do if not before[r] then left[#left + 1] = r end end
  table.sort(left)
  phases[#phases + 1] = { phase = "nothing left behind", seconds = 0, ok = #left == 0,
    detail = #left == 0 and "the sandbox holds what it held before" or (#left .. " left: " .. table.concat(left, ", ")) }
  -- the report verify and prove wrote gets the time of every phase, plan to destroy
  local timings = {}
  for i, p in ipairs(phases) do timings[i] = { phase = p.phase, seconds = p.seconds } end
  local f = io.open((opts.out_dir or ".") .. "/report.json", "r")
  if f then
    f:close()
    require("awsnet.report").write(opts.out_dir or ".", { timings = timings }, { merge = true, timings = "replace" })
  end
  return all_ok and #left == 0, phases
end

--- Runs the command on parsed arguments.
-- @tparam table opts the parsed arguments
-- @treturn integer exit status
function demo.run(opts)
  local stdout = io.stdout
  local started = runbook.clock()
  if not opts.json then
    stdout:write("awsnet demo: Lambda in account A -> RDS MySQL in account B through a shared Transit Gateway\n")
  end
  local sb, err = require("awsnet.scenario.sandboxed").start({ twin = os.getenv("AWSNET_TWIN") or "auto" })
  if not sb then
    io.stderr:write("awsnet demo: ", tostring(err), "\n")
    return 2
  end
  if not opts.json then
    stdout:write("sandbox: ", sb.endpoint, " (accounts 111111111111 and 222222222222); network: ",
      sb.twin and ("the network twin " .. sb.twin .. " (Linux namespaces)") or "gated by the evaluator", "\n")
  end
  local ok, result, phases = pcall(demo.play, sb, { stdout = stdout, json = opts.json, out_dir = opts.out })
  sb:stop()
  -- interrupted: the exit line and status come from process.handle_interrupts, no summary
  if require("awsnet.svc.process").interrupted() then return 1 end
  if not ok then
    io.stderr:write("awsnet demo: ", tostring(result), "\n")
    return 1
  end
  if opts.json then
    stdout:write(require("cjson").encode({ event = "demo", ok = result, phases = phases,
      seconds = runbook.clock() - started }), "\n")
  else
    banner(stdout, "summary")
    for _, p in ipairs(phases) do
      stdout:write(string.format("  %-36s %-4s %6.2f s  %s\n", p.phase, p.ok and "ok" or "FAIL", p.seconds, p.detail or ""))
    end
    stdout:write(string.format("  %-36s %-4s %6.2f s\n", "total (sandbox started and stopped)", result and "ok" or "FAIL",
      runbook.clock() - started))
    stdout:write(string.format("report: %s/report.md, picture: %s/topology.svg\n", opts.out, opts.out))
  end
  return result and 0 or 1
end

return demo
