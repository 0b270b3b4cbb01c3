-- The interactive interpreter (`lua5.4 -i`, fed from a pipe as if typed) on every public module
-- and on every field of awsnet.core. A C function that pushes more values than the LUA_MINSTACK
-- slots it is promised, without luaL_checkstack, writes past the end of the Lua stack when that
-- stack has no spare room: in a REPL this crashes or corrupts the heap, while the busted process
-- (whose stack grew long before) and ASan (the write lands in the uninstrumented interpreter) miss
-- it. Each session types what a user would, then loads the same module again with awsnet.core
-- opened on stacks that are full to each possible degree (see SWEEP). Every session must exit with
-- status 0, print nothing on stderr and die from no signal; under valgrind, it must also make no
-- invalid read or write.
local BUILD = os.getenv("AWSNET_BUILD") or "build"
-- The checkout's modules and core; `;;` keeps the system paths for lua-cjson and the like. No user
-- start-up code, no user readline configuration.
local ENV = "env -u LUA_INIT -u LUA_INIT_5_4 INPUTRC=/dev/null TERM=dumb LUA_PATH='lua/?.lua;lua/?/init.lua;;' " ..
  "LUA_CPATH='" .. BUILD .. "/?.so;;'"

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function have_valgrind() return os.execute("command -v valgrind >/dev/null 2>&1") == true end

-- Runs `cmd` (its stdin already set; no core file) and returns what it wrote on stderr and its exit
-- status (128 + n when signal n killed it, 124 when it hung).
local function run(cmd)
  local p = assert(io.popen("ulimit -c 0; (" .. cmd .. " >/dev/null) 2>&1; echo \"exit:$?\""))
  local out = p:read("a")
  p:close()
  local err, status = out:match("^(.-)exit:(%d+)\n$")
  return err or out, tonumber(status)
end

local function explain(status, err)
  local how = status == 124 and "hung" or status and status > 128 and ("died from signal " .. (status - 128))
    or ("exited with " .. tostring(status))
  return how .. (err ~= "" and (":\n" .. err) or "")
end

-- One interactive session: the lines typed, then the end of the input.
local function session(lines, wrapper, seconds)
  local typed = table.concat(lines, "\n") .. "\n"
  return run(string.format("printf '%%s' %s | %s timeout -k 5 %d %s lua5.4 -i", quote(typed), ENV, seconds,
    wrapper or ""))
end

-- Typed after the user's lines: sweep(expr) evaluates `expr` 41 times, each time with awsnet's
-- modules unloaded and awsnet.core required again in a fresh coroutine (a 40-slot stack) below 0
-- to 40 locals, so that one of its openings finds the stack exactly as full as the C API allows.
-- The collector stays stopped meanwhile: it shrinks stacks, at moments that change from run to run.
local SWEEP = ([[
function sweep(expr)
  collectgarbage("stop")
  for n = 0, 40 do
    for k in pairs(package.loaded) do
      if k == "awsnet" or k:find("^awsnet%.") then package.loaded[k] = nil end
    end
    local deep = assert(load(string.rep("local _ = 0 ", n) .. "return require 'awsnet.core'"))
    package.preload["awsnet.core"] = function()
      package.preload["awsnet.core"] = nil
      return coroutine.wrap(deep)()
    end
    assert(assert(load("return " .. expr))() ~= nil, expr .. " is nil at depth " .. n)
  end
  package.preload["awsnet.core"] = nil
  collectgarbage("restart")
end]]):gsub("\n%s*", " ")

local function sweep(expr) return string.format("sweep %q", expr) end

