--- Many AWS calls in one event loop over a curl multi handle: each call starts as soon as its
-- turn comes (a page as soon as the previous page of its call arrived: no rounds), at most
-- `per_key` at once per key (the caller's key is account × region × service: where AWS throttles),
-- each key with the adaptive retry mode's token bucket (awsnet.aws.ratelimit) that slows it after
-- a throttle, retries as the client's standard mode decides (backoff with jitter, retry quota),
-- and retry delays kept as timers of the loop (no sleep holds the other calls).
--
--   local p = pool.new{max_connections = 64, per_key = 4}
--   p:call(ec2, "DescribeVpcs", {}, {key = "111111111111/us-east-1/ec2", done = function(result, err) end})
--   p:pages(ec2, "DescribeSubnets", {}, {key = k, page = function(page) end, done = function(err) end})
--   p:after(seconds, fn)                    -- a timer of the loop; p:every(seconds, fn) a ticker
--   local ok, err = p:run()                 -- until nothing is left; nil, err "interrupted" on SIGINT/SIGTERM
--   p.stats                                 -- {calls, retries, errors, throttles, in_flight}
--
-- Callbacks run inside `run` and may queue more calls. After SIGINT or SIGTERM `run` drops what
-- is queued and returns at once, without calling the callbacks of unfinished calls.
-- @module awsnet.aws.pool
local core = require "awsnet.core"
local errors = require "awsnet.errors"
local http = require "awsnet.http"
local process = require "awsnet.svc.process"
local ratelimit = require "awsnet.aws.ratelimit"

local pool = {}

local Pool = {}
Pool.__index = Pool

local clock = core.httpd.monotonic

--- A pool (nothing runs until `run`). At most `max_connections` calls are in flight: the others
-- wait in the pool, where the keys marked `priority` (calls that open more work: listing the
-- accounts, assuming roles) go first, rather than in curl's queue behind every other.
-- @tparam[opt] table opts {max_connections = 64, per_key = 4, http = an awsnet.http client,
-- adaptive = true (false: no token bucket)}
-- @return the pool
function pool.new(opts)
  opts = opts or {}
  return setmetatable({
    max_in_flight = opts.max_connections or 64,
    http = opts.http or http.new { max_connections = opts.max_connections or 64 },
    per_key = opts.per_key or 4, adaptive = opts.adaptive ~= false,
    keys = {}, waiting = {}, inflight = {}, timers = {}, n_inflight = 0,
    stats = { calls = 0, retries = 0, errors = 0, throttles = 0 },
  }, Pool)
end

local function key_state(self, key)
  local k = self.keys[key]
  if not k then
    k = { name = key, active = 0, queue = {}, head = 1, tail = 0, bucket = self.adaptive and ratelimit.new(clock()) or nil }
    self.keys[key] = k
  end
  return k
end

--- Runs `fn` after `seconds`, inside `run`.
-- @within Pool
-- @tparam number seconds the delay
-- @tparam function fn what to run
function Pool:after(seconds, fn)
  self.timers[#self.timers + 1] = { at = clock() + seconds, fn = fn }
end

local function enqueue(self, attempt)
  local k = attempt.key
  k.tail = k.tail + 1
  k.queue[k.tail] = attempt
  self.waiting[k] = true
end

--- Queues one call (with the client's retries); `opts.done(result, err)` gets its end.
-- @within Pool
-- @param client an awsnet.aws client
-- @tparam string op the operation
-- @tparam ?table params its input
-- @tparam table opts {key = string (default the client's service and region), done = function(result, err),
-- priority = true (the key's calls go before the others')}
function Pool:call(client, op, params, opts)
  local k = key_state(self, opts.key or (client.service .. "/" .. tostring(client.region)))
  if opts.priority then k.priority = true end
  enqueue(self, { client = client, op = op, params = params or {}, attempt = 0, done = opts.done, key = k })
end

--- Queues every page of a call: `opts.page(page)` for each as it arrives (the next is queued at
-- once), then `opts.done(nil)`, or `opts.done(err)` on a failure.
-- @within Pool
-- @param client an awsnet.aws client
-- @tparam string op the operation
-- @tparam ?table params the first page's input
-- @tparam table opts {key, priority, page = function(page), done = function(err)}
function Pool:pages(client, op, params, opts)
  local function next_page(p)
    self:call(client, op, p, { key = opts.key, priority = opts.priority, done = function(page, err)
      if not page then return opts.done(err) end
      opts.page(page)
      local nextp = client:_next_params(op, page, p)
      if nextp then next_page(nextp) else opts.done(nil) end
    end })
  end
  next_page(params or {})
end

-- Starts the calls of key `k` that its limit, its bucket and the pool's limit allow; returns the
-- time its bucket frees a token when it is what holds the key back.
local function dispatch_key(self, k, now)
  local wake
  while k.active < self.per_key and k.head <= k.tail and self.n_inflight < self.max_in_flight do
    local wait = k.bucket and k.bucket:acquire(now) or 0
    if wait > 0 then
      wake = now + wait
      break
    end
    local a = k.queue[k.head]
    k.queue[k.head] = nil
    k.head = k.head + 1
    a.attempt = a.attempt + 1
    local req, err = a.client:_request(a.op, a.params)
    if req then
      local id = self.http:start(req)
      self.inflight[id] = a
      self.n_inflight = self.n_inflight + 1
      k.active = k.active + 1
      self.stats.calls = self.stats.calls + 1
    else
      err.op = a.client.service .. ":" .. a.op
      self:after(0, function() a.done(nil, err) end)
    end
  end
  if k.head > k.tail then
    k.queue, k.head, k.tail = {}, 1, 0
    self.waiting[k] = nil
  end
  return wake
end

-- Starts what the limits allow, the priority keys first; returns the earliest time a bucket frees.
local function dispatch(self, now)
  local wake = math.huge
  for _, first in ipairs({ true, false }) do
    for k in pairs(self.waiting) do
      if (k.priority == true) == first then wake = math.min(wake, dispatch_key(self, k, now) or math.huge) end
    end
  end
  return wake < math.huge and wake or nil
end

local function finish(self, ended)
  local a = self.inflight[ended.id]
  self.inflight[ended.id] = nil
  self.n_inflight = self.n_inflight - 1
  local k = a.key
  k.active = k.active - 1
  local res, result, err = ended.response, nil, ended.err
  if res then result, err = a.client:parse(a.op, res) end
  local now = clock()
  if result then
    if k.bucket then k.bucket:update(now, false) end
    a.client:_succeeded(a)
    return a.done(result)
  end
  local throttled = require("awsnet.aws").is_throttling(err)
  if throttled then self.stats.throttles = self.stats.throttles + 1 end
  if k.bucket then k.bucket:update(now, throttled) end
  if err.code == "interrupted" then return end
  local decision, wait = a.client:_retry_decision(a, err, res)
  if decision then
    if decision == "skew" then a.attempt = a.attempt - 1 end
    self.stats.retries = self.stats.retries + 1
    self:after(wait, function() enqueue(self, a) end)
    return
  end
  self.stats.errors = self.stats.errors + 1
  err.op = a.client.service .. ":" .. a.op
  err.attempts = a.attempt
  a.done(nil, err)
end

-- Runs the timers that are due; returns the next one's time.
local function run_timers(self, now)
  local due, keep, next_at = {}, {}, nil
  for _, t in ipairs(self.timers) do
    if t.at <= now then due[#due + 1] = t else
      keep[#keep + 1] = t
      next_at = math.min(next_at or math.huge, t.at)
    end
  end
  self.timers = keep
  for _, t in ipairs(due) do t.fn() end
  return next_at, #due > 0
end

--- Runs until no call is queued, in flight or waiting for a timer.
-- @within Pool
-- @return true, or nil, err ("interrupted" after SIGINT or SIGTERM: queued calls dropped)
function Pool:run()
  while true do
    local stop = process.interrupted()
    if stop then
      self.waiting, self.timers = {}, {}
      for id in pairs(self.inflight) do self.inflight[id] = nil end
      self.n_inflight = 0
      self.http:close()
      return nil, errors.new("interrupted", stop.message, stop)
    end
    local now = clock()
    local tick = self.ticker
    if tick and now >= tick.at then
      tick.at = now + tick.period
      tick.fn()
    end
    local next_timer, ran = run_timers(self, now)
    local wake = dispatch(self, now)
    if ran then next_timer = nil end   -- a timer may have queued work: look again at once
    local at = math.min(next_timer or math.huge, wake or math.huge)
    if self.n_inflight == 0 and not next(self.waiting) and #self.timers == 0 and not ran then return true end
    local timeout = ran and 0 or math.max(0, math.min(at - now, 0.1))
    if self.n_inflight > 0 then
      for _, ended in ipairs(self.http:poll(math.floor(timeout * 1000))) do finish(self, ended) end
    elseif timeout > 0 then
      core.http.sleep(timeout)
    end
  end
end

--- Runs `fn` every `seconds` inside `run` while it runs (it does not keep `run` going).
-- @within Pool
-- @tparam number seconds the period
-- @tparam function fn what to run
function Pool:every(seconds, fn)
  self.ticker = { period = seconds, fn = fn, at = clock() + seconds }
end

--- Closes the pool's connections (its HTTP client); the pool is not used after.
-- @within Pool
function Pool:close()
  self.http:close()
end

--- Calls in flight now.
-- @within Pool
-- @treturn integer the count
function Pool:in_flight() return self.n_inflight end

return pool
