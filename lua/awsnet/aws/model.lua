--- AWS's own service models, read from botocore's `data` folder.
--
-- A data folder holds `<service>/<api-version>/service-2.json` (with `service-2.sdk-extras.json`
-- merged in where present), `paginators-1.json`, `waiters-2.json`, and `endpoints.json` at its top.
-- Debian's python3-botocore ships them as `.json`; a recent pip-installed botocore ships some as
-- `.json.gz`: both are read, `.json` first, as botocore's loader does.
--
-- Folders are searched in this order: `opts.path` of the call (else the path given to
-- `model.configure`), then `AWSNET_MODELS_PATH` (colon-separated), then the Debian locations
-- (python3-botocore's data folder, then the AWS CLI v2 package's copy). `default_path = false`
-- leaves out the last two, so a caller gets exactly the folders it names.
--
-- JSON is decoded by lua-cjson 2.1.0, which makes every number a float: the loader turns integral
-- values back into Lua integers (`max = 255`, not `255.0`). The two `"max": 9223372036854775807`
-- of the model set are beyond a double's 53 bits and stay the float 2^63; they only bound
-- lengths and values, where the rounding does not matter. cjson also loses the order of an
-- object's keys, so member order is not kept (`Model:help` sorts members by name).
--
-- A service model read from its source is also written, without its documentation strings, as
-- a compact JSON file to a cache folder: `model.set_cache(folder or false)`, else
-- AWSNET_MODELS_CACHE (a folder, or "0" for none), else `$XDG_CACHE_HOME/awsnet/models`, else
-- `~/.cache/awsnet/models`. A cached copy is used only when it names the same source files with
-- the same size and modification time (stat(1)), and is well-formed; on any doubt the source is
-- read (and the copy written again, atomically: a temporary file renamed). The documentation
-- strings are read from the source when first asked for (`Model:help`, `Model:operation`,
-- `Model:shape`, `m.documentation`). `endpoints.json` is cached the same way, reduced to what
-- `model.partitions` gives.
-- @module awsnet.aws.model
local errors = require "awsnet.errors"

local model = {}

-- Where Debian's packages put botocore's data folder: python3-botocore, then awscli (AWS CLI v2
-- carries its own, usually newer, copy).
local DEBIAN_PATH = {
  "/usr/lib/python3/dist-packages/botocore/data",
  "/usr/lib/python3/dist-packages/awscli/botocore/data",
}
local ENV_VAR = "AWSNET_MODELS_PATH"
local INSTALL_HINT = "install AWS's models with `apt-get install python3-botocore`, or set " .. ENV_VAR ..
  " to botocore data folders (colon-separated)"
local PROTOCOLS = { ec2 = true, query = true, json = true, ["rest-json"] = true, ["rest-xml"] = true }
local PROTOCOL_LIST = "ec2, json, query, rest-json, rest-xml"
-- Names used as path components: no "/" and no leading "." keeps lookups inside the data folder.
local NAME = "^[%w][%w%-_%.]*$"

-- Process-wide state; nothing is read before the first call.
local config = { path = nil, default_path = true, cache = nil }
local listings = {}   -- folder -> {exists = bool, names = {...}}: `ls` output, until `configure`
local models = {}     -- "<folder>/<service>/<version>" -> Model: one load per model per process
local endpoint_docs = {} -- data folder -> its decoded endpoints.json
local partition_docs = {} -- data folder -> model.partitions of its endpoints.json
local CACHE_FORMAT = 1
local json            -- a private lua-cjson instance, so no other module's settings apply

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Misuse raises, blaming the caller of the public function (`level` 3 from that function itself,
-- 4 from a checker it calls).
local function arg_error(fname, n, what, got, level)
  error(string.format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, what, type(got)), level or 3)
end

local function check_opts(fname, n, opts)
  if opts ~= nil and type(opts) ~= "table" then arg_error(fname, n, "table or nil", opts, 4) end
  return opts or {}
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t or {}) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- Lists a folder through `ls` (Lua has no readdir, and lua-filesystem is no dependency of awsnet).
local function list_dir(dir)
  local cached = listings[dir]
  if cached then return cached end
  local p = io.popen("ls -1A -- " .. quote(dir) .. " 2>/dev/null", "r")
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  local ok = p:close()
  cached = { exists = ok == true, names = names }
  listings[dir] = cached
  return cached
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if not f then return false end
  f:close()
  return true
end

-- Turns cjson's integral floats back into integers, in place.
local function integers(t)
  for k, v in pairs(t) do
    local tv = type(v)
    if tv == "table" then
      integers(v)
    elseif tv == "number" then
      local i = math.tointeger(v)
      if i then t[k] = i end
    end
  end
end

local function read_file(path)
  if path:sub(-3) ~= ".gz" then
    local f, err = io.open(path, "rb")
    if not f then return nil, err end
    -- one read of the known size: read("a") grows its buffer step by step, which costs ~20 ms on
    -- ec2's 2.7 MB model against ~1 ms
    local size = f:seek("end")
    f:seek("set")
    local text = size > 0 and f:read(size) or ""
    f:close()
    return text
  end
  -- gzip (an Essential package on Debian) rather than lua-zlib, which is not among awsnet's
  -- dependencies; only a pip botocore's files come compressed, and each is read once.
  local p = io.popen("gzip -dc -- " .. quote(path) .. " 2>&1", "r")
  local text = p:read("a")
  local ok, _, status = p:close()
  if not ok then return nil, string.format("gzip -dc exited with %s: %s", tostring(status), text) end
  return text
