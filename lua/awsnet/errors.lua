--- Error values shared by every awsnet module.
-- Failures of the world come back as `nil, err`; `err` is a table with a stable `code` (a short
-- word such as "timeout" or AWS's own code such as "InvalidVpcID.NotFound") and a `message`,
-- plus whatever fields the failure has (status, request_id, errno, sqlstate, ...).
local errors = {}

local Error = {}
Error.__index = Error
Error.__name = "awsnet.error"

function Error.__tostring(e)
  local where = e.op and (e.op .. ": ") or ""
  return string.format("%s%s: %s", where, tostring(e.code), tostring(e.message))
end

--- Creates an error value. `fields` are copied in; `code` and `message` are required.
function errors.new(code, message, fields)
  assert(type(code) == "string", "error code must be a string")
  local e = {}
  if fields then for k, v in pairs(fields) do e[k] = v end end
  e.code, e.message = code, message or code
  return setmetatable(e, Error)
end

--- True when `v` is an awsnet error value.
function errors.is(v)
  return getmetatable(v) == Error
end

--- Returns nil plus a new error: the shape every fallible function returns.
function errors.fail(code, message, fields)
  return nil, errors.new(code, message, fields)
end

-- Secrets are replaced before any text reaches an error, a log or a debug table.
local SECRET_KEYS = {
  secret_access_key = true, session_token = true, password = true, token = true,
  SecretAccessKey = true, SessionToken = true, Token = true, MasterUserPassword = true,
  aws_secret_access_key = true, aws_session_token = true, RDS_PASSWORD = true,
}

--- Replaces every occurrence of each string in `secrets` by "[redacted]".
function errors.redact(text, secrets)
  if type(text) ~= "string" then return text end
  for _, s in ipairs(secrets or {}) do
    if type(s) == "string" and #s >= 4 then
      text = text:gsub(s:gsub("%p", "%%%0"), "[redacted]")
    end
  end
  return text
end

--- True when a field of this name holds a secret.
function errors.is_secret_key(name)
  return SECRET_KEYS[name] == true
end

return errors
