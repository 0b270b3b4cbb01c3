--- Throwaway X.509 material for local TLS servers: a CA and a server certificate it signs.
-- @module awsnet.svc.tls
local process = require "awsnet.svc.process"

local tls = {}
local q = process.quote

--- Creates `dir`/ca.pem, ca-key.pem, server.pem, server-key.pem for `names`
-- (DNS names and IP addresses, the first one is the CN). Returns the paths.
-- @tparam string dir an existing folder
-- @tparam {string,...} names the server's names
-- @tparam[opt="awsnet test"] string label the CA's name
-- @treturn table {ca, ca_key, cert, key} paths
-- @raise when openssl fails
function tls.make_ca_and_server(dir, names, label)
  label = label or "awsnet test"
  local san = {}
  for _, n in ipairs(names) do
    san[#san + 1] = (n:match("^[%d%.]+$") or n:find(":")) and ("IP:" .. n) or ("DNS:" .. n)
  end
  local p = {
    ca = dir .. "/ca.pem", ca_key = dir .. "/ca-key.pem",
    cert = dir .. "/server.pem", key = dir .. "/server-key.pem",
  }
  local ext = dir .. "/server.ext"
  process.write_file(ext, "subjectAltName=" .. table.concat(san, ",") .. "\n" ..
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
  local cmds = {
    string.format("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj %s -keyout %s -out %s",
      q("/CN=" .. label .. " CA"), q(p.ca_key), q(p.ca)),
    string.format("openssl req -newkey rsa:2048 -nodes -subj %s -keyout %s -out %s",
      q("/CN=" .. names[1]), q(p.key), q(dir .. "/server.csr")),
    string.format("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -days 2 -extfile %s -out %s",
      q(dir .. "/server.csr"), q(p.ca), q(p.ca_key), q(ext), q(p.cert)),
  }
  for _, c in ipairs(cmds) do assert(process.run(c)) end
  return p
end

return tls
