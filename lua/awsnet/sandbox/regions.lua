--- The regions the sandbox serves and their Availability Zones.
-- The regions are the `aws` partition's, as botocore's endpoints.json lists them (read through
-- awsnet.aws.model.endpoints); a request's credential scope names one of them. Each region has
-- its AZs by AZ ID; every account sees them under its own letters, the mapping rotated by the
-- account's place in the sandbox's account list, as AWS maps names to zones per account.
-- @module awsnet.sandbox.regions
local regions = {}

-- Zones of the regions the article and the tests use, as AWS has them: {AZ ID suffixes, letters}.
-- ap-northeast-1 has no "b" zone for new accounts: a, c and d are apne1-az4, -az1 and -az2 in
-- some order. Any other region of the partition gets three zones, az1..az3 as a..c.
local ZONES = {
  ["us-east-1"] = { ids = { "az1", "az2", "az3", "az4", "az5", "az6" }, letters = { "a", "b", "c", "d", "e", "f" } },
  ["ap-northeast-1"] = { ids = { "az1", "az2", "az4" }, letters = { "a", "c", "d" } },
  ["eu-west-1"] = { ids = { "az1", "az2", "az3" }, letters = { "a", "b", "c" } },
}
local DEFAULT_ZONES = { ids = { "az1", "az2", "az3" }, letters = { "a", "b", "c" } }

-- The AZ ID prefix: "ap-northeast-1" -> "apne1", "us-east-1" -> "use1", "eu-central-2" -> "euc2".
local DIRECTIONS = { east = "e", west = "w", north = "n", south = "s", central = "c", northeast = "ne",
  northwest = "nw", southeast = "se", southwest = "sw" }

-- When botocore's endpoints.json is not there: the regions of the zone table.
local FALLBACK = { "ap-northeast-1", "eu-west-1", "us-east-1" }

local served

--- The regions served, a set {[name] = true}: the `aws` partition's of endpoints.json.
-- @treturn table the set
function regions.served()
  if served then return served end
  served = {}
  local ok, doc = pcall(function() return require("awsnet.aws.model").endpoints() end)
  for _, p in ipairs(ok and type(doc) == "table" and doc.partitions or {}) do
    if p.partition == "aws" then
      for name in pairs(p.regions or {}) do served[name] = true end
    end
  end
  if not next(served) then for _, name in ipairs(FALLBACK) do served[name] = true end end
  return served
end

--- True when the sandbox serves `name`.
-- @param name a region name
-- @treturn boolean
function regions.serves(name)
  return type(name) == "string" and regions.served()[name] == true
end

--- The AZ ID prefix of a region ("apne1" for ap-northeast-1).
-- @tparam string region the region
-- @treturn string
function regions.prefix(region)
  local area, direction, n = region:match("^(%a+)%-(%a+)%-(%d+)$")
  if not area then return region end
  return area .. (DIRECTIONS[direction] or direction:sub(1, 1)) .. n
end

--- The zones of `region` as an account at `rotation` (0-based) sees them: array of {name, id},
-- sorted by name.
-- @tparam string region the region
-- @tparam integer rotation the account's place (0 for the first account)
-- @treturn table the zones
function regions.zones(region, rotation)
  local z = ZONES[region] or DEFAULT_ZONES
  local n, prefix, out = #z.ids, regions.prefix(region), {}
  for k = 1, n do
    out[k] = { name = region .. z.letters[k], id = prefix .. "-" .. z.ids[(k - 1 + rotation) % n + 1] }
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

return regions
