--- DNS resolution against a chosen resolver, and address classification.
--
--   local dns = require "awsnet.dns"
--   local r, err = dns.resolve("mydb.xxxx.ap-northeast-1.rds.amazonaws.com",
--                              {server = "10.1.0.2", type = "A", timeout = 2, tries = 2})
--   -- r.addresses = {"10.1.128.5"}, r.cname_chain = {{name=, target=, ttl=}, ...},
--   -- r.ttl (the smallest TTL along the chain and the records used), r.rcode = "NOERROR",
--   -- r.answers (every record as received), r.records (those of the asked type at the end of
--   -- the chain), r.text (TXT, strings joined per record), r.names (PTR, NS, CNAME)
--   -- err.code: "nxdomain", "nodata", "servfail", "refused", "timeout", "unreachable",
--   --           "malformed", "badname", or "dns" for any other failure (err.rcode when known)
--   dns.classify("100.64.1.1")   --> "private", "RFC 6598"
--
-- Servers: `server` is one address or an array tried in order ("10.0.0.2", "127.0.0.1:5353",
-- "[::1]:53"); `port` applies to entries without one; with no server the system's resolvers
-- (/etc/resolv.conf) are asked. UDP first, TCP when the answer is truncated (or `tcp = true`).
-- @module awsnet.dns
local errors = require "awsnet.errors"

local dns = {}

local TYPES = { A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, TXT = 16, AAAA = 28 }
local TYPE_NAMES = {}
for name, number in pairs(TYPES) do TYPE_NAMES[number] = name end

local RCODES = { [0] = "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED" }

-- c-ares statuses for questions that got no usable answer (an answer, whatever its rcode, is
-- interpreted here instead).
local STATUS_CODES = {
  ETIMEOUT = "timeout", ECONNREFUSED = "unreachable", EBADRESP = "malformed", EBADNAME = "badname",
  EBADQUERY = "badname",
}

local function core() return require("awsnet.core").dns end

