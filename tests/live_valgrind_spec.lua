-- The live checks' C code under valgrind: DNS and MariaDB paths (answers, failures, TLS, errors,
-- garbage-collected handles) must lose no memory and touch none they do not own.
local services = require "helpers.services"
local process = services.process

local function have_valgrind() return os.execute("command -v valgrind >/dev/null 2>&1") == true end

describe("live checks under valgrind", function()
  teardown(services.stop_all)

  local run = (have_valgrind() and not os.getenv("AWSNET_SANITIZED")) and it or pending
  run("leak no memory and make no invalid access", function()
    local srv = services.mariadb({})
    local d = services.dnsmasq({ domains = { "leak.test" }, records = {
      { type = "A", name = "db.leak.test", address = "10.1.128.5" },
      { type = "CNAME", name = "alias.leak.test", target = "db.leak.test" },
      { type = "TXT", name = "text.leak.test", text = { string.rep("t", 200), string.rep("u", 200), string.rep("v", 200) } },
    } })
    local log = process.tempdir("awsnet-valgrind") .. "/valgrind.log"
    local ok, how, status = os.execute(string.format(
      "env -u LD_PRELOAD valgrind --quiet --keep-debuginfo=yes --leak-check=full --errors-for-leak-kinds=definite,indirect " ..
      "--suppressions=tests/valgrind.supp --error-exitcode=9 --log-file=%s " ..
      "lua5.4 tests/helpers/live_workload.lua 127.0.0.1:%d %s %d %s %s %s %s >/dev/null",
      process.quote(log), d.port, srv.host, srv.port, process.quote(srv.user), process.quote(srv.password),
      srv.database, process.quote(srv.ca)))
    local report = process.read_file(log) or ""
    os.execute("rm -rf " .. process.quote(log:match("^(.*)/")))
    assert.is_true(ok, string.format("%s %s\n%s", how, status, report))
  end)
end)
