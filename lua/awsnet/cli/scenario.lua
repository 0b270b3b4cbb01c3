--- The `awsnet scenario` command: plan, apply, verify, prove or destroy the article's scenario.
-- Usage: `awsnet scenario plan|apply|verify|prove|destroy --config FILE [--json] [--out DIR]`.
-- The config file is Lua returning a table (see examples/tgw_lambda_rds.lua); --json prints one
-- JSON object per progress event and a final result object instead of text.
-- @module awsnet.cli.scenario
local cjson = require "cjson"
local errors = require "awsnet.errors"

local cli_scenario = {}

cli_scenario.summary = "Plan, apply, verify, prove or destroy the article's scenario from a config file."
cli_scenario.epilog = [[
  plan      the graph's levels and the API calls per account apply would make; changes nothing
  apply     create or adopt every resource, independent steps at once, waiting for each (a second
            apply changes nothing; config concurrency = 1 runs one step after another)
  verify    trace Lambda -> database, resolve the endpoint, invoke the Lambda, read back
  prove     show what each piece (DNS support, TGW routes, security groups) does
  destroy   delete everything the state file lists, in reverse order
Exit status: 0 done; 1 a failed step or check; 2 usage error or a bad config.]]

local ACTIONS = { "plan", "apply", "verify", "prove", "destroy" }
local KNOWN_ACTIONS = {}
for _, a in ipairs(ACTIONS) do KNOWN_ACTIONS[a] = true end

--- Adds the command's arguments.
-- @tparam table command the argparse command
function cli_scenario.configure(command)
  command:argument("action", "What to do."):choices(ACTIONS)
  command:option("--config", "The scenario's config: Lua returning a table, or JSON."):count(1)
  command:option("--out", "Where verify and prove write report.md and topology.svg.", ".")
  command:flag("--json", "One JSON object per progress event, then the result.")
end

--- Loads a config file: JSON (*.json), or Lua returning a table (it runs with no access to
-- globals but `os.getenv`).
-- @tparam string path the file
-- @treturn table the user config (not checked yet: scenario.config does), or nil, err ("config")
function cli_scenario.load_config(path)
  if path:match("%.json$") then
    local f, ferr = io.open(path, "r")
    if not f then return errors.fail("config", tostring(ferr)) end
    local ok, cfg = pcall(cjson.decode, f:read("a"))
    f:close()
    if not ok or type(cfg) ~= "table" then return errors.fail("config", path .. " is not a JSON object") end
    return cfg
  end
  local env = { os = { getenv = os.getenv }, tostring = tostring, tonumber = tonumber }
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return errors.fail("config", tostring(err)) end
  local ok, cfg = pcall(chunk)
  if not ok then return errors.fail("config", path .. ": " .. tostring(cfg)) end
  if type(cfg) ~= "table" then return errors.fail("config", path .. " must return a table") end
  return cfg
end

local DONE_WORDS = { create = "created", adopt = "adopted", keep = "unchanged", delete = "deleted" }

--- A progress printer: text lines on `out`, or JSON lines when `json`.
-- @param out a file (io.stdout)
-- @tparam boolean json JSON lines instead of text
-- @treturn function on_event(event) for the runbook and the checks
function cli_scenario.printer(out, json)
  local t0
  return function(e)
    if json then
      out:write(cjson.encode(e), "\n")
      out:flush()
      return
    end
    local clock = require("awsnet.runbook").clock()
    t0 = t0 or clock
    local stamp = string.format("[%6.1fs]", clock - t0)
    if e.event == "step" then
      out:write(string.format("%s %s  %-9s %-16s %s%s\n", stamp, e.account, e.action, e.step, e.title or "",
        e.id and (" " .. e.id) or ""))
    elseif e.event == "done" then
      out:write(string.format("%s %s  %-9s %-16s %s (%.1f s)\n", stamp, e.account, DONE_WORDS[e.action] or e.action,
        e.step, tostring(e.id), e.seconds or 0))
    elseif e.event == "waiting" then
      out:write(string.format("%s %s  waiting   %-16s %s (%.0f s so far)\n", stamp, e.account, e.step, e.what, e.elapsed))
    elseif e.event == "progress" or e.event == "check" or e.event == "reverse" then
      out:write(string.format("%s %s\n", stamp, e.message or e.name or ""))
    end
    out:flush()
  end
end

