-- The AWS protocol test suites (tests/fixtures/aws-protocol-tests, from botocore; see its
-- SOURCE.md): every input case is built with `protocol.build` and every output case parsed with
-- `protocol.parse`, for ec2, query, json 1.0/1.1, rest-json and rest-xml. Cases on the suites' own
-- ignore list are skipped, as botocore skips them; cases awsnet does not pass yet are in NOT_YET
-- with the reason and shown as pending.
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
local xmldoc = require "awsnet.aws.protocol.xmldoc"
local model = require "awsnet.aws.model"
local protocol = require "awsnet.aws.protocol"

local suites_data = require "helpers.protocol_suites"

-- case id -> why it does not pass yet
local NOT_YET = {
}

-- ---- comparisons ---------------------------------------------------------------------------

local show, SPECIAL = suites_data.show, suites_data.SPECIAL

-- Deep equality; a failure is reported with the path where it differs.
local function differ(actual, expected, path)
  if expected == jsoncodec.null then expected = nil end
  if type(expected) == "table" then
    if type(actual) ~= "table" then return path .. ": expected " .. show(expected) .. ", got " .. show(actual) end
    if getmetatable(expected) == jsoncodec.array_mt and not jsoncodec.is_array(actual) and next(actual) == nil then
      return path .. ": expected an array (marked, to encode as []), got an unmarked empty table"
    end
    for k, v in pairs(expected) do
      local d = differ(actual[k], v, path .. "." .. tostring(k))
      if d then return d end
    end
    for k in pairs(actual) do
      if expected[k] == nil then return path .. "." .. tostring(k) .. ": unexpected " .. show(actual[k]) end
    end
    return nil
  end
  if type(actual) == "number" and math.type(actual) == "float" and SPECIAL[expected] then
    -- the suites write these floats as strings: JSON has no text for them
    if (expected == "NaN" and actual ~= actual) or SPECIAL[expected] == actual then return nil end
  end
  if type(expected) == "number" and type(actual) == "number" then
    if expected ~= expected and actual ~= actual then return nil end
    if math.type(expected) == "integer" and math.type(actual) ~= "integer" then
      return path .. ": expected the integer " .. expected .. ", got " .. show(actual)
    end
    if expected == actual then return nil end
  elseif expected == actual then
    return nil
  end
  return path .. ": expected " .. show(expected) .. ", got " .. show(actual)
end

local function check_same(actual, expected, what)
  local d = differ(actual, expected, what)
  if d then error(d, 2) end
end

local function header(headers, name)
  local lname = name:lower()
  for k, v in pairs(headers or {}) do
    if k:lower() == lname then return v end
  end
end

