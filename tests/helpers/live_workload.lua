--- The live checks' C paths in one short run, for tests/live_valgrind_spec.lua to watch under valgrind:
-- DNS answers and failures, and a MariaDB session with every kind of call and error.
--   lua5.4 tests/helpers/live_workload.lua DNS_SERVER HOST PORT USER PASSWORD DATABASE CA
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("AWSNET_BUILD") or "build") .. "/?.so;" .. package.cpath
local dns = require "awsnet.dns"
local mariadb = require "awsnet.mariadb"

local dns_server, host, port, user, password, database, ca = table.unpack(arg)
port = tonumber(port)

assert(dns.resolve("alias.leak.test", { server = dns_server }))
assert(not dns.resolve("missing.leak.test", { server = dns_server }))
assert(dns.resolve("text.leak.test", { server = dns_server, type = "TXT" }))

for _, tls in ipairs({ "off", "required" }) do
  local db = assert(mariadb.connect{ host = host, port = port, user = user, password = password,
    database = database, tls = tls, ca = ca })
  assert(db:execute("CREATE TABLE IF NOT EXISTS leak (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50), n DOUBLE)"))
  assert(db:execute("INSERT INTO leak (name, n) VALUES (?, ?)", "テスト\0", 1.5))
  assert(db:insert_many("INSERT INTO leak (name, n) VALUES (?, ?)", { { "a", 1 }, { mariadb.null, 2.5 } }))
  assert(db:query("SELECT *, REPEAT('x', 5000) AS big FROM leak"))
  assert(db:rows("SELECT seq FROM seq_1_to_100"))() -- a stream abandoned after one row
  assert(db:query("SHOW COLUMNS FROM leak"))
  assert(not db:query("SELEC 1"))
  assert(not pcall(db.transaction, db, function() error("boom") end))
  db:close()
end
assert(not mariadb.connect{ host = host, port = port, user = user, password = "wrong" })
assert(not mariadb.connect{ host = host, port = port, user = user, password = password, tls = "required",
  ca = "/etc/ssl/certs/ca-certificates.crt" })
-- one connection and one statement left to the garbage collector
local dropped = assert(mariadb.connect{ host = host, port = port, user = user, password = password, tls = "off" })
assert(dropped:query("SELECT ? AS x", 1))
dropped = nil -- luacheck: ignore 311
collectgarbage()
collectgarbage()
print("workload done")