local function print_plan(out, actions)
  local n = 0
  for _, a in ipairs(actions) do
    if a.action == "create" then
      for _, c in ipairs(a.calls) do
        n = n + 1
        out:write(string.format("  %2d. account %s  %-42s %s\n", n, a.account, c, a.step))
      end
    else
      out:write(string.format("      account %s  %-42s %s\n", a.account,
        a.action == "skip" and "(skipped)" or (a.action .. " " .. tostring(a.id)), a.step))
    end
  end
  if n == 0 then out:write("  nothing to change\n") end
end

-- The graph apply follows: its levels, the steps of each running at once (a JSON event with --json).
local function print_levels(out, levels, json)
  local ids = {}
  for l, steps in ipairs(levels) do
    ids[l] = {}
    for _, step in ipairs(steps) do ids[l][#ids[l] + 1] = step.id end
  end
  if json then
    out:write(cjson.encode({ event = "graph", levels = ids }), "\n")
    return
  end
  out:write("apply runs as a graph: the steps of a level at once, each as soon as what it needs is done\n")
  for l, list in ipairs(ids) do out:write(string.format("  level %d: %s\n", l, table.concat(list, ", "))) end
end

--- Runs one scenario command with an already loaded config table; returns the exit status (0 done,
-- 1 a check failed, 2 an error: bad config, a failed AWS call, ...) and the result or error.
-- opts: json (bool), out_dir, stdout (file, default io.stdout), aws (module for clients),
-- direct ({host, port, tls} of the database where this host reaches it), merge_report (verify
-- and prove add to the report already in out_dir).
-- @tparam string command "plan", "apply", "verify", "prove" or "destroy"
-- @tparam table user_config the config as loaded (load_config), checked by scenario.config here
-- @tparam[opt] table opts {json, out_dir, stdout, aws, direct, merge_report}
-- @treturn integer the exit status
-- @return the command's result, or the error
-- @raise on an unknown command
function cli_scenario.execute(command, user_config, opts)
  opts = opts or {}
  local stdout = opts.stdout or io.stdout
  local scenario = require "awsnet.scenario.tgw_lambda_rds"
  local function fail(err)
    if opts.json then
      stdout:write(cjson.encode({ event = "result", command = command, ok = false, error = {
        code = err.code, message = err.message, step = err.step, account = err.account } }), "\n")
    elseif err.code ~= "interrupted" then -- an interrupt gets one line at exit (process.handle_interrupts)
      io.stderr:write("awsnet scenario ", command, ": ", tostring(err), "\n")
    end
    return 2, err
  end
  if not KNOWN_ACTIONS[command] then error("scenario: unknown command " .. tostring(command), 2) end
  local cfg, err = scenario.config(user_config)
  if not cfg then return fail(err) end
  local printer = cli_scenario.printer(stdout, opts.json)
  local rb
  rb, err = scenario.runbook(cfg, { on_event = printer, aws = opts.aws })
  if not rb then return fail(err) end

  local result
  if command == "plan" then
    result, err = rb:plan()
    if result then print_levels(stdout, rb:levels(), opts.json) end
    if result and not opts.json then print_plan(stdout, result) end
  elseif command == "apply" then
    result, err = rb:apply()
    if result then
      result.outputs = nil
      if not opts.json then
        stdout:write(result.changed and string.format("applied: %d created, %d adopted, %d unchanged (%.1f s)\n",
          result.created, result.adopted, result.kept, result.seconds) or "applied: nothing changed, all up to date\n")
      end
    end
  elseif command == "destroy" then
    result, err = rb:destroy()
    if result and not opts.json then
      stdout:write(string.format("destroyed: %d resources deleted (%.1f s)\n", result.deleted, result.seconds))
    end
  else -- verify, prove
    local checks = require "awsnet.scenario.checks"
    result, err = checks[command](cfg, rb, { on_event = printer, out_dir = opts.out_dir or ".", direct = opts.direct,
      stdout = not opts.json and stdout or nil, aws = opts.aws, merge = opts.merge_report })
  end
  if not result then return fail(err) end
  if opts.json then
    stdout:write(cjson.encode({ event = "result", command = command, ok = result.ok ~= false, result = result }), "\n")
  end
  return result.ok == false and 1 or 0, result
end

--- Runs the command on parsed arguments.
-- @tparam table a the parsed arguments
-- @treturn integer exit status
function cli_scenario.run(a)
  local cfg, err = cli_scenario.load_config(a.config)
  if not cfg then
    io.stderr:write("awsnet scenario: ", tostring(err), "\n")
    return 2
  end
  return (cli_scenario.execute(a.action, cfg, { json = a.json, out_dir = a.out }))
end

return cli_scenario