-- Form text as a sorted list of its "key=value" pairs, as encoded: the suites' bodies follow the
-- order of their params, which a Lua table does not keep, so order is not compared; the encoding is.
local function form_pairs(text)
  local out = {}
  for piece in (text or ""):gmatch("[^&]+") do out[#out + 1] = piece end
  table.sort(out)
  return out
end

-- An element tree without whitespace-only text between elements.
local function xml_tree(el)
  local kids = {}
  for i, c in ipairs(el.children) do kids[i] = xml_tree(c) end
  local text = el.text
  if #el.children > 0 and not text:find("%S") then text = "" end
  local attrs = {}
  for k, v in pairs(el.attrs) do attrs[k] = v end
  return { name = el.name, attrs = attrs, text = text, children = kids }
end

local function check_body(proto, actual, expected)
  actual, expected = actual or "", expected or ""
  if proto == "query" or proto == "ec2" then
    check_same(form_pairs(actual), form_pairs(expected), "body")
  elseif expected ~= "" and (proto == "json" or proto == "rest-json") and expected:match("^%s*[{%[]") then
    local want = assert(jsoncodec.decode(expected))
    local got, err = jsoncodec.decode(actual)
    if not got then error("body is not JSON: " .. tostring(err) .. ": " .. actual, 2) end
    check_same(got, want, "body")
  elseif expected ~= "" and proto == "rest-xml" and expected:match("^%s*<") then
    local want = assert(xmldoc.parse(expected))
    local got, err = xmldoc.parse(actual)
    if not got then error("body is not XML: " .. tostring(err) .. ": " .. actual, 2) end
    check_same(xml_tree(got), xml_tree(want), "body")
  else
    check_same(actual, expected, "body")
  end
end

local function split_uri(uri)
  local path, q = uri:match("^([^?]*)%??(.*)$")
  return path, q
end

local function check_input(proto, case, req)
  local want = case.serialized
  if want.method then check_same(req.method, want.method, "method") end
  local path, q = split_uri(req.url)
  local wpath, wq = split_uri(want.uri or "")
  check_same(path, wpath, "uri path")
  local function raw_pairs(text)
    local out = {}
    for piece in text:gmatch("[^&]+") do out[#out + 1] = piece end
    table.sort(out)
    return out
  end
  check_same(raw_pairs(q), raw_pairs(wq), "uri query")
  for name, value in pairs(want.headers or {}) do
    check_same(header(req.headers, name), value, "header " .. name)
  end
  for _, name in ipairs(want.forbidHeaders or {}) do
    check_same(header(req.headers, name), nil, "forbidden header " .. name)
  end
  for _, name in ipairs(want.requireHeaders or {}) do
    assert(header(req.headers, name) ~= nil, "required header " .. name .. " missing")
  end
  -- a case without a body says nothing about it (sends_requests_to_slash and
  -- json_1_1_client_sends_empty_payload_for_no_input_shape build the same request)
  if want.body ~= nil then check_body(proto, req.body, want.body) end
  if want.host then check_same(req.host, want.host, "host") end
end

-- the suites give timestamps as epoch seconds
local PARSE_OPTS = { timestamp = "epoch" }

local function check_output(case, result, err)
  if case.error or case.errorCode then
    assert(result == nil, "expected an error, got a result: " .. show(result))
    assert(err, "expected an error")
    check_same(err.code, case.errorCode or "", "error code")
    check_same(err.message, case.errorMessage or "", "error message")
    check_same(err.data or {}, case.error or {}, "error fields")
  else
    assert(err == nil, "unexpected error: " .. tostring(err))
    check_same(result, case.result or {}, "result")
  end
end

-- ---- the suites ----------------------------------------------------------------------------

local counts = {}

local function count(proto, what)
  counts[proto] = counts[proto] or { passed = 0, failed = 0, pending = 0, ignored = 0 }
  counts[proto][what] = counts[proto][what] + 1
end

for _, kind in ipairs({ "input", "output" }) do
  for _, f in ipairs(suites_data.files(kind)) do
    local base, suites = f.base, f.suites
    describe(base .. " " .. kind, function()
      for _, suite in ipairs(suites) do
        local proto = suite.metadata.protocol
        for _, case in ipairs(suite.cases) do
          local id = case.id or case.description
          local name = string.format("%s %s: %s: %s", proto, kind, suite.description, id)
          if suites_data.ignored(base, kind, suite, id) then
            count(proto, "ignored")
          elseif NOT_YET[id] then
            count(proto, "pending")
            pending(name .. " (not yet: " .. NOT_YET[id] .. ")")
          else
            it(name, function()
              count(proto, "failed")
              local m = assert(model.load({ metadata = suite.metadata, shapes = suite.shapes,
                operations = { [case.given.name] = case.given } }))
              if kind == "input" then
                local endpoint = suite.clientEndpoint
                local req, err = protocol.build(m, case.given.name, case.params,
                  { endpoint = endpoint })
                assert(req, tostring(err))
                check_input(proto, case, req)
              else
                local r = case.response
                local result, err = protocol.parse(m, case.given.name,
                  { status = r.status_code, headers = r.headers or {}, body = r.body or "" }, PARSE_OPTS)
                check_output(case, result, err)
              end
              counts[proto].failed = counts[proto].failed - 1
              count(proto, "passed")
            end)
          end
        end
      end
    end)
  end
end

describe("protocol suites", function()
  it("ran every protocol's cases, none left pending (AWSNET_VERBOSE=1 prints the counts)", function()
    for _, p in ipairs({ "ec2", "query", "json", "rest-json", "rest-xml" }) do
      local c = counts[p]
      assert.truthy(c, p .. ": no suite ran")
      assert.is_true(c.passed > 0, p .. ": no case ran")
      assert.equals(0, c.pending, p .. ": cases not yet supported")
      if os.getenv("AWSNET_VERBOSE") then
        io.stderr:write(string.format("aws protocol suites: %-9s %3d passed, %d failed, %d pending (not yet), %d ignored\n",
          p, c.passed, c.failed, c.pending, c.ignored))
      end
    end
  end)
end)

-- ---- what the suites do not cover --------------------------------------------------------

describe("awsnet.aws.protocol beyond the suites", function()
  local function ec2_model()
    return assert(model.load({
      metadata = { protocol = "ec2", apiVersion = "2016-11-15" },
      operations = {
        AuthorizeSecurityGroupIngress = { name = "AuthorizeSecurityGroupIngress", http = { method = "POST", requestUri = "/" },
          input = { shape = "AuthIn" } },
        RunInstances = { name = "RunInstances", http = { method = "POST", requestUri = "/" }, input = { shape = "RunIn" } },
        DescribeGroups = { name = "DescribeGroups", http = { method = "POST", requestUri = "/" },
          output = { shape = "GroupsOut" } },
      },
      shapes = {
        AuthIn = { type = "structure", required = { "GroupId" }, members = {
          GroupId = { shape = "String" },
          IpPermissions = { shape = "Perms" },
          Since = { shape = "Time" },
        } },
        Perms = { type = "list", member = { shape = "Perm", locationName = "item" } },
        Perm = { type = "structure", members = { FromPort = { shape = "Integer", locationName = "fromPort" } } },
        RunIn = { type = "structure", members = { ClientToken = { shape = "String", idempotencyToken = true } } },
        GroupsOut = { type = "structure", members = {
          Groups = { shape = "Groups", locationName = "groupSet" },
          Tags = { shape = "Groups", locationName = "tagSet" },
          Size = { shape = "Long", locationName = "size" },
          Name = { shape = "String", locationName = "name" },
          Created = { shape = "Time", locationName = "created" },
        } },
        Groups = { type = "list", member = { shape = "String", locationName = "item" } },
        String = { type = "string" }, Integer = { type = "integer" }, Long = { type = "long" },
        Time = { type = "timestamp" },
      },
    }))
  end

  it("refuses a wrong type with the path of the member", function()
    local req, err = protocol.build(ec2_model(), "AuthorizeSecurityGroupIngress",
      { GroupId = "sg-1", IpPermissions = { { FromPort = 22 }, { FromPort = "x" } } })
    assert.is_nil(req)
    assert.equal("invalid_parameter", err.code)
    assert.equal("IpPermissions[2].FromPort", err.path)
  end)

  it("refuses an unknown member and a missing required one", function()
    local _, err = protocol.build(ec2_model(), "AuthorizeSecurityGroupIngress", { GroupId = "sg-1", Bogus = 1 })
    assert.equal("invalid_parameter", err.code)
    assert.equal("Bogus", err.path)
    _, err = protocol.build(ec2_model(), "AuthorizeSecurityGroupIngress", {})
    assert.equal("invalid_parameter", err.code)
    assert.equal("GroupId", err.path)
  end)

  it("takes timestamps as epoch seconds or ISO 8601 text", function()
    local a = assert(protocol.build(ec2_model(), "AuthorizeSecurityGroupIngress", { GroupId = "g", Since = 1398796238 }))
    local b = assert(protocol.build(ec2_model(), "AuthorizeSecurityGroupIngress",
      { GroupId = "g", Since = "2014-04-29T20:30:38+02:00" }))
    assert.equal(a.body, b.body)
    assert.truthy(a.body:find("Since=2014-04-29T18%3A30%3A38Z", 1, true))
  end)

  it("fills an absent idempotency token with a UUID v4", function()
    local req = assert(protocol.build(ec2_model(), "RunInstances", {}))
    assert.truthy(req.body:match("ClientToken=%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x"))
    req = assert(protocol.build(ec2_model(), "RunInstances", { ClientToken = "mine" }))
    assert.truthy(req.body:find("ClientToken=mine", 1, true))
  end)

  it("types answers by shape: empty lists as [], absent lists absent, exact 64-bit integers, strings kept", function()
    local body = "<DescribeGroupsResponse><requestId>r</requestId><groupSet/><size>9007199254740993</size>"
      .. "<name>true</name><created>2014-04-29T18:30:38.5Z</created></DescribeGroupsResponse>"
    local r = assert(protocol.parse(ec2_model(), "DescribeGroups", { status = 200, headers = {}, body = body }))
    assert.equal("[]", jsoncodec.encode(r.Groups))
    assert.is_nil(r.Tags)
    assert.equal(9007199254740993, r.Size)
    assert.equal("integer", math.type(r.Size))
    assert.equal("true", r.Name)
    assert.equal("2014-04-29T18:30:38.500000+00:00", r.Created)
  end)

  it("gives ec2 errors their code, message and request id", function()
    local body = "<Response><Errors><Error><Code>InvalidGroup.NotFound</Code><Message>no such group</Message>"
      .. "</Error></Errors><RequestID>req-1</RequestID></Response>"
    local r, err = protocol.parse(ec2_model(), "DescribeGroups", { status = 400, headers = {}, body = body })
    assert.is_nil(r)
    assert.equal("InvalidGroup.NotFound", err.code)
    assert.equal("no such group", err.message)
    assert.equal("req-1", err.request_id)
    assert.equal(400, err.status)
  end)

  it("keeps 64-bit integers exact in JSON answers and encodes empty arrays as []", function()
    local v = assert(jsoncodec.decode('{"a": 9223372036854775807, "b": [], "c": 1.5}'))
    assert.equal(math.maxinteger, v.a)
    assert.equal('{"a":9223372036854775807,"b":[],"c":1.5}', jsoncodec.encode(v))
  end)

  it("raises on arguments of the wrong type", function()
    assert.has_error(function() protocol.build(nil, "X") end)
    assert.has_error(function() protocol.build(ec2_model(), 1) end)
    assert.has_error(function() protocol.parse(ec2_model(), "DescribeGroups", "body") end)
  end)
end)
