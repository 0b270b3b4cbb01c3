-- XML to tables (expat), including what hostile or broken input gets back.
local xml = require("awsnet.core").xml

describe("xml", function()
  local LISTS = { item = true, member = true }

  it("turns elements into tables, list elements into arrays and repeats into arrays", function()
    local root, doc = xml.parse([==[<?xml version="1.0" encoding="UTF-8"?>
      <R xmlns="urn:x"><a>1</a><set><item><k>x &amp; y</k></item><item><k><![CDATA[<z>]]></k></item></set>
      <empty/><rep>1</rep><rep>2</rep><rep><n>3</n></rep><mixed>a<!-- c -->b</mixed></R>]==], LISTS)
    assert.equals("R", root)
    assert.same({ a = "1", set = { { k = "x & y" }, { k = "<z>" } }, empty = "", rep = { "1", "2", { n = "3" } },
      mixed = "ab" }, doc)
    local _, plain = xml.parse("<R><item>1</item></R>")
    assert.same({ item = "1" }, plain)
  end)

  it("returns nil, 'xml', message for broken or hostile documents", function()
    local cases = {
      "", "<a>", "<a></b>", "not xml", "<a>\0</a>", "<a><b></a>",
      "<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
      "<!DOCTYPE lol [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;'>]><lol>&b;</lol>",
      string.rep("<a>", 1000) .. string.rep("</a>", 1000),
      "<a>" .. string.rep("x", 100000),
    }
    for _, text in ipairs(cases) do
      local root, code, message = xml.parse(text)
      assert.is_nil(root, text:sub(1, 40))
      assert.equals("xml", code)
      assert.is_string(message)
    end
  end)

  it("handles large documents", function()
    local items = {}
    for i = 1, 20000 do items[i] = "<item><id>" .. i .. "</id></item>" end
    local _, doc = xml.parse("<r><s>" .. table.concat(items) .. "</s></r>", LISTS)
    assert.equals(20000, #doc.s)
    assert.equals("20000", doc.s[20000].id)
  end)

  it("raises on misuse", function()
    assert.has_error(function() xml.parse(nil) end)
    assert.has_error(function() xml.parse("<a/>", "item") end)
  end)
end)
