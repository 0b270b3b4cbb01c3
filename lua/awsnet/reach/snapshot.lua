--- Reads a snapshot folder into the table form `awsnet.reach.load` accepts.
-- Layout: `<dir>/aws_configs/[accounts/<account-id>/][<region>/]*.json` (or `<dir>` being the
-- aws_configs folder itself). Each file is a JSON object; its top-level keys say what it holds
-- (never its name). Files without an account or region folder go under account "default"
-- and region "default". Several files with the same key in one account and region are
-- concatenated.
-- @module awsnet.reach.snapshot
local cjson = require "cjson.safe"
local core = require "awsnet.core"
local errors = require "awsnet.errors"
local process = require "awsnet.svc.process"
local shape = require "awsnet.reach.shape"

local snapshot = {}

--- The largest describe file read by default (bytes): 1 GiB.
snapshot.MAX_FILE_SIZE = 1 << 30

-- The file's text, or nil, err: a file over `limit` bytes is refused before it is read.
local function read_file(path, limit)
  local f, err = io.open(path, "rb")
  if not f then return errors.fail("invalid_snapshot", "cannot read " .. path .. ": " .. tostring(err), { file = path }) end
  local size = f:seek("end")
  if size and size > limit then
    f:close()
    return errors.fail("invalid_snapshot", string.format("%s: %d bytes, over the limit of %d bytes per file "
      .. "(max_file_size)", path, size, limit), { file = path, size = size, limit = limit })
  end
  f:seek("set")
  local text = f:read("a")
  f:close()
  if not text then return errors.fail("invalid_snapshot", "cannot read " .. path, { file = path }) end
  return text
end

local function is_dir(path)
  local f = io.open(path .. "/.", "r")
  if f then f:close() return true end
  return false
end

-- The *.json files under dir, in byte order: find without a shell, names NUL-separated, so any
-- character a file name may hold (spaces, quotes, newlines, bytes that are not UTF-8) is kept.
local function list_json(dir)
  local start = dir:sub(1, 1) == "-" and ("./" .. dir) or dir -- never read as an option of find
  local out, err = process.call({ "find", start, "-type", "f", "-name", "*.json", "-print0" })
  if not out then
    return errors.fail("invalid_snapshot", "cannot list " .. dir .. ": " .. tostring(err.message or err), { file = dir })
  end
  local files = {}
  for name in out:gmatch("([^%z]+)%z") do
    if start ~= dir then name = name:sub(3) end
    files[#files + 1] = name
  end
  table.sort(files)
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

-- A describe file decoded and checked: the object, or nil, err.
local function decode_file(path, limit)
  local text, err = read_file(path, limit)
  if not text then return nil, err end
  local doc, jerr = cjson.decode(text)
  -- (an empty array decodes like an empty object: the text tells them apart)
  if type(doc) ~= "table" or doc[1] ~= nil or text:match("^%s*(.)") ~= "{" then
    return errors.fail("invalid_snapshot",
      string.format("%s: %s", path, jerr and ("malformed JSON: " .. jerr) or "top level is not a JSON object"),
      { file = path })
  end
  local ok, serr = shape.check(doc, path)
  if not ok then return nil, serr end
  return doc
end

-- ---- lazy reading ------------------------------------------------------------------------------
-- Decoded JSON takes 2-3 times the text's size in Lua tables: a snapshot decoded whole holds
-- that for every file at once. Read lazily, a file's top-level keys are scanned (in C, without
-- decoding) when the folder is read, and its content decoded when the loader first reads an
-- element of a kind it holds; the loader drops each kind's tables once compiled, so only a few
-- files' worth is alive at a time. A file holding several kinds is decoded once per kind.

-- {key = elements of an array, or -1 for another value} of a file, or nil, err.
local function scan_file(path, limit)
  local text, err = read_file(path, limit)
  if not text then return nil, err end
  local keys, why = core.reach.json_keys(text)
  if not keys then
    if why == "a top-level key holds an escape" then
      -- keys the scan cannot compare as bytes: decode the file now (each key then costs a decode)
      local doc, derr = decode_file(path, limit)
      if not doc then return nil, derr end
      keys = {}
      for k, v in pairs(doc) do keys[k] = (type(v) == "table" and (v[1] ~= nil or next(v) == nil)) and #v or -1 end
      return keys
    end
    return errors.fail("invalid_snapshot", string.format("%s: %s", path, why), { file = path })
  end
  return keys
end

