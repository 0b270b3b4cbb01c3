--- awsnet.reach: will the packet get through, and if not, which hop stops it and why.
--
-- `reach.load(source)` builds a model from describe-* data, given either as
--   * a folder: `<dir>/aws_configs/[accounts/<account-id>/][<region>/]*.json` (or the aws_configs
--     folder itself), each file the JSON the AWS CLI prints, recognised by its top-level key; or
--   * the same data as a Lua table (what a runbook edits in a copy and reloads):
--
--       { accounts = {
--           ["111111111111"] = {
--             ["us-east-1"] = {
--               Vpcs = {...}, Subnets = {...}, RouteTables = {...}, SecurityGroups = {...},
--               NetworkAcls = {...}, NetworkInterfaces = {...}, Reservations = {...},
--               TransitGateways = {...}, TransitGatewayAttachments = {...},
--               TransitGatewayVpcAttachments = {...}, TransitGatewayRouteTables = {...},
--               TransitGatewayRoutes = {...}, TransitGatewayPropagations = {...},
--               TransitGatewayAssociations = {...}, DBInstances = {...}, Functions = {...},
--               VpcAttributes = {...}, ManagedPrefixLists = {...}, PrefixLists = {...},
--               AvailabilityZones = {...}, VpcPeeringConnections = {...} } } } }
--
--     Each value is the array under that top-level key of the CLI's JSON (a region table is the
--     union of its files' top-level objects). Accounts/regions without a folder are "default".
--
-- Keys beyond plain CLI output (each a JSON array of objects, one file per key):
--   * `VpcAttributes`: describe-vpc-attribute outputs, e.g.
--     `{"VpcAttributes": [{"VpcId": "vpc-1", "EnableDnsSupport": {"Value": true}}]}`;
--   * `TransitGatewayRoutes` (and Batfish's `TransitGatewayStaticRoutes`): one object per TGW route
--     table, `{"TransitGatewayRouteTableId": "tgw-rtb-1", "Routes": [...]}` where `Routes` is what
--     search-transit-gateway-routes prints under "Routes";
--   * `TransitGatewayPropagations` (Batfish's wrapper): `{"TransitGatewayRouteTableId": ...,
--     "TransitGatewayRouteTablePropagations": [...]}` as get-transit-gateway-route-table-propagations
--     prints; propagated routes are computed from these and the VPCs' CIDRs (listed propagated routes
--     are used only for tables without propagation data);
--   * `TransitGatewayAssociations`: `{"TransitGatewayRouteTableId": ..., "Associations": [...]}`
--     (the attachments' own `Association` field is read too);
--   * `ManagedPrefixLists` entries inline as `Entries` (get-managed-prefix-list-entries);
--   * `ResolvedNames`: DNS answers recorded with the snapshot, `{"Name": ..., "Addresses": [...]}`;
--     a database is reached at the ENI holding its endpoint's address when it is recorded;
--   * `NotCollected`: what the collector could not read, `{"Key": "SecurityGroups", "Reason": ...}`
--     (written by awsnet.snapshot). It, and a SecurityGroups, RouteTables or NetworkAcls file missing
--     where there are subnets, goes to `model.skipped` and into the assumptions of each trace through
--     that account.
--   * `manifest.json` next to aws_configs (`awsnet snapshot --organization`): each failure in it
--     (an account whose role could not be assumed, a region refused, ...) and each account × region
--     left incomplete goes to `model.skipped` and into the assumptions of every trace.
--
-- A value of the wrong type where the loader reads is "invalid_snapshot" with err.file and err.path
-- (awsnet.reach.shape); a folder's files over `max_file_size` (default 1 GiB) are refused unread.
--
-- Returns a model, or nil, err with err.code "invalid_snapshot" and err.file / err.resource (and
-- err.path, the JSON path, for a value of the wrong type: see awsnet.reach.shape).
-- `model.skipped` lists what was not modelled and why; `model.counts` the sizes.
-- @module awsnet.reach
local core = require "awsnet.core"
local errors = require "awsnet.errors"
local build = require "awsnet.reach.build"
local report = require "awsnet.reach.report"

local creach = core.reach
local reach = {}
local new_result = report.result
local tointeger, type, error = math.tointeger, type, error

-- The table form's values of the wrong type (awsnet.reach.shape), named by account, region and
-- JSON path; nil when all are right (the shape of `accounts` itself is build's to check).
local function check_table(data)
  if type(data.accounts) ~= "table" then return nil end
  local shape = require "awsnet.reach.shape"
  for account, regions in pairs(data.accounts) do
    if type(regions) == "table" then
      for region, res in pairs(regions) do
        if type(res) == "table" then
          local ok, err = shape.check(res, string.format("accounts/%s/%s", tostring(account), tostring(region)), true)
          if not ok then return err end
        end
      end
    end
  end
end

local Model = {}
Model.__index = Model
Model.__name = "awsnet.reach.model"

local PROTOCOLS = { tcp = 6, udp = 17, icmp = 1, icmpv6 = 58, all = -1, ["-1"] = -1 }
-- ICMP requests and the replies a stateful security group lets back (RFC 792, RFC 4443): the
-- default type of an ICMP trace is the echo request; a type without a reply is traced one way.
local ICMP_REPLY = { [1] = { [8] = 0, [13] = 14 }, [58] = { [128] = 129 } }
local ICMP_ECHO = { [1] = 8, [58] = 128 }
-- Client source ports the replies go back to (nacl-ephemeral-ports.html).
local LOAD_GC_PAUSE = 150
local EPHEMERAL = { lambda = { 1024, 65535 }, default = { 32768, 60999 } }

-- What manifest.json (awsnet snapshot --organization) says was not collected: each failure, and
-- each account x region left incomplete, goes to `skipped` and is said in every trace (a path may
-- lead into an account or region the snapshot lacks).
local function not_collected(b, manifest)
  local function add(account, region, why)
    local where = account and (region and string.format("account %s, %s", account, region) or ("account " .. account))
      or "the organisation's account list"
    b.skipped[#b.skipped + 1] = { account = account, region = region, resource = where, reason = "not collected: " .. why }
    b.missing[#b.missing + 1] = { account = account, region = region, everywhere = true,
      text = string.format("%s not collected (%s): paths through it are not modelled", where, why) }
  end
  for _, f in ipairs(type(manifest.failures) == "table" and manifest.failures or {}) do
    if type(f) == "table" then
      add(type(f.account) == "string" and f.account or nil, type(f.region) == "string" and f.region or nil,
        string.format("%s: %s", tostring(f.operation), tostring(f.code)))
    end
  end
  for _, a in ipairs(type(manifest.accounts) == "table" and manifest.accounts or {}) do
    for _, r in ipairs(type(a) == "table" and type(a.regions) == "table" and a.regions or {}) do
      if type(r) == "table" and r.status == "incomplete" then add(tostring(a.id), tostring(r.region), "snapshot interrupted") end
    end
  end
end

--- Builds a model from a snapshot folder or table (see the module comment).
-- @param source a folder path (string) or the data as a table
-- @tparam[opt] table opts {max_file_size = bytes per file of a folder (default 1 GiB)}
-- @return the model (`model:trace`, `model:matrix`, `model:who_can_reach`, ...), or nil, err
-- ("invalid_snapshot" with file or resource, or a read error of the folder)
-- @raise on a source that is neither, or a bad max_file_size
function reach.load(source, opts)
  local data, origins, skipped
  if opts ~= nil and type(opts) ~= "table" then error("reach.load: options must be a table", 2) end
  if type(source) == "string" then
    local err
    -- lazily: each file decoded when the builder reaches it, dropped once compiled
    data, err, skipped = require("awsnet.reach.snapshot").read(source,
      { lazy = true, max_file_size = opts and opts.max_file_size })
    if not data then return nil, err end
    origins = err
  elseif type(source) == "table" then
    data = source
    local err = check_table(data)
    if err then return nil, err end
  else
    error("reach.load: folder name or table expected", 2)
  end
  -- The collector starts a cycle when the heap has grown to `pause`% of what the last one kept
  -- (200 by default): while a load makes and drops decoded tables, 150 keeps its peak memory
  -- close to what it holds, for a few per cent more time (bench/reach).
  local pause = collectgarbage("setpause", LOAD_GC_PAUSE)
  local b, err = build.compile(data, origins)
  collectgarbage("setpause", pause)
  if not b then return nil, err end
  if skipped and #skipped > 0 then
    table.move(b.skipped, 1, #b.skipped, #skipped + 1, skipped)
    b.skipped = skipped
  end
  if type(source) == "string" then
    local manifest, merr = require("awsnet.reach.snapshot").manifest(source)
    if merr then return nil, merr end
    if manifest then not_collected(b, manifest) end
  end
  local assumptions = {}
  for _, a in ipairs(b.assumed or {}) do assumptions[#assumptions + 1] = a end
  if b.az_assumed then
    assumptions[#assumptions + 1] = "some subnets have no AvailabilityZoneId: AZ names compared within one account"
  end
  if b.unknown_trtbs then
    assumptions[#assumptions + 1] = "some TGW route tables are only known by id (owner account not in the snapshot)"
  end
  local model = setmetatable({
    _m = b.m, _b = b, skipped = b.skipped, counts = b.m:counts(),
    assumptions = assumptions,
    _endpoints = b.endpoints, _vpc_info = b.info.vpc, -- (what each trace reads, one lookup away)
  }, Model)
  model._result_mt = report.metatable(model)
  return model
end

-- ---- endpoints -----------------------------------------------------------------------------

--- What a src or dst names: an endpoint record (ENI, instance, RDS: {eni, ip_n, ip_s, ip6_n, ip6_s,
-- label, vpc, ...}, the ip6 fields on a dual-stack one; a Lambda function also {enis, ips, ips6},
-- one per subnet) or a plain address {ip, label} (ip as core.reach.ip gives it: an integer for
-- IPv4, 16 bytes for IPv6).
-- @within Model
-- @tparam string name as `trace` takes it
-- @tparam string role "src" or "dst" (for messages)
-- @param[opt] resolver as for `Model:resolve`
-- @tparam[opt] boolean v6 a DNS name is asked for AAAA (IPv6) instead of A
-- @treturn table the endpoint, or nil, err ("unknown_endpoint", or a DNS error)
-- @raise when `name` is not a non-empty string
function Model:endpoint(name, role, resolver, v6)
  if type(name) ~= "string" or name == "" then error("trace: " .. role .. " must be a non-empty string", 3) end
  local ep = self._b.endpoints[name]
  if ep then return ep end
  local ip = creach.ip(name)
  if ip then return { ip = ip, label = name } end
  if name:match("^lambda:") or name:match("^rds:") or name:match("^eni%-") or name:match("^i%-") then
    return errors.fail("unknown_endpoint", role .. " " .. name .. " is not in the snapshot")
  end
  return self:resolve(name, role, resolver, v6)
end

local ENDPOINT_KINDS = { { "lambda", "^lambda:" }, { "rds", "^rds:" }, { "instance", "^i%-" }, { "eni", "^eni%-" } }

--- The names `trace` takes that the snapshot knows: Lambda functions (`lambda:<name>`), databases
-- (`rds:<id>`), instances (`i-...`) and ENIs (`eni-...`), in that order, each group sorted.
-- @within Model
-- @tparam[opt] string kind only this kind: "lambda", "rds", "instance" or "eni"
-- @treturn {string,...} the names
-- @raise on another kind
function Model:endpoints(kind)
  local groups = {}
  for _, k in ipairs(ENDPOINT_KINDS) do groups[k[1]] = {} end
  for name in pairs(self._b.endpoints) do
    for _, k in ipairs(ENDPOINT_KINDS) do
      if name:match(k[2]) then table.insert(groups[k[1]], name) break end
    end
  end
  if kind ~= nil and not groups[kind] then error("endpoints: kind must be lambda, rds, instance or eni", 2) end
  local names = {}
  for _, k in ipairs(ENDPOINT_KINDS) do
    if kind == nil or kind == k[1] then
      table.sort(groups[k[1]])
      table.move(groups[k[1]], 1, #groups[k[1]], #names + 1, names)
    end
  end
  return names
end

--- A DNS name: an RDS endpoint the snapshot knows is answered from it unless a resolver is given;
-- anything else is asked through awsnet.dns.
-- @within Model
-- @tparam string name the DNS name
-- @tparam string role "src" or "dst" (for messages)
-- @param[opt] resolver a server address, or awsnet.dns options {server, port, timeout, ...}
-- @tparam[opt] boolean v6 ask for AAAA (an IPv6 trace) instead of A
-- @treturn table the endpoint {ip, label, dns_name, resolved, cname_chain}, or nil, err (awsnet.dns's
-- codes, "unknown_endpoint" without an address of the family)
function Model:resolve(name, role, resolver, v6)
  local rec = self._b.rds_names[name:lower()]
  if rec and not resolver then return rec end
  local ok, dns = pcall(require, "awsnet.dns")
  if not ok then return errors.fail("unsupported", "DNS name " .. name .. " needs awsnet.dns") end
  local opts = { type = v6 and "AAAA" or "A" }
  if type(resolver) == "table" then
    for k, v in pairs(resolver) do opts[k] = v end
    opts.type = v6 and "AAAA" or "A"
  elseif resolver then
    opts.server = resolver
  end
  local ans, err = dns.resolve(name, opts)
  if not ans then return nil, err end
  local addr = ans.addresses and ans.addresses[1]
  local ip = addr and creach.ip(addr)
  if not ip or (type(ip) == "string") ~= (v6 == true) then
    return errors.fail("unknown_endpoint", role .. " " .. name .. " has no " .. (v6 and "IPv6" or "IPv4") .. " address")
  end
  return { ip = ip, label = name, dns_name = name, resolved = addr, cname_chain = ans.cname_chain }
end

--- Where a database's endpoint resolves through `resolver`: the address and the ENI holding it
-- in the database's VPC (-1 when none does: the trace then ends NO_DESTINATION_ENI).
-- @within Model
-- @tparam table dst the database's endpoint record (from `Model:endpoint`)
-- @param resolver as for `Model:resolve`
-- @tparam[opt] boolean v6 ask for its AAAA record (an IPv6 trace to a dual-stack database)
-- @treturn table {ip (as core.reach.ip), eni (index or -1), text (the assumption said)}, or nil, err
-- (awsnet.dns's codes, "unknown_endpoint" without an address of the family)
function Model:resolve_database(dst, resolver, v6)
  local ans, err = self:resolve(dst.address, "dst", resolver, v6)
  if not ans then return nil, err end
  local vpc = self._b.idx.vpc[dst.vpc or ""]
  local eni = vpc and self._m:lookup("eni", vpc, ans.ip) or -1
  local eni_id = self._b.eni_ids[eni]
  return { ip = ans.ip, eni = eni, text = string.format("%s: its endpoint %s resolved to %s%s", dst.label, dst.address,
    creach.ipstr(ans.ip), eni_id and (" (" .. eni_id .. ")") or ", which no network interface holds") }
end

--- The VPC id a source lives in (for the DNS rules).
-- @within Model
-- @tparam table ep an endpoint from `Model:endpoint`
-- @treturn ?string the VPC id, nil outside every subnet of the model
function Model:source_vpc(ep)
  local b = self._b
  if ep.eni then return ep.vpc end
  local subnet = self._m:lookup("any_subnet", ep.ip)
  return subnet and b.info.subnet[b.subnet_ids[subnet]].vpc
end

-- ---- trace ---------------------------------------------------------------------------------

local function protocol_arg(p)
  if p == nil then return 6 end
  local n = type(p) == "number" and math.tointeger(p) or PROTOCOLS[p] or PROTOCOLS[tostring(p):lower()]
  if not n or n < -1 or n > 255 then error("trace: bad protocol " .. tostring(p), 3) end
  return n
end

local function byte_arg(v, what, default)
  if v == nil then return default end
  local n = math.tointeger(v)
  if not n or n < 0 or n > 255 then error("trace: " .. what .. " must be an integer 0..255", 4) end
  return n
end

-- The destination port; for ICMP and ICMPv6 the type and code (q.icmp_type, default the echo
-- request; q.icmp_code, default 0) as the evaluator keeps them: type << 8 | code.
local function port_arg(q, proto)
  if proto ~= 6 and proto ~= 17 then
    if proto ~= 1 and proto ~= 58 then return 0 end
    return byte_arg(q.icmp_type, "icmp_type", ICMP_ECHO[proto]) << 8 | byte_arg(q.icmp_code, "icmp_code", 0)
  end
  local n = math.tointeger(q.port)
  if not n or n < 0 or n > 65535 then error("trace: port must be an integer 0..65535", 3) end
  return n
end

-- The source ports a client's replies come back to: the one given, or its kind's range; for
-- ICMP the reply's type (code 0), or nothing when the type has none.
local function client_ports(src, src_port, proto, port)
  if proto == 1 or proto == 58 then
    local reply = ICMP_REPLY[proto][port >> 8]
    if not reply then return nil end
    return reply << 8, reply << 8
  end
  if src_port ~= nil then
    local p = math.tointeger(src_port)
    if not p or p < 0 or p > 65535 then error("bad src_port " .. tostring(src_port), 3) end
    return p, p
  end
  local eph = (src.lambda or src.hyperplane) and EPHEMERAL.lambda or EPHEMERAL.default
  return eph[1], eph[2]
end

-- "ipv4" (the default: false), "ipv6" (true); nil when not given, for who may infer it.
local function family_arg(family, who)
  if family == nil or family == "ipv4" then return family and false end
  if family == "ipv6" then return true end
  error(who .. ": family must be \"ipv4\" or \"ipv6\"", 3)
end

-- An endpoint's address of the family (as core.reach.ip gives it), or nil.
local function address_of(ep, v6)
  if v6 then return ep.ip6_n or (type(ep.ip) == "string" and ep.ip) or nil end
  return ep.ip_n or (type(ep.ip) == "number" and ep.ip) or nil
end

-- A walked result, with the flags the evaluator does not know (set only when true: a result is
-- made per trace, and fewer fields keep it in a smaller table).
local function traced(mt, src, dst, trap, dns_default, src_port, resolved, ok, query)
  local r = new_result(mt, src, dst, ok, query)
  if resolved then r._resolved = resolved end
  if trap then r._trap = true end
  if dns_default then r._dns_default = dns_default end
  if src_port ~= nil then r._spg = true end
  return r
end

-- Whether an endpoint has an address of the family: a named one its ip6 (or ip) fields, a Lambda
-- every Hyperplane ENI, a plain address its own family.
local function has_family(ep, v6)
  if ep.lambda then
    local ips = v6 and ep.ips6 or (not v6 and ep.ips) or nil
    if not ips then return false end
    for i = 1, #ips do if not ips[i] then return false end end
    return true
  end
  if ep.eni then
    if v6 then return ep.ip6_n ~= nil end
    return ep.ip_n ~= nil
  end
  return (type(ep.ip) == "string") == v6
end

-- nil when a trace's endpoints and protocol are of one family (IPv4 rules never match IPv6 traffic
-- and the other way round, so a mixed trace has no answer), else the error ("invalid_endpoint";
-- raises for a protocol of the other family).
local function family_check(src, dst, proto, v4)
  local v6 = not v4
  if v6 and proto == 1 then error("trace: protocol icmp is IPv4's; an IPv6 trace uses \"icmpv6\" (58)", 3) end
  if v4 and proto == 58 then error("trace: protocol icmpv6 is IPv6's; an IPv4 trace uses \"icmp\" (1)", 3) end
  -- (no table made: IPv6 traces come here each time)
  local ep, role = src, "src"
  if has_family(src, v6) then
    if (dst.rds and not dst.available) or has_family(dst, v6) then return nil end
    ep, role = dst, "dst"
  end
  local why = ep.rds and (" (NetworkType " .. tostring(ep.network_type) .. "; DUAL answers AAAA)") or ""
  return select(2, errors.fail("invalid_endpoint", string.format("%s %s has no %s address%s", role, ep.label,
    v6 and "IPv6" or "IPv4", why)))
end

--- model:trace{src=, dst=, protocol="tcp", port=3306, src_port=, resolver=, direction="both"}
-- Returns a result (see awsnet.reach.report), or nil, err when an endpoint is unknown.
-- (Scripts call this in loops of many thousands: the common path reads each field once and
-- makes one small table, the result.)
-- @within Model
-- @tparam table q {src, dst (IP, ENI id, instance id, "lambda:<name>", "rds:<id>" or a DNS name),
-- protocol ("tcp", "udp", "icmp", "icmpv6", "all" or a number), port, src_port, resolver, direction,
-- family ("ipv4", the default, or "ipv6": each endpoint's IPv6 address, AAAA for DNS names; an IPv6
-- address as src or dst implies it), icmp_type and icmp_code (ICMP: default the echo request, code 0)}
-- @return the result {reachable, code, blocked_at, forward, ret, assumptions}, or nil, err
-- ("unknown_endpoint", "invalid_endpoint", a DNS error)
-- @raise on a query of the wrong shape
function Model:trace(q)
  if type(q) ~= "table" then error("trace: table argument expected", 2) end
  local protocol = q.protocol
  local proto = PROTOCOLS[protocol] or protocol_arg(protocol)
  local port
  if proto == 6 or proto == 17 then -- (port_arg's common case, without a call)
    port = tointeger(q.port)
    if not port or port < 0 or port > 65535 then error("trace: port must be an integer 0..65535", 2) end
  else
    port = port_arg(q, proto)
  end
  local family = q.family
  local v6 = family == "ipv6"
  if family ~= nil and not v6 and family ~= "ipv4" then error("trace: family must be \"ipv4\" or \"ipv6\"", 2) end
  local endpoints = self._endpoints
  local src, dst = endpoints[q.src], endpoints[q.dst]
  local err
  if not src then
    src, err = self:endpoint(q.src, "src", q.resolver, v6)
    if not src then return nil, err end
    -- an IPv6 address names the family when the query does not
    if family == nil and type(src.ip) == "string" then v6 = true end
  end
  if src.rds then return errors.fail("invalid_endpoint", "an RDS instance does not start connections") end
  if not dst then
    dst, err = self:endpoint(q.dst, "dst", q.resolver, v6)
    if not dst then return nil, err end
    if family == nil and type(dst.ip) == "string" and not dst.dns_name then v6 = true end
  end
  if dst.lambda then
    return errors.fail("invalid_endpoint", "nothing can open a connection to a Lambda function (one-way: Lambda -> VPC)")
  end
  local lambda = src.lambda
  if v6 then
    -- (no call when both are named endpoints with an IPv6 address, the source not a Lambda function,
    -- whose every ENI family_check reads)
    if proto == 1 or lambda or not (src.ip6_n and dst.ip6_n) then
      err = family_check(src, dst, proto)
      if err then return nil, err end
    end
  elseif proto == 58 or not (src.ip_n and dst.ip_n) then
    -- (a plain address, an endpoint without IPv4, ICMPv6: checked; no call on the common path,
    -- where both are named endpoints with an IPv4 address: records with `ip_n` have `eni` and no `ip`)
    err = family_check(src, dst, proto, true)
    if err then return nil, err end
  end
  local src_port = q.src_port
  local eph_lo, eph_hi
  if src_port == nil and (proto == 6 or proto == 17) then -- (client_ports' common case, without a call)
    local eph = (lambda or src.hyperplane) and EPHEMERAL.lambda or EPHEMERAL.default
    eph_lo, eph_hi = eph[1], eph[2]
  else
    eph_lo, eph_hi = client_ports(src, src_port, proto, port)
  end
  local direction = q.direction
  local forward_only = direction == "forward"
  if direction ~= nil and not forward_only and direction ~= "both" then
    error("trace: direction must be \"both\" or \"forward\"", 2)
  end
  if not eph_lo then -- an ICMP type nothing answers: one way
    forward_only, eph_lo, eph_hi = true, 0, 0
  end
  local mt = self._result_mt
  -- DNS: a name must resolve in the source's VPC, and a publicly accessible RDS name resolves
  -- to its public address from outside the DB's VPC.
  local dst_ip, dst_eni
  local trap, dns_default, resolved
  if dst.rds or dst.dns_name then
    dst_ip, dst_eni = dst.ip, -1
    local src_vpc
    if src.eni then src_vpc = src.vpc else src_vpc = self:source_vpc(src) end
    local vinfo = src_vpc and self._vpc_info[src_vpc]
    local early -- the report of a result decided here, before any packet moves
    if vinfo and not vinfo.dns_support and not q._past_dns then
      early = report.dns_blocked
    else
      if vinfo and not vinfo.dns_known then dns_default = src_vpc end
      if dst.rds then
        if not dst.available then
          early = report.db_unavailable
        elseif dst.public and src_vpc ~= dst.vpc and not v6 then
          -- (the AAAA record is the ENI's IPv6 address wherever it is asked: no trap for IPv6)
          trap = true
          if dst.public_ip then dst_ip = creach.ip(dst.public_ip) else early = report.public_unknown end
        else
          dst_eni, dst_ip = dst.eni, dst.ip_n
          if v6 then dst_ip = dst.ip6_n end
          if q.resolver and dst.address then
            -- the database is reached at the address its endpoint resolves to
            local via, rerr = self:resolve_database(dst, q.resolver, v6)
            if not via then return nil, rerr end
            dst_eni, dst_ip, resolved = via.eni, via.ip, via.text
          end
        end
      end
    end
    if early then
      -- no walk, so no packed query: the result carries the query as plain fields; past a name
      -- that does not resolve, its blocked path is the trace as if it did
      local past
      if early == report.dns_blocked then
        past = function()
          return self:trace{ src = q.src, dst = q.dst, protocol = q.protocol, port = q.port, src_port = q.src_port,
            resolver = q.resolver, direction = q.direction, _past_dns = true }
        end
      end
      return early(mt, { _src = src, _dst = dst, _proto = proto, _port = port, _lo = eph_lo, _hi = eph_hi,
        _dip = false, _fo = forward_only or nil, _spg = src_port ~= nil or nil, _dns_default = dns_default,
        _trap = trap, _past = past }, src_vpc)
    end
  else
    dst_eni = dst.eni
    if not dst_eni then
      dst_ip, dst_eni = dst.ip, -1
    elseif v6 then
      dst_ip = dst.ip6_n
    else
      dst_ip = dst.ip_n
    end
  end
  local m = self._m
  local common = not (trap or dns_default or resolved or src_port ~= nil) -- a result of 4 fields
  if lambda then
    -- A Lambda function uses a Hyperplane ENI in each configured subnet: every one must get through.
    -- The result is of the first that does not, or of the first ENI (one result table made; its
    -- `source` and `source_index` are read from its query: awsnet.reach.report).
    local enis = src.enis
    local n = #enis
    local ok1, q1, at = m:trace_sources(enis, dst_eni, dst_ip, proto, port, eph_lo, eph_hi, forward_only)
    local r
    if common then
      r = new_result(mt, src, dst, ok1, q1)
    else
      r = traced(mt, src, dst, trap, dns_default, src_port, resolved, ok1, q1)
    end
    if not ok1 and at < n then
      local ips = v6 and src.ips6 or src.ips
      -- the function's other ENIs, which its fix set must get through too (awsnet.reach.blocked)
      r._siblings = function()
        local others = {}
        for k = at + 1, n do
          local o = traced(mt, src, dst, trap, dns_default, src_port, resolved,
            m:trace(enis[k], nil, nil, dst_eni, dst_ip, proto, port, eph_lo, eph_hi, forward_only))
          o.source, o.source_index = ips[k], k
          others[#others + 1] = o
        end
        return others
      end
    end
    return r
  end
  local src_eni = src.eni
  if src_eni then
    local ok, query = m:trace_sources(src_eni, dst_eni, dst_ip, proto, port, eph_lo, eph_hi, forward_only)
    if common then return new_result(mt, src, dst, ok, query) end
    return traced(mt, src, dst, trap, dns_default, src_port, resolved, ok, query)
  end
  local subnet = m:lookup("any_subnet", src.ip)
  if not subnet then
    return errors.fail("unknown_endpoint", "src " .. src.label .. " is in no subnet of the snapshot")
  end
  local eni = m:lookup("eni", self._b.subnet_vpc[subnet], src.ip)
  return traced(mt, src, dst, trap, dns_default, src_port, resolved,
    m:trace(eni or -1, subnet, src.ip, dst_eni, dst_ip, proto, port, eph_lo, eph_hi, forward_only))
end

--- model:matrix{sources = {...}, destinations = {...}, protocol=, port=} -> result with
-- `reachable[i][j]` (booleans), `codes[i][j]` (explanation code or false), computed in C.
-- Sources and destinations are names as for trace (a Lambda counts with its first ENI); replies
-- are checked for each source's client ports as in trace (or `src_port`).
-- @within Model
-- @tparam table q {sources, destinations, protocol, port, src_port, family ("ipv4" or "ipv6"), icmp_type}
-- @treturn table {reachable, codes, sources, destinations}, or nil, err ("unknown_endpoint")
-- @raise on a query of the wrong shape
function Model:matrix(q)
  if type(q) ~= "table" or type(q.sources) ~= "table" or type(q.destinations) ~= "table" then
    error("matrix: {sources=, destinations=} expected", 2)
  end
  local proto = protocol_arg(q.protocol)
  local port = port_arg(q, proto)
  local v6 = family_arg(q.family, "matrix")
  local function flatten(names, role)
    local flat = {}
    for _, name in ipairs(names) do
      local ep, err = self:endpoint(name, role, nil, v6)
      if not ep then return nil, err end
      local eni = ep.eni or -1
      local ip = address_of(ep, v6)
      if not ip then
        return errors.fail("invalid_endpoint", string.format("%s %s has no %s address", role, name, v6 and "IPv6" or "IPv4"))
      end
      local subnet = eni >= 0 and -1 or self._m:lookup("any_subnet", ip)
      if not subnet then return errors.fail("unknown_endpoint", role .. " " .. name .. " is in no subnet") end
      flat[#flat + 1], flat[#flat + 2], flat[#flat + 3] = eni, subnet, ip
      if role == "src" then
        local lo, hi = client_ports(ep, q.src_port, proto, port)
        if not lo then error("matrix: ICMP type " .. (port >> 8) .. " has no reply: trace it one way", 4) end
        flat[#flat + 1], flat[#flat + 2] = lo, hi
      end
    end
    return flat
  end
  local srcs, err = flatten(q.sources, "src")
  if not srcs then return nil, err end
  local dsts
  dsts, err = flatten(q.destinations, "dst")
  if not dsts then return nil, err end
  local ok, codes = self._m:matrix(srcs, dsts, proto, port)
  return { reachable = ok, codes = codes, sources = q.sources, destinations = q.destinations }
end

--- model:who_can_reach{dst=, protocol=, port=} -> {ranges = {{first, last, cidrs, subnet}}, enis = {...}}
-- `ranges`: every source address, in every subnet of the model, whose packets the routes, NACLs and
-- the destination's security groups let through both ways (exact: computed on the address
-- intervals where some rule changes, not sampled); a source ENI's own egress rules are then
-- applied in `enis`: the ids of the ENIs that get through with their own security groups. Replies
-- are checked for client ports 1024-65535 (any client: Lambda's range, the widest).
-- @within Model
-- @tparam table q {dst, protocol, port, resolver, family ("ipv4" or "ipv6"; an IPv6 address implies it)}
-- @treturn table {ranges, enis}, or nil, err ("unknown_endpoint", "invalid_endpoint" for a Lambda)
-- @raise on a query of the wrong shape
function Model:who_can_reach(q)
  if type(q) ~= "table" then error("who_can_reach: table argument expected", 2) end
  local proto = protocol_arg(q.protocol)
  local port = port_arg(q, proto)
  local v6 = family_arg(q.family, "who_can_reach")
  local dst, err = self:endpoint(q.dst, "dst", q.resolver, v6)
  if not dst then return nil, err end
  if dst.lambda then return errors.fail("invalid_endpoint", "nothing can open a connection to a Lambda function") end
  if v6 == nil and type(dst.ip) == "string" and not dst.dns_name then v6 = true end
  local dst_eni = dst.eni or -1
  local dst_ip = address_of(dst, v6)
  if not dst_ip then
    return errors.fail("invalid_endpoint", string.format("dst %s has no %s address", q.dst, v6 and "IPv6" or "IPv4"))
  end
  local eph = EPHEMERAL.lambda
  if proto == 1 or proto == 58 then
    local lo = client_ports(dst, nil, proto, port)
    if not lo then error("who_can_reach: ICMP type " .. (port >> 8) .. " has no reply", 2) end
    eph = { lo, lo }
  end
  local runs = self._m:who_can_reach(dst_eni, dst_ip, proto, port, eph[1], eph[2])
  local out = { ranges = {}, enis = {} }
  for _, r in ipairs(runs) do
    out.ranges[#out.ranges + 1] = { first = creach.ipstr(r[2]), last = creach.ipstr(r[3]),
      cidrs = report.cidrs(r[2], r[3]), subnet = self._b.subnet_ids[r[1]] }
  end
  local endpoints = self._b.endpoints
  for idx, id in pairs(self._b.eni_ids) do
    local ep = endpoints[id]
    if idx ~= dst_eni and (v6 and ep.ip6_n or ep.ip_n) then
      local ok = self._m:trace(idx, nil, nil, dst_eni, dst_ip, proto, port, eph[1], eph[2], false)
      if ok then out.enis[#out.enis + 1] = id end
    end
  end
  table.sort(out.enis)
  return out
end

--- Frees the C model; results already returned stay readable.
-- @within Model
function Model:close()
  self._m:close()
end

--- The metatable of models (for `getmetatable(m) == reach.Model`).
reach.Model = Model
return reach
