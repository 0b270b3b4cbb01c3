-- SigV4 signatures per second, one core, same run: awsnet.sigv4.sign called from Lua versus
-- botocore's SigV4Auth.add_auth (Debian python3-botocore), for the same request. Prints the
-- ratio; the target is at least 20. The two are measured in alternating rounds (CPU time) and
-- each keeps its best round, so a burst of load on the shared machine hits both alike. A missed
-- target is measured once more (all rounds, both sides); missed again, the run exits 1.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("AWSNET_BUILD") or "build") .. "/?.so;" .. package.cpath
local sigv4 = require "awsnet.sigv4"

local SECONDS = tonumber(os.getenv("BENCH_SECONDS") or "0.5") -- per round
local ROUNDS = tonumber(os.getenv("BENCH_ROUNDS") or "5")
local TARGET = 20

local req = {
  method = "POST", url = "https://ec2.us-east-1.amazonaws.com/",
  headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" },
  body = "Action=DescribeVpcs&Version=2016-11-15&Filter.1.Name=tag%3AName&Filter.1.Value.1=a",
}
local creds = { access_key_id = "AKIDEXAMPLE", secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  session_token = "FQoGZXIvYXdzEXAMPLETOKEN" }
local opts = { region = "us-east-1", service = "ec2" }

local function awsnet_rate()
  local sign = sigv4.sign
  local n, start = 0, os.clock()
  local elapsed
  repeat
    for _ = 1, 2000 do assert(sign(req, creds, opts)) end
    n = n + 2000
    elapsed = os.clock() - start
  until elapsed >= SECONDS
  return n / elapsed
end

local function botocore_rate()
  local p = assert(io.popen("/usr/bin/python3 bench/sign/botocore_sign.py " .. SECONDS))
  local out = p:read("a")
  p:close()
  local rate = tonumber(out)
  assert(rate, "botocore bench printed: " .. out)
  return rate
end

-- Measures the figure and prints it; returns whether the target is met.
local function figure(label)
  local ours, theirs = 0, 0
  for _ = 1, ROUNDS do
    ours = math.max(ours, awsnet_rate())
    theirs = math.max(theirs, botocore_rate())
  end
  local ratio = ours / theirs
  local met = ratio >= TARGET
  print(string.format("%s: awsnet.sigv4.sign %.0f/s, botocore SigV4Auth.add_auth %.0f/s, ratio %.1fx (target >= %dx: %s)",
    label, ours, theirs, ratio, TARGET, met and "met" or "NOT met"))
  return met
end

if not figure("sign") and not figure("sign (re-run)") then
  print("sign: target missed twice")
  os.exit(1)
end