end

-- Reads `<base>.json` or else `<base>.json.gz`. Returns the decoded value and the file, or nothing
-- when neither file exists, or nil, err when one exists and cannot be read or decoded.
local function read_json(base)
  for _, ext in ipairs({ ".json", ".json.gz" }) do
    local file = base .. ext
    if file_exists(file) then
      local text, rerr = read_file(file)
      if not text then
        return errors.fail("invalid_model", "cannot read " .. file .. ": " .. tostring(rerr), { file = file })
      end
      json = json or require("cjson.safe").new()
      local value, derr = json.decode(text)
      if type(value) ~= "table" then
        return errors.fail("invalid_model", file .. " is not a JSON object: " .. tostring(derr or value),
          { file = file })
      end
      integers(value)
      return value, file
    end
  end
end

local function is_object(v)
  -- cjson gives JSON objects and arrays both as tables; an array has [1] unless it is empty, and
  -- an empty one merges into an object as a no-op either way
  return type(v) == "table" and v[1] == nil
end

-- botocore.utils.deep_merge, which botocore's loaders.py (ExtrasProcessor) applies to the "merge"
-- key of `<type>.sdk-extras.json`: objects merge key by key, anything else (lists included)
-- replaces the base's value.
local function deep_merge(base, extra)
  for k, v in pairs(extra) do
    if is_object(base[k]) and is_object(v) then
      deep_merge(base[k], v)
    else
      base[k] = v
    end
  end
end

-- ---- the cache of preprocessed files -------------------------------------------------------------

-- The cache folder, or nil when there is none.
local function cache_dir()
  if config.cache == false then return nil end
  if type(config.cache) == "string" then return config.cache end
  local env = os.getenv("AWSNET_MODELS_CACHE")
  if env == "0" then return nil end
  if env and env:sub(1, 1) == "/" then return env end
  local base = os.getenv("XDG_CACHE_HOME")
  if not base or base:sub(1, 1) ~= "/" then -- the XDG spec: a relative value is to be ignored
    local home = os.getenv("HOME")
    if not home or home:sub(1, 1) ~= "/" then return nil end
    base = home .. "/.cache"
  end
  return base .. "/awsnet/models"
end

-- What identifies the source of a cached file: "name|size|mtime" of each of `files` that exists
-- (stat(1); Lua has no stat), or nil when none does or stat cannot say.
local function source_key(files)
  local args = {}
  for i, f in ipairs(files) do args[i] = quote(f) end
  local p = io.popen("stat -L -c '%n|%s|%.9Y' -- " .. table.concat(args, " ") .. " 2>/dev/null", "r")
  if not p then return nil end
  local out = p:read("a")
  p:close()
  if not out or out == "" then return nil end
  return "awsnet " .. CACHE_FORMAT .. "\n" .. out
end

local function cache_file(dir, source, what)
  return dir .. "/" .. source:gsub("[^%w%-_%.]", "_") .. "." .. what .. ".json"
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

