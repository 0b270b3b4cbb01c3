--- The processes the network twin runs for the sandbox's services: the VPC resolvers (one process
-- answering at each VPC's base + 2 inside its router's namespace, for VPCs with enableDnsSupport,
-- the RDS endpoint names as seen from that VPC) and, per RDS instance, a forwarder from its ENI's
-- address and port (inside the ENI's namespace) to the instance's MariaDB. And the jail a Lambda
-- handler runs in: its ENI's namespace, a fresh root holding only the runtime (/usr, /etc) and
-- its own code, an unprivileged user without a home on the host.
-- @module awsnet.sandbox.twin.services
local process = require "awsnet.svc.process"

local services = {}

local q = process.quote

-- The uid and gid a handler runs as: nobody's (no home: /nonexistent).
services.UID = 65534

local function script_path(name)
  return assert(package.searchpath("awsnet.sandbox.twin." .. name, (package.path:gsub("%.lua", ".py"))))
end

-- What the VPC resolvers serve: {{ns, address, records = {[name] = address}}} for every VPC of
-- the twin with enableDnsSupport, sorted by namespace.
local function resolver_config(sb)
  local rds = sb:service_module("rds")
  local out = {}
  for _, region in ipairs(sb.state:regions()) do
    local st = sb.state:in_region(region)
    local instances = st:list("db_instance", function(i) return st:settle(i) == "available" end)
    for _, vpc in ipairs(st:list("vpc")) do
      local v = sb.twin:vpc(vpc.id)
      if v and v.dns then
        local records = {}
        for _, inst in ipairs(instances) do
          local address = inst.address and rds.resolve(st, inst.address, vpc.id)
          if address then records[inst.address] = address end
        end
        out[#out + 1] = { ns = v.ns, address = v.resolver, records = records }
      end
    end
  end
  table.sort(out, function(a, b) return a.ns < b.ns end)
  return out
end

--- Brings the VPC resolvers in line with the VPCs and RDS instances (call when the twin is idle):
-- one process (twin/resolver.py) answering at base + 2 inside every router with DNS support,
-- restarted when what it serves changes. Without DNS support a VPC has no resolver: a query
-- there goes unanswered.
-- @param sb the sandbox (with a twin)
-- @return true, or nil, err ("twin_resolver": it did not start)
function services.resolvers(sb)
  local twin = sb.twin
  local cjson = require "cjson"
  local vpcs = resolver_config(sb)
  local text = cjson.encode({ vpcs = vpcs })
  if twin.resolver and twin.resolver.text == text then return true end
  if twin.resolver then twin.resolver.proc.stop(1); twin.resolver = nil end
  if #vpcs == 0 then return true end
  local path, log = twin.dir .. "/resolver.json", twin.dir .. "/resolver.log"
  process.write_file(path, text)
  os.remove(log)
  local proc = process.spawn({ "/usr/bin/python3", script_path("resolver"), path }, { log = log })
  local up = process.wait_until(function()
    return not proc.alive() or (process.read_file(log) or ""):find("ready", 1, true) ~= nil
  end, 10, "the VPC resolvers")
  if not up or not proc.alive() then
    proc.stop(1)
    return require("awsnet.errors").fail("twin_resolver", "the VPC resolvers did not start: " ..
      (process.read_file(log) or ""):sub(-1000))
  end
  twin.resolver = { proc = proc, text = text }
  return true
end

--- Starts, for every available RDS instance whose ENI is in the twin, a forwarder from the ENI's
-- address and port to the instance's MariaDB (started here when it is not yet).
-- @param sb the sandbox (with a twin)
-- @return true, or nil, err
function services.forwarders(sb)
  local twin = sb.twin
  twin.forwarders = twin.forwarders or {}
  local rds = sb:service_module("rds")
  for _, region in ipairs(sb.state:regions()) do
    local st = sb.state:in_region(region)
    for _, inst in ipairs(st:list("db_instance", function(i) return st:settle(i) == "available" end)) do
      local e = inst.eni and twin:eni(inst.eni)
      local key = inst.address or inst.id
      local f = twin.forwarders[key]
      if f and (not e or f.ns ~= e.ns) then
        f.proc.stop(1)
        twin.forwarders[key] = nil
        f = nil
      end
      if e and not f then
        local srv, err = rds.backing(sb, inst)
        if not srv then return nil, err end
        local log = twin.dir .. "/forward-" .. key:gsub("[^%w%-]", "_") .. ".log"
        local proc = process.spawn({ "/usr/bin/python3", script_path("forward"), e.ns, e.ip, tostring(inst.port),
          tostring(srv.port) }, { log = log })
        local up = process.wait_until(function()
          return not proc.alive() or (process.read_file(log) or ""):find("ready", 1, true) ~= nil
        end, 10, "the RDS forwarder")
        if not up or not proc.alive() then
          proc.stop(1)
          return require("awsnet.errors").fail("twin_forwarder", "the forwarder of " .. key .. " did not start: " ..
            (process.read_file(log) or ""):sub(-1000))
        end
        twin.forwarders[key] = { proc = proc, ns = e.ns }
      end
    end
  end
  return true
end

--- Stops the resolvers and forwarders (before the twin removes its namespaces).
-- @param twin the twin
function services.stop(twin)
  if twin.resolver then twin.resolver.proc.stop(1); twin.resolver = nil end
  for _, f in pairs(twin.forwarders or {}) do f.proc.stop(1) end
  twin.forwarders = {}
end

--- The command that runs `argv` (paths as seen inside) as a Lambda handler: inside namespace
-- `ns`, in a mount namespace whose root is a fresh tmpfs holding /usr and /etc (read-only), the
-- code at /var/task (read-only), `work` at /var/result (its only writable folder, with /tmp), an
-- /etc/resolv.conf naming the VPC resolver, as uid and gid `services.UID` with no capabilities
-- and no_new_privs. The secrets come on stdin (the caller's pipe), never a file or the command line.
-- @param twin the twin
-- @tparam string ns the ENI's namespace
-- @tparam string code the code's folder
-- @tparam string work the run's folder (made writable for the handler's uid)
-- @tparam ?string resolver the VPC resolver's address
-- @tparam {string,...} argv the command inside
-- @treturn {string,...} the command to spawn
function services.jail_argv(twin, ns, code, work, resolver, argv)
  local root = work .. "/root"
  process.mkdir(root)
  process.write_file(work .. "/resolv.conf", "nameserver " .. (resolver or "127.0.0.1") .. "\n")
  process.mkdir(work .. "/out", "700")
  process.call({ "chown", services.UID .. ":" .. services.UID, work .. "/out" }, { interruptible = false })
  local inside = {}
  for i, a in ipairs(argv) do inside[i] = q(a) end
  local script = table.concat({
    "set -e",
    "R=" .. q(root),
    "mount -t tmpfs -o mode=755,size=65536k awsnet-lambda \"$R\"",
    "mkdir -p \"$R/usr\" \"$R/etc\" \"$R/var/task\" \"$R/var/result\" \"$R/var/runtime\" \"$R/tmp\" \"$R/dev\"",
    "chmod 1777 \"$R/tmp\"",
    "for d in usr etc; do mount --rbind /$d \"$R/$d\"; mount -o remount,bind,ro \"$R/$d\"; done",
    "for l in bin lib lib64 sbin; do [ -e /usr/$l ] && ln -s usr/$l \"$R/$l\"; done",
    "for f in null zero urandom random; do : > \"$R/dev/$f\"; mount --bind /dev/$f \"$R/dev/$f\"; done",
    "mount --bind " .. q(code) .. " \"$R/var/task\"; mount -o remount,bind,ro \"$R/var/task\"",
    "mount --bind " .. q(work .. "/out") .. " \"$R/var/result\"",
    -- the VPC resolver in /etc/resolv.conf, also when that is a link (to /run/... on systemd hosts)
    "T=$(readlink -f /etc/resolv.conf)",
    "case \"$T\" in /etc/*) mount --bind " .. q(work .. "/resolv.conf") .. " \"$R$T\" ;;",
    "  *) mkdir -p \"$R$(dirname \"$T\")\"; cp " .. q(work .. "/resolv.conf") .. " \"$R$T\" ;; esac",
    ": > \"$R/var/runtime/bootstrap.py\"",
    "mount --bind " .. q(assert(package.searchpath("awsnet.sandbox.lambda_bootstrap",
      (package.path:gsub("%.lua", ".py"))))) .. " \"$R/var/runtime/bootstrap.py\"",
    string.format("exec /usr/sbin/chroot \"$R\" /usr/bin/setpriv --reuid=%d --regid=%d --clear-groups --inh-caps=-all " ..
      "--no-new-privs %s", services.UID, services.UID, table.concat(inside, " ")),
  }, "\n")
  return twin:exec_argv(ns, { "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script })
end

return services
