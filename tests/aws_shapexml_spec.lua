-- core.shapexml (csrc/shapexml.c), the C reader of query/ec2 answers, against the Lua reader
-- (xmldoc + awsnet.aws.protocol.xml): every ec2/query output case of the protocol suites and
-- random DescribeSecurityGroups answers must come out the same (values, integer/float types,
-- array marks), and protocol.parse must take the C path for them.
local core = require "awsnet.core"
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
local model = require "awsnet.aws.model"
local protocol = require "awsnet.aws.protocol"
local xml = require "awsnet.aws.protocol.xml"
local xmldoc = require "awsnet.aws.protocol.xmldoc"

local shapexml = core.shapexml
local DIR = "tests/fixtures/aws-protocol-tests/output"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

-- Where two results differ (nil when they are the same), types and array marks included.
local function differ(a, b, path)
  if type(a) ~= type(b) then return string.format("%s: %s vs %s", path, tostring(a), tostring(b)) end
  if type(a) == "table" then
    if getmetatable(a) ~= getmetatable(b) then return path .. ": metatables differ" end
    for k, v in pairs(a) do
      local d = differ(v, b[k], path .. "." .. tostring(k))
      if d then return d end
    end
    for k in pairs(b) do
      if a[k] == nil then return path .. "." .. tostring(k) .. ": only in the second" end
    end
    return nil
  end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return path .. ": " .. math.type(a) .. " vs " .. math.type(b) end
    if a ~= a and b ~= b then return nil end
  end
  if a ~= b then return string.format("%s: %q vs %q", path, tostring(a), tostring(b)) end
end

-- The Lua reader, as query.parse used it before the C one.
local function lua_read(m, op, body, opts)
  local root = assert(xmldoc.parse(body))
  local start = root
  if m.metadata.protocol ~= "ec2" then
    start = xmldoc.child(root, op.output.resultWrapper or (op.name .. "Result"))
    if not start then return {} end
  end
  return xml.parse(m, op.output, start, opts)
end

local function c_read(m, op, body, opts)
  local wrapper = m.metadata.protocol ~= "ec2" and (op.output.resultWrapper or (op.name .. "Result")) or nil
  local desc, why = xml.plan(m, op.output, wrapper)
  if not desc then return nil, why end
  local plan = shapexml.compile(desc)
  return shapexml.decode(plan, body, function(text) return xml.scalar({ type = "timestamp" }, text, opts) end)
end

