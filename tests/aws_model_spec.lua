-- awsnet.aws.model: AWS's service models read from botocore's data folder.
-- The real models are Debian's python3-botocore (installed by `make deps`); the folders this spec
-- builds itself (gzipped copies, tiny made-up models) live in temp folders removed after each test.
local model = require "awsnet.aws.model"
local process = require "awsnet.svc.process"
local cjson = require "cjson"

local q = process.quote
local BOTOCORE = "/usr/lib/python3/dist-packages/botocore/data"
local AWSCLI = "/usr/lib/python3/dist-packages/awscli/botocore/data"
-- Debian's python3-botocore alone: what an AWSNET_MODELS_PATH of the test runner would change
local DEB = { path = { BOTOCORE }, default_path = false }

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Temp folders, removed by the after_each below whether the test passed or not (busted keeps one
-- `finally` per test, so a test with two folders could not register both that way).
local made = {}
local function tempdir()
  local dir = process.tempdir("awsnet-model")
  made[#made + 1] = dir
  return dir
end

local function write(path, text)
  assert(os.execute("mkdir -p " .. q(path:match("^(.*)/"))))
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function write_json(path, value)
  write(path, cjson.encode(value))
end

local function contains(list, value)
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end

local function is_sorted(list)
  for i = 2, #list do if list[i - 1] >= list[i] then return false end end
  return true
end

-- A small model of a made-up service, as a Lua table (also written as service-2.json below).
local function tiny_model(version)
  return {
    version = "2.0",
    metadata = { protocol = "json", jsonVersion = "1.1", targetPrefix = "Tiny_" .. version:gsub("%-", ""),
      apiVersion = version, endpointPrefix = "tiny", serviceId = "Tiny", signatureVersion = "v4" },
    operations = {
      CreateThing = { name = "CreateThing", http = { method = "POST", requestUri = "/" },
        input = { shape = "CreateThingInput" }, output = { shape = "CreateThingOutput" },
        documentation = "<p>Creates a <b>thing</b>. Things are small.</p>" },
      ListThings = { name = "ListThings", http = { method = "POST", requestUri = "/" },
        input = { shape = "ListThingsInput" }, output = { shape = "ListThingsOutput" } },
    },
    shapes = {
      CreateThingInput = { type = "structure", required = { "Name" }, members = {
        Name = { shape = "Name", documentation = "<p>The thing's name. Unique.</p>" },
        Tags = { shape = "TagMap" }, Parts = { shape = "PartList" }, Owner = { shape = "Owner" } } },
      CreateThingOutput = { type = "structure", members = { Id = { shape = "Name" } } },
      ListThingsInput = { type = "structure", members = { NextToken = { shape = "Name" } } },
      ListThingsOutput = { type = "structure", members = { Things = { shape = "PartList" },
        NextToken = { shape = "Name" } } },
      Name = { type = "string", min = 1, max = 64 },
      TagMap = { type = "map", key = { shape = "Name" }, value = { shape = "Name" } },
      PartList = { type = "list", member = { shape = "Owner" } },
      Owner = { type = "structure", members = { Id = { shape = "Name" } } },
    },
  }
end

-- Runs Lua code in a fresh lua5.4 with AWSNET_MODELS_PATH set to `env` (or unset), from the
-- repository's top (busted's working folder); returns its output.
local function run_lua(env, code)
  local cmd = "env -u AWSNET_MODELS_PATH " .. (env and ("AWSNET_MODELS_PATH=" .. q(env) .. " ") or "")
    .. "lua5.4 -e " .. q("package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path") .. " -e " .. q(code)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("a")
  local ok = p:close()
  assert(ok, out)
  return out
end

-- The cache of preprocessed models goes to a temp folder, never to the real home.
local CACHE = process.tempdir("awsnet-model-cache")
model.set_cache(CACHE)

