--- Requests and responses by shape for AWS's five protocols (`ec2`, `query`, `json`, `rest-json`,
-- `rest-xml`), chosen by the model's `metadata.protocol`. No I/O: `build` gives the unsigned
-- request, `parse` reads an answer the caller got.
--
-- Results use the model's member names. Types come from the shapes, never from the text: lists
-- present on the wire are arrays marked with `jsoncodec.array_mt` (an empty one encodes as
-- `[]`), lists absent on the wire stay absent, integers are Lua integers (64-bit exact), blobs
-- raw bytes, timestamps ISO 8601 UTC strings as the AWS CLI prints them
-- ("2014-04-29T18:30:38+00:00"; `opts.timestamp = "epoch"` gives epoch seconds).
-- Errors of every protocol's shape come back as `nil, err` with err.code the AWS code, `message`,
-- `status`, `request_id`, and `data`, the modeled error's members when the model has the shape.
-- @module awsnet.aws.protocol
local errors = require "awsnet.errors"
local json = require "awsnet.aws.protocol.json"
local query = require "awsnet.aws.protocol.query"
local rest = require "awsnet.aws.protocol.rest"
local server = require "awsnet.aws.protocol.server"
local shape = require "awsnet.aws.shape"

local protocol = {}

local function arg_error(fname, n, what, got)
  error(string.format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, what, type(got)), 3)
end

local function check_args(fname, m, op_name, third, third_what, opts)
  if type(m) ~= "table" or type(m.metadata) ~= "table" or type(m.shapes) ~= "table" then
    arg_error(fname, 1, "model", m)
  end
  if type(op_name) ~= "string" then arg_error(fname, 2, "string", op_name) end
  if third ~= nil and type(third) ~= "table" then arg_error(fname, 3, third_what, third) end
  if opts ~= nil and type(opts) ~= "table" then arg_error(fname, 4, "table or nil", opts) end
end

local function operation(m, op_name)
  local op = m.operations[op_name]
  if op then
    if op.name == nil then op.name = op_name end
    return op
  end
  if m.operation then return m:operation(op_name) end
  return errors.fail("unknown_operation", "no operation " .. op_name, { operation = op_name })
end

-- The host of an endpoint ("https://ec2.us-east-1.amazonaws.com/" -> "ec2.us-east-1.amazonaws.com").
local function endpoint_host(endpoint)
  if type(endpoint) ~= "string" then return nil end
  return endpoint:gsub("^%a[%w+.-]*://", ""):gsub("/.*$", "")
end

-- `endpoint.hostPrefix` with its {Label}s filled from the hostLabel members.
local function host_prefix(op, params)
  local template = op.endpoint and op.endpoint.hostPrefix
  if not template then return "" end
  local bad
  local prefix = template:gsub("{([^}]+)}", function(name)
    local v = params[name]
    if type(v) ~= "string" or not v:match("^[%w][%w%-]*$") or #v > 63 then
      bad = name
      return ""
    end
    return v
  end)
  if bad then
    return errors.fail("invalid_parameter", string.format("%s: a host label must be letters, digits and '-' "
      .. "(at most 63, not starting with '-')", bad), { path = bad })
  end
  return prefix
end

