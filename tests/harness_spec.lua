-- The harness itself: a real MariaDB server and a real dnsmasq, started and stopped by the tests.
local services = require "helpers.services"
local process = services.process
local q = process.quote

describe("test harness", function()
  teardown(services.stop_all)

  describe("MariaDB server", function()
    local srv
    setup(function() srv = services.mariadb({ database = "harness", user = "tester" }) end)

    it("accepts the application user over TCP with a verified TLS session", function()
      local out = services.sh(string.format(
        "mariadb --no-defaults -h 127.0.0.1 -P %d -u %s -p%s --ssl --ssl-ca=%s --ssl-verify-server-cert " ..
        "-N -B -e %s %s", srv.port, q(srv.user), q(srv.password), q(srv.ca),
        q("SELECT DATABASE(), 6*7; SHOW STATUS LIKE 'Ssl_version'"), q(srv.database)))
      assert.matches("^harness\t42\n", out)
      assert.matches("Ssl_version\tTLSv1%.[23]", out)
    end)

    it("refuses a wrong password", function()
      local ok = os.execute(string.format(
        "mariadb --no-defaults -h 127.0.0.1 -P %d -u %s -pwrong -e 'SELECT 1' >/dev/null 2>&1",
        srv.port, q(srv.user)))
      assert.is_not_true(ok)
    end)

    it("is gone, with its files, after stop", function()
      local other = assert(require("awsnet.svc.mariadb_server").start({ tls = false }))
      local dir, pid = other.dir, other.proc.pid
      other:stop()
      assert.is_false(process.alive(pid))
      assert.is_nil(process.read_file(dir .. "/mysqld.pid"))
    end)
  end)

  describe("dnsmasq", function()
    local dns
    setup(function()
      dns = services.dnsmasq({
        domains = { "harness.test" },
        records = {
          { type = "A", name = "db.harness.test", address = "10.1.128.5", ttl = 60 },
          { type = "CNAME", name = "endpoint.harness.test", target = "db.harness.test", ttl = 30 },
        },
      })
    end)

    local function dig(args)
      return services.sh(string.format("dig @127.0.0.1 -p %d +tries=1 +time=2 %s", dns.port, args))
    end

    it("resolves a CNAME chain to the A record", function()
      assert.equals("db.harness.test.\n10.1.128.5\n", dig("+short endpoint.harness.test"))
    end)

    it("answers NXDOMAIN for an unknown name in its domain", function()
      assert.matches("status: NXDOMAIN", dig("missing.harness.test"))
    end)
  end)

  describe("watchdog", function()
    it("stops a service and removes its files when the Lua process that started it is killed", function()
      -- the child prints "pid dir" for this test to read, then SIGKILLs itself; `exec` leaves no
      -- shell waiting on it, which would print "Killed" on the test run's stderr
      local child = assert(io.popen([[exec lua5.4 -e '
        package.path = "lua/?.lua;" .. package.path
        package.cpath = (os.getenv("AWSNET_BUILD") or "build") .. "/?.so;" .. package.cpath
        local s = assert(require("awsnet.svc.dnsmasq").start{})
        print(s.proc.pid, s.dir); io.stdout:flush()
        os.execute("kill -KILL " .. require("awsnet.svc.process").self_pid())' 2>&1]]))
      local out = child:read("a")
      child:close()
      local pid, dir = out:match("^(%d+)%s+(%S+)")
      assert.truthy(pid, out)
      assert.truthy(process.wait_until(function()
        return not process.alive(tonumber(pid)) and os.execute("test -e " .. q(dir)) ~= true
      end, 15, "the watchdog"))
    end)
  end)
end)
