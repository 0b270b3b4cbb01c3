-- The sandbox speaks by the models (issue 15, "The sandbox's request path", item 1): EC2 refuses a
-- parameter its model does not know with UnknownParameter, as AWS does, and every answer the
-- scenario reads has the model's element names in the model's order.
local sigv4 = require "awsnet.sigv4"
local sandbox = require "awsnet.sandbox"
local protocol = require "awsnet.aws.protocol"
local shape = require "awsnet.aws.shape"
local xmldoc = require "awsnet.aws.protocol.xmldoc"

local A = "111111111111"

-- Sends raw request text and steps `sb` until the answer is back: status, body.
local function exchange(sb, text)
  local status, _, body = require("helpers.sandbox_exchange")(sb, text)
  return status, body
end

-- An EC2 form body signed as account A and sent as it is.
local function ec2_raw(sb, body)
  local headers = assert(sigv4.sign({ method = "POST", url = "http://127.0.0.1:" .. sb.port .. "/",
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" }, body = body },
    { access_key_id = A, secret_access_key = "test" }, { region = "us-east-1", service = "ec2" }))
  local lines = { "POST / HTTP/1.1" }
  for k, v in pairs(headers) do lines[#lines + 1] = k .. ": " .. v end
  lines[#lines + 1] = "Content-Length: " .. #body
  return exchange(sb, table.concat(lines, "\r\n") .. "\r\n\r\n" .. body)
end

describe("sandbox by the models", function()
  local sb
  setup(function() sb = assert(sandbox.start { port = 0, seed = 3 }) end)
  teardown(function() if sb then sb:stop() end end)

  it("refuses an EC2 parameter the model does not know, as AWS does", function()
    local status, body = ec2_raw(sb, "Action=DescribeVpcs&Version=2016-11-15&VpcIdd.1=vpc-1")
    assert.equals(400, status, body)
    assert.matches("<Code>UnknownParameter</Code>", body, 1, true)
    assert.matches("<Message>The parameter VpcIdd.1 is not recognized</Message>", body, 1, true)
    -- the model's own wire names pass
    status, body = ec2_raw(sb, "Action=DescribeVpcs&Version=2016-11-15&Filter.1.Name=cidr&Filter.1.Value.1=10.0.0.0/16")
    assert.equals(200, status, body)
  end)

  it("refuses a value that does not fit the EC2 shape", function()
    local status, body = ec2_raw(sb, "Action=DescribeVpcs&Version=2016-11-15&DryRun=perhaps")
    assert.equals(400, status, body)
    assert.matches("<Code>InvalidParameterValue</Code>", body, 1, true)
  end)
end)

-- ---- every answer the scenario reads, against the model ---------------------------------------

local trait = shape.trait

-- Elements under `el` that no member of `ref` names, or that come before a member the model lists
-- earlier, as paths.
local function problems(m, ref, el, path, out)
  local s = m.shapes[ref.shape]
  if s.type == "structure" then
    local index = {}
    for i, name in ipairs(shape.member_names(s)) do
      local mref = s.members[name]
      index[trait(mref, m.shapes[mref.shape], "locationName") or name] = { i, mref }
    end
    local last = 0
    for _, c in ipairs(el.children) do
      local lname = xmldoc.local_name(c.name)
      local e = index[lname]
      if not e then
        out[#out + 1] = path .. "/" .. lname .. ": not in the model"
      else
        if e[1] < last then out[#out + 1] = path .. "/" .. lname .. ": out of the model's order" end
        last = e[1]
        problems(m, e[2], c, path .. "/" .. lname, out)
      end
    end
  elseif s.type == "list" then
    for _, c in ipairs(el.children) do problems(m, s.member, c, path .. "/" .. xmldoc.local_name(c.name), out) end
  end
end

describe("sandbox answers the scenario reads", function()
  local sandboxed = require "awsnet.scenario.sandboxed"
  local scenario = require "awsnet.scenario.tgw_lambda_rds"
  local original = protocol.parse
  local seen, bad = {}, {}

  setup(function()
    protocol.parse = function(m, op, resp, opts)
      local o = {}
      for k, v in pairs(opts or {}) do o[k] = v end
      local what = (m.metadata.endpointPrefix or "?") .. ":" .. op
      seen[what] = true
      -- answers only: an error's envelope (Type, Code, __type) is no member of its shape
      if (resp.status or 200) < 300 then o.on_unknown = function(parent, key)
        -- EC2's requestId is not in the models
        if key ~= "requestId" then bad[#bad + 1] = what .. ": " .. tostring(parent) .. "/" .. tostring(key) end
      end end
      local p = m.metadata.protocol
      if (resp.status or 200) < 300 and (p == "ec2" or p == "query") and m.operations[op].output then
        local root = assert(xmldoc.parse(resp.body))
        local el
        if p == "query" then
          el = xmldoc.child(root, m.operations[op].output.resultWrapper or (op .. "Result"))
        else
          -- EC2's requestId is not in the models
          local kids = {}
          for _, c in ipairs(root.children) do if c.name ~= "requestId" then kids[#kids + 1] = c end end
          el = { name = root.name, children = kids }
        end
        if el then
          local out = {}
          problems(m, m.operations[op].output, el, what, out)
          for _, p_ in ipairs(out) do bad[#bad + 1] = p_ end
        end
      end
      return original(m, op, resp, o)
    end
  end)
  teardown(function() protocol.parse = original end)

  it("has the model's names in the model's order in every answer of apply and destroy", function()
    local sb = assert(sandboxed.start { seed = 5 })
    local ok, err = pcall(function()
      local cfg = assert(scenario.config(sb:config { name = "net" }))
      local rb = assert(scenario.runbook(cfg))
      assert(rb:apply())
      assert(rb:destroy())
    end)
    sb:stop()
    assert(ok, err)
    assert.is_true(seen["ec2:DescribeVpcs"] or seen["ec2:CreateVpc"] or false, "no EC2 answer was read")
    assert.same({}, bad)
  end)
end)
