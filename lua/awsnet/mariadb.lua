--- A MariaDB/MySQL client over libmariadb: prepared statements, typed rows, array binding.
--
--   local mariadb = require "awsnet.mariadb"
--   local db = assert(mariadb.connect{host = "10.1.128.5", port = 3306, user = "app",
--     password = "...", database = "app", tls = "required", ca = "rds-ca.pem",
--     connect_timeout = 5})
--   db:execute("INSERT INTO users (name) VALUES (?)", "テストユーザー")  --> {affected_rows, insert_id}
--   local rows, columns = db:query("SELECT id, name FROM users WHERE id > ?", 0)
--   for row in db:rows("SELECT * FROM big") do ... end   -- streamed
--   db:insert_many("INSERT INTO users (name) VALUES (?)", {{"a"}, {"b"}})
--   db:transaction(function(tx) ... end)
--   db:close()                                  -- also on garbage collection and `<close>`
--
-- connect options: host (default 127.0.0.1), port (3306), socket (instead of host/port), user,
-- password, database, charset ("utf8mb4"), connect_timeout (s, default 10), read_timeout,
-- write_timeout (s), tls ("off", "preferred" (default) or "required"), ca (PEM file of the
-- CA that signs the server), verify (check the chain and that the certificate names `host`;
-- default true when tls = "required"), rows ("map" (default) or "array"), iam = {region,
-- credentials} (IAM database authentication: the password is an auth token from
-- sigv4.rds_auth_token, sent in cleartext, so only over verified TLS).
--
-- Values: nil or mariadb.null is SQL NULL; integers come back as Lua integers, FLOAT/DOUBLE as
-- floats, DECIMAL, dates, text and blobs as strings, SQL NULL as mariadb.null.
-- Errors: nil, err with err.code one of "network", "timeout", "auth", "tls", "sql", "closed",
-- plus err.errno and err.sqlstate (the server's or libmariadb's) and err.message.
-- @module awsnet.mariadb
local errors = require "awsnet.errors"

local mariadb = {}

local function core() return require("awsnet.core").mariadb end

--- SQL NULL: a unique value (rows hold it where a column is NULL; pass it or nil to bind NULL).
-- It is the C core's own sentinel, so loading this module loads the core (no I/O, no init).
mariadb.null = core().null

local AUTH_ERRNOS = {
  [1044] = true, [1045] = true, [1698] = true, [1251] = true, [2049] = true, [2059] = true,
  [2061] = true, [1275] = true,
}
-- The small fixed vocabulary of error codes, from libmariadb's and the server's error numbers.
-- libmariadb reports a timeout as a lost or failed connection: the text, or a call that lasted
-- its whole time limit, tells. A TLS failure counts as "tls" while connecting; later it is the
-- connection breaking.
local function classify(op, errno, sqlstate, message, seconds, limit)
  local lower = (message or ""):lower()
  if AUTH_ERRNOS[errno] or sqlstate == "28000" then return "auth" end
  if errno < 2000 then return "sql" end
  if lower:find("timed out", 1, true) or lower:find("timeout", 1, true) or lower:find("(110)", 1, true)
      or (limit and seconds and seconds >= limit * 0.9) then
    return "timeout"
  end
  if op == "connect" and (errno == 2026 or lower:find("tls", 1, true) or lower:find("ssl", 1, true)
      or lower:find("certificate", 1, true)) then
    return "tls"
  end
  return "network"
end

local Db = {}
Db.__index = Db
Db.__name = "awsnet.mariadb"

local function closed_error(op)
  return errors.fail("closed", "the connection is closed", { op = op })
end

-- Builds the error value from the core's (nil, errno, sqlstate, message, seconds). The session
-- keeps no secret after connecting, so only connect's own `secrets` can be redacted (and are).
local function fail(self, op, errno, sqlstate, message, seconds, secrets)
  message = errors.redact(message, secrets)
  local limit = op == "connect" and self._connect_timeout or self._io_timeout
  return errors.fail(classify(op, errno, sqlstate, message, seconds, limit), message,
    { errno = errno, sqlstate = sqlstate, op = op })
end

local function check_sql(sql, fname)
  if type(sql) ~= "string" then error("bad argument #1 to '" .. fname .. "' (SQL string expected)", 3) end
end

