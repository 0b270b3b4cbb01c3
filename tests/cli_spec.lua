-- The command line as a user meets it: bin/awsnet run as a process, its help, version, refusals
-- of bad input (one line and the usage, never a traceback), exit statuses, shell completion, and
-- the README's demo + REPL walk-through on the snapshot the demo leaves.
local process = require "awsnet.svc.process"
local q = process.quote

local ROOT = assert(process.run("pwd")):gsub("%s+$", "")
local FIXTURE = "tests/fixtures/reach/article"

-- Runs bin/awsnet with `args` (a shell-quoted string); returns status, stdout, stderr.
local function awsnet(args, env)
  local dir = process.tempdir("awsnet-cli-spec")
  local ok, _, status = os.execute(string.format("cd %s && %s bin/awsnet %s >%s/out 2>%s/err </dev/null", q(ROOT),
    env or "", args, dir, dir))
  local out, err = process.read_file(dir .. "/out"), process.read_file(dir .. "/err")
  os.execute("rm -rf " .. q(dir))
  return ok and 0 or status, out, err
end

local function refused(args, pattern)
  local status, out, err = awsnet(args)
  assert.equals(2, status, args .. ": " .. err)
  assert.equals("", out)
  local first, rest = err:match("^([^\n]*)\n(.*)$")
  assert.truthy(first, err)
  assert.matches("^awsnet: ", first)
  if pattern then assert.matches(pattern, first) end
  assert.matches("^Usage: awsnet", rest)
  assert.not_matches("traceback", err)
  assert.not_matches("%.lua:%d+:", err)
end