-- Compact JSON of a decoded model file, documentation strings left out; `ints` gets the path of
-- every table that holds a number (cjson decodes numbers as floats: the reader makes the
-- integral ones integers again, as `integers` does). Raises on what JSON cannot hold.
local function encode_compact(value, out, ints, path)
  local t = type(value)
  if t == "string" then
    out[#out + 1] = json_string(value)
  elseif t == "number" then
    if value ~= value or value == math.huge or value == -math.huge then error("not a JSON number") end
    out[#out + 1] = math.type(value) == "integer" and string.format("%d", value) or string.format("%.17g", value)
  elseif t == "boolean" then
    out[#out + 1] = tostring(value)
  elseif t == "table" then
    local n, count, numbers = #value, 0, false
    for _, v in pairs(value) do
      count = count + 1
      if type(v) == "number" then numbers = true end
    end
    if numbers then ints[#ints + 1] = table.move(path, 1, #path, 1, {}) end
    local depth = #path + 1
    if n > 0 and count == n then
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        path[depth] = i
        encode_compact(value[i], out, ints, path)
      end
      out[#out + 1] = "]"
    else
      out[#out + 1] = "{"
      local first = true
      for k, v in pairs(value) do
        if type(k) ~= "string" then error("a key that is not a string") end
        if not (k == "documentation" and type(v) == "string") then
          if not first then out[#out + 1] = "," end
          first = false
          out[#out + 1] = json_string(k)
          out[#out + 1] = ":"
          path[depth] = k
          encode_compact(v, out, ints, path)
        end
      end
      out[#out + 1] = "}"
    end
    path[depth] = nil
  else
    error("a " .. t .. " in a model")
  end
end

-- Writes `data` to the cache under `key`, atomically; a failure only means no cache.
local function cache_write(file, key, data)
  local ok, text = pcall(function()
    local out, ints = {}, {}
    encode_compact(data, out, ints, {})
    local paths = {}
    for i, p in ipairs(ints) do
      local parts = {}
      for j, k in ipairs(p) do parts[j] = type(k) == "string" and json_string(k) or string.format("%d", k) end
      paths[i] = "[" .. table.concat(parts, ",") .. "]"
    end
    return '{"format":' .. CACHE_FORMAT .. ',"key":' .. json_string(key) .. ',"ints":[' .. table.concat(paths, ",")
      .. '],"data":' .. table.concat(out) .. "}"
  end)
  if not ok then return end
  local dir = file:match("^(.*)/")
  if not os.execute("mkdir -p -- " .. quote(dir) .. " 2>/dev/null") then return end
  local tmp = string.format("%s.%d%d.tmp", file, os.time(), math.random(1, 1e9))
  local f = io.open(tmp, "wb")
  if not f then return end
  local wrote = f:write(text)
  local closed = f:close()
  if not (wrote and closed and os.rename(tmp, file)) then os.remove(tmp) end
end

-- The cached data under `key`, or nil (absent, stale, or not what this module writes).
local function cache_read(file, key)
  local f = io.open(file, "rb")
  if not f then return nil end
  local size = f:seek("end")
  f:seek("set")
  local text = size and size > 0 and f:read(size)
  f:close()
  if not text then return nil end
  json = json or require("cjson.safe").new()
  local doc = json.decode(text)
  if type(doc) ~= "table" or doc.format ~= CACHE_FORMAT or doc.key ~= key or type(doc.data) ~= "table"
    or type(doc.ints) ~= "table" then
    return nil
  end
  for _, p in ipairs(doc.ints) do
    local t = doc.data
    for _, k in ipairs(type(p) == "table" and p or {}) do
      if type(t) ~= "table" then return nil end
      t = t[k]
    end
    if type(p) ~= "table" or type(t) ~= "table" then return nil end
    for k, v in pairs(t) do
      if type(v) == "number" then
        local i = math.tointeger(v)
        if i then t[k] = i end
      end
    end
  end
  return doc.data
end

-- Reads one model file of a service (`type_name` is "service-2", "paginators-1", ...) with its sdk
-- extras merged, as botocore's Loader.load_service_model does. Nothing when the file is absent.
local function read_model_file(dir, type_name)
  local data, file_or_err = read_json(dir .. "/" .. type_name)
  if not data then return nil, file_or_err end
  local extras, err = read_json(dir .. "/" .. type_name .. ".sdk-extras")
  if not extras and err then return nil, err end
  if extras and type(extras.merge) == "table" then deep_merge(data, extras.merge) end
  return data, file_or_err
end

local function split_path(value, out)
  if type(value) == "string" then
    for entry in value:gmatch("[^:]+") do out[#out + 1] = entry end
  elseif type(value) == "table" then
    for _, entry in ipairs(value) do out[#out + 1] = entry end
  end
  return out
end

local function check_path(fname, n, value)
  if value == nil or type(value) == "string" then return end
  if type(value) ~= "table" then arg_error(fname, n, "path as a table of strings or a string", value, 4) end
  for _, entry in ipairs(value) do
    if type(entry) ~= "string" then arg_error(fname, n, "path entries as strings", entry, 4) end
  end
end

-- The folders to search, in order, without repeats or trailing slashes.
local function search_path(opts)
  local raw = {}
  if opts.path ~= nil then split_path(opts.path, raw) else split_path(config.path, raw) end
  local default = opts.default_path
  if default == nil then default = config.default_path end
  if default ~= false then
    split_path(os.getenv(ENV_VAR), raw)
    split_path(DEBIAN_PATH, raw)
  end
  local out, seen = {}, {}
  for _, dir in ipairs(raw) do
    dir = dir:gsub("(.)/+$", "%1")
    if dir ~= "" and not seen[dir] then
      seen[dir] = true
      out[#out + 1] = dir
    end
  end
  return out
end

-- The API versions of `service` in `dir` that have a service-2 file, oldest first (they are dates,
-- so string order is time order, as botocore's `max()` has it).
local function versions_in(dir, service)
  local out = {}
  local sdir = dir .. "/" .. service
  for _, v in ipairs(list_dir(sdir).names) do
    if v:match(NAME) and (file_exists(sdir .. "/" .. v .. "/service-2.json")
        or file_exists(sdir .. "/" .. v .. "/service-2.json.gz")) then
      out[#out + 1] = v
    end
  end
  table.sort(out)
  return out
end

-- The names in `dir` that may be services (a data folder's top also holds endpoints.json etc.).
local function service_dirs(dir)
  local out = {}
  for _, name in ipairs(list_dir(dir).names) do
    if name:match("^[%w][%w%-]*$") then out[#out + 1] = name end
  end
  return out
end

-- Levenshtein distance, for "did you mean" lists.
local function distance(a, b)
  if a == b then return 0 end
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    local ca = a:byte(i)
    for j = 1, #b do
      local cost = ca == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

--- The names among `candidates` nearest to `name`: case-insensitive edit distance, small enough
-- to be a typo, or a name that contains the other; closest first, at most `n`.
-- @tparam string name the name asked for
-- @tparam {string,...} candidates the known names
-- @tparam[opt] number n how many at most (default 5)
-- @treturn {string,...} the nearest names
function model.nearest(name, candidates, n)
  if type(name) ~= "string" then arg_error("nearest", 1, "string", name) end
  if type(candidates) ~= "table" then arg_error("nearest", 2, "table", candidates) end
  local lname, scored = name:lower(), {}
  local limit = math.max(2, #name // 3)
  for _, c in ipairs(candidates) do
    local lc = c:lower()
    local d = distance(lname, lc)
    local contains = #lname >= 2 and (lc:find(lname, 1, true) or lname:find(lc, 1, true))
    if d <= limit or contains then scored[#scored + 1] = { name = c, d = d } end
  end
  table.sort(scored, function(x, y)
    if x.d ~= y.d then return x.d < y.d end
    return x.name < y.name
  end)
  local out = {}
  for i = 1, math.min(n or 5, #scored) do out[i] = scored[i].name end
  return out
end

--- Sets the process-wide search path; a call's own `opts` still win. Clears the cached folder
-- listings, so folders created since are seen (models already loaded stay cached).
-- @tparam table opts {path = {folder, ...} or "dir1:dir2" (searched first), default_path = false
-- to leave out AWSNET_MODELS_PATH and the Debian locations}; `{}` restores the defaults
-- @treturn table the previous settings {path, default_path}, to restore them with
-- @raise on options of the wrong type
function model.configure(opts)
  if type(opts) ~= "table" then arg_error("configure", 1, "table", opts) end
  check_path("configure", 1, opts.path)
  local previous = { path = config.path, default_path = config.default_path }
  config.path = opts.path
  config.default_path = opts.default_path ~= false
  listings = {}
  return previous
end

--- Sets the process-wide cache folder of preprocessed models (see the module's introduction).
-- @tparam string|false|nil where an absolute folder, false for no cache, nil for the default
-- (AWSNET_MODELS_CACHE, XDG_CACHE_HOME, HOME)
-- @treturn string|false|nil the previous setting, to restore it with
-- @raise when `where` is neither an absolute folder, false nor nil
function model.set_cache(where)
  if where ~= nil and where ~= false and not (type(where) == "string" and where:sub(1, 1) == "/") then
    arg_error("set_cache", 1, "absolute folder, false or nil", where)
  end
  local previous = config.cache
  config.cache = where
  return previous
end

--- The folders searched, in order (for messages and for users who wonder where models come from).
-- @tparam[opt] table opts {path, default_path} as for `model.load`
-- @treturn {string,...} the data folders
function model.search_path(opts)
  opts = check_opts("search_path", 1, opts)
  check_path("search_path", 1, opts.path)
  return search_path(opts)
end

local function describe_folders(folders)
  local parts = {}
  for i, dir in ipairs(folders) do
    local l = list_dir(dir)
    parts[i] = dir .. ((not l.exists and " (missing)") or (#l.names == 0 and " (empty)") or "")
  end
  return #parts > 0 and table.concat(parts, ", ") or "no folder (the search path is empty)"
end

local function not_found(service, folders, api_version, versions)
  local fields = { service = service, searched = folders, api_version = api_version }
  local known = {}
  local seen = {}
  for _, dir in ipairs(folders) do
    for _, name in ipairs(service_dirs(dir)) do
      if not seen[name] then seen[name] = true; known[#known + 1] = name end
    end
  end
  local where = "looked in " .. describe_folders(folders)
  if #known == 0 then
    return errors.fail("model_not_found", string.format("no AWS service models found for %q: %s; %s",
      service, where, INSTALL_HINT), fields)
  end
  if versions then
    fields.versions = versions
    return errors.fail("model_not_found", string.format("no API version %s of %q (found: %s); %s",
      api_version, service, table.concat(versions, ", "), where), fields)
  end
  table.sort(known)
  fields.suggestions = model.nearest(service, known)
  local near = #fields.suggestions > 0 and (" (nearest: " .. table.concat(fields.suggestions, ", ") .. ")") or ""
  return errors.fail("model_not_found", string.format("unknown AWS service %q%s: %s; a newer botocore may know it: %s",
    service, near, where, INSTALL_HINT), fields)
end

--- Where a service's model is: the first folder on the search path that has the service, and
-- there its newest API version (or `opts.api_version`, looked for in every folder). A folder
-- earlier on the path overrides later ones even when they hold newer versions (botocore instead
-- takes the newest version of all its folders): a folder put first is meant to decide.
-- @tparam string service the service's name in botocore ("ec2", "elbv2", "s3", ...)
-- @tparam[opt] table opts {api_version, path, default_path} (see the module's introduction)
-- @treturn table {service, api_version, folder (the data folder), dir (folder/service/version),
-- versions (that folder's versions, oldest first)}, or nil, err ("model_not_found", with
-- `searched`, the folders, and `suggestions` for an unknown service)
-- @raise when `service` is not a string
function model.find(service, opts)
  if type(service) ~= "string" then arg_error("find", 1, "string", service) end
  opts = check_opts("find", 2, opts)
  check_path("find", 2, opts.path)
  local want = opts.api_version
  if want ~= nil and type(want) ~= "string" then arg_error("find", 2, "api_version as a string", want) end
  local folders = search_path(opts)
  local first_versions
  if service:match("^[%w][%w%-]*$") and (want == nil or want:match(NAME)) then
    for _, dir in ipairs(folders) do
      local versions = versions_in(dir, service)
      local pick
      if want == nil then
        pick = versions[#versions]
      else
        for _, v in ipairs(versions) do if v == want then pick = v end end
      end
      if pick then
        return { service = service, api_version = pick, folder = dir,
          dir = dir .. "/" .. service .. "/" .. pick, versions = versions }
      end
      if #versions > 0 and not first_versions then first_versions = versions end
    end
  end
  return not_found(service, folders, want, first_versions)
end

--- All service names found on the search path, sorted (a service counts when one of its API
-- version folders holds a service-2 file, as for botocore's `list_available_services`).
-- @tparam[opt] table opts {path, default_path}
-- @treturn {string,...} the names
function model.services(opts)
  opts = check_opts("services", 1, opts)
  check_path("services", 1, opts.path)
  local seen = {}
  for _, dir in ipairs(search_path(opts)) do
    -- one `find` per folder: an `ls` per service would start hundreds of processes
    local p = io.popen("find " .. quote(dir) .. " -mindepth 3 -maxdepth 3 \\( -name service-2.json -o -name "
      .. "service-2.json.gz \\) 2>/dev/null", "r")
    for line in p:lines() do
      local name = line:sub(#dir + 2):match("^([^/]+)/")
      if name then seen[name] = true end
    end
    p:close()
  end
  return sorted_keys(seen)
end

--- The parsed `endpoints.json` (its `partitions` and `version`) of the first folder on the search
-- path that has one. Read on first use, then cached.
-- @tparam[opt] table opts {path, default_path}
-- @treturn table the decoded file, or nil, err ("model_not_found", "invalid_model")
function model.endpoints(opts)
  opts = check_opts("endpoints", 1, opts)
  check_path("endpoints", 1, opts.path)
  local folders = search_path(opts)
  for _, dir in ipairs(folders) do
    if endpoint_docs[dir] then return endpoint_docs[dir] end
    local doc, err = read_json(dir .. "/endpoints")
    if doc then
      endpoint_docs[dir] = doc
      return doc
    elseif err then
      return nil, err
    end
  end
  return errors.fail("model_not_found", "no endpoints.json found: looked in " .. describe_folders(folders) ..
    "; " .. INSTALL_HINT, { searched = folders })
end

--- What a client's default endpoint needs of `endpoints.json` (that of `model.endpoints`): each
-- partition's name and DNS suffix, and its global services (not regionalized, with a partition
-- endpoint) with that endpoint's entry. Read through the cache (see the module's introduction),
-- then kept for the process.
-- @tparam[opt] table opts {path, default_path}
-- @treturn table {partitions = {{partition, dnsSuffix, services = {[name] = {isRegionalized,
-- partitionEndpoint, endpoints = {[partitionEndpoint] = {hostname, credentialScope}}}}}, ...}}, or
-- nil, err as for `model.endpoints`
function model.partitions(opts)
  opts = check_opts("partitions", 1, opts)
  check_path("partitions", 1, opts.path)
  local folders = search_path(opts)
  for _, dir in ipairs(folders) do
    if partition_docs[dir] then return partition_docs[dir] end
    local base = dir .. "/endpoints"
    if file_exists(base .. ".json") or file_exists(base .. ".json.gz") then
      local cdir, key, file = cache_dir()
      if cdir and not endpoint_docs[dir] then
        key = source_key({ base .. ".json", base .. ".json.gz" })
        file = key and cache_file(cdir, dir, "endpoints")
        local data = file and cache_read(file, key)
        if data and type(data.partitions) == "table" then
          partition_docs[dir] = data
          return data
        end
      end
      local doc, err = model.endpoints({ path = { dir }, default_path = false })
      if not doc then return nil, err end
      local out = { partitions = {} }
      for i, part in ipairs(type(doc.partitions) == "table" and doc.partitions or {}) do
        local services = {}
        for name, svc in pairs(type(part.services) == "table" and part.services or {}) do
          local pe = type(svc) == "table" and svc.isRegionalized == false and svc.partitionEndpoint
          if pe then
            services[name] = { isRegionalized = false, partitionEndpoint = pe,
              endpoints = { [pe] = type(svc.endpoints) == "table" and svc.endpoints[pe] or nil } }
          end
        end
        out.partitions[i] = { partition = part.partition, dnsSuffix = part.dnsSuffix, services = services }
      end
      if file then cache_write(file, key, out) end
      partition_docs[dir] = out
      return out
    end
  end
  return model.endpoints(opts)
end

local Model = {}
Model.__name = "awsnet.aws.model"

function Model.__tostring(m)
  return string.format("awsnet.aws.model: %s %s (%s)", tostring(m.service), tostring(m.api_version),
    tostring(m.metadata.protocol))
end

-- `m.operations` is both the operations table of the model file (`m.operations.DescribeVpcs`) and
-- the method `m:operations()`: calling the table lists its names.
local OPERATIONS_MT = {
  __call = function(ops)
    return sorted_keys(ops)
  end,
}

--- The names of the model's operations, sorted, as `m:operations()`. (`m.operations` itself is the
-- model file's table of operations by name; calling it lists the names.)
-- @within Model
-- @function Model:operations
-- @treturn {string,...} the names

local function new_model(data, info)
  local ops = {}
  for name, op in pairs(data.operations) do ops[name] = op end
  return setmetatable({
    metadata = data.metadata,
    shapes = data.shapes,
    operations = setmetatable(ops, OPERATIONS_MT),
    documentation = data.documentation,
    service = info.service,
    api_version = info.api_version,
    folder = info.folder,
    dir = info.dir,
    _pagination = info.pagination,
    _waiters = info.waiters,
  }, Model)
end

-- The shape names a shape or operation refers to, with where, for validation.
local function each_ref(data, fn)
  for name, op in pairs(data.operations) do
    if type(op) ~= "table" then
      fn(nil, "operation " .. tostring(name) .. " is not a table")
    else
      if op.input then fn(op.input, "operation " .. name .. " input") end
      if op.output then fn(op.output, "operation " .. name .. " output") end
      for i, e in ipairs(type(op.errors) == "table" and op.errors or {}) do
        fn(e, string.format("operation %s error %d", name, i))
      end
    end
  end
  for name, shape in pairs(data.shapes) do
    if type(shape) ~= "table" or type(shape.type) ~= "string" then
      fn(nil, "shape " .. tostring(name) .. " has no type")
    else
      local where = "shape " .. name
      if shape.type == "structure" then
        for mname, ref in pairs(type(shape.members) == "table" and shape.members or {}) do
          fn(ref, where .. " member " .. tostring(mname))
        end
      elseif shape.type == "list" then
        fn(shape.member, where .. " member")
      elseif shape.type == "map" then
        fn(shape.key, where .. " key")
        fn(shape.value, where .. " value")
      end
    end
  end
end

local function validate(data)
  local problems = {}
  local function problem(fmt, ...) problems[#problems + 1] = string.format(fmt, ...) end
  for _, key in ipairs({ "metadata", "shapes", "operations" }) do
    if type(data[key]) ~= "table" then problem("%s must be a table (got %s)", key, type(data[key])) end
  end
  if #problems == 0 then
    local protocol = data.metadata.protocol
    if not PROTOCOLS[protocol] then
      problem("metadata.protocol %s is not one of %s", tostring(protocol), PROTOCOL_LIST)
    end
    each_ref(data, function(ref, where)
      if ref == nil then
        problem("%s", where)
      elseif type(ref) ~= "table" or type(ref.shape) ~= "string" then
        problem("%s has no shape reference", where)
      elseif type(data.shapes[ref.shape]) ~= "table" then
        problem("%s refers to unknown shape %s", where, ref.shape)
      end
    end)
  end
  table.sort(problems)
  return problems
end

local function load_table(data, opts)
  local problems = validate(data)
  if #problems > 0 then
    local shown = {}
    for i = 1, math.min(5, #problems) do shown[i] = problems[i] end
    return errors.fail("invalid_model", string.format("invalid service model (%d problem%s): %s%s", #problems,
      #problems == 1 and "" or "s", table.concat(shown, "; "), #problems > 5 and "; ..." or ""),
      { problems = problems })
  end
  local md = data.metadata
  return new_model(data, {
    service = opts.service or data.service or md.endpointPrefix or md.serviceId,
    api_version = md.apiVersion,
    pagination = data.paginators or {},
    waiters = data.waiters or {},
  })
end

--- Loads a service's model, or checks one given as a table.
-- By name: reads `service-2.json` (or `.json.gz`) with its sdk extras merged; `paginators-1.json`
-- and `waiters-2.json` are read when first asked for. One load per (folder, service, API version)
-- per process: loading it again returns the same object, which callers must not change.
-- As a table `{metadata =, shapes =, operations =, paginators =, waiters =}` (the last two as the
-- `pagination` and `waiters` objects of botocore's files, optional): checked (a protocol awsnet
-- speaks, every shape reference resolves) and wrapped; its tables are shared, not copied.
-- @tparam string|table service_or_table the service's botocore name ("ec2", "elbv2", ...) or a model
-- @tparam[opt] table opts {api_version, path, default_path} as for `model.find`; `service` names a
-- table model (default: its metadata.endpointPrefix)
-- @treturn Model the model {metadata, shapes, operations, documentation, service, api_version,
-- folder, dir}, or nil, err ("model_not_found", "invalid_model" with `problems`)
-- @raise when the first argument is neither a string nor a table
function model.load(service_or_table, opts)
  opts = check_opts("load", 2, opts)
  if type(service_or_table) == "table" then return load_table(service_or_table, opts) end
  if type(service_or_table) ~= "string" then arg_error("load", 1, "service name or model table", service_or_table) end
  local found, err = model.find(service_or_table, opts)
  if not found then return nil, err end
  local cached = models[found.dir]
  if cached then return cached end
  local cdir, key, file = cache_dir()
  if cdir then
    local base = found.dir .. "/service-2"
    key = source_key({ base .. ".json", base .. ".json.gz", base .. ".sdk-extras.json", base .. ".sdk-extras.json.gz" })
    file = key and cache_file(cdir, found.dir, "service-2")
    local data = file and cache_read(file, key)
    if data and type(data.metadata) == "table" and type(data.shapes) == "table"
      and type(data.operations) == "table" then
      local m = new_model(data, found)
      m._docs_pending = true
      models[found.dir] = m
      return m
    end
  end
  local data, file_or_err = read_model_file(found.dir, "service-2")
  if not data then return nil, file_or_err end
  if type(data.metadata) ~= "table" or type(data.shapes) ~= "table" or type(data.operations) ~= "table" then
    return errors.fail("invalid_model", file_or_err .. " has no metadata, shapes or operations",
      { file = file_or_err })
  end
  if file then cache_write(file, key, data) end
  local m = new_model(data, found)
  models[found.dir] = m
  return m
end

-- Copies the documentation strings of `src` (the source's decoded file) into `dst` (its cached
-- copy, which has none), table by table.
local function graft_docs(dst, src)
  for k, v in pairs(src) do
    if k == "documentation" and type(v) == "string" then
      if rawget(dst, k) == nil then rawset(dst, k, v) end
    elseif type(v) == "table" and type(rawget(dst, k)) == "table" then
      graft_docs(rawget(dst, k), v)
    end
  end
end

-- A model read from the cache gets its documentation strings from the source when they are first
-- asked for; a source that cannot be read leaves them absent.
local function ensure_docs(m)
  if not rawget(m, "_docs_pending") then return end
  rawset(m, "_docs_pending", nil)
  local data = read_model_file(m.dir, "service-2")
  if type(data) ~= "table" then return end
  for _, field in ipairs({ "metadata", "shapes", "operations" }) do
    if type(data[field]) == "table" then graft_docs(m[field], data[field]) end
  end
  if type(data.documentation) == "string" then rawset(m, "documentation", data.documentation) end
end

function Model.__index(m, k)
  if k == "documentation" and rawget(m, "_docs_pending") then
    ensure_docs(m)
    return rawget(m, "documentation")
  end
  return Model[k]
end

local function operation_names(m)
  return sorted_keys(m.operations)
end

--- An operation's definition {name, http, input, output, errors, documentation, ...}.
-- @within Model
-- @tparam string name the operation's name ("DescribeVpcs")
-- @treturn table the operation, or nil, err ("unknown_operation", with `suggestions`)
-- @raise when `name` is not a string
function Model:operation(name)
  if type(name) ~= "string" then arg_error("operation", 1, "string", name) end
  local op = rawget(self.operations, name)
  if op then
    ensure_docs(self)
    return op
  end
  local near = model.nearest(name, operation_names(self))
  return errors.fail("unknown_operation", string.format("%s has no operation %q%s", tostring(self.service), name,
    #near > 0 and (" (nearest: " .. table.concat(near, ", ") .. ")") or ""),
    { operation = name, service = self.service, suggestions = near })
end

--- A shape's definition {type, members, required, member, key, value, ...}.
-- @within Model
-- @tparam string name the shape's name
-- @treturn table the shape, or nil, err ("unknown_shape", with `suggestions`)
-- @raise when `name` is not a string
function Model:shape(name)
  if type(name) ~= "string" then arg_error("shape", 1, "string", name) end
  local s = self.shapes[name]
  if s then
    ensure_docs(self)
    return s
  end
  local near = model.nearest(name, sorted_keys(self.shapes))
  return errors.fail("unknown_shape", string.format("%s has no shape %q", tostring(self.service), name),
    { shape = name, service = self.service, suggestions = near })
end

-- Reads an optional companion file (paginators-1, waiters-2) once; `key` is its top-level object.
local function companion(m, field, type_name, key)
  if m[field] then return m[field] end
  local data, err = read_model_file(m.dir, type_name)
  if not data and err then return nil, err end
  m[field] = data and type(data[key]) == "table" and data[key] or {}
  return m[field]
end

--- How an operation pages {input_token, output_token, limit_key, result_key, more_results, ...},
-- from paginators-1.json (read on first use).
-- @within Model
-- @tparam string op the operation's name
-- @treturn table the paginator, or nil, err ("unknown_operation", "no_paginator", "invalid_model")
-- @raise when `op` is not a string
function Model:paginator(op)
  if type(op) ~= "string" then arg_error("paginator", 1, "string", op) end
  -- by the operations table itself: `operation` would read the model's documentation, which
  -- paging does not need (a second of CPU for EC2's)
  if not rawget(self.operations, op) then
    local _, oerr = self:operation(op)
    if oerr then return nil, oerr end
  end
  local pages, err = companion(self, "_pagination", "paginators-1", "pagination")
  if not pages then return nil, err end
  local p = pages[op]
  if p then return p end
  return errors.fail("no_paginator", string.format("%s %s does not page", tostring(self.service), op),
    { operation = op, service = self.service })
end

--- A waiter {operation, delay, maxAttempts, acceptors}, from waiters-2.json (read on first use).
-- @within Model
-- @tparam string name the waiter's name ("VpcAvailable")
-- @treturn table the waiter, or nil, err ("unknown_waiter" with `suggestions`, "invalid_model")
-- @raise when `name` is not a string
function Model:waiter(name)
  if type(name) ~= "string" then arg_error("waiter", 1, "string", name) end
  local all, err = companion(self, "_waiters", "waiters-2", "waiters")
  if not all then return nil, err end
  if all[name] then return all[name] end
  local near = model.nearest(name, sorted_keys(all))
  return errors.fail("unknown_waiter", string.format("%s has no waiter %q%s", tostring(self.service), name,
    #near > 0 and (" (nearest: " .. table.concat(near, ", ") .. ")") or ""),
    { waiter = name, service = self.service, suggestions = near })
end

--- The names of the service's waiters, sorted.
-- @within Model
-- @treturn {string,...} the names (empty when the service has none), or nil, err ("invalid_model")
function Model:waiters()
  local all, err = companion(self, "_waiters", "waiters-2", "waiters")
  if not all then return nil, err end
  return sorted_keys(all)
end

local BLOCK_TAGS = { p = true, br = true, ul = true, ol = true, li = true, div = true, dl = true, dt = true,
  dd = true, note = true, important = true, h1 = true, h2 = true, h3 = true, h4 = true, pre = true, [""] = true }
local ENTITIES = { lt = "<", gt = ">", amp = "&", quot = '"', apos = "'", nbsp = " " }

--- The first sentence of a model's documentation, as plain text (HTML tags and entities gone).
-- @tparam ?string html the `documentation` field
-- @treturn string the sentence ("" when there is none)
function model.first_sentence(html)
  if type(html) ~= "string" then return "" end
  -- the first paragraph, when there are paragraphs: a list after it does not continue its sentence
  html = html:match("<p>(.-)</p>") or html
  -- a block's tag separates words, an inline one (<b>, <code>, <a>) does not
  local text = html:gsub("<(/?)(%w*)[^>]*>", function(_, tag)
    return BLOCK_TAGS[tag:lower()] and " " or ""
  end):gsub("&(#?%w+);", function(e)
    local code = tonumber(e:match("^#(%d+)$") or "") or tonumber(e:match("^#[xX](%x+)$") or "", 16)
    if code then return code < 0x110000 and utf8.char(code) or nil end
    return ENTITIES[e]
  end):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  -- a sentence ends at ". " before a capital letter ("e.g. the" does not end one)
  local s = text:match("^(.-[%.%?!])%s+[%u%d\"(<]")
  return s or text
end

-- A member's type in words, one level deep: "string", "list of Tag", "map of string to string",
-- "structure Placement".
local function type_words(m, ref, nested)
  local s = m.shapes[ref.shape]
  if not s then return "?" .. tostring(ref.shape) end
  if nested then
    if s.type == "structure" or s.type == "list" or s.type == "map" then return ref.shape end
    return s.type
  end
  if s.type == "list" then return "list of " .. type_words(m, s.member, true) end
  if s.type == "map" then
    return "map of " .. type_words(m, s.key, true) .. " to " .. type_words(m, s.value, true)
  end
  if s.type == "structure" then return (s.union and "union " or "structure ") .. ref.shape end
  if type(s.enum) == "table" and #s.enum > 0 then
    if #s.enum <= 6 then return s.type .. ", one of " .. table.concat(s.enum, "|") end
    return string.format("%s, one of %d values", s.type, #s.enum)
  end
  return s.type
end

--- An operation's help: its documentation's first sentence, then each input member with its type
-- and whether it is required (required members first, each group by name), then the output's
-- member names and how it pages.
-- @within Model
-- @tparam string op the operation's name
-- @treturn string the text, or nil, err ("unknown_operation")
-- @raise when `op` is not a string
function Model:help(op)
  if type(op) ~= "string" then arg_error("help", 1, "string", op) end
  ensure_docs(self)
  local o, err = self:operation(op)
  if not o then return nil, err end
  local lines = { string.format("%s (%s %s)", op, tostring(self.service), tostring(self.api_version)) }
  local doc = model.first_sentence(o.documentation)
  if doc ~= "" then lines[#lines + 1] = "  " .. doc end
  local input = o.input and self.shapes[o.input.shape]
  local names = {}
  for name in pairs(input and input.members or {}) do names[#names + 1] = name end
  if #names == 0 then
    lines[#lines + 1] = "Input: none"
  else
    local required = {}
    for _, r in ipairs(input.required or {}) do required[r] = true end
    table.sort(names, function(a, b)
      if (required[a] or false) ~= (required[b] or false) then return required[a] == true end
      return a < b
    end)
    lines[#lines + 1] = string.format("Input (%s):", o.input.shape)
    local rows, wname, wtype = {}, 0, 0
    for i, name in ipairs(names) do
      local ref = input.members[name]
      rows[i] = { name, type_words(self, ref, false), required[name] and "required" or "",
        model.first_sentence(ref.documentation) }
      wname, wtype = math.max(wname, #name), math.max(wtype, #rows[i][2])
    end
    -- padded by hand: string.format takes widths up to 99, and a type can be longer
    local function pad(text, width) return text .. string.rep(" ", width - #text) end
    for _, r in ipairs(rows) do
      local line = "  " .. pad(r[1], wname) .. "  " .. pad(r[2], wtype) .. "  " .. pad(r[3], 8) .. "  " .. r[4]
      lines[#lines + 1] = (line:gsub("%s+$", ""))
    end
  end
  local output = o.output and self.shapes[o.output.shape]
  if output and output.members then
    lines[#lines + 1] = string.format("Output (%s): %s", o.output.shape, table.concat(sorted_keys(output.members), ", "))
  end
  local pages = self:paginator(op)
  if pages then
    -- a token may be a list of several (botocore's multi-token paginators)
    local function words(v) return type(v) == "table" and table.concat(v, ", ") or tostring(v) end
    lines[#lines + 1] = string.format("Pages: output %s -> input %s", words(pages.output_token),
      words(pages.input_token))
  end
  return table.concat(lines, "\n") .. "\n"
end

return model
