-- The server side of the protocols (`protocol.parse_request`, `protocol.render`,
-- `protocol.render_error`) against the AWS protocol suites in reverse, for the protocols the
-- sandbox speaks (ec2, query, json, rest-json): an input case's request, as `build` makes it,
-- parses back to its params; an output case's result renders to an answer `parse` reads back to the
-- same result, and an error case's error to the same code and message.
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"
local model = require "awsnet.aws.model"
local protocol = require "awsnet.aws.protocol"
local shape = require "awsnet.aws.shape"

local suites_data = require "helpers.protocol_suites"
local PROTOCOLS = { ec2 = true, query = true, json = true, ["rest-json"] = true }

-- case id -> why it does not round-trip (the wire does not carry what the params say)
local NOT_ROUND_TRIP = {
  -- the map's "bar" loses to the member bound to "bar" on the wire; a server cannot see it
  RestJsonQueryPrecedence = "a query map's value shadowed by a member is not sent",
  -- a server's query map takes every parameter (AllQueryStringTypes wants that), the member's too
  RestJsonQueryParamsStringListMap = "a query map's value shadowed by a member is not sent",
  HttpPrefixHeadersResponse = "a map of every header (prefix \"\") reads the request id and content type too",
}

local show, SPECIAL = suites_data.show, suites_data.SPECIAL

-- `sparse`: an empty list or map the wire leaves out (ec2 lists, query strings) reads back absent
local function differ(actual, expected, path, sparse)
  if expected == jsoncodec.null then expected = nil end
  if sparse and actual == nil and type(expected) == "table" and next(expected) == nil then return nil end
  -- and an absent structure payload is sent as {}, which reads back as an empty structure
  if sparse and expected == nil and type(actual) == "table" and next(actual) == nil then return nil end
  if type(expected) == "table" then
    if type(actual) ~= "table" then return path .. ": expected " .. show(expected) .. ", got " .. show(actual) end
    for k, v in pairs(expected) do
      local d = differ(actual[k], v, path .. "." .. tostring(k), sparse)
      if d then return d end
    end
    for k in pairs(actual) do
      if expected[k] == nil and differ(actual[k], nil, "", sparse) then
        return path .. "." .. tostring(k) .. ": unexpected " .. show(actual[k])
      end
    end
    return nil
  end
  if type(actual) == "number" and math.type(actual) == "float" and SPECIAL[expected] then
    -- the suites write these floats as strings: JSON has no text for them
    if (expected == "NaN" and actual ~= actual) or SPECIAL[expected] == actual then return nil end
  end
  if type(expected) == "number" and type(actual) == "number" then
    if (expected ~= expected and actual ~= actual) or expected == actual then return nil end
  elseif expected == actual then
    return nil
  end
  return path .. ": expected " .. show(expected) .. ", got " .. show(actual)
end

local function check_same(actual, expected, what, sparse)
  local d = differ(actual, expected, what, sparse)
  if d then error(d, 2) end
end

local ran, skipped = {}, 0

