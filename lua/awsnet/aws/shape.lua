--- Walking a service model's shapes: member traits, and checking a request's parameters against
-- the input shape before anything is serialised.
--
-- `shape.check` is botocore's ParamValidator plus what its serializers assume: it refuses an
-- unknown member, a value of the wrong type and a missing required member with
-- `nil, err{code = "invalid_parameter", path = "IpPermissions[1].FromPort", message}` (list
-- positions count from 1, as Lua's do), and returns a normalised copy: JSON nulls dropped,
-- timestamps as epoch seconds (given as a number or an ISO 8601 / RFC 822 string), integral
-- floats as integers, and idempotency tokens filled with a new UUID v4 when absent.
-- @module awsnet.aws.shape
local errors = require "awsnet.errors"
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
local scalar = require "awsnet.aws.protocol.scalar"

local shape = {}

--- A trait of a member: the reference's own, else its shape's (botocore merges both into
-- `shape.serialization`).
-- @tparam table ref the member reference {shape = name, locationName = ..., ...}
-- @tparam table s the shape it refers to
-- @tparam string name the trait ("locationName", "flattened", "timestampFormat", ...)
-- @return the trait's value, or nil
function shape.trait(ref, s, name)
  local v = ref[name]
  if v == nil then v = s[name] end
  return v
end

local names_cache = setmetatable({}, { __mode = "k" }) -- members table -> its names in order

--- The members of a structure in model order (the order of the model file when it was decoded
-- by `jsoncodec`, else sorted by name).
-- @tparam table s a structure shape
-- @treturn {string,...} member names
function shape.member_names(s)
  local members = s.members
  if not members then return {} end
  -- computed once per shape (a model is not changed once loaded): jsoncodec.keys sorts the names
  -- of a model decoded without key order, which would otherwise happen at each request
  local names = names_cache[members]
  if not names then
    names = jsoncodec.keys(members)
    names_cache[members] = names
  end
  return names
end

--- True for a value the protocols treat as absent (nil or JSON null).
-- @param v the value
-- @treturn boolean
function shape.absent(v)
  return v == nil or v == jsoncodec.null
end

local function invalid(path, fmt, ...)
  return errors.fail("invalid_parameter", string.format("%s: " .. fmt, path == "" and "input" or path, ...),
    { path = path })
end

-- The path of the value being checked is kept as a stack of names and list positions, and only
-- made into text ("IpPermissions[1].FromPort") for an error: a string per value checked would cost
-- more than the check.
local function render(p)
  local path = ""
  for i = 1, p.n do
    local seg = p[i]
    if math.type(seg) == "integer" then
      path = path .. "[" .. seg .. "]"
    else
      path = path == "" and seg or (path .. "." .. seg)
    end
  end
  return path
end

local function is_list(v)
  return type(v) == "table" and (next(v) == nil or jsoncodec.is_array(v))
end

local check

-- Checks `v` as the value of `ref` under name or position `seg` of the current path.
local function check_at(m, ref, v, p, seg)
  local n = p.n + 1
  p[n], p.n = seg, n
  local nv, err = check(m, ref, v, p)
  p.n = n - 1
  return nv, err
end

local function invalid_at(p, seg, fmt, ...)
  p.n = p.n + 1
  p[p.n] = seg
  return invalid(render(p), fmt, ...)
end

local function check_structure(m, s, v, p)
  if type(v) ~= "table" or (next(v) ~= nil and jsoncodec.is_array(v)) then
    return invalid(render(p), "expected a structure (table), got %s", type(v))
  end
  local members = s.members or {}
  local out, set = {}, 0
  for k in pairs(v) do
    if type(k) ~= "string" or not members[k] then
      local names = shape.member_names(s)
      return invalid_at(p, tostring(k), "unknown parameter %s, must be one of: %s", tostring(k),
        #names > 0 and table.concat(names, ", ") or "(none)")
    end
  end
  local names = shape.member_names(s)
  local null = jsoncodec.null
  for i = 1, #names do
    local name = names[i]
    local ref = members[name]
    local value = v[name]
    if (value == nil or value == null) and ref.idempotencyToken then value = scalar.uuid4() end
    if value ~= nil and value ~= null then
      local nv, err = check_at(m, ref, value, p, name)
      if err then return nil, err end
      out[name] = nv
      set = set + 1
    end
  end
  for _, name in ipairs(s.required or {}) do
    if out[name] == nil then return invalid_at(p, name, "missing required parameter %s", name) end
  end
  if s.union and set > 1 then
    return invalid(render(p), "a union takes one member, got %d", set)
  end
  -- the member order (jsoncodec.keys skips the names `out` does not have)
  return jsoncodec.with_keys(out, names)
end

function check(m, ref, v, p)
  local s = m.shapes[ref.shape]
  local t = s.type
  if s.document then return v end -- any JSON value
  if t == "structure" then return check_structure(m, s, v, p) end
  if t == "string" then
    if type(v) == "string" then return v end
    if shape.trait(ref, s, "jsonvalue") then return v end
    return invalid(render(p), "expected a string, got %s", type(v))
  end
  if t == "list" then
    if not is_list(v) then return invalid(render(p), "expected a list (array), got %s", type(v)) end
    local out = jsoncodec.array()
    local mref = s.member
    for i, item in ipairs(v) do
      local nv, err = check_at(m, mref, item, p, i)
      if err then return nil, err end
      out[i] = nv
    end
    return out
  end
  if t == "map" then
    if type(v) ~= "table" or (next(v) ~= nil and jsoncodec.is_array(v)) then
      return invalid(render(p), "expected a map (table), got %s", type(v))
    end
    local out, order = {}, {}
    for _, k in ipairs(jsoncodec.keys(v)) do
      if type(k) ~= "string" then return invalid(render(p), "map keys must be strings, got %s", type(k)) end
      local item = v[k]
      if not shape.absent(item) then
        local nv, err = check_at(m, s.value, item, p, k)
        if err then return nil, err end
        out[k] = nv
        order[#order + 1] = k
      end
    end
    return jsoncodec.with_keys(out, order)
  end
  if t == "integer" or t == "long" or t == "short" or t == "byte" then
    local i = type(v) == "number" and math.tointeger(v)
    if not i then return invalid(render(p), "expected an integer, got %s", tostring(v)) end
    return i
  end
  if t == "float" or t == "double" then
    -- the protocols' names for the values JSON has no text for
    if v == "NaN" or v == "Infinity" or v == "-Infinity" then return scalar.float(v) end
    if type(v) ~= "number" then return invalid(render(p), "expected a number, got %s", type(v)) end
    return v
  end
  if t == "boolean" then
    if type(v) ~= "boolean" then return invalid(render(p), "expected a boolean, got %s", type(v)) end
    return v
  end
  if t == "blob" then
    if type(v) ~= "string" then return invalid(render(p), "expected a blob (string of bytes), got %s", type(v)) end
    return v
  end
  if t == "timestamp" then
    local e = scalar.to_epoch(v)
    if not e then
      return invalid(render(p), "expected a timestamp (epoch seconds or an ISO 8601 string), got %s", tostring(v))
    end
    return e
  end
  return v -- document and types the model may add: passed as given
end

local HTTP_BOUND = { header = true, headers = true, statusCode = true }

--- True for an output member read from the HTTP status or headers rather than the body (a
-- member bound to the URI or the query string is read from the body, as botocore does).
-- @tparam table ref the member reference
-- @treturn boolean
function shape.http_bound(ref)
  return HTTP_BOUND[ref.location] == true
end

-- shape.error_shape's index of each model's `error.code` traits (weak: it goes with the model).
local error_codes = setmetatable({}, { __mode = "k" })

--- The error shape for an AWS error code: the structure of that name, or the one whose `error.code`
-- trait is that code (awsQueryCompatible and customised codes).
-- @tparam table m the model
-- @tparam string code the AWS error code
-- @treturn ?string the shape's name
function shape.error_shape(m, code)
  local s = m.shapes[code]
  if s and s.type == "structure" then return code end
  -- the codes named by an `error.code` trait, per model, found in one pass over its shapes
  local by_code = error_codes[m.shapes]
  if not by_code then
    by_code = {}
    for name, sh in pairs(m.shapes) do
      if type(sh) == "table" and type(sh.error) == "table" and sh.type == "structure" and sh.error.code ~= nil
          and by_code[sh.error.code] == nil then
        by_code[sh.error.code] = name
      end
    end
    error_codes[m.shapes] = by_code
  end
  return by_code[code]
end

-- The common case is checked in C (core.queryform, see csrc/queryform.h) by a plan compiled once
-- per model and input: structures, lists and plain scalars, copied as `check` copies them. The
-- plan gives up (nil) on anything else, including every error, and `check` above then decides.
local has_core, core = pcall(require, "awsnet.core")
local queryform = has_core and type(core) == "table" and core.queryform or nil

local SCALAR_KIND = { string = "string", integer = "integer", long = "integer", short = "integer",
  byte = "integer", float = "float", double = "float", boolean = "boolean", blob = "blob" }

-- True when `names` are in the order jsoncodec.keys gives a table that has none of its own.
local function in_key_order(names)
  for i = 2, #names do
    if tostring(names[i - 1]) >= tostring(names[i]) then return false end
  end
  return true
end

-- core.queryform's description of the shapes under `ref`, as `check` above reads them.
local function plan_desc(m, ref)
  local nodes, index = {}, {}
  local function node(r)
    local s = m.shapes[r.shape]
    local json_value = s and s.type == "string" and shape.trait(r, s, "jsonvalue") and true or false
    local id = tostring(r.shape) .. (json_value and "/j" or "")
    if index[id] then return index[id] end
    local n = #nodes + 1
    local d = {}
    nodes[n], index[id] = d, n
    local t = s and s.type
    if not s then
      d.kind = "other"
    elseif s.document or json_value then
      d.kind = "any"
    elseif t == "structure" then
      local names, at = shape.member_names(s), {}
      d.kind, d.members = s.union and "other" or "structure", {}
      for i, name in ipairs(names) do
        local mref = s.members[name]
        at[name] = i
        d.members[i] = { name = name, node = node(mref), idempotent = mref.idempotencyToken and true or false }
      end
      for _, rname in ipairs(s.required or {}) do
        if at[rname] then d.members[at[rname]].required = true else d.kind = "other" end
      end
      if not in_key_order(names) then d.order = names end
    elseif t == "list" then
      d.kind, d.item = "list", node(s.member)
    elseif t == "map" or t == "timestamp" then
      d.kind = "other"
    else
      d.kind = SCALAR_KIND[t] or "any"
    end
    return n
  end
  node(ref)
  return { nodes = nodes, null = jsoncodec.null, array_mt = jsoncodec.array_mt, with_keys = jsoncodec.with_keys }
end

--- A cache of what `compile(m, key)` makes once per model and key (a compiled C plan), false
-- where it makes nothing; the models are weak keys, so a dropped model takes its plans along.
-- @tparam function compile (m, key) -> plan, or nil/false when the shape has none
-- @treturn function (m, key) -> the plan, or false
function shape.plan_cache(compile)
  local plans = setmetatable({}, { __mode = "k" }) -- model -> key -> plan or false
  return function(m, key)
    local by_key = plans[m]
    if not by_key then
      by_key = {}
      plans[m] = by_key
    end
    local plan = by_key[key]
    if plan == nil then
      plan = compile(m, key) or false
      by_key[key] = plan
    end
    return plan
  end
end

-- a shape the C plan cannot describe makes describing or compiling raise: the Lua check runs then
local plan_for = shape.plan_cache(function(m, ref)
  local ok, compiled = pcall(function() return queryform.compile(plan_desc(m, ref)) end)
  return ok and compiled
end)

--- Checks parameters against an operation's input shape and returns them normalised.
-- @tparam table m the model (awsnet.aws.model)
-- @tparam ?table ref the operation's `input` reference (nil: the operation takes no input)
-- @tparam ?table params the parameters (nil: none)
-- @treturn table the normalised parameters, or nil, err ("invalid_parameter" with `path`)
function shape.check(m, ref, params)
  if params == nil then params = {} end
  if not ref then
    if type(params) == "table" and next(params) ~= nil then
      return invalid("", "the operation takes no parameters")
    end
    return {}
  end
  local plan = queryform and plan_for(m, ref)
  if plan then
    local out = queryform.check(plan, params)
    if out ~= nil then return out end
  end
  return check(m, ref, params, { n = 0 })
end

return shape
