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

local PROTOCOLS = { tcp = 6, udp = 17, icmp = 1, all = -1, ["-1"] = -1 }
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
  }, Model)
  model._result_mt = report.metatable(model)
  return model
end

-- ---- endpoints -----------------------------------------------------------------------------

--- What a src or dst names: an endpoint record (ENI, instance, RDS: {eni, ip_n, ip_s, label, vpc,
-- ...}; a Lambda function also {enis, ips}, one per subnet) or a plain address {ip, label}.
-- @within Model
-- @tparam string name as `trace` takes it
-- @tparam string role "src" or "dst" (for messages)
-- @param[opt] resolver as for `Model:resolve`
-- @treturn table the endpoint, or nil, err ("unknown_endpoint", or a DNS error)
-- @raise when `name` is not a non-empty string
function Model:endpoint(name, role, resolver)
  if type(name) ~= "string" or name == "" then error("trace: " .. role .. " must be a non-empty string", 3) end
  local ep = self._b.endpoints[name]
  if ep then return ep end
  local ip = creach.ip(name)
  if ip then return { ip = ip, label = name } end
  if name:match("^lambda:") or name:match("^rds:") or name:match("^eni%-") or name:match("^i%-") then
    return errors.fail("unknown_endpoint", role .. " " .. name .. " is not in the snapshot")
  end
  return self:resolve(name, role, resolver)
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
-- @treturn table the endpoint {ip, label, dns_name, resolved, cname_chain}, or nil, err (awsnet.dns's
-- codes, "unknown_endpoint" without an IPv4 address)
function Model:resolve(name, role, resolver)
  local rec = self._b.rds_names[name:lower()]
  if rec and not resolver then return rec end
  local ok, dns = pcall(require, "awsnet.dns")
  if not ok then return errors.fail("unsupported", "DNS name " .. name .. " needs awsnet.dns") end
  local opts = { type = "A" }
  if type(resolver) == "table" then
    for k, v in pairs(resolver) do opts[k] = v end
  elseif resolver then
    opts.server = resolver
  end
  local ans, err = dns.resolve(name, opts)
  if not ans then return nil, err end
  local addr = ans.addresses and ans.addresses[1]
  local ip = addr and creach.ip(addr)
  if not ip then return errors.fail("unknown_endpoint", role .. " " .. name .. " has no IPv4 address") end
  return { ip = ip, label = name, dns_name = name, resolved = addr, cname_chain = ans.cname_chain }
end

