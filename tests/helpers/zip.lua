--- A zip archive of files, as a Lambda function's code (made by Python's zipfile module).
local process = require "awsnet.svc.process"
local q = process.quote

--- The bytes of a zip archive holding `files` ({[name] = text}).
return function(files)
  local dir = process.tempdir("awsnet-zip")
  local names = {}
  for name, text in pairs(files) do
    process.write_file(dir .. "/" .. name, text)
    names[#names + 1] = q(name)
  end
  assert(process.run(string.format("cd %s && env -u LD_PRELOAD /usr/bin/python3 -m zipfile -c code.zip %s", q(dir),
    table.concat(names, " "))))
  local zip = process.read_file(dir .. "/code.zip")
  os.execute("rm -rf " .. q(dir))
  return zip
end
