--- The `awsnet` command line: one argparse parser for every command.
-- Each command lives in `awsnet.cli.<name>`, a module with `summary` (one line for the command
-- list), `configure(command)` (adds its arguments to an argparse command) and `run(args)` (the
-- parsed arguments -> exit status). A command's library modules load only when it runs.
--
-- Exit statuses (the README's table): 0 ok or reachable; 1 not reachable or a failed check;
-- 2 usage or error; 130 and 143 after SIGINT and SIGTERM.
-- @module awsnet.cli
local argparse = require "argparse"
local awsnet = require "awsnet"

local cli = {}

--- Exit statuses of every command.
cli.EXIT = { ok = 0, failed = 1, usage = 2 }

-- In the order `awsnet --help` lists them.
local COMMANDS = { "demo", "sandbox", "snapshot", "trace", "scenario" }

local DESCRIPTION = "Build, prove and check AWS network paths: signed AWS calls, a static evaluator of " ..
  "routes, Transit Gateways, security groups and network ACLs, live DNS and MySQL checks, and a local " ..
  "two-account AWS sandbox."

local EPILOG = "Exit status: 0 ok or reachable, 1 not reachable or a failed check, 2 usage or error.\n" ..
  "Run 'awsnet <command> -h' for a command's options."

-- argparse's own -h/--help and --version call os.exit, which would end a caller's process (specs
-- run commands in-process): these flags only record what was asked, and cli.run answers it.
local function help_flag(parser, asked)
  parser:add_help(false)
  parser:flag("-h --help", "Show this help and exit."):action(function() asked.help = asked.help or parser end)
end

--- Builds the parser; `asked` receives what the help and version flags and `completion` ask for.
-- @tparam table asked filled in by the flags' actions: `help` (the parser whose help to print),
-- `version` (true), `completion` (a shell name)
-- @treturn table the argparse parser
function cli.parser(asked)
  asked = asked or {}
  local parser = argparse("awsnet", DESCRIPTION, EPILOG)
  help_flag(parser, asked)
  parser:flag("--version", "Print the version and exit."):action(function() asked.version = true end)
  parser:command_target("command")
  parser:help_max_width(100)
  for _, name in ipairs(COMMANDS) do
    local mod = require("awsnet.cli." .. name)
    local command = parser:command(name, mod.summary, mod.epilog)
    help_flag(command, asked)
    mod.configure(command)
  end
  local version = parser:command("version", "Print the version.")
  help_flag(version, asked)
  local help = parser:command("help", "Show help for a command.")
  help_flag(help, asked)
  help:argument("topic", "The command to show help for."):args("?"):choices(COMMANDS)
  local completion = parser:command("completion", "Print a shell completion script (bash or zsh).",
    "bash: eval \"$(awsnet completion bash)\"; zsh: awsnet completion zsh > \"${fpath[1]}/_awsnet\"")
  help_flag(completion, asked)
  completion:argument("shell", "The shell."):choices{ "bash", "zsh" }
  return parser
end

-- The parser of the command named in argv, for its usage line after an error.
local function command_parser(parser, argv)
  for _, c in ipairs(parser._commands) do
    if c._name == argv[1] then return c end
  end
  return parser
end

local function answer(parser, asked, args)
  if asked.help then
    io.stdout:write(asked.help:get_help(), "\n")
  elseif asked.version or args.command == "version" then
    io.stdout:write("awsnet ", awsnet.VERSION, "\n")
  elseif args.command == "help" then
    io.stdout:write(command_parser(parser, { args.topic }):get_help(), "\n")
  elseif args.command == "completion" then
    io.stdout:write(args.shell == "zsh" and parser:get_zsh_complete() or parser:get_bash_complete())
  else
    return nil
  end
  return cli.EXIT.ok
end

--- Runs the command line in `argv` (an arg-style array, without the program name).
-- @tparam {string,...} argv the arguments
-- @treturn integer the process exit status (see `cli.EXIT`)
function cli.run(argv)
  local asked = {}
  local parser = cli.parser(asked)
  local ok, args = parser:pparse(argv)
  -- -h and --version win over errors in the rest of the line, as in most tools
  local status = answer(parser, asked, ok and args or {})
  if status then return status end
  if not ok then
    -- one line: argparse adds its suggestions ("Did you mean ...?") on lines of their own
    local message = args:gsub("\n+", ". ")
    io.stderr:write("awsnet: ", message, "\n", command_parser(parser, argv):get_usage(), "\n")
    return cli.EXIT.usage
  end
  return require("awsnet.cli." .. args.command).run(args)
end

--- Runs the command line and exits with its status.
-- @tparam[opt] {string,...} argv the arguments (default: none)
function cli.main(argv)
  require("awsnet.svc.process").handle_interrupts() -- Ctrl-C, SIGTERM: stop cleanly, exit 130/143
  local list = {}
  for i = 1, #(argv or {}) do list[i] = argv[i] end
  os.exit(cli.run(list))
end

return cli
