-- awsnet.dns against a real dnsmasq on loopback (and a deliberately bad responder for the
-- answers dnsmasq will not give). Nothing here asks a resolver outside 127.0.0.1.
local services = require "helpers.services"
local dns = require "awsnet.dns"
local process = services.process
local socket = require "socket"

local RDS = "mydb.c9akciq32.ap-northeast-1.rds.amazonaws.com"
local HOST = "ip-10-1-128-5.ap-northeast-1.compute.internal"

-- Four 200-byte strings in two TXT records: about 850 bytes, more than a 512-byte UDP answer.
local function big_texts()
  local t = {}
  for i = 1, 4 do t[i] = string.rep(string.char(64 + i), 200) end
  return t
end

-- Starts the bad responder in MODE on a free port; returns "127.0.0.1:port".
local function responder(mode)
  local dir = process.tempdir("awsnet-dnsresp")
  local port = process.free_port()
  local h = process.spawn({ "lua5.4", "tests/helpers/dns_responder.lua", tostring(port), mode },
    { log = dir .. "/out.log", cleanup_dir = dir })
  services.track({ stop = function() h.stop(); os.execute("rm -rf " .. process.quote(dir)) end })
  assert(process.wait_until(function()
    return (process.read_file(dir .. "/out.log") or ""):find("ready", 1, true) ~= nil or not h.alive()
  end, 10, "the DNS responder"))
  assert(h.alive(), process.read_file(dir .. "/out.log"))
  return "127.0.0.1:" .. port
end

