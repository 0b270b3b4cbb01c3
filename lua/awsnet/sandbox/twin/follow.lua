--- How the sandbox's network twin follows the sandbox (its hooks in awsnet.sandbox): a call that
-- changes the network is answered once the twin has applied the change (the server serves other
-- clients meanwhile, as it does during a Lambda run); what changes with time alone (an attachment
-- that becomes available, a Lambda ENI released) is realised within a second; the VPC resolvers
-- follow too (a VPC, enableDnsSupport, an instance's name).
-- @module awsnet.sandbox.twin.follow
local core = require "awsnet.core"
local services = require "awsnet.sandbox.twin.services"

local follow = {}

-- Calls that change nothing.
local function reads_only(action)
  return action:match("^Describe") or action:match("^Get") or action:match("^List") or action:match("^Search") or
    action == "Invoke"
end

--- After a call that succeeded: realises what it changed and answers `response` once applied.
-- @param sb the sandbox (with a twin)
-- @tparam table req the request (req.id names its connection, nil when called directly)
-- @tparam string action the action that ran
-- @tparam table response the answer
-- @treturn table the answer, or {defer = true} (the sandbox answers when the change is applied)
function follow.call(sb, req, action, response)
  if sb.twin_held or reads_only(action) then return response end
  local job = sb.twin:sync(sb:snapshot())
  local waiting = { cancel = function() end }
  function waiting.poll()
    if job and not job.done() then return nil end
    local ok, err = services.resolvers(sb)
    if not ok then sb:log("%s", tostring(err)) end
    return response
  end
  sb.jobs[#sb.jobs + 1] = { id = req.id, job = waiting, delay_ms = response.delay_ms }
  if req.id then return { defer = true } end
  -- called without a connection: wait here
  table.remove(sb.jobs)
  local out = waiting.poll()
  while not out do core.process.sleep(0.005, false); out = waiting.poll() end
  return out
end

--- Runs the twin's queued changes, and once a second (when idle) realises what time changed.
-- @param sb the sandbox (with a twin)
function follow.tick(sb)
  local busy = sb.twin:tick()
  local now = core.httpd.monotonic()
  if not busy and not sb.twin_held and now - (sb.twin_synced or 0) >= 1 then
    sb.twin_synced = now
    if not sb.twin:sync(sb:snapshot()) then
      local ok, err = services.resolvers(sb)
      if not ok then sb:log("%s", tostring(err)) end
    end
  end
end

--- Runs `fn` with the twin's following held, then realises the whole change at once and waits
-- for it (for a caller that builds many resources before it looks, such as the differential
-- test's generator); returns fn's results, or raises its error.
-- @param sb the sandbox
-- @tparam function fn what to do
-- @return what fn returned
function follow.batch(sb, fn)
  sb.twin_held = true
  local results = table.pack(pcall(fn))
  sb.twin_held = nil
  if sb.twin then
    sb.twin:sync(sb:snapshot())
    sb.twin:settle()
    local ok, err = services.resolvers(sb)
    if not ok then sb:log("%s", tostring(err)) end
  end
  if not results[1] then error(results[2], 0) end
  return table.unpack(results, 2, results.n)
end

return follow
