--- A throwaway MariaDB server on a free loopback port: fresh datadir, TLS with a CA generated on
-- the spot, an application user and database. Used by the tests, the benchmarks and the sandbox.
--
--   local srv = assert(mariadb_server.start{database = "app", user = "app", password = "pw"})
--   -- srv.host, srv.port, srv.socket, srv.user, srv.password, srv.database, srv.ca, srv.dir
--   srv:sql("CREATE DATABASE x")   -- as root over the socket
--   srv:stop()                       -- also done by a watchdog if this process dies
-- @module awsnet.svc.mariadb_server
local process = require "awsnet.svc.process"
local tls = require "awsnet.svc.tls"
local errors = require "awsnet.errors"

local mariadb_server = {}
local Server = {}
Server.__index = Server
local q = process.quote

local function find_program(names)
  for _, n in ipairs(names) do
    for _, d in ipairs({ "/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin" }) do
      local p = d .. "/" .. n
      if process.read_file(p) then return p end
    end
  end
end

--- Runs SQL as root through the server's socket; returns the tab-separated output.
-- The statements reach the client on its standard input from a file of the server's private
-- folder, never on a command line (/proc/*/cmdline is world-readable, and they may hold passwords).
-- @within Server
-- @tparam string statements one or more statements
-- @treturn string the output, or nil, err ("process", with the client's output)
function Server:sql(statements)
  local file = self.dir .. "/statements.sql"
  process.write_file(file, "", "600")
  process.write_file(file, statements)
  local out, err = process.run(string.format("mariadb --no-defaults -uroot --socket=%s -N -B < %s",
    q(self.socket), q(file)))
  os.remove(file)
  return out, err
end

--- Stops the server and removes its datadir; harmless twice; also on `__close`.
-- @within Server
function Server:stop()
  -- after SIGINT or SIGTERM the datadir is thrown away at once: no time for a clean shutdown
  if self.proc then self.proc.stop(process.interrupted() and 1 or 20); self.proc = nil end
  if self.dir then process.remove(self.dir); self.dir = nil end
end

Server.__close = Server.stop

--- A value as an SQL string literal (backslashes and quotes escaped; NUL refused).
-- @param s the value (turned into a string)
-- @treturn string
-- @raise on a NUL byte
function mariadb_server.sql_string(s)
  s = tostring(s)
  assert(not s:find("%z"), "sql_string: a NUL byte")
  return "'" .. s:gsub("\\", "\\\\"):gsub("'", "''") .. "'"
end
local sql_string = mariadb_server.sql_string

--- A name as a quoted SQL identifier (`name`, backquotes doubled; NUL refused).
-- @param s the name (turned into a string)
-- @treturn string
-- @raise on a NUL byte
function mariadb_server.sql_ident(s)
  s = tostring(s)
  assert(not s:find("%z"), "sql_ident: a NUL byte")
  return "`" .. s:gsub("`", "``") .. "`"
end
local sql_ident = mariadb_server.sql_ident

--- Starts a server. opts: database, user, password (defaults app/app/random), port, tls (default true),
-- tls_names (the names its certificate holds; default localhost and 127.0.0.1).
-- @tparam[opt] table opts {database, user, password, port, tls, tls_names}
-- @return the server (fields in the module comment; `sql`, `stop`), or nil, err ("missing" without
-- mariadbd, "start", "process")
function mariadb_server.start(opts)
  opts = opts or {}
  local mariadbd = find_program({ "mariadbd", "mysqld" })
  if not mariadbd then return errors.fail("missing", "mariadbd not found: run `make deps`") end
  local dir = process.tempdir("awsnet-mariadb")
  local self = setmetatable({
    dir = dir, host = "127.0.0.1", socket = dir .. "/mysqld.sock",
    database = opts.database or "app", user = opts.user or "app",
    password = opts.password or ("pw" .. math.random(100000, 999999)),
  }, Server)
  -- A private tmpdir: servers of several concurrent runs must not share /tmp's temporary tables.
  process.mkdir(dir .. "/tmp")
  local install = string.format(
    "mariadb-install-db --no-defaults --datadir=%s --tmpdir=%s --user=root --auth-root-authentication-method=socket " ..
    "--skip-test-db --skip-name-resolve", q(dir .. "/data"), q(dir .. "/tmp"))
  local ok, err = process.run(install)
  if not ok then self:stop(); return nil, err end
  if opts.tls ~= false then
    local made, certs = pcall(tls.make_ca_and_server, dir, opts.tls_names or { "localhost", "127.0.0.1" }, "awsnet MariaDB")
    if not made then
      self:stop()
      return nil, errors.is(certs) and certs or errors.new("process", tostring(certs))
    end
    self.ca, self.cert, self.key = certs.ca, certs.cert, certs.key
  end
  for attempt = 1, 5 do
    self.port = opts.port or process.free_port()
    local argv = {
      mariadbd, "--no-defaults", "--user=root", "--datadir=" .. dir .. "/data",
      "--socket=" .. self.socket, "--port=" .. self.port, "--bind-address=127.0.0.1",
      "--pid-file=" .. dir .. "/mysqld.pid", "--log-error=" .. dir .. "/error.log", "--tmpdir=" .. dir .. "/tmp",
      "--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=64M",
      "--innodb-flush-log-at-trx-commit=2", "--max-connections=200",
      "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
    }
    if self.ca then
      argv[#argv + 1] = "--ssl-ca=" .. self.ca
      argv[#argv + 1] = "--ssl-cert=" .. self.cert
      argv[#argv + 1] = "--ssl-key=" .. self.key
    end
    self.proc = process.spawn(argv, { log = dir .. "/stdout.log", cleanup_dir = dir })
    local up
    up, err = process.wait_until(function()
      if not self.proc.alive() then return true end
      return process.call({ "mariadb-admin", "--no-defaults", "-uroot", "--socket=" .. self.socket, "ping" }) ~= nil
    end, 60, "mariadbd to accept connections")
    if up and self.proc.alive() then break end
    if err and err.code == "interrupted" then
      self:stop()
      return nil, err
    end
    local log = process.read_file(dir .. "/error.log") or ""
    self.proc.stop(); self.proc = nil
    if attempt == 5 or opts.port or not log:find("Address already in use", 1, true) then
      self:stop()
      return errors.fail("start", "mariadbd did not start: " .. log:sub(-2000))
    end
  end
  ok, err = self:sql(string.format(
    "CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8mb4; CREATE USER %s@'%%' IDENTIFIED BY %s; " ..
    "GRANT ALL ON %s.* TO %s@'%%'; FLUSH PRIVILEGES;",
    sql_ident(self.database), sql_string(self.user), sql_string(self.password), sql_ident(self.database),
    sql_string(self.user)))
  if not ok then self:stop(); return nil, err end
  return self
end

return mariadb_server
