--- `awsnet sandbox`: runs the local two-account AWS sandbox until the process is stopped.
--   awsnet sandbox [--port N] [--accounts A,B] [--state-dir DIR] [--seed N] [--transition S]
--                  [--faults throttle=0.1,error5xx=0.05,reset=0.02,latency_ms=0]
local sandbox = require "awsnet.sandbox"

local cli_sandbox = {}

local USAGE = "usage: awsnet sandbox [--port N] [--accounts A,B] [--state-dir DIR] [--seed N] " ..
  "[--transition SECONDS] [--faults name=rate,...]\n"

local FAULT_NAMES = { throttle = true, error5xx = true, reset = true, latency_ms = true }

local function parse_faults(text)
  local faults = {}
  for name, value in text:gmatch("([%w_]+)=([%d.]+)") do
    if not FAULT_NAMES[name] then return nil, "unknown fault " .. name end
    faults[name] = tonumber(value)
  end
  return faults
end

--- Parses the command's options; returns sandbox.start options or nil, message.
function cli_sandbox.options(args)
  local opts = { port = 4566 }
  local i = 1
  while i <= #args do
    local name, value = args[i], args[i + 1]
    if value == nil then return nil, "missing value for " .. tostring(name) end
    if name == "--port" then opts.port = math.tointeger(tonumber(value))
    elseif name == "--accounts" then
      opts.accounts = {}
      for id in value:gmatch("[^,]+") do opts.accounts[#opts.accounts + 1] = id end
    elseif name == "--state-dir" then opts.state_dir = value
    elseif name == "--seed" then opts.seed = math.tointeger(tonumber(value))
    elseif name == "--transition" then opts.transition_s = tonumber(value)
    elseif name == "--faults" then
      local faults, err = parse_faults(value)
      if not faults then return nil, err end
      opts.faults = faults
    else
      return nil, "unknown option " .. tostring(name)
    end
    i = i + 2
  end
  if not opts.port then return nil, "--port needs a number" end
  for _, id in ipairs(opts.accounts or {}) do
    if not id:match("^%d%d%d%d%d%d%d%d%d%d%d%d$") then return nil, "account ids are 12 digits: " .. id end
  end
  return opts
end

function cli_sandbox.run(args)
  local opts, err = cli_sandbox.options(args)
  if not opts then
    io.stderr:write("awsnet sandbox: ", err, "\n", USAGE)
    return 2
  end
  local sb
  sb, err = sandbox.start(opts)
  if not sb then
    io.stderr:write("awsnet sandbox: ", tostring(err), "\n")
    return 1
  end
  local dns
  dns, err = sb:dns_server()
  if not dns then
    io.stderr:write("awsnet sandbox: no DNS server: ", tostring(err), "\n")
    sb:stop()
    return 1
  end
  io.stdout:write("awsnet sandbox listening on ", sb.endpoint, " (accounts ",
    table.concat(sb.state:accounts(), ", "), "); DNS for *.rds.amazonaws.com on ", dns.host, ":", dns.port, "\n")
  io.stdout:flush()
  while true do sb:step(1000) end
end

return cli_sandbox
