--- The `awsnet trace` command: evaluates a path in a snapshot folder (as written by
-- `awsnet snapshot`), hop by hop, forward and return.
-- Usage: `awsnet trace DIR --src X --dst Y --port N`.
-- @module awsnet.cli.trace
local args = require "awsnet.cli.args"

local cli_trace = {}

cli_trace.summary = "Evaluate a path in a snapshot, hop by hop."
cli_trace.epilog = "Exit status: 0 reachable; 1 not reachable (also a source or destination the snapshot " ..
  "does not hold, or a name that does not resolve); 2 usage error or an invalid snapshot."

--- Adds the command's arguments.
-- @tparam table command the argparse command
function cli_trace.configure(command)
  command:argument("dir", "Snapshot folder (holding aws_configs/).")
  command:option("--src", "Source: IP, ENI id, instance id, lambda:<name>, rds:<id> or a DNS name."):count(1)
  command:option("--dst", "Destination, named as the source."):count(1)
  command:option("--port", "Destination port (tcp and udp).", nil, args.port)
  command:option("--protocol", "tcp, udp, icmp, icmpv6, all or an IP protocol number.", "tcp", args.protocol)
  command:option("--family", "ipv4 or ipv6: which address of a dual-stack source and destination (an IPv6 "
    .. "address given as --src or --dst implies ipv6).")
    :choices{ "ipv4", "ipv6" }
  command:option("--icmp-type", "ICMP or ICMPv6 type (default: the echo request).", nil, args.byte)
  command:option("--direction", "both: forward and return; forward: forward only.", "both")
    :choices{ "both", "forward" }
  command:option("--resolver", "DNS server (IP) that resolves DNS names.")
  command:option("--src-port", "The client's source port (default: its kind's ephemeral range).", nil, args.port)
  command:flag("--json", "Print the result as JSON.")
end

-- Verdicts that are answers about the network (nothing delivered), not errors of the call.
local NOT_DELIVERED = { unknown_endpoint = true, nxdomain = true, nodata = true }

--- Runs the command on parsed arguments.
-- @tparam table a the parsed arguments
-- @treturn integer exit status
function cli_trace.run(a)
  if (a.protocol == "tcp" or a.protocol == "udp" or a.protocol == 6 or a.protocol == 17) and not a.port then
    io.stderr:write("awsnet trace: --port is required for tcp and udp\n")
    return 2
  end
  local reach = require "awsnet.reach"
  local model, err = reach.load(a.dir)
  if not model then
    io.stderr:write("awsnet trace: ", tostring(err), "\n")
    return 2
  end
  local ok, result
  ok, result, err = pcall(model.trace, model, { src = a.src, dst = a.dst, protocol = a.protocol, port = a.port,
    src_port = a.src_port, direction = a.direction, resolver = a.resolver, family = a.family, icmp_type = a.icmp_type })
  if not ok then -- the evaluator refused the question itself
    io.stderr:write("awsnet trace: ", tostring(result):gsub("^[^:]*:%d+: ", ""), "\n")
    return 2
  end
  if not result then
    io.stderr:write("awsnet trace: ", tostring(err), "\n")
    if err.code == "unknown_endpoint" then
      local names = model:endpoints()
      local shown = table.concat(names, " ", 1, math.min(#names, 12))
      io.stderr:write("  the snapshot knows: ", #names > 0 and shown or "no endpoint",
        #names > 12 and string.format(" ... (%d in all)", #names) or "", "\n")
    end
    return NOT_DELIVERED[err.code] and 1 or 2
  end
  if a.json then
    print(result:json())
  else
    print(tostring(result))
  end
  -- the library's verdict (an address no interface holds is NO_DESTINATION_ENI: not reachable)
  local reachable = result.reachable
  model:close()
  return reachable and 0 or 1
end

return cli_trace
