--- Test helpers: real local services, started per spec file and stopped in teardown (and by a
-- watchdog if the run is interrupted). Reusable from any spec:
--
--   local services = require "helpers.services"
--   local db = services.mariadb()   -- in setup(); services.stop_all() in teardown()
local mariadb_server = require "awsnet.svc.mariadb_server"
local dnsmasq = require "awsnet.svc.dnsmasq"
local process = require "awsnet.svc.process"

local services = { started = {} }

local function track(s, err)
  assert(s, err and tostring(err))
  services.started[#services.started + 1] = s
  return s
end

function services.mariadb(opts) return track(mariadb_server.start(opts)) end
--- Tracks any other started thing that has a `stop` method, so stop_all stops it too.
services.track = track
function services.dnsmasq(opts) return track(dnsmasq.start(opts)) end

--- Stops every service this helper started, newest first.
function services.stop_all()
  for i = #services.started, 1, -1 do
    pcall(services.started[i].stop, services.started[i])
    services.started[i] = nil
  end
end

--- Runs a shell command, returns stdout (error on non-zero exit).
function services.sh(cmd) return assert(process.run(cmd)) end

services.process = process
return services
