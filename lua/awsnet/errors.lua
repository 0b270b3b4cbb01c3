--- Error values shared by every awsnet module.
-- Failures of the world come back as `nil, err`; `err` is a table with a stable `code` (a short
-- word such as "timeout" or AWS's own code such as "InvalidVpcID.NotFound") and a `message`,
-- plus whatever fields the failure has (status, request_id, errno, sqlstate, ...).
-- `tostring(err)` gives "op: code: message".
-- @module awsnet.errors
local errors = {}

local Error = {}
Error.__index = Error
Error.__name = "awsnet.error"

function Error.__tostring(e)
  local where = e.op and (e.op .. ": ") or ""
  return string.format("%s%s: %s", where, tostring(e.code), tostring(e.message))
end

--- Creates an error value. `fields` are copied in; `code` and `message` are required.
-- @tparam string code stable code for scripts to branch on; raises if not a string
-- @tparam[opt] string message what happened, in words (default: the code)
-- @tparam[opt] table fields extra fields (op, status, request_id, ...)
-- @treturn table the error, with `__tostring`
function errors.new(code, message, fields)
  assert(type(code) == "string", "error code must be a string")
  local e = {}
  if fields then for k, v in pairs(fields) do e[k] = v end end
  e.code, e.message = code, message or code
  return setmetatable(e, Error)
end

--- True when `v` is an awsnet error value.
-- @param v any value
-- @treturn boolean
function errors.is(v)
  return getmetatable(v) == Error
end

--- Returns nil plus a new error: the shape every fallible function returns.
-- @tparam string code as for `errors.new`
-- @tparam[opt] string message as for `errors.new`
-- @tparam[opt] table fields as for `errors.new`
-- @return nil
-- @treturn table the error
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
-- Strings shorter than 4 characters are left alone (they would redact ordinary words).
-- @param text the text (anything but a string is returned unchanged)
-- @tparam {string,...} secrets the secret values
-- @return the text without the secrets
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
-- @tparam string name a field name ("secret_access_key", "Token", "password", ...)
-- @treturn boolean
function errors.is_secret_key(name)
  return SECRET_KEYS[name] == true
end

return errors
