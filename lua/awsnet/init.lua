--- awsnet: build, prove and check AWS network paths from Lua.
-- Submodules load on first use (`awsnet.reach`, `awsnet.aws`, ...); requiring this module does
-- nothing else: no network, no files, no C library initialisation.
-- @module awsnet
local awsnet = {
  VERSION = "0.2.0",
}

-- Every public submodule: true for a module `awsnet.<name>`, a list for a folder of modules
-- (`awsnet.scenario.checks`, ...) that loads each member on first use too.
local submodules = {
  sigv4 = true, aws = true, credentials = true, http = true, reach = true, dns = true,
  mariadb = true, sandbox = true, runbook = true, errors = true, snapshot = true, report = true,
  cli = true,
  scenario = { "tgw_lambda_rds", "checks", "sandboxed", "lambda_zip" },
  svc = { "process", "mariadb_server", "dnsmasq", "tls" },
}

-- A table whose fields load `prefix.<member>` on first use.
local function lazy(prefix, members)
  local known = {}
  for _, m in ipairs(members) do known[m] = true end
  return setmetatable({}, {
    __index = function(t, name)
      if not known[name] then return nil end
      local mod = require(prefix .. "." .. name)
      rawset(t, name, mod)
      return mod
    end,
  })
end

--- The names of the public submodules, sorted (for the REPL and the docs).
-- @treturn {string,...} names such as "aws", "reach", "scenario"
function awsnet.submodules()
  local names = {}
  for name in pairs(submodules) do names[#names + 1] = name end
  table.sort(names)
  return names
end

return setmetatable(awsnet, {
  __index = function(t, name)
    local what = submodules[name]
    if not what then return nil end
    local mod = what == true and require("awsnet." .. name) or lazy("awsnet." .. name, what)
    rawset(t, name, mod)
    return mod
  end,
})