describe("awsnet.aws.model", function()
  teardown(function()
    model.set_cache(nil)
    os.execute("rm -rf " .. q(CACHE))
  end)

  after_each(function()
    for _, dir in ipairs(made) do os.execute("rm -rf " .. q(dir)) end
    made = {}
    model.configure({})
  end)

  describe("argument checks", function()
    it("raises on misuse", function()
      assert.has_error(function() model.load(42) end)
      assert.has_error(function() model.load("ec2", 5) end)
      assert.has_error(function() model.load("ec2", { path = 5 }) end)
      assert.has_error(function() model.find(nil) end)
      assert.has_error(function() model.find("ec2", { api_version = 2016 }) end)
      assert.has_error(function() model.configure(nil) end)
      assert.has_error(function() model.configure({ path = { 1 } }) end)
      assert.has_error(function() model.services(1) end)
      assert.has_error(function() model.endpoints("x") end)
      assert.has_error(function() model.search_path(true) end)
      assert.has_error(function() model.nearest(nil, {}) end)
      local m = assert(model.load(tiny_model("2020-01-01")))
      assert.has_error(function() m:operation(1) end)
      assert.has_error(function() m:shape(nil) end)
      assert.has_error(function() m:paginator({}) end)
      assert.has_error(function() m:waiter(false) end)
      assert.has_error(function() m:help(nil) end)
    end)
  end)

  describe("a model given as a table", function()
    it("is checked and wrapped", function()
      local m, err = model.load(tiny_model("2020-01-01"))
      assert.is_nil(err)
      assert.equals("json", m.metadata.protocol)
      assert.equals("tiny", m.service)
      assert.same({ "CreateThing", "ListThings" }, m:operations())
      assert.equals("CreateThing", m:operation("CreateThing").name)
      assert.equals("structure", m:shape("Owner").type)
      assert.equals("unknown_shape", select(2, m:shape("Ownr")).code)
      assert.same({}, m:waiters())
      assert.equals("no_paginator", select(2, m:paginator("ListThings")).code)
    end)

    it("refuses a protocol awsnet does not speak", function()
      local t = tiny_model("2020-01-01")
      t.metadata.protocol = "soap"
      local m, err = model.load(t)
      assert.is_nil(m)
      assert.equals("invalid_model", err.code)
      assert.matches("metadata.protocol soap is not one of", err.message, 1, true)
      t.metadata = nil
      assert.equals("invalid_model", select(2, model.load(t)).code)
    end)

    it("refuses a shape reference that resolves to nothing", function()
      local t = tiny_model("2020-01-01")
      t.shapes.PartList.member.shape = "Part"
      t.operations.ListThings.output.shape = "Nowhere"
      local m, err = model.load(t)
      assert.is_nil(m)
      assert.equals("invalid_model", err.code)
      assert.same({ "operation ListThings output refers to unknown shape Nowhere",
        "shape PartList member refers to unknown shape Part" }, err.problems)
      assert.matches("2 problems", err.message, 1, true)
    end)

    it("takes paginators and waiters as botocore's files hold them", function()
      local t = tiny_model("2020-01-01")
      t.paginators = { ListThings = { input_token = "NextToken", output_token = "NextToken", result_key = "Things" } }
      t.waiters = { ThingExists = { operation = "ListThings", delay = 5, maxAttempts = 3, acceptors = {} } }
      local m = assert(model.load(t))
      assert.equals("Things", m:paginator("ListThings").result_key)
      assert.same({ "ThingExists" }, m:waiters())
      assert.equals("ListThings", m:waiter("ThingExists").operation)
      local _, err = m:waiter("ThingExist")
      assert.equals("unknown_waiter", err.code)
      assert.same({ "ThingExists" }, err.suggestions)
    end)

    it("has help: members, their types one level deep, required ones first and marked", function()
      local m = assert(model.load(tiny_model("2020-01-01")))
      local help = assert(m:help("CreateThing"))
      assert.matches("Creates a thing.\n", help, 1, true)
      assert.is_nil(help:find("Things are small", 1, true))
      local lines = {}
      for line in help:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.matches("^  Name%s+string%s+required%s+The thing's name%.$", lines[4])
      assert.matches("^  Owner%s+structure Owner$", lines[5])
      assert.matches("^  Parts%s+list of Owner$", lines[6])
      assert.matches("^  Tags%s+map of string to string$", lines[7])
      assert.matches("Output (CreateThingOutput): Id", help, 1, true)
      assert.equals("unknown_operation", select(2, m:help("CreateThings")).code)
    end)
  end)

  describe("folders built by the spec", function()
    it("says what to install when no models are found", function()
      local dir = tempdir()
      local missing = dir .. "/missing"
      local m, err = model.load("ec2", { path = { dir, missing }, default_path = false })
      assert.is_nil(m)
      assert.equals("model_not_found", err.code)
      assert.equals("ec2", err.service)
      assert.same({ dir, missing }, err.searched)
      assert.matches('"ec2"', err.message, 1, true)
      assert.matches(dir .. " (empty), " .. missing .. " (missing)", err.message, 1, true)
      assert.matches("apt-get install python3-botocore", err.message, 1, true)
      assert.matches("AWSNET_MODELS_PATH", err.message, 1, true)
      assert.equals("model_not_found", select(2, model.endpoints({ path = { dir }, default_path = false })).code)
      assert.same({}, model.services({ path = { dir }, default_path = false }))
    end)

    it("reads .json.gz files (a pip-installed botocore's)", function()
      local src = BOTOCORE .. "/ram/2018-01-04"
      if not exists(src .. "/service-2.json") then
        pending("python3-botocore is not installed (make deps)")
        return
      end
      local dir = tempdir()
      local dst = dir .. "/ram/2018-01-04"
      assert(os.execute("mkdir -p " .. q(dst)))
      for _, f in ipairs({ "service-2", "paginators-1" }) do
        assert(os.execute(("gzip -c %s > %s"):format(q(src .. "/" .. f .. ".json"), q(dst .. "/" .. f .. ".json.gz"))))
      end
      assert(os.execute(("gzip -c %s > %s"):format(q(BOTOCORE .. "/endpoints.json"), q(dir .. "/endpoints.json.gz"))))
      local opts = { path = { dir }, default_path = false }
      assert.same({ "ram" }, model.services(opts))
      local m = assert(model.load("ram", opts))
      assert.equals(dir, m.folder)
      assert.equals("rest-json", m.metadata.protocol)
      assert.is_table(m:operation("GetResourceShares"))
      assert.equals("nextToken", m:paginator("GetResourcePolicies").input_token)
      assert.equals("aws", model.endpoints(opts).partitions[1].partition)
    end)

    it("says a broken file is an invalid model", function()
      local dir = tempdir()
      write(dir .. "/tiny/2020-01-01/service-2.json", "{ not json")
      local m, err = model.load("tiny", { path = { dir }, default_path = false })
      assert.is_nil(m)
      assert.equals("invalid_model", err.code)
      assert.matches(dir .. "/tiny/2020-01-01/service-2.json", err.message, 1, true)
      write(dir .. "/gz/2020-01-01/service-2.json.gz", "not gzip")
      assert.equals("invalid_model", select(2, model.load("gz", { path = { dir }, default_path = false })).code)
    end)

    it("merges sdk extras as botocore's deep_merge does (objects merge, lists replace)", function()
      local dir = tempdir()
      local base = tiny_model("2020-01-01")
      base.metadata.nested = { a = 1, b = 2 }
      write_json(dir .. "/tiny/2020-01-01/service-2.json", base)
      write_json(dir .. "/tiny/2020-01-01/service-2.sdk-extras.json", { version = 1.0, merge = {
        metadata = { serviceId = "Tiny Two", nested = { b = 3 } },
        shapes = { CreateThingInput = { required = { "Owner" }, members = { Extra = { shape = "Name" } } } },
      } })
      write_json(dir .. "/tiny/2020-01-01/paginators-1.json", { pagination = {
        ListThings = { input_token = "NextToken", output_token = "NextToken", result_key = "Things" } } })
      write_json(dir .. "/tiny/2020-01-01/paginators-1.sdk-extras.json", { version = 1.0, merge = {
        pagination = { ListThings = { non_aggregate_keys = { "Owner" } } } } })
      local m = assert(model.load("tiny", { path = { dir }, default_path = false }))
      assert.equals("Tiny Two", m.metadata.serviceId)
      assert.same({ a = 1, b = 3 }, m.metadata.nested)
      local input = m:shape("CreateThingInput")
      assert.same({ "Owner" }, input.required)
      assert.same({ "Extra", "Name", "Owner", "Parts", "Tags" }, (function()
        local names = {}
        for k in pairs(input.members) do names[#names + 1] = k end
        table.sort(names)
        return names
      end)())
      assert.same({ "Owner" }, m:paginator("ListThings").non_aggregate_keys)
      assert.equals("Things", m:paginator("ListThings").result_key)
      -- cjson decodes every number as a float; the loader gives integers back
      assert.equals("integer", math.type(m:shape("Name").max))
    end)

    it("takes the first folder that has the service, and there its newest version", function()
      local a, b = tempdir(), tempdir()
      write_json(a .. "/tiny/2020-01-01/service-2.json", tiny_model("2020-01-01"))
      write_json(b .. "/tiny/2021-06-30/service-2.json", tiny_model("2021-06-30"))
      write_json(b .. "/tiny/2019-01-01/service-2.json", tiny_model("2019-01-01"))
      -- a version folder without a service-2 file is no version (as for botocore)
      write_json(b .. "/tiny/2030-01-01/paginators-1.json", { pagination = {} })
      local both = { path = { a, b }, default_path = false }
      local found = assert(model.find("tiny", both))
      assert.equals(a, found.folder)
      assert.equals("2020-01-01", found.api_version)
      found = assert(model.find("tiny", { path = { b, a }, default_path = false }))
      assert.same({ b, "2021-06-30", { "2019-01-01", "2021-06-30" } }, { found.folder, found.api_version, found.versions })
      assert.equals(b .. "/tiny/2021-06-30", found.dir)
      -- a named version is looked for in every folder
      local old = assert(model.load("tiny", { path = { a, b }, default_path = false, api_version = "2019-01-01" }))
      assert.equals("2019-01-01", old.metadata.apiVersion)
      assert.equals(b, old.folder)
      local _, err = model.find("tiny", { path = { a, b }, default_path = false, api_version = "2018-01-01" })
      assert.equals("model_not_found", err.code)
      assert.same({ "2020-01-01" }, err.versions)
      -- a colon-separated string is a path too; trailing slashes and repeats do not count
      assert.same({ a, b }, model.search_path({ path = a .. "/:" .. b .. ":" .. a, default_path = false }))
    end)

    it("caches one model per folder, service and version", function()
      local a, b = tempdir(), tempdir()
      write_json(a .. "/tiny/2020-01-01/service-2.json", tiny_model("2020-01-01"))
      write_json(b .. "/tiny/2020-01-01/service-2.json", tiny_model("2020-01-01"))
      local m1 = assert(model.load("tiny", { path = { a }, default_path = false }))
      local m2 = assert(model.load("tiny", { path = { a }, default_path = false, api_version = "2020-01-01" }))
      local m3 = assert(model.load("tiny", { path = { b }, default_path = false }))
      assert.is_true(rawequal(m1, m2))
      assert.is_false(rawequal(m1, m3))
    end)

    it("uses model.configure's path before AWSNET_MODELS_PATH, and a call's path before both", function()
      local a, b = tempdir(), tempdir()
      local saved = model.configure({ path = { a }, default_path = false })
      assert.same({ default_path = true }, saved)
      assert.same({ a }, model.search_path())
      assert.same({ b }, model.search_path({ path = { b } }))
      local previous = model.configure({})
      assert.same({ path = { a }, default_path = false }, previous)
    end)
  end)

  describe("AWSNET_MODELS_PATH (in a fresh lua5.4)", function()
    local FIND = [[
      local model = require "awsnet.aws.model"
      for _, s in ipairs({ "tiny", "ec2", "sts" }) do
        local f, err = model.find(s, ...)
        print(s, f and f.folder or err.code, f and f.api_version or "-")
      end
      print("path", table.concat(model.search_path(), ":"))
    ]]

    it("comes before the Debian folders, after the configured path", function()
      if not exists(BOTOCORE .. "/sts") then
        pending("python3-botocore is not installed (make deps)")
        return
      end
      local env, conf = tempdir(), tempdir()
      write_json(env .. "/tiny/2020-01-01/service-2.json", tiny_model("2020-01-01"))
      -- an older ec2 first on the path wins over Debian's newer one
      write_json(env .. "/ec2/2001-01-01/service-2.json", tiny_model("2001-01-01"))
      write_json(conf .. "/tiny/2022-02-02/service-2.json", tiny_model("2022-02-02"))

      local out = run_lua(env .. ":" .. env .. "/nothing", FIND)
      assert.matches("tiny\t" .. env .. "\t2020-01-01\n", out, 1, true)
      assert.matches("ec2\t" .. env .. "\t2001-01-01\n", out, 1, true)
      assert.matches("sts\t" .. BOTOCORE .. "\t2011-06-15\n", out, 1, true)
      assert.matches("path\t" .. env .. ":" .. env .. "/nothing:" .. BOTOCORE .. ":" .. AWSCLI .. "\n", out, 1, true)

      out = run_lua(env, "require('awsnet.aws.model').configure({ path = { '" .. conf .. "' } })\n" .. FIND)
      assert.matches("tiny\t" .. conf .. "\t2022-02-02\n", out, 1, true)
      assert.matches("ec2\t" .. env .. "\t2001-01-01\n", out, 1, true)

      out = run_lua(nil, FIND)
      assert.matches("tiny\tmodel_not_found\t-\n", out, 1, true)
      assert.matches("ec2\t" .. BOTOCORE .. "\t2016-11-15\n", out, 1, true)
      assert.matches("path\t" .. BOTOCORE .. ":" .. AWSCLI .. "\n", out, 1, true)

      -- default_path = false leaves out the variable and the Debian folders
      out = run_lua(env, FIND:gsub("%.%.%.", "{ path = { '" .. conf .. "' }, default_path = false }"))
      assert.matches("ec2\tmodel_not_found\t-\n", out, 1, true)
      assert.matches("tiny\t" .. conf .. "\t2022-02-02\n", out, 1, true)
    end)
  end)

  describe("Debian's python3-botocore", function()
    if not exists(BOTOCORE .. "/ec2") then
      pending("python3-botocore is not installed (make deps): " .. BOTOCORE)
      return
    end

    it("loads each service with its protocol and metadata", function()
      local want = { ec2 = "ec2", sts = "query", iam = "query", rds = "query", elbv2 = "query", lambda = "rest-json",
        ram = "rest-json", organizations = "json", s3 = "rest-xml" }
      for service, protocol in pairs(want) do
        local m, err = model.load(service, DEB)
        assert(m, tostring(err))
        assert.equals(protocol, m.metadata.protocol, service)
        assert.equals(service, m.service)
        assert.equals(BOTOCORE, m.folder)
        assert.is_string(m.metadata.apiVersion, service)
        assert.is_string(m.metadata.serviceId, service)
      end
      local org = assert(model.load("organizations", DEB))
      assert.equals("1.1", org.metadata.jsonVersion)
      assert.equals("AWSOrganizationsV20161128", org.metadata.targetPrefix)
      local ec2 = assert(model.load("ec2", DEB))
      assert.same({ "ec2", "EC2", "v4" }, { ec2.metadata.endpointPrefix, ec2.metadata.serviceId,
        ec2.metadata.signatureVersion })
      assert.equals("elasticloadbalancing", assert(model.load("elbv2", DEB)).metadata.endpointPrefix)
      assert.equals("s3", assert(model.load("s3", DEB)).metadata.signatureVersion)
    end)

    it("picks the newest API version, or the one asked for", function()
      local found = assert(model.find("ec2", DEB))
      assert.equals("2016-11-15", found.api_version)
      assert.equals(BOTOCORE .. "/ec2/2016-11-15", found.dir)
      assert.is_true(contains(found.versions, "2015-10-01"))
      local old = assert(model.load("ec2", { path = { BOTOCORE }, default_path = false, api_version = "2015-10-01" }))
      assert.equals("2015-10-01", old.metadata.apiVersion)
      assert.equals("2015-10-01", old.api_version)
      assert.is_false(rawequal(old, model.load("ec2", DEB)))
    end)

    it("loads a service once per process", function()
      local m = assert(model.load("ec2", DEB))
      assert.is_true(rawequal(m, model.load("ec2", DEB)))
      assert.is_true(rawequal(m, model.load("ec2", { path = { BOTOCORE .. "/" }, default_path = false })))
    end)

    it("lists operations sorted and names the nearest to an unknown one", function()
      local m = assert(model.load("ec2", DEB))
      local ops = m:operations()
      assert.is_true(#ops > 500)
      assert.is_true(is_sorted(ops))
      assert.is_true(contains(ops, "DescribeVpcs"))
      assert.equals("DescribeVpcs", m.operations.DescribeVpcs.name)
      assert.equals("POST", m:operation("DescribeVpcs").http.method)
      local op, err = m:operation("DescribeVpc")
      assert.is_nil(op)
      assert.equals("unknown_operation", err.code)
      assert.equals("DescribeVpcs", err.suggestions[1])
      assert.matches("nearest: DescribeVpcs", err.message, 1, true)
    end)

    it("explains an operation's input", function()
      local ec2 = assert(model.load("ec2", DEB))
      local help = assert(ec2:help("CreateVpc"))
      assert.matches("^CreateVpc %(ec2 2016%-11%-15%)\n  Creates a VPC", help)
      assert.matches("\n  CidrBlock%s+string%s+The IPv4 network range", help)
      assert.matches("\n  TagSpecifications%s+list of TagSpecification%s", help)
      assert.matches("\n  InstanceTenancy%s+string, one of default|dedicated|host%s", help)
      assert.is_nil(help:find("<", 1, true))
      assert.is_nil(help:find("  required  ", 1, true))
      local elbv2 = assert(model.load("elbv2", DEB))
      help = assert(elbv2:help("CreateLoadBalancer"))
      assert.matches("\n  Name%s+string%s+required%s+The name of the load balancer", help)
      assert.matches("\n  Subnets%s+list of string%s+The IDs", help)
      assert.matches("Pages: output NextToken %-> input NextToken", ec2:help("DescribeVpcs"))
    end)

    it("reads paginators and waiters", function()
      local ec2 = assert(model.load("ec2", DEB))
      local p = assert(ec2:paginator("DescribeRouteTables"))
      assert.same({ "NextToken", "NextToken", "MaxResults", "RouteTables" },
        { p.input_token, p.output_token, p.limit_key, p.result_key })
      assert.equals("no_paginator", select(2, ec2:paginator("CreateVpc")).code)
      assert.equals("unknown_operation", select(2, ec2:paginator("CreateVpcs")).code)
      local w = assert(ec2:waiter("VpcAvailable"))
      assert.equals("DescribeVpcs", w.operation)
      assert.equals("integer", math.type(w.delay))
      assert.equals("Vpcs[].State", w.acceptors[1].argument)
      local names = ec2:waiters()
      assert.is_true(is_sorted(names))
      assert.is_true(contains(names, "VpcAvailable"))
      assert.same({}, assert(model.load("sts", DEB)):waiters())
    end)

    it("merges the sdk extras Debian ships", function()
      local rds = assert(model.load("rds", DEB))
      local ref = rds:shape("CopyDBSnapshotMessage").members.SourceRegion
      assert.equals("String", ref.shape)
      assert.is_true(contains(rds:shape("CopyDBSnapshotMessage").required, "SourceDBSnapshotIdentifier"))
      -- the paginators have extras too
      local cc = assert(model.load("cloudcontrol", DEB))
      assert.same({ "TypeName" }, cc:paginator("ListResources").non_aggregate_keys)
      assert.equals("ResourceDescriptions", cc:paginator("ListResources").result_key)
    end)

    it("keeps a model's numbers as integers", function()
      local sts = assert(model.load("sts", DEB))
      local s = sts:shape("roleDurationSecondsType")
      assert.same({ 900, 43200 }, { s.min, s.max })
      assert.equals("integer", math.type(s.max))
    end)

    it("names the nearest services to an unknown one", function()
      local m, err = model.load("ec3", DEB)
      assert.is_nil(m)
      assert.equals("model_not_found", err.code)
      assert.equals("ec2", err.suggestions[1])
      assert.matches('unknown AWS service "ec3" (nearest: ec2', err.message, 1, true)
      assert.matches(BOTOCORE, err.message, 1, true)
      -- a name is never a path out of the data folder
      assert.equals("model_not_found", select(2, model.load("../data/ec2", DEB)).code)
      assert.equals("model_not_found", select(2, model.find("ec2", { path = { BOTOCORE }, default_path = false,
        api_version = "../2016-11-15" })).code)
    end)

    it("lists the services and reads endpoints.json", function()
      local names = model.services(DEB)
      assert.is_true(#names > 300)
      assert.is_true(is_sorted(names))
      for _, s in ipairs({ "ec2", "sts", "elbv2", "s3" }) do assert.is_true(contains(names, s), s) end
      local ep = assert(model.endpoints(DEB))
      assert.equals("aws", ep.partitions[1].partition)
      assert.is_table(ep.partitions[1].services.ec2)
      assert.is_true(rawequal(ep, model.endpoints(DEB)))
    end)
  end)

  describe("the cache of preprocessed models", function()
    -- a fresh copy of the module (its models and listings are kept per process)
    local function fresh(cache)
      package.loaded["awsnet.aws.model"] = nil
      local m = require "awsnet.aws.model"
      package.loaded["awsnet.aws.model"] = model
      m.set_cache(cache)
      return m
    end
    local function cache_files(dir)
      local p = io.popen("ls -1A " .. q(dir) .. " 2>/dev/null")
      local out = {}
      for line in p:lines() do out[#out + 1] = line end
      p:close()
      return out
    end
    local function read(path)
      local f = assert(io.open(path, "rb"))
      local text = f:read("a")
      f:close()
      return text
    end
    local function same_model(a, b)
      assert.same(a.metadata, b.metadata)
      assert.same(a.shapes, b.shapes)
      assert.same(a.operations(), b.operations())
      for _, name in ipairs(a.operations()) do assert.same(a.operations[name], b.operations[name]) end
    end

    it("writes a copy without documentation, reads it back, and the documentation when asked", function()
      local dir, cache = tempdir(), tempdir()
      write_json(dir .. "/tiny/2020-01-01/service-2.json", tiny_model("2020-01-01"))
      local opts = { path = { dir }, default_path = false }
      local source = assert(fresh(cache).load("tiny", opts))
      local files = cache_files(cache)
      assert.equals(1, #files)
      assert.is_nil(read(cache .. "/" .. files[1]):find("Things are small", 1, true))
      local cached = assert(fresh(cache).load("tiny", opts))
      assert.is_true(rawget(cached, "_docs_pending"))
      assert.equals("integer", math.type(cached.shapes.Name.max))
      assert.is_nil(rawget(cached.operations.CreateThing, "documentation"))
      assert.equals(source:help("CreateThing"), cached:help("CreateThing"))
      same_model(source, cached)
      assert.equals("<p>Creates a <b>thing</b>. Things are small.</p>", cached.operations.CreateThing.documentation)
    end)

    it("reads the source again when it changed, and when the copy is corrupt", function()
      local dir, cache = tempdir(), tempdir()
      local file = dir .. "/tiny/2020-01-01/service-2.json"
      write_json(file, tiny_model("2020-01-01"))
      local opts = { path = { dir }, default_path = false }
      assert(fresh(cache).load("tiny", opts))
      -- a changed source: another size
      local changed = tiny_model("2020-01-01")
      changed.shapes.Name.max = 128
      write_json(file, changed)
      assert.equals(128, assert(fresh(cache).load("tiny", opts)).shapes.Name.max)
      local want = assert(fresh(false).load("tiny", opts))
      local path = cache .. "/" .. cache_files(cache)[1]
      local good = read(path)
      local doc = cjson.decode(good)
      local wrong_shapes = cjson.decode(good)
      wrong_shapes.data.shapes = "x"
      local wrong_ints = cjson.decode(good)
      wrong_ints.ints = { { "nothing", "here" } }
      local wrong_key = cjson.decode(good)
      wrong_key.key = doc.key .. "x"
      for _, bad in ipairs({ "", "garbage \0\255", good:sub(1, #good // 2), "[]", "null",
          cjson.encode(wrong_shapes), cjson.encode(wrong_ints), cjson.encode(wrong_key) }) do
        write(path, bad)
        local m = assert(fresh(cache).load("tiny", opts))
        same_model(want, m)
        assert.equals(128, m.shapes.Name.max)
      end
      -- the copy is written again from the source
      assert(fresh(cache).load("tiny", opts))
      assert.equals(doc.key, cjson.decode(read(path)).key)
    end)

    it("is left out with set_cache(false) and with AWSNET_MODELS_CACHE=0", function()
      local dir, cache = tempdir(), tempdir()
      write_json(dir .. "/tiny/2020-01-01/service-2.json", tiny_model("2020-01-01"))
      assert(fresh(false).load("tiny", { path = { dir }, default_path = false }))
      assert.same({}, cache_files(cache))
      local code = "assert(require('awsnet.aws.model').load('tiny', { path = { '" .. dir .. "' }, default_path = false }))"
      local function run(env)
        local ok = os.execute(env .. " lua5.4 -e " .. q("package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path")
          .. " -e " .. q(code))
        assert.is_true(ok == true or ok == 0)
      end
      run("AWSNET_MODELS_CACHE=0 XDG_CACHE_HOME=" .. q(cache))
      assert.same({}, cache_files(cache))
      run("env -u AWSNET_MODELS_CACHE XDG_CACHE_HOME=" .. q(cache))
      assert.equals(1, #cache_files(cache .. "/awsnet/models"))
      assert.has_error(function() model.set_cache("relative/dir") end)
      assert.has_error(function() model.set_cache(1) end)
    end)

    it("keeps what a default endpoint needs of endpoints.json", function()
      if not exists(BOTOCORE .. "/endpoints.json") then
        pending("python3-botocore is not installed (make deps)")
        return
      end
      local cache = tempdir()
      local first = assert(fresh(cache).partitions(DEB))
      local again = assert(fresh(cache).partitions(DEB))
      assert.same(first, again)
      local full = assert(model.endpoints(DEB))
      assert.equals(full.partitions[1].dnsSuffix, again.partitions[1].dnsSuffix)
      assert.equals("aws-global", again.partitions[1].services.iam.partitionEndpoint)
      assert.same(full.partitions[1].services.iam.endpoints["aws-global"],
        again.partitions[1].services.iam.endpoints["aws-global"])
      assert.is_nil(again.partitions[1].services.ec2)
    end)
  end)
end)
