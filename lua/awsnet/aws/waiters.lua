--- Waiters: the states `client:wait(name, params, opts)` polls for.
-- Each waiter: the operation to poll, `states(result)` -> the list of states it reports,
-- `success` and `failure` state sets, `match` = "all" (every reported state must be a success;
-- the default) or "any", `empty` = "success" when an empty list means done (deleted), and
-- `not_found` = error codes that mean done (deleted), `delay` = seconds between polls.
-- @module awsnet.aws.waiters
local waiters = {}

local function field_of(list_name, state_name)
  return function(result)
    local out = {}
    for i, item in ipairs(type(result[list_name]) == "table" and result[list_name] or {}) do
      out[i] = type(item) == "table" and item[state_name] or nil
    end
    return out
  end
end

local function single(name)
  return function(result) return { result[name] } end
end

local function set(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local ATTACHMENT_FAILED = set({ "failed", "failing", "rejected", "rejecting", "deleted", "deleting" })

waiters.ec2 = {
  VpcAvailable = { op = "DescribeVpcs", states = field_of("vpcSet", "state"), success = set({ "available" }), delay = 5 },
  TransitGatewayAvailable = { op = "DescribeTransitGateways", states = field_of("transitGatewaySet", "state"),
    success = set({ "available" }), failure = set({ "deleted", "deleting", "failed" }), delay = 10 },
  TransitGatewayDeleted = { op = "DescribeTransitGateways", states = field_of("transitGatewaySet", "state"),
    success = set({ "deleted" }), empty = "success", not_found = set({ "InvalidTransitGatewayID.NotFound" }), delay = 10 },
  TransitGatewayAttachmentAvailable = { op = "DescribeTransitGatewayAttachments",
    states = field_of("transitGatewayAttachments", "state"), success = set({ "available" }),
    failure = ATTACHMENT_FAILED, delay = 10 },
  -- the owner of a shared TGW sees a cross-account attachment wait for its acceptance
  TransitGatewayAttachmentPendingAcceptance = { op = "DescribeTransitGatewayAttachments",
    states = field_of("transitGatewayAttachments", "state"), success = set({ "pendingAcceptance", "available" }),
    failure = ATTACHMENT_FAILED, delay = 10 },
  TransitGatewayAttachmentDeleted = { op = "DescribeTransitGatewayAttachments",
    states = field_of("transitGatewayAttachments", "state"), success = set({ "deleted" }), empty = "success",
    not_found = set({ "InvalidTransitGatewayAttachmentID.NotFound" }), delay = 10 },
}

waiters.ram = {
  -- in the receiving account: an invitation has arrived
  ResourceShareInvitationPending = { op = "GetResourceShareInvitations",
    states = field_of("resourceShareInvitations", "status"), success = set({ "PENDING", "ACCEPTED" }), match = "any",
    delay = 5 },
  ResourceShareInvitationAccepted = { op = "GetResourceShareInvitations",
    states = field_of("resourceShareInvitations", "status"), success = set({ "ACCEPTED" }),
    failure = set({ "REJECTED", "EXPIRED" }), delay = 5 },
  ResourceShareActive = { op = "GetResourceShares", states = field_of("resourceShares", "status"),
    success = set({ "ACTIVE" }), failure = set({ "FAILED", "DELETED", "DELETING" }), delay = 5 },
}

waiters.rds = {
  DBInstanceAvailable = { op = "DescribeDBInstances", states = field_of("DBInstances", "DBInstanceStatus"),
    success = set({ "available" }),
    failure = set({ "deleted", "deleting", "failed", "incompatible-restore", "incompatible-parameters" }), delay = 30 },
  DBInstanceDeleted = { op = "DescribeDBInstances", states = field_of("DBInstances", "DBInstanceStatus"),
    success = set({ "deleted" }), empty = "success", not_found = set({ "DBInstanceNotFound", "DBInstanceNotFoundFault" }),
    delay = 30 },
}

waiters.lambda = {
  FunctionActive = { op = "GetFunctionConfiguration", states = single("State"), success = set({ "Active" }),
    failure = set({ "Failed" }), delay = 5 },
  FunctionUpdated = { op = "GetFunctionConfiguration", states = single("LastUpdateStatus"),
    success = set({ "Successful" }), failure = set({ "Failed" }), delay = 5 },
  FunctionDeleted = { op = "GetFunction", states = function() return { "exists" } end, success = {},
    not_found = set({ "ResourceNotFoundException" }), delay = 5 },
}

--- "success", "failure" (with the state) or "retry" for a waiter's result.
-- @tparam table w the waiter
-- @tparam table result the result of its operation
-- @treturn string "success", "failure" or "retry"
-- @return the failing state, with "failure"
function waiters.judge(w, result)
  local states = w.states(result)
  if #states == 0 then return w.empty == "success" and "success" or "retry" end
  local all, any = true, false
  for _, s in ipairs(states) do
    if w.failure and w.failure[s] then return "failure", s end
    if w.success[s] then any = true else all = false end
  end
  if (w.match == "any" and any) or (w.match ~= "any" and all) then return "success" end
  return "retry"
end

return waiters
