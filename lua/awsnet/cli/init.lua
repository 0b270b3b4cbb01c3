--- The `awsnet` command line. Each command is a function of its arguments returning an exit status.
local awsnet = require "awsnet"

local cli = {}

local USAGE = [[
usage: awsnet <command> [options]

  demo                                   play the article's scenario in the local sandbox
  sandbox --port N                       run the local two-account AWS sandbox
  snapshot --profile P --out DIR         save describe-* JSON of an account
  trace DIR --src X --dst Y --port N     evaluate a path in a snapshot, hop by hop
  scenario plan|apply|verify|prove|destroy --config FILE
  version                                print the version
]]

local commands = {}

-- Commands that live in their own module, loaded only when used.
local COMMAND_MODULES = {
  demo = "awsnet.cli.demo",
  sandbox = "awsnet.cli.sandbox",
  scenario = "awsnet.cli.scenario",
  snapshot = "awsnet.cli.snapshot",
  trace = "awsnet.cli.trace",
}

function commands.version()
  print("awsnet " .. awsnet.VERSION)
  return 0
end

function commands.help()
  io.write(USAGE)
  return 0
end

--- Runs the command line in `argv` (arg-style table); returns the process exit status.
function cli.run(argv)
  local name = argv[1] or "help"
  local cmd = commands[name]
  if not cmd and COMMAND_MODULES[name] then cmd = require(COMMAND_MODULES[name]).run end
  if not cmd then
    io.stderr:write("awsnet: unknown command '", name, "'\n", USAGE)
    return 2
  end
  local rest = table.move(argv, 2, #argv, 1, {})
  return cmd(rest)
end

function cli.main(argv)
  os.exit(cli.run(argv or {}))
end

return cli
