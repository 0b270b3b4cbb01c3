--- Resource states and what the evaluator takes each one to mean, in one table.
-- Each entry says whether the resource carries traffic in that state (`works`), whether the
-- verdict rests on an assumption the result must state (`assumed`), and where the meaning comes
-- from (`source`: an AWS page, or "not documented" when no AWS page says what the state does to
-- traffic). A key ending in `*` matches every state starting with what comes before it.
-- A state the table does not list is looked up in the kind's `other` entry.
-- @module awsnet.reach.states
local states = {}

local RDS_STATUS = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html"
  .. "#Overview.DBInstance.Status"
local TGW_API = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TransitGateway.html"
local ATT_API = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TransitGatewayVpcAttachment.html"

--- The table: `states.TABLE[kind][state] = {works, assumed, source}`; kinds "rds" (DBInstanceStatus),
-- "tgw" (a transit gateway's State) and "attachment" (a TGW attachment's State).
states.TABLE = {
  rds = {
    -- the instance serves connections while RDS works on it
    available = { works = true, source = RDS_STATUS },
    ["backing-up"] = { works = true, source = RDS_STATUS },
    ["storage-optimization"] = { works = true, source = RDS_STATUS .. " (\"fully operational\")" },
    ["configuring-*"] = { works = true, source = RDS_STATUS .. " (configuring-enhanced-monitoring, "
      .. "configuring-iam-database-auth, configuring-log-exports)" },
    -- the instance does not serve
    stopped = { works = false, source = RDS_STATUS },
    stopping = { works = false, source = RDS_STATUS },
    starting = { works = false, source = RDS_STATUS },
    creating = { works = false, source = RDS_STATUS },
    deleting = { works = false, source = RDS_STATUS },
    failed = { works = false, source = RDS_STATUS },
    rebooting = { works = false, source = RDS_STATUS },
    ["inaccessible-encryption-credentials*"] = { works = false, source = RDS_STATUS },
    ["incompatible-*"] = { works = false, source = RDS_STATUS },
    ["restore-error"] = { works = false, source = RDS_STATUS },
    -- modifying, maintenance, upgrading, renaming, storage-full...: whether connections are served
    -- depends on what is being done
    other = { works = true, assumed = true, source = "not documented" },
  },
  tgw = {
    available = { works = true, source = TGW_API },
    modifying = { works = true, assumed = true, source = "not documented (state listed in " .. TGW_API .. ")" },
    pending = { works = false, source = TGW_API },
    deleting = { works = false, source = TGW_API },
    deleted = { works = false, source = TGW_API },
    other = { works = false, source = "not documented" },
  },
  attachment = {
    available = { works = true, source = ATT_API },
    modifying = { works = true, assumed = true, source = "not documented (state listed in " .. ATT_API .. ")" },
    initiating = { works = false, source = ATT_API },
    initiatingRequest = { works = false, source = ATT_API },
    pendingAcceptance = { works = false, source = ATT_API },
    rollingBack = { works = false, source = ATT_API },
    pending = { works = false, source = ATT_API },
    deleting = { works = false, source = ATT_API },
    deleted = { works = false, source = ATT_API },
    failed = { works = false, source = ATT_API },
    rejected = { works = false, source = ATT_API },
    rejecting = { works = false, source = ATT_API },
    failing = { works = false, source = ATT_API },
    other = { works = false, source = "not documented" },
  },
}

local NOUNS = { rds = "serving", tgw = "forwarding", attachment = "forwarding" }

--- What a state means for traffic.
-- @tparam string kind "rds", "tgw" or "attachment"
-- @param state the state as described (nil: not described, taken as the working state)
-- @treturn boolean whether the resource carries traffic
-- @treturn ?string the assumption to state with the verdict, or nil
-- @treturn table the table's entry
-- @raise on an unknown kind
function states.works(kind, state)
  local t = states.TABLE[kind]
  if not t then error("states.works: unknown kind " .. tostring(kind), 2) end
  if state == nil then return true, nil, t.available end
  local e = type(state) == "string" and t[state]
  if not e and type(state) == "string" then
    for key, entry in pairs(t) do
      if key:sub(-1) == "*" and state:sub(1, #key - 1) == key:sub(1, -2) then e = entry break end
    end
  end
  e = e or t.other
  local assumption
  if e.assumed then
    assumption = string.format("state %s taken as %s (%s)", tostring(state), NOUNS[kind], e.source)
  end
  return e.works, assumption, e
end

return states
