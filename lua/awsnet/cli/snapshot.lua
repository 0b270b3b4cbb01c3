--- `awsnet snapshot --profile P --out DIR [--region R] [--endpoint URL]`: saves the describe-*
-- JSON of one account (several: --profile P1,P2) in the folder layout `awsnet trace` reads.
-- With `--resolver ADDR`, where each database's endpoint resolves through that DNS server too.
-- `awsnet snapshot --organization [--role NAME] [--regions all|r1,r2] [--accounts id,...] --out DIR`:
-- every account and region of the caller's organisation at once (awsnet.snapshot.organization),
-- with a progress line on a terminal, or `--json` events on stdout, and manifest.json.
-- @module awsnet.cli.snapshot
local args = require "awsnet.cli.args"

local cli_snapshot = {}

cli_snapshot.summary = "Save the describe-* JSON of one or more accounts for trace."
cli_snapshot.epilog = "Without --profile the credential chain picks the account (environment, AWS_PROFILE, ...).\n" ..
  "With --organization: from the management (or delegated administrator) account, --role in each member.\n" ..
  "Exit status: 0 saved; 1 saved, with failed accounts or regions (manifest.json); 2 an error (credentials,\n" ..
  "an AWS call, the folder); 130/143 stopped (whole account x region folders kept)."

--- Adds the command's arguments.
-- @tparam table command the argparse command
function cli_snapshot.configure(command)
  command:option("--profile", "Profiles of ~/.aws/config, comma-separated: one account each.", nil, args.list)
  command:option("--out", "The snapshot folder to write."):count(1)
  command:option("--region", "The region (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1).")
  command:option("--endpoint", "Send every call to this URL (a sandbox).")
  local resolver = command:option("--resolver", "Resolve each database's endpoint through this DNS server " ..
    "(host[:port]) and save the answers: trace reaches the database at the ENI holding that address.")
  local organization = command:flag("--organization", "Every account and region of the organisation (AWS Organizations).")
  -- (each account's databases would need its own VPC's resolver)
  command:mutex(organization, resolver)
  command:option("--role", "With --organization: the role assumed in member accounts.",
    "OrganizationAccountAccessRole")
  command:option("--regions", "With --organization: 'all' (each account's enabled regions) or r1,r2.", "all")
  command:option("--accounts", "With --organization: only these account ids.", nil, args.accounts)
  command:flag("--json", "With --organization: progress as JSON events on stdout (one per line).")
end

-- The progress printer of --organization: one line rewritten on a terminal, JSON lines with --json.
local function progress_printer(json)
  local cjson = require "cjson"
  local tty = not json and os.execute("[ -t 2 ]")
  return function(e)
    if json then
      io.stdout:write(cjson.encode(e), "\n")
      io.stdout:flush()
    elseif tty and e.event == "progress" then
      io.stderr:write(string.format("\r\27[Kaccounts %d/%d  regions %d/%d  calls %d  retries %d  errors %d  %.0f s%s",
        e.accounts_done, e.accounts, e.regions_done, e.regions, e.calls, e.retries, e.errors, e.elapsed,
        e.eta and string.format("  ETA %.0f s", e.eta) or ""))
      io.stderr:flush()
    end
  end
end

local function run_organization(opts)
  local aws = require "awsnet.aws"
  local credentials = require "awsnet.credentials"
  local organization = require "awsnet.snapshot.organization"
  local home = opts.region or os.getenv("AWS_REGION") or os.getenv("AWS_DEFAULT_REGION") or "us-east-1"
  local caller = credentials.provider { profile = opts.profile and opts.profile[1] or nil }
  local regions = opts.regions
  if regions ~= "all" then regions = args.list(regions) end
  local manifest, err = organization.take {
    out = opts.out, role = opts.role, regions = regions, accounts = opts.accounts, home_region = home,
    on_event = progress_printer(opts.json),
    client = function(service, region, provider)
      -- throttles are retried more than the default 3 attempts: a large organisation is collected at
      -- AWS's pace, the token bucket slowing each account x region x service that is throttled
      return assert(aws.client(service, { region = region, credentials = provider or caller, endpoint = opts.endpoint,
        max_attempts = not os.getenv("AWS_MAX_ATTEMPTS") and 10 or nil }))
    end,
  }
  if not opts.json then io.stderr:write("\n") end
  manifest = manifest or (err and err.manifest)
  if not manifest then
    io.stderr:write("awsnet snapshot: ", tostring(err), "\n")
    return 2
  end
  local complete, total = 0, 0
  for _, a in ipairs(manifest.accounts) do
    for _, r in ipairs(a.regions) do
      total = total + 1
      if r.status == "complete" then complete = complete + 1 end
    end
  end
  if not opts.json then
    print(string.format("organisation %s: %d accounts, %d/%d account x region complete, %d calls, %d retries, " ..
      "%d failures -> %s/manifest.json", manifest.organization and manifest.organization.id or "?", #manifest.accounts,
      complete, total, manifest.calls.total, manifest.calls.retries, #manifest.failures, opts.out))
    for _, f in ipairs(manifest.failures) do
      print(string.format("  failed: account %s%s %s: %s", f.account or "-", f.region and (" " .. f.region) or "",
        tostring(f.operation), tostring(f.code)))
    end
  end
  if err then return 2 end
  return #manifest.failures > 0 and 1 or 0
end

--- Runs the command on parsed arguments.
-- @tparam table opts the parsed arguments
-- @treturn integer exit status
function cli_snapshot.run(opts)
  if opts.organization then return run_organization(opts) end
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
  local snap, err = snapshot.take{ out = opts.out, region = region, accounts = accounts, aws = aws,
    resolver = opts.resolver }
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
  for _, u in ipairs(snap.unresolved) do io.stderr:write("awsnet snapshot: ", u, "\n") end
  if #snap.redacted > 0 then
    print(string.format("%d secret value(s) redacted (Lambda environment variables): see REDACTED.txt",
      #snap.redacted))
  end
  return 0
end

return cli_snapshot