describe("core.shapexml against the Lua reader", function()
  for _, proto in ipairs({ "ec2", "query" }) do
    it("reads every " .. proto .. " output case of the protocol suites as the Lua reader does", function()
      local suites = assert(jsoncodec.decode(read(DIR .. "/" .. proto .. ".json")))
      local compared, planless = 0, {}
      for _, suite in ipairs(suites) do
        for _, case in ipairs(suite.cases) do
          local r = case.response
          local body = r.body or ""
          if (r.status_code or 200) < 300 and case.given.output and body:find("<", 1, true) then
            local m = assert(model.load({ metadata = suite.metadata, shapes = suite.shapes,
              operations = { [case.given.name] = case.given } }))
            local op = m.operations[case.given.name]
            op.name = op.name or case.given.name
            for _, ts in ipairs({ "epoch", "iso" }) do
              local opts = { timestamp = ts }
              local want = lua_read(m, op, body, opts)
              local got, why = c_read(m, op, body, opts)
              if got == nil then
                planless[#planless + 1] = case.id .. ": " .. tostring(why)
              else
                local d = differ(got, want, case.id)
                assert(d == nil, d)
                -- and protocol.parse gives it too (through the C reader)
                local via = assert(protocol.parse(m, case.given.name, { status = 200, body = body }, opts))
                d = differ(via, want, case.id .. " (protocol.parse)")
                assert(d == nil, d)
                compared = compared + 1
              end
            end
          end
        end
      end
      assert.is_true(compared > 20, proto .. ": only " .. compared .. " cases compared")
      -- the cases the C reader leaves to the Lua one: query's two flattened lists read from the
      -- same <item> elements (QueryXmlLists, QueryXmlEmptyLists and their ec2 twins)
      for _, why in ipairs(planless) do
        assert.truthy(why:match("^%w+Lists: two members read <item>$"), why)
      end
    end)
  end

  it("reads random DescribeSecurityGroups answers of the ec2 model as the Lua reader does", function()
    local m = model.load("ec2")
    if not m then
      pending("no ec2 model (python3-botocore)")
      return
    end
    local op = assert(m:operation("DescribeSecurityGroups"))
    local seed = tonumber(os.getenv("SHAPEXML_SEED") or "") or os.time()
    math.randomseed(seed)
    local R = math.random
    local TEXTS = { "", " ", "a", "sg-0123", "x &amp; y", "&lt;b&gt;", "<![CDATA[<raw> & ]]>", "é ü 漢",
      "  padded  ", "line\nnext", "&#65;&#x42;" }
    local INTS = { "0", "22", "-1", "65535", " 443 ", "+7", "9223372036854775807", "-9223372036854775808",
      "9223372036854775808", "-9223372036854775809", "99999999999999999999", "00000000000000000000000042",
      "1.5", "", "abc", "0x10" }
    local function t(name, body)
      local p = R(1, 8) == 1 and "ec2:" or ""
      return "<" .. p .. name .. ">" .. body .. "</" .. p .. name .. ">"
    end
    local function maybe(s) return R(1, 4) == 1 and "" or s end
    local function list(name, n, item)
      if R(1, 6) == 1 then return "" end
      if R(1, 8) == 1 then return "<" .. name .. "/>" end
      local out = {}
      for i = 1, n do out[i] = t("item", item()) end
      if R(1, 10) == 1 then out[#out + 1] = t("other", item()) end -- any child of a list is an item
      return t(name, table.concat(out))
    end
    local function text() return TEXTS[R(#TEXTS)] end
    local function range()
      return maybe(t("cidrIp", "10." .. R(0, 255) .. ".0.0/16")) .. maybe(t("description", text()))
        .. (R(1, 10) == 1 and t("unknownField", t("deep", "x")) or "")
    end
    local function pair()
      return maybe(t("groupId", text())) .. maybe(t("userId", text())) .. maybe(t("vpcPeeringConnectionId", text()))
    end
    local function perm()
      local from = INTS[R(#INTS)]
      return maybe(t("ipProtocol", text())) .. maybe(t("fromPort", from)) .. maybe(t("toPort", INTS[R(#INTS)]))
        .. (R(1, 12) == 1 and t("fromPort", "80") or "") -- a repeated scalar: the last counts
        .. list("groups", R(0, 3), pair) .. list("ipRanges", R(0, 4), range) .. list("ipv6Ranges", R(0, 2), function()
          return maybe(t("cidrIpv6", "::/0")) end) .. list("prefixListIds", R(0, 2), function()
          return t("prefixListId", text()) end)
    end
    local function group()
      return maybe(t("ownerId", "123456789012")) .. t("groupId", text()) .. maybe(t("groupName", text()))
        .. maybe(t("groupDescription", text())) .. maybe(t("vpcId", text()))
        .. list("ipPermissions", R(0, 5), perm) .. list("ipPermissionsEgress", R(0, 2), perm)
        .. (R(1, 12) == 1 and t("ipPermissions", t("item", perm())) or "") -- a repeated list: the first counts
        .. list("tagSet", R(0, 3), function() return maybe(t("key", text())) .. maybe(t("value", text())) end)
    end
    for _ = 1, 300 do
      local groups = {}
      for g = 1, R(0, 6) do groups[g] = group() end
      local body = '<?xml version="1.0" encoding="UTF-8"?>\n<DescribeSecurityGroupsResponse '
        .. 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">\n  ' .. t("requestId", "req-1")
        .. (R(1, 3) == 1 and "" or t("securityGroupInfo", #groups > 0 and ("<item>" .. table.concat(groups, "</item><item>")
          .. "</item>") or ""))
        .. maybe(t("nextToken", text())) .. "\n<!-- a comment -->\n</DescribeSecurityGroupsResponse>"
      local want = lua_read(m, op, body, {})
      local got = assert(c_read(m, op, body, {}))
      local d = differ(got, want, "seed " .. seed)
      assert(d == nil, d)
    end
  end)

  it("leaves bad XML to the Lua reader, which says why", function()
    local m = assert(model.load({ metadata = { protocol = "ec2", apiVersion = "1" },
      shapes = { Out = { type = "structure", members = { A = { shape = "S", locationName = "a" } } },
        S = { type = "string" } },
      operations = { Op = { name = "Op", output = { shape = "Out" } } } }))
    local plan = shapexml.compile(assert(xml.plan(m, { shape = "Out" })))
    for _, body in ipairs({ "<r><a>1</r>", '<!DOCTYPE r [<!ENTITY e "x">]><r/>', "<r>&bogus;</r>",
      string.rep("<a>", 300) .. string.rep("</a>", 300), "<r/><r/>", "<r>\255</r>" }) do
      local r, err = shapexml.decode(plan, body)
      assert.is_nil(r)
      assert.is_string(err)
      local res, perr = protocol.parse(m, "Op", { status = 200, body = body })
      if res == nil then assert.equals("invalid_response", perr.code) end
    end
    assert.same({ A = "x" }, shapexml.decode(plan, "<r><a>x</a></r>"))
    assert.same({}, shapexml.decode(plan, "<r/>"))
  end)

  it("refuses a malformed plan and wrong arguments", function()
    local mt = jsoncodec.array_mt
    for _, desc in ipairs({
      {}, { nodes = {}, array_mt = mt }, { nodes = { { type = "string" } }, array_mt = mt },
      { nodes = { { type = "structure", members = { { wire = "a", name = "A", node = 9 } } } }, array_mt = mt },
      { nodes = { { type = "structure", members = { { wire = "a", name = "A", node = 2, flat = true } } },
        { type = "string" } }, array_mt = mt },
      { nodes = { { type = "map", key = 1, value = 1, kname = "k", vname = "v" } }, array_mt = mt },
      { nodes = { { type = "nope" } }, array_mt = mt },
    }) do
      assert.has_error(function() shapexml.compile(desc) end)
    end
    local plan = shapexml.compile({ nodes = { { type = "structure", members = {} } }, array_mt = mt })
    assert.has_error(function() shapexml.decode(plan, 1 < 2) end)
    assert.has_error(function() shapexml.decode({}, "<a/>") end)
    assert.has_error(function() shapexml.decode(plan, "<a/>", 5) end)
  end)

  it("keeps recursive shapes and a flattened list's items as the Lua reader does", function()
    local m = assert(model.load({ metadata = { protocol = "query", apiVersion = "1" },
      shapes = {
        Out = { type = "structure", members = { Tree = { shape = "Node" }, Flat = { shape = "L", flattened = true,
          locationName = "f" }, M = { shape = "Map", flattened = true } } },
        Node = { type = "structure", members = { V = { shape = "I" }, Kids = { shape = "Kids" } } },
        Kids = { type = "list", member = { shape = "Node" } },
        L = { type = "list", member = { shape = "I" } },
        Map = { type = "map", key = { shape = "S" }, value = { shape = "I" } },
        I = { type = "integer" }, S = { type = "string" } },
      operations = { Op = { name = "Op", output = { shape = "Out" } } } }))
    local body = "<OpResponse><OpResult><Tree><V>1</V><Kids><member><V>2</V><Kids><member><V>x</V></member>"
      .. "</Kids></member></Kids></Tree><f>1</f><f>no</f><f>3</f><M><key>a</key><value>1</value></M>"
      .. "<M><key>b</key></M><M><value>5</value></M></OpResult></OpResponse>"
    local op = m.operations.Op
    local want = lua_read(m, op, body, {})
    local got = assert(c_read(m, op, body, {}))
    assert.is_nil(differ(got, want, "result"))
    assert.equals(3, got.Flat[3])
    assert.is_nil(got.Flat[2])
  end)
end)
