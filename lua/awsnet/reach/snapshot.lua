--- Reads a snapshot folder into the table form `awsnet.reach.load` accepts.
-- Layout: `<dir>/aws_configs/[accounts/<account-id>/][<region>/]*.json` (or `<dir>` being the
-- aws_configs folder itself). Each file is a JSON object; its top-level keys say what it holds
-- (never its name). Files without an account or region folder go under account "default"
-- and region "default". Several files with the same key in one account and region are
-- concatenated.
-- @module awsnet.reach.snapshot
local cjson = require "cjson.safe"
local errors = require "awsnet.errors"
local process = require "awsnet.svc.process"

local snapshot = {}

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return errors.fail("invalid_snapshot", "cannot read " .. path .. ": " .. tostring(err), { file = path }) end
  local text = f:read("a")
  f:close()
  return text
end

local function is_dir(path)
  local f = io.open(path .. "/.", "r")
  if f then f:close() return true end
  return false
end

local function list_json(dir)
  local p = assert(io.popen("find " .. process.quote(dir) .. " -type f -name '*.json' 2>/dev/null | LC_ALL=C sort"))
  local files = {}
  for line in p:lines() do files[#files + 1] = line end
  p:close()
  return files
end

--- Account and region of a file from its path below aws_configs.
local function place(rel)
  local parts = {}
  for p in rel:gmatch("[^/]+") do parts[#parts + 1] = p end
  table.remove(parts) -- the file name
  local account, region = "default", "default"
  if parts[1] == "accounts" and parts[2] then
    account = parts[2]
    table.remove(parts, 1)
    table.remove(parts, 1)
  end
  if parts[1] then region = parts[1] end
  return account, region, #parts > 1
end

--- Returns the table form `{accounts = {[id] = {[region] = {Key = value, ...}}}}` and
-- `origins[account][region][Key] = path`, or nil, err (code "invalid_snapshot", with `file`).
-- @tparam string dir the snapshot folder (or its aws_configs folder)
-- @treturn table the table form, or nil, err
-- @treturn table origins
-- @treturn table skipped: {file, reason} for files outside the layout
function snapshot.read(dir)
  if type(dir) ~= "string" then error("snapshot.read: folder name expected", 2) end
  local root = dir
  if is_dir(dir .. "/aws_configs") then root = dir .. "/aws_configs" end
  if not is_dir(root) then
    return errors.fail("invalid_snapshot", "no snapshot folder at " .. dir, { file = dir })
  end
  local files = list_json(root)
  if #files == 0 then
    return errors.fail("invalid_snapshot", "no *.json files under " .. root, { file = root })
  end
  local data, origins, skipped = { accounts = {} }, {}, {}
  for _, path in ipairs(files) do
    local rel = path:sub(#root + 2)
    local account, region, too_deep = place(rel)
    if too_deep then
      skipped[#skipped + 1] = { file = path, reason = "not in the aws_configs/[accounts/<id>/]<region>/ layout" }
    else
      local text, err = read_file(path)
      if not text then return nil, err end
      local doc, jerr = cjson.decode(text)
      if type(doc) ~= "table" or doc[1] ~= nil then
        return errors.fail("invalid_snapshot",
          string.format("%s: %s", path, jerr and ("malformed JSON: " .. jerr) or "top level is not a JSON object"),
          { file = path })
      end
      local acct = data.accounts[account] or {}
      data.accounts[account] = acct
      local reg = acct[region] or {}
      acct[region] = reg
      origins[account] = origins[account] or {}
      origins[account][region] = origins[account][region] or {}
      for key, value in pairs(doc) do
        local prev = reg[key]
        if prev ~= nil and type(prev) == "table" and type(value) == "table" and prev[1] ~= nil then
          table.move(value, 1, #value, #prev + 1, prev)
        else
          reg[key] = value
        end
        origins[account][region][key] = origins[account][region][key] and (origins[account][region][key] .. ", " .. path)
          or path
      end
    end
  end
  return data, origins, skipped
end

return snapshot
