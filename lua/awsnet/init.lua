--- awsnet: build, prove and check AWS network paths from Lua.
-- Submodules load on first use (`awsnet.reach`, `awsnet.aws`, ...); requiring this module does
-- nothing else: no network, no files, no C library initialisation.
local awsnet = {
  VERSION = "0.1.0",
}

local submodules = {
  sigv4 = true, aws = true, credentials = true, http = true, reach = true, dns = true,
  mariadb = true, sandbox = true, runbook = true, errors = true,
}

return setmetatable(awsnet, {
  __index = function(t, name)
    if submodules[name] then
      local mod = require("awsnet." .. name)
      rawset(t, name, mod)
      return mod
    end
    return nil
  end,
})
