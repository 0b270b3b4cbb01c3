-- report.md and topology.svg from what a scenario run collected (rendered by the real `dot`).
local report = require "awsnet.report"
local process = require "awsnet.svc.process"

local function data(blocked)
  local fwd = {
    { component = "eni-lambda", kind = "network-interface", verdict = "accept" },
    { component = "sg-lambda", kind = "security-group", rule = { cidr = "10.1.0.0/16", ports = "3306" }, verdict = "accept" },
    { component = "rtb-a", kind = "route-table", rule = { destination = "10.1.0.0/16", target = "tgw-1" }, verdict = "accept" },
    { component = "tgw-1", kind = "transit-gateway", verdict = "accept" },
    { component = { id = "tgw-rtb-1" }, kind = "tgw-route-table", verdict = blocked and "drop" or "accept" },
  }
  return {
    title = "Lambda | A -> RDS in B",
    topology = {
      accounts = {
        { name = "A", id = "111111111111", vpc = { id = "vpc-a", cidr = "10.0.0.0/16" },
          subnets = { { id = "subnet-a", cidr = "10.0.128.0/28" } }, workload = { id = "eni-lambda", label = "Lambda writer" } },
        { name = "B", id = "222222222222", vpc = { id = "vpc-b", cidr = "10.1.0.0/16" },
          subnets = { { id = "subnet-b", cidr = "10.1.128.0/28" } }, workload = { id = "rds-appdb", label = "RDS appdb" } },
      },
      tgw = { id = "tgw-1", account = "A", route_table = "tgw-rtb-1" },
    },
    trace = { reachable = not blocked, code = blocked and "TGW_RTB_CANNOT_ROUTE" or nil,
      blocked_at = blocked and "tgw-rtb-1" or nil, forward = { ok = not blocked, hops = fwd },
      ret = { ok = true, hops = { { component = "sg-rds", kind = "security-group", verdict = "accept" } } },
      assumptions = { "RDS endpoint not publicly accessible" } },
    checks = { { name = "resolve endpoint", ok = true, detail = "10.1.128.5", seconds = 0.02 },
      { name = "invoke", ok = false, detail = "timeout" } },
    prove = { { case = "as built", reachable = true }, { case = "no TGW route to B", reachable = false,
      code = "TGW_RTB_CANNOT_ROUTE", blocked_at = "tgw-rtb-1" } },
    timings = { { phase = "apply", seconds = 1.5 } },
  }
end

describe("report", function()
  local dir
  before_each(function() dir = process.tempdir("awsnet-report-test") end)
  after_each(function() os.execute("rm -rf " .. process.quote(dir)) end)

  it("writes the checks, the hops both ways, the prove table and the timings as Markdown", function()
    local paths = assert(report.write(dir, data(true)))
    local md = assert(process.read_file(paths.markdown))
    assert.matches("# Lambda | A -> RDS in B", md, 1, true)
    assert.matches("| invoke | **FAIL** | timeout |  |", md, 1, true)
    assert.matches("Result: **not reachable** — TGW_RTB_CANNOT_ROUTE at tgw-rtb-1", md, 1, true)
    assert.matches("| 5 | tgw-rtb-1 **(blocks)** | tgw-route-table |  | drop |", md, 1, true)
    assert.matches("| 3 | rtb-a | route-table | destination=10.1.0.0/16 target=tgw-1 | accept |", md, 1, true)
    assert.matches("### Return (passes)", md, 1, true)
    assert.matches("| no TGW route to B | blocked | TGW_RTB_CANNOT_ROUTE | tgw-rtb-1 |", md, 1, true)
    assert.matches("| apply | 1.50 s |", md, 1, true)
    assert.matches("- RDS endpoint not publicly accessible", md, 1, true)
  end)

  it("draws both VPCs, the TGW and its route table, the hops, and the blocking hop in red", function()
    local paths = assert(report.write(dir, data(true)))
    local svg = assert(process.read_file(paths.svg))
    assert.matches("^<%?xml", svg)
    assert.matches("</svg>%s*$", svg)
    for _, id in ipairs({ "VPC vpc%-a", "VPC vpc%-b", "Transit Gateway", "TGW route table", "subnet%-b" }) do
      assert.matches(id, svg)
    end
    assert.matches('<g class="blocked" data%-code="TGW_RTB_CANNOT_ROUTE">', svg)
    assert.truthy(paths.prove_svg)
    assert.matches("P2", assert(process.read_file(paths.prove_svg)))
  end)

  it("has no red when the path is reachable", function()
    local svg = assert(report.svg(report.dot(data(false))))
    assert.is_nil(svg:find("red", 1, true))
    assert.is_nil(report.topology_svg(data(false)):find('class="blocked"', 1, true))
    assert.is_nil(report.markdown(data(false)):find("(blocks)", 1, true))
  end)

  it("merges prove into the report verify wrote, timings included", function()
    local v = data(false)
    v.prove = nil
    assert(report.write(dir, v))
    local md = assert(process.read_file(dir .. "/report.md"))
    assert.is_nil(md:find("## Prove", 1, true))
    assert(report.write(dir, { title = "prove", prove = data(true).prove, timings = { { phase = "prove", seconds = 2 } } },
      { merge = true }))
    md = assert(process.read_file(dir .. "/report.md"))
    assert.matches("| resolve endpoint | pass | 10.1.128.5 | 0.02 s |", md, 1, true)
    assert.matches("| no TGW route to B | blocked |", md, 1, true)
    assert.matches("| apply | 1.50 s |\n| prove | 2.00 s |", md)
    assert.matches("VPC vpc", assert(process.read_file(dir .. "/topology.svg")):gsub("&#45;", "-"))
  end)

  it("says when dot fails", function()
    local svg, err = report.svg("digraph {")
    assert.is_nil(svg)
    assert.equals("graphviz", err.code)
  end)
end)