describe("awsnet command line", function()
  it("prints help for --help, -h and help, with every command and the exit statuses", function()
    for _, args in ipairs({ "--help", "-h", "help" }) do
      local status, out, err = awsnet(args)
      assert.equals(0, status, err)
      assert.equals("", err)
      assert.matches("^Usage: awsnet", out)
      for _, c in ipairs({ "demo", "sandbox", "snapshot", "trace", "scenario", "version", "completion" }) do
        assert.matches("\n   " .. c .. " ", out, 1, true)
      end
      assert.matches("Exit status: 0 ok or reachable, 1 not reachable or a failed check, 2 usage or error", out, 1, true)
    end
  end)

  it("prints the version for --version and version", function()
    local v = require("awsnet").VERSION
    for _, args in ipairs({ "--version", "version" }) do
      local status, out = awsnet(args)
      assert.equals(0, status)
      assert.equals("awsnet " .. v .. "\n", out)
    end
  end)

  it("gives every command its own -h, which runs nothing (demo -h starts no sandbox)", function()
    for _, c in ipairs({ "demo", "sandbox", "snapshot", "trace", "scenario", "version", "help", "completion" }) do
      local t0 = os.time()
      local status, out, err = awsnet(c .. " -h")
      assert.equals(0, status, c .. ": " .. err)
      assert.matches("^Usage: awsnet " .. c, out)
      assert.is_true(os.time() - t0 < 5, c .. " -h took too long")
      local status2, out2 = awsnet("help " .. c)
      if c ~= "version" and c ~= "help" and c ~= "completion" then
        assert.equals(0, status2)
        assert.equals(out, out2)
      end
    end
  end)

  it("refuses bad input with one line and the usage", function()
    refused("", "a command is required")
    refused("frobnicate", "unknown command 'frobnicate'")
    refused("--frobnicate", "unknown option '%-%-frobnicate'")
    local t = "trace " .. FIXTURE .. " --src lambda:writer --dst rds:orders"
    refused(t .. " --port abc", "%-%-port must be an integer from 0 to 65535, not 'abc'")
    refused(t .. " --port 99999", "%-%-port must be an integer")
    refused(t .. " --port -1")
    refused(t .. " --port 3306 --protocol tcpx", "%-%-protocol must be tcp, udp")
    refused(t .. " --port 3306 --direction sideways", "direction")
    refused(t .. " --port 3306 --bogus", "unknown option '%-%-bogus'")
    refused("trace " .. FIXTURE .. " --dst rds:orders --port 3306", "missing option '%-%-src'")
    refused("trace --src a --dst b --port 1", "missing argument 'dir'")
    refused("sandbox --port x", "%-%-port")
    refused("sandbox --accounts 123", "12%-digit")
    refused("sandbox --faults meteor=1", "unknown fault 'meteor'")
    refused("sandbox --faults throttle=2", "rate from 0 to 1")
    refused("scenario apply", "missing option '%-%-config'")
    refused("scenario launch --config x.lua", "must be one of")
    refused("snapshot --region eu-west-1", "missing option '%-%-out'")
    refused("snapshot --organization --resolver 127.0.0.1 --out x", "together")
    refused("completion fish", "must be one of")
  end)

  describe("exit statuses of trace", function()
    local t = "trace " .. FIXTURE .. " "
    it("0 when reachable", function()
      local status, out = awsnet(t .. "--src lambda:writer --dst rds:orders --port 3306")
      assert.equals(0, status)
      assert.matches("REACHABLE", out)
    end)
    it("1 when blocked", function()
      local status, out = awsnet(t .. "--src lambda:writer --dst rds:orders --port 22")
      assert.equals(1, status)
      assert.matches("blocked at", out)
    end)
    it("1 for an address no interface holds, named in a line", function()
      local status, out = awsnet(t .. "--src lambda:writer --dst 10.1.128.9 --port 3306")
      assert.equals(1, status)
      assert.matches("NOT REACHABLE", out, 1, true)
      assert.matches("blocked at subnet subnet-0b0000000000000d1 (forward): NO_DESTINATION_ENI", out, 1, true)
      assert.matches("no network interface holds 10.1.128.9", out, 1, true)
    end)
    it("1 for a source or destination the snapshot does not hold, listing those it holds", function()
      local status, _, err = awsnet(t .. "--src lambda:nope --dst rds:orders --port 3306")
      assert.equals(1, status)
      assert.matches("unknown_endpoint", err)
      assert.matches("the snapshot knows: lambda:writer rds:orders", err, 1, true)
      status = awsnet(t .. "--src 192.0.2.1 --dst rds:orders --port 3306")
      assert.equals(1, status)
    end)
    it("traces a dual-stack snapshot in either family (--family, --protocol icmpv6 --icmp-type)", function()
      local dual = "trace tests/fixtures/reach/article-dual --src lambda:writer --dst rds:orders "
      local status, out = awsnet(dual .. "--port 3306 --family ipv6")
      assert.equals(0, status)
      assert.matches("(2600:1f18:100:b00::a) tcp/3306", out, 1, true)
      -- the README shows this trace: every line it shows is the command's
      local readme = assert(process.read_file(ROOT .. "/README.md"))
      local shown = assert(readme:match("\n%$ bin/awsnet trace tests/fixtures/reach/article%-dual [^\n]*\n(.-)\n```"))
      for line in shown:gmatch("[^\n]+") do
        if line ~= "   ..." then assert.matches(line, out, 1, true) end
      end
      status, out = awsnet(dual .. "--port 3306")
      assert.equals(0, status)
      assert.matches("(10.1.128.10) tcp/3306", out, 1, true)
      -- the Lambda's group lets only tcp/3306 out
      status, out = awsnet(dual .. "--protocol icmpv6 --icmp-type 128 --family ipv6")
      assert.equals(1, status)
      assert.matches("icmpv6 type 128 code 0", out, 1, true)
      refused(dual .. "--port 3306 --family ip7", "family")
      -- the IPv4-only article has no IPv6 address to trace to
      local err
      status, out, err = awsnet(t .. "--src lambda:writer --dst rds:orders --port 3306 --family ipv6")
      assert.equals("", out)
      assert.equals(2, status)
      assert.matches("has no IPv6 address", err)
    end)
    it("2 for a question the evaluator refuses (a database as source)", function()
      local status, _, err = awsnet(t .. "--src rds:orders --dst lambda:writer --port 3306")
      assert.equals(2, status)
      assert.matches("invalid_endpoint", err)
    end)
    it("2 for an invalid snapshot or a missing folder", function()
      local status, _, err = awsnet("trace /nonexistent/snap --src a --dst b --port 1")
      assert.equals(2, status)
      assert.matches("invalid_snapshot", err)
      assert.not_matches("%.lua:%d+:", err)
      local dir = process.tempdir("awsnet-cli-badsnap")
      os.execute("mkdir " .. q(dir .. "/aws_configs"))
      process.write_file(dir .. "/aws_configs/Vpcs.json", "{not json")
      status, _, err = awsnet("trace " .. q(dir) .. " --src a --dst b --port 1")
      os.execute("rm -rf " .. q(dir))
      assert.equals(2, status)
      assert.matches("invalid_snapshot", err)
    end)
    it("2 when tcp has no port", function()
      local status, _, err = awsnet(t .. "--src lambda:writer --dst rds:orders")
      assert.equals(2, status)
      assert.matches("%-%-port is required", err)
    end)
    it("--json prints the result as one JSON object", function()
      local status, out = awsnet(t .. "--src lambda:writer --dst rds:orders --port 22 --json")
      assert.equals(1, status)
      local r = require("cjson").decode(out)
      assert.is_false(r.reachable)
      assert.equals("ENI_SG_RULES_MISMATCH", r.code)
    end)
  end)

  describe("shell completion from the same parser", function()
    it("bash: a script bash accepts, naming every command and a command's options", function()
      local status, out = awsnet("completion bash")
      assert.equals(0, status)
      assert.matches("complete %-F _awsnet", out)
      assert.matches("--direction", out, 1, true)
      local dir = process.tempdir("awsnet-cli-completion")
      process.write_file(dir .. "/awsnet.bash", out)
      -- complete the word after `awsnet tr` as bash would
      local words = assert(process.run("bash -c " .. q(". " .. dir .. "/awsnet.bash; " ..
        "COMP_WORDS=(awsnet tr); COMP_CWORD=1; _awsnet; printf '%s\\n' \"${COMPREPLY[@]}\"")))
      os.execute("rm -rf " .. q(dir))
      assert.equals("trace\n", words)
    end)
    it("zsh: a compdef script naming every command", function()
      local status, out = awsnet("completion zsh")
      assert.equals(0, status)
      assert.matches("^#compdef awsnet", out)
      for _, c in ipairs({ "demo", "sandbox", "snapshot", "trace", "scenario" }) do
        assert.matches('"' .. c .. ":", out, 1, true)
      end
      if os.execute("command -v zsh >/dev/null 2>&1") then
        local dir = process.tempdir("awsnet-cli-zsh")
        process.write_file(dir .. "/_awsnet", out)
        local ok = os.execute("zsh -n " .. q(dir .. "/_awsnet"))
        os.execute("rm -rf " .. q(dir))
        assert.is_true(ok)
      end
    end)
  end)

  describe("the README's walk-through: demo, then the REPL on its snapshot", function()
    local dir
    setup(function() dir = process.tempdir("awsnet-cli-demo") end)
    teardown(function() os.execute("rm -rf " .. q(dir)) end)

    -- The lines of the README's REPL block, as a user pastes them.
    local function readme_repl_lines()
      local readme = assert(process.read_file(ROOT .. "/README.md"))
      local section = assert(readme:match("\n## In a REPL\n(.-)\n## "), "README has no '## In a REPL' section")
      local block = assert(section:match("```lua\n(.-)```"), "no lua block in the REPL section")
      return block
    end

    it("runs the demo, then the README's REPL lines one by one without an error", function()
      os.execute("mkdir -p " .. q(dir .. "/tmp"))
      local status, out, err = awsnet("demo --out " .. q(dir .. "/demo"), "TMPDIR=" .. q(dir .. "/tmp"))
      assert.equals(0, status, out .. err)
      assert.truthy(process.read_file(dir .. "/demo/report.md"))
      assert.equals("", assert(process.run("ls -A " .. q(dir .. "/tmp"))), "the demo left files in TMPDIR")

      local block = readme_repl_lines()
      assert.not_matches("\nlocal ", "\n" .. block, "a top-level local is lost between REPL lines")
      process.write_file(dir .. "/repl.lua", block)
      -- as the README says: the checkout's modules and core, the demo's folder as working directory
      local env = string.format("LUA_PATH=%s LUA_CPATH=%s", q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"),
        q(ROOT .. "/" .. (os.getenv("AWSNET_BUILD") or "build") .. "/?.so;;"))
      local ok = os.execute(string.format("cd %s && %s lua5.4 -i <repl.lua >repl.out 2>repl.err", q(dir), env))
      local rout, rerr = process.read_file(dir .. "/repl.out"), process.read_file(dir .. "/repl.err")
      assert.is_true(ok, rerr)
      -- the interactive interpreter reports an error and goes on: stderr must hold only its prompts
      assert.equals("", (rerr:gsub(">>? ", ""):gsub("%s", "")), rerr)
      assert.matches("lambda:awsnet%-demo%-writer", rout)
      assert.matches("REACHABLE", rout)
      assert.matches("ENI_SG_RULES_MISMATCH", rout)
    end)
  end)
end)
