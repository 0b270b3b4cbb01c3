--- The sandbox's world: accounts, sessions and resources, with a seeded id generator, AWS-like
-- state transitions and an optional JSON file so a sandbox survives restarts.
-- @module awsnet.sandbox.state
local cjson = require "cjson"
local errors = require "awsnet.errors"

local state = {}
local State = {}
State.__index = State

local regions = require "awsnet.sandbox.regions"

-- Kinds that belong to an account alone, not to a region (IAM is a global service); every other
-- kind lives in the region it was made in and is seen only there.
local GLOBAL_KINDS = { role = true }

--- A fresh world. opts: accounts (array of 12-digit ids), secrets ({[account]=secret}), seed,
-- region (the one `region()` names outside a request, default us-east-1), transition_s (time a
-- resource stays pending/deleting). Resources live per region (`in_region`).
-- @tparam table opts the options
-- @return the state (`State` methods)
-- @raise on an account id that is not 12 digits
function state.new(opts)
  local self = setmetatable({
    data = {
      seed = opts.seed or 1, rng = (opts.seed or 1) * 2654435761 % 4294967296 + 1, clock = 0,
      region = opts.region or "us-east-1",
      accounts = {}, sessions = {}, res = {}, regions = {},
    },
    transition_s = opts.transition_s or 1,
  }, State)
  for i, id in ipairs(opts.accounts or { "111111111111", "222222222222" }) do
    assert(type(id) == "string" and id:match("^%d%d%d%d%d%d%d%d%d%d%d%d$"), "account ids are 12 digits")
    self.data.accounts[id] = { secret = (opts.secrets or {})[id] or "test", zone_rotation = i - 1 }
  end
  return self
end

