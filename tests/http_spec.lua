-- HTTP over libcurl against a scripted loopback server (and openssl s_server for TLS).
local http = require "awsnet.http"
local stub = require "helpers.stub_http"
local process = require "awsnet.svc.process"
local tls = require "awsnet.svc.tls"
local socket = require "socket"

describe("http", function()
  local srv
  setup(function() srv = stub.start() end)
  teardown(function() if srv then srv:stop() end end)

  it("returns status, headers and body, and sends headers, repeated ones included", function()
    srv:routes({ { method = "GET", path = "/hello", responses = { { status = 200, body = "hi there",
      headers = { ["X-Amzn-RequestId"] = "req-1", ["Content-Type"] = "text/plain" } } } } })
    local res = assert(http.request({ url = srv.url .. "/hello?a=1", headers = { ["X-Test"] = "one",
      ["X-Multi"] = { "a", "b" }, ["X-Empty"] = "" } }))
    assert.equals(200, res.status)
    assert.equals("hi there", res.body)
    assert.equals("req-1", res.headers["x-amzn-requestid"])
    local got = srv:requests()[1]
    assert.equals("/hello", got.path)
    assert.equals("a=1", got.query)
    assert.equals("one", got.headers["x-test"])
    assert.equals("a, b", got.headers["x-multi"])
    assert.equals("", got.headers["x-empty"])
    assert.is_nil(got.headers.expect)
  end)

  it("sends bodies with any method and treats every status as a response", function()
    srv:routes({ { path = "/m", responses = { { status = 503, body = "busy" } } } })
    for _, m in ipairs({ "POST", "PUT", "DELETE", "PATCH", "GET" }) do
      local res = assert(http.request({ method = m, url = srv.url .. "/m", body = m == "GET" and nil or ("body of " .. m) }))
      assert.equals(503, res.status)
    end
    local head = assert(http.request({ method = "HEAD", url = srv.url .. "/m" }))
    assert.equals(503, head.status)
    assert.equals("", head.body)
    local got = srv:requests()
    assert.equals("POST", got[1].method)
    assert.equals("body of POST", got[1].body)
    assert.equals("PUT", got[2].method)
    assert.equals("body of PUT", got[2].body)
    assert.equals("DELETE", got[3].method)
    assert.equals("HEAD", got[6].method)
  end)

  it("reuses the connection for the next request", function()
    srv:routes({ { responses = { { status = 200, body = "ok" } } } })
    local client = http.new()
    assert(client:request({ url = srv.url .. "/a" }))
    assert(client:request({ url = srv.url .. "/b" }))
    client:close()
    client:close() -- twice is harmless
    local got = srv:requests()
    assert.equals(got[1].conn, got[2].conn)
  end)

  it("runs many requests at once", function()
    srv:routes({ { path_prefix = "/slow", responses = { { status = 200, body = "late", delay = 1 } } } })
    local reqs = {}
    for i = 1, 6 do reqs[i] = { url = srv.url .. "/slow/" .. i } end
    local t0 = socket.gettime()
    local results, errs = http.request_many(reqs)
    local elapsed = socket.gettime() - t0
    for i = 1, 6 do
      assert.is_nil(errs[i])
      assert.equals("late", results[i].body)
    end
    -- one after the other would take 6 s
    assert.is_true(elapsed < 4.5, "took " .. elapsed .. " s")
    assert.same({}, select(1, http.request_many({})))
  end)

  it("gives back started requests as each ends, so the next can start at once", function()
    srv:routes({ { path = "/late", responses = { { status = 200, body = "late", delay = 1 } } },
      { path = "/soon", responses = { { status = 200, body = "soon" } } },
      { path = "/gone", responses = { { action = "reset" } } } })
    local client = http.new { max_connections = 4 }
    local late = client:start({ url = srv.url .. "/late" })
    local soon = client:start({ url = srv.url .. "/soon" })
    local gone = client:start({ url = srv.url .. "/gone" })
    assert.equals(3, client:started())
    local order, by_id = {}, {}
    while client:started() > 0 do
      for _, r in ipairs(client:poll(5000)) do
        order[#order + 1] = r.id
        by_id[r.id] = r
      end
    end
    -- the slow one last, each with its own answer or error
    assert.equals(late, order[3])
    assert.equals("soon", by_id[soon].response.body)
    assert.equals("late", by_id[late].response.body)
    assert.equals("connection", by_id[gone].err.code)
    -- nothing started: poll answers at once with nothing
    assert.same({}, client:poll(1000))
    -- a batch meanwhile waits the started one out, whose answer poll then gives
    local again = client:start({ url = srv.url .. "/late" })
    local results = client:request_many({ { url = srv.url .. "/soon" } })
    assert.equals("soon", results[1].body)
    local kept = client:poll(0)
    assert.equals(1, #kept)
    assert.same({ again, "late" }, { kept[1].id, kept[1].response.body })
    client:close()
  end)

  it("reports failures as nil, err with a stable code", function()
    srv:routes({
      { path = "/reset", responses = { { action = "reset" } } },
      { path = "/truncate", responses = { { status = 200, body = "partial", action = "truncate" } } },
      { path = "/hang", responses = { { action = "hang" } } },
      { path = "/huge", responses = { { status = 200, body_size = 200000 } } },
    })
    local cases = {
      { { url = srv.url .. "/reset" }, "connection" },
      { { url = srv.url .. "/truncate" }, "connection" },
      { { url = srv.url .. "/hang", timeout = 0.5 }, "timeout" },
      { { url = srv.url .. "/huge", max_body = 1000 }, "too_large" },
      { { url = "http://127.0.0.1:" .. process.free_port() .. "/" }, "refused" },
      { { url = "gopher://127.0.0.1/" }, "invalid_url" },
      { { url = "http://" }, "invalid_url" },
    }
    local reqs = {}
    for i, c in ipairs(cases) do reqs[i] = c[1] end
    local results, errs = http.request_many(reqs)
    for i, c in ipairs(cases) do
      assert.is_nil(results[i], c[1].url)
      assert.equals(c[2], errs[i].code, c[1].url .. ": " .. tostring(errs[i]))
      assert.is_string(errs[i].message)
    end
    local ok = assert(http.request({ url = srv.url .. "/huge" }))
    assert.equals(200000, #ok.body)
  end)

  it("raises on misuse", function()
    assert.has_error(function() http.request("http://127.0.0.1/") end)
    assert.has_error(function() http.request({ url = srv.url, headers = { ["Bad\nName"] = "x" } }) end)
    assert.has_error(function() http.request({ url = srv.url, headers = { X = "a\r\nInjected: 1" } }) end)
    assert.has_error(function() http.request({ url = srv.url, timeout = -1 }) end)
    local c = http.new()
    c:close()
    assert.has_error(function() c:request({ url = srv.url }) end)
  end)

  describe("over TLS", function()
    local dir, tls_srv, port, ca
    setup(function()
      dir = process.tempdir("awsnet-tls")
      ca = tls.make_ca_and_server(dir, { "localhost", "127.0.0.1" }, "awsnet http test")
      port = process.free_port()
      tls_srv = process.spawn({ "openssl", "s_server", "-quiet", "-www", "-accept", port, "-cert", ca.cert,
        "-key", ca.key }, { log = dir .. "/s_server.log", cleanup_dir = dir })
      assert(process.wait_until(function()
        local c = socket.connect("127.0.0.1", port)
        if c then c:close() end
        return c ~= nil
      end, 10, "openssl s_server"))
    end)
    teardown(function()
      if tls_srv then tls_srv.stop(2) end
      os.execute("rm -rf " .. process.quote(dir))
    end)

    it("verifies the server by default", function()
      local res, err = http.request({ url = "https://127.0.0.1:" .. port .. "/" })
      assert.is_nil(res)
      assert.equals("tls", err.code)
      local ok = assert(http.request({ url = "https://127.0.0.1:" .. port .. "/", ca_file = ca.ca }))
      assert.equals(200, ok.status)
      local insecure = assert(http.request({ url = "https://127.0.0.1:" .. port .. "/", verify = false }))
      assert.equals(200, insecure.status)
    end)

    it("gives an AWS client the CA bundle named by AWS_CA_BUNDLE", function()
      local aws = require "awsnet.aws"
      local function call(env)
        local c = aws.client("lambda", { region = "us-east-1", endpoint = "https://127.0.0.1:" .. port, env = env,
          max_attempts = 1, timeout = 5, credentials = { access_key_id = "AKIDTLS", secret_access_key = "secret" } })
        return c:call("GetFunction", { FunctionName = "writer" }) -- a GET, which s_server -www answers
      end
      local _, untrusted = call({})
      assert.equals("tls", untrusted.code)
      -- s_server answers with its status page: the TLS session worked, the body is no AWS answer
      local _, trusted = call({ AWS_CA_BUNDLE = ca.ca })
      assert.equals("invalid_response", trusted.code)
    end)
  end)
end)
