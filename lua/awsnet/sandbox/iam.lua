--- IAM in the sandbox: roles with a trust policy and attached managed policies.
-- @module awsnet.sandbox.iam
local errors = require "awsnet.errors"
local wire = require "awsnet.sandbox.wire"

local iam = { actions = {} }

--- The handler of each API action: `actions.<Action>(ctx, params)` -> the result table, or nil,
-- err with AWS's error code and HTTP status. `ctx` = {sandbox, state, account, arn, user_id,
-- region, request_id}.
-- @table actions
local A = iam.actions

local function fail(code, message, status) return errors.fail(code, message, { status = status or 400 }) end

local function role_key(account, name) return account .. ":" .. name end

local function find_role(ctx, name)
  local role = ctx.state:get("role", role_key(ctx.account, name or ""))
  if not role then return fail("NoSuchEntity", "The role with name " .. tostring(name) .. " cannot be found.", 404) end
  return role
end

--- The role named by an ARN, in whatever account owns it (used by STS and Lambda).
-- @param state the sandbox state
-- @tparam string arn "arn:aws:iam::<account>:role/<path/name>"
-- @treturn ?table the role
function iam.role_by_arn(state, arn)
  local account, name = (arn or ""):match("^arn:aws:iam::(%d+):role/(.+)$")
  if not account then return nil end
  name = name:match("([^/]+)$")
  return state:get("role", role_key(account, name))
end

local function render_role(role)
  return {
    Path = role.path, RoleName = role.name, RoleId = role.role_id, Arn = role.arn,
    CreateDate = wire.timestamp(role.created), Description = role.description,
    AssumeRolePolicyDocument = role.trust:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end),
  }
end

function A.CreateRole(ctx, p)
  local ok, err = wire.need(p, "ValidationError", "RoleName", "AssumeRolePolicyDocument")
  if not ok then return nil, err end
  if not wire.json_decode(p.AssumeRolePolicyDocument) then
    return fail("MalformedPolicyDocument", "This policy contains invalid Json")
  end
  local key = role_key(ctx.account, p.RoleName)
  if ctx.state:get("role", key) then
    return fail("EntityAlreadyExists", "Role with name " .. p.RoleName .. " already exists.", 409)
  end
  local path = p.Path or "/"
  local role = ctx.state:put("role", {
    id = key, account = ctx.account, name = p.RoleName, path = path, description = p.Description,
    role_id = "AROA" .. ctx.state:token(17), created = os.time(), trust = p.AssumeRolePolicyDocument,
    arn = "arn:aws:iam::" .. ctx.account .. ":role" .. path .. p.RoleName, policies = {},
  })
  return { Role = render_role(role) }
end

function A.GetRole(ctx, p)
  local role, err = find_role(ctx, p.RoleName)
  if not role then return nil, err end
  return { Role = render_role(role) }
end

function A.AttachRolePolicy(ctx, p)
  local ok, err = wire.need(p, "ValidationError", "RoleName", "PolicyArn")
  if not ok then return nil, err end
  local role
  role, err = find_role(ctx, p.RoleName)
  if not role then return nil, err end
  if not p.PolicyArn:match("^arn:aws:iam::(%w+):policy/.+") then
    return fail("InvalidInput", "ARN " .. p.PolicyArn .. " is not valid.")
  end
  role.policies[p.PolicyArn] = true
  return {}
end

function A.DetachRolePolicy(ctx, p)
  local role, err = find_role(ctx, p.RoleName)
  if not role then return nil, err end
  if not role.policies[p.PolicyArn or ""] then
    return fail("NoSuchEntity", "Policy " .. tostring(p.PolicyArn) .. " was not found.", 404)
  end
  role.policies[p.PolicyArn] = nil
  return {}
end

function A.ListAttachedRolePolicies(ctx, p)
  local role, err = find_role(ctx, p.RoleName)
  if not role then return nil, err end
  local out = {}
  for arn in pairs(role.policies) do out[#out + 1] = { PolicyArn = arn, PolicyName = arn:match("([^/]+)$") } end
  table.sort(out, function(a, b) return a.PolicyArn < b.PolicyArn end)
  return { AttachedPolicies = wire.array(out), IsTruncated = false }
end

function A.DeleteRole(ctx, p)
  local role, err = find_role(ctx, p.RoleName)
  if not role then return nil, err end
  if next(role.policies) then
    return fail("DeleteConflict", "Cannot delete entity, must detach all policies first.", 409)
  end
  ctx.state:remove("role", role.id)
  return {}
end

--- True when the role's trust policy lets `caller` assume it.
-- @tparam table role the role
-- @tparam table caller {account, arn}, or {service = "lambda.amazonaws.com"}
-- @treturn boolean
function iam.trusts(role, caller)
  local doc = wire.json_decode(role.trust) or {}
  local statements = doc.Statement
  if type(statements) ~= "table" then return false end
  if statements[1] == nil then statements = { statements } end
  for _, st in ipairs(statements) do
    local actions = type(st.Action) == "table" and st.Action or { st.Action }
    local allows = false
    for _, a in ipairs(actions) do
      if a == "sts:AssumeRole" or a == "sts:*" or a == "*" then allows = true end
    end
    if st.Effect == "Allow" and allows and st.Principal == "*" then return true end
    if st.Effect == "Allow" and allows and type(st.Principal) == "table" then
      local wanted = caller.service and st.Principal.Service or st.Principal.AWS
      for _, who in ipairs(type(wanted) == "table" and wanted or { wanted }) do
        if caller.service and who == caller.service then return true end
        if not caller.service and (who == "*" or who == caller.account or who == caller.arn
            or who == "arn:aws:iam::" .. caller.account .. ":root") then
          return true
        end
      end
    end
  end
  return false
end

return iam
