-- The sandbox's HTTP server primitive (core.httpd), driven in-process: a lua-socket client writes
-- raw bytes, the server steps, the client reads what came back.
local core = require "awsnet.core"
local socket = require "socket"

local function echo(req)
  if req.target == "/reset" then return { reset = true } end
  if req.target == "/boom" then error("handler exploded") end
  if req.target == "/late" then return { status = 200, body = "late", delay_ms = 300 } end
  return { status = 200, headers = { ["X-Method"] = req.method, ["X-Bad"] = "a\r\nInjected: 1" },
           body = req.target .. "|" .. req.body .. "|" .. tostring(req.headers["x-a"]) }
end

-- Sends `bytes`, steps the server until the client has read a whole answer (or the peer closed).
local function exchange(srv, client, bytes, handler)
  if bytes then assert(client:send(bytes)) end
  client:settimeout(0)
  local got, closed = {}, false
  for _ = 1, 200 do
    srv:step(10, handler or echo)
    local data, err, partial = client:receive(65536)
    local chunk = data or partial
    if chunk and #chunk > 0 then got[#got + 1] = chunk end
    if err == "closed" then closed = true; break end
    local text = table.concat(got)
    local len = text:match("Content%-Length: (%d+)\r\n")
    local head_end = text:find("\r\n\r\n", 1, true)
    if len and head_end and #text >= head_end + 3 + tonumber(len) then
      -- a pipelined second answer may still be coming
      local rest = text:sub(head_end + 4 + tonumber(len))
      if rest == "" or rest:find("\r\n\r\n", 1, true) then break end
    end
  end
  return table.concat(got), closed
end

