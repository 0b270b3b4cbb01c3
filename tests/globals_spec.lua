-- Requiring awsnet and every submodule must add no global variable.
describe("module loading", function()
  local function lua_files(dir, prefix, out)
    local p = io.popen("cd " .. dir .. " && find . -name '*.lua' | sort")
    for path in p:lines() do
      local mod = path:gsub("^%./", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      out[#out + 1] = prefix .. (mod == "" and "" or mod)
    end
    p:close()
    return out
  end

  it("adds no globals and does nothing at require time", function()
    local before = {}
    for k in pairs(_G) do before[k] = true end
    local modules = lua_files("lua/awsnet", "awsnet.", {})
    assert.is_true(#modules > 0)
    for _, m in ipairs(modules) do
      if m == "awsnet.init" then m = "awsnet" end
      assert(require(m), m)
    end
    require "awsnet.core"
    local added = {}
    for k in pairs(_G) do if not before[k] then added[#added + 1] = tostring(k) end end
    assert.same({}, added)
  end)

  it("exposes the version and loads submodules on first use", function()
    local awsnet = require "awsnet"
    assert.matches("^%d+%.%d+%.%d+$", awsnet.VERSION)
    assert.equals(awsnet.VERSION, require("awsnet.core").VERSION)
    assert.equals(require("awsnet.errors"), awsnet.errors)
  end)

  it("makes error values with a stable code and a readable text", function()
    local errors = require "awsnet.errors"
    local v, e = errors.fail("timeout", "no answer in 2 s", { op = "dns.resolve" })
    assert.is_nil(v)
    assert.equals("timeout", e.code)
    assert.equals("dns.resolve: timeout: no answer in 2 s", tostring(e))
    assert.is_true(errors.is(e))
    assert.equals("key=[redacted]", errors.redact("key=wJalrXUtnFEMI", { "wJalrXUtnFEMI" }))
  end)
end)
