--- A snapshot of every account and region of an AWS organisation at once.
--
--   local manifest, err = organization.take{out = dir, client = fn(service, region, credentials),
--     role = "OrganizationAccountAccessRole", regions = "all" | {"us-east-1", ...}, accounts = {id, ...},
--     home_region = "us-east-1", on_event = fn(event)}
--
-- From the management account (or a delegated administrator) it lists the accounts
-- (Organizations ListAccounts), uses the caller's own credentials for the caller's account and
-- assumes `role` in every other one (STS AssumeRole, one hour: the most a chained role session
-- may last; the session is assumed again 10 minutes before it ends), lists each account's enabled
-- regions (EC2 DescribeRegions) unless `regions` names them, and collects awsnet.snapshot.CALLS
-- (then their follow-up calls) in every account × region at once, in one awsnet.aws.pool: each
-- page follows its previous one as soon as it arrives, at most `per_key` calls at once per account
-- × region × service, with the adaptive retry mode's token bucket per key.
--
-- At most `max_regions` account × regions are collected at once (the others wait their turn);
-- each is written as soon as it is complete (awsnet.snapshot.write_region) and its data dropped,
-- so memory follows what is in flight, not the organisation. A failure (a role
-- that cannot be assumed, a disabled region, access denied) ends that account or account × region
-- only. `<out>/manifest.json` says when the snapshot was taken and by whom, the organisation, the
-- accounts and regions with their status, the call counts, and every failure with its AWS code;
-- awsnet.reach.load reads it and lists what failed in `model.skipped` and the traces' assumptions.
-- After SIGINT or SIGTERM the calls stop, what was complete stays on disk and the manifest says
-- `interrupted`.
--
-- Events (`on_event`): {event = "account", account, status ("assumed", "failed", "skipped")},
-- {event = "region", account, region, status ("complete", "failed"), calls}, and every half second
-- {event = "progress", accounts_done, accounts, regions_done, regions, calls, retries, throttles,
-- errors, elapsed, eta}.
-- @module awsnet.snapshot.organization
local core = require "awsnet.core"
local errors = require "awsnet.errors"
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
local pool_mod = require "awsnet.aws.pool"
local snapshot = require "awsnet.snapshot"

local organization = {}

--- The role AWS Organizations creates in the accounts it makes.
organization.DEFAULT_ROLE = "OrganizationAccountAccessRole"

