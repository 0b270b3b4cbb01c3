-- The sandbox's MariaDB servers started ahead (warm_databases): CreateDBInstance's backing server
-- taken from them holds the instance's database and master user (reached over TCP with its
-- password, as a client would), and a deleted instance's server comes back emptied of every
-- database and user it made.
local mariadb = require "awsnet.mariadb"
local sandbox = require "awsnet.sandbox"

describe("sandbox warm databases", function()
  local sb
  setup(function() sb = assert(sandbox.start { port = 0, warm_databases = 1, log = function() end }) end)
  teardown(function() if sb then sb:stop() end end)

  it("backs an instance with a warm server and takes it back emptied", function()
    local rds = sb:service_module("rds")
    assert.equal(1, #sb.warm_databases)
    local inst = { id = "111111111111:appdb", address = "appdb.test", name = "appdb", owner = "111111111111",
      db_name = "sampledb", master_user = "admin", master_password = "pw-warm-12345" }
    local srv = assert(rds.backing(sb, inst))
    assert.equal(0, #sb.warm_databases)
    local db = assert(mariadb.connect { host = srv.host, port = srv.port, user = "admin", password = "pw-warm-12345",
      database = "sampledb" })
    assert(db:execute("CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(50))"))
    assert(db:execute("INSERT INTO users VALUES (1, ?)", "テストユーザー"))
    -- the master user may make other databases, as on RDS
    assert(db:execute("CREATE DATABASE other"))
    db:close()
    -- DeleteDBInstance's path: the server goes back to the warm ones, emptied
    sb.databases[inst.address] = nil
    assert.is_true(rds.recycle(sb, srv))
    assert.equal(1, #sb.warm_databases)
    local dbs = assert(srv:sql("SHOW DATABASES"))
    assert.is_nil(dbs:find("sampledb", 1, true))
    assert.is_nil(dbs:find("other", 1, true))
    assert.equal("0", (assert(srv:sql("SELECT COUNT(*) FROM mysql.user WHERE user = 'admin'")):match("%d+")))
    local _, err = mariadb.connect { host = srv.host, port = srv.port, user = "admin", password = "pw-warm-12345" }
    assert.is_table(err)
    -- a full set of warm servers: a further one is not kept
    assert.is_false(rds.recycle(sb, { sql = function() error("not asked") end }))
  end)
end)
