--- HTTP(S) requests over libcurl (the C side is `csrc/http.c`).
--
--   local res, err = http.request{method=, url=, headers=, body=, timeout=, connect_timeout=,
--                                 ca_file=, verify=, max_body=}
--   -- res = {status, headers (lower-case names), body}; err = {code, message}
--   local results, errs = http.request_many{req1, req2, ...}  -- all at once (curl multi)
--   -- results[i] is the response of reqs[i], or nil with errs[i] set
--   local c = http.new{max_connections = 64}
--   local id = c:start(req)       -- begins now; c:poll(timeout_ms) -> {{id, response} or {id, err}, ...}
--                                 -- as they end, so a caller starts the next request at once
--
-- TLS peers are verified by default (`verify=false` turns it off explicitly); the CA bundle is
-- `req.ca_file`, else AWS_CA_BUNDLE, else the system's. Timeouts are in seconds (defaults: 60 total,
-- 10 to connect). Proxies come from the environment (http_proxy, https_proxy, no_proxy) as libcurl
-- reads them. Connections are kept per client and reused; `http.new{max_connections=}` makes a
-- client of one's own, the module functions share one made on first use. Any HTTP status is a
-- response, not an error; errors are failures to get one: "timeout", "refused", "resolve", "tls",
-- "connection" (reset, closed, truncated), "too_large", "invalid_url", "http".
-- @module awsnet.http
local core = require "awsnet.core"
local errors = require "awsnet.errors"

local http = {}