--- Opens a session; see the module comment for the options.
-- @tparam table opts {host, port, socket, user, password, database, charset, connect_timeout,
-- read_timeout, write_timeout, tls, ca, verify, rows, statement_cache, iam = {region, credentials}}
-- @return the session (`db:execute`, `db:query`, ...), or nil, err with code "network", "timeout",
-- "auth", "tls" (also: iam without tls = "required" and verification) or a signing error of the IAM token
-- @raise on options of the wrong type
function mariadb.connect(opts)
  if type(opts) ~= "table" then error("bad argument #1 to 'connect' (table expected)", 2) end
  local tls = opts.tls or "preferred"
  if tls ~= "off" and tls ~= "preferred" and tls ~= "required" then
    error("bad option 'tls' (off, preferred or required)", 2)
  end
  local verify = opts.verify
  if verify == nil then verify = tls == "required" end
  local password, cleartext = opts.password, false
  local host = opts.host or (not opts.socket and "127.0.0.1" or nil)
  if opts.iam then
    -- The token would cross the wire in cleartext: refuse before anything is sent.
    if tls ~= "required" or not verify then
      return errors.fail("tls", "IAM authentication sends its token in cleartext: it needs tls = \"required\" " ..
        "with verification of the server certificate", { op = "connect" })
    end
    local sigv4 = require "awsnet.sigv4"
    local token, err = sigv4.rds_auth_token{
      host = host, port = opts.port or 3306, user = opts.user, region = opts.iam.region,
      credentials = opts.iam.credentials, time = opts.iam.time,
    }
    if not token then return nil, err end
    password, cleartext = token, true
  end
  local function whole_seconds(v, name)
    if v == nil then return nil end
    if type(v) ~= "number" or v <= 0 then error("bad option '" .. name .. "' (positive seconds expected)", 3) end
    return math.ceil(v)
  end
  local read_timeout = whole_seconds(opts.read_timeout, "read_timeout")
  local write_timeout = whole_seconds(opts.write_timeout, "write_timeout")
  local self = setmetatable({
    _stmts = {}, _nstmts = 0, _cache_size = opts.statement_cache or 64,
    _array = opts.rows == "array", _in_tx = false,
    _connect_timeout = whole_seconds(opts.connect_timeout or 10, "connect_timeout"),
    _io_timeout = read_timeout and write_timeout and math.min(read_timeout, write_timeout)
      or read_timeout or write_timeout,
  }, Db)
  local conn, errno, sqlstate, message, took = core().connect{
    host = host, port = opts.port, socket = opts.socket, user = opts.user,
    password = password, database = opts.database, charset = opts.charset,
    connect_timeout = self._connect_timeout, read_timeout = read_timeout, write_timeout = write_timeout,
    tls = tls, ca = opts.ca, verify = verify, cleartext = cleartext,
  }
  if not conn then return fail(self, "connect", errno, sqlstate, message, took, { opts.password, password }) end
  self._conn = conn
  return self
end

--- Server version, TLS version and cipher, whether array binding is available.
-- @within Db
-- @treturn table the session's facts, or nil, err ("closed")
function Db:info()
  if not self._conn then return closed_error("info") end
  return self._conn:info()
end

-- The cached prepared statement for `sql`, preparing it on first use.
function Db:_statement(sql)
  local stmt = self._stmts[sql]
  if stmt then return stmt end
  local errno, sqlstate, message, seconds
  stmt, errno, sqlstate, message, seconds = self._conn:prepare(sql)
  if not stmt then return fail(self, "prepare", errno, sqlstate, message, seconds) end
  if self._nstmts >= self._cache_size then
    for cached_sql, cached in pairs(self._stmts) do
      cached:close()
      self._stmts[cached_sql] = nil
    end
    self._nstmts = 0
  end
  self._stmts[sql] = stmt
  self._nstmts = self._nstmts + 1
  return stmt
end

local ER_UNSUPPORTED_PS = 1295

