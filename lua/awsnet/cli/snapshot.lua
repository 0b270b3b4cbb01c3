--- `awsnet snapshot --profile P --out DIR [--region R] [--endpoint URL]`: saves the describe-*
-- JSON of one account (several: --profile P1,P2) in the folder layout `awsnet trace` reads.
local cli_scenario = require "awsnet.cli.scenario"

local cli_snapshot = {}

local USAGE = "usage: awsnet snapshot [--profile P[,P2...]] --out DIR [--region R] [--endpoint URL]\n"

function cli_snapshot.run(argv)
  local opts = cli_scenario.parse(argv, { help = true })
  if not opts or opts.help or not opts.out then
    io.stderr:write(USAGE)
    return opts and opts.help and 0 or 2
  end
  local aws = require "awsnet.aws"
  local snapshot = require "awsnet.snapshot"
  local region = opts.region or os.getenv("AWS_REGION") or os.getenv("AWS_DEFAULT_REGION") or "us-east-1"
  -- one account per profile; with none, the credential chain decides (environment, AWS_PROFILE, ...)
  local profiles = {}
  for p in (opts.profile or ""):gmatch("[^,]+") do profiles[#profiles + 1] = p end
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
    return 1
  end
  for _, a in ipairs(snap.accounts) do
    local c = a.counts
    print(string.format("account %s %s: %d VPCs, %d subnets, %d route tables, %d security groups, %d TGWs, " ..
      "%d DB instances, %d functions -> %s", a.id, a.region, c.Vpcs, c.Subnets, c.RouteTables, c.SecurityGroups,
      c.TransitGateways, c.DBInstances, c.Functions, a.path))
  end
  return 0
end

return cli_snapshot
