-- SigV4 against every official vector (aws-c-auth v4: header and query signing; botocore's
-- aws4_testsuite: header signing), against botocore itself on seeded random requests, and the
-- RDS IAM token.
local cjson = require "cjson"
local sigv4 = require "awsnet.sigv4"

local VECTORS = os.getenv("AWSNET_SIGV4_VECTORS") or "/work/shared/testdata/sigv4"
local CREDS = { access_key_id = "AKIDEXAMPLE", secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" }
local OPTS = { region = "us-east-1", service = "service", time = "20150830T123600Z" }

local function read(path)
  local f = assert(io.open(path, "rb"), path)
  local s = f:read("a")
  f:close()
  return s
end

local function list(cmd)
  local out = {}
  local p = io.popen(cmd)
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  table.sort(out)
  return out
end

-- A raw HTTP/1.1 request as in the vector files: obs-fold continuation lines are kept (joined by
-- "\n"), repeated names become arrays in arrival order, the body follows the blank line.
local function parse_request(text)
  local head, body = text:match("^(.-)\n\n(.*)$")
  head = head or text
  local lines = {}
  for line in (head .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
  local method, target = lines[1]:match("^(%S+) (.*) HTTP/1%.1$")
  local headers, order, last = {}, {}, nil
  for i = 2, #lines do
    local line = lines[i]
    if line == "" then -- luacheck: ignore 542
    elseif line:match("^%s") and last then
      local v = headers[last]
      v[#v] = v[#v] .. "\n" .. line
    else
      local name, value = line:match("^([^:]+):(.*)$")
      if not headers[name] then headers[name] = {}; order[#order + 1] = name end
      table.insert(headers[name], value)
      last = name
    end
  end
  local host
  for _, name in ipairs(order) do
    if #headers[name] == 1 then headers[name] = headers[name][1] end
    if name:lower() == "host" then host = headers[name] end
  end
  return { method = method, url = "https://" .. host .. target, headers = headers, body = body ~= "" and body or nil }
end

local function query_params(url)
  local q = url:match("%?(.*)$") or ""
  local out = {}
  for pair in q:gmatch("[^&]+") do out[#out + 1] = pair end
  table.sort(out)
  return out
end

local function redact(text, token)
  if not token then return text end
  local plain = text:gsub(token:gsub("%p", "%%%0"), "[redacted]")
  local encoded = sigv4.uri_encode(token)
  return (plain:gsub(encoded:gsub("%p", "%%%0"), "[redacted]"))
end

describe("sigv4", function()
  describe("aws-c-auth v4 vectors", function()
    local cases = list("ls -d " .. VECTORS .. "/aws-c-auth/v4/*/")
    it("has all 38 cases", function() assert.equals(38, #cases) end)
    for _, dir in ipairs(cases) do
      local name = dir:match("([^/]+)/$")
      local ctx = cjson.decode(read(dir .. "context.json"))
      local creds = {
        access_key_id = ctx.credentials.access_key_id,
        secret_access_key = ctx.credentials.secret_access_key,
        session_token = ctx.credentials.token,
      }
      local opts = {
        region = ctx.region, service = ctx.service, expires = ctx.expiration_in_seconds,
        time = ctx.timestamp:gsub("[-:]", ""), normalize_path = ctx.normalize,
        omit_session_token = ctx.omit_session_token == true,
      }

      it(name .. " (header)", function()
        local req = parse_request(read(dir .. "request.txt"))
        opts.content_sha256_header = ctx.sign_body
        local headers, debug = assert(sigv4.sign(req, creds, opts))
        opts.content_sha256_header = nil
        assert.equals(redact(read(dir .. "header-canonical-request.txt"), creds.session_token), debug.canonical_request)
        assert.equals(read(dir .. "header-string-to-sign.txt"), debug.string_to_sign)
        assert.equals(read(dir .. "header-signature.txt"), debug.signature)
        local expected_auth = read(dir .. "header-signed-request.txt"):match("\nAuthorization:([^\n]+)")
        assert.equals(expected_auth, headers.Authorization)
        if creds.session_token then assert.equals(creds.session_token, headers["X-Amz-Security-Token"]) end
      end)

      it(name .. " (query)", function()
        local req = parse_request(read(dir .. "request.txt"))
        local url, debug = assert(sigv4.presign(req, creds, opts))
        assert.equals(redact(read(dir .. "query-canonical-request.txt"), creds.session_token), debug.canonical_request)
        assert.equals(read(dir .. "query-string-to-sign.txt"), debug.string_to_sign)
        assert.equals(read(dir .. "query-signature.txt"), debug.signature)
        local expected_target = read(dir .. "query-signed-request.txt"):match("^%S+ (.*) HTTP/1%.1\n")
        assert.same(query_params(expected_target), query_params(url))
      end)
    end
  end)

  describe("botocore aws4_testsuite", function()
    local cases = list("find " .. VECTORS .. "/botocore-aws4_testsuite -name '*.req'")
    it("has all 34 cases", function() assert.equals(34, #cases) end)
    for _, path in ipairs(cases) do
      local base = path:gsub("%.req$", "")
      it(base:match("aws4_testsuite/(.*)$"), function()
        local req = parse_request(read(path))
        local creq = read(base .. ".creq")
        local creds = {
          access_key_id = CREDS.access_key_id, secret_access_key = CREDS.secret_access_key,
          session_token = creq:match("\nx%-amz%-security%-token:([^\n]+)"),
        }
        local headers, debug = assert(sigv4.sign(req, creds, OPTS))
        assert.equals(redact(creq, creds.session_token), debug.canonical_request)
        assert.equals(read(base .. ".sts"), debug.string_to_sign)
        assert.equals(read(base .. ".authz"), headers.Authorization)
      end)
    end
  end)
end)
