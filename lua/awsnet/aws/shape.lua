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

--- The members of a structure in model order (the order of the model file when it was decoded
-- by `jsoncodec`, else sorted by name).
-- @tparam table s a structure shape
-- @treturn {string,...} member names
function shape.member_names(s)
  return jsoncodec.keys(s.members or {})
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

local function join(path, name)
  return path == "" and name or (path .. "." .. name)
end

local function is_list(v)
  return type(v) == "table" and (next(v) == nil or jsoncodec.is_array(v))
end

local check

local function check_structure(m, s, v, path)
  if type(v) ~= "table" or (next(v) ~= nil and jsoncodec.is_array(v)) then
    return invalid(path, "expected a structure (table), got %s", type(v))
  end
  local members = s.members or {}
  local out, order, set = {}, {}, 0
  for k in pairs(v) do
    if type(k) ~= "string" or not members[k] then
      local names = shape.member_names(s)
      return invalid(join(path, tostring(k)), "unknown parameter %s, must be one of: %s", tostring(k),
        #names > 0 and table.concat(names, ", ") or "(none)")
    end
  end
  for _, name in ipairs(shape.member_names(s)) do
    local ref = members[name]
    local value = v[name]
    if shape.absent(value) and ref.idempotencyToken then value = scalar.uuid4() end
    if not shape.absent(value) then
      local nv, err = check(m, ref, value, join(path, name))
      if err then return nil, err end
      out[name] = nv
      order[#order + 1] = name
      set = set + 1
    end
  end
  for _, name in ipairs(s.required or {}) do
    if out[name] == nil then return invalid(join(path, name), "missing required parameter %s", name) end
  end
  if s.union and set > 1 then
    return invalid(path, "a union takes one member, got %d", set)
  end
  return jsoncodec.with_keys(out, order)
end

function check(m, ref, v, path)
  local s = m.shapes[ref.shape]
  local t = s.type
  if s.document then return v end -- any JSON value
  if t == "structure" then return check_structure(m, s, v, path) end
  if t == "list" then
    if not is_list(v) then return invalid(path, "expected a list (array), got %s", type(v)) end
    local out = jsoncodec.array()
    for i, item in ipairs(v) do
      local nv, err = check(m, s.member, item, string.format("%s[%d]", path, i))
      if err then return nil, err end
      out[i] = nv
    end
    return out
  end
  if t == "map" then
    if type(v) ~= "table" or (next(v) ~= nil and jsoncodec.is_array(v)) then
      return invalid(path, "expected a map (table), got %s", type(v))
    end
    local out, order = {}, {}
    for _, k in ipairs(jsoncodec.keys(v)) do
      if type(k) ~= "string" then return invalid(path, "map keys must be strings, got %s", type(k)) end
      local item = v[k]
      if not shape.absent(item) then
        local nv, err = check(m, s.value, item, join(path, k))
        if err then return nil, err end
        out[k] = nv
        order[#order + 1] = k
      end
    end
    return jsoncodec.with_keys(out, order)
  end
  if t == "string" then
    if shape.trait(ref, s, "jsonvalue") then return v end
    if type(v) ~= "string" then return invalid(path, "expected a string, got %s", type(v)) end
    return v
  end
  if t == "integer" or t == "long" or t == "short" or t == "byte" then
    local i = type(v) == "number" and math.tointeger(v)
    if not i then return invalid(path, "expected an integer, got %s", tostring(v)) end
    return i
  end
  if t == "float" or t == "double" then
    -- the protocols' names for the values JSON has no text for
    if v == "NaN" or v == "Infinity" or v == "-Infinity" then return scalar.float(v) end
    if type(v) ~= "number" then return invalid(path, "expected a number, got %s", type(v)) end
    return v
  end
  if t == "boolean" then
    if type(v) ~= "boolean" then return invalid(path, "expected a boolean, got %s", type(v)) end
    return v
  end
  if t == "blob" then
    if type(v) ~= "string" then return invalid(path, "expected a blob (string of bytes), got %s", type(v)) end
    return v
  end
  if t == "timestamp" then
    local e = scalar.to_epoch(v)
    if not e then
      return invalid(path, "expected a timestamp (epoch seconds or an ISO 8601 string), got %s", tostring(v))
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

--- The error shape for an AWS error code: the structure of that name, or the one whose `error.code`
-- trait is that code (awsQueryCompatible and customised codes).
-- @tparam table m the model
-- @tparam string code the AWS error code
-- @treturn ?string the shape's name
function shape.error_shape(m, code)
  local s = m.shapes[code]
  if s and s.type == "structure" then return code end
  for name, sh in pairs(m.shapes) do
    if type(sh.error) == "table" and sh.error.code == code and sh.type == "structure" then return name end
  end
end

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
  return check(m, ref, params, "")
end

return shape
