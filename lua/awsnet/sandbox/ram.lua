--- AWS RAM in the sandbox: resource shares with invitations between accounts. A shared Transit
-- Gateway becomes visible to another account only once that account accepts the invitation.
-- @module awsnet.sandbox.ram
local errors = require "awsnet.errors"
local wire = require "awsnet.sandbox.wire"

local ram = { actions = {} }

--- The handler of each API action: `actions.<Action>(ctx, params)` -> the result table, or nil,
-- err with AWS's error code and HTTP status. `ctx` = {sandbox, state, account, arn, user_id,
-- region, request_id}.
-- @table actions
local A = ram.actions
local array = wire.array

local function fail(code, message, status) return errors.fail(code, message, { status = status or 400 }) end

-- REST-JSON routes: every RAM operation is POST /<lowercase name>, except the DELETE.
local ROUTES = {
  ["POST /createresourceshare"] = "CreateResourceShare", ["POST /associateresourceshare"] = "AssociateResourceShare",
  ["POST /disassociateresourceshare"] = "DisassociateResourceShare", ["POST /getresourceshares"] = "GetResourceShares",
  ["POST /getresourceshareinvitations"] = "GetResourceShareInvitations",
  ["POST /acceptresourceshareinvitation"] = "AcceptResourceShareInvitation",
  ["POST /rejectresourceshareinvitation"] = "RejectResourceShareInvitation",
  ["POST /getresourceshareassociations"] = "GetResourceShareAssociations",
  ["POST /listresources"] = "ListResources", ["DELETE /deleteresourceshare"] = "DeleteResourceShare",
}

--- The action a REST-JSON request names (RAM routes by method and path only).
-- @tparam string method the HTTP method
-- @tparam string path the request path
-- @treturn ?string the action
function ram.route(method, path)
  return ROUTES[method .. " " .. path:lower()]
end