for _, kind in ipairs({ "input", "output" }) do
  for _, f in ipairs(suites_data.files(kind)) do
    local file, suites = f.file, f.suites
    describe(file .. " " .. kind .. " in reverse", function()
      for _, suite in ipairs(suites) do
        local proto = suite.metadata.protocol
        if PROTOCOLS[proto] then
          for _, case in ipairs(suite.cases) do
            local id = case.id or case.description
            local name = string.format("%s %s: %s: %s", proto, kind, suite.description, id)
            if suites_data.ignored(f.base, kind, suite, id) then
              skipped = skipped + 1 -- the suites' own ignore list, as the client side skips them
            elseif NOT_ROUND_TRIP[id] then
              pending(name .. " (" .. NOT_ROUND_TRIP[id] .. ")")
            else
              it(name, function()
                local m = assert(model.load({ metadata = suite.metadata, shapes = suite.shapes,
                  operations = { [case.given.name] = case.given } }))
                local op = case.given.name
                if kind == "input" then
                  -- checked first: the idempotency token filled once
                  local want = case.given.input and assert(shape.check(m, case.given.input, case.params)) or {}
                  local req = assert(protocol.build(m, op, want))
                  local unknown = {}
                  local params, err = protocol.parse_request(m, op, req,
                    { on_unknown = function(p) unknown[#unknown + 1] = p end })
                  assert(params, tostring(err))
                  assert.same({}, unknown)
                  check_same(params, want, "params", true)
                elseif case.errorCode then
                  local resp = protocol.render_error(m, { code = case.errorCode, message = case.errorMessage,
                    status = case.response.status_code, data = case.error }, { request_id = "rid" })
                  local result, err = protocol.parse(m, op, resp, { timestamp = "epoch" })
                  assert.is_nil(result)
                  check_same(err.code, case.errorCode, "error code")
                  check_same(err.message, case.errorMessage or "", "error message")
                else
                  local unknown = {}
                  local resp = assert(protocol.render(m, op, case.result or {}, { request_id = "rid",
                    on_unknown = function(p) unknown[#unknown + 1] = p end }))
                  assert.same({}, unknown)
                  assert(protocol.parse(m, op, resp, { timestamp = "epoch",
                    on_unknown = function(_, el) if el ~= "requestId" then unknown[#unknown + 1] = el end end }))
                  assert.same({}, unknown)
                  local result, err = protocol.parse(m, op, resp, { timestamp = "epoch" })
                  assert(result, tostring(err))
                  check_same(result, case.result or {}, "result")
                end
                ran[proto] = (ran[proto] or 0) + 1
              end)
            end
          end
        end
      end
    end)
  end
end

describe("the server side", function()
  it("ran cases of every protocol the sandbox speaks", function()
    for p in pairs(PROTOCOLS) do assert.is_true((ran[p] or 0) > 0, p .. ": no case ran") end
  end)

  local ec2 = {
    metadata = { protocol = "ec2", apiVersion = "2016-11-15", xmlNamespace = "http://ec2.amazonaws.com/doc/2016-11-15" },
    shapes = {
      In = { type = "structure", members = { VpcIds = { shape = "Ids", locationName = "VpcId" },
        DryRun = { shape = "Bool", locationName = "dryRun" } } },
      Ids = { type = "list", member = { shape = "Str", locationName = "item" } },
      Str = { type = "string" }, Bool = { type = "boolean" },
    },
    operations = { DescribeVpcs = { name = "DescribeVpcs", input = { shape = "In" } } },
  }

  it("reads ec2 form parameters by member name and reports those the model does not know", function()
    local m = assert(model.load(ec2))
    local unknown = {}
    local params = assert(protocol.parse_request(m, "DescribeVpcs", { method = "POST",
      body = "Action=DescribeVpcs&Version=2016-11-15&VpcId.1=vpc-1&VpcId.2=vpc-2&DryRun=false&VpcIdd.1=x" },
      { on_unknown = function(p) unknown[#unknown + 1] = p end }))
    assert.same({ VpcIds = { "vpc-1", "vpc-2" }, DryRun = false }, params)
    assert.same({ "VpcIdd.1" }, unknown)
  end)

  it("refuses a value that does not fit the shape", function()
    local m = assert(model.load(ec2))
    local params, err = protocol.parse_request(m, "DescribeVpcs", { method = "POST",
      body = "Action=DescribeVpcs&DryRun=maybe" })
    assert.is_nil(params)
    assert.equals("invalid_parameter", err.code)
    assert.equals("DryRun", err.path)
  end)

  it("answers an ec2 operation without output with <return>true</return>", function()
    local m = assert(model.load(ec2))
    local resp = protocol.render(m, "DescribeVpcs", nil, { request_id = "r-1" })
    assert.matches("<DescribeVpcsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016%-11%-15/\"><requestId>r%-1"
      .. "</requestId><return>true</return></DescribeVpcsResponse>", resp.body)
  end)

  it("raises on arguments of the wrong type", function()
    local m = assert(model.load(ec2))
    assert.has_error(function() protocol.parse_request(nil, "DescribeVpcs", {}) end)
    assert.has_error(function() protocol.parse_request(m, 1, {}) end)
    assert.has_error(function() protocol.parse_request(m, "DescribeVpcs", "x") end)
    assert.has_error(function() protocol.render(m, "DescribeVpcs", "x") end)
    assert.has_error(function() protocol.render_error(m, "x") end)
  end)
end)
