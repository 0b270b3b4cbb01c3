-- awsnet.mariadb against throwaway MariaDB servers on loopback.
local services = require "helpers.services"
local mariadb = require "awsnet.mariadb"
local process = services.process
local socket = require "socket"

local function connect_to(srv, extra)
  local opts = { host = srv.host, port = srv.port, user = srv.user, password = srv.password,
    database = srv.database, connect_timeout = 5 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return mariadb.connect(opts)
end

-- A loopback port nobody listens on.
local function closed_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

describe("awsnet.mariadb", function()
  local srv, db
  setup(function()
    srv = services.mariadb({ database = "app", user = "writer" })
    db = assert(connect_to(srv))
  end)
  teardown(function()
    if db then db:close() end
    services.stop_all()
  end)

  describe("the article's table", function()
    it("creates it, inserts, and reads it back with SHOW TABLES, SHOW COLUMNS and SELECT", function()
      assert(db:execute("CREATE TABLE IF NOT EXISTS users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50))"))
      local res = assert(db:execute("INSERT INTO users (name) VALUES (?)", "テストユーザー"))
      assert.equals(1, res.affected_rows)
      assert.is_true(math.type(res.insert_id) == "integer" and res.insert_id >= 1)
      local tables = assert(db:query("SHOW TABLES"))
      assert.same({ { Tables_in_app = "users" } }, tables)
      local columns = assert(db:query("SHOW COLUMNS FROM users"))
      assert.same({ "id", "int(11)", "NO", "PRI", "auto_increment" },
        { columns[1].Field, columns[1].Type, columns[1].Null, columns[1].Key, columns[1].Extra })
      assert.same({ "name", "varchar(50)", "YES" }, { columns[2].Field, columns[2].Type, columns[2].Null })
      assert.equals(mariadb.null, columns[2].Default)
      local rows, meta = assert(db:query("SELECT id, name FROM users WHERE id = ?", res.insert_id))
      assert.same({ { id = res.insert_id, name = "テストユーザー" } }, rows)
      assert.same({ "id", "INT", false, true, true }, { meta[1].name, meta[1].type, meta[1].nullable,
        meta[1].primary_key, meta[1].auto_increment })
      assert.same({ "name", "VARCHAR", true, "users" }, { meta[2].name, meta[2].type, meta[2].nullable, meta[2].table })
    end)
  end)

  describe("values", function()
    it("round-trips every bind type through a table", function()
      assert(db:execute([[CREATE TABLE kinds (id INT PRIMARY KEY, i BIGINT, f DOUBLE, b BOOLEAN,
        s VARBINARY(64), u VARCHAR(50), n INT, d DECIMAL(10,2), t DATETIME, day DATE, ub BIGINT UNSIGNED)]]))
      local blob = "a\0b\0\255"
      assert(db:execute("INSERT INTO kinds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        1, math.maxinteger, 0.1, true, blob, "テストユーザー", nil, "12345678.90", "2026-11-29 08:00:01",
        "2026-11-29", math.maxinteger))
      assert(db:execute("INSERT INTO kinds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        2, math.mininteger, -1.5e300, false, "", "", mariadb.null, mariadb.null, nil, nil, nil))
      assert(db:execute("UPDATE kinds SET ub = ub * 2 + 1 WHERE id = 1"))
      local rows = assert(db:query("SELECT * FROM kinds ORDER BY id"))
      assert.same({ id = 1, i = math.maxinteger, f = 0.1, b = 1, s = blob, u = "テストユーザー", n = mariadb.null,
        d = "12345678.90", t = "2026-11-29 08:00:01", day = "2026-11-29", ub = "18446744073709551615" }, rows[1])
      assert.same({ id = 2, i = math.mininteger, f = -1.5e300, b = 0, s = "", u = "", n = mariadb.null,
        d = mariadb.null, t = mariadb.null, day = mariadb.null, ub = mariadb.null }, rows[2])
      assert.equals("integer", math.type(rows[1].i))
      assert.equals("float", math.type(rows[1].f))
    end)

    it("binds parameters of every Lua type directly", function()
      local rows = assert(db:query("SELECT ? AS a, ? AS b, ? AS c, ? AS d, ? AS e, ? AS f",
        42, 2.5, "x\0y", true, nil, mariadb.null))
      assert.same({ a = 42, b = 2.5, c = "x\0y", d = 1, e = mariadb.null, f = mariadb.null }, rows[1])
      assert.is_true(mariadb.is_null(rows[1].e))
    end)

    it("returns rows as arrays when asked", function()
      local rows = assert(db:query({ sql = "SELECT ? AS a, ? AS b", rows = "array" }, 1, "two"))
      assert.same({ { 1, "two" } }, rows)
    end)

    it("reads values longer than the first buffer", function()
      local rows = assert(db:query("SELECT REPEAT('x', 100000) AS big, ? AS small, REPEAT('y', 300) AS mid", "s"))
      assert.equals(string.rep("x", 100000), rows[1].big)
      assert.equals(string.rep("y", 300), rows[1].mid)
      assert.equals("s", rows[1].small)
    end)

    it("streams a large result set with an iterator", function()
      local count, sum = 0, 0
      for row in assert(db:rows("SELECT seq FROM seq_1_to_50000")) do
        count, sum = count + 1, sum + row.seq
      end
      assert.equals(50000, count)
      assert.equals(50000 * 50001 // 2, sum)
    end)

    it("ends an abandoned stream when the next command starts", function()
      local it = assert(db:rows("SELECT seq FROM seq_1_to_1000"))
      assert.equals(1, it().seq)
      assert.same({ { n = 7 } }, assert(db:query("SELECT 7 AS n")))
      assert.is_nil(it())
    end)

    it("runs statements the prepared protocol refuses over the text protocol, typed alike", function()
      assert(db:execute("PREPARE twice FROM 'SELECT ? * 2 AS n, CAST(? AS DECIMAL(4,1)) AS d, NULL AS z'"))
      assert(db:execute("SET @v = 21"))
      local rows, columns = assert(db:query("EXECUTE twice USING @v, @v"))
      assert.same({ { n = 42, d = "21.0", z = mariadb.null } }, rows)
      assert.equals("n", columns[1].name)
      assert.same({ { 42, "21.0", mariadb.null } }, assert(db:query({ sql = "EXECUTE twice USING @v, @v", rows = "array" })))
    end)

    it("caches statements per connection", function()
      local function prepares()
        return assert(db:query("SHOW SESSION STATUS LIKE 'Com_stmt_prepare'"))[1].Value
      end
      prepares()
      local before = tonumber(prepares())
      for i = 1, 5 do assert(db:query("SELECT ? + 1 AS n", i)) end
      assert.equals(before + 1, tonumber(prepares()))
    end)
  end)

  describe("insert_many", function()
    it("inserts many rows with one statement, NULLs and odd strings included", function()
      assert(db:execute("CREATE TABLE many (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50), n BIGINT, f DOUBLE)"))
      local rows = {}
      for i = 1, 2500 do
        rows[i] = { i % 7 == 0 and mariadb.null or ("user-" .. i .. "\0テスト"), i, i % 2 == 0 and i / 4 or i }
      end
      rows[3] = { nil, nil, nil, n = 3 }
      local res = assert(db:insert_many("INSERT INTO many (name, n, f) VALUES (?, ?, ?)", rows, { chunk = 1000 }))
      assert.equals(2500, res.affected_rows)
      local check = assert(db:query("SELECT COUNT(*) AS c, COUNT(name) AS named, SUM(n) AS s FROM many"))[1]
      assert.same({ c = 2500, named = 2500 - 357 - 1, s = "3126247" }, check)
      local r10 = assert(db:query("SELECT name, n, f FROM many WHERE n = 10"))[1]
      assert.same({ name = "user-10\0テスト", n = 10, f = 2.5 }, r10)
      assert.same({ name = mariadb.null, n = mariadb.null, f = mariadb.null },
        assert(db:query("SELECT name, n, f FROM many WHERE id = ?", res.insert_id + 2))[1])
    end)

    it("executes row by row where array binding is not available", function()
      assert(db:execute("CREATE TABLE rowwise (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50))"))
      local res = assert(db:insert_many("INSERT INTO rowwise (name) VALUES (?)", { { "x" }, { mariadb.null }, { "z" } },
        { array_binding = false }))
      assert.same({ affected_rows = 3, insert_id = 1 }, res)
      assert.same({ { 1, "x" }, { 2, mariadb.null }, { 3, "z" } },
        assert(db:query({ sql = "SELECT id, name FROM rowwise ORDER BY id", rows = "array" })))
    end)

    it("rolls the whole batch back when one row fails", function()
      assert(db:execute("CREATE TABLE uniq (id INT PRIMARY KEY)"))
      local _, err = db:insert_many("INSERT INTO uniq VALUES (?)", { { 1 }, { 2 }, { 2 }, { 3 } })
      assert.equals("sql", err.code)
      assert.equals(1062, err.errno)
      assert.equals("23000", err.sqlstate)
      assert.same({ { c = 0 } }, assert(db:query("SELECT COUNT(*) AS c FROM uniq")))
    end)

    it("refuses rows that mix strings and numbers in a column", function()
      assert.has_error(function() db:insert_many("INSERT INTO uniq VALUES (?)", { { 1 }, { "2" } }) end)
    end)
  end)

  describe("transactions", function()
    before_each(function()
      assert(db:execute("CREATE TABLE IF NOT EXISTS tx (id INT PRIMARY KEY)"))
      assert(db:execute("DELETE FROM tx"))
    end)
    local function count() return assert(db:query("SELECT COUNT(*) AS c FROM tx"))[1].c end

    it("commits and rolls back", function()
      assert(db:begin()); assert(db:execute("INSERT INTO tx VALUES (1)")); assert(db:rollback())
      assert.equals(0, count())
      assert(db:begin()); assert(db:execute("INSERT INTO tx VALUES (1)")); assert(db:commit())
      assert.equals(1, count())
    end)

    it("runs a function in a transaction, rolling back when it raises or fails", function()
      assert.equals("done", db:transaction(function(tx) assert(tx:execute("INSERT INTO tx VALUES (1)")); return "done" end))
      assert.has_error(function()
        db:transaction(function(tx) assert(tx:execute("INSERT INTO tx VALUES (2)")); error("boom") end)
      end, "boom")
      local _, err = db:transaction(function(tx)
        assert(tx:execute("INSERT INTO tx VALUES (3)"))
        return tx:execute("INSERT INTO tx VALUES (1)") -- duplicate: nil, err
      end)
      assert.equals(1062, err.errno)
      assert.same({ { id = 1 } }, assert(db:query("SELECT id FROM tx")))
    end)
  end)

  describe("errors", function()
    it("returns SQL errors with errno and SQLSTATE", function()
      local _, err = db:query("SELEC 1")
      assert.same({ "sql", 1064, "42000" }, { err.code, err.errno, err.sqlstate })
      _, err = db:execute("INSERT INTO no_such_table VALUES (?)", 1)
      assert.same({ "sql", 1146, "42S02" }, { err.code, err.errno, err.sqlstate })
      assert.matches("no_such_table", tostring(err))
    end)

    it("says auth for a bad password, without the password", function()
      local conn, err = connect_to(srv, { password = "not-the-password" })
      assert.is_nil(conn)
      assert.same({ "auth", 1045, "28000" }, { err.code, err.errno, err.sqlstate })
      assert.is_nil(tostring(err):find("not-the-password", 1, true))
    end)

    it("says network for a port nobody listens on", function()
      local _, err = connect_to(srv, { port = closed_port() })
      assert.equals("network", err.code)
      assert.is_true(err.errno >= 2000)
    end)

    it("fails within connect_timeout when nobody answers the handshake", function()
      -- a listener whose backlog is full drops further SYNs: the symptom of a missing route
      local listener = assert(socket.tcp())
      assert(listener:bind("127.0.0.1", 0))
      assert(listener:listen(0))
      local _, port = listener:getsockname()
      local fillers = {}
      for i = 1, 4 do
        fillers[i] = socket.tcp()
        fillers[i]:settimeout(0)
        fillers[i]:connect("127.0.0.1", port)
      end
      local started = socket.gettime()
      local conn, err = connect_to(srv, { port = port, connect_timeout = 1 })
      local elapsed = socket.gettime() - started
      for _, f in ipairs(fillers) do f:close() end
      listener:close()
      assert.is_nil(conn)
      assert.equals("timeout", err.code)
      assert.is_true(elapsed >= 0.9 and elapsed < 5, "took " .. elapsed .. " s")
    end)

    it("says timeout when a query outlives read_timeout", function()
      local slow = assert(connect_to(srv, { read_timeout = 1 }))
      local _, err = slow:query("SELECT SLEEP(4)")
      slow:close()
      assert.equals("timeout", err.code)
    end)

    it("raises on bad arguments", function()
      assert.has_error(function() mariadb.connect() end)
      assert.has_error(function() mariadb.connect({ tls = "sometimes" }) end)
      assert.has_error(function() db:query(42) end)
      assert.has_error(function() db:execute("SELECT ?") end)
      assert.has_error(function() db:execute("SELECT ?", {}) end)
      assert.has_error(function() db:transaction("not a function") end)
    end)
  end)

  describe("TLS", function()
    it("verifies the server against the CA when TLS is required", function()
      local conn = assert(connect_to(srv, { tls = "required", ca = srv.ca }))
      assert.matches("^TLSv1%.[23]$", conn:info().tls_version)
      conn:close()
    end)

    it("says tls for a CA that did not sign the server", function()
      local _, err = connect_to(srv, { tls = "required", ca = "/etc/ssl/certs/ca-certificates.crt" })
      assert.equals("tls", err.code)
    end)

    it("uses TLS when preferred and not when off", function()
      local preferred = assert(connect_to(srv, { tls = "preferred" }))
      assert.is_string(preferred:info().tls_cipher)
      preferred:close()
      local off = assert(connect_to(srv, { tls = "off" }))
      assert.is_nil(off:info().tls_cipher)
      off:close()
    end)

    it("signs in with an IAM auth token, over verified TLS", function()
      -- The server cannot check a SigV4 token, so the user's password is the very token awsnet
      -- must produce for this host, port, user, region, credentials and time.
      local sigv4 = require "awsnet.sigv4"
      local creds = { access_key_id = "AKIDEXAMPLE", secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token = "session-token-for-the-test" }
      local at = "20261129T080000Z"
      local token = assert(sigv4.rds_auth_token{ host = srv.host, port = srv.port, user = "iam_user",
        region = "ap-northeast-1", credentials = creds, time = at })
      assert.matches("^127%.0%.0%.1:%d+/%?Action=connect&DBUser=iam_user&", token)
      assert(srv:sql(string.format("CREATE USER 'iam_user'@'%%' IDENTIFIED BY '%s'", token)))
      local conn = assert(mariadb.connect{ host = srv.host, port = srv.port, user = "iam_user", tls = "required",
        ca = srv.ca, iam = { region = "ap-northeast-1", credentials = creds, time = at } })
      assert.equals("iam_user", assert(conn:query("SELECT CURRENT_USER() AS u"))[1].u:match("^[^@]+"))
      conn:close()
      local _, err = mariadb.connect{ host = srv.host, port = srv.port, user = "iam_user", tls = "required",
        ca = srv.ca, iam = { region = "us-east-1", credentials = creds, time = at } }
      assert.equals("auth", err.code)
      assert.is_nil(tostring(err):find("X-Amz-Signature", 1, true))
    end)

    it("refuses IAM authentication without verified TLS, before connecting", function()
      local listener = assert(socket.bind("127.0.0.1", 0))
      local _, port = listener:getsockname()
      listener:settimeout(0)
      local creds = { access_key_id = "AKIDEXAMPLE", secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" }
      for _, tls in ipairs({ "off", "preferred" }) do
        local _, err = mariadb.connect{ host = "127.0.0.1", port = port, user = "iam_user", tls = tls,
          iam = { region = "ap-northeast-1", credentials = creds } }
        assert.equals("tls", err.code)
      end
      local _, err = mariadb.connect{ host = "127.0.0.1", port = port, user = "iam_user", tls = "required",
        verify = false, iam = { region = "ap-northeast-1", credentials = creds } }
      assert.equals("tls", err.code)
      assert.is_nil(listener:accept())
      listener:close()
    end)
  end)

  describe("handles", function()
    it("keeps no password in the session object or its text", function()
      local conn = assert(connect_to(srv))
      for k, v in pairs(conn) do
        assert.is_false(type(v) == "string" and v:find(srv.password, 1, true) ~= nil, k)
        assert.is_false(type(v) == "table" and v[1] == srv.password, k)
      end
      assert.is_nil(tostring(conn):find(srv.password, 1, true))
      conn:close()
    end)

    it("closes idempotently and then says closed", function()
      local conn = assert(connect_to(srv))
      conn:close()
      conn:close()
      local _, err = conn:query("SELECT 1")
      assert.equals("closed", err.code)
      _, err = conn:execute("SELECT 1")
      assert.equals("closed", err.code)
    end)

    it("closes on <close> and on garbage collection", function()
      local function session_exists(id)
        local out = assert(srv:sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " .. id))
        return tonumber(out:match("%d+")) == 1
      end
      local function gone(id, collect)
        return process.wait_until(function()
          if collect then collectgarbage(); collectgarbage() end
          return not session_exists(id)
        end, 10)
      end
      local id
      do
        local conn <close> = assert(connect_to(srv))
        id = conn:info().thread_id
        assert.is_true(session_exists(id))
      end
      assert.is_true(gone(id, false))
      -- opened and dropped in a frame of its own, so no dead register still holds it
      local function open_and_drop() return assert(connect_to(srv)):info().thread_id end
      id = open_and_drop()
      assert.is_true(gone(id, true))
    end)

    it("keeps a statement's connection alive while the statement is", function()
      local core = require("awsnet.core").mariadb
      local function prepare_and_drop_connection()
        local conn = assert(core.connect{ host = srv.host, port = srv.port, user = srv.user, password = srv.password })
        return assert(conn:prepare("SELECT ? * 2"))
      end
      local stmt = prepare_and_drop_connection()
      collectgarbage(); collectgarbage()
      assert.equals(1, stmt:execute(21))
      assert.same({ 42 }, stmt:fetch(true))
      stmt:close()
      stmt:close()
    end)

    it("connects over the server's socket", function()
      local conn = assert(mariadb.connect{ socket = srv.socket, user = srv.user, password = srv.password })
      assert.matches("Localhost via UNIX socket", conn:info().host_info)
      conn:close()
    end)
  end)

  describe("a server with another name, killed mid-query", function()
    local other
    setup(function() other = services.mariadb({ tls_names = { "db.example.test" } }) end)

    it("says tls when the certificate does not name the host, unless verification is off", function()
      local _, err = connect_to(other, { tls = "required", ca = other.ca })
      assert.equals("tls", err.code)
      local conn = assert(connect_to(other, { tls = "required", ca = other.ca, verify = false }))
      conn:close()
    end)

    it("says network when the server dies under a query", function()
      local conn = assert(connect_to(other, { read_timeout = 30 }))
      os.execute(string.format("(sleep 1; kill -9 %d) >/dev/null 2>&1 &", other.proc.pid))
      local started = socket.gettime()
      local _, err = conn:query("SELECT SLEEP(20)")
      assert.equals("network", err.code)
      assert.is_true(socket.gettime() - started < 15)
      local _, again = conn:query("SELECT 1")
      assert.is_truthy(again)
      conn:close()
    end)
  end)

  describe("a server without TLS", function()
    local plain
    setup(function() plain = services.mariadb({ tls = false }) end)

    it("connects in cleartext when TLS is preferred, and refuses when it is required", function()
      local conn = assert(connect_to(plain, { tls = "preferred" }))
      assert.is_nil(conn:info().tls_cipher)
      conn:close()
      local _, err = connect_to(plain, { tls = "required" })
      assert.equals("tls", err.code)
    end)
  end)
end)
