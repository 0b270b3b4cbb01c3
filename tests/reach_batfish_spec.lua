-- The evaluator on Batfish's real AWS snapshots (tests/fixtures/batfish-aws, with its licence and
-- SOURCE), answers derived from AWS's documented rules (docs/aws-network-semantics.md), not from
-- Batfish's.
local reach = require "awsnet.reach"

-- relative to the repository root, busted's working directory
local ROOT = "tests/fixtures/batfish-aws/representation-aws/"

local function snapshots()
  local p = assert(io.popen("ls -d " .. ROOT .. "*/"))
  local out = {}
  for d in p:lines() do out[#out + 1] = d end
  p:close()
  return out
end

local function trace(model, src, dst, protocol, port)
  return assert(model:trace{ src = src, dst = dst, protocol = protocol or "tcp", port = port or 22 })
end

describe("reach on Batfish's AWS snapshots", function()
  it("loads every snapshot and says what it skipped", function()
    local dirs = snapshots()
    assert.is_true(#dirs >= 20)
    for _, d in ipairs(dirs) do
      local model, err = reach.load(d)
      assert(model, d .. ": " .. tostring(err))
      assert.is_table(model.skipped)
      for _, s in ipairs(model.skipped) do
        assert.is_string(s.reason)
        assert.is_string(s.key)
      end
      model:close()
    end
  end)

  it("names what it does not model", function()
    local model = assert(reach.load(ROOT .. "test-transit-gateway"))
    local keys = {}
    for _, s in ipairs(model.skipped) do keys[s.key] = s.reason end
    assert.matches("not modelled %(1 item%)", keys.InternetGateways)
    assert.matches("not modelled", keys.VpnConnections)
  end)

  describe("test-transit-gateway-multi-account (TGW owner and participant)", function()
    local model
    setup(function() model = assert(reach.load(ROOT .. "test-transit-gateway-multi-account")) end)

    it("merges the TGW both accounts see into one", function()
      assert.equals(1, model.counts.transit_gateways)
      assert.equals(2, model.counts.tgw_attachments)
      assert.equals(2, model.counts.vpcs)
    end)

    it("reaches ssh across accounts both ways, crossing AZs (use1-az2 and use1-az4) inside the TGW", function()
      for _, pair in ipairs({ { "i-0bdf35d561be3d962", "i-03df168b3f73cc262" },
                              { "i-03df168b3f73cc262", "i-0bdf35d561be3d962" } }) do
        local r = trace(model, pair[1], pair[2])
        assert.is_true(r.reachable, tostring(r))
        assert.matches("another AZ", table.concat(r.assumptions, "\n"))
        assert.matches("allow%-all", table.concat(r.assumptions, "\n")) -- no NACL data in this snapshot
      end
    end)

    it("stops http at the destination's security group", function()
      local r = trace(model, "i-0bdf35d561be3d962", "i-03df168b3f73cc262", "tcp", 80)
      assert.is_false(r.reachable)
      assert.equals("ENI_SG_RULES_MISMATCH", r.code)
      assert.equals("sg-081797c4fc92bb8ec", r.blocked_at.component)
    end)

    it("admits ping (icmp) as the security groups allow it", function()
      assert.is_true(trace(model, "10.1.1.100", "10.2.1.183", "icmp").reachable)
    end)
  end)

  describe("test-transit-gateway (one account, attachment subnets in some AZs)", function()
    local model
    setup(function() model = assert(reach.load(ROOT .. "test-transit-gateway")) end)

    it("reaches from the AZ where the VPC's attachment has a subnet", function()
      local r = trace(model, "i-06ba034d88c84ef07", "i-0b14080af811fda3d")
      assert.is_true(r.reachable, tostring(r))
    end)

    it("cannot reach the TGW from an AZ without an attachment subnet (use2-az1)", function()
      local r = trace(model, "i-075e846ed41670385", "i-0b14080af811fda3d")
      assert.equals("TGW_ROUTE_AZ_RESTRICTION", r.code)
      assert.equals("tgw-attach-07f5ec59e9f540021", r.blocked_at.component)
      assert.equals("forward", r.blocked_at.direction)
    end)

    it("and replies from there fail on the return leg", function()
      local r = trace(model, "i-0b14080af811fda3d", "i-075e846ed41670385")
      assert.is_true(r.forward.ok)
      assert.equals("TGW_ROUTE_AZ_RESTRICTION", r.code)
      assert.equals("return", r.blocked_at.direction)
    end)

    it("delivers within a VPC through the local route without the TGW", function()
      local r = trace(model, "i-075e846ed41670385", "i-06ba034d88c84ef07")
      assert.is_true(r.reachable)
      for _, h in ipairs(r.forward.hops) do assert.is_not.equals("tgw-attachment", h.kind) end
    end)
  end)

  describe("test-vpc-peering", function()
    local model
    setup(function() model = assert(reach.load(ROOT .. "test-vpc-peering")) end)

    it("crosses an active peering connection", function()
      local r = trace(model, "i-04a292ff83b3aa833", "i-06ba034d88c84ef07")
      assert.is_true(r.reachable, tostring(r))
      local kinds = {}
      for _, h in ipairs(r.forward.hops) do kinds[h.kind] = true end
      assert.is_true(kinds["peering-connection"])
    end)

    it("keeps the local route for an overlapping CIDR (192.168.0.0/16 in both VPCs)", function()
      local r = trace(model, "i-04a292ff83b3aa833", "i-0b14080af811fda3d")
      assert.equals("UNKNOWN_DESTINATION", r.code)
      assert.equals("vpc-09095dbf2886404ee", r.blocked_at.component)
    end)
  end)

  describe("test-transit-gateway-peering", function()
    it("does not pretend to follow an internet gateway", function()
      local model = assert(reach.load(ROOT .. "test-transit-gateway-peering"))
      local r = trace(model, "i-08f3abb6471637c66", "i-05e25e43074216229")
      assert.equals("UNSUPPORTED_COMPONENT", r.code)
      assert.matches("igw%-", r.blocked_at.rule)
    end)
  end)
end)