-- A role session assumed with role chaining lasts at most one hour (AWS's limit); one assumed with
-- long-term keys could last longer, but the snapshot asks for no more than it needs.
local SESSION_SECONDS = 3600
local REFRESH_BEFORE = 600

-- The codes of an endpoint that does not offer an operation: the snapshot has no such data and
-- says so (NotCollected), as awsnet.snapshot does.
local UNSUPPORTED = { InvalidAction = true, UnknownOperationException = true, UnsupportedOperation = true }

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

local function failure(account, region, err)
  return { account = account, region = region, operation = err.op, code = err.code,
    message = err.message, status = err.status }
end

-- Credentials of an assumed role, assumed again before they end: the first call that asks for
-- them within `refresh_before` of the end starts a new AssumeRole and gets the current ones
-- meanwhile (still valid for minutes). A session is not renewed twice within a minute (a clock far
-- off, or sessions shorter than refresh_before, would otherwise renew it on every call).
local function role_provider(run, account, creds)
  local provider = { creds = creds, refreshing = false }
  function provider.get(self)
    local now = run.clock()
    local left = (self.creds.expiration or math.huge) - now
    if left < run.refresh_before and not self.refreshing and (not self.renewed or now - self.renewed >= 60) then
      self.refreshing = true
      run.assume(account, function(fresh)
        self.refreshing, self.renewed = false, run.clock()
        if fresh then self.creds = fresh end
      end)
    end
    return self.creds
  end
  return provider
end

-- The items of a call's pages under `key` (the page itself without a key).
local function collector(key)
  local items = jsoncodec.array()
  return items, function(page)
    if key then
      for _, item in ipairs(page[key] or {}) do items[#items + 1] = item end
    else
      items[#items + 1] = page
    end
  end
end

local admit

-- Collects one account x region, then writes it (`rec` is its manifest record).
local function collect_region(run, acct, region, provider, rec)
  local clients = {}
  local function client(service)
    clients[service] = clients[service] or run.client(service, region, provider)
    return clients[service]
  end
  local data = { VpcAttributes = {}, TransitGatewayRoutes = {}, TransitGatewayPropagations = {} }
  local not_collected = {}
  local function finished()
    if rec.status == "failed" then
      run.event { event = "region", account = acct.id, region = region, status = "failed", calls = rec.calls }
    else
      if #not_collected > 0 then data.NotCollected = not_collected end
      local entry, err = snapshot.write_region(run.out, acct.id, region, data)
      if not entry then
        rec.status = "failed"
        run.failures[#run.failures + 1] = failure(acct.id, region, err)
      else
        rec.status, rec.counts = "complete", entry.counts
        for _, n in ipairs(entry.redacted) do run.redacted[#run.redacted + 1] = acct.id .. " " .. region .. " " .. n end
      end
      run.event { event = "region", account = acct.id, region = region, status = rec.status, calls = rec.calls }
    end
    data = nil
    run.regions_done = run.regions_done + 1
    acct.pending = acct.pending - 1
    if acct.pending == 0 then run.accounts_done = run.accounts_done + 1 end
    run.active_regions = run.active_regions - 1
    admit(run)
  end
  -- each call: its pages, items gathered; `store(items)` when it is done; `after()` when all are
  local function run_calls(calls, after)
    local left = #calls
    if left == 0 then return after() end
    for _, c in ipairs(calls) do
      local items, add = collector(c.result_key)
      run.pool:pages(c.client, c.op, c.params, { key = acct.id .. "/" .. region .. "/" .. c.client.service,
        page = function(page) rec.calls = rec.calls + 1; add(page) end,
        done = function(err)
          if err then
            rec.calls = rec.calls + 1
            if UNSUPPORTED[err.code] then
              not_collected[#not_collected + 1] = { Key = c.file_key,
                Reason = c.client.service .. ":" .. c.op .. ": " .. err.code }
            elseif rec.status ~= "failed" then
              rec.status = "failed"
              run.failures[#run.failures + 1] = failure(acct.id, region, err)
            end
          elseif rec.status ~= "failed" then
            c.store(items)
          end
          left = left - 1
          if left == 0 then after() end
        end })
    end
  end
  local first = {}
  for _, c in ipairs(snapshot.CALLS) do
    first[#first + 1] = { client = client(c[1]), op = c[2], params = {}, result_key = c[3], file_key = c[3],
      store = function(items) data[c[3]] = items end }
  end
  run_calls(first, function()
    if rec.status == "failed" then return finished() end
    for _, key in ipairs({ "Vpcs", "TransitGatewayRouteTables" }) do data[key] = data[key] or {} end
    local follow = {}
    for _, c in ipairs(snapshot.follow_up_calls(client("ec2"), data)) do
      follow[#follow + 1] = { client = c[1], op = c[2], params = c[3], result_key = c[4], file_key = c[5],
        store = function(items)
          local list = data[c[5]]
          list[#list + 1] = c[6](items)
        end }
    end
    run_calls(follow, finished)
  end)
end

-- Starts the account x regions waiting, while fewer than run.max_regions are collected at once:
-- what is in memory follows that number, not the organisation's size.
function admit(run)
  while run.active_regions < run.max_regions and run.region_head <= #run.region_queue do
    local q = run.region_queue[run.region_head]
    run.region_queue[run.region_head] = false
    run.region_head = run.region_head + 1
    run.active_regions = run.active_regions + 1
    collect_region(run, q.acct, q.region, q.provider, q.rec)
  end
end

local function start_region(run, acct, region, provider)
  local rec = { account = acct.id, region = region, status = "running", calls = 0 }
  acct.regions[region] = rec
  run.regions_total = run.regions_total + 1
  run.region_queue[#run.region_queue + 1] = { acct = acct, region = region, provider = provider, rec = rec }
  admit(run)
end

local function start_regions(run, acct, provider)
  local function go(regions)
    acct.pending = #regions
    if #regions == 0 then run.accounts_done = run.accounts_done + 1 end
    for _, region in ipairs(regions) do start_region(run, acct, region, provider) end
  end
  if run.regions ~= "all" then return go(run.regions) end
  -- the account's enabled regions (DescribeRegions lists only those without AllRegions)
  run.pool:call(run.client("ec2", run.home_region, provider), "DescribeRegions", {}, {
    key = acct.id .. "/" .. run.home_region .. "/ec2", priority = true,
    done = function(result, err)
      if not result then
        acct.status = "failed"
        run.failures[#run.failures + 1] = failure(acct.id, nil, err)
        run.accounts_done = run.accounts_done + 1
        return
      end
      local regions = {}
      for _, r in ipairs(result.Regions or {}) do
        if r.OptInStatus ~= "not-opted-in" then regions[#regions + 1] = r.RegionName end
      end
      table.sort(regions)
      go(regions)
    end })
end

local function start_account(run, a)
  local acct = { id = a.Id, name = a.Name, status = "pending", regions = {}, pending = 0 }
  run.accounts[#run.accounts + 1] = acct
  if a.Status ~= "ACTIVE" then
    acct.status = "skipped"
    acct.reason = "status " .. tostring(a.Status)
    run.accounts_done = run.accounts_done + 1
    run.event { event = "account", account = acct.id, status = "skipped" }
    return
  end
  if acct.id == run.caller.Account then
    acct.status = "caller"
    run.event { event = "account", account = acct.id, status = "caller" }
    return start_regions(run, acct, nil)
  end
  run.assume(acct.id, function(creds, err)
    if not creds then
      acct.status = "failed"
      run.failures[#run.failures + 1] = failure(acct.id, nil, err)
      run.accounts_done = run.accounts_done + 1
      run.event { event = "account", account = acct.id, status = "failed", code = err.code }
      return
    end
    acct.status = "assumed"
    run.event { event = "account", account = acct.id, status = "assumed" }
    start_regions(run, acct, role_provider(run, acct.id, creds))
  end)
end

local function manifest_of(run, interrupted)
  local accounts = {}
  for _, acct in ipairs(run.accounts) do
    local regions = {}
    for _, rec in pairs(acct.regions) do
      regions[#regions + 1] = { region = rec.region, status = rec.status == "running" and "incomplete" or rec.status,
        calls = rec.calls, counts = rec.counts }
    end
    table.sort(regions, function(x, y) return x.region < y.region end)
    accounts[#accounts + 1] = { id = acct.id, name = acct.name, status = acct.status, reason = acct.reason,
      regions = jsoncodec.array(regions) }
  end
  local stats = run.pool.stats
  local fails = {}
  for _, f in ipairs(run.failures) do fails[#fails + 1] = f end
  return {
    format = "awsnet-snapshot-manifest/1", taken_at = iso(run.started_at), finished_at = iso(os.time()),
    by = run.caller and run.caller.Arn or nil, organization = run.org, role = run.role,
    regions = run.regions == "all" and "all" or jsoncodec.array(run.regions),
    accounts = jsoncodec.array(accounts), interrupted = interrupted or false,
    calls = { total = stats.calls, retries = stats.retries, throttles = stats.throttles, errors = stats.errors },
    failures = jsoncodec.array(fails), redacted = jsoncodec.array(run.redacted),
  }
end

local function write_manifest(run, manifest)
  local text = require("awsnet.aws").json(manifest)
  local ok, err = core.file.write_atomic(run.out .. "/manifest.json", text, tonumber("644", 8))
  if not ok then return errors.fail("snapshot", "cannot write " .. run.out .. "/manifest.json: " .. tostring(err)) end
  return true
end

--- Takes the organisation's snapshot (see the module comment).
-- @tparam table opts {out, client = function(service, region, credentials provider or nil) -> an
-- awsnet.aws client, role, regions ("all" or a list), accounts (ids to keep, default all),
-- home_region (default us-east-1: Organizations, STS and DescribeRegions), per_key (default 4),
-- max_connections (default 64), max_regions (account x regions collected at once, default 32),
-- on_event, clock (default os.time), refresh_before (seconds, default 600)}
-- @treturn table the manifest (as written to manifest.json), or nil, err: the organisation could
-- not be listed, the folder not written, or "interrupted" (with err.manifest, also written)
-- @raise without out or client
function organization.take(opts)
  assert(type(opts) == "table" and type(opts.out) == "string" and type(opts.client) == "function",
    "organization.take{out=, client=} expected")
  local ok, err = require("awsnet.svc.process").mkdir(opts.out)
  if not ok then return nil, err end
  local clock = core.httpd.monotonic
  local run = {
    out = opts.out, client = opts.client, role = opts.role or organization.DEFAULT_ROLE,
    regions = opts.regions or "all", home_region = opts.home_region or "us-east-1",
    pool = pool_mod.new { per_key = opts.per_key or 4, max_connections = opts.max_connections or 64 },
    accounts = {}, failures = {}, redacted = {}, started_at = os.time(), clock = opts.clock or os.time,
    refresh_before = opts.refresh_before or REFRESH_BEFORE,
    accounts_total = 0, accounts_done = 0, regions_total = 0, regions_done = 0,
    max_regions = opts.max_regions or 32, active_regions = 0, region_queue = {}, region_head = 1,
  }
  local t0 = clock()
  local on_event = opts.on_event or function() end
  function run.event(e) on_event(e) end
  local sts = run.client("sts", run.home_region, nil)
  -- AssumeRole of `role` in `account` with the caller's credentials; then(creds) or then(nil, err)
  function run.assume(account, after)
    local arn = string.format("arn:aws:iam::%s:role/%s", account, run.role)
    run.pool:call(sts, "AssumeRole", { RoleArn = arn, RoleSessionName = "awsnet-snapshot",
      DurationSeconds = SESSION_SECONDS }, { key = "caller/" .. run.home_region .. "/sts", priority = true,
      done = function(result, aerr)
        if not result then return after(nil, aerr) end
        local c = result.Credentials
        after({ access_key_id = c.AccessKeyId, secret_access_key = c.SecretAccessKey, session_token = c.SessionToken,
          expiration = require("awsnet.aws.time").parse_iso8601(c.Expiration), source = "assume-role " .. arn })
      end })
  end
  local keep
  if opts.accounts then
    keep = {}
    for _, id in ipairs(opts.accounts) do keep[id] = true end
  end
  local fatal
  local orgs = run.client("organizations", run.home_region, nil)
  run.pool:call(sts, "GetCallerIdentity", {}, { key = "caller/" .. run.home_region .. "/sts", priority = true,
    done = function(who, werr)
    if not who then fatal = werr; return end
    run.caller = who
    run.pool:call(orgs, "DescribeOrganization", {}, { key = "caller/organizations", done = function(o)
      if o and o.Organization then
        run.org = { id = o.Organization.Id, management = o.Organization.MasterAccountId }
      end
    end })
    run.pool:pages(orgs, "ListAccounts", {}, { key = "caller/organizations", priority = true,
      page = function(page)
        for _, a in ipairs(page.Accounts or {}) do
          if not keep or keep[a.Id] then
            run.accounts_total = run.accounts_total + 1
            start_account(run, a)
          end
        end
      end,
      done = function(lerr)
        if lerr then
          fatal = lerr
          run.failures[#run.failures + 1] = failure(nil, nil, lerr)
        end
      end })
  end })
  local last = -1
  local function progress()
    local elapsed = clock() - t0
    local eta
    if run.regions_done > 0 then
      local per_region = run.regions_total / math.max(1, run.accounts_total - #run.failures)
      local expected = math.max(run.regions_total, math.floor(per_region * run.accounts_total + 0.5))
      eta = elapsed / run.regions_done * (expected - run.regions_done)
    end
    local s = run.pool.stats
    if s.calls ~= last then
      last = s.calls
      on_event { event = "progress", accounts_done = run.accounts_done, accounts = run.accounts_total,
        regions_done = run.regions_done, regions = run.regions_total, calls = s.calls, retries = s.retries,
        throttles = s.throttles, errors = s.errors, elapsed = elapsed, eta = eta }
    end
  end
  run.pool:every(0.5, progress)
  local done, rerr = run.pool:run()
  progress()   -- the last figures, once more if they changed
  run.pool:close()   -- its connections now, not when the collector gets to it
  os.remove(run.out .. "/.partial")   -- empty once every folder is in place (else kept: a killed run's)
  if fatal and #run.accounts == 0 then return nil, fatal end
  local manifest = manifest_of(run, not done)
  ok, err = write_manifest(run, manifest)
  if not ok then return nil, err end
  if not done then
    rerr.manifest = manifest
    return nil, rerr
  end
  return manifest
end

return organization
