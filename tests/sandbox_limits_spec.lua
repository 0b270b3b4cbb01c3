-- The sandbox's limits (issue 15, "The sandbox's request path", item 7): a deadline for the request
-- head that trickling bytes do not reset, body limits per operation, a bound on unzipped Lambda
-- code, Lambda runs that do not hold up other clients, and chunked bodies parsed in linear time.
-- Real HTTP on loopback to a sandbox in this Lua process, requests signed by hand.
local socket = require "socket"
local cjson = require "cjson"
local core = require "awsnet.core"
local sigv4 = require "awsnet.sigv4"
local sandbox = require "awsnet.sandbox"
local wire = require "awsnet.sandbox.wire"
local process = require "awsnet.svc.process"
local q = process.quote

local A = "111111111111"
local clock = core.httpd.monotonic

local function form(params)
  local keys, parts = {}, {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. sigv4.uri_encode(tostring(params[k])) end
  return table.concat(parts, "&")
end

-- The text of one request signed for `service` as account A.
local function signed(sb, service, req)
  local target = req.target or "/"
  local headers = assert(sigv4.sign({ method = req.method or "POST", url = "http://127.0.0.1:" .. sb.port .. target,
    headers = req.headers or {}, body = req.body or "" }, { access_key_id = A, secret_access_key = "test" },
    { region = "us-east-1", service = service }))
  local lines = { (req.method or "POST") .. " " .. target .. " HTTP/1.1" }
  for k, v in pairs(headers) do lines[#lines + 1] = k .. ": " .. v end
  lines[#lines + 1] = "Content-Length: " .. #(req.body or "")
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (req.body or "")
end

local function describe_vpcs(sb)
  return signed(sb, "ec2", { body = form { Action = "DescribeVpcs", Version = "2016-11-15" },
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" } })
end

local function lambda(sb, method, target, value)
  return signed(sb, "lambda", { method = method, target = "/2015-03-31/functions" .. target,
    body = value and cjson.encode(value) or "", headers = { ["Content-Type"] = "application/json" } })
end

local function connect(sb)
  local c = assert(socket.tcp())
  c:settimeout(2)
  assert(c:connect("127.0.0.1", sb.port))
  c:settimeout(0)
  return c
end

-- What has come back on `c` so far is a whole answer: status, headers, body; else nil.
local function answer_of(text)
  local head, body = text:match("^(.-)\r\n\r\n(.*)$")
  local len = head and tonumber(head:match("[Cc]ontent%-[Ll]ength: (%d+)"))
  if not len or #body < len then return nil end
  local hdrs = {}
  for k, v in head:gmatch("\r\n([^:]+): ([^\r]*)") do hdrs[k:lower()] = v end
  return tonumber(head:match("^HTTP/1%.1 (%d+)")), hdrs, body:sub(1, len)
end

-- Steps `sb` until the answer on `c` is whole (or `seconds` passed); status, headers, body.
local function collect(sb, c, seconds)
  local got, deadline = {}, clock() + (seconds or 10)
  while clock() < deadline do
    sb:step(5)
    local data, err, partial = c:receive(65536)
    local chunk = data or partial
    if chunk and #chunk > 0 then got[#got + 1] = chunk end
    local status, hdrs, body = answer_of(table.concat(got))
    if status then return status, hdrs, body end
    if err == "closed" then break end
  end
  return answer_of(table.concat(got))
end

local function exchange(sb, text)
  local c = connect(sb)
  assert(c:send(text))
  local status, hdrs, body = collect(sb, c)
  c:close()
  return status, hdrs, body
end

local function zip_with(python_body)
  local dir = process.tempdir("awsnet-zip")
  assert(process.run(string.format("cd %s && env -u LD_PRELOAD /usr/bin/python3 -c %s", q(dir), q(
    "import zipfile\nwith zipfile.ZipFile('code.zip', 'w', zipfile.ZIP_DEFLATED) as z:\n" .. python_body))))
  local zip = process.read_file(dir .. "/code.zip")
  os.execute("rm -rf " .. q(dir))
  return zip
end

local TRUST_LAMBDA = cjson.encode { Version = "2012-10-17", Statement = { { Effect = "Allow",
  Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" } } }

describe("sandbox limits", function()
  local sb, role

  setup(function()
    sb = assert(sandbox.start { port = 0, transition_s = 0, seed = 3, log = function() end,
      limits = { head_timeout_s = 0.5, body_bytes = 64 * 1024 } })
    local status, _, body = exchange(sb, signed(sb, "iam", { body = form { Action = "CreateRole", RoleName = "fn",
      AssumeRolePolicyDocument = TRUST_LAMBDA, Version = "2010-05-08" },
      headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" } }))
    assert.equals(200, status, body)
    role = body:match("<Arn>([^<]+)</Arn>")
  end)
  teardown(function() if sb then sb:stop() end end)

  it("cuts a head trickled a byte at a time at its deadline, and serves a normal client meanwhile", function()
    local slow = connect(sb)
    local head = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " .. ("a"):rep(200)
    local started, sent, normal_at, cut_at, answer = clock(), 0, nil, nil, ""
    local normal = connect(sb)
    assert(normal:send(describe_vpcs(sb)))
    local normal_got = {}
    while clock() - started < 3 and not cut_at do
      if sent < #head then
        sent = sent + 1
        slow:send(head:sub(sent, sent))   -- a byte every 20 ms: each one would reset an idle timer
      end
      sb:step(20)
      local data, _, partial = normal:receive(65536)
      if (data or partial or "") ~= "" then normal_got[#normal_got + 1] = data or partial end
      if not normal_at and answer_of(table.concat(normal_got)) then normal_at = clock() - started end
      local d, err, p = slow:receive(65536)
      answer = answer .. (d or p or "")
      if err == "closed" then cut_at = clock() - started end
    end
    assert.is_truthy(normal_at, "the normal client was not served")
    assert.is_true(normal_at < 0.4, "the normal client waited " .. tostring(normal_at))
    assert.equals(200, (answer_of(table.concat(normal_got))))
    assert.is_truthy(cut_at, "the slow head was never cut")
    assert.is_true(cut_at >= 0.45 and cut_at < 1.2, "cut after " .. cut_at .. " s")
    assert.matches("^HTTP/1%.1 408 ", answer)
    slow:close()
    normal:close()
  end)

  it("answers a body past its operation's limit with 413 and AWS's error, before reading it", function()
    -- EC2 (1 MiB by default; 64 KiB here): its protocol's error shape
    local c = connect(sb)
    assert(c:send("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=" .. A ..
      "/20250101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00\r\nContent-Length: 70000\r\n\r\n"))
    local status, _, body = collect(sb, c, 3)
    c:close()
    assert.equals(413, status)
    assert.matches("<Code>RequestEntityTooLarge</Code>", body, 1, true)
    -- the same past the limit in chunks
    c = connect(sb)
    assert(c:send("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"))
    for _ = 1, 20 do c:send("1000\r\n" .. ("x"):rep(4096) .. "\r\n"); sb:step(0) end
    status = collect(sb, c, 3)
    c:close()
    assert.equals(413, status)
    -- Lambda: AWS's figures, codes and messages
    for _, case in ipairs({
      { "POST", "", 69905068, "RequestEntityTooLargeException", "69905067 bytes for the CreateFunction" },
      { "PUT", "/f/code", 69905068, "RequestEntityTooLargeException", "UpdateFunctionCode" },
      { "POST", "/f/invocations", 6291457, "RequestTooLargeException", "6291456 bytes for the InvokeFunction" },
    }) do
      c = connect(sb)
      assert(c:send(case[1] .. " /2015-03-31/functions" .. case[2] .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " ..
        case[3] .. "\r\n\r\n"))
      local hdrs
      status, hdrs, body = collect(sb, c, 3)
      c:close()
      assert.equals(413, status)
      assert.equals(case[4], hdrs["x-amzn-errortype"])
      assert.matches(case[5], cjson.decode(body).message, 1, true)
    end
    -- a body within the limit is served as before
    assert.equals(200, (exchange(sb, describe_vpcs(sb))))
  end)

  it("refuses a zip bomb from its central directory, before it fills the disk", function()
    -- 300 MB of zeros in a zip of a few hundred KB: past AWS's 250 MB unzipped
    local bomb = zip_with("    with z.open('main.py', 'w') as f:\n        for _ in range(300):\n" ..
      "            f.write(bytes(1 << 20))\n")
    assert.is_true(#bomb < 1024 * 1024)
    local status, hdrs, body = exchange(sb, lambda(sb, "POST", "", { FunctionName = "bomb", Runtime = "python3.11",
      Role = role, Handler = "main.handler", Code = { ZipFile = wire.base64_encode(bomb) } }))
    assert.equals(400, status)
    assert.equals("InvalidParameterValueException", hdrs["x-amzn-errortype"])
    assert.matches("Unzipped size must be smaller than 262144000 bytes", body, 1, true)
    -- as many small files that add up to as much: refused the same way
    bomb = zip_with("    for i in range(300):\n        z.writestr('f%d' % i, bytes(1 << 20))\n")
    status, hdrs = exchange(sb, lambda(sb, "POST", "", { FunctionName = "bomb", Runtime = "python3.11",
      Role = role, Handler = "main.handler", Code = { ZipFile = wire.base64_encode(bomb) } }))
    assert.equals(400, status)
    assert.equals("InvalidParameterValueException", hdrs["x-amzn-errortype"])
    -- nothing of it stays on disk
    local left = process.run("find " .. q(sb.lambda_dir) .. " -type f") or ""
    assert.equals("", left)
  end)

  it("runs a 2-second Lambda without delaying another client's DescribeVpcs", function()
    local zip = zip_with("    z.writestr('main.py', 'import time\\n\\ndef handler(event, context):\\n" ..
      "    time.sleep(2)\\n    return {\"slept\": 2}\\n')\n")
    local status, _, body = exchange(sb, lambda(sb, "POST", "", { FunctionName = "sleeper", Runtime = "python3.11",
      Role = role, Handler = "main.handler", Timeout = 10, Code = { ZipFile = wire.base64_encode(zip) } }))
    assert.equals(201, status, body)
    local slow = connect(sb)
    assert(slow:send(lambda(sb, "POST", "/sleeper/invocations", {})))
    local invoked = clock()
    -- the invocation is read and its run started (a sandbox that runs it in its loop is stuck
    -- there for 2 s)
    while clock() - invoked < 0.2 do sb:step(5) end
    local quick = connect(sb)
    assert(quick:send(describe_vpcs(sb)))
    local quick_status = collect(sb, quick, 5)
    -- from when DescribeVpcs was meant to go, 0.2 s after the invocation
    local waited = clock() - invoked - 0.2
    assert.equals(200, quick_status)
    assert.is_true(waited < 0.3, "DescribeVpcs waited " .. waited .. " s behind the Lambda")
    local slow_status, _, slow_body = collect(sb, slow, 15)
    assert.equals(200, slow_status)
    assert.same({ slept = 2 }, cjson.decode(slow_body))
    assert.is_true(clock() - invoked >= 2)
    quick:close()
    slow:close()
  end)
end)

describe("core.httpd chunked bodies", function()
  it("parses a body of many small chunks, arriving a chunk per read, in linear time", function()
    local srv = assert(core.httpd.listen { port = 0, max_body_bytes = 1024 * 1024 })
    local c = assert(socket.tcp())
    c:settimeout(2)
    assert(c:connect("127.0.0.1", srv:port()))
    local body
    local function handler(req) body = req.body; return { status = 200, body = "ok" } end
    local function examined(n)
      body = nil
      local before = srv:stats().bytes_examined
      local head = "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      assert(c:send(head))
      srv:step(0, handler)
      for i = 1, n do
        assert(c:send("1\r\n" .. string.char(97 + i % 26) .. "\r\n"))
        srv:step(0, handler)   -- a read per chunk: today's parser walked the whole body again each time
      end
      assert(c:send("0\r\n\r\n"))
      for _ = 1, 100 do
        srv:step(10, handler)
        if body then break end
      end
      assert.equals(n, #body)
      c:settimeout(1)
      assert.truthy(c:receive("*l"))   -- the status line; the rest of the answer is small
      c:receive(64)
      return srv:stats().bytes_examined - before, #head + n * 6 + 5
    end
    local small, small_raw = examined(2000)
    local large, large_raw = examined(8000)
    -- a constant number of looks per byte, however many reads the body took
    assert.is_true(small <= 4 * small_raw, small .. " bytes examined for " .. small_raw)
    assert.is_true(large <= 4 * large_raw, large .. " bytes examined for " .. large_raw)
    assert.is_true(large < 5 * small, "examined " .. small .. " then " .. large .. " for 4 times the body")
    c:close()
    srv:close()
  end)
end)
