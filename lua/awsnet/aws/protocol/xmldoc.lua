--- A small XML reader and writer for the AWS protocols: documents as element trees that keep
-- attributes and the order of siblings.
--
-- The core's expat binding (`core.xml.parse`) drops attributes (rest-xml's `xmlAttribute`) and
-- folds siblings into tables by name; shape-directed parsing needs both, so this module reads
-- the (simple, DOCTYPE-free) XML that AWS answers with in Lua. An element is
-- `{name = "Foo", attrs = {[name] = value}, children = {element, ...}, text = "..."}`, where
-- `text` is all the character data directly inside the element (entities and CDATA resolved).
-- @module awsnet.aws.protocol.xmldoc
local errors = require "awsnet.errors"

local xmldoc = {}

local ENTITIES = { lt = "<", gt = ">", amp = "&", quot = '"', apos = "'" }

local function unescape(s)
  if not s:find("&", 1, true) then return s end
  return (s:gsub("&(#?[%w]+);", function(e)
    local code = e:match("^#(%d+)$") and tonumber(e:sub(2)) or (e:match("^#[xX]%x+$") and tonumber(e:sub(3), 16))
    if code then return utf8.char(code) end
    return ENTITIES[e]
  end))
end

local function fail(what, pos)
  error({ xml_error = string.format("%s at character %d", what, pos) }, 0)
end

local function parse_attrs(s, pos)
  local attrs = {}
  for name, _, value in s:gmatch("([%w_:%.%-]+)%s*=%s*([\"'])(.-)%2") do
    attrs[name] = unescape(value)
  end
  if s:find("[^%s]") and not next(attrs) then fail("bad attributes", pos) end
  return attrs
end

local function parse(text)
  local pos, len = 1, #text
  local root
  local stack = {}
  local texts = {} -- parallel to stack: pieces of character data
  while pos <= len do
    local lt = text:find("<", pos, true)
    if not lt then
      if #stack > 0 then fail("unterminated element <" .. stack[#stack].name .. ">", pos) end
      if text:find("[^%s]", pos) then fail("text after the root element", pos) end
      break
    end
    if lt > pos and #stack > 0 then
      local piece = texts[#stack]
      piece[#piece + 1] = unescape(text:sub(pos, lt - 1))
    elseif lt > pos and text:sub(pos, lt - 1):find("[^%s]") then
      fail("text outside the root element", pos)
    end
    local c = text:sub(lt + 1, lt + 1)
    if c == "?" then
      local e = text:find("?>", lt + 2, true) or fail("unterminated processing instruction", lt)
      pos = e + 2
    elseif text:sub(lt, lt + 3) == "<!--" then
      local e = text:find("-->", lt + 4, true) or fail("unterminated comment", lt)
      pos = e + 3
    elseif text:sub(lt, lt + 8) == "<![CDATA[" then
      local e = text:find("]]>", lt + 9, true) or fail("unterminated CDATA", lt)
      if #stack == 0 then fail("CDATA outside the root element", lt) end
      local piece = texts[#stack]
      piece[#piece + 1] = text:sub(lt + 9, e - 1)
      pos = e + 3
    elseif c == "!" then
      fail("DOCTYPE is not accepted", lt)
    elseif c == "/" then
      local name, e = text:match("^</([^%s>]+)%s*>()", lt)
      if not name then fail("bad end tag", lt) end
      local el = stack[#stack]
      if not el or el.name ~= name then fail("mismatched end tag </" .. name .. ">", lt) end
      el.text = table.concat(texts[#stack])
      stack[#stack], texts[#stack] = nil, nil
      pos = e
    else
      local name, rest, slash, e = text:match("^<([^%s/>]+)(.-)(/?)>()", lt)
      if not name then fail("bad start tag", lt) end
      local el = { name = name, attrs = parse_attrs(rest, lt), children = {}, text = "" }
      if #stack > 0 then
        local parent = stack[#stack].children
        parent[#parent + 1] = el
      elseif root then
        fail("a second root element", lt)
      else
        root = el
      end
      if slash == "" then
        stack[#stack + 1] = el
        texts[#stack] = {}
      end
      if #stack > 200 then fail("elements nested too deeply", lt) end
      pos = e
    end
  end
  if #stack > 0 then fail("unterminated element <" .. stack[#stack].name .. ">", len) end
  if not root then fail("no root element", 1) end
  return root
end

--- Parses an XML document.
-- @tparam string text the document
-- @treturn table the root element {name, attrs, children, text}, or nil, err ("invalid_xml")
function xmldoc.parse(text)
  if type(text) ~= "string" then error("bad argument #1 to 'parse' (string expected, got " .. type(text) .. ")", 2) end
  local ok, root = pcall(parse, (text:gsub("\r\n?", "\n")))
  if ok then return root end
  if type(root) == "table" and root.xml_error then return errors.fail("invalid_xml", root.xml_error) end
  error(root, 0)
end

--- The name of an element without its namespace prefix ("a:Foo" -> "Foo").
-- @tparam string name the qualified name
-- @treturn string the local name
function xmldoc.local_name(name)
  return name:match(":(.*)$") or name
end

--- The first child element named `name` (namespace prefix ignored).
-- @tparam table el the element
-- @tparam string name the child's name
-- @treturn ?table the child
function xmldoc.child(el, name)
  for _, c in ipairs(el.children) do
    if c.name == name or xmldoc.local_name(c.name) == name then return c end
  end
end

--- Escapes text for element content or a double-quoted attribute.
-- @tparam string s the text
-- @treturn string the escaped text
function xmldoc.escape(s)
  return (s:gsub('[<>&"\r\n]', { ["<"] = "&lt;", [">"] = "&gt;", ["&"] = "&amp;", ['"'] = "&quot;",
    ["\r"] = "&#xD;", ["\n"] = "&#xA;" }))
end

return xmldoc