--- Reads a saved world from `path`; nil when there is none.
-- @tparam string path the JSON file
-- @tparam table opts as for `new` (the transition time; the saved data replaces the rest)
-- @return the state, nil without a file, or nil, err ("state": not a saved world)
function state.load(path, opts)
  local f = io.open(path, "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local ok, data = pcall(cjson.decode, text)
  if not ok or type(data) ~= "table" then return errors.fail("state", "unreadable sandbox state " .. path) end
  local self = state.new(opts)
  self.data = data
  -- a world saved before resources were regional: its regional kinds were the saved region's,
  -- its accounts' zone letters a table of us-east-1's six zones
  data.regions = data.regions or {}
  for _, acct in pairs(data.accounts or {}) do
    if not acct.zone_rotation and type(acct.az_letter_of) == "table" then
      local k = ("abcdef"):find(acct.az_letter_of.az1 or "a", 1, true) or 1
      acct.zone_rotation = (7 - k) % 6
    end
  end
  for kind, objs in pairs(data.res or {}) do
    if not GLOBAL_KINDS[kind] then
      local r = data.region or "us-east-1"
      data.regions[r] = data.regions[r] or {}
      data.regions[r][kind] = objs
      data.res[kind] = nil
    end
  end
  return self
end

--- Writes the world to `path` atomically (temp file + rename).
-- @within State
-- @tparam string path the JSON file
-- @raise when the file cannot be written
function State:save(path)
  local tmp = path .. ".tmp"
  -- it holds secrets (session keys, master passwords, Lambda environments): the owner's only,
  -- before anything is in it, whatever the folder's permissions
  local f = assert(io.open(tmp, "w"))
  f:close()
  assert(require("awsnet.svc.process").call({ "chmod", "600", "--", tmp }, { interruptible = false }))
  f = assert(io.open(tmp, "w"))
  f:write(cjson.encode(self.data))
  f:close()
  assert(os.rename(tmp, path))
end

--- The region this view of the state sees (`in_region`); the default one for the whole state.
-- @within State
-- @treturn string
function State:region() return self.current_region or self.data.region end

--- A view of the same world that sees the resources of `region` only (and the global ones:
-- accounts, sessions, IAM roles). Writes through it change the one world.
-- @within State
-- @tparam string region a region name
-- @return the view (`State` methods)
function State:in_region(region)
  return setmetatable({ data = self.data, transition_s = self.transition_s, current_region = region }, State)
end

--- The regions that hold any resource, sorted (the default region always).
-- @within State
-- @treturn {string,...}
function State:regions()
  local seen, out = { [self.data.region] = true }, { self.data.region }
  for r, kinds in pairs(self.data.regions or {}) do
    if not seen[r] and next(kinds) then
      for _, objs in pairs(kinds) do
        if next(objs) then seen[r] = true; out[#out + 1] = r; break end
      end
    end
  end
  table.sort(out)
  return out
end

--- An account's record {secret, zone_rotation}, nil for an unknown id.
-- @within State
-- @tparam string id the account id
-- @treturn ?table
function State:account(id) return self.data.accounts[id] end

--- The account ids, sorted.
-- @within State
-- @treturn {string,...}
function State:accounts()
  local ids = {}
  for id in pairs(self.data.accounts) do ids[#ids + 1] = id end
  table.sort(ids)
  return ids
end

--- One step of xorshift32: a small deterministic generator whose whole state is one number.
-- @tparam integer x the current state (not 0)
-- @treturn integer the next state, a 32-bit number
function state.xorshift32(x)
  x = x ~ ((x << 13) & 0xffffffff)
  x = x ~ (x >> 17)
  return x ~ ((x << 5) & 0xffffffff)
end

--- The next number of the saved generator: the same seed gives the same ids.
-- @within State
-- @treturn integer a 32-bit number
function State:random32()
  self.data.rng = state.xorshift32(self.data.rng)
  return self.data.rng
end

--- `n` random hex digits from the generator.
-- @within State
-- @tparam integer n how many
-- @treturn string
function State:hex(n)
  local out = {}
  while #out < n do
    local v = self:random32()
    for _ = 1, 8 do
      if #out == n then break end
      out[#out + 1] = string.format("%x", v & 15)
      v = v >> 4
    end
  end
  return table.concat(out)
end

--- An AWS-shaped id: prefix-<17 hex>.
-- @within State
-- @tparam string prefix "vpc", "subnet", ...
-- @tparam[opt=17] integer digits how many hex digits
-- @treturn string
function State:new_id(prefix, digits) return prefix .. "-" .. self:hex(digits or 17) end

--- A request id in the UUID shape AWS uses.
-- @within State
-- @treturn string
function State:request_id()
  local h = self:hex(32)
  return string.format("%s-%s-4%s-a%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(14, 16), h:sub(18, 20), h:sub(21, 32))
end

--- Alphanumeric string of `n` chars (access keys, endpoint names).
-- @within State
-- @tparam integer n how many
-- @tparam[opt] string alphabet the characters to draw from (default A-Z0-9)
-- @treturn string
function State:token(n, alphabet)
  alphabet = alphabet or "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
  local out = {}
  for i = 1, n do
    local k = self:random32() % #alphabet + 1
    out[i] = alphabet:sub(k, k)
  end
  return table.concat(out)
end

--- `n` characters of `alphabet` from the system's cryptographic random source (/dev/urandom),
-- for secrets (session keys and tokens): unlike `token`, nothing about the seed or the request
-- ids tells them. Unbiased (bytes past the largest multiple of #alphabet are drawn again).
-- @tparam integer n how many
-- @tparam[opt] string alphabet the characters to draw from (default A-Z0-9)
-- @treturn string
-- @raise when /dev/urandom cannot be read
function state.secret_token(n, alphabet)
  alphabet = alphabet or "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
  local limit = 256 - 256 % #alphabet
  local f = assert(io.open("/dev/urandom", "rb"))
  local out = {}
  while #out < n do
    local bytes = assert(f:read(n * 2))
    for i = 1, #bytes do
      local b = bytes:byte(i)
      if b < limit and #out < n then
        local k = b % #alphabet + 1
        out[#out + 1] = alphabet:sub(k, k)
      end
    end
  end
  f:close()
  return table.concat(out)
end

--- The table of resources of `kind` (id -> object) in this view's region (global kinds: all).
-- @within State
-- @tparam string kind "vpc", "eni", "db_instance", ...
-- @treturn table the live table (created when absent)
function State:all(kind)
  local bucket = self.data.res
  if not GLOBAL_KINDS[kind] then
    local r = self:region()
    self.data.regions = self.data.regions or {}
    bucket = self.data.regions[r]
    if not bucket then bucket = {}; self.data.regions[r] = bucket end
  end
  local t = bucket[kind]
  if not t then t = {}; bucket[kind] = t end
  return t
end

--- Stores `obj` (with obj.id) under `kind`, stamped with a creation order.
-- @within State
-- @tparam string kind the kind
-- @tparam table obj the object
-- @treturn table obj
function State:put(kind, obj)
  self.data.clock = self.data.clock + 1
  obj.seq = self.data.clock
  self:all(kind)[obj.id] = obj
  return obj
end

--- The object of `kind` with this id, or nil.
-- @within State
-- @tparam string kind the kind
-- @param id the id (nil gives nil)
-- @treturn ?table
function State:get(kind, id) return id and self:all(kind)[id] end

--- Forgets an object.
-- @within State
-- @tparam string kind the kind
-- @param id the id
function State:remove(kind, id) self:all(kind)[id] = nil end

--- Objects of `kind` for which `keep(obj)` holds, in creation order.
-- @within State
-- @tparam string kind the kind
-- @tparam[opt] function keep obj -> true to list it (default: all)
-- @treturn table the objects
function State:list(kind, keep)
  local out = {}
  for _, obj in pairs(self:all(kind)) do
    if not keep or keep(obj) then out[#out + 1] = obj end
  end
  table.sort(out, function(a, b) return a.seq < b.seq end)
  return out
end

--- Starts a timed state change: obj.state = now_state until `transition_s` passed, then final.
-- @within State
-- @tparam table obj the object
-- @tparam string now_state "pending", "deleting", ...
-- @tparam string final_state "available", "deleted", ...
function State:transition(obj, now_state, final_state)
  obj.state, obj.next_state, obj.ready_at = now_state, final_state, os.time() + self.transition_s
  if self.transition_s <= 0 then obj.ready_at = 0 end
end

--- Applies a due state change to `obj`; returns its state.
-- @within State
-- @tparam table obj the object
-- @treturn string its state now
function State:settle(obj) -- luacheck: no unused args
  if obj.next_state and os.time() >= (obj.ready_at or 0) then
    obj.state, obj.next_state, obj.ready_at = obj.next_state, nil, nil
  end
  return obj.state
end

-- The zones of this view's region as `account` sees them.
local function zones_of(self, account)
  local acct = self.data.accounts[account]
  return regions.zones(self:region(), acct and acct.zone_rotation or 0)
end

--- AZ name of `az_id` as `account` sees it in this view's region (us-east-1a ...); `az_id_of`
-- goes back.
-- @within State
-- @tparam string account the account id
-- @tparam string az_id "use1-az1", ...
-- @treturn ?string the name (nil for an id not in the region)
function State:az_name(account, az_id)
  for _, z in ipairs(zones_of(self, account)) do
    if z.id == az_id then return z.name end
  end
end

--- The AZ ID of a zone name as `account` sees it, or nil for a name not in the region.
-- @within State
-- @tparam string account the account id
-- @tparam string az_name "us-east-1a", ...
-- @treturn ?string the AZ ID
function State:az_id_of(account, az_name)
  for _, z in ipairs(zones_of(self, account)) do
    if z.name == az_name then return z.id end
  end
end

--- Every AZ of the view's region as `account` sees it: array of {name, id}, sorted by name.
-- @within State
-- @tparam string account the account id
-- @treturn table the zones
function State:zones(account)
  return zones_of(self, account)
end

return state
