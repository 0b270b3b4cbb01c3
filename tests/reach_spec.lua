-- The reachability evaluator on the article's topology (tests/fixtures/reach/article): a Lambda in
-- account A reaching an RDS MySQL in account B through A's TGW, and single faults of it.
local reach = require "awsnet.reach"
local snapshot = require "awsnet.reach.snapshot"
local blocked = require "awsnet.reach.blocked"

local FIXTURE = "tests/fixtures/reach/article"
local A, B = "111111111111", "222222222222"
local TGW, TRTB = "tgw-0a1b2c3d4e5f60001", "tgw-rtb-0a1b2c3d4e5f60001"
local ATT_A, ATT_B = "tgw-attach-0a00000000000000a", "tgw-attach-0b00000000000000b"

local copy = require("helpers.tables").copy

local base = assert(snapshot.read(FIXTURE))
local function region(data, acct) return data.accounts[acct]["us-east-1"] end
local function find(list, field, id)
  for _, item in ipairs(list) do if item[field] == id then return item end end
  error("no " .. id)
end

-- Loads the fixture after `mutate(data)` changed a copy of it, then traces the article's path.
local function trace_with(mutate, q)
  local data = copy(base)
  if mutate then mutate(data, region(data, A), region(data, B)) end
  local model = assert(reach.load(data))
  local r = assert(model:trace(q or { src = "lambda:writer", dst = "rds:orders", protocol = "tcp", port = 3306 }))
  return r, model
end

local function kinds(hops)
  local out = {}
  for i, h in ipairs(hops) do out[i] = h.kind .. " " .. h.component .. " " .. h.verdict end
  return out
end

