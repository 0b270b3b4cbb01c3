-- The evaluator against the kernel: seeded random topologies with one fault each, built in the
-- sandbox through its API and realised by its network twin; flows probed inside the twin (TCP,
-- UDP, ICMP within 300 ms) and traced by awsnet.reach on the sandbox's snapshot must agree. A
-- disagreement is saved as a reproducer (build/twin-reproducers/case-<seed>.json: the snapshot,
-- the flows, both answers). `make test` runs AWSNET_TWIN_CASES (default 50) cases, `make soak`
-- 1,000. Needs root: without it the spec fails, unless AWSNET_TWIN=off says to skip it.
local sandbox = require "awsnet.sandbox"
local twin_mod = require "awsnet.sandbox.twin"
local cases = require "helpers.twin_cases"

local CASES = tonumber(os.getenv("AWSNET_TWIN_CASES")) or 50
local FIRST = tonumber(os.getenv("AWSNET_TWIN_SEED")) or 1
local REPRODUCERS = (os.getenv("AWSNET_BUILD") or "build") .. "/twin-reproducers"

describe("evaluator against the kernel", function()
  if os.getenv("AWSNET_TWIN") == "off" then
    pending("AWSNET_TWIN=off: the differential test is not run")
    return
  end

  local sb
  setup(function()
    local ok, lack = twin_mod.available()
    assert(ok, "the network twin cannot run here (" .. tostring(lack) .. "); AWSNET_TWIN=off skips this spec")
    sb = assert(sandbox.start { port = 0, twin = "on", transition_s = 0, region = cases.REGION,
      accounts = cases.ACCOUNTS, log = function() end })
  end)
  teardown(function() if sb then sb:stop() end end)

  it(string.format("agrees on every flow of %d seeded cases", CASES), function()
    local flows, agreed, open, closed, times, saved = 0, 0, 0, 0, {}, {}
    for seed = FIRST, FIRST + CASES - 1 do
      local out = cases.run(sb, seed)
      times[#times + 1] = out.seconds
      for _, f in ipairs(out.flows) do
        flows = flows + 1
        if f.kernel == f.evaluator then agreed = agreed + 1 end
        if f.kernel then open = open + 1 else closed = closed + 1 end
      end
      if out.disagreements > 0 then saved[#saved + 1] = cases.save_reproducer(REPRODUCERS, out) end
    end
    table.sort(times)
    print(string.format("\ntwin differential: %d cases, %d flows, %d agree (%.1f%%); %d open, %d closed; " ..
      "per case median %.2f s, max %.2f s", CASES, flows, agreed, 100 * agreed / math.max(flows, 1), open, closed,
      times[(#times + 1) // 2], times[#times]))
    -- both outcomes occur, so agreement means something
    assert.is_true(open > 0 and closed > 0)
    assert.are.equal(flows, agreed, "disagreements saved in: " .. table.concat(saved, ", "))
  end)

  it("saves a reproducer that traces again to the answers it records", function()
    local out = cases.run(sb, FIRST, { keep_snapshot = true })
    local dir = require("awsnet.svc.process").tempdir("awsnet-twin-repro")
    local ok, err = pcall(function()
      local again = cases.retrace(cases.save_reproducer(dir, out))
      assert.equal(#out.flows, #again)
      for i, f in ipairs(out.flows) do assert.equal(f.evaluator, again[i].evaluator) end
    end)
    require("awsnet.svc.process").remove(dir)
    assert(ok, err)
  end)
end)