--- Builds an operation's HTTP request, unsigned.
-- @tparam table m the model (`awsnet.aws.model`)
-- @tparam string op_name the operation ("DescribeVpcs")
-- @tparam[opt] table params the input, by the model's member names
-- @tparam[opt] table opts {endpoint = "https://host" (for `host`, with the operation's hostPrefix)}
-- @treturn table {method, url (path and query), headers, body, host (when opts.endpoint is
-- given)}, or nil, err ("invalid_parameter" with `path`, "unknown_operation")
-- @raise on arguments of the wrong type
function protocol.build(m, op_name, params, opts)
  check_args("build", m, op_name, params, "table or nil", opts)
  opts = opts or {}
  local op, oerr = operation(m, op_name)
  if not op then return nil, oerr end
  local checked, err = shape.check(m, op.input, params)
  if not checked then return nil, err end
  local prefix, perr = host_prefix(op, checked)
  if not prefix then return nil, perr end
  local p = m.metadata.protocol
  local req
  if p == "query" or p == "ec2" then
    req, err = query.build(m, op, checked)
  elseif p == "json" then
    req, err = json.build(m, op, checked)
  elseif p == "rest-json" or p == "rest-xml" then
    req, err = rest.build(m, op, checked)
  else
    return errors.fail("invalid_model", "unknown protocol " .. tostring(p))
  end
  if not req then return nil, err end
  if req.body ~= "" and not req.headers["Content-Length"] then req.headers["Content-Length"] = tostring(#req.body) end
  local host = endpoint_host(opts.endpoint)
  if host then req.host = prefix .. host end
  return req
end

--- Parses an operation's HTTP answer.
-- @tparam table m the model
-- @tparam string op_name the operation
-- @tparam table resp {status = 200, headers = {name = value}, body = "..."}
-- @tparam[opt] table opts {timestamp = "iso" (default) | "epoch" | function(epoch) -> value,
-- on_unknown = function(parent, element) called for each XML element no member reads (to check a
-- server, such as the sandbox, against the model)}
-- @treturn table the result by the output shape's member names, or nil, err (the AWS error code,
-- message, status, request_id, data; or "invalid_response")
-- @raise on arguments of the wrong type
function protocol.parse(m, op_name, resp, opts)
  check_args("parse", m, op_name, resp, "response table", opts)
  if type(resp) ~= "table" then arg_error("parse", 3, "response table", resp) end
  opts = opts or {}
  local op, oerr = operation(m, op_name)
  if not op then return nil, oerr end
  local p = m.metadata.protocol
  local status = resp.status or 200
  resp = { status = status, headers = resp.headers or {}, body = resp.body or "" }
  if p == "query" or p == "ec2" then
    if status >= 300 then return query.error(m, resp, opts) end
    return query.parse(m, op, resp, opts)
  elseif p == "json" then
    if status >= 300 then return json.error(m, resp, opts) end
    return json.parse(m, op, resp, opts)
  elseif p == "rest-json" or p == "rest-xml" then
    if status >= 300 then return rest.error(m, resp, opts) end
    return rest.parse(m, op, resp, opts)
  end
  return errors.fail("invalid_model", "unknown protocol " .. tostring(p))
end

-- ---- the server side (the sandbox): the mirror of build and parse --------------------------------

--- Reads an operation's HTTP request into params by its input shape (the mirror of `build`).
-- @tparam table m the model
-- @tparam string op_name the operation
-- @tparam table req {method, url or target (path and query), headers, body}
-- @tparam[opt] table opts {on_unknown = function(path) for each part of the request no member
-- reads: a form key, a JSON key's dotted path, "?name" for a query parameter}
-- @treturn table the params by member name (timestamps as epoch seconds), or nil, err
-- ("invalid_parameter" with `path`, "invalid_request", "unknown_operation")
-- @raise on arguments of the wrong type
function protocol.parse_request(m, op_name, req, opts)
  check_args("parse_request", m, op_name, req, "request table", opts)
  if type(req) ~= "table" then arg_error("parse_request", 3, "request table", req) end
  local op, oerr = operation(m, op_name)
  if not op then return nil, oerr end
  return server.parse_request(m, op, req, opts or {})
end

--- Writes an operation's answer from a result by its output shape (the mirror of `parse`).
-- @tparam table m the model
-- @tparam string op_name the operation
-- @tparam[opt] table result by member name (keys starting with "_" are the caller's own)
-- @tparam[opt] table opts {request_id, on_unknown = function(path) for each result key the
-- output shape does not have (left out)}
-- @treturn table {status, headers, body}, or nil, err ("unknown_operation")
-- @raise on arguments of the wrong type
function protocol.render(m, op_name, result, opts)
  check_args("render", m, op_name, result, "table or nil", opts)
  local op, oerr = operation(m, op_name)
  if not op then return nil, oerr end
  return server.render(m, op, result, opts or {})
end

--- Writes an error answer in the protocol's shape.
-- @tparam table m the model
-- @tparam table err {code, message, status (default 400), data (a modeled error's members)}
-- @tparam[opt] table opts {request_id}
-- @treturn table {status, headers, body}
-- @raise on arguments of the wrong type
function protocol.render_error(m, err, opts)
  if type(m) ~= "table" or type(m.metadata) ~= "table" or type(m.shapes) ~= "table" then
    arg_error("render_error", 1, "model", m)
  end
  if type(err) ~= "table" then arg_error("render_error", 2, "table", err) end
  if opts ~= nil and type(opts) ~= "table" then arg_error("render_error", 3, "table or nil", opts) end
  return server.render_error(m, err, opts or {})
end

return protocol