local function uuid(st)
  local h = st:hex(32)
  return string.format("%s-%s-%s-%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(13, 16), h:sub(17, 20), h:sub(21, 32))
end

local RESOURCE_TYPES = { ["transit-gateway"] = "ec2:TransitGateway", subnet = "ec2:Subnet" }

-- The EC2 object an ARN names, when it exists and `account` owns it: type, object.
local function resource_of(ctx, arn)
  local region, account, kind, id = (arn or ""):match("^arn:aws:ec2:([^:]+):(%d+):([%w-]+)/(.+)$")
  if not region then
    return fail("MalformedArnException", "The specified resource ARN " .. tostring(arn) .. " is not valid.")
  end
  local store = ({ ["transit-gateway"] = "tgw", subnet = "subnet" })[kind]
  -- a share is regional: it holds resources of its own region only
  local obj = store and region == ctx.region and ctx.state:get(store, id)
  if not obj or account ~= ctx.account or obj.owner ~= ctx.account or obj.state == "deleted" then
    return fail("UnknownResourceException", "The resource " .. arn .. " does not exist or is not owned by you.")
  end
  return RESOURCE_TYPES[kind], obj
end

local function render_share(sh)
  return {
    resourceShareArn = sh.arn, name = sh.name, owningAccountId = sh.owner, allowExternalPrincipals = sh.allow_external,
    status = sh.status, creationTime = sh.created, lastUpdatedTime = sh.updated, featureSet = "STANDARD",
    tags = array(sh.tags or {}),
  }
end

local function render_invitation(inv, st)
  local sh = st:get("ram_share", inv.share)
  return {
    resourceShareInvitationArn = inv.id, resourceShareName = sh and sh.name, resourceShareArn = inv.share,
    senderAccountId = inv.sender, receiverAccountId = inv.receiver, invitationTimestamp = inv.created, status = inv.status,
  }
end

local function invitation_for(st, share_arn, account)
  return st:list("ram_invitation", function(i) return i.share == share_arn and i.receiver == account end)[1]
end

--- True when `resource_arn` is in an active share whose invitation `account` accepted.
-- @param st the sandbox state
-- @tparam string resource_arn the resource's ARN
-- @tparam string account the account id
-- @treturn boolean
function ram.is_shared_with(st, resource_arn, account)
  for _, sh in ipairs(st:list("ram_share", function(s) return s.status == "ACTIVE" and s.resources[resource_arn] end)) do
    if sh.principals[account] then
      local inv = invitation_for(st, sh.arn, account)
      if inv and inv.status == "ACCEPTED" then return true end
    end
  end
  return false
end

-- Adds principals (12-digit accounts) to a share, inviting each once.
local function add_principals(ctx, sh, principals, associations)
  for _, who in ipairs(principals or {}) do
    if type(who) ~= "string" or not who:match("^%d%d%d%d%d%d%d%d%d%d%d%d$") then
      return fail("InvalidParameterException", "Principal " .. tostring(who) .. " is not a valid account id in the sandbox")
    end
    if who == ctx.account then return fail("InvalidParameterException", "The resource share owner cannot be a principal.") end
    if not sh.allow_external and not ctx.state:account(who) then
      return fail("InvalidParameterException", "Principal " .. who .. " is outside your organization.")
    end
    if not sh.principals[who] then
      sh.principals[who] = true
      if not invitation_for(ctx.state, sh.arn, who) then
        ctx.state:put("ram_invitation", {
          id = string.format("arn:aws:ram:%s:%s:resource-share-invitation/%s", ctx.region, ctx.account, uuid(ctx.state)),
          share = sh.arn, sender = ctx.account, receiver = who, status = "PENDING", created = os.time(),
        })
      end
    end
    associations[#associations + 1] = { resourceShareArn = sh.arn, resourceShareName = sh.name, associatedEntity = who,
      associationType = "PRINCIPAL", status = "ASSOCIATED", external = true }
  end
  return true
end

local function add_resources(ctx, sh, arns, associations)
  for _, arn in ipairs(arns or {}) do
    local rtype, err = resource_of(ctx, arn)
    if not rtype then return nil, err end
    sh.resources[arn] = rtype
    associations[#associations + 1] = { resourceShareArn = sh.arn, resourceShareName = sh.name, associatedEntity = arn,
      associationType = "RESOURCE", status = "ASSOCIATED" }
  end
  return true
end

local function owned_share(ctx, arn)
  local sh = ctx.state:get("ram_share", arn or "")
  if not sh or sh.owner ~= ctx.account then
    return fail("UnknownResourceException", "ResourceShare " .. tostring(arn) .. " could not be found.")
  end
  return sh
end

function A.CreateResourceShare(ctx, p)
  if type(p.name) ~= "string" or p.name == "" then
    return fail("MissingRequiredParameterException", "The parameter name is required.")
  end
  if p.clientToken then
    local function same_token(s) return s.owner == ctx.account and s.client_token == p.clientToken end
    local earlier = ctx.state:list("ram_share", same_token)[1]
    if earlier then return { resourceShare = render_share(earlier), clientToken = p.clientToken } end
  end
  local id = uuid(ctx.state)
  local sh = {
    id = string.format("arn:aws:ram:%s:%s:resource-share/%s", ctx.region, ctx.account, id), owner = ctx.account,
    name = p.name, allow_external = p.allowExternalPrincipals ~= false, status = "ACTIVE", created = os.time(),
    resources = {}, principals = {}, tags = p.tags, client_token = p.clientToken,
  }
  sh.arn, sh.updated = sh.id, sh.created
  local associations = {}
  ctx.state:put("ram_share", sh)
  local ok, err = add_resources(ctx, sh, p.resourceArns, associations)
  if ok then ok, err = add_principals(ctx, sh, p.principals, associations) end
  if not ok then ctx.state:remove("ram_share", sh.id); return nil, err end
  return { resourceShare = render_share(sh), clientToken = p.clientToken }
end

function A.AssociateResourceShare(ctx, p)
  local sh, err = owned_share(ctx, p.resourceShareArn)
  if not sh then return nil, err end
  local associations = {}
  local ok
  ok, err = add_resources(ctx, sh, p.resourceArns, associations)
  if ok then ok, err = add_principals(ctx, sh, p.principals, associations) end
  if not ok then return nil, err end
  sh.updated = os.time()
  return { resourceShareAssociations = array(associations), clientToken = p.clientToken }
end

function A.DisassociateResourceShare(ctx, p)
  local sh, err = owned_share(ctx, p.resourceShareArn)
  if not sh then return nil, err end
  local out = {}
  for _, arn in ipairs(p.resourceArns or {}) do
    sh.resources[arn] = nil
    out[#out + 1] = { resourceShareArn = sh.arn, associatedEntity = arn, associationType = "RESOURCE", status = "DISASSOCIATED" }
  end
  for _, who in ipairs(p.principals or {}) do
    sh.principals[who] = nil
    out[#out + 1] = { resourceShareArn = sh.arn, associatedEntity = who, associationType = "PRINCIPAL", status = "DISASSOCIATED" }
  end
  return { resourceShareAssociations = array(out), clientToken = p.clientToken }
end

local function wanted(list, v)
  if type(list) ~= "table" or #list == 0 then return true end
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

-- Shares the caller sees as owner (SELF) or as an accepted principal (OTHER-ACCOUNTS).
local function shares_for(ctx, owner_kind)
  if owner_kind ~= "SELF" and owner_kind ~= "OTHER-ACCOUNTS" then
    return fail("InvalidParameterException", "resourceOwner must be SELF or OTHER-ACCOUNTS")
  end
  return ctx.state:list("ram_share", function(s)
    if owner_kind == "SELF" then return s.owner == ctx.account end
    local inv = s.principals[ctx.account] and invitation_for(ctx.state, s.arn, ctx.account)
    return inv ~= nil and inv.status == "ACCEPTED" and s.status == "ACTIVE"
  end)
end

function A.GetResourceShares(ctx, p)
  local shares, err = shares_for(ctx, p.resourceOwner)
  if not shares then return nil, err end
  local out = {}
  for _, sh in ipairs(shares) do
    if wanted(p.resourceShareArns, sh.arn) and (not p.name or p.name == sh.name)
       and (not p.resourceShareStatus or p.resourceShareStatus == sh.status) then
      out[#out + 1] = render_share(sh)
    end
  end
  return { resourceShares = array(out) }
end

function A.GetResourceShareInvitations(ctx, p)
  local out = {}
  local function mine(i) return i.receiver == ctx.account or i.sender == ctx.account end
  for _, inv in ipairs(ctx.state:list("ram_invitation", mine)) do
    if wanted(p.resourceShareInvitationArns, inv.id) and wanted(p.resourceShareArns, inv.share) then
      out[#out + 1] = render_invitation(inv, ctx.state)
    end
  end
  if type(p.resourceShareInvitationArns) == "table" and #p.resourceShareInvitationArns > #out then
    return fail("ResourceShareInvitationArnNotFoundException", "The invitation ARN was not found.")
  end
  return { resourceShareInvitations = array(out) }
end

local function answer_invitation(ctx, p, status)
  local inv = ctx.state:get("ram_invitation", p.resourceShareInvitationArn or "")
  if not inv or inv.receiver ~= ctx.account then
    return fail("ResourceShareInvitationArnNotFoundException", "ResourceShareInvitation " ..
      tostring(p.resourceShareInvitationArn) .. " could not be found.")
  end
  if inv.status == "ACCEPTED" then
    return fail("ResourceShareInvitationAlreadyAcceptedException", "The invitation was already accepted.")
  end
  if inv.status == "REJECTED" then
    return fail("ResourceShareInvitationAlreadyRejectedException", "The invitation was already rejected.")
  end
  inv.status = status
  return { resourceShareInvitation = render_invitation(inv, ctx.state), clientToken = p.clientToken }
end

function A.AcceptResourceShareInvitation(ctx, p) return answer_invitation(ctx, p, "ACCEPTED") end
function A.RejectResourceShareInvitation(ctx, p) return answer_invitation(ctx, p, "REJECTED") end

function A.GetResourceShareAssociations(ctx, p)
  if p.associationType ~= "PRINCIPAL" and p.associationType ~= "RESOURCE" then
    return fail("InvalidParameterException", "associationType must be PRINCIPAL or RESOURCE")
  end
  local out = {}
  for _, sh in ipairs(ctx.state:list("ram_share", function(s) return s.owner == ctx.account end)) do
    if wanted(p.resourceShareArns, sh.arn) then
      local entities = p.associationType == "PRINCIPAL" and sh.principals or sh.resources
      local keys = {}
      for k in pairs(entities) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do
        if (not p.principal or p.principal == k) and (not p.resourceArn or p.resourceArn == k) then
          out[#out + 1] = { resourceShareArn = sh.arn, resourceShareName = sh.name, associatedEntity = k,
            associationType = p.associationType, status = sh.status == "ACTIVE" and "ASSOCIATED" or "DISASSOCIATED",
            external = p.associationType == "PRINCIPAL" or nil }
        end
      end
    end
  end
  return { resourceShareAssociations = array(out) }
end

function A.ListResources(ctx, p)
  local shares, err = shares_for(ctx, p.resourceOwner)
  if not shares then return nil, err end
  local out = {}
  for _, sh in ipairs(shares) do
    if wanted(p.resourceShareArns, sh.arn) then
      local arns = {}
      for arn in pairs(sh.resources) do arns[#arns + 1] = arn end
      table.sort(arns)
      for _, arn in ipairs(arns) do
        if wanted(p.resourceArns, arn) and (not p.resourceType or p.resourceType == sh.resources[arn]) then
          out[#out + 1] = { arn = arn, type = sh.resources[arn], resourceShareArn = sh.arn, status = "AVAILABLE",
                            creationTime = sh.created, lastUpdatedTime = sh.updated }
        end
      end
    end
  end
  return { resources = array(out) }
end

function A.DeleteResourceShare(ctx, p)
  local sh, err = owned_share(ctx, p.resourceShareArn)
  if not sh then return nil, err end
  sh.status, sh.updated = "DELETED", os.time()
  sh.resources, sh.principals = {}, {}
  return { returnValue = true, clientToken = p.clientToken }
end

return ram
