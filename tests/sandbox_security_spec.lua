-- The sandbox under attack (issue 15, "The sandbox's request path", items 3, 4, 5, 6, 8, 9): real
-- HTTP on loopback to a sandbox in this Lua process, with requests signed by hand through
-- awsnet.sigv4 where a well-behaved client would refuse to send them.
local cjson = require "cjson"
local core = require "awsnet.core"
local sigv4 = require "awsnet.sigv4"
local sandbox = require "awsnet.sandbox"
local state_mod = require "awsnet.sandbox.state"
local wire = require "awsnet.sandbox.wire"
local process = require "awsnet.svc.process"
local q = process.quote

local A, B = "111111111111", "222222222222"

local function form(params)
  local keys, parts = {}, {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    parts[#parts + 1] = k .. "=" .. sigv4.uri_encode(tostring(params[k]))
  end
  return table.concat(parts, "&")
end

-- Sends raw request text and steps `sb` until the answer is back: status, headers, body.
local exchange = require "helpers.sandbox_exchange"

-- One request signed for `service` as `account` (or creds {access_key_id, secret_access_key,
-- session_token}). opts.sign: extra sigv4 options; opts.send_body: the body sent, when it is not
-- the one signed.
local function call(sb, service, who, req, opts)
  opts = opts or {}
  local creds = type(who) == "table" and who or { access_key_id = who, secret_access_key = "test" }
  local sign_opts = { region = "us-east-1", service = service }
  for k, v in pairs(opts.sign or {}) do sign_opts[k] = v end
  local target = req.target or "/"
  local headers = assert(sigv4.sign({ method = req.method or "POST", url = "http://127.0.0.1:" .. sb.port .. target,
    headers = req.headers or {}, body = req.body or "" }, creds, sign_opts))
  local body = opts.send_body or req.body or ""
  local lines = { (req.method or "POST") .. " " .. target .. " HTTP/1.1" }
  for k, v in pairs(headers) do lines[#lines + 1] = k .. ": " .. v end
  lines[#lines + 1] = "Content-Length: " .. #body
  return exchange(sb, table.concat(lines, "\r\n") .. "\r\n\r\n" .. body)
end

-- XML text with its character entities read.
local function unxml(text)
  return (text:gsub("&(%w+);", { apos = "'", quot = '"', lt = "<", gt = ">", amp = "&" }))
end

local FORM = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" }
local VERSIONS = { ec2 = "2016-11-15", sts = "2011-06-15", iam = "2010-05-08", rds = "2014-10-31" }

local function query(sb, service, who, params, opts)
  params.Version = params.Version or VERSIONS[service]
  return call(sb, service, who, { body = form(params), headers = FORM }, opts)
end

local function lambda(sb, who, method, target, value, headers)
  local h = { ["Content-Type"] = "application/json" }
  for k, v in pairs(headers or {}) do h[k] = v end
  local status, hdrs, body = call(sb, "lambda", who, { method = method, target = "/2015-03-31/functions" .. target,
    body = value and cjson.encode(value) or "", headers = h })
  return status, hdrs, body
end

-- A VPC in account A with a subnet in each of two AZs and a DB subnet group "g" over them: the
-- status and body of CreateDBSubnetGroup.
local function db_subnet_group(sb)
  local _, _, body = query(sb, "ec2", A, { Action = "CreateVpc", CidrBlock = "10.20.0.0/16" })
  local vpc = body:match("<vpcId>(vpc%-%x+)</vpcId>")
  local _, _, zones = query(sb, "ec2", A, { Action = "DescribeAvailabilityZones" })
  local names = {}
  for n in zones:gmatch("<zoneName>([^<]+)</zoneName>") do names[#names + 1] = n end
  local ids = {}
  for i = 1, 2 do
    _, _, body = query(sb, "ec2", A, { Action = "CreateSubnet", VpcId = vpc, CidrBlock = "10.20." .. i .. ".0/24",
      AvailabilityZone = names[i] })
    ids[i] = body:match("<subnetId>(subnet%-%x+)</subnetId>")
  end
  local status
  status, _, body = query(sb, "rds", A, { Action = "CreateDBSubnetGroup", DBSubnetGroupName = "g",
    DBSubnetGroupDescription = "g", ["SubnetIds.member.1"] = ids[1], ["SubnetIds.member.2"] = ids[2] })
  return status, body
end

local zip_of = require "helpers.zip"

local TRUST_LAMBDA = cjson.encode { Version = "2012-10-17", Statement = { { Effect = "Allow",
  Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" } } }

local function make_role(sb, account, name, trust)
  local status, _, body = query(sb, "iam", account, { Action = "CreateRole", RoleName = name,
    AssumeRolePolicyDocument = trust or TRUST_LAMBDA })
  assert.equals(200, status, body)
  return body:match("<Arn>([^<]+)</Arn>")
end

local function make_function(sb, account, name, role_arn, handler_source, env)
  return lambda(sb, account, "POST", "", { FunctionName = name, Runtime = "python3.11", Role = role_arn,
    Handler = "main.handler", Timeout = 10,
    Code = { ZipFile = wire.base64_encode(zip_of { ["main.py"] = handler_source }) },
    Environment = env and { Variables = env } or nil })
end

local function mode_of(path)
  return (assert(process.call({ "stat", "-c", "%a", path })):gsub("%s+$", ""))
end

-- The next AccessKeyId a seeded xorshift generator would give after the request id `rid`
-- (its last 8 hex digits are the generator's last state, low nibble first).
local function predicted_key(rid)
  local tail = rid:sub(-8)
  local v = 0
  for i = 8, 1, -1 do v = (v << 4) | tonumber(tail:sub(i, i), 16) end
  local st = state_mod.new {}
  st.data.rng = v
  return "ASIA" .. st:token(16)
end

-- Records the argv and environment of every child the core starts while `fn` runs.
local function recording_children(fn)
  local p = core.process
  local real_spawn, real_capture = p.spawn, p.capture
  local seen = {}
  local function note(argv, opts)
    seen[#seen + 1] = table.concat(argv, " ")
    for k, v in pairs((opts or {}).env or {}) do seen[#seen + 1] = k .. "=" .. tostring(v) end
  end
  p.spawn = function(argv, opts) note(argv, opts); return real_spawn(argv, opts) end
  p.capture = function(argv, opts) note(argv, opts); return real_capture(argv, opts) end
  local ok, err = pcall(fn)
  p.spawn, p.capture = real_spawn, real_capture
  assert(ok, err)
  return table.concat(seen, "\n")
end

-- A process that keeps reading every /proc/*/cmdline for `patterns` (grep -e; each written so
-- that it does not match its own text) into a file; returns stop() -> what it found.
local function cmdline_scanner(patterns)
  local dir = process.tempdir("awsnet-scan")
  local args = {}
  for _, pat in ipairs(patterns) do args[#args + 1] = "-e " .. q(pat) end
  local proc = process.spawn({ "/bin/sh", "-c", string.format(
    "while :; do grep -a -o -h %s /proc/[0-9]*/cmdline 2>/dev/null; sleep 0.02; done", table.concat(args, " ")) },
    { log = dir .. "/found" })
  return function()
    proc.stop(1)
    local found = process.read_file(dir .. "/found") or ""
    os.execute("rm -rf " .. q(dir))
    return found
  end
end

describe("sandbox security", function()
  local sb
  before_each(function() sb = assert(sandbox.start { port = 0, transition_s = 0, log = function() end }) end)
  after_each(function() if sb then sb:stop(); sb = nil end end)

  describe("authentication (item 3)", function()
    it("refuses an x-amz-content-sha256 that is not the body's hash, and UNSIGNED-PAYLOAD", function()
      -- signed for DescribeVpcs with an unsigned payload, sent with a CreateVpc body
      local status, _, body = query(sb, "ec2", A, { Action = "DescribeVpcs" }, { sign = {
        unsigned_payload = true, content_sha256_header = true },
        send_body = form { Action = "CreateVpc", CidrBlock = "10.9.0.0/16", Version = "2016-11-15" } })
      assert.equals(401, status, body)
      assert.matches("<Code>AuthFailure</Code>", body)
      assert.matches("UNSIGNED-PAYLOAD", body, 1, true)
      -- even with the body it was signed with
      status, _, body = query(sb, "sts", A, { Action = "GetCallerIdentity" }, { sign = {
        unsigned_payload = true, content_sha256_header = true } })
      assert.equals(403, status, body)
      assert.matches("<Code>SignatureDoesNotMatch</Code>", body)
      -- a signed hash of one body, sent with another
      status, _, body = query(sb, "ec2", A, { Action = "DescribeVpcs" }, { sign = { content_sha256_header = true },
        send_body = form { Action = "CreateVpc", CidrBlock = "10.9.0.0/16", Version = "2016-11-15" } })
      assert.equals(401, status, body)
      assert.matches("<Code>AuthFailure</Code>", body)
      assert.matches("x%-amz%-content%-sha256", body)
      -- nothing was created
      status, _, body = query(sb, "ec2", A, { Action = "DescribeVpcs" })
      assert.equals(200, status)
      assert.not_matches("10.9.0.0", body, 1, true)
      -- the right hash is fine
      status, _, body = query(sb, "ec2", A, { Action = "DescribeVpcs" }, { sign = { content_sha256_header = true } })
      assert.equals(200, status, body)
    end)

    it("wants host among the signed headers", function()
      local status, _, body = query(sb, "sts", A, { Action = "GetCallerIdentity" },
        { sign = { signed_headers = { "content-type", "x-amz-date" } } })
      assert.equals(400, status, body)
      assert.matches("<Code>IncompleteSignature</Code>", body)
      assert.matches("'Host' must be a 'SignedHeader'", unxml(body), 1, true)
      local hdrs
      status, hdrs, body = call(sb, "lambda", A, { method = "GET", target = "/2015-03-31/functions" },
        { sign = { signed_headers = { "x-amz-date" } } })
      assert.equals(403, status, body)
      assert.equals("InvalidSignatureException", hdrs["x-amzn-errortype"])
    end)

    it("wants the credential scope's service to be the one the request addresses", function()
      -- an STS call signed for IAM
      local status, _, body = query(sb, "iam", A, { Action = "GetCallerIdentity", Version = "2011-06-15" })
      assert.equals(403, status, body)
      assert.matches("<Code>SignatureDoesNotMatch</Code>", body)
      assert.matches("Credential should be scoped to correct service: 'sts'", unxml(body), 1, true)
      -- an EC2 call signed for RDS
      status, _, body = query(sb, "rds", A, { Action = "DescribeVpcs", Version = "2016-11-15" })
      assert.equals(401, status, body)
      assert.matches("<Code>AuthFailure</Code>", body)
      assert.matches("Credential should be scoped to correct service: 'ec2'", unxml(body), 1, true)
      -- a Lambda path signed for RAM
      local hdrs
      status, hdrs, body = call(sb, "ram", A, { method = "GET", target = "/2015-03-31/functions" })
      assert.equals(403, status, body)
      assert.equals("InvalidSignatureException", hdrs["x-amzn-errortype"])
      assert.matches("Credential should be scoped to correct service: 'lambda'", body, 1, true)
    end)
  end)

  describe("accounts (item 4)", function()
    it("refuses a function whose execution role is another account's", function()
      local b_role = make_role(sb, B, "b-exec")
      local status, hdrs, body = make_function(sb, A, "thief", b_role, "def handler(e, c):\n    return 1\n")
      assert.equals(403, status, body)
      assert.equals("AccessDeniedException", hdrs["x-amzn-errortype"])
      assert.matches("iam:PassRole", body, 1, true)
      -- nor by an update
      local a_role = make_role(sb, A, "a-exec")
      status = make_function(sb, A, "mine", a_role, "def handler(e, c):\n    return 1\n")
      assert.equals(201, status)
      status, hdrs = lambda(sb, A, "PUT", "/mine/configuration", { Role = b_role })
      assert.equals(403, status)
      assert.equals("AccessDeniedException", hdrs["x-amzn-errortype"])
    end)

    it("refuses another account's function by ARN instead of running the caller's namesake", function()
      for _, account in ipairs({ A, B }) do
        local role = make_role(sb, account, "exec")
        local status = make_function(sb, account, "f", role,
          "def handler(e, c):\n    return '" .. account .. "'\n")
        assert.equals(201, status)
      end
      local b_arn = "arn:aws:lambda:us-east-1:" .. B .. ":function:f"
      local status, hdrs, body = lambda(sb, A, "POST", "/" .. b_arn:gsub(":", "%%3A") .. "/invocations", {})
      assert.equals(403, status, body)
      assert.equals("AccessDeniedException", hdrs["x-amzn-errortype"])
      assert.matches("lambda:InvokeFunction", body, 1, true)
      assert.not_matches(A, body:match('"Payload"') or "", 1, true)
      status, hdrs = lambda(sb, A, "GET", "/" .. B .. "%3Afunction%3Af")
      assert.equals(403, status)
      assert.equals("AccessDeniedException", hdrs["x-amzn-errortype"])
      -- its own function by its own ARN still works
      status, hdrs, body = lambda(sb, A, "POST", "/" .. ("arn:aws:lambda:us-east-1:" .. A .. ":function:f"):gsub(":", "%%3A")
        .. "/invocations", {})
      assert.equals(200, status, body)
      assert.equals("$LATEST", hdrs["x-amz-executed-version"])
      assert.equals('"' .. A .. '"', body)
    end)

    it("gives temporary credentials no one predicts from request ids or the seed", function()
      make_role(sb, B, "cross", cjson.encode { Version = "2012-10-17", Statement = { { Effect = "Allow",
        Principal = { AWS = "arn:aws:iam::" .. A .. ":root" }, Action = "sts:AssumeRole" } } })
      local status, _, body = query(sb, "sts", A, { Action = "AssumeRole",
        RoleArn = "arn:aws:iam::" .. B .. ":role/cross", RoleSessionName = "s" })
      assert.equals(200, status, body)
      local key, rid = body:match("<AccessKeyId>([^<]+)</AccessKeyId>"), body:match("<RequestId>([^<]+)</RequestId>")
      assert.matches("^ASIA[A-Z0-9]+$", key)
      assert.are_not.equal(predicted_key(rid), key)
      -- the same seed and the same calls: other keys
      local other = assert(sandbox.start { port = 0, transition_s = 0 })
      make_role(other, B, "cross", cjson.encode { Version = "2012-10-17", Statement = { { Effect = "Allow",
        Principal = { AWS = "arn:aws:iam::" .. A .. ":root" }, Action = "sts:AssumeRole" } } })
      local _, _, body2 = query(other, "sts", A, { Action = "AssumeRole",
        RoleArn = "arn:aws:iam::" .. B .. ":role/cross", RoleSessionName = "s" })
      other:stop()
      assert.are_not.equal(key, body2:match("<AccessKeyId>([^<]+)</AccessKeyId>"))
      assert.are_not.equal(body:match("<SecretAccessKey>([^<]+)</SecretAccessKey>"),
        body2:match("<SecretAccessKey>([^<]+)</SecretAccessKey>"))
      -- the keys work, as B's role
      local creds = { access_key_id = key, secret_access_key = body:match("<SecretAccessKey>([^<]+)</SecretAccessKey>"),
        session_token = body:match("<SessionToken>([^<]+)</SessionToken>") }
      status, _, body = query(sb, "sts", creds, { Action = "GetCallerIdentity" })
      assert.equals(200, status, body)
      assert.matches("<Account>" .. B .. "</Account>", body)
      -- a Lambda's role keys likewise
      local role = make_role(sb, A, "exec")
      assert.equals(201, (make_function(sb, A, "keys", role,
        "import os\ndef handler(e, c):\n    return os.environ['AWS_ACCESS_KEY_ID']\n")))
      local hdrs
      status, hdrs, body = lambda(sb, A, "POST", "/keys/invocations", {})
      assert.equals(200, status, body)
      assert.matches('^"ASIA', body)
      assert.are_not.equal('"' .. predicted_key(hdrs["x-amzn-requestid"]) .. '"', body)
    end)
  end)

  describe("input that reaches SQL (item 5)", function()
    -- A VPC with a DB subnet group over two AZs in account A.
    local function subnet_group()
      local status, body = db_subnet_group(sb)
      assert.equals(200, status, body)
    end

    local function create_db(params)
      local p = { Action = "CreateDBInstance", DBInstanceIdentifier = "db1", DBInstanceClass = "db.t3.micro",
        Engine = "mariadb", MasterUsername = "admin", MasterUserPassword = "Pw7secret-1", DBSubnetGroupName = "g" }
      for k, v in pairs(params) do p[k] = v end
      return query(sb, "rds", A, p)
    end

    it("refuses identifiers outside AWS's rules, so none runs SQL as the database's root", function()
      subnet_group()
      local status, _, body = create_db { DBName = "x` CHARACTER SET utf8mb4; CREATE DATABASE pwned; #" }
      assert.equals(400, status, body)
      assert.matches("<Code>InvalidParameterValue</Code>", body)
      assert.is_nil(next(sb.databases or {}))
      for _, bad in ipairs({
        { DBName = "1abc" }, { DBName = "a-b" }, { DBName = string.rep("d", 65) },
        { MasterUsername = "adm'in" }, { MasterUsername = "select" }, { MasterUsername = string.rep("u", 17) },
        { MasterUsername = "_admin" }, { DBInstanceIdentifier = "a--b" }, { DBInstanceIdentifier = "a-" },
        { DBInstanceIdentifier = "1a" }, { DBInstanceIdentifier = "a_b" },
      }) do
        status, _, body = create_db(bad)
        assert.equals(400, status, cjson.encode(bad) .. body)
        assert.matches("<Code>InvalidParameterValue</Code>", body)
      end
      -- within the rules: the database and the master user are there, the password as given
      status, _, body = create_db { DBName = "app_db1", MasterUserPassword = "pa'ss\\wo`rd;1" }
      assert.equals(200, status, body)
      local _, srv = next(sb.databases)
      assert.matches("app_db1", assert(srv:sql("SHOW DATABASES")), 1, true)
      assert.not_matches("pwned", srv:sql("SHOW DATABASES"), 1, true)
      assert.equals("admin\n", srv:sql("SELECT User FROM mysql.user WHERE User = 'admin'"))
      assert.equals("1\n", srv:sql(
        "SELECT COUNT(*) FROM mysql.user WHERE User = 'admin' AND authentication_string = PASSWORD('pa''ss\\\\wo`rd;1')"))
    end)
  end)

  describe("secrets (item 6)", function()
    it("puts no Lambda environment or role keys on a command line", function()
      local marker = "Zq9SECRET" .. tostring(os.time())
      local role = make_role(sb, A, "exec")
      assert.equals(201, (make_function(sb, A, "env", role, table.concat({
        "import os, time, json",
        "def handler(e, c):",
        "    time.sleep(0.6)",
        "    return json.dumps([os.environ.get('SECRET_ENV'), os.environ.get('AWS_ACCESS_KEY_ID'),",
        "                       os.environ.get('AWS_SECRET_ACCESS_KEY'), os.environ.get('AWS_SESSION_TOKEN')])",
      }, "\n"), { SECRET_ENV = marker })))
      local stop = cmdline_scanner { "Z[q]9SECRET[0-9]*", "A[S]IA[A-Z0-9]\\{16\\}" }
      local status, _, body
      local children = recording_children(function()
        status, _, body = lambda(sb, A, "POST", "/env/invocations", {})
      end)
      local found = stop()
      assert.equals(200, status, body)
      local got = cjson.decode(cjson.decode(body))
      -- the function still sees its environment
      assert.equals(marker, got[1])
      assert.matches("^ASIA", got[2])
      assert.equals("", found)
      for _, secret in ipairs(got) do
        assert.not_matches(secret, children, 1, true)
      end
    end)

    it("puts no master password on a command line, and no error quotes it", function()
      db_subnet_group(sb)
      local password = "Pw7" .. tostring(os.time() % 1000000)
      -- a DBName that breaks the SQL: the error must not quote the statement with the password
      local status, _, body = query(sb, "rds", A, { Action = "CreateDBInstance", DBInstanceIdentifier = "db0",
        DBInstanceClass = "db.t3.micro", Engine = "mariadb", MasterUsername = "admin",
        MasterUserPassword = password, DBSubnetGroupName = "g", DBName = "a`b" })
      assert.is_true(status >= 400)
      assert.not_matches(password, body, 1, true)
      local stop = cmdline_scanner { "P[w]7[0-9]*" }
      local children = recording_children(function()
        status, _, body = query(sb, "rds", A, { Action = "CreateDBInstance", DBInstanceIdentifier = "db1",
          DBInstanceClass = "db.t3.micro", Engine = "mariadb", MasterUsername = "admin",
          MasterUserPassword = password, DBSubnetGroupName = "g", DBName = "app" })
      end)
      local found = stop()
      assert.equals(200, status, body)
      assert.not_matches(password, children, 1, true)
      assert.equals("", found)
      assert.not_matches(password, body, 1, true)
    end)
  end)

  describe("tags (item 8)", function()
    it("refuses characters XML 1.0 cannot carry and escapes every other one", function()
      local _, _, body = query(sb, "ec2", A, { Action = "CreateVpc", CidrBlock = "10.30.0.0/16" })
      local vpc = body:match("<vpcId>(vpc%-%x+)</vpcId>")
      for _, bad in ipairs({ "a\1b", "a\0b", "\27[31m", "a\xffb", "a\xef\xbf\xbeb", "a\xed\xa0\x80b" }) do
        local status
        status, _, body = query(sb, "ec2", A, { Action = "CreateTags", ["ResourceId.1"] = vpc,
          ["Tag.1.Key"] = "k", ["Tag.1.Value"] = bad })
        assert.equals(400, status, body)
        assert.matches("<Code>InvalidParameterValue</Code>", body)
        status, _, body = query(sb, "ec2", A, { Action = "CreateTags", ["ResourceId.1"] = vpc,
          ["Tag.1.Key"] = bad, ["Tag.1.Value"] = "v" })
        assert.equals(400, status, body)
        status, _, body = query(sb, "ec2", A, { Action = "CreateVpc", CidrBlock = "10.31.0.0/16",
          ["TagSpecification.1.ResourceType"] = "vpc", ["TagSpecification.1.Tag.1.Key"] = "Name",
          ["TagSpecification.1.Tag.1.Value"] = bad })
        assert.equals(400, status, body)
      end
      local fine = "<&>\"' \t\r\n tab é 日本 😀 \xef\xbf\xbd"
      local status
      status, _, body = query(sb, "ec2", A, { Action = "CreateTags", ["ResourceId.1"] = vpc,
        ["Tag.1.Key"] = "k", ["Tag.1.Value"] = fine })
      assert.equals(200, status, body)
      -- every account's Describe still parses, and the value comes back as it went in
      for _, account in ipairs({ A, B }) do
        status, _, body = query(sb, "ec2", account, { Action = "DescribeVpcs" })
        assert.equals(200, status)
        assert.truthy(core.xml.parse(body, { item = true }))
      end
      _, _, body = query(sb, "ec2", A, { Action = "DescribeVpcs", ["VpcId.1"] = vpc })
      local _, doc = assert(core.xml.parse(body, { item = true }))
      assert.equals(fine, doc.vpcSet[1].tagSet[1].value)
      assert.truthy(sb:model())
    end)
  end)

  describe("--state-dir (item 9)", function()
    it("keeps the permissions of a folder it did not create", function()
      local base = process.tempdir("awsnet-statedir")
      assert(process.call({ "chmod", "755", base }))
      local existing = base .. "/mine"
      assert(process.call({ "mkdir", "-m", "750", existing }))
      local s1 = assert(sandbox.start { port = 0, state_dir = existing })
      query(s1, "ec2", A, { Action = "CreateVpc", CidrBlock = "10.40.0.0/16" })
      s1:stop()
      assert.equals("750", mode_of(existing))
      -- the saved world, which holds secrets, is the owner's only
      assert.equals("600", mode_of(existing .. "/sandbox-state.json"))
      -- a folder it creates is the owner's only
      local fresh = base .. "/new/deeper"
      local s2 = assert(sandbox.start { port = 0, state_dir = fresh })
      s2:stop()
      assert.equals("700", mode_of(fresh))
      assert.equals("755", mode_of(base))
      os.execute("rm -rf " .. q(base))
    end)
  end)
end)