-- The public modules: awsnet's lazily loaded `submodules` (reached as `a.name`, or `a.name.member`
-- for a folder) and every lua/awsnet/NAME.lua and lua/awsnet/NAME/init.lua (required by name).
local function public_modules()
  local f = assert(io.open("lua/awsnet/init.lua"))
  local init = f:read("a")
  f:close()
  local listed = assert(init:match("local submodules = (%b{})"), "no submodules table in lua/awsnet/init.lua")
  local lazy = assert(load("return " .. listed, "submodules", "t", {}))()
  local names = {}
  for name in pairs(lazy) do names[name] = true end
  local p = assert(io.popen("find lua/awsnet -maxdepth 2 -name '*.lua'"))
  for path in p:lines() do
    local name = path:match("^lua/awsnet/([%w_]+)%.lua$") or path:match("^lua/awsnet/([%w_]+)/init%.lua$")
    if name and name ~= "init" then names[name] = true end
  end
  p:close()
  local list = {}
  for name in pairs(names) do list[#list + 1] = name end
  table.sort(list)
  return list, lazy
end

local MODULES, LAZY = public_modules()

local function module_lines(name)
  local lazy = LAZY[name]
  if lazy == nil then
    local expr = string.format("require(%q)", "awsnet." .. name)
    return { "x = " .. expr, "x", SWEEP, sweep(expr) }
  end
  local lines = { 'a = require "awsnet"' }
  local paths = {}
  if type(lazy) == "table" then
    for _, member in ipairs(lazy) do paths[#paths + 1] = name .. "." .. member end
  else
    paths[1] = name
  end
  for _, path in ipairs(paths) do
    lines[#lines + 1] = "x = a." .. path
    lines[#lines + 1] = "a." .. path
  end
  lines[#lines + 1] = SWEEP
  for _, path in ipairs(paths) do lines[#lines + 1] = sweep('require("awsnet").' .. path) end
  return lines
end

-- awsnet.core touched field by field, and each field of its subtables; the names come from a
-- separate, non-interactive interpreter.
local function core_lines()
  local err, status = run(ENV .. " lua5.4 -e " .. quote([[
    for k, v in pairs(require "awsnet.core") do
      io.stderr:write("field ", k, "\n")
      if type(v) == "table" then
        for s in pairs(v) do io.stderr:write("field ", k, " ", s, "\n") end
      end
    end]]))
  local fields = {}
  for line in err:gmatch("[^\n]+") do
    local k, s = line:match("^field (%S+) ?(%S*)$")
    assert(k, "listing awsnet.core's fields: the interpreter " .. explain(status, err))
    fields[#fields + 1] = s == "" and string.format("x = c[%q]", k) or string.format("x = c[%q][%q]", k, s)
  end
  assert(status == 0 and #fields > 0, "listing awsnet.core's fields: the interpreter " .. explain(status, err))
  table.sort(fields)
  local lines = { 'c = require "awsnet.core"' }
  for _, line in ipairs(fields) do lines[#lines + 1] = line end
  lines[#lines + 1] = "c"
  lines[#lines + 1] = SWEEP
  lines[#lines + 1] = sweep('require("awsnet.core")')
  return lines
end

local SESSIONS = {}
for _, name in ipairs(MODULES) do
  SESSIONS[#SESSIONS + 1] = { what = "awsnet." .. name, lines = function() return module_lines(name) end }
end
SESSIONS[#SESSIONS + 1] = { what = "awsnet.core, field by field", lines = core_lines }

describe("the interactive interpreter", function()
  it("finds every public module", function()
    for name in pairs(LAZY) do
      local f = io.open("lua/awsnet/" .. name .. ".lua") or io.open("lua/awsnet/" .. name .. "/init.lua")
        or io.open("lua/awsnet/" .. name .. "/" .. (type(LAZY[name]) == "table" and LAZY[name][1] or "") .. ".lua")
      assert(f, "no module file for awsnet." .. name)
      f:close()
    end
    assert.is_true(#MODULES >= 10)
  end)

  for _, s in ipairs(SESSIONS) do
    it("loads " .. s.what .. " without a crash or an error", function()
      local err, status = session(s.lines(), nil, 60)
      assert(status == 0 and err == "", s.what .. ": the interpreter " .. explain(status, err))
    end)
  end

  describe("under valgrind", function()
    local check = (have_valgrind() and not os.getenv("AWSNET_SANITIZED")) and it or pending
    local VALGRIND = "env -u LD_PRELOAD valgrind --quiet --error-exitcode=99 --leak-check=no " ..
      "--suppressions=tests/valgrind.supp"
    for _, s in ipairs(SESSIONS) do
      check("loads " .. s.what .. " with no invalid read or write", function()
        local err, status = session(s.lines(), VALGRIND, 300)
        assert(status == 0 and err == "", s.what .. ": valgrind " .. explain(status, err))
      end)
    end
  end)
end)