describe("reach on the article's topology", function()
  it("loads the folder and the table form alike", function()
    local from_dir = assert(reach.load(FIXTURE))
    local from_table = assert(reach.load(copy(base)))
    assert.same(from_dir.counts, from_table.counts)
    assert.equals(2, from_dir.counts.vpcs)
    assert.equals(1, from_dir.counts.transit_gateways)
    assert.equals(2, from_dir.counts.tgw_attachments)
    local a = from_dir:trace{ src = "lambda:writer", dst = "rds:orders", port = 3306 }
    local b = from_table:trace{ src = "lambda:writer", dst = "rds:orders", port = 3306 }
    assert.same(a:data(), b:data())
  end)

  it("finds the Lambda -> RDS path reachable, with every hop both ways", function()
    local r = trace_with(nil)
    assert.is_true(r.reachable)
    assert.is_nil(r.code)
    assert.equals("10.1.128.10", r.dst_ip)
    assert.same({
      "network-interface eni-0a000000000lambda forward",
      "security-group sg-0a000000000lambda allow",
      "route-table rtb-0a0000000000000l1 forward",
      "network-acl acl-0a0000000000000l1 allow",
      "network-acl acl-0a00000000default allow",
      "tgw-attachment " .. ATT_A .. " forward",
      "tgw-route-table " .. TRTB .. " forward",
      "tgw-attachment " .. ATT_B .. " forward",
      "route-table rtb-0b00000000000main forward",
      "network-acl acl-0b00000000default allow",
      "network-acl acl-0b00000000000db01 allow",
      "security-group sg-0b00000000000db001 allow",
      "network-interface eni-0b00000000000rds1 deliver",
    }, kinds(r.forward.hops))
    assert.same({
      "route-table rtb-0b00000000000db01 forward",
      "network-acl acl-0b00000000000db01 allow",
      "network-acl acl-0b00000000default allow",
      "tgw-attachment " .. ATT_B .. " forward",
      "tgw-route-table " .. TRTB .. " forward",
      "tgw-attachment " .. ATT_A .. " forward",
      "route-table rtb-0a00000000000main forward",
      "network-acl acl-0a00000000default allow",
      "network-acl acl-0a0000000000000l1 allow",
      "network-interface eni-0a000000000lambda deliver",
    }, kinds(r.ret.hops))
    assert.equals("10.1.0.0/16 -> " .. TGW, r.forward.hops[3].rule)
    assert.matches("propagated from vpc%-0b", r.forward.hops[7].rule)
    assert.equals("inbound: allow tcp 3306 from 10.0.128.0/28", r.forward.hops[12].rule)
  end)

  it("explains itself in words and in JSON", function()
    local r = trace_with(nil)
    local text = tostring(r)
    assert.matches("^REACHABLE: lambda:writer %-> rds:orders %(10%.1%.128%.10%) tcp/3306", text)
    assert.matches("return:", text)
    local data = require("cjson").decode(r:json())
    assert.is_true(data.reachable)
    assert.equals(13, #data.forward.hops)
    assert.equals("deliver", data.ret.hops[#data.ret.hops].verdict)
  end)

  it("accepts ENI ids, IP addresses and the endpoint's DNS name from the snapshot", function()
    local _, model = trace_with(nil)
    local by_eni = assert(model:trace{ src = "eni-0a000000000lambda", dst = "eni-0b00000000000rds1", port = 3306 })
    assert.is_true(by_eni.reachable)
    local by_ip = assert(model:trace{ src = "10.0.128.6", dst = "10.1.128.10", port = 3306 })
    assert.is_true(by_ip.reachable)
    local by_name = assert(model:trace{ src = "lambda:writer", dst = "orders.c0abcdef1234.us-east-1.rds.amazonaws.com",
      port = 3306 })
    assert.is_true(by_name.reachable)
    assert.equals("10.1.128.10", by_name.dst_ip)
    local other_port = assert(model:trace{ src = "lambda:writer", dst = "rds:orders", port = 5432 })
    assert.is_false(other_port.reachable)
    assert.equals("ENI_SG_RULES_MISMATCH", other_port.code)
    local fwd = assert(model:trace{ src = "lambda:writer", dst = "rds:orders", port = 3306, direction = "forward" })
    assert.is_true(fwd.reachable)
    assert.same({}, fwd.ret.hops)
  end)

  it("returns errors for unknown endpoints and raises on misuse", function()
    local _, model = trace_with(nil)
    local r, err = model:trace{ src = "lambda:nope", dst = "rds:orders", port = 3306 }
    assert.is_nil(r)
    assert.equals("unknown_endpoint", err.code)
    r, err = model:trace{ src = "rds:orders", dst = "lambda:writer", port = 3306 }
    assert.is_nil(r)
    assert.equals("invalid_endpoint", err.code)
    assert.has_error(function() model:trace("lambda:writer") end)
    assert.has_error(function() model:trace{ src = "lambda:writer", dst = "rds:orders", port = 70000 } end)
    assert.has_error(function() model:trace{ src = "lambda:writer", dst = "rds:orders", protocol = "bogus", port = 1 } end)
    assert.has_error(function() reach.load(42) end)
  end)
end)

-- Each fault: what it changes, and where and why the path must break.
local FAULTS = {
  { "no route to B in A's Lambda route table", function(_, a)
      local rt = find(a.RouteTables, "RouteTableId", "rtb-0a0000000000000l1")
      table.remove(rt.Routes, 2)
    end, "NO_ROUTE_TO_DESTINATION", "forward", "rtb-0a0000000000000l1" },
  { "no return route to A in B's database route table", function(_, _, b)
      local rt = find(b.RouteTables, "RouteTableId", "rtb-0b00000000000db01")
      table.remove(rt.Routes, 2)
    end, "NO_ROUTE_TO_DESTINATION", "return", "rtb-0b00000000000db01" },
  { "blackhole route to B in A's route table", function(_, a)
      local rt = find(a.RouteTables, "RouteTableId", "rtb-0a0000000000000l1")
      rt.Routes[2].State = "blackhole"
    end, "BAD_STATE_ROUTE", "forward", "rtb-0a0000000000000l1" },
  { "B's attachment not propagated", function(_, a)
      local props = a.TransitGatewayPropagations[1].TransitGatewayRouteTablePropagations
      table.remove(props, 2)
    end, "TGW_RTB_NO_ROUTE_TO_TGW_ATTACHMENT", "forward", TRTB },
  { "A's attachment not associated", function(_, a)
      find(a.TransitGatewayAttachments, "TransitGatewayAttachmentId", ATT_A).Association = nil
    end, "TGW_ATTACH_MISSING_TGW_RTB_ASSOCIATION", "forward", TGW },
  { "blackhole static route for B's CIDR", function(_, a)
      table.insert(a.TransitGatewayRoutes[1].Routes, { DestinationCidrBlock = "10.1.0.0/16", State = "blackhole",
        Type = "static" })
    end, "TGW_RTB_BAD_STATE_ROUTE", "forward", TRTB },
  { "more specific blackhole static route", function(_, a)
      table.insert(a.TransitGatewayRoutes[1].Routes, { DestinationCidrBlock = "10.1.128.0/24", State = "blackhole",
        Type = "static" })
    end, "TGW_RTB_BAD_STATE_ROUTE", "forward", TRTB },
  { "A's attachment without a subnet in the Lambda's AZ", function(_, a)
      find(a.TransitGatewayVpcAttachments, "TransitGatewayAttachmentId", ATT_A).SubnetIds = { "subnet-0a0000000000000t2" }
    end, "TGW_ROUTE_AZ_RESTRICTION", "forward", ATT_A },
  { "B's attachment without a subnet in the database's AZ (the reply cannot enter the TGW)", function(_, a, b)
      for _, acct in ipairs({ a, b }) do
        find(acct.TransitGatewayVpcAttachments, "TransitGatewayAttachmentId", ATT_B).SubnetIds = { "subnet-0b0000000000000t2" }
      end
    end, "TGW_ROUTE_AZ_RESTRICTION", "return", ATT_B },
  { "RDS security group without 3306", function(_, _, b)
      local p = b.SecurityGroups[1].IpPermissions[1]
      p.FromPort, p.ToPort = 5432, 5432
    end, "ENI_SG_RULES_MISMATCH", "forward", "sg-0b00000000000db001" },
  { "RDS security group referencing the Lambda's group, TGW referencing off", function(_, _, b)
      b.SecurityGroups[1].IpPermissions[1].IpRanges = {}
      b.SecurityGroups[1].IpPermissions[1].UserIdGroupPairs = { { GroupId = "sg-0a000000000lambda", UserId = A } }
    end, "SG_REFERENCING_SUPPORT", "forward", "sg-0b00000000000db001" },
  { "Lambda security group without egress", function(_, a)
      a.SecurityGroups[1].IpPermissionsEgress = {}
    end, "ENI_SG_RULES_MISMATCH", "forward", "sg-0a000000000lambda" },
  { "database NACL without the ephemeral return ports", function(_, _, b)
      local entries = b.NetworkAcls[1].Entries
      for i = #entries, 1, -1 do
        if entries[i].Egress and entries[i].RuleNumber == 100 then table.remove(entries, i) end
      end
    end, "SUBNET_ACL_RESTRICTION", "return", "acl-0b00000000000db01" },
  { "database NACL returning only Linux ephemeral ports to a Lambda", function(_, _, b)
      for _, e in ipairs(b.NetworkAcls[1].Entries) do
        if e.Egress and e.RuleNumber == 100 then e.PortRange = { From = 32768, To = 65535 } end
      end
    end, "SUBNET_ACL_RESTRICTION", "return", "acl-0b00000000000db01" },
  { "database NACL deny numbered before the allow", function(_, _, b)
      table.insert(b.NetworkAcls[1].Entries, { CidrBlock = "10.0.0.0/16", Egress = false, Protocol = "6",
        PortRange = { From = 3306, To = 3306 }, RuleAction = "deny", RuleNumber = 50 })
    end, "SUBNET_ACL_RESTRICTION", "forward", "acl-0b00000000000db01" },
  { "B's attachment pending acceptance", function(_, a, b)
      for _, acct in ipairs({ a, b }) do
        find(acct.TransitGatewayVpcAttachments, "TransitGatewayAttachmentId", ATT_B).State = "pendingAcceptance"
      end
    end, "BAD_STATE_ATTACHMENT", "forward", ATT_B },
  { "transit gateway being deleted", function(_, a, b)
      a.TransitGateways[1].State = "deleting"
      b.TransitGateways[1].State = "deleting"
    end, "BAD_STATE", "forward", TGW },
  { "enableDnsSupport off in A", function(_, a)
      a.VpcAttributes[1].EnableDnsSupport.Value = false
    end, "DNS_SUPPORT_DISABLED", "forward", "vpc-0a00000000000000a" },
  { "RDS publicly accessible: its name resolves to the public address outside its VPC", function(_, _, b)
      b.DBInstances[1].PubliclyAccessible = true
      b.NetworkInterfaces[1].Association = { PublicIp = "3.210.10.20" }
    end, "ENI_SG_RULES_MISMATCH", "forward", "sg-0a000000000lambda" },
}

describe("reach single faults", function()
  for _, f in ipairs(FAULTS) do
    local name, mutate, code, direction, component = f[1], f[2], f[3], f[4], f[5]
    do
      it(name .. " -> " .. code .. " at " .. component .. " (" .. direction .. ")", function()
        local r = trace_with(mutate)
        assert.is_false(r.reachable)
        assert.equals(code, r.code)
        assert.equals(component, r.blocked_at.component)
        assert.equals(direction, r.blocked_at.direction)
        assert.equals(code, r.blocked_at.code)
        -- the blocked path's first blocker is the blocking hop, and its change is in the fix set
        local first = r.blockers[1]
        assert.same({ code, component, direction }, { first.code, first.component, first.direction })
        assert.is_string(first.setting)
        assert.is_string(r.fix[1].change)
        assert.matches("NOT REACHABLE", tostring(r))
        assert.matches(code, tostring(r), 1, true)
        -- made in a copy of the snapshot, a fix set whose every change is data gives reachable
        local data = copy(base)
        mutate(data, region(data, A), region(data, B))
        local fixed, missed = blocked.apply(data, r.fix)
        local again = assert(assert(reach.load(fixed)):trace{ src = "lambda:writer", dst = "rds:orders", port = 3306 })
        if #missed == 0 then
          assert.is_true(again.reachable, tostring(r.fix))
        else
          assert.is_nil(missed[1].action) -- said, not applied: a state to wait for, a subnet to add
          assert.is_false(again.reachable)
        end
      end)
    end
  end

  it("takes a table's propagations listed in several records as one list (each route once)", function()
    local whole = assert(reach.load(copy(base)))
    local data = copy(base)
    local a = region(data, A)
    local props = a.TransitGatewayPropagations[1].TransitGatewayRouteTablePropagations
    assert.equals(2, #props)
    a.TransitGatewayPropagations = {
      { TransitGatewayRouteTableId = TRTB, TransitGatewayRouteTablePropagations = { props[1] } },
      { TransitGatewayRouteTableId = TRTB, TransitGatewayRouteTablePropagations = { props[2], props[1] } } }
    local split = assert(reach.load(data))
    assert.equals(whole.counts.tgw_routes, split.counts.tgw_routes)
    assert.same({}, split.skipped)
    assert.is_true(assert(split:trace{ src = "lambda:writer", dst = "rds:orders", port = 3306 }).reachable)
  end)

  it("owner's TGW route tables missing: TGW_RTB_ROUTES_ARE_UNKNOWN, said as an assumption", function()
    -- A participant's view: the attachments name a table nobody described.
    local data = copy(base)
    local a = region(data, A)
    a.TransitGatewayRouteTables = {}
    a.TransitGatewayRoutes = nil
    a.TransitGatewayPropagations = nil
    local model = assert(reach.load(data))
    local r = assert(model:trace{ src = "lambda:writer", dst = "rds:orders", port = 3306 })
    assert.is_false(r.reachable)
    assert.equals("TGW_RTB_ROUTES_ARE_UNKNOWN", r.code)
    assert.equals(TRTB, r.blocked_at.component)
    local said = table.concat(r.assumptions, "\n")
    assert.matches("only known by id", said)
  end)

  it("RDS security group referencing the Lambda's group works once referencing is enabled", function()
    local r = trace_with(function(_, a, b)
      b.SecurityGroups[1].IpPermissions[1].IpRanges = {}
      b.SecurityGroups[1].IpPermissions[1].UserIdGroupPairs = { { GroupId = "sg-0a000000000lambda", UserId = A } }
      a.TransitGateways[1].Options.SecurityGroupReferencingSupport = "enable"
    end)
    assert.is_true(r.reachable)
    assert.equals("inbound: allow tcp 3306 from 111111111111/sg-0a000000000lambda", r.forward.hops[12].rule)
  end)

  it("the publicly accessible trap names the public address and suggests the fix", function()
    local r = trace_with(function(data, a, b)
      FAULTS[#FAULTS][2](data, a, b)
      a.SecurityGroups[1].IpPermissionsEgress[1].IpRanges = { { CidrIp = "0.0.0.0/0" } }
    end)
    assert.is_false(r.reachable)
    assert.equals("NO_ROUTE_TO_DESTINATION", r.code)
    assert.equals("rtb-0a0000000000000l1", r.blocked_at.component)
    assert.equals("3.210.10.20", r.dst_ip)
    assert.matches("publicly accessible", table.concat(r.assumptions, "\n"))
    assert.matches("PubliclyAccessible=false", tostring(r.fix))
  end)

  it("a Lambda in two subnets needs both to get through (one AZ has no attachment subnet)", function()
    local r, model = trace_with(function(_, a)
      a.Subnets[#a.Subnets + 1] = { SubnetId = "subnet-0a0000000000000l2", VpcId = "vpc-0a00000000000000a",
        CidrBlock = "10.0.128.16/28", AvailabilityZone = "us-east-1b", AvailabilityZoneId = "use1-az2" }
      local rt = find(a.RouteTables, "RouteTableId", "rtb-0a0000000000000l1")
      rt.Associations[#rt.Associations + 1] = { Main = false, SubnetId = "subnet-0a0000000000000l2" }
      local acl = find(a.NetworkAcls, "NetworkAclId", "acl-0a0000000000000l1")
      acl.Associations[#acl.Associations + 1] = { SubnetId = "subnet-0a0000000000000l2" }
      local subnets = a.Functions[1].VpcConfig.SubnetIds
      subnets[#subnets + 1] = "subnet-0a0000000000000l2"
    end)
    assert.is_false(r.reachable)
    assert.equals("TGW_ROUTE_AZ_RESTRICTION", r.code)
    -- no Hyperplane ENI listed for the second subnet: placed at its base + 4, and said so
    assert.equals("10.0.128.20", r.source)
    assert.matches("Hyperplane ENI of lambda:writer: no ENI in the snapshot, assumed at 10.0.128.20",
      table.concat(r.assumptions, "\n"), 1, true)
    assert.matches("source ENI address: 10.0.128.20", tostring(r), 1, true)
    -- the first subnet alone still reaches
    assert.is_true(assert(model:trace{ src = "eni-0a000000000lambda", dst = "rds:orders", port = 3306 }).reachable)
  end)

  it("expands managed prefix lists in routes and security-group rules", function()
    local PL = "pl-0a0000000000000db"
    local function with_list(entries)
      return function(_, a, b)
        a.ManagedPrefixLists = { { PrefixListId = PL, PrefixListName = "db-nets", AddressFamily = "IPv4",
          Entries = entries } }
        b.ManagedPrefixLists = a.ManagedPrefixLists
        local route = find(a.RouteTables, "RouteTableId", "rtb-0a0000000000000l1").Routes[2]
        route.DestinationCidrBlock, route.DestinationPrefixListId = nil, PL
        a.SecurityGroups[1].IpPermissionsEgress[1].IpRanges = {}
        a.SecurityGroups[1].IpPermissionsEgress[1].PrefixListIds = { { PrefixListId = PL } }
      end
    end
    local r = trace_with(with_list({ { Cidr = "10.1.128.0/24" }, { Cidr = "192.168.0.0/16" } }))
    assert.is_true(r.reachable, tostring(r))
    assert.equals("10.1.128.0/24 -> " .. TGW .. " (" .. PL .. ")", r.forward.hops[3].rule)
    assert.equals("outbound: allow tcp 3306 to 10.1.128.0/24 (" .. PL .. ")", r.forward.hops[2].rule)
    r = trace_with(with_list({ { Cidr = "192.168.0.0/16" } }))
    assert.is_false(r.reachable)
    assert.equals("ENI_SG_RULES_MISMATCH", r.code)
  end)

  it("says when it takes enableDnsSupport as AWS's default", function()
    local r = trace_with(function(_, a) a.VpcAttributes = nil end)
    assert.is_true(r.reachable)
    assert.matches("enableDnsSupport of vpc-0a00000000000000a is not in the snapshot", table.concat(r.assumptions, "\n"),
      1, true)
  end)

  it("a database that is not available is BAD_STATE", function()
    local r = trace_with(function(_, _, b) b.DBInstances[1].DBInstanceStatus = "stopped" end)
    assert.equals("BAD_STATE", r.code)
    assert.equals("rds:orders", r.blocked_at.component)
    assert.matches("wait until rds:orders is available", tostring(r.fix), 1, true) -- found by the fuzzer
  end)

  it("security-group referencing does not cross the TGW through use1-az3", function()
    local r = trace_with(function(_, a, b)
      b.SecurityGroups[1].IpPermissions[1].IpRanges = {}
      b.SecurityGroups[1].IpPermissions[1].UserIdGroupPairs = { { GroupId = "sg-0a000000000lambda", UserId = A } }
      a.TransitGateways[1].Options.SecurityGroupReferencingSupport = "enable"
      for _, s in ipairs(a.Subnets) do
        if s.AvailabilityZoneId == "use1-az1" then s.AvailabilityZoneId = "use1-az3" end
      end
      for _, s in ipairs(b.Subnets) do
        if s.AvailabilityZoneId == "use1-az1" then s.AvailabilityZoneId = "use1-az3" end
      end
    end)
    assert.equals("SG_REFERENCING_SUPPORT", r.code)
  end)

  describe("a second VPC with B's CIDR attached to the TGW", function()
    local ATT_C = "tgw-attach-0c00000000000000c"
    local function with_vpc_c(created)
      return function(_, a)
        a.Vpcs[#a.Vpcs + 1] = { VpcId = "vpc-0c00000000000000c", CidrBlock = "10.1.0.0/16" }
        a.TransitGatewayVpcAttachments[#a.TransitGatewayVpcAttachments + 1] = { TransitGatewayAttachmentId = ATT_C,
          TransitGatewayId = TGW, VpcId = "vpc-0c00000000000000c", State = "available", SubnetIds = {},
          CreationTime = created }
        a.TransitGatewayAttachments[#a.TransitGatewayAttachments + 1] = { TransitGatewayAttachmentId = ATT_C,
          TransitGatewayId = TGW, ResourceType = "vpc", ResourceId = "vpc-0c00000000000000c", State = "available",
          CreationTime = created, Association = { State = "associated", TransitGatewayRouteTableId = TRTB } }
        local props = a.TransitGatewayPropagations[1].TransitGatewayRouteTablePropagations
        props[#props + 1] = { TransitGatewayAttachmentId = ATT_C, ResourceId = "vpc-0c00000000000000c",
          ResourceType = "vpc", State = "enabled" }
      end
    end

    it("is not propagated when attached after B (the overlap is reported)", function()
      local r, model = trace_with(with_vpc_c("2026-11-20T00:00:00+00:00"))
      assert.is_true(r.reachable)
      local said = {}
      for _, s in ipairs(model.skipped) do said[#said + 1] = s.reason end
      assert.matches("10.1.0.0/16 not propagated into " .. TRTB .. ": overlaps 10.1.0.0/16",
        table.concat(said, "\n"), 1, true)
    end)

    it("takes B's route when attached before B", function()
      local r = trace_with(with_vpc_c("2026-10-01T00:00:00+00:00"))
      assert.is_false(r.reachable)
      assert.equals(ATT_C, r.blocked_at.component)
      assert.equals("BAD_STATE_ATTACHMENT", r.code)
    end)
  end)

  it("a more specific route only for another address leaves the path alone", function()
    local r = trace_with(function(_, a)
      table.insert(a.TransitGatewayRoutes[1].Routes, { DestinationCidrBlock = "10.1.129.0/24", State = "blackhole",
        Type = "static" })
    end)
    assert.is_true(r.reachable)
  end)

  it("a static TGW route hides the propagated route with the same prefix", function()
    local r = trace_with(function(_, a)
      table.insert(a.TransitGatewayRoutes[1].Routes, { DestinationCidrBlock = "10.1.0.0/16", State = "active",
        Type = "static", TransitGatewayAttachments = { { TransitGatewayAttachmentId = ATT_B } } })
    end)
    assert.is_true(r.reachable)
    assert.matches("%(static%)", r.forward.hops[7].rule)
  end)
end)
