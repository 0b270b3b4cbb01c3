-- IPv6 in the evaluator (issue 17): the article made dual stack (tests/helpers/dual_stack.lua:
-- what AWS gives a VPC and its subnets when IPv6 is added), traced in both families, and faults
-- that block only IPv6. Every expected answer comes from the AWS rule cited next to it
-- (docs/aws-network-semantics.md, "IPv6"), not from running the evaluator.
local reach = require "awsnet.reach"
local snapshot = require "awsnet.reach.snapshot"
local blocked = require "awsnet.reach.blocked"
local dual = require "helpers.dual_stack"
local copy = require("helpers.tables").copy
local creach = require("awsnet.core").reach

local A, B = "111111111111", "222222222222"
local TGW = "tgw-0a1b2c3d4e5f60001"
local ATT_B = "tgw-attach-0b00000000000000b"
local LAMBDA_RTB, LAMBDA_ACL, DB_ACL = "rtb-0a0000000000000l1", "acl-0a0000000000000l1", "acl-0b00000000000db01"
local DB_SG, RDS_ENI = "sg-0b00000000000db001", "eni-0b00000000000rds1"
local DB6 = dual.address("10.1.128.10") -- the database's IPv6 address

local base = dual.make(assert(snapshot.read("tests/fixtures/reach/article")))
local function region(data, acct) return data.accounts[acct]["us-east-1"] end
local function find(list, field, id)
  for _, item in ipairs(list) do if item[field] == id then return item end end
  error("no " .. id)
end

-- fn(attachment) on every account's record of attachment `id` (the owner and the VPC's account
-- both list it).
local function each_att(data, id, fn)
  for _, acct in ipairs({ A, B }) do
    for _, att in ipairs(region(data, acct).TransitGatewayVpcAttachments) do
      if att.TransitGatewayAttachmentId == id then fn(att) end
    end
  end
end

local ARTICLE = { src = "lambda:writer", dst = "rds:orders", protocol = "tcp", port = 3306 }
local function with(q, extra)
  local out = copy(q)
  for k, v in pairs(extra) do out[k] = v end
  return out
end

-- Loads the dual-stack article after `mutate(data, a, b)`; returns the model.
local function model_with(mutate)
  local data = copy(base)
  if mutate then mutate(data, region(data, A), region(data, B)) end
  return assert(reach.load(data)), data
end

-- Both families of the article's path: the IPv4 and the IPv6 result.
local function both(mutate, q)
  local m = model_with(mutate)
  q = q or ARTICLE
  return assert(m:trace(q)), assert(m:trace(with(q, { family = "ipv6" }))), m
end