-- Coroutines run by a scheduler (the runbook's graph apply): in them a request yields while it
-- is on the wire, so the scheduler's other coroutines go on (weak keys).
local cooperative = setmetatable({}, { __mode = "k" })
-- How long a cooperative request gives way before it looks again, in seconds.
local YIELD_S = 0.002

local Client = {}
Client.__index = Client

--- A client with its own connection pool; `opts.max_connections` (default 16) bounds how many
-- connections run at once.
-- @tparam[opt] table opts {max_connections=}
-- @return a client (`client:request`, `client:request_many`, `client:close`)
function http.new(opts)
  opts = opts or {}
  return setmetatable({ handle = core.http.new(opts.max_connections) }, Client)
end

local function prepare(req)
  assert(type(req) == "table", "request must be a table")
  assert(type(req.url) == "string", "request.url must be a string")
  if req.ca_file == nil and os.getenv("AWS_CA_BUNDLE") then
    local copy = {}
    for k, v in pairs(req) do copy[k] = v end
    copy.ca_file = os.getenv("AWS_CA_BUNDLE")
    return copy
  end
  return req
end

local function host_of(url)
  return url:match("^%a[%w+.-]*://([^/?#]*)") or "?"
end

--- Marks a coroutine as run by a scheduler that resumes what it yields: in it, requests yield
-- (a number: the seconds to wait before resuming) while they are on the wire, and `http.sleep`
-- yields its time, instead of holding the whole process.
-- @tparam thread co the coroutine
function http.cooperate(co)
  cooperative[co] = true
end

--- Sleeps `seconds`: in a cooperative coroutine by yielding them to its scheduler, else in the
-- C core (SIGINT and SIGTERM end it early).
-- @tparam number seconds how long
-- @treturn boolean true, or false once SIGINT or SIGTERM has arrived (outside a coroutine)
function http.sleep(seconds)
  if cooperative[coroutine.running()] then
    coroutine.yield(seconds)
    return true
  end
  return core.http.sleep(seconds)
end

-- The answers of started requests that poll gave back, by id, until their owner takes them.
local function collect(self, timeout_ms)
  self.ended = self.ended or {}
  for _, r in ipairs(self.handle:poll(timeout_ms)) do self.ended[r.id] = r end
end

-- request_many in a cooperative coroutine: the requests are started, and the coroutine yields
-- until each has ended (answers for other coroutines are kept for them).
local function request_many_yielding(self, prepared)
  local ids = {}
  for i, r in ipairs(prepared) do ids[i] = self.handle:start(r) end
  while true do
    collect(self, 0)
    local waiting = false
    for _, id in ipairs(ids) do
      if not self.ended[id] then waiting = true; break end
    end
    if not waiting then break end
    coroutine.yield(YIELD_S)
  end
  local raw = {}
  for i, id in ipairs(ids) do
    raw[i] = self.ended[id]
    self.ended[id] = nil
  end
  return raw
end

--- Runs every request at once; returns results and errs (see the module comment).
-- @within Client
-- @tparam {table,...} reqs requests {method, url, headers, body, timeout, connect_timeout, ca_file, verify, max_body}
-- @treturn table results: results[i] = {status, headers, body} for reqs[i]
-- @treturn table errs: errs[i] = the error of reqs[i] when it got no response (codes in the module comment)
function Client:request_many(reqs)
  assert(type(reqs) == "table", "request_many expects an array of requests")
  local prepared = {}
  for i, r in ipairs(reqs) do prepared[i] = prepare(r) end
  local raw
  if cooperative[coroutine.running()] then
    raw = request_many_yielding(self, prepared)
  else
    -- requests a suspended or abandoned coroutine started: theirs once they end, kept for them
    while self.handle:started() > 0 do collect(self, 100) end
    raw = self.handle:perform(prepared)
  end
  local results, errs = {}, {}
  for i, r in ipairs(raw) do
    if r.error then
      errs[i] = errors.new(r.error, r.message, { op = "http", method = reqs[i].method or "GET", host = host_of(reqs[i].url) })
    else
      results[i] = r
    end
  end
  return results, errs
end

--- Starts a request without waiting for it: its answer comes from `poll`, tagged with the id
-- returned here. A client runs either `start`/`poll` or `request_many`, not both at once.
-- @within Client
-- @tparam table req as for `request_many`
-- @treturn integer the request's id
-- @raise on a request of the wrong shape (as `request_many`)
function Client:start(req)
  return self.handle:start(prepare(req))
end

--- The started requests that ended, waiting up to `timeout_ms` for the first: an array of
-- {id, response} or {id, err} (codes in the module comment; "interrupted" for every started
-- request after SIGINT or SIGTERM). Those a `request_many` waited out come first. (A client
-- whose requests cooperative coroutines make is not polled by hand: it would take their answers.)
-- @within Client
-- @tparam[opt=0] integer timeout_ms how long to wait when none has ended yet
-- @treturn table the ended requests
function Client:poll(timeout_ms)
  local out, raw = {}, {}
  for _, r in pairs(self.ended or {}) do raw[#raw + 1] = r end
  self.ended = nil
  for _, r in ipairs(self.handle:poll(#raw > 0 and 0 or (timeout_ms or 0))) do raw[#raw + 1] = r end
  for i, r in ipairs(raw) do
    if r.error then
      out[i] = { id = r.id, err = errors.new(r.error, r.message, { op = "http" }) }
    else
      out[i] = { id = r.id, response = { status = r.status, headers = r.headers, body = r.body } }
    end
  end
  return out
end

--- How many started requests have not been given back by `poll`.
-- @within Client
-- @treturn integer the count
function Client:started()
  local kept = 0
  for _ in pairs(self.ended or {}) do kept = kept + 1 end
  return self.handle:started() + kept
end

--- One request on this client's connections.
-- @within Client
-- @tparam table req as for `request_many`
-- @return the response {status, headers, body}, or nil, err (codes in the module comment)
function Client:request(req)
  local results, errs = self:request_many({ req })
  if errs[1] then return nil, errs[1] end
  return results[1]
end

--- Closes the client's connections; closing twice is harmless.
-- @within Client
function Client:close() self.handle:close() end

local shared
local function shared_client()
  shared = shared or http.new()
  return shared
end

--- One request on the shared client (made on first use).
-- @tparam table req {method, url, headers, body, timeout, connect_timeout, ca_file, verify, max_body}
-- @return the response {status, headers (lower-case names), body}, or nil, err (codes in the module comment)
function http.request(req) return shared_client():request(req) end

--- Many requests at once on the shared client.
-- @tparam {table,...} reqs requests as for `request`
-- @treturn table results, results[i] for reqs[i]
-- @treturn table errs, errs[i] when reqs[i] got no response
function http.request_many(reqs) return shared_client():request_many(reqs) end

return http