local function parse_ipv4(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  local n = 0
  for _, part in ipairs({ a, b, c, d }) do
    local v = tonumber(part)
    if v > 255 or (#part > 1 and part:sub(1, 1) == "0") then return nil end
    n = n * 256 + v
  end
  return n
end

-- Returns the 8 groups of an IPv6 address (with an optional embedded IPv4 tail), or nil.
local function parse_ipv6(s)
  if not s:find(":", 1, true) or s:find("[^%x:%.]") then return nil end
  local head = s
  local v4 = s:match(":(%d+%.%d+%.%d+%.%d+)$")
  if v4 then
    local n = parse_ipv4(v4)
    if not n then return nil end
    head = s:sub(1, #s - #v4) .. string.format("%x:%x", n >> 16, n & 0xffff)
  end
  local left, right = head:match("^(.-)::(.*)$")
  local function groups(part)
    local out = {}
    if part == "" then return out end
    for g in (part .. ":"):gmatch("([^:]*):") do
      if not g:match("^%x%x?%x?%x?$") then return nil end
      out[#out + 1] = tonumber(g, 16)
    end
    return out
  end
  local result
  if left then
    if right:find("::", 1, true) then return nil end
    local l, r = groups(left), groups(right)
    if not l or not r or #l + #r > 7 then return nil end
    result = l
    for _ = 1, 8 - #l - #r do result[#result + 1] = 0 end
    for _, g in ipairs(r) do result[#result + 1] = g end
  else
    result = groups(head)
    if not result or #result ~= 8 then return nil end
  end
  return result
end

--- True when `s` is an IPv4 or IPv6 address in text form.
-- @param s any value
-- @treturn boolean
function dns.is_ip(s)
  return type(s) == "string" and (parse_ipv4(s) ~= nil or parse_ipv6(s) ~= nil)
end

local IPV4_RANGES = {
  { 0x0A000000, 8, "private", "RFC 1918" },      -- 10.0.0.0/8
  { 0xAC100000, 12, "private", "RFC 1918" },     -- 172.16.0.0/12
  { 0xC0A80000, 16, "private", "RFC 1918" },     -- 192.168.0.0/16
  { 0x64400000, 10, "private", "RFC 6598" },     -- 100.64.0.0/10, carrier-grade NAT
  { 0x7F000000, 8, "loopback", "RFC 1122" },     -- 127.0.0.0/8
  { 0xA9FE0000, 16, "link-local", "RFC 3927" },  -- 169.254.0.0/16 (IMDS, Amazon DNS)
}

--- Classifies an address: "private" (RFC 1918, RFC 6598, IPv6 ULA), "public", "link-local",
-- "loopback"; the second value names the range's RFC. Raises on something not an address.
-- @tparam string ip an IPv4 or IPv6 address (IPv4-mapped IPv6 is classified as IPv4)
-- @treturn string the class
-- @treturn ?string the RFC of the range ("RFC 1918"), nil for public addresses
-- @raise when `ip` is not an address
function dns.classify(ip)
  if type(ip) ~= "string" then error("bad argument #1 to 'classify' (address expected)", 2) end
  local v4 = parse_ipv4(ip)
  if v4 then
    for _, r in ipairs(IPV4_RANGES) do
      if v4 >> (32 - r[2]) == r[1] >> (32 - r[2]) then return r[3], r[4] end
    end
    return "public"
  end
  local g = parse_ipv6(ip)
  if not g then error("bad argument #1 to 'classify' (not an IP address: " .. ip .. ")", 2) end
  if g[1] == 0 and g[2] == 0 and g[3] == 0 and g[4] == 0 and g[5] == 0 and g[6] == 0xffff then
    return dns.classify(string.format("%d.%d.%d.%d", g[7] >> 8, g[7] & 255, g[8] >> 8, g[8] & 255))
  end
  local all_zero_but_last = true
  for i = 1, 7 do if g[i] ~= 0 then all_zero_but_last = false end end
  if all_zero_but_last and g[8] == 1 then return "loopback", "RFC 4291" end
  if g[1] & 0xffc0 == 0xfe80 then return "link-local", "RFC 4291" end
  if g[1] & 0xfe00 == 0xfc00 then return "private", "RFC 4193" end
  return "public"
end

--- True for a private address (RFC 1918, RFC 6598, IPv6 ULA).
-- @tparam string ip an address
-- @treturn boolean
-- @raise when `ip` is not an address
function dns.is_private(ip) return dns.classify(ip) == "private" end

--- True for a public address.
-- @tparam string ip an address
-- @treturn boolean
-- @raise when `ip` is not an address
function dns.is_public(ip) return dns.classify(ip) == "public" end

--- True for a link-local address (169.254.0.0/16, fe80::/10).
-- @tparam string ip an address
-- @treturn boolean
-- @raise when `ip` is not an address
function dns.is_link_local(ip) return dns.classify(ip) == "link-local" end

--- True for a loopback address (127.0.0.0/8, ::1).
-- @tparam string ip an address
-- @treturn boolean
-- @raise when `ip` is not an address
function dns.is_loopback(ip) return dns.classify(ip) == "loopback" end

--- The reverse-lookup name of an address ("5.128.1.10.in-addr.arpa", nibbles for IPv6).
-- @tparam string ip an address
-- @treturn string the name under in-addr.arpa or ip6.arpa
function dns.reverse_name(ip)
  local v4 = parse_ipv4(ip or "")
  if v4 then
    return string.format("%d.%d.%d.%d.in-addr.arpa", v4 & 255, (v4 >> 8) & 255, (v4 >> 16) & 255, v4 >> 24)
  end
  local g = parse_ipv6(ip or "")
  if not g then error("bad argument #1 to 'reverse_name' (not an IP address)", 2) end
  local hex = {}
  for i = 8, 1, -1 do
    for shift = 0, 12, 4 do hex[#hex + 1] = string.format("%x", (g[i] >> shift) & 15) end
  end
  return table.concat(hex, ".") .. ".ip6.arpa"
end

--- The Amazon-provided resolver of a VPC: the primary IPv4 CIDR's base + 2 ("10.0.0.0/16" -> "10.0.0.2").
-- @tparam string cidr the VPC's primary IPv4 CIDR block
-- @treturn string the resolver's address
function dns.vpc_resolver(cidr)
  local base, len = tostring(cidr):match("^([%d%.]+)/(%d+)$")
  local n = base and parse_ipv4(base)
  if not n or tonumber(len) > 30 then error("bad argument #1 to 'vpc_resolver' (IPv4 CIDR expected)", 2) end
  n = (n & ~((1 << (32 - tonumber(len))) - 1) & 0xffffffff) + 2
  return string.format("%d.%d.%d.%d", n >> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255)
end

-- One server entry as c-ares wants it: "host:port", IPv6 in brackets.
local function server_entry(s, port)
  if type(s) ~= "string" or s == "" then error("bad option 'server' (address string expected)", 3) end
  if s:match("^%[.+%]:%d+$") or s:match("^[^:]+:%d+$") then return s end
  if parse_ipv6(s) then s = "[" .. s .. "]" end
  return s .. ":" .. port
end

local function lower(name) return (name:gsub("%.$", ""):lower()) end

-- Follows CNAME records from `qname` through the answer section.
local function cname_chain(answers, qname)
  local by_owner = {}
  for _, rr in ipairs(answers) do
    if rr.type == TYPES.CNAME then by_owner[lower(rr.name)] = rr end
  end
  local chain, current, seen = {}, lower(qname), {}
  while by_owner[current] and not seen[current] do
    seen[current] = true
    local rr = by_owner[current]
    chain[#chain + 1] = { name = rr.name, target = rr.data, ttl = rr.ttl }
    current = lower(rr.data)
  end
  return chain, current
end

local function check_opts(name, opts)
  if type(name) ~= "string" or name == "" then error("bad argument #1 to 'resolve' (name expected)", 3) end
  if opts ~= nil and type(opts) ~= "table" then error("bad argument #2 to 'resolve' (table expected)", 3) end
  opts = opts or {}
  local qtype = TYPES[(opts.type or "A"):upper()]
  if not qtype then error("bad option 'type' (A, AAAA, CNAME, TXT, PTR, NS or SOA)", 3) end
  for _, k in ipairs({ "timeout", "tries", "port" }) do
    if opts[k] ~= nil and (type(opts[k]) ~= "number" or opts[k] <= 0) then
      error("bad option '" .. k .. "' (positive number expected)", 3)
    end
  end
  return opts, qtype
end

-- Turns a parsed message into the result, or into the error its rcode or emptiness means.
local function interpret(name, qtype, qname, msg)
  local rcode = RCODES[msg.rcode] or ("RCODE" .. msg.rcode)
  local result = {
    name = name, type = TYPE_NAMES[qtype], rcode = rcode, authoritative = msg.aa,
    answers = msg.answers, authority = msg.authority, addresses = {}, names = {}, text = {},
  }
  local chain, final = cname_chain(msg.answers, qname)
  result.cname_chain, result.canonical_name = chain, final
  local ttl
  for _, link in ipairs(chain) do ttl = math.min(ttl or link.ttl, link.ttl) end
  result.records = {}
  for _, rr in ipairs(msg.answers) do
    if rr.type == qtype and lower(rr.name) == final then
      ttl = math.min(ttl or rr.ttl, rr.ttl)
      result.records[#result.records + 1] = rr
      if qtype == TYPES.A or qtype == TYPES.AAAA then
        result.addresses[#result.addresses + 1] = rr.data
      elseif qtype == TYPES.TXT then
        result.text[#result.text + 1] = table.concat(rr.data)
      elseif type(rr.data) == "string" then
        result.names[#result.names + 1] = rr.data
      end
    end
  end
  if qtype == TYPES.CNAME and #chain > 0 then result.names[1] = chain[1].target end
  result.ttl = ttl
  if rcode == "NXDOMAIN" then
    return errors.fail("nxdomain", name .. " does not exist (NXDOMAIN)",
      { rcode = rcode, name = name, type = result.type, cname_chain = chain, result = result })
  elseif rcode ~= "NOERROR" then
    local code = ({ SERVFAIL = "servfail", REFUSED = "refused" })[rcode] or "dns"
    return errors.fail(code, string.format("%s %s: %s", name, result.type, rcode),
      { rcode = rcode, name = name, type = result.type, result = result })
  end
  local found = #result.records > 0 or (qtype == TYPES.CNAME and #chain > 0)
  if not found then
    return errors.fail("nodata", string.format("%s has no %s record%s", name, result.type,
      #chain > 0 and (" (CNAME chain ends at " .. final .. ")") or ""),
      { rcode = rcode, name = name, type = result.type, cname_chain = chain, result = result })
  end
  return result
end

-- An error for a question that got no usable answer from `server`.
local function transport_error(name, qtype, server, status, detail)
  return errors.new(STATUS_CODES[status] or "dns", string.format("%s %s: %s", name, TYPE_NAMES[qtype], detail),
    { status = status, name = name, type = TYPE_NAMES[qtype], server = server })
end

-- Answers that say something about the resolver rather than the name: try the next server.
local ASK_NEXT = { servfail = true, refused = true, timeout = true, unreachable = true, malformed = true }

--- Asks the question and interprets the answer: see the module comment for the result's shape.
-- Servers are asked one after the other (each with `tries` tries of `timeout` seconds) until one
-- gives an answer about the name; result.server says which one, err.attempts lists every try.
-- @tparam string name the name (an address for type "PTR" is turned into its reverse name)
-- @tparam[opt] table opts {server (string or array), port, type = "A" (A, AAAA, CNAME, NS, PTR,
-- SOA, TXT), timeout = 2, tries = 2, tcp}
-- @treturn table {addresses, cname_chain, ttl, rcode, answers, records, text, names, server}, or
-- nil, err with code "nxdomain", "nodata", "servfail", "refused", "timeout", "unreachable",
-- "malformed", "badname" or "dns" (and rcode, server, attempts)
-- @raise on bad options
function dns.resolve(name, opts)
  local qtype
  opts, qtype = check_opts(name, opts)
  local qname = name
  if qtype == TYPES.PTR and dns.is_ip(name) then qname = dns.reverse_name(name) end
  local servers = opts.server
  if type(servers) == "string" then servers = { servers } end
  if servers and #servers == 0 then error("bad option 'server' (empty list)", 2) end
  local timeout_ms = math.max(1, math.floor((opts.timeout or 2) * 1000))
  local tries = math.tointeger(opts.tries) or 2
  local attempts, first_answered, last
  for i = 1, servers and #servers or 1 do
    local entry = servers and server_entry(servers[i], math.tointeger(opts.port) or 53)
    -- c-ares doubles the per-try timeout each round; the deadline keeps the promise of
    -- `timeout` x `tries` per server (the system's list holds at most 3, resolv.conf's MAXNS).
    local msg, status, detail = core().query(qname, qtype, {
      servers = entry, timeout_ms = timeout_ms, tries = tries, tcp = opts.tcp,
      deadline_ms = math.min(timeout_ms * tries * (entry and 1 or 3) + 100, 3600000),
    })
    local result, err
    if msg then
      result, err = interpret(name, qtype, qname, msg)
      if err then err.server = entry end
    else
      err = transport_error(name, qtype, entry, status, detail)
    end
    if result then
      result.server = entry
      return result
    end
    attempts = attempts or {}
    attempts[#attempts + 1] = { server = entry, code = err.code, message = err.message }
    err.attempts = attempts
    if not ASK_NEXT[err.code] then return nil, err end
    -- a server that answered (SERVFAIL, REFUSED) says more than one that was silent
    if not first_answered and (err.code == "servfail" or err.code == "refused") then first_answered = err end
    last = err
  end
  local err = first_answered or last
  err.attempts = attempts
  return nil, err
end

--- Query types by name, with their numbers ({A = 1, AAAA = 28, ...}).
dns.TYPES = TYPES
return dns
