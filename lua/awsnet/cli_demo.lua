--- `awsnet demo`: the article's scenario, played in the local sandbox.
-- Until the sandbox and the runbook exist, it prints the plan and what of it is built.
local demo = {}

local PARTS = {
  { "awsnet.sigv4", "signed AWS calls (SigV4)" },
  { "awsnet.aws", "AWS clients: ec2, sts, iam, rds, ram, lambda" },
  { "awsnet.reach", "reachability evaluator (routes, TGW, SGs, NACLs)" },
  { "awsnet.dns", "DNS checks against a chosen resolver" },
  { "awsnet.mariadb", "MariaDB/MySQL session" },
  { "awsnet.sandbox", "local two-account AWS sandbox" },
  { "awsnet.scenario.tgw_lambda_rds", "the article's runbook" },
}

local STEPS = {
  "start the sandbox (accounts 111111111111 and 222222222222) with its MariaDB and DNS",
  "plan: list the API calls per account",
  "apply: TGW in A (auto-accept), attach A's VPC, share via RAM, B accepts and attaches,",
  "       routes both ways, RDS in B (SG tcp/3306 from 10.0.0.0/16), Lambda in A",
  "verify: trace Lambda -> RDS hop by hop, resolve the endpoint, invoke, read back",
  "prove: remove DNS support / a route / an SG rule in a model copy and show what blocks",
  "destroy: remove everything the state file lists",
}

local function available(mod)
  local path = package.searchpath(mod, package.path)
  return path ~= nil
end

function demo.run()
  print("awsnet demo: Lambda in account A -> RDS MySQL in account B through a shared Transit Gateway")
  print()
  local n = 0
  for _, s in ipairs(STEPS) do
    if s:match("^%s") then print("     " .. s) else n = n + 1; print(string.format("  %d. %s", n, s)) end
  end
  print()
  local missing = 0
  for _, p in ipairs(PARTS) do
    local ok = available(p[1])
    if not ok then missing = missing + 1 end
    print(string.format("  [%s] %-34s %s", ok and "x" or " ", p[1], p[2]))
  end
  print()
  if missing > 0 then
    print(string.format("%d of %d parts are not built yet; the demo will play once they are.", missing, #PARTS))
  end
  return 0
end

return demo
