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
