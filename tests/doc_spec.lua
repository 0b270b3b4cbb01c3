-- The API reference (`make doc`): LDoc runs over lua/awsnet without a single warning, and every
-- exported function of every module there is documented with a description, each of its
-- arguments, and its results when it returns any.
--
-- "Exported" is read from the source, not by loading the modules: a module's functions are the
-- `function M.x(...)`, `function M:x(...)`, `M.x = function(...)` and `M.x = <local function>`
-- definitions of the table the file returns (M), and methods are every `function Class:x(...)`
-- at the top of a file (the objects a module hands out: clients, models, handles). Names starting
-- with "_" are private. The list of modules is every file under lua/awsnet, so what is added
-- later is checked too. What LDoc understood comes from LDoc itself, through a --filter.

local ROOT = "lua/awsnet"

-- Classes whose methods are internal: their objects never leave the module.
local INTERNAL_CLASSES = {
  ["lua/awsnet/reach/build.lua"] = { Builder = true }, -- lives inside build.compile only
}

-- The public API of DESIGN.md ("Public API"): file, name as documented.
local DESIGN_API = {
  { "lua/awsnet/sigv4.lua", "sign" }, { "lua/awsnet/sigv4.lua", "presign" },
  { "lua/awsnet/sigv4.lua", "rds_auth_token" },
  { "lua/awsnet/aws.lua", "client" }, { "lua/awsnet/aws.lua", "Client:call" },
  { "lua/awsnet/aws.lua", "Client:pages" }, { "lua/awsnet/aws.lua", "Client:wait" },
  { "lua/awsnet/aws.lua", "Client:build" }, { "lua/awsnet/aws.lua", "Client:parse" },
  { "lua/awsnet/aws/model.lua", "load" }, -- aws.model.load
  { "lua/awsnet/reach.lua", "load" }, { "lua/awsnet/reach.lua", "Model:trace" },
  { "lua/awsnet/reach.lua", "Model:who_can_reach" },
  { "lua/awsnet/dns.lua", "resolve" },
  { "lua/awsnet/mariadb.lua", "connect" },
  { "lua/awsnet/mariadb.lua", "Db:execute" }, { "lua/awsnet/mariadb.lua", "Db:query" },
  { "lua/awsnet/mariadb.lua", "Db:insert_many" }, { "lua/awsnet/mariadb.lua", "Db:begin" },
  { "lua/awsnet/mariadb.lua", "Db:commit" }, { "lua/awsnet/mariadb.lua", "Db:rollback" },
  { "lua/awsnet/mariadb.lua", "Db:transaction" }, { "lua/awsnet/mariadb.lua", "Db:close" },
  { "lua/awsnet/sandbox.lua", "start" },
}

