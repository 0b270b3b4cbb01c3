--- AWS Signature Version 4: `sign` (Authorization header), `presign` (query string) and the RDS
-- IAM authentication token. The work is done in C (`csrc/sigv4.c`); this layer documents the
-- contract and turns failures into `nil, err`.
--
--   local headers, debug = sigv4.sign(req, creds, opts)
--   local url, debug     = sigv4.presign(req, creds, opts)
--
-- `req = {method, url, headers, body}`: `url` is the URL as it goes on the wire; `headers` maps a
-- name to a string, or to an array of strings for a repeated header (joined with "," in array
-- order, as SigV4 asks; multi-line values are folded to single spaces). `creds =
-- {access_key_id, secret_access_key, session_token}`. `opts`:
--
-- * `region`, `service` (required); `time`: epoch seconds or "YYYYMMDDTHHMMSSZ" (default: now).
-- * `unsigned_payload`: sign "UNSIGNED-PAYLOAD" instead of the body's SHA-256.
-- * `payload_hash`: sign this payload hash as given.
-- * `content_sha256_header`: also send and sign `X-Amz-Content-Sha256` with the payload hash.
-- * `normalize_path` (default true): remove "." and ".." segments and empty segments
--   (S3 wants false). `double_encode` (default true): URI-encode the path as given once more, so
--   a "%2F" on the wire is signed as "%252F" (S3 wants false: then escapes are decoded and
--   re-encoded once).
-- * `omit_session_token`: add `X-Amz-Security-Token` after signing, outside the signature.
-- * `signed_headers`: sign exactly these header names (see "Verifying" below). By default every
--   header of `req.headers` is signed except Authorization, Expect, User-Agent and
--   X-Amzn-Trace-Id, plus Host (from the URL: lower case, port only when not the default),
--   X-Amz-Date and, with a session token, X-Amz-Security-Token.
-- * `expires` (presign only, default 3600 s).
--
-- Canonical query: the query string is split on "&", each key and value is percent-decoded and
-- re-encoded (unreserved characters stay, everything else is %XX in upper case), pairs are sorted
-- by key, then value; repeated keys are kept. The same rule encodes the path (with "/" kept).
--
-- `sign` returns the headers to send: the request's own, minus any Authorization and any header
-- the signer replaces, plus Host (when absent), X-Amz-Date, X-Amz-Security-Token, Authorization.
-- `presign` returns the URL: the request's URL with its query as given, then X-Amz-Algorithm,
-- X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Security-Token and
-- X-Amz-Signature, in botocore's order. Both also return `debug = {canonical_request,
-- string_to_sign, signature}`, where a signed session token is replaced by "[redacted]" (the
-- string to sign holds the hash of the real canonical request).
--
-- Verifying a received request (what a server does): call `sign` with the request as received
-- (`url` = scheme://Host + request target, `headers` as received), the key pair of the access key
-- in its Credential, and
--   opts.time = the request's X-Amz-Date value,
--   opts.signed_headers = the names listed in its SignedHeaders,
--   opts.region/service = the ones in its credential scope.
-- The payload hash is the request's `x-amz-content-sha256` header when it has one (also
-- "UNSIGNED-PAYLOAD"), else the body's hash; pass `opts.payload_hash` to force one. The result's
-- `debug.signature` then equals the client's signature exactly when the request is authentic.
--
-- Derived signing keys are cached per (secret, date, region, service) inside the C core.
-- Errors (`nil, err`): "no_credentials", "invalid_url", "invalid_request" (a header listed in
-- `signed_headers` is missing). Wrong argument types raise.
-- @module awsnet.sigv4
local core = require "awsnet.core"
local errors = require "awsnet.errors"

local sigv4 = {}

local c_sign, c_presign = core.sigv4.sign, core.sigv4.presign

--- Signs a request with an Authorization header (see the module comment for every option).
-- @tparam table req {method, url, headers, body}
-- @tparam table creds {access_key_id, secret_access_key, session_token}
-- @tparam table opts {region, service, time, unsigned_payload, payload_hash, content_sha256_header,
-- normalize_path, double_encode, omit_session_token, signed_headers}
-- @treturn table the headers to send, or nil, err ("no_credentials", "invalid_url", "invalid_request")
-- @treturn table debug {canonical_request, string_to_sign, signature}, the session token redacted
-- @raise on wrong argument types
function sigv4.sign(req, creds, opts)
  local headers, debug, message = c_sign(req, creds, opts)
  if headers == nil then return errors.fail(debug, message, { op = "sigv4.sign" }) end
  return headers, debug
end

--- Presigns a request: the signature goes in the query string.
-- @tparam table req {method, url, headers, body}
-- @tparam table creds {access_key_id, secret_access_key, session_token}
-- @tparam table opts as for `sign`, plus `expires` (seconds, default 3600)
-- @treturn string the URL, or nil, err ("no_credentials", "invalid_url", "invalid_request")
-- @treturn table debug {canonical_request, string_to_sign, signature}
-- @raise on wrong argument types
function sigv4.presign(req, creds, opts)
  local url, debug, message = c_presign(req, creds, opts)
  if url == nil then return errors.fail(debug, message, { op = "sigv4.presign" }) end
  return url, debug
end

local function uri_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
--- Percent-encodes everything outside SigV4's unreserved set (A-Z a-z 0-9 - . _ ~).
-- @function uri_encode
-- @tparam string s the text
-- @treturn string the encoded text
sigv4.uri_encode = uri_encode

--- The RDS IAM authentication token (the password for an IAM database user): a URL presigned
-- for the `connect` action of service `rds-db`, valid 900 s, without its "https://" prefix,
-- byte for byte what botocore's `generate_db_auth_token` returns.
-- @tparam table args {host, port, user, region, credentials, time (as for `sign`)}
-- @treturn string the token, or nil, err ("no_credentials" when `credentials` is missing, or a
-- signing error)
-- @raise when host, port, user or region is missing
function sigv4.rds_auth_token(args)
  assert(type(args) == "table", "rds_auth_token expects a table")
  assert(type(args.host) == "string", "host must be a string")
  assert(math.tointeger(args.port), "port must be an integer")
  assert(type(args.user) == "string", "user must be a string")
  assert(type(args.region) == "string", "region must be a string")
  if type(args.credentials) ~= "table" then
    return errors.fail("no_credentials", "no credentials for the RDS auth token", { op = "sigv4.rds_auth_token" })
  end
  local url = string.format("https://%s:%d/?Action=connect&DBUser=%s", args.host, args.port, uri_encode(args.user))
  local signed, code, message = c_presign({ method = "GET", url = url }, args.credentials,
    { region = args.region, service = "rds-db", expires = 900, time = args.time })
  if not signed then return errors.fail(code, message, { op = "sigv4.rds_auth_token" }) end
  return (signed:gsub("^https://", ""))
end

return sigv4
