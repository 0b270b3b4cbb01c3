-- topology.svg and prove.svg: nested boxes, no wider than 3:1, text of at least 8 pt when printed
-- at A4 landscape width (297 mm = 842 pt), the blocking hop red with its code.
local report = require "awsnet.report"

local function topo()
  local function sub(id, cidr, rtb, acl, items) return { id = id, cidr = cidr, route_table = rtb, nacl = acl, items = items } end
  return {
    accounts = {
      { name = "A", id = "111111111111", vpc = { id = "vpc-a", cidr = "10.0.0.0/16" }, subnets = {
        sub("subnet-a", "10.0.128.0/28", "rtb-a", "acl-a", { { id = "eni-l", label = "Lambda w", sgs = { "sg-l" } } }),
        sub("subnet-at", "10.0.129.0/28", "rtb-a", "acl-a", { { id = "tgw-attach-a", label = "TGW attachment" } }) } },
      { name = "B", id = "222222222222", vpc = { id = "vpc-b", cidr = "10.1.0.0/16" }, subnets = {
        sub("subnet-b", "10.1.128.0/28", "rtb-b", "acl-b", { { id = "eni-db", label = "RDS db", sgs = { "sg-db" } } }),
        sub("subnet-bt", "10.1.129.0/28", "rtb-b", "acl-b", { { id = "tgw-attach-b", label = "TGW attachment" } }) } },
    },
    tgw = { id = "tgw-1", account = "A", route_table = "tgw-rtb-1" },
  }
end

local function hop(c, kind, verdict, rule) return { component = c, kind = kind, verdict = verdict or "forward", rule = rule } end

local function trace(blocked)
  return { reachable = not blocked, code = blocked and "TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT", blocked_at = blocked and "tgw-rtb-1",
    forward = { ok = not blocked, hops = { hop("eni-l", "network-interface"), hop("sg-l", "security-group", "allow"),
      hop("rtb-a", "route-table"), hop("acl-a", "network-acl", "allow", "outbound rule 100"),
      hop("acl-a", "network-acl", "allow", "inbound rule 100"), hop("tgw-attach-a", "tgw-attachment"),
      hop("tgw-rtb-1", "tgw-route-table", blocked and "drop" or "forward") } },
    ret = { ok = true, hops = { hop("rtb-b", "route-table"), hop("tgw-attach-b", "tgw-attachment") } } }
end

local function viewbox(svg)
  local w, h = svg:match('viewBox="0 0 ([%d.]+) ([%d.]+)"')
  return tonumber(w), tonumber(h)
end

describe("report SVG", function()
  for _, case in ipairs({ { "topology", function() return report.topology_svg{ title = "t", topology = topo(),
    trace = trace(true) } end }, { "prove", function() return report.prove_svg{ title = "t", topology = topo(),
    prove = { { case = "as built", reachable = true }, { case = "no TGW route", reachable = false,
      code = "TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT", blocked_at = "tgw-rtb-1" } } } end } }) do
    it(case[1] .. ": no wider than 3:1, every text at least 8 pt at A4 landscape width", function()
      local svg = case[2]()
      local w, h = viewbox(svg)
      assert.truthy(w and h)
      assert.is_true(w / h <= 3, "ratio " .. w / h)
      local min = 8 * w / 842
      local n = 0
      for size in svg:gmatch('<text[^>]- font%-size="([%d.]+)"') do
        n = n + 1
        assert.is_true(tonumber(size) >= min, size .. " < " .. min)
      end
      assert.is_true(n > 10)
      -- nested boxes: the accounts, VPCs, subnets, and the TGW's route table
      for _, text in ipairs({ "account A", "VPC vpc%-a", "subnet%-bt", "Transit Gateway", "tgw%-rtb%-1", "SG sg%-db" }) do
        assert.matches(text, svg)
      end
      -- a red element carrying the code
      local g = svg:match('<g class="blocked" data%-code="TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT">(.-)</g>')
      assert.truthy(g)
      assert.matches('#d21f1f', g)
    end)
  end

  it("draws the forward path solid and the return path dashed, numbered", function()
    local svg = report.topology_svg{ topology = topo(), trace = trace(false) }
    assert.matches('marker%-end="url%(#arrow%-fwd%)"', svg)
    assert.matches('stroke%-dasharray="7 4" marker%-end="url%(#arrow%-ret%)"', svg)
    assert.is_nil(svg:find('class="blocked"', 1, true))
    assert.matches(">7</text>", svg)
  end)

  it("puts a shared ACL's inbound hop in the next hop's subnet", function()
    local svg = report.topology_svg{ topology = topo(), trace = trace(false) }
    -- hop 4 (outbound) and 5 (inbound) are on two different boxes: no "4,5" badge
    assert.is_nil(svg:find(">4,5<", 1, true))
    assert.matches(">4</text>", svg)
    assert.matches(">5</text>", svg)
  end)
end)