-- The value of `key` in the region: each file's decoded and checked, arrays concatenated in file
-- order as snapshot.read does. A bad file raises its error value (build.compile returns it).
local function lazy_value(state, key)
  local v
  for _, path in ipairs(state.files[key]) do
    local doc, err = decode_file(path, state.limit)
    if not doc then error(err, 0) end
    local x = doc[key]
    if v ~= nil and type(v) == "table" and type(x) == "table" and v[1] ~= nil then
      table.move(x, 1, #x, #v + 1, v)
    else
      v = x
    end
  end
  return v
end

-- An array not decoded yet: its elements decode it (`ipairs`, `t[i]`); `#` is the scan's count
-- until then. Nothing keeps it but who holds it.
local function lazy_array(state, key)
  local items
  return setmetatable({}, {
    __index = function(_, i)
      items = items or lazy_value(state, key) or {}
      return items[i]
    end,
    __len = function() return items and #items or state.counts[key] end,
  })
end

local function lazy_region(limit)
  local state = { files = {}, counts = {}, limit = limit }
  return setmetatable({}, {
    lazy = state,
    __index = function(_, key)
      if not state.files[key] then return nil end
      if state.counts[key] >= 0 then return lazy_array(state, key) end
      return lazy_value(state, key)
    end,
    __pairs = function(t)
      local function step(_, k)
        local key = next(state.files, k)
        if key ~= nil then return key, t[key] end
      end
      return step, t, nil
    end,
  })
end

local function lazy_add(reg, key, count, path)
  local state = getmetatable(reg).lazy
  local files = state.files[key] or {}
  state.files[key] = files
  files[#files + 1] = path
  local prev = state.counts[key]
  state.counts[key] = (prev == nil or (prev >= 0 and count >= 0)) and (prev or 0) + count or -1
end

--- Returns the table form `{accounts = {[id] = {[region] = {Key = value, ...}}}}` and
-- `origins[account][region][Key] = path`, or nil, err (code "invalid_snapshot", with `file`).
-- A value of the wrong type where the loader reads (awsnet.reach.shape) is "invalid_snapshot"
-- with `file` and `path`; a file over the size limit is refused before it is read.
-- @tparam string dir the snapshot folder (or its aws_configs folder)
-- @tparam[opt] table opts {max_file_size = bytes (default snapshot.MAX_FILE_SIZE, 1 GiB), lazy = true to
-- decode each file only when an element of a kind it holds is first read (the region tables then
-- index lazily, and a bad file raises its error value there: what reach.load does)}
-- @treturn table the table form, or nil, err
-- @treturn table origins
-- @treturn table skipped: {file, reason} for files outside the layout
-- @raise when dir is not a string or max_file_size not a positive integer
function snapshot.read(dir, opts)
  if type(dir) ~= "string" then error("snapshot.read: folder name expected", 2) end
  local lazy = opts and opts.lazy
  local limit = opts and opts.max_file_size or snapshot.MAX_FILE_SIZE
  if math.type(limit) ~= "integer" or limit <= 0 then error("snapshot.read: max_file_size must be a positive integer", 2) end
  local root = dir
  if is_dir(dir .. "/aws_configs") then root = dir .. "/aws_configs" end
  if not is_dir(root) then
    return errors.fail("invalid_snapshot", "no snapshot folder at " .. dir, { file = dir })
  end
  local files, lerr = list_json(root)
  if not files then return nil, lerr end
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
      -- lazily: the file's top-level keys now, its content when the loader reaches them
      local doc, err = (lazy and scan_file or decode_file)(path, limit)
      if not doc then return nil, err end
      local acct = data.accounts[account] or {}
      data.accounts[account] = acct
      local reg = acct[region] or (lazy and lazy_region(limit) or {})
      acct[region] = reg
      origins[account] = origins[account] or {}
      origins[account][region] = origins[account][region] or {}
      for key, value in pairs(doc) do
        local prev = not lazy and reg[key]
        if lazy then
          lazy_add(reg, key, value, path)
        elseif prev ~= nil and type(prev) == "table" and type(value) == "table" and prev[1] ~= nil then
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

--- The manifest of a snapshot folder (manifest.json next to aws_configs, as `awsnet snapshot
-- --organization` writes it), or nil when there is none.
-- @tparam string dir the snapshot folder, or its aws_configs folder
-- @treturn ?table the manifest, or nil, err ("invalid_snapshot" when it is not a JSON object)
function snapshot.manifest(dir)
  local path = dir:gsub("/+$", ""):gsub("/aws_configs$", "") .. "/manifest.json"
  local f = io.open(path, "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local ok, doc = pcall(require("cjson").decode, text)
  if not ok or type(doc) ~= "table" then
    return errors.fail("invalid_snapshot", path .. " is not a JSON object", { file = path })
  end
  return doc
end

return snapshot
