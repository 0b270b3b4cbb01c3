-- The scenario's Lambda handler, run by Python against a real MariaDB from its deployment zip,
-- with Python's site packages switched off so that only the bundled PyMySQL can be imported.
local services = require "helpers.services"
local lambda_zip = require "awsnet.scenario.lambda_zip"
local cjson = require "cjson"
local process = services.process
local q = process.quote

describe("scenario Lambda handler", function()
  local srv, dir

  -- Runs the unzipped handler with `event` and the RDS_* environment; returns the decoded result.
  local function invoke(event, env)
    local vars = {}
    for k, v in pairs(env) do vars[#vars + 1] = q(k .. "=" .. v) end
    local script = "import json, sys; sys.path.insert(0, sys.argv[1]); import handler; " ..
      "print(json.dumps(handler.lambda_handler(json.loads(sys.argv[2]), None)))"
    local out = services.sh(string.format("cd / && env -i %s /usr/bin/python3 -S -c %s %s %s",
      table.concat(vars, " "), q(script), q(dir), q(cjson.encode(event))))
    return cjson.decode(out)
  end

  local function env(overrides)
    local e = { RDS_HOST = "127.0.0.1", RDS_PORT = tostring(srv.port), RDS_USERNAME = srv.user,
      RDS_PASSWORD = srv.password, RDS_DATABASE = srv.database, RDS_SSL_CA = srv.ca }
    for k, v in pairs(overrides or {}) do e[k] = v or nil end
    return e
  end

  setup(function()
    srv = services.mariadb({ database = "sampledb", user = "admin" })
    dir = process.tempdir("awsnet-lambda-test")
    local zip = assert(lambda_zip.build())
    process.write_file(dir .. "/lambda.zip", zip)
    services.sh("cd " .. q(dir) .. " && unzip -q lambda.zip")
  end)
  teardown(function()
    if dir then os.execute("rm -rf " .. q(dir)) end
    services.stop_all()
  end)

  it("bundles the handler and PyMySQL", function()
    local listing = services.sh("cd " .. q(dir) .. " && unzip -Z1 lambda.zip")
    assert.matches("handler.py", listing, 1, true)
    assert.matches("pymysql/__init__.py", listing, 1, true)
    assert.is_nil(listing:find("__pycache__", 1, true))
  end)

  it("runs the article's CREATE TABLE and INSERT over TLS, then reads both back", function()
    local r = invoke({}, env())
    assert.equals(200, r.statusCode)
    assert.equals(1, r.id)
    r = invoke({ action = "write", name = "Jane Roe" }, env())
    assert.equals(2, r.id)
    local v = invoke({ action = "verify" }, env())
    assert.same({ "users" }, v.tables)
    assert.equals("sampledb", v.database)
    -- the article's table: id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50), nothing else
    assert.equals(2, #v.columns)
    assert.same({ field = "id", type = "int(11)", null = "NO", key = "PRI", default = cjson.null,
      extra = "auto_increment" }, v.columns[1])
    assert.same({ field = "name", type = "varchar(50)", null = "YES", key = "", default = cjson.null, extra = "" }, v.columns[2])
    assert.same({ id = 1, name = "テストユーザー" }, v.rows[1])
    assert.equals("Jane Roe", v.rows[2].name)
    -- and the server agrees, asked directly
    assert.equals("2\n", srv:sql("SELECT COUNT(*) FROM sampledb.users"))
    assert.equals("テストユーザー\n", srv:sql("SELECT name FROM sampledb.users WHERE id = 1"))
  end)

  it("reports a refused connection without the password", function()
    local r = invoke({ action = "verify" }, env({ RDS_PASSWORD = "wrong-pass-xyz" }))
    assert.equals(502, r.statusCode)
    assert.matches("cannot connect to 127.0.0.1", r.body)
    assert.is_nil(r.body:find("wrong-pass-xyz", 1, true))
  end)

  it("rejects an unknown action", function()
    assert.equals(400, invoke({ action = "drop" }, env()).statusCode)
  end)

  it("fails to build without PyMySQL at the given path", function()
    local zip, err = lambda_zip.build({ pymysql = "/nonexistent" })
    assert.is_nil(zip)
    assert.equals("missing", err.code)
  end)
end)
