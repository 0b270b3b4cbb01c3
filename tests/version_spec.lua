-- The version is stated in three files that must agree: lua/awsnet/init.lua (awsnet.VERSION),
-- csrc/core.h (AWSNET_VERSION, awsnet.core.VERSION) and the release rockspec
-- rockspecs/awsnet-<version>-1.rockspec, which is awsnet-scm-1.rockspec but for version and source.

local function read(path)
  local f = assert(io.open(path, "r"))
  local text = f:read("a")
  f:close()
  return text
end

-- A rockspec's fields (a rockspec is Lua assignments run in an empty environment).
local function rockspec(path)
  local env = {}
  assert(load(read(path), "@" .. path, "t", env))()
  return env
end

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

describe("version", function()
  local lua_version = read("lua/awsnet/init.lua"):match('\n%s*VERSION = "([^"]+)"')
  local core_version = read("csrc/core.h"):match('\n#define AWSNET_VERSION "([^"]+)"')

  it("is stated in lua/awsnet/init.lua and csrc/core.h alike", function()
    assert.is_string(lua_version)
    assert.matches("^%d+%.%d+%.%d+$", lua_version)
    assert.equal(lua_version, core_version)
  end)

  it("is what the modules say", function()
    assert.equal(lua_version, require("awsnet").VERSION)
    assert.equal(lua_version, require("awsnet.core").VERSION)
  end)

  it("has its release rockspec, the scm one but for version and source", function()
    local path = "rockspecs/awsnet-" .. lua_version .. "-1.rockspec"
    local release = rockspec(path)
    assert.equal("awsnet", release.package)
    assert.equal(lua_version .. "-1", release.version)
    assert.equal(lua_version, release.version:match("^(.-)%-%d+$"))
    assert.equal("awsnet-" .. lua_version .. ".tar.gz", release.source.url)
    assert.equal("awsnet-" .. lua_version, release.source.dir)

    local scm = rockspec("awsnet-scm-1.rockspec")
    assert.equal("scm-1", scm.version)
    for _, field in ipairs { "rockspec_format", "package", "description", "dependencies", "external_dependencies",
      "build" } do
      assert.is_true(same(scm[field], release[field]), field .. " differs between awsnet-scm-1.rockspec and " .. path)
    end
    for field in pairs(release) do
      if field ~= "version" and field ~= "source" then
        assert.is_not_nil(scm[field], "only " .. path .. " has " .. field)
      end
    end
  end)
end)