describe("awsnet.dns", function()
  teardown(services.stop_all)

  describe("against dnsmasq", function()
    local server, texts
    setup(function()
      texts = big_texts()
      local d = services.dnsmasq({
        domains = { "amazonaws.com", "compute.internal", "example.test", "in-addr.arpa" },
        records = {
          { type = "CNAME", name = RDS, target = "ec2-alias.example.test", ttl = 300 },
          { type = "CNAME", name = "ec2-alias.example.test", target = HOST, ttl = 30 },
          { type = "A", name = HOST, address = "10.1.128.5", ttl = 60 },
          { type = "A", name = "public.example.test", address = "203.0.113.7", ttl = 60 },
          { type = "AAAA", name = "v6.example.test", address = "fd00:ec2::5", ttl = 60 },
          { type = "TXT", name = "big.example.test", text = { texts[1], texts[2] } },
          { type = "TXT", name = "big.example.test", text = { texts[3], texts[4] } },
          { type = "PTR", name = "5.128.1.10.in-addr.arpa", target = HOST },
        },
      })
      server = "127.0.0.1:" .. d.port
    end)

    it("follows an RDS-style CNAME chain to a private A record, with each TTL", function()
      local r = assert(dns.resolve(RDS, { server = server }))
      assert.same({ "10.1.128.5" }, r.addresses)
      assert.equals("NOERROR", r.rcode)
      assert.same({
        { name = RDS, target = "ec2-alias.example.test", ttl = 300 },
        { name = "ec2-alias.example.test", target = HOST, ttl = 30 },
      }, r.cname_chain)
      assert.equals(HOST, r.canonical_name)
      assert.equals(30, r.ttl)
      assert.equals(server, r.server)
      assert.equals("private", dns.classify(r.addresses[1]))
    end)

    it("takes the server as an address and a port", function()
      local port = tonumber(server:match(":(%d+)$"))
      local r = assert(dns.resolve("public.example.test", { server = "127.0.0.1", port = port }))
      assert.same({ "203.0.113.7" }, r.addresses)
      assert.equals("public", dns.classify(r.addresses[1]))
    end)

    it("answers AAAA, CNAME and PTR questions", function()
      assert.same({ "fd00:ec2::5" }, assert(dns.resolve("v6.example.test", { server = server, type = "AAAA" })).addresses)
      local c = assert(dns.resolve(RDS, { server = server, type = "CNAME" }))
      assert.same({ "ec2-alias.example.test" }, c.names)
      local p = assert(dns.resolve("10.1.128.5", { server = server, type = "PTR" }))
      assert.equals("5.128.1.10.in-addr.arpa", p.canonical_name)
      assert.same({ HOST }, p.names)
    end)

    it("says NXDOMAIN when the name does not exist", function()
      local r, err = dns.resolve("nosuchdb.c9akciq32.ap-northeast-1.rds.amazonaws.com", { server = server })
      assert.is_nil(r)
      assert.equals("nxdomain", err.code)
      assert.equals("NXDOMAIN", err.rcode)
      assert.matches("does not exist", tostring(err))
    end)

    it("says nodata for a name that exists without records of the asked type", function()
      local r, err = dns.resolve(HOST, { server = server, type = "AAAA" })
      assert.is_nil(r)
      assert.equals("nodata", err.code)
      assert.equals("NOERROR", err.rcode)
    end)

    it("reads a TXT answer too large for UDP over TCP", function()
      -- the premise: without EDNS, dnsmasq truncates this answer over UDP
      local udp = services.sh(string.format("dig @127.0.0.1 -p %s +noedns +notcp +ignore +tries=1 big.example.test TXT",
        server:match(":(%d+)$")))
      assert.matches("flags: qr aa tc", udp)
      local r = assert(dns.resolve("big.example.test", { server = server, type = "TXT" }))
      table.sort(r.text)
      assert.same({ texts[1] .. texts[2], texts[3] .. texts[4] }, r.text)
      assert.same({ texts[1], texts[2] }, r.records[1].data[1] == texts[1] and r.records[1].data or r.records[2].data)
      local over_tcp = assert(dns.resolve("big.example.test", { server = server, type = "TXT", tcp = true })).text
      table.sort(over_tcp)
      assert.same(r.text, over_tcp)
    end)

    it("fails over from a server that is down to the next one", function()
      local down = "127.0.0.1:" .. process.free_port()
      local r = assert(dns.resolve(RDS, { server = { down, server }, timeout = 1, tries = 1 }))
      assert.same({ "10.1.128.5" }, r.addresses)
      assert.equals(server, r.server)
    end)

    it("says refused when the resolver will not answer for the name, and tries the next", function()
      local _, err = dns.resolve("www.example.org", { server = server })
      assert.equals("refused", err.code)
      assert.equals("REFUSED", err.rcode)
      local r = assert(dns.resolve(RDS, { server = { responder("refused"), server } }))
      assert.same({ "10.1.128.5" }, r.addresses)
    end)

    it("tells a missing name from a resolver that is down", function()
      local _, missing = dns.resolve("nosuch.example.test", { server = server })
      local _, down = dns.resolve("db.example.test", { server = "127.0.0.1:" .. process.free_port(), tries = 1 })
      assert.equals("nxdomain", missing.code)
      assert.equals("unreachable", down.code)
    end)
  end)

  it("asks a resolver on IPv6 loopback", function()
    local d = services.dnsmasq({ host = "::1", domains = { "v6.test" },
      records = { { type = "A", name = "db.v6.test", address = "10.1.128.5" } } })
    local r = assert(dns.resolve("db.v6.test", { server = "::1", port = d.port }))
    assert.same({ "10.1.128.5" }, r.addresses)
    assert.equals("[::1]:" .. d.port, r.server)
    assert.same(r.addresses, assert(dns.resolve("db.v6.test", { server = "[::1]:" .. d.port })).addresses)
  end)

  describe("with a resolver that misbehaves", function()
    it("says servfail, with the rcode", function()
      local _, err = dns.resolve("db.example.test", { server = responder("servfail"), tries = 1 })
      assert.equals("servfail", err.code)
      assert.equals("SERVFAIL", err.rcode)
    end)

    it("says malformed for an answer cut short", function()
      local _, err = dns.resolve("db.example.test", { server = responder("malformed"), tries = 1 })
      assert.equals("malformed", err.code)
    end)

    -- A bound UDP socket nobody reads: questions to it are never answered.
    local function silent_server()
      local silent = assert(socket.udp())
      assert(silent:setsockname("127.0.0.1", 0))
      local _, port = silent:getsockname()
      return silent, "127.0.0.1:" .. port
    end

    it("times out on a server that never answers, within timeout x tries", function()
      local silent, address = silent_server()
      local started = socket.gettime()
      local _, err = dns.resolve("db.example.test", { server = address, timeout = 0.2, tries = 2 })
      local elapsed = socket.gettime() - started
      silent:close()
      assert.equals("timeout", err.code)
      assert.is_true(elapsed >= 0.3 and elapsed < 5, "elapsed " .. elapsed)
      assert.equals(1, #err.attempts)
    end)

    it("keeps the answer of a server that answered over one that was silent", function()
      local silent, address = silent_server()
      local _, err = dns.resolve("db.example.test",
        { server = { responder("servfail"), address }, timeout = 0.2, tries = 1 })
      silent:close()
      assert.equals("servfail", err.code)
      assert.same({ "servfail", "timeout" }, { err.attempts[1].code, err.attempts[2].code })
    end)
  end)

  describe("address helpers", function()
    it("classifies private, shared, public, link-local and loopback addresses", function()
      local cases = {
        { "10.1.128.5", "private", "RFC 1918" }, { "172.16.0.1", "private", "RFC 1918" },
        { "172.31.255.255", "private", "RFC 1918" }, { "172.32.0.1", "public" },
        { "192.168.1.1", "private", "RFC 1918" }, { "100.64.0.1", "private", "RFC 6598" },
        { "100.127.255.254", "private", "RFC 6598" }, { "100.128.0.1", "public" },
        { "169.254.169.253", "link-local", "RFC 3927" }, { "127.0.0.1", "loopback", "RFC 1122" },
        { "8.8.8.8", "public" }, { "::1", "loopback", "RFC 4291" }, { "fe80::1", "link-local", "RFC 4291" },
        { "fd00:ec2::253", "private", "RFC 4193" }, { "2600:1f18::1", "public" },
        { "::ffff:10.0.0.1", "private", "RFC 1918" },
      }
      for _, c in ipairs(cases) do
        local kind, range = dns.classify(c[1])
        assert.same({ c[2], c[3] }, { kind, range }, c[1])
      end
      assert.is_true(dns.is_private("100.64.1.1"))
      assert.is_true(dns.is_public("54.1.2.3"))
      assert.is_true(dns.is_link_local("169.254.169.254"))
      assert.is_true(dns.is_loopback("127.8.8.8"))
    end)

    it("names the VPC resolver and reverse names", function()
      assert.equals("10.0.0.2", dns.vpc_resolver("10.0.0.0/16"))
      assert.equals("10.1.0.2", dns.vpc_resolver("10.1.0.0/16"))
      assert.equals("5.128.1.10.in-addr.arpa", dns.reverse_name("10.1.128.5"))
      assert.equals("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa", dns.reverse_name("::1"))
      assert.is_true(dns.is_ip("fd00:ec2::253"))
      assert.is_false(dns.is_ip("10.1.128.256"))
      assert.is_false(dns.is_ip("db.example.test"))
    end)

    it("raises on bad arguments", function()
      assert.has_error(function() dns.resolve(nil) end)
      assert.has_error(function() dns.resolve("x.test", "A") end)
      assert.has_error(function() dns.resolve("x.test", { type = "HINFO" }) end)
      assert.has_error(function() dns.resolve("x.test", { timeout = -1 }) end)
      assert.has_error(function() dns.resolve("x.test", { server = {} }) end)
      assert.has_error(function() dns.classify("not-an-ip") end)
      assert.has_error(function() dns.vpc_resolver("10.0.0.0") end)
    end)

    it("returns badname for a name no DNS message can carry", function()
      local _, err = dns.resolve(string.rep("a", 64) .. ".test", { server = "127.0.0.1:9" })
      assert.equals("badname", err.code)
    end)
  end)
end)