describe("core.httpd", function()
  local srv, client
  before_each(function()
    srv = assert(core.httpd.listen { port = 0, max_body_bytes = 64, max_header_bytes = 512 })
    client = assert(socket.tcp())
    client:settimeout(2)
    assert(client:connect("127.0.0.1", srv:port()))
  end)
  after_each(function()
    client:close()
    srv:close()
  end)

  it("answers a request with a body and joins repeated headers", function()
    local out = exchange(srv, client, "POST /a?x=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n" ..
      "Content-Length: 5\r\n\r\nhello")
    assert.matches("^HTTP/1.1 200 OK\r\n", out)
    assert.matches("X%-Method: POST\r\n", out)
    assert.matches("\r\n\r\n/a%?x=1|hello|1,2$", out)
    assert.not_matches("Injected", out)     -- header values with CR/LF are dropped
  end)

  it("with every slot taken, closes the idlest keep-alive connection for a new client", function()
    local small = assert(core.httpd.listen { port = 0, max_connections = 2 })
    local a, b, c = assert(socket.tcp()), assert(socket.tcp()), assert(socket.tcp())
    for _, s in ipairs({ a, b, c }) do s:settimeout(2) end
    assert(a:connect("127.0.0.1", small:port()))
    assert.matches("^HTTP/1.1 200", (exchange(small, a, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")))
    assert(b:connect("127.0.0.1", small:port()))
    assert.matches("^HTTP/1.1 200", (exchange(small, b, "GET /b HTTP/1.1\r\nHost: h\r\n\r\n")))
    -- both slots hold idle keep-alive connections: the third client is answered, a's closed
    assert(c:connect("127.0.0.1", small:port()))
    assert.matches("^HTTP/1.1 200", (exchange(small, c, "GET /c HTTP/1.1\r\nHost: h\r\n\r\n")))
    a:settimeout(0.5)
    local _, err = a:receive(1)
    assert.equal("closed", err)
    -- b, used after a, is still open
    assert.matches("^HTTP/1.1 200", (exchange(small, b, "GET /b2 HTTP/1.1\r\nHost: h\r\n\r\n")))
    for _, s in ipairs({ a, b, c }) do s:close() end
    small:close()
  end)

  it("decodes a chunked body and keeps the connection for the next request", function()
    local out = exchange(srv, client, "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" ..
      "5\r\nhello\r\n3;ext=1\r\n-42\r\n0\r\nTrailer: t\r\n\r\n")
    assert.matches("/c|hello%-42|nil$", out)
    out = exchange(srv, client, "GET /again HTTP/1.1\r\n\r\n")
    assert.matches("/again||nil$", out)
  end)

  it("answers pipelined requests in order and honours Connection: close", function()
    local out, closed = exchange(srv, client, "GET /p1 HTTP/1.1\r\n\r\nGET /p2 HTTP/1.1\r\nConnection: close\r\n\r\n")
    while not closed do
      local more
      more, closed = exchange(srv, client, nil)
      out = out .. more
    end
    local first, second = out:find("/p1||nil", 1, true), out:find("/p2||nil", 1, true)
    assert.truthy(first and second and first < second)
    assert.matches("Connection: close", out)
  end)

  it("waits for a body split over several writes", function()
    assert(client:send("POST /split HTTP/1.1\r\nContent-Length: 6\r\n\r\nab"))
    assert.equals(0, srv:step(20, echo))
    local out = exchange(srv, client, "cdef")
    assert.matches("/split|abcdef|nil$", out)
  end)

  it("rejects malformed requests, oversized heads and bodies, and closes", function()
    local out, closed = exchange(srv, client, "NOT HTTP\r\n\r\n")
    assert.matches("^HTTP/1.1 400 ", out)
    assert.is_true(closed or select(2, exchange(srv, client, nil)))
    for _, case in ipairs({
      { "POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n", "413" },
      { "GET / HTTP/1.1\r\nX-Pad: " .. string.rep("p", 600) .. "\r\n\r\n", "431" },
      { "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "400" },
      { "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n", "413" },
    }) do
      local c = assert(socket.tcp())
      c:settimeout(2)
      assert(c:connect("127.0.0.1", srv:port()))
      assert.matches("^HTTP/1.1 " .. case[2] .. " ", (exchange(srv, c, case[1])))
      c:close()
    end
  end)

  it("refuses a chunked body whose framing alone outgrows the buffer", function()
    local s = assert(core.httpd.listen { port = 0, max_body_bytes = 65536, max_header_bytes = 512 })
    local c = assert(socket.tcp())
    c:settimeout(2)
    assert(c:connect("127.0.0.1", s:port()))
    local chunk = "1;" .. string.rep("x", 900) .. "\r\na\r\n"
    assert(c:send("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"))
    c:settimeout(0)
    local sent, out = 0, ""
    for _ = 1, 400 do
      if sent < 200 then
        local ok = c:send(chunk)
        if ok then sent = sent + 1 end
      end
      s:step(5, echo)
      local data, err, partial = c:receive(65536)
      out = out .. (data or partial or "")
      if out:find("\r\n\r\n", 1, true) or err == "closed" then break end
    end
    assert.matches("^HTTP/1.1 413 ", out)
    c:close()
    s:close()
  end)

  it("holds a reply back for delay_ms and aborts a connection on reset", function()
    local t0 = socket.gettime()
    assert.matches("late$", (exchange(srv, client, "GET /late HTTP/1.1\r\n\r\n")))
    assert.is_true(socket.gettime() - t0 >= 0.25)
    local out, closed = exchange(srv, client, "GET /reset HTTP/1.1\r\n\r\n")
    assert.equals("", out)
    assert.is_true(closed)
  end)

  it("answers 500 when the handler raises, re-raises it, and keeps serving", function()
    assert(client:send("GET /boom HTTP/1.1\r\n\r\n"))
    local ok, err
    for _ = 1, 50 do
      ok, err = pcall(srv.step, srv, 10, echo)
      if not ok then break end
    end
    assert.is_false(ok)
    assert.matches("handler exploded", err)
    assert.matches("^HTTP/1.1 500 ", (exchange(srv, client, nil)))
    local c = assert(socket.tcp())
    c:settimeout(2)
    assert(c:connect("127.0.0.1", srv:port()))
    assert.matches("/ok||nil$", (exchange(srv, c, "GET /ok HTTP/1.1\r\n\r\n")))
    c:close()
  end)

  it("listens on loopback only and reports a busy port", function()
    assert.is_nil((core.httpd.listen { host = "0.0.0.0", port = 0 }))
    local s, msg, code = core.httpd.listen { port = srv:port() }
    assert.is_nil(s)
    assert.equals("in_use", code)
    assert.matches("cannot listen", msg)
    assert.has_error(function() core.httpd.listen { port = 70000 } end)
    assert.has_error(function() core.httpd.listen("x") end)
  end)

  it("closes idempotently and refuses use after close", function()
    local s = assert(core.httpd.listen { port = 0 })
    s:close(); s:close()
    assert.matches("closed", tostring(s))
    assert.has_error(function() s:step(0, echo) end)
  end)
end)
