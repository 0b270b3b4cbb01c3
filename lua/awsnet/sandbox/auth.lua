--- Who is calling: SigV4 verification of a sandbox request.
-- The signature is recomputed with awsnet.sigv4 from exactly the client's SignedHeaders, X-Amz-Date
-- and payload hash, with the secret the sandbox knows for the access key.
-- @module awsnet.sandbox.auth
local errors = require "awsnet.errors"

local auth = {}

-- The codes AWS answers with, per protocol family: {code, HTTP status}. A request time more than
-- 15 minutes off is `RequestExpired` for EC2 (its API reference's common errors) and a
-- "Signature expired" `SignatureDoesNotMatch` / `InvalidSignatureException` for STS, IAM, RDS, RAM
-- and Lambda, as those services answer.
--
-- `incomplete` (a signature that leaves out what AWS wants signed: the Host header) is
-- `IncompleteSignature` (400, the common errors of the query APIs and EC2) and, for the JSON
-- services, `InvalidSignatureException` with "'Host' must be a 'SignedHeader' ..." as those answer.
-- A payload hash that is not the body's (x-amz-content-sha256 with another hash, or
-- UNSIGNED-PAYLOAD) and a credential scope naming another service than the one addressed
-- ("Credential should be scoped to correct service: 'sts'.") are `bad_signature`: services other
-- than S3 hash the body they received, so such a signature cannot match there (S3's
-- XAmzContentSHA256Mismatch is S3's own, and the sandbox serves no S3).
local AUTH_ERRORS = {
  ec2 = { unknown_key = { "AuthFailure", 401 }, bad_signature = { "AuthFailure", 401 },
          skew = { "RequestExpired", 400 }, missing = { "AuthFailure", 401 }, incomplete = { "IncompleteSignature", 400 } },
  query = { unknown_key = { "InvalidClientTokenId", 403 }, bad_signature = { "SignatureDoesNotMatch", 403 },
            skew = { "SignatureDoesNotMatch", 403 }, missing = { "MissingAuthenticationToken", 403 },
            incomplete = { "IncompleteSignature", 400 } },
  json = { unknown_key = { "UnrecognizedClientException", 403 }, bad_signature = { "InvalidSignatureException", 403 },
           skew = { "InvalidSignatureException", 403 }, missing = { "MissingAuthenticationTokenException", 403 },
           incomplete = { "InvalidSignatureException", 403 } },
}

local function auth_error(service, kind, message)
  local family = service == "ec2" and "ec2"
    or (service == "ram" or service == "lambda" or service == "organizations") and "json" or "query"
  local e = AUTH_ERRORS[family][kind]
  return errors.new(e[1], message, { status = e[2] })
end

--- Parses `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
-- @param value the Authorization header (anything else gives nil)
-- @treturn ?table {access_key_id, date, region, service, signed_headers, signature}
function auth.parse_authorization(value)
  if type(value) ~= "string" then return nil end
  local algorithm, rest = value:match("^(%S+)%s+(.*)$")
  if algorithm ~= "AWS4-HMAC-SHA256" then return nil end
  local fields = {}
  for k, v in rest:gmatch("(%w+)=([^,%s]*)") do fields[k] = v end
  local key, date, region, service = (fields.Credential or ""):match("^([^/]+)/(%d+)/([^/]+)/([^/]+)/aws4_request$")
  if not key or not fields.SignedHeaders or not fields.Signature then return nil end
  local signed = {}
  for h in fields.SignedHeaders:gmatch("[^;]+") do signed[#signed + 1] = h end
  return { access_key_id = key, date = date, region = region, service = service,
           signed_headers = signed, signature = fields.Signature }
end

local function epoch_of(amz_date)
  local y, mo, d, h, mi, s = (amz_date or ""):match("^(%d%d%d%d)(%d%d)(%d%d)T(%d%d)(%d%d)(%d%d)Z$")
  if not y then return nil end
  local t = os.time { year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = tonumber(h),
                      min = tonumber(mi), sec = tonumber(s), isdst = false }
  -- os.time reads the table as local time: correct by the offset of UTC from local time
  local now = os.time()
  local utc_now = os.time(os.date("!*t", now))
  return t + (now - utc_now)
end

--- The caller behind an access key: a 12-digit account id, or an AssumeRole session.
local function identity_of(sb, key, token)
  local st = sb.state
  if key:match("^%d%d%d%d%d%d%d%d%d%d%d%d$") then
    local account = st:account(key)
    if not account then return nil end
    return { account = key, secret = account.secret, arn = "arn:aws:iam::" .. key .. ":root",
             user_id = key }
  end
  local session = st.data.sessions[key]
  if not session or session.token ~= token or (session.expires or 0) < os.time() then return nil end
  return { account = session.account, secret = session.secret, arn = session.arn, user_id = session.user_id }
end

-- Refuses what the signature must cover and does not: Host unsigned, a payload hash other than
-- the body's. Returns the error kind and message, or nil.
local function uncovered(a, req, body_hash)
  local host = false
  for _, h in ipairs(a.signed_headers) do if h == "host" then host = true end end
  if not host then return "incomplete", "'Host' must be a 'SignedHeader' in the AWS Authorization." end
  local claimed = req.headers["x-amz-content-sha256"]
  if claimed == "UNSIGNED-PAYLOAD" or (claimed or ""):match("^STREAMING%-") then
    return "bad_signature", "x-amz-content-sha256 " .. claimed .. " is not accepted: this service signs the payload."
  end
  if claimed and claimed:lower() ~= body_hash then
    return "bad_signature", "The provided 'x-amz-content-sha256' header does not match what was computed."
  end
end

--- Checks the request's signature. Returns identity {account, arn, user_id}, service name; or
-- nil, service name, err. The signature must cover the Host header and the body itself (its
-- SHA-256: an x-amz-content-sha256 must be that hash), and its credential scope must name the
-- service the request addresses when that is known, and a region the sandbox serves
-- (awsnet.sandbox.regions).
-- @param sb the sandbox (its state, accounts' secrets, max_skew_s)
-- @tparam table req the request {method, target, headers, body}
-- @tparam[opt] string addressed the service the request's Action, Version or path names
-- @treturn table identity {account, arn, user_id}, or nil
-- @treturn string the service the credential scope names
-- @return the error when refused: the protocol's code for a missing, malformed, expired or wrong
-- signature, or an unknown key ("InvalidClientTokenId", "AuthFailure", ...), with HTTP status
function auth.check(sb, req, addressed)
  local a = auth.parse_authorization(req.headers.authorization)
  if not a then
    return nil, "sts", auth_error("sts", "missing", "Missing Authentication Token")
  end
  local service = a.service
  if addressed and service ~= addressed then
    return nil, addressed, auth_error(addressed, "bad_signature",
      "Credential should be scoped to correct service: '" .. addressed .. "'. ")
  end
  if service ~= "ec2" and service ~= "sts" and service ~= "iam" and service ~= "rds"
     and service ~= "ram" and service ~= "lambda" and service ~= "organizations" then
    return nil, "sts", errors.new("InvalidAction", "The sandbox does not serve " .. service, { status = 400 })
  end
  -- a region the sandbox does not serve is refused as AWS refuses a credential scope naming another
  -- region than the endpoint's (an endpoint of an unknown region does not exist on AWS: no
  -- documented answer; this is the one its endpoints give). The sandbox is every region's endpoint,
  -- IAM's and the global STS endpoint's too, so those take any served region.
  if not require("awsnet.sandbox.regions").serves(a.region) then
    return nil, service, auth_error(service, "bad_signature",
      "Credential should be scoped to a valid region, not '" .. a.region .. "'. ")
  end
  -- a region the account has not opted into: AWS does not accept the account's credentials there
  if sb.regions and sb.regions.disabled == a.region then
    return nil, service, auth_error(service, "unknown_key", service == "ec2"
      and "AWS was not able to validate the provided access credentials"
      or "The security token included in the request is invalid.")
  end
  local body_hash = require("awsnet.core").sigv4.sha256_hex(req.body or "")
  local kind, why = uncovered(a, req, body_hash)
  if kind then return nil, service, auth_error(service, kind, why) end
  local who = identity_of(sb, a.access_key_id, req.headers["x-amz-security-token"])
  if not who then
    return nil, service, auth_error(service, "unknown_key", "The security token included in the request is invalid.")
  end
  local amz_date = req.headers["x-amz-date"]
  local t = epoch_of(amz_date)
  if not t then
    return nil, service, auth_error(service, "missing", "Missing or malformed X-Amz-Date")
  end
  local now = os.time()
  if math.abs(now - t) > sb.max_skew_s then
    local stamp = function(epoch) return os.date("!%Y%m%dT%H%M%SZ", epoch) end
    local message = t < now
      and string.format("Signature expired: %s is now earlier than %s (%s - 15 min.)",
        amz_date, stamp(now - sb.max_skew_s), stamp(now))
      or string.format("Signature not yet current: %s is still later than %s (%s + 15 min.)",
        amz_date, stamp(now + sb.max_skew_s), stamp(now))
    if service == "ec2" then
      message = "Request has expired." -- EC2's own text for a request time outside the window
    end
    return nil, service, auth_error(service, "skew", message)
  end
  local sigv4 = require "awsnet.sigv4"
  local ok, _, debug = pcall(sigv4.sign, {
    method = req.method, url = "http://" .. (req.headers.host or "localhost") .. req.target,
    headers = req.headers, body = req.body,
  }, { access_key_id = a.access_key_id, secret_access_key = who.secret }, {
    region = a.region, service = service, time = amz_date, signed_headers = a.signed_headers,
    payload_hash = body_hash,
  })
  if not ok or type(debug) ~= "table" or debug.signature ~= a.signature then
    return nil, service, auth_error(service, "bad_signature",
      "The request signature we calculated does not match the signature you provided. " ..
      "Check your AWS Secret Access Key and signing method.")
  end
  return who, service
end

return auth
