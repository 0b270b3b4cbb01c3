-- A reply's client ports against a network ACL: the evaluator decides a whole port range at once
-- (csrc/reach/eval.c: one pass over the rules, or point by point for a very long table). Checked
-- here on random NACLs against the rule AWS documents (nacl-basics.html: rules in ascending rule
-- number, the first that matches the packet decides, else the implicit deny), applied port by port
-- in this spec; and the long-table way against the one-pass way on the same rules.
local reach = require "awsnet.reach"

local A = "111111111111"
local LO, HI = 32768, 60999 -- an instance's client ports (nacl-ephemeral-ports.html)
local SERVER = "10.0.2.10"

local function snapshot(inbound)
  local entries = {
    { RuleNumber = 100, Egress = true, RuleAction = "allow", CidrBlock = "0.0.0.0/0", Protocol = "-1" },
    { RuleNumber = 32767, Egress = true, RuleAction = "deny", CidrBlock = "0.0.0.0/0", Protocol = "-1" },
    { RuleNumber = 32767, Egress = false, RuleAction = "deny", CidrBlock = "0.0.0.0/0", Protocol = "-1" },
  }
  for _, e in ipairs(inbound) do
    entries[#entries + 1] = { RuleNumber = e.number, Egress = false, RuleAction = e.action, CidrBlock = e.cidr,
      Protocol = e.proto, PortRange = e.lo and { From = e.lo, To = e.hi } or nil }
  end
  local open = { { RuleNumber = 100, Egress = false, RuleAction = "allow", CidrBlock = "0.0.0.0/0", Protocol = "-1" },
    { RuleNumber = 100, Egress = true, RuleAction = "allow", CidrBlock = "0.0.0.0/0", Protocol = "-1" } }
  local r = {
    Vpcs = { { VpcId = "vpc-1", CidrBlock = "10.0.0.0/16", OwnerId = A } },
    Subnets = { { SubnetId = "subnet-c", VpcId = "vpc-1", CidrBlock = "10.0.1.0/24", AvailabilityZone = "us-east-1a" },
      { SubnetId = "subnet-s", VpcId = "vpc-1", CidrBlock = "10.0.2.0/24", AvailabilityZone = "us-east-1a" } },
    RouteTables = { { RouteTableId = "rtb-1", VpcId = "vpc-1", Associations = { { Main = true } },
      Routes = { { DestinationCidrBlock = "10.0.0.0/16", GatewayId = "local", State = "active" } } } },
    NetworkAcls = { { NetworkAclId = "acl-c", VpcId = "vpc-1", IsDefault = false,
      Associations = { { SubnetId = "subnet-c" } }, Entries = entries },
      { NetworkAclId = "acl-s", VpcId = "vpc-1", IsDefault = true, Associations = { { SubnetId = "subnet-s" } },
        Entries = open } },
    SecurityGroups = { { GroupId = "sg-1", GroupName = "sg-1", VpcId = "vpc-1",
      IpPermissions = { { IpProtocol = "-1", IpRanges = { { CidrIp = "0.0.0.0/0" } } } },
      IpPermissionsEgress = { { IpProtocol = "-1", IpRanges = { { CidrIp = "0.0.0.0/0" } } } } } },
    NetworkInterfaces = {
      { NetworkInterfaceId = "eni-c", SubnetId = "subnet-c", PrivateIpAddress = "10.0.1.10", InterfaceType = "interface",
        Groups = { { GroupId = "sg-1" } } },
      { NetworkInterfaceId = "eni-s", SubnetId = "subnet-s", PrivateIpAddress = SERVER, InterfaceType = "interface",
        Groups = { { GroupId = "sg-1" } } } },
  }
  return { accounts = { [A] = { ["us-east-1"] = r } } }
end

-- The documented rule, port by port: the number of the rule that decides the lowest port it denies
-- (32767 for the catch-all deny), or nil when every port is let in.
local function first_denied(inbound)
  local rules = {}
  for _, e in ipairs(inbound) do rules[#rules + 1] = e end
  rules[#rules + 1] = { number = 32767, action = "deny", cidr = "0.0.0.0/0", proto = "-1" }
  table.sort(rules, function(a, b) return a.number < b.number end)
  for p = LO, HI do
    local decided
    for _, e in ipairs(rules) do
      local cidr_ok = e.cidr == "0.0.0.0/0" or e.cidr == "10.0.2.0/24"
      local proto_ok = e.proto == "-1" or (e.proto == "6" and p >= e.lo and p <= e.hi)
      if cidr_ok and proto_ok then decided = e break end
    end
    if decided.action == "deny" then return decided.number end
  end
end

-- Random inbound rules around the client ports' edges: tcp ranges, all-protocol rules, rules for
-- another source (never matching), distinct numbers.
local function random_rules(rnd)
  local edges = { LO - 1, LO, LO + 1, 40000, 40001, 50000, HI - 1, HI, HI + 1, 1024, 65535 }
  local used, rules = {}, {}
  for _ = 1, rnd(1, 25) do
    local number
    repeat number = rnd(1, 400) until not used[number]
    used[number] = true
    local a, b = edges[rnd(1, #edges)], edges[rnd(1, #edges)]
    if rnd(1, 3) == 1 then a, b = rnd(LO - 10, HI + 10), rnd(LO - 10, HI + 10) end
    local kind = rnd(1, 10)
    rules[#rules + 1] = { number = number, action = rnd(1, 3) == 1 and "deny" or "allow",
      cidr = kind == 1 and "192.168.0.0/16" or (kind <= 5 and "10.0.2.0/24" or "0.0.0.0/0"),
      proto = kind == 10 and "-1" or "6", lo = math.min(a, b), hi = math.max(a, b) }
    if rules[#rules].proto == "-1" then rules[#rules].lo, rules[#rules].hi = nil, nil end
  end
  return rules
end

local function verdict(inbound)
  local m = assert(reach.load(snapshot(inbound)))
  local r = assert(m:trace{ src = "eni-c", dst = "eni-s", protocol = "tcp", port = 443 })
  local number = r.blocked_at and r.blocked_at.rule and tonumber(r.blocked_at.rule:match("rule (%d+)"))
  -- (the catch-all rule 32767 is the implicit deny: a hop without rule text)
  local out = { reachable = r.reachable, code = r.code, rule = number or (r.blocked_at and 32767) or nil,
    direction = r.blocked_at and r.blocked_at.direction }
  m:close()
  return out
end

describe("a reply's client ports against a network ACL", function()
  it("are decided as the first matching rule decides each port, on random rules", function()
    math.randomseed(20261203)
    local rnd = math.random
    local denied, allowed = 0, 0
    for _ = 1, 60 do
      local rules = random_rules(rnd)
      local want = first_denied(rules)
      local got = verdict(rules)
      if want then
        denied = denied + 1
        assert.same({ reachable = false, code = "SUBNET_ACL_RESTRICTION", rule = want,
          direction = "return" }, got)
      else
        allowed = allowed + 1
        assert.same({ reachable = true }, got)
      end
      -- the same rules behind enough others (for another source) that the table is walked point by point
      local long = {}
      for _, e in ipairs(rules) do long[#long + 1] = e end
      for k = 1, 70 do
        long[#long + 1] = { number = 1000 + k, action = "deny", cidr = "192.168.0.0/16", proto = "6", lo = LO + k,
          hi = HI - k }
      end
      assert.same(got, verdict(long))
    end
    -- both outcomes were exercised
    assert.is_true(denied > 5 and allowed > 5, denied .. " denied, " .. allowed .. " allowed")
  end)
end)
