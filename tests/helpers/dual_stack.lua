-- The article's snapshot (tests/fixtures/reach/article, as a table) made dual stack the way AWS
-- does it: an Amazon-provided /56 on each VPC, a /64 on each subnet, an IPv6 address on each ENI,
-- and next to every IPv4 route, NACL entry and security-group range its IPv6 twin (NACL entries
-- numbered one above their IPv4 twin, 32768 beside 32767, as in a default dual-stack NACL); the TGW
-- attachments with Ipv6Support, the database in NetworkType DUAL, the function with
-- Ipv6AllowedForDualStack. Only the CIDRs the article uses are mapped (anything else is an error).
local dual = {}

-- The VPCs' /56s: 10.0.0.0/16 (account A) and 10.1.0.0/16 (account B).
dual.VPC6 = { ["10.0.0.0/16"] = "2600:1f18:100:a00::/56", ["10.1.0.0/16"] = "2600:1f18:100:b00::/56" }

local function octets(ip)
  local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return tonumber(a), tonumber(b), tonumber(c), tonumber(d)
end

-- A /28 of the article's 10.x.128.0-10.x.130.31 as the /64 numbered after it in its VPC's /56.
local function subnet64(ip)
  local _, b, c, d = octets(ip)
  return string.format("2600:1f18:100:%s%02x", b == 0 and "a" or "b", (c - 128) * 16 + d // 16)
end

--- The IPv6 twin of an IPv4 CIDR of the article.
function dual.cidr(c)
  if dual.VPC6[c] then return dual.VPC6[c] end
  if c == "0.0.0.0/0" then return "::/0" end
  local ip, len = c:match("^(.-)/(%d+)$")
  if len == "28" then return subnet64(ip) .. "::/64" end
  if len == "32" then return dual.address(ip) .. "/128" end
  error("dual_stack: no IPv6 twin for " .. c)
end

--- The IPv6 twin of an address of the article: the same host number in the subnet's /64.
function dual.address(ip)
  local _, _, _, d = octets(ip)
  return string.format("%s::%x", subnet64(ip), d % 16)
end

local function each(data, key, fn)
  for _, regions in pairs(data.accounts) do
    for _, r in pairs(regions) do
      for _, item in ipairs(r[key] or {}) do fn(item) end
    end
  end
end

--- Makes `data` (the article as reach.load's table form) dual stack, in place; returns it.
function dual.make(data)
  each(data, "Vpcs", function(v)
    v.Ipv6CidrBlockAssociationSet = { { Ipv6CidrBlock = dual.VPC6[v.CidrBlock], Ipv6Pool = "Amazon",
      Ipv6CidrBlockState = { State = "associated" } } }
  end)
  each(data, "Subnets", function(s)
    s.Ipv6CidrBlockAssociationSet = { { Ipv6CidrBlock = dual.cidr(s.CidrBlock),
      Ipv6CidrBlockState = { State = "associated" } } }
    s.AssignIpv6AddressOnCreation = true
  end)
  each(data, "RouteTables", function(t)
    local v6 = {}
    for _, r in ipairs(t.Routes) do
      if r.DestinationCidrBlock then
        local twin = {}
        for k, v in pairs(r) do twin[k] = v end
        twin.DestinationCidrBlock, twin.DestinationIpv6CidrBlock = nil, dual.cidr(r.DestinationCidrBlock)
        v6[#v6 + 1] = twin
      end
    end
    for _, r in ipairs(v6) do t.Routes[#t.Routes + 1] = r end
  end)
  each(data, "NetworkAcls", function(n)
    local v6 = {}
    for _, e in ipairs(n.Entries) do
      if e.CidrBlock then
        local twin = {}
        for k, v in pairs(e) do twin[k] = v end
        twin.CidrBlock, twin.Ipv6CidrBlock, twin.RuleNumber = nil, dual.cidr(e.CidrBlock), e.RuleNumber + 1
        v6[#v6 + 1] = twin
      end
    end
    for _, e in ipairs(v6) do n.Entries[#n.Entries + 1] = e end
  end)
  each(data, "SecurityGroups", function(g)
    for _, perms in ipairs({ g.IpPermissions, g.IpPermissionsEgress }) do
      for _, p in ipairs(perms) do
        p.Ipv6Ranges = {}
        for _, r in ipairs(p.IpRanges or {}) do p.Ipv6Ranges[#p.Ipv6Ranges + 1] = { CidrIpv6 = dual.cidr(r.CidrIp) } end
      end
    end
  end)
  each(data, "NetworkInterfaces", function(n)
    n.Ipv6Addresses = { { Ipv6Address = dual.address(n.PrivateIpAddress), IsPrimaryIpv6 = false } }
  end)
  each(data, "TransitGatewayVpcAttachments", function(a) a.Options.Ipv6Support = "enable" end)
  each(data, "DBInstances", function(d) d.NetworkType = "DUAL" end)
  each(data, "Functions", function(f) f.VpcConfig.Ipv6AllowedForDualStack = true end)
  return data
end

return dual
