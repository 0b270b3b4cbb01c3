--- The `query` and `ec2` protocols by shape: form-encoded requests, XML answers.
--
-- Requests follow botocore's QuerySerializer and EC2Serializer: `Action` and `Version` first,
-- then each member under its wire name (query: `locationName`; ec2: `queryName`, else
-- `locationName` with its first letter capitalised). Query lists are `Name.member.N` (or the
-- member's `locationName`; flattened: `Name.N`), an empty one `Name=`; ec2 lists are always
-- `Name.N` and an empty one is left out. Maps are `Name.entry.N.key` / `.value`.
-- Answers: the `<OpResult>` wrapper (query, the output's `resultWrapper`) or the root (ec2) read
-- by shape (see `awsnet.aws.protocol.xml`); errors from `<ErrorResponse><Error>` (query) and
-- `<Response><Errors><Error>` (ec2).
-- @module awsnet.aws.protocol.query
local errors = require "awsnet.errors"
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
local scalar = require "awsnet.aws.protocol.scalar"
local shape = require "awsnet.aws.shape"
local xml = require "awsnet.aws.protocol.xml"
local xmldoc = require "awsnet.aws.protocol.xmldoc"

local query = {}
local shapexml, plan_for -- set below

local trait = shape.trait

local function capitalise(s)
  return s:sub(1, 1):upper() .. s:sub(2)
end

--- The wire name of a member (or list member / map key) in a query or EC2 form: EC2 takes the
-- member's `queryName`, else its `locationName` capitalised; query its `locationName`.
-- @tparam boolean ec2 true for the EC2 protocol
-- @tparam table ref the member's reference
-- @tparam table s the member's shape
-- @tparam string default the name without a trait (the member's name)
-- @treturn string the name on the wire
function query.wire_name(ec2, ref, s, default)
  if ec2 then
    local q = trait(ref, s, "queryName")
    if q then return q end
    local l = trait(ref, s, "locationName")
    if l then return capitalise(l) end
    return default
  end
  return trait(ref, s, "locationName") or default
end
local wire_name = query.wire_name

local flatten

local function flatten_list(m, ec2, ref, s, v, prefix, out)
  local mref = s.member
  local ms = m.shapes[mref.shape]
  if ec2 then
    for i, item in ipairs(v) do flatten(m, ec2, mref, item, prefix .. "." .. i, out) end
    return
  end
  if #v == 0 then
    out[#out + 1] = { prefix, "" }
    return
  end
  local list_prefix
  if trait(ref, s, "flattened") then
    list_prefix = prefix
    local inner = trait(mref, ms, "locationName")
    if inner then list_prefix = (prefix:match("^(.*)%.[^.]*$") and (prefix:match("^(.*)%.[^.]*$") .. ".") or "")
      .. inner end
  else
    list_prefix = prefix .. "." .. (trait(mref, ms, "locationName") or "member")
  end
  for i, item in ipairs(v) do flatten(m, ec2, mref, item, list_prefix .. "." .. i, out) end
end

function flatten(m, ec2, ref, v, prefix, out)
  local s = m.shapes[ref.shape]
  local t = s.type
  if t == "structure" then
    for _, name in ipairs(shape.member_names(s)) do
      local value = v[name]
      if not shape.absent(value) then
        local mref = s.members[name]
        local wire = wire_name(ec2, mref, m.shapes[mref.shape], name)
        flatten(m, ec2, mref, value, prefix == "" and wire or (prefix .. "." .. wire), out)
      end
    end
  elseif t == "list" then
    flatten_list(m, ec2, ref, s, v, prefix, out)
  elseif t == "map" then
    local base = trait(ref, s, "flattened") and prefix or (prefix .. ".entry")
    local kname = wire_name(false, s.key, m.shapes[s.key.shape], "key")
    local vname = wire_name(false, s.value, m.shapes[s.value.shape], "value")
    local keys = jsoncodec.keys(v)
    for i, k in ipairs(keys) do
      flatten(m, ec2, s.key, k, base .. "." .. i .. "." .. kname, out)
      flatten(m, ec2, s.value, v[k], base .. "." .. i .. "." .. vname, out)
    end
  elseif t == "boolean" then
    out[#out + 1] = { prefix, v and "true" or "false" }
  elseif t == "blob" then
    out[#out + 1] = { prefix, scalar.base64(v) }
  elseif t == "timestamp" then
    out[#out + 1] = { prefix, tostring(scalar.format_timestamp(v, trait(ref, s, "timestampFormat") or "iso8601")) }
  elseif type(v) == "number" then
    out[#out + 1] = { prefix, scalar.number_text(v) }
  else
    out[#out + 1] = { prefix, tostring(v) }
  end
end

--- The form body's key/value pairs for an operation, in order (Action, Version, members).
-- @tparam table m the model
-- @tparam table op the operation
-- @tparam table params checked parameters (see `shape.check`)
-- @treturn {{string,string},...} the pairs
function query.pairs(m, op, params)
  local out = { { "Action", op.name }, { "Version", m.metadata.apiVersion } }
  if op.input then flatten(m, m.metadata.protocol == "ec2", op.input, params, "", out) end
  return out
end

-- ---- compiled serializers ----------------------------------------------------------------------
-- query.build runs, per operation, writers compiled once from the shapes (cached per model): the
-- same pairs as query.pairs, in the same order, but with each wire name percent-encoded once at
-- compile time (encoding works character by character, and "." and digits stay as they are, so
-- encoded parts joined with "." are the encoded key), member lists and traits looked up once,
-- and only the values encoded per request.

local UNRESERVED = "[^%w%-_%.~]"
local PERCENT = {}
for i = 0, 255 do
  local c = string.char(i)
  if c:find(UNRESERVED) then PERCENT[c] = string.format("%%%02X", i) end
end

-- scalar.percent without `keep`, with a lookup table instead of a function per character.
local function percent(s)
  if not s:find(UNRESERVED) then return s end
  return (s:gsub(UNRESERVED, PERCENT))
end

local writers = setmetatable({}, { __mode = "k" }) -- model -> key -> writer

local compile

-- A writer for a value of `ref`'s shape: fn(v, key, out) appends "key=value" texts to `out`;
-- `key` is already encoded ("" at the top).
function compile(m, ec2, ref, cache)
  local s = m.shapes[ref.shape]
  local t = s.type
  local flat = trait(ref, s, "flattened") and true or false
  local id = ref.shape .. (flat and "/f" or "")
    .. ((t == "timestamp" or t == "structure") and ("/" .. tostring(trait(ref, s, "timestampFormat"))) or "")
  local w = cache[id]
  if w then return w end
  local slot = {}
  cache[id] = function(v, key, out) return slot.fn(v, key, out) end -- for recursive shapes
  local fn
  if t == "structure" then
    local names, wires, subs = shape.member_names(s), {}, {}
    for i, name in ipairs(names) do
      local mref = s.members[name]
      wires[i] = percent(wire_name(ec2, mref, m.shapes[mref.shape], name))
      subs[i] = compile(m, ec2, mref, cache)
    end
    local null = jsoncodec.null
    fn = function(v, key, out)
      for i = 1, #names do
        local value = v[names[i]]
        if value ~= nil and value ~= null then
          subs[i](value, key == "" and wires[i] or (key .. "." .. wires[i]), out)
        end
      end
    end
  elseif t == "list" then
    local mref = s.member
    local ms = m.shapes[mref.shape]
    local sub = compile(m, ec2, mref, cache)
    if ec2 then
      fn = function(v, key, out)
        for i = 1, #v do sub(v[i], key .. "." .. i, out) end
      end
    else
      local inner = trait(mref, ms, "locationName")
      inner = inner and percent(inner)
      fn = function(v, key, out)
        if #v == 0 then
          out[#out + 1] = key .. "="
          return
        end
        local list_key
        if flat then
          list_key = key
          if inner then
            local head = key:match("^(.*)%.[^.]*$")
            list_key = (head and (head .. ".") or "") .. inner
          end
        else
          list_key = key .. "." .. (inner or "member")
        end
        for i = 1, #v do sub(v[i], list_key .. "." .. i, out) end
      end
    end
  elseif t == "map" then
    local kname = percent(wire_name(false, s.key, m.shapes[s.key.shape], "key"))
    local vname = percent(wire_name(false, s.value, m.shapes[s.value.shape], "value"))
    local ksub, vsub = compile(m, ec2, s.key, cache), compile(m, ec2, s.value, cache)
    fn = function(v, key, out)
      local base = flat and key or (key .. ".entry")
      for i, k in ipairs(jsoncodec.keys(v)) do
        ksub(k, base .. "." .. i .. "." .. kname, out)
        vsub(v[k], base .. "." .. i .. "." .. vname, out)
      end
    end
  elseif t == "boolean" then
    fn = function(v, key, out) out[#out + 1] = key .. (v and "=true" or "=false") end
  elseif t == "blob" then
    fn = function(v, key, out) out[#out + 1] = key .. "=" .. percent(scalar.base64(v)) end
  elseif t == "timestamp" then
    local format = trait(ref, s, "timestampFormat") or "iso8601"
    fn = function(v, key, out)
      out[#out + 1] = key .. "=" .. percent(tostring(scalar.format_timestamp(v, format)))
    end
  else
    local number_text = scalar.number_text
    fn = function(v, key, out)
      if type(v) == "number" then
        out[#out + 1] = key .. "=" .. percent(number_text(v))
      else
        out[#out + 1] = key .. "=" .. percent(tostring(v))
      end
    end
  end
  slot.fn = fn
  cache[id] = fn
  return fn
end

-- The operation's input writer, compiled on first use.
local function input_writer(m, op)
  local by_model = writers[m]
  if not by_model then
    by_model = {}
    writers[m] = by_model
  end
  local ec2 = m.metadata.protocol == "ec2"
  return compile(m, ec2, op.input, by_model)
end

-- The same body is first asked of core.queryform (C, see csrc/queryform.h), from a plan compiled
-- once per model and input: structures, lists, strings, integers and booleans. It gives up (nil)
-- on anything else (blobs, timestamps, maps, fractional floats), and the writers above then run.
local has_core, core = pcall(require, "awsnet.core")
local queryform = has_core and type(core) == "table" and core.queryform or nil
local FORM_KIND = { structure = "structure", list = "list", boolean = "boolean", string = "string",
  integer = "integer", long = "integer", short = "integer", byte = "integer", float = "float", double = "float",
  blob = "other", timestamp = "other", map = "other" }

-- core.queryform's description of the shapes under `ref`, with the wire names the writers use.
local function form_desc(m, ec2, ref)
  local nodes, index = {}, {}
  local function node(r)
    local s = m.shapes[r.shape]
    local flat = s and trait(r, s, "flattened") and true or false
    local id = tostring(r.shape) .. (flat and "/f" or "")
    if index[id] then return index[id] end
    local n = #nodes + 1
    local d = { kind = s and not s.document and (FORM_KIND[s.type] or "string") or "other" }
    nodes[n], index[id] = d, n
    if d.kind == "structure" then
      d.members = {}
      for i, name in ipairs(shape.member_names(s)) do
        local mref = s.members[name]
        d.members[i] = { name = name, node = node(mref), wire = percent(wire_name(ec2, mref, m.shapes[mref.shape], name)) }
      end
    elseif d.kind == "list" then
      local mref = s.member
      d.item, d.ec2, d.flat = node(mref), ec2, flat
      local inner = not ec2 and trait(mref, m.shapes[mref.shape], "locationName")
      d.inner = inner and percent(inner) or nil
    end
    return n
  end
  node(ref)
  return { nodes = nodes, null = jsoncodec.null, array_mt = jsoncodec.array_mt, with_keys = jsoncodec.with_keys }
end

local form_plan = shape.plan_cache(function(m, input)
  local ok, compiled = pcall(function()
    return queryform.compile(form_desc(m, m.metadata.protocol == "ec2", input))
  end)
  return ok and compiled
end)

--- Builds the unsigned request.
-- @tparam table m the model
-- @tparam table op the operation
-- @tparam table params checked parameters
-- @treturn table {method, url, headers, body}
function query.build(m, op, params)
  local head = "Action=" .. percent(op.name) .. "&Version=" .. percent(m.metadata.apiVersion)
  local body = head
  if op.input then
    local plan = queryform and form_plan(m, op.input)
    body = plan and queryform.encode(plan, params, head)
    if not body then
      local parts = { head }
      input_writer(m, op)(params, "", parts)
      body = table.concat(parts, "&")
    end
  end
  local http = op.http or {}
  return {
    method = http.method or "POST",
    url = http.requestUri or "/",
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
    body = body,
  }
end

local function text(el, name)
  local c = el and xmldoc.child(el, name)
  return c and c.text or nil
end

--- Reads an error answer: query `<ErrorResponse><Error>`, ec2 `<Response><Errors><Error>`, or a
-- bare `<Error>`.
-- @tparam table m the model
-- @tparam table resp {status, headers, body}
-- @tparam table opts parse options
-- @return nil
-- @treturn table err {code, message, status, request_id, type, data (the modeled error's members)}
function query.error(m, resp, opts)
  local root = resp.body and resp.body ~= "" and xmldoc.parse(resp.body)
  local e
  if root then
    local lname = xmldoc.local_name(root.name)
    if lname == "Error" then
      e = root
    else
      e = xmldoc.child(root, "Error")
      if not e then
        local errs = xmldoc.child(root, "Errors")
        e = errs and xmldoc.child(errs, "Error")
      end
    end
  end
  local code = text(e, "Code") or tostring(resp.status)
  local fields = {
    status = resp.status,
    request_id = text(root, "RequestId") or text(root, "RequestID") or text(e, "RequestId"),
    type = text(e, "Type"),
  }
  local eshape = shape.error_shape(m, code)
  if e and eshape then fields.data = xml.parse(m, { shape = eshape }, e, opts) end
  return errors.fail(code, text(e, "Message") or "", fields)
end

-- Answers are read by core.shapexml (C, see csrc/shapexml.h) with a plan compiled once per model
-- and operation, to the same result as xml.parse gives; the Lua reader stays for what the plan
-- cannot describe (see xml.plan: XML attributes, nested flattened lists, non-string map keys),
-- for `opts.on_unknown`, for XML expat refuses, and when the core is not built.
shapexml = has_core and type(core) == "table" and core.shapexml or nil
local TIMESTAMP = { type = "timestamp" }

-- The compiled plan of an operation's answer, or false.
local answer_plan = shape.plan_cache(function(m, op)
  local wrapper = m.metadata.protocol ~= "ec2" and (op.output.resultWrapper or (op.name .. "Result")) or nil
  local desc = xml.plan(m, op.output, wrapper)
  return desc and shapexml.compile(desc)
end)
function plan_for(m, op)
  return shapexml ~= nil and answer_plan(m, op)
end

--- Reads a successful answer into the output shape.
-- @tparam table m the model
-- @tparam table op the operation
-- @tparam table resp {status, headers, body}
-- @tparam table opts parse options ({timestamp = "epoch"})
-- @treturn table the result, or nil, err ("invalid_response")
function query.parse(m, op, resp, opts)
  if not op.output or not (resp.body or ""):find("<", 1, true) then return {} end
  local plan = not opts.on_unknown and plan_for(m, op)
  if plan then
    local result = shapexml.decode(plan, resp.body, function(s) return xml.scalar(TIMESTAMP, s, opts) end)
    -- nil: XML expat refuses; the Lua reader below then says what it says about it
    if result ~= nil then return result end
  end
  local root, err = xmldoc.parse(resp.body or "")
  if not root then return errors.fail("invalid_response", "the answer is not XML: " .. err.message,
    { status = resp.status }) end
  local start = root
  if m.metadata.protocol ~= "ec2" then
    -- <OpResponse><OpResult>: the model names the wrapper (resultWrapper), the suites do not
    start = xmldoc.child(root, op.output.resultWrapper or (op.name .. "Result"))
    if not start then return {} end
  end
  return xml.parse(m, op.output, start, opts)
end

return query
