-- Traces to a DNS name: resolved with awsnet.dns against a real dnsmasq on loopback, and the
-- address used said in the result.
local services = require "helpers.services"
local reach = require "awsnet.reach"

local ENDPOINT = "orders.c0abcdef1234.us-east-1.rds.amazonaws.com"

describe("reach traces to DNS names", function()
  local model, server
  setup(function()
    model = assert(reach.load("tests/fixtures/reach/article"))
    local d = services.dnsmasq({
      domains = { "amazonaws.com", "example.test" },
      records = {
        { type = "CNAME", name = ENDPOINT, target = "ip-10-1-128-10.example.test", ttl = 5 },
        { type = "A", name = "ip-10-1-128-10.example.test", address = "10.1.128.10", ttl = 60 },
        { type = "A", name = "public-db.example.test", address = "3.210.10.20", ttl = 60 },
      },
    })
    server = "127.0.0.1:" .. d.port
  end)
  teardown(services.stop_all)

  it("resolves the endpoint through the given resolver and says which address it used", function()
    local r = assert(model:trace{ src = "lambda:writer", dst = ENDPOINT, port = 3306, resolver = server })
    assert.is_true(r.reachable, tostring(r))
    assert.equals("10.1.128.10", r.dst_ip)
    assert.equals("eni-0b00000000000rds1", r.forward.hops[#r.forward.hops].component)
    assert.matches(ENDPOINT .. " resolved to 10.1.128.10", table.concat(r.assumptions, "\n"), 1, true)
  end)

  it("follows a public answer where it leads: not through the TGW", function()
    local r = assert(model:trace{ src = "lambda:writer", dst = "public-db.example.test", port = 3306,
      resolver = { server = server } })
    assert.is_false(r.reachable)
    assert.equals("3.210.10.20", r.dst_ip)
    assert.equals("ENI_SG_RULES_MISMATCH", r.code)
  end)

  it("returns the resolver's error for a name that does not exist", function()
    local r, err = model:trace{ src = "lambda:writer", dst = "nope.example.test", port = 3306, resolver = server }
    assert.is_nil(r)
    assert.equals("nxdomain", err.code)
  end)
end)
