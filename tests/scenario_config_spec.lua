-- The scenario's configuration: the article's defaults, checks, the password's sources, the
-- example file as a config, and the step list's shape.
local scenario = require "awsnet.scenario.tgw_lambda_rds"
local cli_scenario = require "awsnet.cli.scenario"
local process = require "awsnet.svc.process"

describe("scenario config", function()
  it("fills in the article's network and keeps what is given", function()
    local cfg = assert(scenario.config({ name = "t1", network = { B = { subnet = "10.1.200.0/28" } } }))
    assert.equals("10.0.0.0/16", cfg.network.A.cidr)
    assert.equals("10.0.128.0/28", cfg.network.A.subnet)
    assert.equals("10.1.0.0/16", cfg.network.B.cidr)
    assert.equals("10.1.200.0/28", cfg.network.B.subnet)
    assert.equals("mysql", cfg.database.engine)
    assert.is_false(cfg.same_account)
    assert.is_true(assert(scenario.config({ accounts = { A = {}, B = { same_as = "A" } } })).same_account)
  end)

  it("refuses bad names and CIDRs", function()
    local cfg, err = scenario.config({ name = "Bad Name" })
    assert.is_nil(cfg)
    assert.equals("config", err.code)
    cfg, err = scenario.config({ network = { A = { cidr = "10.0.0.0" } } })
    assert.is_nil(cfg)
    assert.matches("network.A.cidr", err.message, 1, true)
    assert.has_error(function() scenario.config("x") end)
  end)

  it("refuses a key it does not know, at any level, naming the nearest known one", function()
    local cases = {
      { { databse = { name = "x" } }, "databse", "database" },
      { { reigon = "eu-west-1" }, "reigon", "region" },
      { { accounts = { A = { porfile = "netA" } } }, "accounts.A.porfile", "accounts.A.profile" },
      { { accounts = { B = { role_arn = "arn:r", sourec = "A" } } }, "accounts.B.sourec", "accounts.B.source" },
      { { accounts = { A = { credentials = { acess_key_id = "AKIA" } } } }, "accounts.A.credentials.acess_key_id",
        "accounts.A.credentials.access_key_id" },
      { { network = { A = { vpcid = "vpc-1" } } }, "network.A.vpcid", "network.A.vpc_id" },
      { { network = { B = { subnet_2 = "10.1.128.16/28" } } }, "network.B.subnet_2", "network.B.subnet2" },
      { { database = { password_enviroment = "PW" } }, "database.password_enviroment", "database.password_env" },
      { { lambda = { runtine = "python3.12" } }, "lambda.runtine", "lambda.runtime" },
      { { resolver = { sever = "10.0.0.2" } }, "resolver.sever", "resolver.server" },
      { { sandbox = { endpont = "http://127.0.0.1:1" } }, "sandbox.endpont", "sandbox.endpoint" },
    }
    for _, c in ipairs(cases) do
      local cfg, err = scenario.config(c[1])
      assert.is_nil(cfg, c[2])
      assert.equals("config", err.code)
      assert.equals(string.format("unknown key '%s' in config (did you mean '%s'?)", c[2], c[3]), err.message)
      assert.equals(c[2], err.key)
      assert.equals(c[3], err.suggestion)
    end
    -- nothing close: the known keys of that level are listed instead
    local _, far = scenario.config({ lambda = { xyzzy_frobnicate = 1 } })
    assert.equals("unknown key 'lambda.xyzzy_frobnicate' in config (known: pymysql, runtime, timeout)", far.message)
    assert.is_nil(far.suggestion)
    -- an account other than A and B, and B's second subnet on A, are unknown too
    local _, c_acct = scenario.config({ accounts = { C = {} } })
    assert.equals("accounts.C", c_acct.key)
    local _, a_sub2 = scenario.config({ network = { A = { subnet2 = "10.0.130.0/28" } } })
    assert.equals("network.A.subnet2", a_sub2.key)
    -- a credentials provider object is passed through, not read as a table of keys
    local provider = require("awsnet.credentials").provider({})
    assert(scenario.config({ accounts = { A = { credentials = provider } } }))
  end)

  it("knows every key of its defaults, of the example and of the sandbox's config", function()
    local cfg = assert(scenario.config(scenario.DEFAULTS))
    -- a checked config checks again (same_account is derived, account_ids filled in by the runbook)
    cfg.account_ids = { A = "111111111111", B = "222222222222" }
    assert(scenario.config(cfg))
    assert(scenario.config(assert(cli_scenario.load_config("examples/tgw_lambda_rds.lua"))))
    assert(scenario.config({ accounts = { A = { profile = "a" }, B = { role_arn = "arn:r", source = "A" } },
      network = { A = { vpc_id = "vpc-1", subnet_id = "subnet-1", tgw_subnet_id = "subnet-2" },
        B = { vpc_id = "vpc-2", subnet_id = "subnet-3", subnet2_id = "subnet-4", tgw_subnet_id = "subnet-5" } },
      database = { password_file = "/nonexistent" }, inside_vpc = true }))
    -- awsnet.scenario.sandboxed's Handle:config, without starting a sandbox
    local sandboxed = require "awsnet.scenario.sandboxed"
    local Handle
    for i = 1, math.huge do
      local name, value = debug.getupvalue(sandboxed.start, i)
      if not name then break end
      if name == "Handle" then Handle = value end
    end
    assert.is_table(Handle)
    local fake = setmetatable({ dir = "/nonexistent", endpoint = "http://127.0.0.1:1", password_file = "/nonexistent/pw",
      dns = { server = "127.0.0.1", port = 5353 } }, Handle)
    assert(scenario.config(fake:config{ name = "net" }))
  end)

  it("reads the password from a file or the environment, and says where to put it", function()
    local path = os.tmpname()
    process.write_file(path, "from-file-pw\n")
    assert.equals("from-file-pw", scenario.db_password(assert(scenario.config({ database = { password_file = path } }))))
    os.remove(path)
    assert.equals(os.getenv("HOME"), scenario.db_password(assert(scenario.config({ database = { password_env = "HOME" } }))))
    local pw, err = scenario.db_password(assert(scenario.config({ database = { password_env = "AWSNET_NO_SUCH_VAR" } })))
    assert.is_nil(pw)
    assert.matches("AWSNET_NO_SUCH_VAR", err.message)
  end)

  it("loads the example as a config, without running it", function()
    local cfg = assert(cli_scenario.load_config("examples/tgw_lambda_rds.lua"))
    assert.equals("awsnet-tgw-demo", cfg.name)
    assert.equals("10.1.128.0/28", cfg.network.B.subnet)
    assert(scenario.config(cfg))
    local bad, err = cli_scenario.load_config("/nonexistent.lua")
    assert.is_nil(bad)
    assert.equals("config", err.code)
  end)

  it("orders the article's steps: TGW before sharing, sharing before B attaches, Lambda last", function()
    local rb = require("awsnet.runbook").new{ name = "t", steps = scenario.steps(), state_file = "/nonexistent/x",
      client = function() end }
    local pos = {}
    for i, s in ipairs(rb.steps) do pos[s.id] = i end
    assert.is_true(pos.tgw < pos.ram_share and pos.ram_share < pos.ram_accept and pos.ram_accept < pos.tgw_attach_b)
    assert.is_true(pos.tgw_attach_a < pos.route_a and pos.tgw_attach_b < pos.route_b)
    assert.is_true(pos.sg_database < pos.db and pos.db_subnet_group < pos.db)
    assert.equals(#rb.steps, pos.lambda)
    for _, s in ipairs(rb.steps) do
      assert.is_true(#s.calls > 0, s.id)
      assert.is_string(s.title)
    end
  end)
end)
