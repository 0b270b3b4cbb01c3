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

-- The regions AWS launched after 20 March 2019: disabled in an account until it opts in (AWS's
-- "Specify which AWS Regions your account can use").
local OPT_IN = { ["af-south-1"] = true, ["ap-east-1"] = true, ["ap-south-2"] = true, ["ap-southeast-3"] = true,
  ["ap-southeast-4"] = true, ["ap-southeast-5"] = true, ["ca-west-1"] = true, ["eu-central-2"] = true,
  ["eu-south-1"] = true, ["eu-south-2"] = true, ["il-central-1"] = true, ["me-central-1"] = true,
  ["me-south-1"] = true, ["mx-central-1"] = true, ["ap-southeast-7"] = true }

--- The sandbox's regions as DescribeRegions tells them: `enabled` (those given, else every region
-- served) and one opt-in region served but not opted in (the first by name not enabled): a
-- request scoped to it is refused, as AWS refuses calls to a disabled region.
-- @tparam ?{string,...} enabled the enabled regions (nil: every served region but the disabled one)
-- @treturn table {enabled = {name,...} sorted, disabled = name or nil, status = {[name] = OptInStatus}}
function regions.plan(enabled)
  local names = {}
  for name in pairs(regions.served()) do names[#names + 1] = name end
  table.sort(names)
  local on = {}
  for _, name in ipairs(enabled or {}) do on[name] = true end
  local disabled
  for _, name in ipairs(names) do
    if OPT_IN[name] and not on[name] and not disabled then disabled = name end
  end
  local out = { enabled = {}, disabled = disabled, status = {} }
  for _, name in ipairs(names) do
    if name ~= disabled and (not enabled or on[name]) then
      out.enabled[#out.enabled + 1] = name
      out.status[name] = OPT_IN[name] and "opted-in" or "opt-in-not-required"
    end
  end
  if disabled then out.status[disabled] = "not-opted-in" end
  return out
end

--- EC2 DescribeRegions on a plan: the enabled regions, the disabled one too with AllRegions;
-- RegionNames picks (an unknown name is InvalidParameterValue), Filters region-name, endpoint and
-- opt-in-status.
-- @tparam table plan as `plan` returns
-- @tparam table p the request's params {RegionNames, AllRegions, Filters}
-- @tparam function filter EC2's filters: (items, fields of an item) -> the items that pass, or nil, err
-- @treturn table the regions {RegionName, Endpoint, OptInStatus}, or nil, err
function regions.describe(plan, p, filter)
  local names = {}
  for _, n in ipairs(plan.enabled) do names[#names + 1] = n end
  local all = p.AllRegions == true or p.AllRegions == "true"
  local picked = type(p.RegionNames) == "table" and #p.RegionNames > 0 and p.RegionNames or nil
  if plan.disabled and (all or picked) then names[#names + 1] = plan.disabled end
  table.sort(names)
  local want
  if picked then
    want = {}
    for _, n in ipairs(picked) do
      if not plan.status[n] then
        return require("awsnet.errors").fail("InvalidParameterValue", "Invalid region: " .. tostring(n), { status = 400 })
      end
      want[n] = true
    end
  end
  local out = {}
  for _, n in ipairs(names) do
    if not want or want[n] then
      out[#out + 1] = { RegionName = n, Endpoint = "ec2." .. n .. ".amazonaws.com", OptInStatus = plan.status[n] }
    end
  end
  return filter(out, function(r)
    return { ["region-name"] = r.RegionName, endpoint = r.Endpoint, ["opt-in-status"] = r.OptInStatus }
  end)
end

return regions