-- Executes `sql` with the parameters; returns the statement (its result pending) or a text result
-- (rows as arrays when `as_array`).
function Db:_run(op, as_array, sql, ...)
  if not self._conn then return closed_error(op) end
  local stmt, err = self:_statement(sql)
  if not stmt then
    if err.errno == ER_UNSUPPORTED_PS and select("#", ...) == 0 then
      local res, errno, sqlstate, message, seconds = self._conn:run(sql, as_array)
      if not res then return fail(self, op, errno, sqlstate, message, seconds) end
      return nil, nil, res
    end
    return nil, err
  end
  local ncolumns, affected, insert_id, message, seconds = stmt:execute(...)
  if not ncolumns then return fail(self, op, affected, insert_id, message, seconds) end
  return stmt, { affected_rows = affected, insert_id = insert_id, ncolumns = ncolumns }
end

--- Runs a statement with bound parameters -> {affected_rows, insert_id}.
-- Statements are prepared once per session and cached.
-- @within Db
-- @tparam string sql the statement, with ? placeholders
-- @param ... the parameters (nil or mariadb.null for NULL)
-- @treturn table {affected_rows, insert_id}
-- @return nil, err ("network", "timeout", "sql", "closed", ...) on failure
-- @raise when `sql` is not a string
function Db:execute(sql, ...)
  check_sql(sql, "execute")
  local stmt, res, text = self:_run("execute", false, sql, ...)
  if text then return { affected_rows = text.affected_rows or 0, insert_id = text.insert_id or 0 } end
  if not stmt then return nil, res end
  return { affected_rows = res.affected_rows, insert_id = res.insert_id }
end

local function query_args(q, fname)
  if type(q) == "table" then
    check_sql(q.sql or q[1], fname)
    return q.sql or q[1], q.rows
  end
  check_sql(q, fname)
  return q, nil
end

--- Runs a query -> rows (array of rows keyed by column name, or arrays), columns (metadata:
-- name, table, type, length, decimals, nullable, primary_key, unsigned, auto_increment).
-- `q` is the SQL, or {sql = ..., rows = "array"}.
-- @within Db
-- @param q the SQL, or {sql, rows = "map" | "array"}
-- @param ... the parameters
-- @treturn table rows
-- @treturn table columns
-- @return nil, err ("network", "timeout", "sql", "closed", ...) on failure
-- @raise when the SQL is not a string
function Db:query(q, ...)
  local sql, shape = query_args(q, "query")
  local as_array = shape == "array" or (shape == nil and self._array)
  if not self._conn then return closed_error("query") end
  local stmt, res, text = self:_run("query", as_array, sql, ...)
  if text then
    if not text.rows then return {}, {} end
    return text.rows, text.columns
  end
  if not stmt then return nil, res end
  local columns = stmt:columns()
  local rows = {}
  while true do
    local row, errno, sqlstate, message, seconds = stmt:fetch(as_array)
    if row == false then break end
    if not row then return fail(self, "query", errno, sqlstate, message, seconds) end
    rows[#rows + 1] = row
  end
  return rows, columns
end

--- Streams the rows of a query: `for row in db:rows(sql, ...)`. A failure before the first row
-- comes back as nil, err; a failure while streaming raises the error value.
-- Starting another command on the connection ends the stream.
-- @within Db
-- @param q the SQL, or {sql, rows = "map" | "array"}
-- @param ... the parameters
-- @return an iterator over the rows, or nil, err
-- @raise the error value when streaming fails after the first row
function Db:rows(q, ...)
  local sql, shape = query_args(q, "rows")
  local as_array = shape == "array" or (shape == nil and self._array)
  local stmt, res, text = self:_run("rows", as_array, sql, ...)
  if text then
    local i = 0
    local list = text.rows or {}
    return function() i = i + 1; return list[i] end
  end
  if not stmt then return nil, res end
  return function()
    if not self._conn then return nil end
    local row, errno, sqlstate, message, seconds = stmt:fetch(as_array)
    if row == false then return nil end
    if not row then
      local _, err = fail(self, "rows", errno, sqlstate, message, seconds)
      error(err, 2)
    end
    return row
  end
end

local function run_text(self, op, sql)
  if not self._conn then return closed_error(op) end
  local res, errno, sqlstate, message, seconds = self._conn:run(sql)
  if not res then return fail(self, op, errno, sqlstate, message, seconds) end
  return true
end

--- Starts a transaction (START TRANSACTION).
-- @within Db
-- @return true, or nil, err
function Db:begin()
  local ok, err = run_text(self, "begin", "START TRANSACTION")
  if ok then self._in_tx = true end
  return ok, err
end

--- Commits the open transaction.
-- @within Db
-- @return true, or nil, err
function Db:commit()
  local ok, err = run_text(self, "commit", "COMMIT")
  self._in_tx = false
  return ok, err
end

--- Rolls the open transaction back.
-- @within Db
-- @return true, or nil, err
function Db:rollback()
  local ok, err = run_text(self, "rollback", "ROLLBACK")
  self._in_tx = false
  return ok, err
end

--- Runs fn(db) in a transaction: commits when it returns normally, rolls back when it raises
-- (the error is raised again) or returns nil, err (returned as is). Returns fn's results.
-- @within Db
-- @tparam function fn called with the session
-- @return fn's results, or nil, err (fn's own, or of BEGIN/COMMIT)
-- @raise fn's error, after the rollback; also when a transaction is already open
function Db:transaction(fn)
  if type(fn) ~= "function" then error("bad argument #1 to 'transaction' (function expected)", 2) end
  if self._in_tx then error("a transaction is already open on this connection", 2) end
  local ok, err = self:begin()
  if not ok then return nil, err end
  local results = table.pack(pcall(fn, self))
  if not results[1] then
    self:rollback()
    error(results[2], 0)
  end
  if results[2] == nil and results.n >= 3 and results[3] ~= nil then
    self:rollback()
    return nil, results[3]
  end
  ok, err = self:commit()
  if not ok then return nil, err end
  return table.unpack(results, 2, results.n)
