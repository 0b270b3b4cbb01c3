--- STS in the sandbox: who am I, and cross-account AssumeRole with temporary keys.
-- @module awsnet.sandbox.sts
local errors = require "awsnet.errors"
local wire = require "awsnet.sandbox.wire"
local iam = require "awsnet.sandbox.iam"
local state = require "awsnet.sandbox.state"

local sts = { actions = {} }

--- The handler of each API action: `actions.<Action>(ctx, params)` -> the result table, or nil,
-- err with AWS's error code and HTTP status. `ctx` = {sandbox, state, account, arn, user_id,
-- region, request_id}. Here: GetCallerIdentity, AssumeRole.
-- @table actions

function sts.actions.GetCallerIdentity(ctx)
  return { Account = ctx.account, Arn = ctx.arn, UserId = ctx.user_id }
end

function sts.actions.AssumeRole(ctx, p)
  local ok, err = wire.need(p, "ValidationError", "RoleArn", "RoleSessionName")
  if not ok then return nil, err end
  local duration = math.tointeger(tonumber(p.DurationSeconds or 3600))
  if not duration or duration < 900 or duration > 43200 then
    return errors.fail("ValidationError", "DurationSeconds must be between 900 and 43200", { status = 400 })
  end
  -- role chaining (the caller is itself a role session): at most one hour, as AWS limits it
  if duration > 3600 and (ctx.arn or ""):find(":assumed-role/", 1, true) then
    return errors.fail("ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit " ..
      "for roles assumed by role chaining.", { status = 400 })
  end
  local role = iam.role_by_arn(ctx.state, p.RoleArn)
  if not role or not iam.trusts(role, { account = ctx.account, arn = ctx.arn }) then
    return errors.fail("AccessDenied", string.format("User: %s is not authorized to perform: sts:AssumeRole on resource: %s",
      ctx.arn, p.RoleArn), { status = 403 })
  end
  local st = ctx.state
  -- from /dev/urandom, not the seeded generator: request ids would tell the next keys
  local key = "ASIA" .. state.secret_token(16)
  local session = {
    account = role.account, secret = state.secret_token(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
    token = "FwoGZXIvYXdzE" .. state.secret_token(120, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
    expires = os.time() + duration, user_id = role.role_id .. ":" .. p.RoleSessionName,
    arn = string.format("arn:aws:sts::%s:assumed-role/%s/%s", role.account, role.name, p.RoleSessionName),
  }
  st.data.sessions[key] = session
  return {
    Credentials = { AccessKeyId = key, SecretAccessKey = session.secret, SessionToken = session.token,
                    Expiration = wire.timestamp(session.expires) },
    AssumedRoleUser = { AssumedRoleId = session.user_id, Arn = session.arn },
  }
end

return sts
