--- `awsnet trace DIR --src X --dst Y --port N [--protocol tcp] [--direction both|forward] [--json]`
-- Evaluates a path in a snapshot folder (as written by `awsnet snapshot`), hop by hop.
local cjson = require "cjson"
local cli_scenario = require "awsnet.cli.scenario"

local cli_trace = {}

local USAGE = "usage: awsnet trace DIR --src X --dst Y --port N [--protocol tcp|udp|N] " ..
  "[--direction both|forward] [--resolver IP] [--json]\n"

function cli_trace.run(argv)
  local opts, pos = cli_scenario.parse(argv, { json = true, help = true })
  if not opts or opts.help or not pos[1] or not opts.src or not opts.dst then
    io.stderr:write(USAGE)
    return opts and opts.help and 0 or 2
  end
  local reach = require "awsnet.reach"
  local model, err = reach.load(pos[1])
  if not model then
    io.stderr:write("awsnet trace: ", tostring(err), "\n")
    return 1
  end
  local protocol = tonumber(opts.protocol) or opts.protocol or "tcp"
  local result
  result, err = model:trace{ src = opts.src, dst = opts.dst, protocol = protocol, port = tonumber(opts.port),
    direction = opts.direction, resolver = opts.resolver }
  if not result then
    io.stderr:write("awsnet trace: ", tostring(err), "\n")
    return 1
  end
  if opts.json then
    print(result.json and result:json() or cjson.encode(result))
  else
    print(tostring(result))
  end
  return result.reachable and 0 or 1
end

return cli_trace