end

-- Rows per array-bound execution: keeps each packet well under the server's max_allowed_packet.
local BULK_CHUNK_ROWS = 20000

--- Executes one prepared statement for every row of `rows` (arrays of parameters) in one
-- transaction, with MariaDB's array binding when the server has it (one execution per row
-- otherwise, as with MySQL) -> {affected_rows, insert_id (of the first row)}.
-- opts: chunk (rows per array-bound execution), array_binding = false (one execution per row).
-- @within Db
-- @tparam string sql the statement, with ? placeholders
-- @tparam {table,...} rows the parameters of each row (row.n when it ends in nils)
-- @tparam[opt] table opts {chunk, array_binding}
-- @treturn table {affected_rows, insert_id}
-- @return nil, err ("network", "timeout", "sql", "closed", ...) on failure; its own transaction is rolled back
-- @raise on arguments of the wrong type
function Db:insert_many(sql, rows, opts)
  check_sql(sql, "insert_many")
  if type(rows) ~= "table" then error("bad argument #2 to 'insert_many' (array of rows expected)", 2) end
  if not self._conn then return closed_error("insert_many") end
  local chunk = (opts and opts.chunk) or BULK_CHUNK_ROWS
  local array_binding = not (opts and opts.array_binding == false)
  local own_tx = not self._in_tx
  local function work()
    local stmt, err = self:_statement(sql)
    if not stmt then return nil, err end
    local total, first_id = 0, nil
    if #rows > 0 and array_binding and stmt:bulk_supported() then
      for first = 1, #rows, chunk do
        local last = math.min(first + chunk - 1, #rows)
        local affected, insert_id, sqlstate, message, seconds = stmt:execute_many(rows, first, last)
        if not affected then return fail(self, "insert_many", insert_id, sqlstate, message, seconds) end
        total = total + affected
        first_id = first_id or insert_id
      end
    else
      for i = 1, #rows do
        local row = rows[i]
        local ncolumns, affected, insert_id, message, seconds = stmt:execute(table.unpack(row, 1, row.n or #row))
        if not ncolumns then return fail(self, "insert_many", affected, insert_id, message, seconds) end
        total = total + affected
        first_id = first_id or insert_id
      end
    end
    return { affected_rows = total, insert_id = first_id or 0 }
  end
  if own_tx then return self:transaction(work) end
  return work()
end

--- Closes the session and its statements; harmless when already closed.
-- @within Db
function Db:close()
  if self._conn then
    for _, stmt in pairs(self._stmts) do stmt:close() end
    self._stmts = {}
    self._conn:close()
    self._conn = nil
  end
end
Db.__close = Db.close
Db.__gc = Db.close

function Db:__tostring()
  return string.format("awsnet.mariadb (%s)", self._conn and "open" or "closed")
end

--- True when `v` is SQL NULL as returned in rows.
-- @param v a value
-- @treturn boolean
function mariadb.is_null(v) return v == mariadb.null end

return mariadb
