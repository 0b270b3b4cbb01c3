-- The article's scenario: a VPC Lambda in account A writes a row into an RDS MySQL database in
-- account B through a Transit Gateway that A shares with B over AWS RAM.
--
-- As a config:  awsnet scenario plan|apply|verify|prove|destroy --config examples/tgw_lambda_rds.lua
-- As a script:  lua5.4 examples/tgw_lambda_rds.lua plan|apply|verify|prove|destroy [--json]
-- Profiles come from AWSNET_PROFILE_A / AWSNET_PROFILE_B, the password from AWSNET_DB_PASSWORD.
-- Everything not set here takes the article's defaults (awsnet.scenario.tgw_lambda_rds.DEFAULTS).
local config = {
  name = "awsnet-tgw-demo",          -- prefix of every name, value of the awsnet:scenario tag
  region = os.getenv("AWS_REGION") or "ap-northeast-1",   -- the article's region; any region works
  state_file = "awsnet-tgw-demo.state.json",
  accounts = {
    A = { profile = os.getenv("AWSNET_PROFILE_A") or "netA" },
    B = { profile = os.getenv("AWSNET_PROFILE_B") or "netB" },
    -- B = { role_arn = "arn:aws:iam::222222222222:role/awsnet", source = "A" },  -- AssumeRole from A
    -- B = { same_as = "A" },                                                     -- one account, no RAM
  },
  -- To use an existing VPC and subnets instead of creating them, name them (they are used as they
  -- are and never deleted; `cidr` must then be the VPC's): vpc_id =, subnet_id =, tgw_subnet_id =
  -- (and in B subnet2_id =).
  -- AZs by AZ id (the letters "a", "c" name different zones in different accounts; ids do not):
  -- "az1" is the region's az1 (apne1-az1 in ap-northeast-1), or give the id in full ("apne1-az4").
  network = {
    A = { cidr = "10.0.0.0/16", subnet = "10.0.128.0/28", tgw_subnet = "10.0.129.0/28", az = "az1" },
    B = { cidr = "10.1.0.0/16", subnet = "10.1.128.0/28", subnet2 = "10.1.128.16/28", tgw_subnet = "10.1.129.0/28",
      az = "az1", az2 = "az2" },
  },
  extra_columns = false,   -- true: an email column besides the article's id and name
  database = { engine = "mysql", instance_class = "db.t3.micro", name = "sampledb", username = "admin",
    password_env = "AWSNET_DB_PASSWORD" },
  lambda = { runtime = "python3.12", pymysql = "/usr/lib/python3/dist-packages/pymysql" },
}

-- Run as a script (the config loader gives the file no `arg` and no `require`).
if _ENV.arg and _ENV.require then
  local root = arg[0]:match("^(.*)/examples/[^/]*$") or "."
  package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
  package.cpath = root .. "/build/?.so;" .. package.cpath
  -- `lua5.4 examples/tgw_lambda_rds.lua apply [--json] [--out DIR]` = `awsnet scenario apply --config <this file>`
  local argv = { "scenario", arg[1] or "plan", "--config", arg[0] }
  table.move(arg, 2, #arg, #argv + 1, argv)
  os.exit(require("awsnet.cli").run(argv))
end
return config
