--- `awsnet sandbox`: runs the local two-account AWS sandbox until the process is stopped.
--   awsnet sandbox [--port N] [--accounts A,B] [--organization N [--vpcs N]] [--regions R1,R2]
--                  [--warm-databases N] [--twin auto|on|off]
--                  [--state-dir DIR] [--seed N] [--transition S]
--                  [--faults throttle=0.1,error5xx=0.05,reset=0.02,latency_ms=0]
-- @module awsnet.cli.sandbox
local args = require "awsnet.cli.args"
local sandbox = require "awsnet.sandbox"

local cli_sandbox = {}

cli_sandbox.summary = "Run the local two-account AWS sandbox until stopped."
cli_sandbox.epilog = "Stops on Ctrl-C or SIGTERM, with its children and folders.\n" ..
  "Exit status: 2 when it cannot start."

--- Adds the command's arguments.
-- @tparam table command the argparse command
function cli_sandbox.configure(command)
  command:option("--port", "The loopback port to listen on.", "4566", args.port)
  command:option("--accounts", "Account ids, comma-separated (default 111111111111,222222222222).", nil,
    args.accounts)
  command:option("--organization", "Stand for an organisation of N accounts (the first of --accounts manages it).",
    nil, args.integer("--organization", 1, 10000))
  command:option("--regions", "The enabled regions, comma-separated (default: all but one opt-in region).", nil,
    args.list)
  command:option("--vpcs", "Give every account N VPCs with their subnets in each enabled region.", nil,
    args.integer("--vpcs", 0, 250))
  command:option("--warm-databases", "Start N MariaDB servers ahead, for CreateDBInstance to take at once.", nil,
    args.integer("--warm-databases", 0, 8))
  command:option("--state-dir", "Keep the sandbox's state in this folder (it survives a restart).")
  command:option("--seed", "Seed of the sandbox's ids and faults.", nil, args.integer("--seed", 0, 2147483647))
  command:option("--transition", "Seconds a resource stays pending before it is available.", nil,
    args.seconds("--transition"))
  command:option("--twin", "Realise the VPCs as Linux network namespaces (the network twin): auto, on or off.",
    "auto"):choices({ "auto", "on", "off" })
  command:option("--faults", "Injected faults, e.g. throttle=0.1,error5xx=0.05,reset=0.02,latency_ms=5,rate_limit=20.",
    nil, args.faults)
end

--- sandbox.start options from parsed arguments.
-- @tparam table a the parsed arguments
-- @treturn table options for `awsnet.sandbox.start`
function cli_sandbox.options(a)
  return { port = a.port, accounts = a.accounts, state_dir = a.state_dir, seed = a.seed,
    transition_s = a.transition, faults = a.faults, organization = a.organization, regions = a.regions,
    populate = a.vpcs and { vpcs = a.vpcs } or nil, warm_databases = a.warm_databases, twin = a.twin }
end

--- Runs the command on parsed arguments: serves until the process is stopped.
-- @tparam table a the parsed arguments
-- @treturn integer exit status
function cli_sandbox.run(a)
  local sb, err = sandbox.start(cli_sandbox.options(a))
  if not sb then
    io.stderr:write("awsnet sandbox: ", tostring(err), "\n")
    return 2
  end
  local dns
  dns, err = sb:dns_server()
  if not dns then
    io.stderr:write("awsnet sandbox: no DNS server: ", tostring(err), "\n")
    sb:stop()
    return 2
  end
  io.stdout:write("awsnet sandbox listening on ", sb.endpoint, " (accounts ",
    table.concat(sb.state:accounts(), ", "), "); DNS for *.rds.amazonaws.com on ", dns.host, ":", dns.port,
    "; network ", sb.twin and ("twin " .. sb.twin.prefix) or "gated by the evaluator", "\n")
  io.stdout:flush()
  -- until SIGINT or SIGTERM: then the sandbox has stopped its children and removed its folders,
  -- and the exit status (130/143) and the line saying so come from process.handle_interrupts
  sb:serve()
  return 0
end

return cli_sandbox