-- The filter LDoc loads (it runs inside LDoc, under Lua 5.1 or 5.2): one line per module and per
-- item, tab-separated.
--   MODULE <file> <name> <length of summary+description>
--   ITEM <file> <module> <item> <length of summary+description> <number of @return> <param>=<0|1>...
local FILTER = [==[
local M = {}
local function flat(s) return (tostring(s or ""):gsub("%s+", " ")) end
local function text_len(x) return #((flat(x.summary) .. flat(x.description)):gsub("^%s+", "")) end
function M.print(module_list)
  for mod in module_list:iter() do
    io.write(table.concat({ "MODULE", tostring(mod.file), flat(mod.name), tostring(text_len(mod)) }, "\t"), "\n")
    for item in mod.items:iter() do
      local fields = { "ITEM", tostring(mod.file), flat(mod.name), flat(item.name), tostring(text_len(item)),
        tostring(item.ret and #item.ret or 0) }
      for _, p in ipairs(item.params or {}) do
        local desc = item.params.map and item.params.map[p] or ""
        fields[#fields + 1] = flat(p) .. "=" .. ((desc and desc:match("%S")) and "1" or "0")
      end
      io.write(table.concat(fields, "\t"), "\n")
    end
  end
end
return M
]==]

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true
end

local function read(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function lines_of(text)
  local out = {}
  for line in (text or ""):gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

local function split(line)
  local out = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do out[#out + 1] = field end
  return out
end

---------------------------------------------------------------------------------------------
-- What the source exports

local function lua_files()
  local p = assert(io.popen("find " .. ROOT .. " -name '*.lua' | sort"))
  local files = {}
  for path in p:lines() do files[#files + 1] = path end
  p:close()
  return files
end

-- "lua/awsnet/aws/query.lua" -> "awsnet.aws.query"; init.lua is its folder's module.
local function module_name(path)
  return (path:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", "."))
end

-- The parameter names of the definition at line i, whose "(" is at column `from` (the list may
-- go on over several lines).
local function params_at(lines, i, from)
  local text = lines[i]:sub(from + 1)
  local j = i
  while not text:find(")", 1, true) and lines[j + 1] do
    j = j + 1
    text = text .. "\n" .. lines[j]
  end
  local out = {}
  for name in text:match("^([^)]*)"):gsub("%-%-[^\n]*", ""):gmatch("[^,%s]+") do out[#out + 1] = name end
  return out
end

-- The body of the function whose definition starts at line i: up to the first line that is
-- "end" at the top level (or the definition line itself, for a one-line function).
local function body_from(lines, i)
  if lines[i]:match("%send%s*$") then return { lines[i] } end
  local body = {}
  for j = i, #lines do
    body[#body + 1] = lines[j]
    if j > i and lines[j]:match("^end") then break end
  end
  return body
end

-- True when the function gives back a value (a `return <value>` in its own body, at its first
-- level of indentation, or in a one-line function).
local function returns_value(body)
  if #body == 1 then return body[1]:match("%)%s*return%s+[^%s]") ~= nil end
  for k = 2, #body do
    if body[k]:match("^  return%s+%S") then return true end
  end
  return false
end

-- {name = {params = {...}, returns = bool, line = n}} for one file, plus the returned table's name.
local function exports_of(path)
  local src = assert(read(path))
  local lines = {}
  for line in (src .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  local ret
  for _, line in ipairs(lines) do
    ret = line:match("^return%s+([%a_][%w_]*)%s*$") or line:match("^return%s+setmetatable%(%s*([%a_][%w_]*)") or ret
  end
  local locals = {}
  for i, line in ipairs(lines) do
    local name, open = line:match("^local%s+function%s+([%a_][%w_]*)%s*()%(")
    if name then locals[name] = { params = params_at(lines, i, open), body = body_from(lines, i), line = i } end
  end
  local internal = INTERNAL_CLASSES[path] or {}
  local found = {}
  local function add(name, params, body, line)
    if name:match("[.:]_") or name:match("^_") then return end
    found[name] = { params = params, returns = returns_value(body), line = line }
  end
  for i, line in ipairs(lines) do
    local owner, sep, name, open = line:match("^function%s+([%a_][%w_]*)([.:])([%a_][%w_]*)%s*()%(")
    if owner and owner == ret then
      add(name, params_at(lines, i, open), body_from(lines, i), i)
    elseif owner and sep == ":" and not internal[owner] then
      add(owner .. ":" .. name, params_at(lines, i, open), body_from(lines, i), i)
    end
    if ret then
      local fname, fopen = line:match("^" .. ret .. "%.([%a_][%w_]*)%s*=%s*function%s*()%(")
      if fname then add(fname, params_at(lines, i, fopen), body_from(lines, i), i) end
      local aname, target = line:match("^" .. ret .. "%.([%a_][%w_]*)%s*=%s*([%a_][%w_]*)%s*$")
      if aname and locals[target] then add(aname, locals[target].params, locals[target].body, i) end
    end
  end
  return found, ret
end

---------------------------------------------------------------------------------------------
-- What LDoc understood

local function have_ldoc()
  return sh("command -v ldoc >/dev/null 2>&1")
end

local tmp

local function run_ldoc(args, name)
  local out, err = tmp .. "/" .. name .. ".out", tmp .. "/" .. name .. ".err"
  local ok = sh(string.format("LUA_PATH='%s/?.lua;;' LUA_PATH_5_2='%s/?.lua;;' ldoc %s . >%s 2>%s",
    tmp, tmp, args, out, err))
  return ok, read(out) or "", read(err) or ""
end

-- The file an LDoc line names, as a path from the checkout ("lua/awsnet/...").
local function rel(file)
  return file:match("(lua/awsnet/.*)$") or file
end

describe("API reference (LDoc)", function()
  if not have_ldoc() then
    pending("ldoc is not installed (Debian package lua-ldoc)")
    return
  end

  local modules, items

  setup(function()
    tmp = os.tmpname()
    os.remove(tmp)
    assert(sh("mkdir -p " .. tmp))
    local f = assert(io.open(tmp .. "/awsnet_doc_items.lua", "w"))
    f:write(FILTER)
    f:close()
  end)

  teardown(function()
    if tmp then sh("rm -rf '" .. tmp .. "'") end
  end)

  local function load_items()
    if items then return end
    local ok, out, err = run_ldoc("--filter awsnet_doc_items.print", "filter")
    assert(ok, "ldoc --filter failed:\n" .. err)
    modules, items = {}, {}
    for _, line in ipairs(lines_of(out)) do
      local f = split(line)
      if f[1] == "MODULE" then
        modules[rel(f[2])] = { name = f[3], text = tonumber(f[4]) }
      elseif f[1] == "ITEM" then
        local params = {}
        for k = 7, #f do
          local p, described = f[k]:match("^(.*)=([01])$")
          if p then params[p] = described == "1" end
        end
        local file = rel(f[2])
        items[file] = items[file] or {}
        items[file][f[4]] = { text = tonumber(f[5]), returns = tonumber(f[6]), params = params }
      end
    end
  end

  -- The LDoc item for an exported name: "x" may be documented as "x" or "<table>.x".
  local function item_for(file, name, ret)
    local per_file = items[file] or {}
    if per_file[name] then return per_file[name] end
    if ret and per_file[ret .. "." .. name] then return per_file[ret .. "." .. name] end
    local class, method = name:match("^([%a_][%w_]*):(.+)$")
    if class then return per_file[class .. "." .. method] end
    local plain = name:match("^[%a_][%w_]*%.(.+)$")
    return plain and per_file[plain]
  end

  it("generates the HTML reference without a warning", function()
    local ok, out, err = run_ldoc("--fatalwarnings -d " .. tmp .. "/html", "html")
    local warnings = {}
    for _, line in ipairs(lines_of(out)) do
      if not (line:match("^reading configuration from") or line:match("^output written to")) then
        warnings[#warnings + 1] = line
      end
    end
    for _, line in ipairs(lines_of(err)) do warnings[#warnings + 1] = line end
    assert.same({}, warnings)
    assert.is_true(ok)
    assert.is_truthy(read(tmp .. "/html/index.html"))
    assert.is_truthy(read(tmp .. "/html/modules/awsnet.reach.html"))
  end)

  it("has a module comment, under the module's name, for every file under lua/awsnet", function()
    load_items()
    local wrong = {}
    for _, path in ipairs(lua_files()) do
      local m = modules[path]
      if not m then
        wrong[#wrong + 1] = path .. ": no module"
      elseif m.name ~= module_name(path) then
        wrong[#wrong + 1] = path .. ": module named " .. m.name .. ", not " .. module_name(path) .. " (@module)"
      elseif m.text == 0 then
        wrong[#wrong + 1] = path .. ": no description"
      end
    end
    assert.same({}, wrong)
  end)

  it("documents every exported function and method: description, each argument, results", function()
    load_items()
    local missing, checked = {}, 0
    for _, path in ipairs(lua_files()) do
      local exported, ret = exports_of(path)
      for name, fn in pairs(exported) do
        checked = checked + 1
        local where = string.format("%s:%d %s", path, fn.line, name)
        local item = item_for(path, name, ret)
        if not item then
          missing[#missing + 1] = where .. ": not documented"
        else
          if item.text == 0 then missing[#missing + 1] = where .. ": no description" end
          for _, p in ipairs(fn.params) do
            if p ~= "self" and not item.params[p] then
              missing[#missing + 1] = where .. ": argument '" .. p .. "' not described (@param)"
            end
          end
          if fn.returns and item.returns == 0 then
            missing[#missing + 1] = where .. ": results not described (@return)"
          end
        end
      end
    end
    table.sort(missing)
    assert.same({}, missing)
    assert.is_true(checked > 100, "only " .. checked .. " exported functions found: is the scan broken?")
  end)

  it("documents the public API of DESIGN.md that the source defines", function()
    load_items()
    local missing = {}
    for _, entry in ipairs(DESIGN_API) do
      local path, name = entry[1], entry[2]
      local exported, ret = exports_of(path)
      if exported[name] and not item_for(path, name, ret) then missing[#missing + 1] = path .. " " .. name end
    end
    assert.same({}, missing)
  end)

  -- DESIGN.md names these; the source does not define them yet (when it does, the check above
  -- and the scan cover them).
  for _, entry in ipairs(DESIGN_API) do
    local path, name = entry[1], entry[2]
    local exported = exports_of(path)
    if not exported[name] then
      pending(string.format("DESIGN.md's %s (%s) is not defined in the source yet", name, path))
    end
  end
end)