local function rules(hops)
  local out = {}
  for _, h in ipairs(hops) do out[#out + 1] = h.rule or "" end
  return table.concat(out, "\n")
end

describe("reach in dual stack: the article", function()
  it("reaches the database in both families, each on its own routes and rules", function()
    local r4, r6 = both()
    assert.is_true(r4.reachable, tostring(r4))
    assert.is_true(r6.reachable, tostring(r6))
    assert.equals("10.1.128.10", r4.dst_ip)
    assert.equals(DB6, r6.dst_ip)
    assert.equals("2600:1f18:100:b00::a", r6.dst_ip)
    -- the IPv6 packet uses only IPv6 routes and rules, the IPv4 one only IPv4 ones
    local fwd6, fwd4 = rules(r6.forward.hops), rules(r4.forward.hops)
    assert.matches("2600:1f18:100:b00::/56 -> " .. TGW, fwd6, 1, true)
    assert.matches("outbound rule 101: allow tcp 3306 to 2600:1f18:100:b00::/64", fwd6, 1, true)
    assert.matches("inbound: allow tcp 3306 from 2600:1f18:100:a00::/64", fwd6, 1, true)
    assert.is_nil(fwd6:find("10.", 1, true))
    assert.is_nil(fwd4:find("2600:", 1, true))
    -- the TGW route came from the propagation of B's attachment, which has IPv6 support
    assert.matches("2600:1f18:100:b00::/56 -> " .. ATT_B .. " (propagated", fwd6, 1, true)
    assert.is_true(r6.ret.ok)
    assert.matches("2600:1f18:100:a00::/56 -> tgw", rules(r6.ret.hops), 1, true)
  end)

  it("is what tests/fixtures/reach/article-dual holds (the README traces that folder)", function()
    assert.same(base, assert(snapshot.read("tests/fixtures/reach/article-dual")))
  end)

  it("refuses IPv6 fields of the wrong type with the file's JSON path (never an empty list)", function()
    for _, case in ipairs({
      { function(_, b) find(b.SecurityGroups, "GroupId", DB_SG).IpPermissions[1].Ipv6Ranges = "::/0" end, "Ipv6Ranges" },
      { function(a) a.Vpcs[1].Ipv6CidrBlockAssociationSet = { Ipv6CidrBlock = "2600::/56" } end,
        "Ipv6CidrBlockAssociationSet" },
      { function(_, b) b.NetworkInterfaces[1].Ipv6Addresses = { "2600::1" } end, "Ipv6Addresses" },
    }) do
      local data = copy(base)
      case[1](region(data, A), region(data, B))
      local m, err = reach.load(data)
      assert.is_nil(m)
      assert.equals("invalid_snapshot", err.code)
      assert.matches(case[2], err.path, 1, true)
    end
  end)

  it("keeps an IPv6 result's query out of Lua's string table, and readable after the model closes", function()
    local m = model_with()
    local r = assert(m:trace(with(ARTICLE, { family = "ipv6" })))
    assert.is_true(#rawget(r, "_q") > 40) -- (LUAI_MAXSHORTLEN: longer strings are not interned)
    local _, _, src_ip, _, dip = creach.query(rawget(r, "_q"))
    assert.is_nil(src_ip) -- the Lambda ENI's own IPv6 address, not repeated
    assert.equals(DB6, creach.ipstr(dip))
    m:close()
    assert.equals(DB6, r.dst_ip)
    assert.equals(3306, r.port)
  end)

  describe("faults that block only IPv6", function()
    -- {name, mutate, code, component, direction}; the IPv4 trace of each stays reachable
    local FAULTS = {
      { "no IPv6 route to B in the Lambda's route table (IPv4 routes never carry IPv6: vpc-route-tables)",
        function(_, a)
          local t = find(a.RouteTables, "RouteTableId", LAMBDA_RTB)
          for i = #t.Routes, 1, -1 do
            if t.Routes[i].DestinationIpv6CidrBlock == dual.VPC6["10.1.0.0/16"] then table.remove(t.Routes, i) end
          end
        end, "NO_ROUTE_TO_DESTINATION", LAMBDA_RTB, "forward" },
      { "B's attachment without IPv6 support: its IPv6 CIDR is not propagated (tgw-vpc-attachments)",
        function(data) each_att(data, ATT_B, function(att) att.Options.Ipv6Support = "disable" end) end,
        "TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT", "tgw-rtb-0a1b2c3d4e5f60001", "forward" },
      { "the database's group admits only IPv4 ranges (IpRanges never match IPv6: security-group-rules)",
        function(_, _, b)
          for _, p in ipairs(find(b.SecurityGroups, "GroupId", DB_SG).IpPermissions) do p.Ipv6Ranges = {} end
        end, "ENI_SG_RULES_MISMATCH", DB_SG, "forward" },
      { "the database's NACL lacks the IPv6 rule: 32768 denies (IPv6's catch-all, nacl-rules)",
        function(_, _, b)
          local n = find(b.NetworkAcls, "NetworkAclId", DB_ACL)
          for i = #n.Entries, 1, -1 do
            if n.Entries[i].Ipv6CidrBlock and n.Entries[i].RuleNumber == 101 and n.Entries[i].Egress then
              table.remove(n.Entries, i)
            end
          end
        end, "SUBNET_ACL_RESTRICTION", DB_ACL, "return" },
    }
    for _, f in ipairs(FAULTS) do
      local name, mutate, code, component, direction = f[1], f[2], f[3], f[4], f[5]
      it(name, function()
        local r4, r6 = both(mutate)
        assert.is_true(r4.reachable, tostring(r4))
        assert.is_false(r6.reachable)
        assert.equals(code, r6.code)
        assert.equals(component, r6.blocked_at.component)
        assert.equals(direction, r6.blocked_at.direction)
        -- the fix set names IPv6 CIDRs and, made in a copy of the snapshot, lets IPv6 through
        local data = select(2, model_with(mutate))
        local fixed, undone = blocked.apply(data, r6.fix)
        assert.same({}, undone)
        local again = assert(reach.load(fixed)):trace(with(ARTICLE, { family = "ipv6" }))
        assert.is_true(again.reachable, tostring(r6.fix) .. "\n" .. tostring(again))
      end)
    end

    it("names the IPv6 catch-all rule 32768 as * and suggests an IPv6 CIDR in fixes", function()
      local _, r6 = both(function(_, _, b)
        local n = find(b.NetworkAcls, "NetworkAclId", DB_ACL)
        for i = #n.Entries, 1, -1 do
          if n.Entries[i].Ipv6CidrBlock and n.Entries[i].RuleNumber == 101 and not n.Entries[i].Egress then
            table.remove(n.Entries, i)
          end
        end
      end)
      assert.equals("inbound rule *: deny all from ::/0", r6.blocked_at.rule)
      local _, sg6 = both(function(_, _, b)
        for _, p in ipairs(find(b.SecurityGroups, "GroupId", DB_SG).IpPermissions) do p.Ipv6Ranges = {} end
      end)
      assert.matches("from 2600:1f18:100:a00::%x+/128", tostring(sg6.fix))
    end)
  end)

  it("a blocked IPv6 path names IPv6 hosts in every change, and its fix set makes it reachable", function()
    local q = with(ARTICLE, { port = 3307, family = "ipv6" })
    local r6 = assert(model_with():trace(q))
    assert.is_false(r6.reachable)
    assert.equals(4, #r6.fix)
    for _, change in ipairs(r6.fix) do
      assert.matches("2600:1f18:100:%x+::%x+/128", change.change)
      assert.not_matches("/32", change.change)
    end
    local fixed, undone = blocked.apply(copy(base), r6.fix)
    assert.same({}, undone)
    assert.is_true(assert(reach.load(fixed)):trace(q).reachable)
  end)

  it("a fault in IPv4 only leaves IPv6 through", function()
    local r4, r6 = both(function(_, a)
      local t = find(a.RouteTables, "RouteTableId", LAMBDA_RTB)
      for i = #t.Routes, 1, -1 do
        if t.Routes[i].DestinationCidrBlock == "10.1.0.0/16" then table.remove(t.Routes, i) end
      end
    end)
    assert.is_false(r4.reachable)
    assert.equals("NO_ROUTE_TO_DESTINATION", r4.code)
    assert.is_true(r6.reachable, tostring(r6))
  end)

  it("an attachment without IPv6 support still carries IPv6 by a static route (the option does not filter it)", function()
    local _, r6 = both(function(data, a)
      each_att(data, ATT_B, function(att) att.Options.Ipv6Support = "disable" end)
      a.TransitGatewayRoutes[1].Routes[#a.TransitGatewayRoutes[1].Routes + 1] = {
        DestinationCidrBlock = dual.VPC6["10.1.0.0/16"], Type = "static", State = "active",
        TransitGatewayAttachments = { { TransitGatewayAttachmentId = ATT_B, ResourceType = "vpc" } } }
    end)
    assert.is_true(r6.reachable, tostring(r6))
    assert.matches(dual.VPC6["10.1.0.0/16"] .. " -> " .. ATT_B .. " (static)", rules(r6.forward.hops), 1, true)
  end)

  it("a TGW static route for IPv6 (DestinationCidrBlock holds either family) and its blackhole", function()
    local function static(blackhole)
      return function(_, a)
        a.TransitGatewayPropagations = nil -- the listed routes are then the table's routes
        local routes = {}
        for _, r in ipairs(a.TransitGatewayRoutes[1].Routes) do routes[#routes + 1] = r end
        routes[#routes + 1] = { DestinationCidrBlock = dual.VPC6["10.1.0.0/16"], Type = "static",
          State = blackhole and "blackhole" or "active",
          TransitGatewayAttachments = { { TransitGatewayAttachmentId = ATT_B, ResourceType = "vpc" } } }
        routes[#routes + 1] = { DestinationCidrBlock = dual.VPC6["10.0.0.0/16"], Type = "static", State = "active",
          TransitGatewayAttachments = { { TransitGatewayAttachmentId = "tgw-attach-0a00000000000000a", ResourceType = "vpc" } } }
        a.TransitGatewayRoutes[1].Routes = routes
      end
    end
    local _, ok6 = both(static(false))
    assert.is_true(ok6.reachable, tostring(ok6))
    local _, hole = both(static(true))
    assert.equals("TGW_RTB_BAD_STATE_ROUTE", hole.code)
  end)

  it("asks for the database's AAAA answer only when it is dual stack (NetworkType DUAL)", function()
    local m = model_with(function(_, _, b) b.DBInstances[1].NetworkType = "IPV4" end)
    local r, err = m:trace(with(ARTICLE, { family = "ipv6" }))
    assert.is_nil(r)
    assert.equals("invalid_endpoint", err.code)
    assert.matches("rds:orders has no IPv6 address %(NetworkType IPV4", err.message)
  end)

  it("refuses a source without an IPv6 address, and mixed families", function()
    local m = model_with(function(_, a)
      a.Functions[1].VpcConfig.Ipv6AllowedForDualStack = false
    end)
    local r, err = m:trace(with(ARTICLE, { family = "ipv6" }))
    assert.is_nil(r)
    assert.equals("invalid_endpoint", err.code)
    assert.matches("lambda:writer has no IPv6 address", err.message)
    r, err = m:trace{ src = "10.0.128.5", dst = DB6, protocol = "tcp", port = 3306 }
    assert.is_nil(r)
    assert.matches("src 10.0.128.5 has no IPv6 address", err.message)
    assert.has_error(function() m:trace{ src = "eni-0a000000000lambda", dst = DB6, protocol = "icmp" } end,
      "trace: protocol icmp is IPv4's; an IPv6 trace uses \"icmpv6\" (58)")
    assert.has_error(function() m:trace(with(ARTICLE, { family = "ip6" })) end)
  end)

  it("takes an IPv6 address as the family, and says when no interface holds one", function()
    local m = model_with()
    local r = assert(m:trace{ src = "eni-0a000000000lambda", dst = DB6, protocol = "tcp", port = 3306 })
    assert.is_true(r.reachable, tostring(r))
    assert.equals(RDS_ENI, r.forward.hops[#r.forward.hops].component)
    -- the same host number, another address of the database's /64
    local nobody = assert(m:trace{ src = "eni-0a000000000lambda", dst = "2600:1f18:100:b00::99", protocol = "tcp",
      port = 3306 })
    assert.is_false(nobody.reachable)
    assert.equals("NO_DESTINATION_ENI", nobody.code)
    -- a source given as an address: its query carries it (54 bytes: longer, still a valid query)
    local from = assert(m:trace{ src = dual.address("10.0.128.5"), dst = DB6, protocol = "tcp", port = 3306 })
    assert.equals(54, #rawget(from, "_q"))
    assert.equals("string", type(m._m:walk(rawget(from, "_q"))))
  end)
end)

describe("reach in dual stack: routes, gateways and rules", function()
  it("::/0 to an egress-only internet gateway: IPv6 leaves the modelled network, IPv4 has no route", function()
    local m = model_with(function(_, a)
      local t = find(a.RouteTables, "RouteTableId", LAMBDA_RTB)
      t.Routes[#t.Routes + 1] = { DestinationIpv6CidrBlock = "::/0", EgressOnlyInternetGatewayId = "eigw-0a1",
        State = "active" }
      local sg = find(a.SecurityGroups, "GroupId", "sg-0a000000000lambda")
      sg.IpPermissionsEgress[#sg.IpPermissionsEgress + 1] = { IpProtocol = "tcp", FromPort = 443, ToPort = 443,
        IpRanges = { { CidrIp = "0.0.0.0/0" } }, Ipv6Ranges = { { CidrIpv6 = "::/0" } } }
    end)
    local out6 = assert(m:trace{ src = "lambda:writer", dst = "2606:4700::1111", protocol = "tcp", port = 443 })
    assert.equals("UNSUPPORTED_COMPONENT", out6.code)
    assert.equals("::/0 -> eigw-0a1", out6.blocked_at.rule)
    -- ::/0 holds no IPv4 address: an IPv4 packet to the internet finds no route
    local out4 = assert(m:trace{ src = "lambda:writer", dst = "1.1.1.1", protocol = "tcp", port = 443 })
    assert.equals("NO_ROUTE_TO_DESTINATION", out4.code)
    -- the longest prefix wins across ::/0: the database's /56 still goes to the TGW
    assert.is_true(assert(m:trace(with(ARTICLE, { family = "ipv6" }))).reachable)
  end)

  it("an IPv4 rule of 0.0.0.0/0 admits no IPv6 packet, ::/0 no IPv4 one", function()
    local function only(range)
      return function(_, _, b)
        local g = find(b.SecurityGroups, "GroupId", DB_SG)
        g.IpPermissions = { { IpProtocol = "tcp", FromPort = 3306, ToPort = 3306,
          IpRanges = range == 4 and { { CidrIp = "0.0.0.0/0" } } or {},
          Ipv6Ranges = range == 6 and { { CidrIpv6 = "::/0" } } or {} } }
      end
    end
    local r4, r6 = both(only(4))
    assert.is_true(r4.reachable)
    assert.equals("ENI_SG_RULES_MISMATCH", r6.code)
    r4, r6 = both(only(6))
    assert.equals("ENI_SG_RULES_MISMATCH", r4.code)
    assert.is_true(r6.reachable)
  end)

  it("prefixes longer than /64 in rules (a /128 group rule, a /120 NACL entry) match exactly their addresses", function()
    local lambda6 = dual.address("10.0.128.6") -- the Lambda's Hyperplane ENI
    local function only(sg_cidr, nacl_cidr)
      return function(_, _, b)
        find(b.SecurityGroups, "GroupId", DB_SG).IpPermissions = { { IpProtocol = "tcp", FromPort = 3306, ToPort = 3306,
          Ipv6Ranges = { { CidrIpv6 = sg_cidr } } } }
        local n = find(b.NetworkAcls, "NetworkAclId", DB_ACL)
        for _, e in ipairs(n.Entries) do
          if e.Ipv6CidrBlock and e.RuleNumber == 101 and not e.Egress then e.Ipv6CidrBlock = nacl_cidr end
        end
      end
    end
    local r6 = select(2, both(only(lambda6 .. "/128", lambda6:gsub("::%x+$", "::/120"))))
    assert.is_true(r6.reachable, tostring(r6))
    assert.matches("from " .. lambda6 .. "/128", rules(r6.forward.hops), 1, true)
    r6 = select(2, both(only(lambda6:gsub("::%x+$", "::7") .. "/128", "::/0")))
    assert.equals("ENI_SG_RULES_MISMATCH", r6.code)
    r6 = select(2, both(only("::/0", "2600:1f18:100:a00::100/120")))
    assert.equals("SUBNET_ACL_RESTRICTION", r6.code)
    local m = model_with(only(lambda6 .. "/128", "::/0"))
    local who = assert(m:who_can_reach{ dst = "rds:orders", protocol = "tcp", port = 3306, family = "ipv6" })
    assert.same({ lambda6 .. "/128" }, who.ranges[1].cidrs)
  end)

  it("ICMPv6 (58) with its types: the echo request out, the echo reply (129) back", function()
    local function icmp6(sg_type, nacl_reply)
      return function(_, _, b)
        local g = find(b.SecurityGroups, "GroupId", DB_SG)
        g.IpPermissions[#g.IpPermissions + 1] = { IpProtocol = "icmpv6", FromPort = sg_type, ToPort = -1,
          Ipv6Ranges = { { CidrIpv6 = "2600:1f18:100:a00::/56" } } }
        local n = find(b.NetworkAcls, "NetworkAclId", DB_ACL)
        n.Entries[#n.Entries + 1] = { RuleNumber = 90, Egress = false, Protocol = "58", RuleAction = "allow",
          Ipv6CidrBlock = "::/0", IcmpTypeCode = { Type = -1, Code = -1 } }
        n.Entries[#n.Entries + 1] = { RuleNumber = 90, Egress = true, Protocol = "58", RuleAction = "allow",
          Ipv6CidrBlock = "::/0", IcmpTypeCode = { Type = nacl_reply, Code = 0 } }
      end
    end
    local m = model_with(icmp6(128, 129))
    local sg = find(region(base, A).SecurityGroups, "GroupId", "sg-0a000000000lambda")
    assert.is_table(sg) -- the Lambda's group allows only tcp/3306 out: ping from an instance-like ENI instead
    local ping = { src = "eni-0a000000000lambda", dst = DB6, protocol = "icmpv6" }
    local r = assert(m:trace(ping))
    assert.equals("ENI_SG_RULES_MISMATCH", r.code) -- the Lambda's group: no ICMPv6 out
    assert.equals("sg-0a000000000lambda", r.blocked_at.component)
    m = model_with(function(data, a, b)
      icmp6(128, 129)(data, a, b)
      local g = find(a.SecurityGroups, "GroupId", "sg-0a000000000lambda")
      g.IpPermissionsEgress[#g.IpPermissionsEgress + 1] = { IpProtocol = "icmpv6", FromPort = -1, ToPort = -1,
        Ipv6Ranges = { { CidrIpv6 = "::/0" } } }
      local n = find(a.NetworkAcls, "NetworkAclId", LAMBDA_ACL)
      n.Entries[#n.Entries + 1] = { RuleNumber = 90, Egress = true, Protocol = "58", RuleAction = "allow",
        Ipv6CidrBlock = "::/0" }
      n.Entries[#n.Entries + 1] = { RuleNumber = 90, Egress = false, Protocol = "58", RuleAction = "allow",
        Ipv6CidrBlock = "::/0" }
    end)
    r = assert(m:trace(ping))
    assert.is_true(r.reachable, tostring(r))
    assert.matches("allow icmpv6 type 128 from 2600:1f18:100:a00::/56", rules(r.forward.hops), 1, true)
    assert.matches("outbound rule 90: allow icmpv6 type 129 code 0 to ::/0", rules(r.ret.hops), 1, true)
    assert.matches("replies checked as icmpv6 type 129 code 0", table.concat(r.assumptions, "\n"), 1, true)
    -- another type than the group allows: denied there
    local other = assert(m:trace(with(ping, { icmp_type = 135 })))
    assert.equals("ENI_SG_RULES_MISMATCH", other.code)
    assert.equals(DB_SG, other.blocked_at.component)
    -- the reply type the NACL lets out is the echo reply's: 129 refused there is a return-path fault
    local m2 = model_with(function(data, a, b)
      icmp6(128, 1)(data, a, b)
      local g = find(a.SecurityGroups, "GroupId", "sg-0a000000000lambda")
      g.IpPermissionsEgress[#g.IpPermissionsEgress + 1] = { IpProtocol = "58", Ipv6Ranges = { { CidrIpv6 = "::/0" } } }
      local n = find(a.NetworkAcls, "NetworkAclId", LAMBDA_ACL)
      n.Entries[#n.Entries + 1] = { RuleNumber = 90, Egress = true, Protocol = "-1", RuleAction = "allow",
        Ipv6CidrBlock = "::/0" }
      n.Entries[#n.Entries + 1] = { RuleNumber = 90, Egress = false, Protocol = "-1", RuleAction = "allow",
        Ipv6CidrBlock = "::/0" }
    end)
    local back = assert(m2:trace(ping))
    assert.equals("SUBNET_ACL_RESTRICTION", back.code)
    assert.equals("return", back.blocked_at.direction)
    -- a type nothing answers (a neighbor advertisement) is traced one way
    local one_way = assert(m2:trace(with(ping, { icmp_type = 136 })))
    assert.is_false(one_way.ret.ok)
    assert.matches("forward path only", table.concat(one_way.assumptions, "\n"))
  end)

  it("who_can_reach answers in IPv6 ranges, matrix in either family", function()
    local m = model_with()
    local who = assert(m:who_can_reach{ dst = "rds:orders", protocol = "tcp", port = 3306, family = "ipv6" })
    -- the database's group and NACL admit the Lambda subnet's /64, nothing else
    assert.equals(1, #who.ranges)
    assert.same({ "2600:1f18:100:a00::/64" }, who.ranges[1].cidrs)
    assert.equals("subnet-0a0000000000000l1", who.ranges[1].subnet)
    assert.same({ "eni-0a000000000lambda" }, who.enis)
    local who4 = assert(m:who_can_reach{ dst = "rds:orders", protocol = "tcp", port = 3306 })
    assert.same({ "10.0.128.0/28" }, who4.ranges[1].cidrs)
    local mx = assert(m:matrix{ sources = { "lambda:writer", "eni-0a000000000lambda" }, destinations = { "rds:orders" },
      protocol = "tcp", port = 3306, family = "ipv6" })
    assert.same({ { true }, { true } }, mx.reachable)
    local cut = model_with(function(_, _, b)
      for _, p in ipairs(find(b.SecurityGroups, "GroupId", DB_SG).IpPermissions) do p.Ipv6Ranges = {} end
    end)
    mx = assert(cut:matrix{ sources = { "lambda:writer" }, destinations = { "rds:orders" }, protocol = "tcp", port = 3306,
      family = "ipv6" })
    assert.same({ { "ENI_SG_RULES_MISMATCH" } }, mx.codes)
    mx = assert(cut:matrix{ sources = { "lambda:writer" }, destinations = { "rds:orders" }, protocol = "tcp", port = 3306 })
    assert.same({ { true } }, mx.reachable)
  end)

  it("an IPv6-only subnet: ENIs without an IPv4 address, reached over IPv6 only", function()
    local D2_64 = dual.cidr("10.1.129.0/28")
    local m = model_with(function(data, a, b)
      -- the Lambda's group and NACL let tcp/3306 out to that subnet's /64 too
      local g = find(a.SecurityGroups, "GroupId", "sg-0a000000000lambda")
      table.insert(g.IpPermissionsEgress[1].Ipv6Ranges, { CidrIpv6 = D2_64 })
      local n = find(a.NetworkAcls, "NetworkAclId", LAMBDA_ACL)
      n.Entries[#n.Entries + 1] = { RuleNumber = 110, Egress = true, Protocol = "6", RuleAction = "allow",
        Ipv6CidrBlock = D2_64, PortRange = { From = 3306, To = 3306 } }
      n.Entries[#n.Entries + 1] = { RuleNumber = 110, Egress = false, Protocol = "6", RuleAction = "allow",
        Ipv6CidrBlock = D2_64, PortRange = { From = 1024, To = 65535 } }
      -- (and B's attachment gets a subnet in that subnet's AZ, for the reply)
      each_att(data, ATT_B, function(att) att.SubnetIds = { "subnet-0b0000000000000t1", "subnet-0b0000000000000t2" } end)
      local s = find(b.Subnets, "SubnetId", "subnet-0b0000000000000d2")
      s.CidrBlock, s.Ipv6Native = nil, true
      b.NetworkInterfaces[#b.NetworkInterfaces + 1] = { NetworkInterfaceId = "eni-0b000000000v6only",
        SubnetId = "subnet-0b0000000000000d2", InterfaceType = "interface", Description = "",
        Ipv6Addresses = { { Ipv6Address = D2_64:gsub("/64$", "20") } }, Groups = { { GroupId = DB_SG } } }
    end)
    local r = assert(m:trace{ src = "lambda:writer", dst = "eni-0b000000000v6only", protocol = "tcp", port = 3306,
      family = "ipv6" })
    assert.is_true(r.reachable, tostring(r))
    local none, err = m:trace{ src = "lambda:writer", dst = "eni-0b000000000v6only", protocol = "tcp", port = 3306 }
    assert.is_nil(none)
    assert.matches("has no IPv4 address", err.message)
  end)
end)

-- Batfish's IPv6 snapshots (tests/fixtures/batfish-aws/representation-aws/*V6*.json, see SOURCE):
-- single describe-* outputs, completed here with the VPC and subnets they name.
describe("reach on Batfish's IPv6 snapshots", function()
  local ROOT = "tests/fixtures/batfish-aws/representation-aws/"
  local cjson = require "cjson"
  local function read(name)
    local f = assert(io.open(ROOT .. name))
    local t = cjson.decode(f:read("a"))
    f:close()
    return t
  end

  it("RouteV6TableTest: the IPv6 local route delivers within the VPC, nothing else leaves it", function()
    local rt = read("RouteV6TableTest.json").RouteTables
    local vpc = rt[1].VpcId
    local r = { RouteTables = rt,
      Vpcs = { { VpcId = vpc, CidrBlock = "10.50.0.0/16", Ipv6CidrBlockAssociationSet = { {
        Ipv6CidrBlock = "2600:1f16:751:7800::/56", Ipv6CidrBlockState = { State = "associated" } } } } },
      Subnets = { { SubnetId = "subnet-1", VpcId = vpc, CidrBlock = "10.50.1.0/24", AvailabilityZone = "us-east-2a",
          Ipv6CidrBlockAssociationSet = { { Ipv6CidrBlock = "2600:1f16:751:7801::/64" } } },
        { SubnetId = "subnet-2", VpcId = vpc, CidrBlock = "10.50.2.0/24", AvailabilityZone = "us-east-2b",
          Ipv6CidrBlockAssociationSet = { { Ipv6CidrBlock = "2600:1f16:751:7802::/64" } } } },
      SecurityGroups = {}, NetworkAcls = {} }
    local m = assert(reach.load({ accounts = { [A] = { ["us-east-2"] = r } } }))
    local inside = assert(m:trace{ src = "2600:1f16:751:7801::10", dst = "2600:1f16:751:7802::10", protocol = "tcp",
      port = 22 })
    -- no ENI at the destination: the packet reaches its subnet by the local route, no one answers
    assert.equals("NO_DESTINATION_ENI", inside.code)
    assert.equals("2600:1f16:751:7800::/56 -> local", inside.forward.hops[2].rule)
    -- the table has no IPv4 route at all, and no route out of the VPC
    assert.equals("NO_ROUTE_TO_DESTINATION",
      assert(m:trace{ src = "10.50.1.10", dst = "10.50.2.10", protocol = "tcp", port = 22 }).code)
    assert.equals("NO_ROUTE_TO_DESTINATION",
      assert(m:trace{ src = "2600:1f16:751:7801::10", dst = "2600:1f16:751:9900::1", protocol = "tcp", port = 22 }).code)
  end)

  it("NetworkAclV6Test: outbound ::/0 allowed at 100, nothing inbound, IPv4 matched by no entry", function()
    local acls = read("NetworkAclV6Test.json").NetworkAcls
    local vpc, sid = acls[1].VpcId, acls[1].Associations[1].SubnetId
    local r = { NetworkAcls = acls,
      Vpcs = { { VpcId = vpc, CidrBlock = "10.60.0.0/16", Ipv6CidrBlockAssociationSet = { {
        Ipv6CidrBlock = "2600:1f16:aaa:100::/56" } } } },
      Subnets = { { SubnetId = sid, VpcId = vpc, CidrBlock = "10.60.1.0/24", AvailabilityZone = "us-east-2a",
          Ipv6CidrBlockAssociationSet = { { Ipv6CidrBlock = "2600:1f16:aaa:101::/64" } } },
        { SubnetId = "subnet-other", VpcId = vpc, CidrBlock = "10.60.2.0/24", AvailabilityZone = "us-east-2a",
          Ipv6CidrBlockAssociationSet = { { Ipv6CidrBlock = "2600:1f16:aaa:102::/64" } } } },
      RouteTables = { { RouteTableId = "rtb-1", VpcId = vpc, Associations = { { Main = true } }, Routes = {
        { DestinationCidrBlock = "10.60.0.0/16", GatewayId = "local" },
        { DestinationIpv6CidrBlock = "2600:1f16:aaa:100::/56", GatewayId = "local" } } } },
      SecurityGroups = {} }
    local m = assert(reach.load({ accounts = { [A] = { ["us-east-2"] = r } } }))
    -- leaving the NACL's subnet over IPv6: rule 100 allows it; the other subnet is on the same
    -- NACL (the VPC's default), which has no inbound entry: the implicit deny stops it there
    local out6 = assert(m:trace{ src = "2600:1f16:aaa:101::10", dst = "2600:1f16:aaa:102::10", protocol = "tcp",
      port = 22 })
    assert.equals("outbound rule 100: allow all to ::/0", out6.forward.hops[3].rule)
    assert.equals("SUBNET_ACL_RESTRICTION", out6.code)
    assert.is_nil(out6.blocked_at.rule)
    assert.equals(4, #out6.forward.hops)
    -- over IPv4 the only entry does not match: the implicit deny
    local out4 = assert(m:trace{ src = "10.60.1.10", dst = "10.60.2.10", protocol = "tcp", port = 22 })
    assert.equals("SUBNET_ACL_RESTRICTION", out4.code)
    assert.equals("acl-4db39c28", out4.blocked_at.component)
    -- into the subnet: no inbound entry at all
    local in6 = assert(m:trace{ src = "2600:1f16:aaa:102::10", dst = "2600:1f16:aaa:101::10", protocol = "tcp",
      port = 22 })
    assert.equals("SUBNET_ACL_RESTRICTION", in6.code)
  end)
end)

-- DNS: an IPv6 trace asks for AAAA (awsnet.dns against a real dnsmasq on loopback).
describe("reach in dual stack: DNS names", function()
  local services = require "helpers.services"
  local ENDPOINT = "orders.c0abcdef1234.us-east-1.rds.amazonaws.com"
  local model, server
  setup(function()
    model = model_with()
    local d = services.dnsmasq({
      domains = { "amazonaws.com", "example.test" },
      records = {
        { type = "CNAME", name = ENDPOINT, target = "db.example.test", ttl = 5 },
        { type = "A", name = "db.example.test", address = "10.1.128.10", ttl = 60 },
        { type = "AAAA", name = "db.example.test", address = DB6, ttl = 60 },
        { type = "A", name = "v4only.example.test", address = "10.1.128.10", ttl = 60 },
      },
    })
    server = "127.0.0.1:" .. d.port
  end)
  teardown(services.stop_all)

  it("resolves a dual-stack database's endpoint to its AAAA answer for an IPv6 trace, A for IPv4", function()
    local r6 = assert(model:trace(with(ARTICLE, { family = "ipv6", resolver = server })))
    assert.is_true(r6.reachable, tostring(r6))
    assert.equals(DB6, r6.dst_ip)
    assert.matches(ENDPOINT .. " resolved to " .. DB6 .. " (" .. RDS_ENI .. ")", table.concat(r6.assumptions, "\n"),
      1, true)
    local r4 = assert(model:trace(with(ARTICLE, { resolver = { server = server } })))
    assert.equals("10.1.128.10", r4.dst_ip)
  end)

  it("a name without an AAAA record has no IPv6 address", function()
    local r6 = assert(model:trace{ src = "lambda:writer", dst = "db.example.test", protocol = "tcp", port = 3306,
      family = "ipv6", resolver = server })
    assert.equals(DB6, r6.dst_ip)
    local none, err = model:trace{ src = "lambda:writer", dst = "v4only.example.test", protocol = "tcp", port = 3306,
      family = "ipv6", resolver = server }
    assert.is_nil(none)
    assert.equals("nodata", err.code)
  end)
end)
