--- The client-side rate limiter of the AWS SDKs' adaptive retry mode: a token bucket that is off
-- until the first throttling answer, then refills at a rate that drops by BETA on each throttle
-- and grows back along a CUBIC curve after it, never above twice the measured sending rate.
-- The constants and steps are those of the SDKs' reference (the AWS SDK for Java's TokenBucket
-- documents the pseudocode; botocore's retries/bucket.py and throttling.py, smithy's
-- DefaultRateLimiter): MIN_FILL_RATE 0.5, MIN_CAPACITY 1, SMOOTH 0.8, BETA 0.7, SCALE_CONSTANT 0.4,
-- the sending rate measured in half-second buckets.
--
-- Unlike the SDKs, `acquire` does not sleep: it takes a token, or says how long to wait for one,
-- so one event loop can hold many buckets (one per account, region and service, as AWS throttles).
--
--   local bucket = ratelimit.new(now)
--   local wait = bucket:acquire(now)        -- 0: send now; else seconds until a token
--   bucket:update(now, throttled)           -- after each answer
-- @module awsnet.aws.ratelimit
local ratelimit = {}

local MIN_FILL_RATE, MIN_CAPACITY = 0.5, 1
local SMOOTH, BETA, SCALE_CONSTANT = 0.8, 0.7, 0.4

local Bucket = {}
Bucket.__index = Bucket

--- A bucket, disabled until the first throttle.
-- @tparam number now the time in seconds (any monotonic clock)
-- @return the bucket (`acquire`, `update`, `rate`)
function ratelimit.new(now)
  return setmetatable({
    enabled = false, fill_rate = MIN_FILL_RATE, max_capacity = MIN_CAPACITY, capacity = 0, last_refill = nil,
    measured_rate = 0, request_count = 0, last_rate_bucket = math.floor(now),
    last_max_rate = 0, last_throttle = now, time_window = 0,
  }, Bucket)
end

function Bucket:_refill(now)
  if not self.last_refill then self.last_refill = now; return end
  local amount = (now - self.last_refill) * self.fill_rate
  self.capacity = math.min(self.max_capacity, self.capacity + amount)
  self.last_refill = now
end

--- Takes a token to send a request: 0 when sent may go now (always, before any throttle), else
-- the seconds until the bucket holds one (call again then).
-- @within Bucket
-- @tparam number now the time in seconds
-- @treturn number 0, or the seconds to wait
function Bucket:acquire(now)
  if not self.enabled then return 0 end
  self:_refill(now)
  if self.capacity >= 1 then
    self.capacity = self.capacity - 1
    return 0
  end
  return (1 - self.capacity) / self.fill_rate
end

function Bucket:_measure(now)
  local bucket = math.floor(now * 2) / 2
  self.request_count = self.request_count + 1
  if bucket > self.last_rate_bucket then
    local current = self.request_count / (bucket - self.last_rate_bucket)
    self.measured_rate = current * SMOOTH + self.measured_rate * (1 - SMOOTH)
    self.request_count = 0
    self.last_rate_bucket = bucket
  end
end

function Bucket:_window()
  self.time_window = ((self.last_max_rate * (1 - BETA)) / SCALE_CONSTANT) ^ (1 / 3)
end

--- Updates the sending rate after an answer: down by BETA on a throttle (and the bucket is on from
-- then), up along the cubic curve otherwise.
-- @within Bucket
-- @tparam number now the time in seconds
-- @tparam boolean throttled whether the answer was a throttling error
function Bucket:update(now, throttled)
  self:_measure(now)
  local calculated
  if throttled then
    local rate = self.enabled and math.min(self.measured_rate, self.fill_rate) or self.measured_rate
    self.last_max_rate = rate
    self:_window()
    self.last_throttle = now
    calculated = rate * BETA
    self.enabled = true
  else
    self:_window()
    calculated = SCALE_CONSTANT * (now - self.last_throttle - self.time_window) ^ 3 + self.last_max_rate
  end
  local rate = math.min(calculated, 2 * self.measured_rate)
  self:_refill(now)
  self.fill_rate = math.max(rate, MIN_FILL_RATE)
  self.max_capacity = math.max(rate, MIN_CAPACITY)
  self.capacity = math.min(self.capacity, self.max_capacity)
end

--- The bucket's refill rate (requests per second) once enabled, else nil.
-- @within Bucket
-- @treturn ?number the rate
function Bucket:rate() return self.enabled and self.fill_rate or nil end

return ratelimit