--- Where a database's endpoint resolves through `resolver`: the address and the ENI holding it
-- in the database's VPC (-1 when none does: the trace then ends NO_DESTINATION_ENI).
-- @within Model
-- @tparam table dst the database's endpoint record (from `Model:endpoint`)
-- @param resolver as for `Model:resolve`
-- @treturn table {ip (integer), eni (index or -1), text (the assumption said)}, or nil, err
-- (awsnet.dns's codes, "unknown_endpoint" without an IPv4 address)
function Model:resolve_database(dst, resolver)
  local ans, err = self:resolve(dst.address, "dst", resolver)
  if not ans then return nil, err end
  local vpc = self._b.idx.vpc[dst.vpc or ""]
  local eni = vpc and self._m:lookup("eni", vpc, ans.ip) or -1
  local eni_id
  for id, info in pairs(self._b.info.eni) do
    if info.idx == eni then eni_id = id break end
  end
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

local function port_arg(p, proto)
  if proto ~= 6 and proto ~= 17 then return 0 end
  local n = math.tointeger(p)
  if not n or n < 0 or n > 65535 then error("trace: port must be an integer 0..65535", 3) end
  return n
end

-- The source ports a client's replies come back to: the one given, or its kind's range.
local function client_ports(src, src_port)
  if src_port ~= nil then
    local p = math.tointeger(src_port)
    if not p or p < 0 or p > 65535 then error("bad src_port " .. tostring(src_port), 3) end
    return p, p
  end
  local eph = (src.lambda or src.hyperplane) and EPHEMERAL.lambda or EPHEMERAL.default
  return eph[1], eph[2]
end

-- A walked result, with the flags the evaluator does not know (set only when true: a result is
-- made per trace, and fewer fields keep it in a smaller table).
local function traced(mt, src, dst, trap, dns_default, src_port, resolved, ok, query)
  local r = report.result(mt, src, dst, ok, query)
  if resolved then r._resolved = resolved end
  if trap then r._trap = true end
  if dns_default then r._dns_default = dns_default end
  if src_port ~= nil then r._spg = true end
  return r
end

--- model:trace{src=, dst=, protocol="tcp", port=3306, src_port=, resolver=, direction="both"}
-- Returns a result (see awsnet.reach.report), or nil, err when an endpoint is unknown.
-- (Scripts call this in loops of many thousands: the common path reads each field once and
-- makes one small table, the result.)
-- @within Model
-- @tparam table q {src, dst (IP, ENI id, instance id, "lambda:<name>", "rds:<id>" or a DNS name),
-- protocol ("tcp", "udp", "icmp", "all" or a number), port, src_port, resolver, direction}
-- @return the result {reachable, code, blocked_at, forward, ret, assumptions}, or nil, err
-- ("unknown_endpoint", "invalid_endpoint", a DNS error)
-- @raise on a query of the wrong shape
function Model:trace(q)
  if type(q) ~= "table" then error("trace: table argument expected", 2) end
  local proto = PROTOCOLS[q.protocol] or protocol_arg(q.protocol)
  local port = port_arg(q.port, proto)
  local endpoints = self._b.endpoints
  local src, dst = endpoints[q.src], endpoints[q.dst]
  local err
  if not src then
    src, err = self:endpoint(q.src, "src", q.resolver)
    if not src then return nil, err end
  end
  if src.rds then return errors.fail("invalid_endpoint", "an RDS instance does not start connections") end
  if not dst then
    dst, err = self:endpoint(q.dst, "dst", q.resolver)
    if not dst then return nil, err end
  end
  if dst.lambda then
    return errors.fail("invalid_endpoint", "nothing can open a connection to a Lambda function (one-way: Lambda -> VPC)")
  end
  local src_port = q.src_port
  local eph_lo, eph_hi = client_ports(src, src_port)
  local direction = q.direction
  local forward_only = direction == "forward"
  if direction ~= nil and not forward_only and direction ~= "both" then
    error("trace: direction must be \"both\" or \"forward\"", 2)
  end
  local mt = self._result_mt
  -- DNS: a name must resolve in the source's VPC, and a publicly accessible RDS name resolves
  -- to its public address from outside the DB's VPC.
  local dst_ip, dst_eni = dst.ip, -1
  local trap, dns_default, resolved
  if dst.rds or dst.dns_name then
    local src_vpc = self:source_vpc(src)
    local vinfo = src_vpc and self._b.info.vpc[src_vpc]
    local early -- the report of a result decided here, before any packet moves
    if vinfo and not vinfo.dns_support then
      early = report.dns_blocked
    else
      if vinfo and not vinfo.dns_known then dns_default = src_vpc end
      if dst.rds then
        if not dst.available then
          early = report.db_unavailable
        elseif dst.public and src_vpc ~= dst.vpc then
          trap = true
          if dst.public_ip then dst_ip = creach.ip(dst.public_ip) else early = report.public_unknown end
        else
          dst_eni, dst_ip = dst.eni, dst.ip_n
          if q.resolver and dst.address then
            -- the database is reached at the address its endpoint resolves to
            local via, rerr = self:resolve_database(dst, q.resolver)
            if not via then return nil, rerr end
            dst_eni, dst_ip, resolved = via.eni, via.ip, via.text
          end
        end
      end
    end
    if early then
      -- no walk, so no packed query: the result carries the query as plain fields
      return early(mt, { _src = src, _dst = dst, _proto = proto, _port = port, _lo = eph_lo, _hi = eph_hi,
        _dip = false, _fo = forward_only or nil, _spg = src_port ~= nil or nil, _dns_default = dns_default,
        _trap = trap }, src_vpc)
    end
  elseif dst.eni then
    dst_eni, dst_ip = dst.eni, dst.ip_n
  end
  local m = self._m
  if src.lambda then
    -- A Lambda function uses a Hyperplane ENI in each configured subnet: every one must get through.
    local first
    local enis = src.enis
    for i, eni in ipairs(enis) do
      local r = traced(mt, src, dst, trap, dns_default, src_port, resolved,
        m:trace(eni, nil, nil, dst_eni, dst_ip, proto, port, eph_lo, eph_hi, forward_only))
      if #enis > 1 then r.source, r.source_index = src.ips[i], i end
      if not r.reachable then return r end
      first = first or r
    end
    return first
  end
  if src.eni then
    return traced(mt, src, dst, trap, dns_default, src_port, resolved,
      m:trace(src.eni, nil, nil, dst_eni, dst_ip, proto, port, eph_lo, eph_hi, forward_only))
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
-- @tparam table q {sources, destinations, protocol, port, src_port}
-- @treturn table {reachable, codes, sources, destinations}, or nil, err ("unknown_endpoint")
-- @raise on a query of the wrong shape
function Model:matrix(q)
  if type(q) ~= "table" or type(q.sources) ~= "table" or type(q.destinations) ~= "table" then
    error("matrix: {sources=, destinations=} expected", 2)
  end
  local proto = protocol_arg(q.protocol)
  local port = port_arg(q.port, proto)
  local function flatten(names, role)
    local flat = {}
    for _, name in ipairs(names) do
      local ep, err = self:endpoint(name, role)
      if not ep then return nil, err end
      local eni = ep.eni or -1
      local ip = ep.ip_n or ep.ip
      local subnet = eni >= 0 and -1 or self._m:lookup("any_subnet", ip)
      if not subnet then return errors.fail("unknown_endpoint", role .. " " .. name .. " is in no subnet") end
      flat[#flat + 1], flat[#flat + 2], flat[#flat + 3] = eni, subnet, ip
      if role == "src" then
        local lo, hi = client_ports(ep, q.src_port)
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
-- @tparam table q {dst, protocol, port, resolver}
-- @treturn table {ranges, enis}, or nil, err ("unknown_endpoint", "invalid_endpoint" for a Lambda)
-- @raise on a query of the wrong shape
function Model:who_can_reach(q)
  if type(q) ~= "table" then error("who_can_reach: table argument expected", 2) end
  local proto = protocol_arg(q.protocol)
  local port = port_arg(q.port, proto)
  local dst, err = self:endpoint(q.dst, "dst", q.resolver)
  if not dst then return nil, err end
  if dst.lambda then return errors.fail("invalid_endpoint", "nothing can open a connection to a Lambda function") end
  local dst_eni = dst.eni or -1
  local dst_ip = dst.ip_n or dst.ip
  local eph = EPHEMERAL.lambda
  local runs = self._m:who_can_reach(dst_eni, dst_ip, proto, port, eph[1], eph[2])
  local out = { ranges = {}, enis = {} }
  for _, r in ipairs(runs) do
    out.ranges[#out.ranges + 1] = { first = creach.ipstr(r[2]), last = creach.ipstr(r[3]),
      cidrs = report.cidrs(r[2], r[3]), subnet = self._b.subnet_ids[r[1]] }
  end
  for id, info in pairs(self._b.info.eni) do
    if info.idx ~= dst_eni then
      local ok = self._m:trace(info.idx, nil, nil, dst_eni, dst_ip, proto, port, eph[1], eph[2], false)
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
