--- The AWS protocol test suites in tests/fixtures/aws-protocol-tests (see its SOURCE.md), as the
-- client-side and the server-side specs read them: the files of each kind, the suites' own ignore
-- list, and the printing of values in failure messages.
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"

local suites = { DIR = "tests/fixtures/aws-protocol-tests" }

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

--- The decoded JSON of a file (jsoncodec: integers exact, empty lists marked).
function suites.load_json(path)
  return assert(jsoncodec.decode(read(path)))
end

--- The suite files of `kind` ("input" or "output"), sorted: array of {file, base, suites}.
function suites.files(kind)
  local out = {}
  local p = io.popen("ls -1 " .. suites.DIR .. "/" .. kind)
  for line in p:lines() do
    if line:match("%.json$") then out[#out + 1] = line end
  end
  p:close()
  table.sort(out)
  for i, file in ipairs(out) do
    out[i] = { file = file, base = (file:gsub("%.json$", "")),
      suites = suites.load_json(suites.DIR .. "/" .. kind .. "/" .. file) }
  end
  return out
end

local ignore
--- True for a case on the suites' own ignore list (botocore skips it too).
function suites.ignored(base, kind, suite, id)
  ignore = ignore or suites.load_json(suites.DIR .. "/protocol-tests-ignore-list.json")
  if kind == "input" then
    for _, d in ipairs(ignore.general.input.suites or {}) do if d == suite.description then return true end end
  end
  local p = ignore.protocols[base]
  for _, c in ipairs(p and p[kind] and p[kind].cases or {}) do if c == id then return true end end
  return false
end

--- A value as a failure message shows it: tables as JSON, scalars quoted with their type.
function suites.show(v)
  if type(v) == "table" then return (jsoncodec.encode(v)) or tostring(v) end
  return string.format("%q", tostring(v)) .. " (" .. (math.type(v) or type(v)) .. ")"
end

--- The floats the suites write as strings (JSON has no text for them).
suites.SPECIAL = { NaN = true, Infinity = math.huge, ["-Infinity"] = -math.huge }

return suites
