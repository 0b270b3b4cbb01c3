--- XML by shape: reading an element tree into a typed result (query, ec2 and rest-xml answers)
-- and writing a rest-xml request body (locationName, flattened, xmlNamespace, xmlAttribute).
--
-- Reading follows botocore's BaseXMLResponseParser: a structure's members are found by wire name
-- among its children (namespace prefixes ignored; a name that repeats is a flattened list), a
-- list's elements are the wrapper's children (a flattened list's are the repeated siblings), a
-- map's entries are `<entry><key/><value/></entry>` (flattened: the repeated siblings). Scalars
-- are typed by shape, never by their text: integers exactly (64-bit), "true" only for booleans.
-- Lists come back marked with `jsoncodec.array_mt`, so an empty one encodes as `[]`.
-- @module awsnet.aws.protocol.xml
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
local scalar = require "awsnet.aws.protocol.scalar"
local shape = require "awsnet.aws.shape"
local xmldoc = require "awsnet.aws.protocol.xmldoc"

local xml = {}

local trait = shape.trait

--- Reads a scalar's text by shape (shared by the XML parsers and header parsing).
-- @tparam table s the shape
-- @tparam string text the text
-- @tparam table opts parse options (see `scalar.timestamp_out`)
-- @return the value (nil when the text does not fit the shape)
function xml.scalar(s, text, opts)
  local t = s.type
  if t == "boolean" then return text == "true" end
  if t == "integer" or t == "long" or t == "short" or t == "byte" then return scalar.integer(text) end
  if t == "float" or t == "double" then return scalar.float(text) end
  if t == "blob" then return scalar.unbase64(text) end
  if t == "timestamp" then
    local e = scalar.to_epoch(text)
    if not e then return nil end
    return scalar.timestamp_out(e, opts)
  end
  return text
end

-- The children of `el` by local name: name -> element, or an array of elements when it repeats.
local function by_name(el)
  local out = {}
  for _, c in ipairs(el.children) do
    local k = xmldoc.local_name(c.name)
    local have = out[k]
    if have == nil then
      out[k] = c
    elseif have.name then
      out[k] = { have, c }
    else
      have[#have + 1] = c
    end
  end
  return out
end

local parse

-- The wire name of a structure member.
local function member_key(m, ref, name)
  local s = m.shapes[ref.shape]
  if s.type == "list" and trait(ref, s, "flattened") then
    local inner = s.member.locationName or m.shapes[s.member.shape].locationName
    if inner then return inner end
  end
  return trait(ref, s, "locationName") or name
end

local function parse_structure(m, s, node, opts)
  if node.name == nil then node = node[1] end -- a repeated element: the first
  local out = {}
  local kids = by_name(node)
  for _, name in ipairs(shape.member_names(s)) do
    local ref = s.members[name]
    local ms = m.shapes[ref.shape]
    if not shape.http_bound(ref) then
      local key = member_key(m, ref, name)
      local child = kids[key]
      if child ~= nil then
        out[name] = parse(m, ref, child, opts)
      elseif trait(ref, ms, "xmlAttribute") then
        local v = node.attrs[key]
        if v == nil then
          -- the same attribute under another namespace prefix
          local lname = xmldoc.local_name(key)
          for k, value in pairs(node.attrs) do
            if xmldoc.local_name(k) == lname and k:find(":", 1, true) then v = value end
          end
        end
        if v ~= nil then out[name] = xml.scalar(ms, v, opts) end
      end
      if opts.on_unknown then
        kids[key] = nil
        -- a flattened list repeats under the member's own name too
        if child == nil and ms.type == "list" then kids[trait(ref, ms, "locationName") or name] = nil end
      end
    end
  end
  -- for checking an answer against the model: elements no member reads
  if opts.on_unknown then
    for key in pairs(kids) do opts.on_unknown(node.name, key) end
  end
  return out
end

local function nodes_of(node)
  if node.name then return { node } end
  return node
end

function parse(m, ref, node, opts)
  local s = m.shapes[ref.shape]
  local t = s.type
  if t == "structure" then return parse_structure(m, s, node, opts) end
  if t == "list" then
    local out = jsoncodec.array()
    local items
    if trait(ref, s, "flattened") then
      items = nodes_of(node)
    else
      if node.name == nil then node = node[1] end
      items = node.children
    end
    for i, item in ipairs(items) do out[i] = parse(m, s.member, item, opts) end
    return out
  end
  if t == "map" then
    local out = {}
    local entries
    if trait(ref, s, "flattened") then
      entries = nodes_of(node)
    else
      if node.name == nil then node = node[1] end
      entries = node.children
    end
    local kname = trait(s.key, m.shapes[s.key.shape], "locationName") or "key"
    local vname = trait(s.value, m.shapes[s.value.shape], "locationName") or "value"
    for _, entry in ipairs(entries) do
      local k, v
      for _, c in ipairs(entry.children) do
        local tag = xmldoc.local_name(c.name)
        if tag == kname then k = parse(m, s.key, c, opts) elseif tag == vname then v = parse(m, s.value, c, opts) end
      end
      if k ~= nil then out[k] = v end
    end
    return out
  end
  if node.name == nil then node = node[#node] end
  return xml.scalar(s, node.text, opts)
end

--- Reads an element into the value of a shape.
-- @tparam table m the model
-- @tparam table ref the reference to the shape ({shape = name, ...})
-- @tparam table el the element (from `xmldoc.parse`)
-- @tparam[opt] table opts {timestamp = "epoch"|"iso"}
-- @return the typed value
function xml.parse(m, ref, el, opts)
  return parse(m, ref, el, opts or {})
end

-- ---- plans for the C reader (core.shapexml) ---------------------------------------------------

local PLAN_TYPES = { structure = "structure", list = "list", map = "map", boolean = "boolean", integer = "integer",
  long = "integer", short = "integer", byte = "integer", float = "float", double = "float", blob = "blob",
  timestamp = "timestamp" } -- anything else reads as its text, as xml.scalar has it

--- A shape tree as `core.shapexml.compile` takes it (see csrc/shapexml.h), made with the rules of
-- `xml.parse` above; or nil and why when the C reader cannot follow them: a member read from an
-- XML attribute (xmlAttribute), two members under one wire name, a flattened list or map
-- anywhere but as a structure's member, a map keyed by anything but strings.
-- @tparam table m the model
-- @tparam table ref the output reference
-- @tparam[opt] string wrapper the element under the root that holds the result (query)
-- @treturn table the description, or nil, reason
function xml.plan(m, ref, wrapper)
  local nodes, index = {}, {}
  local node_of
  local function flat_ok(r, s)
    return not ((s.type == "list" or s.type == "map") and trait(r, s, "flattened"))
  end
  function node_of(r)
    local name = r.shape
    if index[name] then return index[name] end
    local s = m.shapes[name]
    local n = #nodes + 1
    local nd = { type = PLAN_TYPES[s.type] or "string" }
    nodes[n], index[name] = nd, n
    if s.type == "structure" then
      nd.members = {}
      local seen = {}
      for _, mname in ipairs(shape.member_names(s)) do
        local mref = s.members[mname]
        local ms = m.shapes[mref.shape]
        if not shape.http_bound(mref) then
          if trait(mref, ms, "xmlAttribute") then return nil, "member " .. mname .. " is an XML attribute" end
          local key = member_key(m, mref, mname)
          if seen[key] then return nil, "two members read <" .. key .. ">" end
          seen[key] = true
          local child, why = node_of(mref)
          if not child then return nil, why end
          nd.members[#nd.members + 1] = { wire = key, name = mname, node = child,
            flat = (ms.type == "list" or ms.type == "map") and trait(mref, ms, "flattened") and true or false }
        end
      end
    elseif s.type == "list" then
      if not flat_ok(s.member, m.shapes[s.member.shape]) then return nil, "a flattened list in a list" end
      local item, why = node_of(s.member)
      if not item then return nil, why end
      nd.item = item
    elseif s.type == "map" then
      local ks, vs = m.shapes[s.key.shape], m.shapes[s.value.shape]
      if ks.type ~= "string" then return nil, "a map keyed by " .. tostring(ks.type) end
      if not flat_ok(s.value, vs) then return nil, "a flattened list in a map" end
      local k, why = node_of(s.key)
      if not k then return nil, why end
      local v, why2 = node_of(s.value)
      if not v then return nil, why2 end
      nd.key, nd.value = k, v
      nd.kname = trait(s.key, ks, "locationName") or "key"
      nd.vname = trait(s.value, vs, "locationName") or "value"
    end
    return n
  end
  if m.shapes[ref.shape].type ~= "structure" then return nil, "the output is no structure" end
  local root, why = node_of(ref)
  if not root then return nil, why end
  return { nodes = nodes, wrapper = wrapper, array_mt = jsoncodec.array_mt }
end

--- The children of an element by local name (a repeated name gives an array of elements).
-- @tparam table el the element
-- @treturn table name -> element or {element, ...}
function xml.children(el)
  return by_name(el)
end

-- ---- writing -------------------------------------------------------------------------------

local esc = xmldoc.escape

local function text_of(ref, s, v, default_format)
  local t = s.type
  if t == "boolean" then return v and "true" or "false" end
  if t == "blob" then return scalar.base64(v) end
  if t == "timestamp" then
    return tostring(scalar.format_timestamp(v, trait(ref, s, "timestampFormat") or default_format))
  end
  if type(v) == "number" then return scalar.number_text(v) end
  return tostring(v)
end

local function namespace_attr(ns)
  if type(ns) == "string" then ns = { uri = ns } end
  if type(ns) ~= "table" or not ns.uri then return "" end
  local name = ns.prefix and ns.prefix ~= "" and ("xmlns:" .. ns.prefix) or "xmlns"
  return string.format(' %s="%s"', name, esc(ns.uri))
end

local write

local function write_structure(m, ref, s, v, name, out)
  local attrs = { namespace_attr(trait(ref, s, "xmlNamespace")) }
  local body = {}
  for _, mname in ipairs(shape.member_names(s)) do
    local mref = s.members[mname]
    local value = v[mname]
    if not shape.absent(value) and not mref.location then
      local ms = m.shapes[mref.shape]
      local wire = trait(mref, ms, "locationName") or mname
      if trait(mref, ms, "xmlAttribute") then
        attrs[#attrs + 1] = string.format(' %s="%s"', wire, esc(text_of(mref, ms, value, "iso8601")))
      else
        write(m, mref, value, wire, body)
      end
    end
  end
  out[#out + 1] = "<" .. name .. table.concat(attrs) .. ">" .. table.concat(body) .. "</" .. name .. ">"
end

function write(m, ref, v, name, out)
  local s = m.shapes[ref.shape]
  local t = s.type
  if t == "structure" then return write_structure(m, ref, s, v, name, out) end
  if t == "list" then
    local mref = s.member
    local ms = m.shapes[mref.shape]
    if trait(ref, s, "flattened") then
      for _, item in ipairs(v) do write(m, mref, item, name, out) end
      return
    end
    local inner = {}
    local iname = trait(mref, ms, "locationName") or "member"
    for _, item in ipairs(v) do write(m, mref, item, iname, inner) end
    out[#out + 1] = "<" .. name .. namespace_attr(trait(ref, s, "xmlNamespace")) .. ">" .. table.concat(inner)
      .. "</" .. name .. ">"
    return
  end
  if t == "map" then
    local kname = trait(s.key, m.shapes[s.key.shape], "locationName") or "key"
    local vname = trait(s.value, m.shapes[s.value.shape], "locationName") or "value"
    local entries = {}
    for _, k in ipairs(jsoncodec.keys(v)) do
      local e = {}
      write(m, s.key, k, kname, e)
      write(m, s.value, v[k], vname, e)
      entries[#entries + 1] = (trait(ref, s, "flattened") and ("<" .. name .. ">") or "<entry>") .. table.concat(e)
        .. (trait(ref, s, "flattened") and ("</" .. name .. ">") or "</entry>")
    end
    if trait(ref, s, "flattened") then
      out[#out + 1] = table.concat(entries)
    else
      out[#out + 1] = "<" .. name .. namespace_attr(trait(ref, s, "xmlNamespace")) .. ">" .. table.concat(entries)
        .. "</" .. name .. ">"
    end
    return
  end
  out[#out + 1] = "<" .. name .. namespace_attr(trait(ref, s, "xmlNamespace")) .. ">"
    .. esc(text_of(ref, s, v, "iso8601")) .. "</" .. name .. ">"
end

--- Writes a value as an XML element by shape (rest-xml bodies).
-- @tparam table m the model
-- @tparam table ref the reference to the shape
-- @param v the (checked) value
-- @tparam string name the element's name
-- @treturn string the XML text
function xml.write(m, ref, v, name)
  local out = {}
  write(m, ref, v, name, out)
  return table.concat(out)
end

return xml
