--- `awsnet snapshot --profile P --out DIR [--region R] [--endpoint URL]`: saves the describe-*
-- JSON of one account (several: --profile P1,P2) in the folder layout `awsnet trace` reads.
-- @module awsnet.cli.snapshot
local args = require "awsnet.cli.args"

local cli_snapshot = {}

cli_snapshot.summary = "Save the describe-* JSON of one or more accounts for trace."
cli_snapshot.epilog = "Without --profile the credential chain picks the account (environment, AWS_PROFILE, ...).\n" ..
  "Exit status: 0 saved; 2 an error (credentials, an AWS call, the folder)."

--- Adds the command's arguments.
-- @tparam table command the argparse command
function cli_snapshot.configure(command)
  command:option("--profile", "Profiles of ~/.aws/config, comma-separated: one account each.", nil, args.list)
  command:option("--out", "The snapshot folder to write."):count(1)
  command:option("--region", "The region (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1).")
  command:option("--endpoint", "Send every call to this URL (a sandbox).")
end

--- Runs the command on parsed arguments.
-- @tparam table opts the parsed arguments
-- @treturn integer exit status
function cli_snapshot.run(opts)
  local aws = require "awsnet.aws"
  local snapshot = require "awsnet.snapshot"
  local region = opts.region or os.getenv("AWS_REGION") or os.getenv("AWS_DEFAULT_REGION") or "us-east-1"
  -- one account per profile; with none, the credential chain decides (environment, AWS_PROFILE, ...)
  local profiles = opts.profile or {}
  if #profiles == 0 then profiles[1] = false end
  local accounts = {}
  for _, profile in ipairs(profiles) do
    profile = profile or nil
    local clients = {}
    accounts[#accounts + 1] = { client = function(service)
      if not clients[service] then
        clients[service] = assert(aws.client(service, { region = region, profile = profile, endpoint = opts.endpoint }))
      end
      return clients[service]
    end }
  end
  local snap, err = snapshot.take{ out = opts.out, region = region, accounts = accounts, aws = aws }
  if not snap then
    io.stderr:write("awsnet snapshot: ", tostring(err), "\n")
    return 2
  end
  for _, a in ipairs(snap.accounts) do
    local c = a.counts
    print(string.format("account %s %s: %d VPCs, %d subnets, %d route tables, %d security groups, %d TGWs, " ..
      "%d DB instances, %d functions -> %s", a.id, a.region, c.Vpcs, c.Subnets, c.RouteTables, c.SecurityGroups,
      c.TransitGateways, c.DBInstances, c.Functions, a.path))
  end
  if #snap.redacted > 0 then
    print(string.format("%d secret value(s) redacted (Lambda environment variables): see REDACTED.txt",
      #snap.redacted))
  end
  return 0
end

return cli_snapshot
