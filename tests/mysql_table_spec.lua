-- report.mysql_table lays out what the scenario's Lambda reads back exactly as the real `mariadb`
-- client does with --table (borders, widths, double-width characters, NULL, numbers right-aligned):
-- the handler runs the article's statements against a real MariaDB, reads back, and each of its
-- results must equal the client's output on the same server byte for byte.
local services = require "helpers.services"
local lambda_zip = require "awsnet.scenario.lambda_zip"
local report = require "awsnet.report"
local cjson = require "cjson"
local process = services.process
local q = process.quote

describe("report.display_width", function()
  it("counts East Asian Wide and Fullwidth characters as 2", function()
    assert.equals(14, report.display_width("テストユーザー"))
    assert.equals(5, report.display_width("abc漢"))
    assert.equals(4, report.display_width("ＡＢ"))
    assert.equals(4, report.display_width("café"))
    assert.equals(2, report.display_width("한"))
    assert.equals(0, report.display_width(""))
    assert.equals(2, report.display_width("a\255"))   -- not UTF-8: a cell per byte
  end)
end)

describe("report.mysql_table against the mariadb client", function()
  local srv, dir

  local function invoke(event, extra)
    local env = { RDS_HOST = "127.0.0.1", RDS_PORT = tostring(srv.port), RDS_USERNAME = srv.user,
      RDS_PASSWORD = srv.password, RDS_DATABASE = srv.database, RDS_EXTRA_COLUMNS = extra and "1" or "" }
    local vars = {}
    for k, v in pairs(env) do vars[#vars + 1] = q(k .. "=" .. v) end
    local script = "import json, sys; sys.path.insert(0, sys.argv[1]); import handler; " ..
      "print(json.dumps(handler.lambda_handler(json.loads(sys.argv[2]), None)))"
    return cjson.decode(services.sh(string.format("cd / && env -i %s /usr/bin/python3 -S -c %s %s %s",
      table.concat(vars, " "), q(script), q(dir), q(cjson.encode(event)))))
  end

  local function client(sql)
    return services.sh(string.format("mariadb --no-defaults -uroot --socket=%s --default-character-set=utf8mb4 " ..
      "--table %s -e %s", q(srv.socket), q(srv.database), q(sql)))
  end

  setup(function()
    srv = services.mariadb({ database = "sampledb", user = "admin", tls = false })
    dir = process.tempdir("awsnet-mysql-table-test")
    process.write_file(dir .. "/lambda.zip", assert(lambda_zip.build()))
    services.sh("cd " .. q(dir) .. " && unzip -q lambda.zip")
  end)
  teardown(function()
    if dir then os.execute("rm -rf " .. q(dir)) end
    services.stop_all()
  end)

  it("prints SHOW TABLES, SHOW COLUMNS FROM users and the rows as the client does", function()
    assert.equals(200, invoke({}).statusCode)                    -- the article's row
    assert.equals(200, invoke({ name = "ab" }).statusCode)      -- a narrower one
    srv:sql("INSERT INTO sampledb.users (name) VALUES (NULL)")  -- and a NULL
    local v = invoke({ action = "verify" })
    assert.equals(200, v.statusCode)
    assert.equals(3, #v.results)
    for _, res in ipairs(v.results) do
      assert.equals(client(res.sql), report.mysql_table(res))
    end
    local shown = report.mysql_table(v.results[3])
    assert.matches("|  1 | テストユーザー        |", shown, 1, true)
    -- the article's columns, as this server reports them
    local cols = report.mysql_table(v.results[2])
    assert.matches("| id    | int(11)     | NO   | PRI | NULL    | auto_increment |", cols, 1, true)
    assert.matches("| name  | varchar(50) | YES  |     | NULL    |                |", cols, 1, true)
    assert.matches("| Tables_in_sampledb |\n+--------------------+\n| users              |", report.mysql_table(v.results[1]),
      1, true)
  end)

  it("adds the email column only when asked (extra_columns)", function()
    srv:sql("DROP TABLE sampledb.users")
    assert.equals(200, invoke({}, true).statusCode)
    local v = invoke({ action = "verify" })
    assert.same({ "id", "name", "email" }, { v.columns[1].field, v.columns[2].field, v.columns[3].field })
    assert.equals(client("SELECT * FROM users ORDER BY id"), report.mysql_table(v.results[3]))
  end)

  it("lays out a MySQL 8 answer (int without a display width) the same way", function()
    local t = report.mysql_table{ columns = { { name = "Field" }, { name = "Type" }, { name = "Null" }, { name = "Key" },
      { name = "Default", nullable = true }, { name = "Extra" } },
      rows = { { "id", "int", "NO", "PRI", cjson.null, "auto_increment" },
        { "name", "varchar(50)", "YES", "", cjson.null, "" } } }
    assert.equals(table.concat({
      "+-------+-------------+------+-----+---------+----------------+",
      "| Field | Type        | Null | Key | Default | Extra          |",
      "+-------+-------------+------+-----+---------+----------------+",
      "| id    | int         | NO   | PRI | NULL    | auto_increment |",
      "| name  | varchar(50) | YES  |     | NULL    |                |",
      "+-------+-------------+------+-----+---------+----------------+", "" }, "\n"), t)
    assert.equals("", report.mysql_table{ columns = {} })
  end)
end)
