--- Calls an in-process sandbox (awsnet.sandbox.start) through its API without a socket: each
-- request is built by the model-driven client (awsnet.aws), signed with SigV4, handed to the
-- sandbox's request handler and the answer parsed by the client, so nothing blocks while the
-- sandbox would have to serve.
--
--   local direct = require "helpers.sandbox_direct"
--   local api = direct(sb, "111111111111", "ap-northeast-1")
--   local out = assert(api("ec2", "CreateVpc", {CidrBlock = "10.0.0.0/16"}))
local aws = require "awsnet.aws"
local sigv4 = require "awsnet.sigv4"

return function(sb, account, region)
  local clients = {}
  return function(service, op, params)
    local c = clients[service]
    if not c then
      c = assert(aws.client(service, { region = region, endpoint = sb.endpoint,
        credentials = { access_key_id = account, secret_access_key = "test" } }))
      clients[service] = c
    end
    local req = assert(c:build(op, params))
    local signed = assert(sigv4.sign(req, { access_key_id = account, secret_access_key = "test" },
      { region = c.signing_region, service = c.signing_name }))
    local headers = {}
    for k, v in pairs(signed) do headers[k:lower()] = v end
    local target = req.url:match("^%a[%w+.-]*://[^/]*(.*)$")
    local res = sb:handle({ method = req.method, target = target ~= "" and target or "/", headers = headers,
      body = req.body or "" })
    return c:parse(op, { status = res.status, headers = res.headers or {}, body = res.body or "" })
  end
end
