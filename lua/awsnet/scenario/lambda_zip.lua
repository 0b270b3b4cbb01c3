--- The deployment package of the scenario's Lambda: handler.py plus PyMySQL, zipped.
-- PyMySQL is copied from a local folder (Debian's python3-pymysql by default), so building the
-- zip needs no network. Uses the `zip` program (Debian package zip).
-- @module awsnet.scenario.lambda_zip
local errors = require "awsnet.errors"
local process = require "awsnet.svc.process"

local lambda_zip = {}

--- Debian's PyMySQL, the default source of the bundled library.
lambda_zip.DEFAULT_PYMYSQL = "/usr/lib/python3/dist-packages/pymysql"

--- The handler's file name inside the zip and the Lambda `Handler` setting that calls it.
lambda_zip.HANDLER = "handler.lambda_handler"

--- Path of handler.py, found next to this module (checkout or installed tree).
-- @treturn string the path, or nil, err ("missing")
function lambda_zip.handler_path()
  local path = package.searchpath("awsnet.scenario.lambda.handler", (package.path:gsub("%.lua", ".py")))
  if not path then return errors.fail("missing", "awsnet/scenario/lambda/handler.py not found on package.path") end
  return path
end

--- Builds the zip; returns its bytes, or nil, err. opts.pymysql: folder of the pymysql package.
-- @tparam[opt] table opts {pymysql}
-- @treturn string the zip's bytes, or nil, err ("missing": no PyMySQL or handler; "zip")
function lambda_zip.build(opts)
  opts = opts or {}
  local pymysql = opts.pymysql or lambda_zip.DEFAULT_PYMYSQL
  if not process.read_file(pymysql .. "/__init__.py") then
    return errors.fail("missing", "no PyMySQL package at " .. pymysql .. " (Debian: python3-pymysql)")
  end
  local handler, err = lambda_zip.handler_path()
  if not handler then return nil, err end
  local dir = process.tempdir("awsnet-lambda")
  local q = process.quote
  local ok
  ok, err = process.run(string.format(
    "cp %s %s/handler.py && cp -R %s %s/pymysql && cd %s && find . -name __pycache__ -prune -exec rm -rf {} + " ..
    "&& zip -q -X -r lambda.zip handler.py pymysql", q(handler), q(dir), q(pymysql), q(dir), q(dir)))
  local bytes = ok and process.read_file(dir .. "/lambda.zip")
  process.remove(dir)
  if err and err.code == "interrupted" then return nil, err end
  if not bytes then return errors.fail("zip", "cannot build the Lambda zip: " .. tostring(err and err.message)) end
  return bytes
end

return lambda_zip
