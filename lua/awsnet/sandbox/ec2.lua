--- EC2 in the sandbox: VPCs, subnets, route tables, security groups, network ACLs, ENIs, Transit
-- Gateways with their attachments and route tables, tags. Objects are stored in the sandbox state;
-- `render` turns them into the shapes of describe-* (PascalCase, as the AWS CLI prints them and
-- awsnet.reach reads them), which the EC2 XML writer also renders.
-- @module awsnet.sandbox.ec2
local errors = require "awsnet.errors"
local wire = require "awsnet.sandbox.wire"
local cidr = require "awsnet.sandbox.cidr"

local ec2 = { actions = {}, render = {} }

--- The handler of each API action: `actions.<Action>(ctx, params)` -> the result table, or nil,
-- err with AWS's error code and HTTP status. `ctx` = {sandbox, state, account, arn, user_id,
-- region, request_id}.
-- @table actions

--- The renderer of each kind of object: `render.<kind>(obj, ctx)` -> the describe-* shape
-- (eni, vpc, subnet, rtb, sg, acl, tgw, tgw_attachment, tgw_rt, tgw_route).
-- @table render

local A, R = ec2.actions, ec2.render
local array = wire.array

local function fail(code, message, status) return errors.fail(code, message, { status = status or 400 }) end

local function not_found(code, id)
  return fail(code, string.format("The %s '%s' does not exist", code:match("^Invalid(%a+)") or "resource", tostring(id)))
end

-- ---------------------------------------------------------------------------------------------
-- Parameters

--- The values of a list parameter by its member name (VpcIds), {} when absent.
local function list_param(p, name)
  local v = p[name]
  return type(v) == "table" and v or {}
end

local function bool_param(v)
  if v == nil then return nil end
  return v == "true" or v == true
end

local function need(p, ...) return wire.need(p, "MissingParameter", ...) end

--- Tags of TagSpecification.N for `resource_type`, as a key -> value map.
local function spec_tags(p, resource_type)
  local tags = {}
  for _, spec in ipairs(list_param(p, "TagSpecifications")) do
    if spec.ResourceType == nil or spec.ResourceType == resource_type then
      for _, t in ipairs(list_param(spec, "Tags")) do
        if t.Key then tags[t.Key] = t.Value or "" end
      end
    end
  end
  return tags
end

local function render_tags(tags)
  local out = {}
  for k, v in pairs(tags or {}) do out[#out + 1] = { Key = k, Value = v } end
  table.sort(out, function(a, b) return a.Key < b.Key end)
  return array(out)
end

-- ---------------------------------------------------------------------------------------------
-- Visibility and lookups

-- Which account may see a Transit Gateway: its owner, and accounts it is shared with (accepted).
local function tgw_shared_with(ctx, tgw)
  if tgw.owner == ctx.account then return true end
  local ram = require "awsnet.sandbox.ram"
  return ram.is_shared_with(ctx.state, tgw.arn, ctx.account)
end

local VISIBLE = {
  tgw = tgw_shared_with,
  tgw_attachment = function(ctx, att) return att.owner == ctx.account or att.tgw_owner == ctx.account end,
}

local function visible(ctx, kind, obj)
  local rule = VISIBLE[kind]
  if rule then return rule(ctx, obj) end
  return obj.owner == ctx.account
end

-- Applies a due state change. A deleted Transit Gateway stays listed as "deleted" for an hour,
-- as on AWS, and is then forgotten.
local function settle(ctx, kind, obj)
  local st = ctx.state:settle(obj)
  if st == "deleted" and kind == "tgw" and os.time() - (obj.deleted_at or 0) > 3600 then
    ctx.state:remove(kind, obj.id)
  end
  return st
end

local function lookup(ctx, kind, id, code)
  local obj = ctx.state:get(kind, id)
  if obj then settle(ctx, kind, obj) end
  if not obj or not visible(ctx, kind, obj) or (obj.state == "deleted" and kind ~= "tgw_attachment") then
    return not_found(code, id)
  end
  return obj
end

--- A create/accept/delete call answers with the state the change starts in (AWS's "pending"),
-- even when the sandbox's transition time is zero and a describe already sees the end state.
local function as_started(rendered, state)
  rendered.State = state
  return rendered
end

-- ---------------------------------------------------------------------------------------------
-- Describe: ids and filters (every answer is one page)

local function tag_filter_match(tags, name, values)
  local key = name:match("^tag:(.+)$")
  for _, v in ipairs(values) do
    if key and tags[key] ~= nil and (v == tags[key] or v == "*") then return true end
    if name == "tag-key" and tags[v] ~= nil then return true end
    if name == "tag-value" then for _, tv in pairs(tags) do if tv == v then return true end end end
  end
  return false
end

local function glob_match(pattern, value)
  local lua_pattern = "^" .. pattern:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".") .. "$"
  return tostring(value):match(lua_pattern) ~= nil
end

-- True when `obj` passes every filter. `fields(obj)` maps each supported filter name to a value, a
-- list of values, false (no value) or a function(filter value) -> bool. Unsupported name: nil, name.
local function filters_pass(filters, obj, fields)
  local f = fields(obj)
  for _, flt in ipairs(filters) do
    local name, values = flt.Name or "", list_param(flt, "Values")
    local have = f[name]
    if name:match("^tag:") or name == "tag-key" or name == "tag-value" then
      if not tag_filter_match(obj.tags or {}, name, values) then return false end
    elseif have == nil then
      return nil, name
    else
      local hit = false
      for _, v in ipairs(values) do
        if type(have) == "function" then
          hit = hit or have(v)
        else
          for _, hv in ipairs(type(have) == "table" and have or { have }) do hit = hit or glob_match(v, hv) end
        end
      end
      if not hit then return false end
    end
  end
  return true
end

--- The objects that pass the filters, or nil, err for a filter the sandbox does not know (rather
-- than an answer that silently ignores it).
local function apply_filters(filters, objs, fields)
  local out = {}
  for _, obj in ipairs(objs) do
    local pass, unknown = filters_pass(filters, obj, fields)
    if pass == nil then return fail("InvalidParameterValue", "The filter '" .. unknown .. "' is invalid") end
    if pass then out[#out + 1] = obj end
  end
  return out
end

--- The visible objects of `kind`, narrowed by the ids given (unknown id: `code`) and filters.
local function describe(ctx, kind, p, ids, code, fields)
  local found = {}
  if #ids > 0 then
    for _, id in ipairs(ids) do
      local obj, err = lookup(ctx, kind, id, code)
      if not obj then return nil, err end
      found[#found + 1] = obj
    end
  else
    for _, obj in ipairs(ctx.state:list(kind, function(o) return visible(ctx, kind, o) end)) do
      local st = settle(ctx, kind, obj)
      if st ~= "deleted" or kind == "tgw_attachment" or kind == "tgw" then found[#found + 1] = obj end
    end
  end
  return apply_filters(list_param(p, "Filters"), found, fields)
end

local function render_all(objs, render_fn, ctx)
  local out = {}
  for i, o in ipairs(objs) do out[i] = render_fn(o, ctx) end
  return array(out)
end

--- A Describe* action: the visible objects of `kind` narrowed by the id list parameter (the
-- member `id_param`) and filters, rendered under the output member `key`.
local function describer(kind, id_param, code, fields, render, key)
  return function(ctx, p)
    local objs, err = describe(ctx, kind, p, list_param(p, id_param), code, fields)
    if not objs then return nil, err end
    return { [key] = render_all(objs, render, ctx) }
  end
end

-- ---------------------------------------------------------------------------------------------
-- ENIs

local function subnet_free_ip(ctx, subnet)
  local used = {}
  for _, eni in ipairs(ctx.state:list("eni", function(e) return e.subnet == subnet.id end)) do used[eni.ip] = true end
  local base, size = cidr.range(subnet.cidr)
  -- AWS reserves the first four addresses and the last one of every subnet
  for offset = 4, size - 2 do
    local ip = cidr.ip_string(base + offset)
    if not used[ip] then return ip end
  end
end

--- Creates an ENI in `subnet` (used by TGW attachments, RDS and Lambda). Returns it, or nil, err.
-- @tparam table ctx the request context (state, account, ...)
-- @tparam table subnet the subnet object
-- @tparam table fields {groups, interface_type, description, requester_id, requester_managed,
-- attachment, public_ip}
-- @treturn table the ENI, or nil, err ("InsufficientFreeAddressesInSubnet")
function ec2.create_eni(ctx, subnet, fields)
  local ip = subnet_free_ip(ctx, subnet)
  if not ip then
    return fail("InsufficientFreeAddressesInSubnet", "There are not enough free addresses in subnet '" .. subnet.id .. "'")
  end
  local eni = {
    id = ctx.state:new_id("eni"), owner = subnet.owner, subnet = subnet.id, vpc = subnet.vpc, az_id = subnet.az_id,
    ip = ip, groups = fields.groups or {}, interface_type = fields.interface_type or "interface",
    description = fields.description or "", requester_id = fields.requester_id, requester_managed = fields.requester_managed,
    attachment = fields.attachment, status = "in-use", tags = {}, mac = "02:" .. ctx.state:hex(2) .. ":" ..
      ctx.state:hex(2) .. ":" .. ctx.state:hex(2) .. ":" .. ctx.state:hex(2) .. ":" .. ctx.state:hex(2),
    public_ip = fields.public_ip,
  }
  return ctx.state:put("eni", eni)
end

--- Removes an ENI from the state.
-- @tparam table ctx the request context
-- @tparam string id the ENI id
function ec2.delete_eni(ctx, id) ctx.state:remove("eni", id) end

function R.eni(e, ctx)
  local groups = {}
  for i, g in ipairs(e.groups) do
    local sg = ctx.state:get("sg", g)
    groups[i] = { GroupId = g, GroupName = sg and sg.name or g }
  end
  return {
    NetworkInterfaceId = e.id, OwnerId = e.owner, SubnetId = e.subnet, VpcId = e.vpc,
    AvailabilityZone = ctx.state:az_name(e.owner, e.az_id), PrivateIpAddress = e.ip,
    PrivateIpAddresses = array({ { PrivateIpAddress = e.ip, Primary = true,
      Association = e.public_ip and { PublicIp = e.public_ip } or nil } }),
    Groups = array(groups), InterfaceType = e.interface_type, Description = e.description,
    RequesterId = e.requester_id, RequesterManaged = e.requester_managed or false, Status = e.status,
    MacAddress = e.mac, SourceDestCheck = true, TagSet = render_tags(e.tags),
    Association = e.public_ip and { PublicIp = e.public_ip } or nil,
    Attachment = e.attachment and { Status = "attached", InstanceOwnerId = e.attachment } or nil,
  }
end

-- ---------------------------------------------------------------------------------------------
-- VPCs

-- A VPC's IPv4 CIDRs: the primary first, then those AssociateVpcCidrBlock added.
local function vpc_cidrs(v)
  local out = { v.cidr }
  for _, a in ipairs(v.secondary or {}) do out[#out + 1] = a.cidr end
  return out
end

function R.vpc(v, ctx)
  local set = { { AssociationId = v.cidr_assoc, CidrBlock = v.cidr, CidrBlockState = { State = "associated" } } }
  for _, a in ipairs(v.secondary or {}) do
    set[#set + 1] = { AssociationId = a.id, CidrBlock = a.cidr, CidrBlockState = { State = "associated" } }
  end
  return {
    VpcId = v.id, OwnerId = v.owner, CidrBlock = v.cidr, State = settle(ctx, "vpc", v), IsDefault = false,
    DhcpOptionsId = v.dhcp, InstanceTenancy = "default", Tags = render_tags(v.tags),
    CidrBlockAssociationSet = array(set),
  }
end

local function vpc_fields(v)
  return { ["vpc-id"] = v.id, ["cidr"] = v.cidr, ["cidr-block-association.cidr-block"] = vpc_cidrs(v),
           ["state"] = v.state, ["owner-id"] = v.owner, ["is-default"] = "false" }
end

local function new_route_table(ctx, vpc, main, tags)
  local routes = {}
  for _, c in ipairs(vpc_cidrs(vpc)) do
    routes[#routes + 1] = { cidr = c, target_kind = "gateway", target = "local", origin = "CreateRouteTable" }
  end
  return ctx.state:put("rtb", {
    id = ctx.state:new_id("rtb"), owner = ctx.account, vpc = vpc.id, tags = tags or {},
    routes = routes,
    associations = main and { { id = ctx.state:new_id("rtbassoc"), main = true } } or {},
  })
end

local function new_security_group(ctx, vpc, name, description, tags)
  local sg = ctx.state:put("sg", {
    id = ctx.state:new_id("sg"), owner = ctx.account, vpc = vpc.id, name = name, description = description,
    tags = tags or {}, ingress = {}, egress = {},
  })
  sg.egress[1] = { proto = "-1", cidr = "0.0.0.0/0", rule_id = ctx.state:new_id("sgr") }
  return sg
end

local function new_network_acl(ctx, vpc, default, tags)
  local entries = {}
  if default then
    for _, egress in ipairs({ false, true }) do
      entries[#entries + 1] = { number = 100, proto = "-1", action = "allow", egress = egress, cidr = "0.0.0.0/0" }
    end
  end
  for _, egress in ipairs({ false, true }) do
    entries[#entries + 1] = { number = 32767, proto = "-1", action = "deny", egress = egress, cidr = "0.0.0.0/0" }
  end
  return ctx.state:put("acl", {
    id = ctx.state:new_id("acl"), owner = ctx.account, vpc = vpc.id, default = default, tags = tags or {},
    entries = entries, associations = {},
  })
end

function A.CreateVpc(ctx, p)
  local ok, err = need(p, "CidrBlock")
  if not ok then return nil, err end
  local prefix = cidr.prefix_len(p.CidrBlock)
  if not prefix or prefix < 16 or prefix > 28 then
    return fail("InvalidVpc.Range", "The CIDR '" .. p.CidrBlock .. "' is invalid.")
  end
  local st = ctx.state
  local vpc = st:put("vpc", {
    id = st:new_id("vpc"), owner = ctx.account, cidr = cidr.normalize(p.CidrBlock), tags = spec_tags(p, "vpc"),
    dns_support = true, dns_hostnames = false, dhcp = st:new_id("dopt"), cidr_assoc = st:new_id("vpc-cidr-assoc"),
  })
  st:transition(vpc, "pending", "available")
  vpc.main_rtb = new_route_table(ctx, vpc, true).id
  vpc.default_sg = new_security_group(ctx, vpc, "default", "default VPC security group").id
  local default_sg = st:get("sg", vpc.default_sg)
  default_sg.ingress[1] = { proto = "-1", group = default_sg.id, group_owner = ctx.account, rule_id = st:new_id("sgr") }
  vpc.default_acl = new_network_acl(ctx, vpc, true).id
  return { Vpc = as_started(R.vpc(vpc, ctx), "pending") }
end

A.DescribeVpcs = describer("vpc", "VpcIds", "InvalidVpcID.NotFound", vpc_fields, R.vpc, "Vpcs")

local function vpc_dependents(ctx, vpc)
  local function in_vpc(o) return o.vpc == vpc.id end
  if #ctx.state:list("subnet", in_vpc) > 0 then return "subnets" end
  for _, att in ipairs(ctx.state:list("tgw_attachment", in_vpc)) do
    local s = ctx.state:settle(att)
    if s ~= "deleted" and s ~= "rejected" and s ~= "failed" then return "Transit Gateway attachments" end
  end
  for _, sg in ipairs(ctx.state:list("sg", in_vpc)) do
    if sg.id ~= vpc.default_sg then return "security groups" end
  end
  for _, rt in ipairs(ctx.state:list("rtb", in_vpc)) do
    if rt.id ~= vpc.main_rtb then return "route tables" end
  end
  for _, acl in ipairs(ctx.state:list("acl", in_vpc)) do
    if acl.id ~= vpc.default_acl then return "network ACLs" end
  end
end

function A.DeleteVpc(ctx, p)
  local vpc, err = lookup(ctx, "vpc", p.VpcId, "InvalidVpcID.NotFound")
  if not vpc then return nil, err end
  if vpc.owner ~= ctx.account then
    return fail("UnauthorizedOperation", "You are not authorized to perform this operation.", 403)
  end
  local what = vpc_dependents(ctx, vpc)
  if what then
    return fail("DependencyViolation", "The vpc '" .. vpc.id .. "' has dependencies (" .. what .. ") and cannot be deleted.")
  end
  ctx.state:remove("rtb", vpc.main_rtb)
  ctx.state:remove("sg", vpc.default_sg)
  ctx.state:remove("acl", vpc.default_acl)
  ctx.state:remove("vpc", vpc.id)
  return { Return = true }
end

-- A secondary IPv4 CIDR (vpc-cidr-blocks.html): /16 to /28, overlapping none of the VPC's; every
-- route table of the VPC gets its local route. AWS's further restrictions on which ranges may be
-- added (by the primary's RFC 1918 range) are not checked.
function A.AssociateVpcCidrBlock(ctx, p)
  local ok, err = need(p, "VpcId", "CidrBlock")
  if not ok then return nil, err end
  local vpc
  vpc, err = lookup(ctx, "vpc", p.VpcId, "InvalidVpcID.NotFound")
  if not vpc then return nil, err end
  local prefix = cidr.prefix_len(p.CidrBlock)
  if not prefix or prefix < 16 or prefix > 28 then
    return fail("InvalidVpc.Range", "The CIDR '" .. p.CidrBlock .. "' is invalid.")
  end
  local block = cidr.normalize(p.CidrBlock)
  for _, c in ipairs(vpc_cidrs(vpc)) do
    if cidr.overlaps(c, block) then
      return fail("InvalidVpc.Range", "The CIDR '" .. block .. "' conflicts with another CIDR of the VPC.")
    end
  end
  if #vpc_cidrs(vpc) >= 5 then
    return fail("CidrLimitExceeded", "The maximum number of CIDR blocks for the VPC has been reached.")
  end
  local assoc = { id = ctx.state:new_id("vpc-cidr-assoc"), cidr = block }
  vpc.secondary = vpc.secondary or {}
  vpc.secondary[#vpc.secondary + 1] = assoc
  for _, rt in ipairs(ctx.state:list("rtb", function(r) return r.vpc == vpc.id end)) do
    rt.routes[#rt.routes + 1] = { cidr = block, target_kind = "gateway", target = "local", origin = "CreateRouteTable" }
  end
  return { VpcId = vpc.id, CidrBlockAssociation = { AssociationId = assoc.id, CidrBlock = block,
    CidrBlockState = { State = "associating" } } }
end

function A.DisassociateVpcCidrBlock(ctx, p)
  local ok, err = need(p, "AssociationId")
  if not ok then return nil, err end
  for _, vpc in ipairs(ctx.state:list("vpc", function(v) return v.owner == ctx.account end)) do
    for i, a in ipairs(vpc.secondary or {}) do
      if a.id == p.AssociationId then
        for _, s in ipairs(ctx.state:list("subnet", function(x) return x.vpc == vpc.id end)) do
          if cidr.overlaps(s.cidr, a.cidr) then
            return fail("InvalidCidrBlock.InUse", "The vpc " .. vpc.id .. " currently has a subnet within CIDR block " ..
              a.cidr)
          end
        end
        table.remove(vpc.secondary, i)
        for _, rt in ipairs(ctx.state:list("rtb", function(r) return r.vpc == vpc.id end)) do
          for j = #rt.routes, 1, -1 do
            if rt.routes[j].cidr == a.cidr and rt.routes[j].target == "local" then table.remove(rt.routes, j) end
          end
        end
        return { VpcId = vpc.id, CidrBlockAssociation = { AssociationId = a.id, CidrBlock = a.cidr,
          CidrBlockState = { State = "disassociating" } } }
      end
    end
  end
  return fail("InvalidVpcCidrBlockAssociationID.NotFound", "The vpc CIDR block association ID '" ..
    tostring(p.AssociationId) .. "' does not exist")
end

function A.DescribeVpcAttribute(ctx, p)
  local vpc, err = lookup(ctx, "vpc", p.VpcId, "InvalidVpcID.NotFound")
  if not vpc then return nil, err end
  if p.Attribute == "enableDnsSupport" then
    return { VpcId = vpc.id, EnableDnsSupport = { Value = vpc.dns_support } }
  elseif p.Attribute == "enableDnsHostnames" then
    return { VpcId = vpc.id, EnableDnsHostnames = { Value = vpc.dns_hostnames } }
  end
  return fail("InvalidParameterValue", "Value (" .. tostring(p.Attribute) .. ") for parameter attribute is invalid.")
end

function A.ModifyVpcAttribute(ctx, p)
  local vpc, err = lookup(ctx, "vpc", p.VpcId, "InvalidVpcID.NotFound")
  if not vpc then return nil, err end
  local support = p.EnableDnsSupport and bool_param(p.EnableDnsSupport.Value)
  local hostnames = p.EnableDnsHostnames and bool_param(p.EnableDnsHostnames.Value)
  if (support == nil) == (hostnames == nil) then
    return fail("InvalidParameterCombination", "Exactly one attribute may be modified per request.")
  end
  if support ~= nil then vpc.dns_support = support end
  if hostnames ~= nil then
    if hostnames and not vpc.dns_support then
      return fail("InvalidParameterValue", "DNS hostnames cannot be enabled without DNS support.")
    end
    vpc.dns_hostnames = hostnames
  end
  return { Return = true }
end

-- ---------------------------------------------------------------------------------------------
-- Subnets

local function subnet_rtb(ctx, subnet)
  for _, rt in ipairs(ctx.state:list("rtb", function(r) return r.vpc == subnet.vpc end)) do
    for _, a in ipairs(rt.associations) do if a.subnet == subnet.id then return rt, a end end
  end
  local vpc = ctx.state:get("vpc", subnet.vpc)
  return ctx.state:get("rtb", vpc.main_rtb), nil
end

function R.subnet(s, ctx)
  local _, size = cidr.range(s.cidr)
  local used = #ctx.state:list("eni", function(e) return e.subnet == s.id end)
  return {
    SubnetId = s.id, VpcId = s.vpc, OwnerId = s.owner, CidrBlock = s.cidr, State = settle(ctx, "subnet", s),
    AvailabilityZone = ctx.state:az_name(s.owner, s.az_id), AvailabilityZoneId = s.az_id,
    AvailableIpAddressCount = size - 5 - used, DefaultForAz = false, MapPublicIpOnLaunch = false,
    SubnetArn = string.format("arn:aws:ec2:%s:%s:subnet/%s", ctx.region, s.owner, s.id),
    Tags = render_tags(s.tags),
  }
end

local function subnet_fields(s)
  return { ["subnet-id"] = s.id, ["vpc-id"] = s.vpc, ["cidr-block"] = s.cidr, ["state"] = s.state,
           ["availability-zone-id"] = s.az_id, ["owner-id"] = s.owner }
end

function A.CreateSubnet(ctx, p)
  local ok, err = need(p, "VpcId", "CidrBlock")
  if not ok then return nil, err end
  local vpc
  vpc, err = lookup(ctx, "vpc", p.VpcId, "InvalidVpcID.NotFound")
  if not vpc then return nil, err end
  local prefix = cidr.prefix_len(p.CidrBlock)
  local inside = false
  for _, c in ipairs(vpc_cidrs(vpc)) do inside = inside or (prefix ~= nil and cidr.contains(c, p.CidrBlock)) end
  if not prefix or prefix < 16 or prefix > 28 or not inside then
    return fail("InvalidSubnet.Range", "The CIDR '" .. p.CidrBlock .. "' is invalid.")
  end
  for _, other in ipairs(ctx.state:list("subnet", function(s) return s.vpc == vpc.id end)) do
    if cidr.overlaps(other.cidr, p.CidrBlock) then
      return fail("InvalidSubnet.Conflict", "The CIDR '" .. p.CidrBlock .. "' conflicts with another subnet")
    end
  end
  local zones = ctx.state:zones(ctx.account)
  local az_id
  if p.AvailabilityZoneId then
    for _, z in ipairs(zones) do if z.id == p.AvailabilityZoneId then az_id = z.id end end
  elseif p.AvailabilityZone then
    az_id = ctx.state:az_id_of(ctx.account, p.AvailabilityZone)
  else
    az_id = zones[1].id
  end
  if not az_id then
    return fail("InvalidParameterValue", "Value (" .. tostring(p.AvailabilityZone or p.AvailabilityZoneId) ..
      ") for parameter availabilityZone is invalid. Subnets can currently only be created in the following " ..
      "availability zones.")
  end
  local subnet = ctx.state:put("subnet", {
    id = ctx.state:new_id("subnet"), owner = ctx.account, vpc = vpc.id, cidr = cidr.normalize(p.CidrBlock),
    az_id = az_id, tags = spec_tags(p, "subnet"),
  })
  ctx.state:transition(subnet, "pending", "available")
  local acl = ctx.state:get("acl", vpc.default_acl)
  acl.associations[#acl.associations + 1] = { id = ctx.state:new_id("aclassoc"), subnet = subnet.id }
  return { Subnet = as_started(R.subnet(subnet, ctx), "pending") }
end

A.DescribeSubnets = describer("subnet", "SubnetIds", "InvalidSubnetID.NotFound", subnet_fields, R.subnet,
  "Subnets")

function A.DeleteSubnet(ctx, p)
  local subnet, err = lookup(ctx, "subnet", p.SubnetId, "InvalidSubnetID.NotFound")
  if not subnet then return nil, err end
  if #ctx.state:list("eni", function(e) return e.subnet == subnet.id end) > 0 then
    return fail("DependencyViolation", "The subnet '" .. subnet.id .. "' has dependencies and cannot be deleted.")
  end
  for _, rt in ipairs(ctx.state:list("rtb", function(r) return r.vpc == subnet.vpc end)) do
    for i = #rt.associations, 1, -1 do if rt.associations[i].subnet == subnet.id then table.remove(rt.associations, i) end end
  end
  for _, acl in ipairs(ctx.state:list("acl", function(a) return a.vpc == subnet.vpc end)) do
    for i = #acl.associations, 1, -1 do if acl.associations[i].subnet == subnet.id then table.remove(acl.associations, i) end end
  end
  ctx.state:remove("subnet", subnet.id)
  return {}
end

-- ---------------------------------------------------------------------------------------------
-- Route tables

local function route_state(ctx, route)
  if route.target_kind == "tgw" then
    local tgw = ctx.state:get("tgw", route.target)
    if not tgw or ctx.state:settle(tgw) ~= "available" then return "blackhole" end
  end
  return "active"
end

local function render_route(ctx, r)
  local out = { DestinationCidrBlock = r.cidr, Origin = r.origin, State = route_state(ctx, r) }
  if r.target_kind == "tgw" then out.TransitGatewayId = r.target
  elseif r.target_kind == "gateway" then out.GatewayId = r.target
  elseif r.target_kind == "eni" then out.NetworkInterfaceId = r.target
  elseif r.target_kind == "pcx" then out.VpcPeeringConnectionId = r.target
  elseif r.target_kind == "nat" then out.NatGatewayId = r.target end
  return out
end

function R.rtb(rt, ctx)
  local routes, assocs = {}, {}
  for i, r in ipairs(rt.routes) do routes[i] = render_route(ctx, r) end
  for i, a in ipairs(rt.associations) do
    assocs[i] = { RouteTableAssociationId = a.id, RouteTableId = rt.id, Main = a.main or false, SubnetId = a.subnet,
                  AssociationState = { State = "associated" } }
  end
  return {
    RouteTableId = rt.id, VpcId = rt.vpc, OwnerId = rt.owner, Tags = render_tags(rt.tags),
    Routes = array(routes), Associations = array(assocs),
    PropagatingVgws = array({}),
  }
end

local function rtb_fields(rt)
  local subnets, assoc_ids, main = {}, {}, "false"
  for _, a in ipairs(rt.associations) do
    if a.subnet then subnets[#subnets + 1] = a.subnet end
    assoc_ids[#assoc_ids + 1] = a.id
    if a.main then main = "true" end
  end
  local tgws = {}
  for _, r in ipairs(rt.routes) do if r.target_kind == "tgw" then tgws[#tgws + 1] = r.target end end
  return { ["route-table-id"] = rt.id, ["vpc-id"] = rt.vpc, ["association.subnet-id"] = subnets,
           ["association.route-table-association-id"] = assoc_ids, ["association.main"] = main,
           ["route.transit-gateway-id"] = tgws, ["owner-id"] = rt.owner }
end

function A.CreateRouteTable(ctx, p)
  local vpc, err = lookup(ctx, "vpc", p.VpcId, "InvalidVpcID.NotFound")
  if not vpc then return nil, err end
  return { RouteTable = R.rtb(new_route_table(ctx, vpc, false, spec_tags(p, "route-table")), ctx) }
end

A.DescribeRouteTables = describer("rtb", "RouteTableIds", "InvalidRouteTableID.NotFound", rtb_fields,
  R.rtb, "RouteTables")

function A.DeleteRouteTable(ctx, p)
  local rt, err = lookup(ctx, "rtb", p.RouteTableId, "InvalidRouteTableID.NotFound")
  if not rt then return nil, err end
  if #rt.associations > 0 then
    return fail("DependencyViolation", "The routeTable '" .. rt.id .. "' has dependencies and cannot be deleted.")
  end
  ctx.state:remove("rtb", rt.id)
  return {}
end

function A.AssociateRouteTable(ctx, p)
  local rt, err = lookup(ctx, "rtb", p.RouteTableId, "InvalidRouteTableID.NotFound")
  if not rt then return nil, err end
  local subnet
  subnet, err = lookup(ctx, "subnet", p.SubnetId, "InvalidSubnetID.NotFound")
  if not subnet then return nil, err end
  if subnet.vpc ~= rt.vpc then
    return fail("InvalidParameterValue",
      "route table " .. rt.id .. " and subnet " .. subnet.id .. " belong to different networks")
  end
  local _, current = subnet_rtb(ctx, subnet)
  if current then
    return fail("Resource.AlreadyAssociated",
      "the specified association for route table " .. rt.id .. " conflicts with an existing association")
  end
  local assoc = { id = ctx.state:new_id("rtbassoc"), subnet = subnet.id }
  rt.associations[#rt.associations + 1] = assoc
  return { AssociationId = assoc.id, AssociationState = { State = "associated" } }
end

local function find_rtb_association(ctx, assoc_id)
  for _, rt in ipairs(ctx.state:list("rtb", function(r) return r.owner == ctx.account end)) do
    for i, a in ipairs(rt.associations) do if a.id == assoc_id then return rt, i, a end end
  end
end

function A.DisassociateRouteTable(ctx, p)
  local rt, i, assoc = find_rtb_association(ctx, p.AssociationId)
  if not rt then return not_found("InvalidAssociationID.NotFound", p.AssociationId) end
  if assoc.main then return fail("InvalidParameterValue", "cannot disassociate the main route table association " .. assoc.id) end
  table.remove(rt.associations, i)
  return {}
end

-- The target of a CreateRoute/ReplaceRoute call, checked: kind, id; or nil, err.
local function route_target(ctx, rt, p)
  if p.TransitGatewayId then
    local tgw, err = lookup(ctx, "tgw", p.TransitGatewayId, "InvalidTransitGatewayID.NotFound")
    if not tgw then return nil, err end
    local attached = false
    for _, att in ipairs(ctx.state:list("tgw_attachment", function(a) return a.vpc == rt.vpc and a.tgw == tgw.id end)) do
      local s = ctx.state:settle(att)
      if s ~= "deleted" and s ~= "deleting" and s ~= "rejected" and s ~= "failed" then attached = true end
    end
    if not attached then
      return fail("InvalidTransitGatewayID.NotFound",
        "The transitGateway ID '" .. tgw.id .. "' does not exist in the VPC " .. rt.vpc)
    end
    return "tgw", tgw.id
  end
  if p.GatewayId then
    if p.GatewayId == "local" then return fail("InvalidParameterValue", "cannot create a route to 'local'") end
    return not_found("InvalidGatewayID.NotFound", p.GatewayId)
  end
  if p.NetworkInterfaceId then
    local eni, err = lookup(ctx, "eni", p.NetworkInterfaceId, "InvalidNetworkInterfaceID.NotFound")
    if not eni then return nil, err end
    return "eni", eni.id
  end
  if p.VpcPeeringConnectionId then return not_found("InvalidVpcPeeringConnectionID.NotFound", p.VpcPeeringConnectionId) end
  if p.NatGatewayId then return not_found("InvalidNatGatewayID.NotFound", p.NatGatewayId) end
  return fail("MissingParameter", "The request must contain exactly one route target")
end

local function find_route(rt, dest)
  for i, r in ipairs(rt.routes) do if r.cidr == dest then return r, i end end
end

local function change_route(ctx, p, replace)
  local ok, err = need(p, "RouteTableId", "DestinationCidrBlock")
  if not ok then return nil, err end
  local rt
  rt, err = lookup(ctx, "rtb", p.RouteTableId, "InvalidRouteTableID.NotFound")
  if not rt then return nil, err end
  local dest = cidr.normalize(p.DestinationCidrBlock)
  if not dest then
    return fail("InvalidParameterValue",
      "Value (" .. p.DestinationCidrBlock .. ") for parameter destinationCidrBlock is invalid.")
  end
  local kind, target = route_target(ctx, rt, p)
  if not kind then return nil, target end
  local existing = find_route(rt, dest)
  if existing and existing.target == "local" then
    return fail("InvalidParameterValue", "The route identified by " .. dest .. " is the local route and cannot be changed.")
  end
  if replace then
    if not existing then return not_found("InvalidRoute.NotFound", dest) end
    existing.target_kind, existing.target = kind, target
  else
    if existing then
      if existing.target == target then return { Return = true } end
      return fail("RouteAlreadyExists", "The route identified by " .. dest .. " already exists.")
    end
    rt.routes[#rt.routes + 1] = { cidr = dest, target_kind = kind, target = target, origin = "CreateRoute" }
  end
  return { Return = true }
end

function A.CreateRoute(ctx, p) return change_route(ctx, p, false) end
function A.ReplaceRoute(ctx, p) return change_route(ctx, p, true) end

function A.DeleteRoute(ctx, p)
  local rt, err = lookup(ctx, "rtb", p.RouteTableId, "InvalidRouteTableID.NotFound")
  if not rt then return nil, err end
  local dest = cidr.normalize(p.DestinationCidrBlock or "")
  local route, i = find_route(rt, dest)
  if not route then return not_found("InvalidRoute.NotFound", p.DestinationCidrBlock) end
  if route.target == "local" then
    return fail("InvalidParameterValue", "cannot remove local route " .. dest .. " in route table " .. rt.id)
  end
  table.remove(rt.routes, i)
  return {}
end

-- ---------------------------------------------------------------------------------------------
-- Security groups

local function render_rule(r)
  local perm = { IpProtocol = r.proto, IpRanges = array({}),
                 Ipv6Ranges = array({}), PrefixListIds = array({}),
                 UserIdGroupPairs = array({}) }
  if r.proto ~= "-1" then perm.FromPort, perm.ToPort = r.from, r.to end
  if r.cidr then perm.IpRanges[1] = { CidrIp = r.cidr, Description = r.desc } end
  if r.group then perm.UserIdGroupPairs[1] = { GroupId = r.group, UserId = r.group_owner, Description = r.desc } end
  if r.prefix_list then perm.PrefixListIds[1] = { PrefixListId = r.prefix_list, Description = r.desc } end
  return perm
end

function R.sg(sg)
  local ingress, egress = {}, {}
  for i, r in ipairs(sg.ingress) do ingress[i] = render_rule(r) end
  for i, r in ipairs(sg.egress) do egress[i] = render_rule(r) end
  return {
    GroupId = sg.id, GroupName = sg.name, Description = sg.description, VpcId = sg.vpc, OwnerId = sg.owner,
    IpPermissions = array(ingress), IpPermissionsEgress = array(egress),
    Tags = render_tags(sg.tags),
  }
end

local function sg_fields(sg)
  return { ["group-id"] = sg.id, ["group-name"] = sg.name, ["vpc-id"] = sg.vpc, ["owner-id"] = sg.owner,
           ["description"] = sg.description }
end

function A.CreateSecurityGroup(ctx, p)
  local ok, err = need(p, "GroupName", "Description")
  if not ok then return nil, err end
  local vpc
  vpc, err = lookup(ctx, "vpc", p.VpcId, "InvalidVpcID.NotFound")
  if not vpc then return nil, err end
  if p.GroupName == "default" or #ctx.state:list("sg", function(s) return s.vpc == vpc.id and s.name == p.GroupName end) > 0 then
    return fail("InvalidGroup.Duplicate", "The security group '" .. p.GroupName .. "' already exists for VPC '" .. vpc.id .. "'")
  end
  local sg = new_security_group(ctx, vpc, p.GroupName, p.Description, spec_tags(p, "security-group"))
  return { GroupId = sg.id, Tags = render_tags(sg.tags) }
end

function A.DescribeSecurityGroups(ctx, p)
  local ids = list_param(p, "GroupIds")
  local sgs, err = describe(ctx, "sg", p, ids, "InvalidGroup.NotFound", sg_fields)
  if not sgs then return nil, err end
  local names = list_param(p, "GroupNames")
  if #names > 0 then
    local keep = {}
    for _, n in ipairs(names) do
      local found = false
      for _, sg in ipairs(sgs) do if sg.name == n then keep[#keep + 1] = sg; found = true end end
      if not found then return fail("InvalidGroup.NotFound", "The security group '" .. n .. "' does not exist") end
    end
    sgs = keep
  end
  return { SecurityGroups = render_all(sgs, R.sg, ctx) }
end

local function sg_in_use(ctx, sg)
  for _, eni in ipairs(ctx.state:list("eni")) do
    for _, g in ipairs(eni.groups) do if g == sg.id then return "network interface " .. eni.id end end
  end
  for _, other in ipairs(ctx.state:list("sg")) do
    if other.id ~= sg.id then
      for _, list in ipairs({ other.ingress, other.egress }) do
        for _, r in ipairs(list) do if r.group == sg.id then return "group " .. other.id end end
      end
    end
  end
end

function A.DeleteSecurityGroup(ctx, p)
  local sg, err = lookup(ctx, "sg", p.GroupId, "InvalidGroup.NotFound")
  if not sg then return nil, err end
  if sg.name == "default" then
    return fail("CannotDelete", "the specified group: \"" .. sg.id .. "\" name: \"default\" cannot be deleted by a user")
  end
  local user = sg_in_use(ctx, sg)
  if user then return fail("DependencyViolation", "resource " .. sg.id .. " has a dependent object (" .. user .. ")") end
  ctx.state:remove("sg", sg.id)
  return { Return = true }
end

-- The rules an Authorize/Revoke call names, flattened to one source each.
local function rules_of(ctx, p)
  local perms = list_param(p, "IpPermissions")
  if #perms == 0 and p.IpProtocol then
    perms = { { IpProtocol = p.IpProtocol, FromPort = p.FromPort, ToPort = p.ToPort,
                IpRanges = p.CidrIp and { { CidrIp = p.CidrIp } } or nil,
                Groups = p.SourceSecurityGroupName and { { GroupName = p.SourceSecurityGroupName } } or nil } }
  end
  if #perms == 0 then return fail("MissingParameter", "No IP permissions given") end
  local rules = {}
  for _, perm in ipairs(perms) do
    local proto = perm.IpProtocol
    local numbers = { tcp = "tcp", udp = "udp", icmp = "icmp", ["6"] = "tcp", ["17"] = "udp", ["1"] = "icmp",
                      ["-1"] = "-1", all = "-1" }
    proto = numbers[tostring(proto or ""):lower()] or proto
    if not proto or not (proto == "-1" or tostring(proto):match("^%d+$") or numbers[proto]) then
      return fail("InvalidPermission.Malformed", "Invalid IP protocol: " .. tostring(perm.IpProtocol))
    end
    local from, to = tonumber(perm.FromPort), tonumber(perm.ToPort)
    if proto == "tcp" or proto == "udp" then
      if not from or not to or from < 0 or to > 65535 or from > to then
        return fail("InvalidParameterValue", "Invalid port range: " .. tostring(perm.FromPort) .. "-" .. tostring(perm.ToPort))
      end
    end
    if proto == "-1" then from, to = nil, nil end
    local base = { proto = proto, from = math.tointeger(from), to = math.tointeger(to) }
    local function add(extra)
      local r = {}
      for k, v in pairs(base) do r[k] = v end
      for k, v in pairs(extra) do r[k] = v end
      rules[#rules + 1] = r
    end
    for _, range in ipairs(list_param(perm, "IpRanges")) do
      local c = cidr.normalize(range.CidrIp or "")
      if not c then return fail("InvalidParameterValue", "CIDR block " .. tostring(range.CidrIp) .. " is malformed") end
      add { cidr = c, desc = range.Description }
    end
    for _, pair in ipairs(list_param(perm, "UserIdGroupPairs")) do
      local gid = pair.GroupId
      if not gid and pair.GroupName then
        local function named(s) return s.owner == ctx.account and s.name == pair.GroupName end
        for _, sg in ipairs(ctx.state:list("sg", named)) do gid = sg.id end
      end
      local ref = gid and ctx.state:get("sg", gid)
      if not ref then
        return fail("InvalidGroup.NotFound", "The security group '" .. tostring(gid or pair.GroupName) .. "' does not exist")
      end
      add { group = ref.id, group_owner = ref.owner, desc = pair.Description }
    end
    for _, pl in ipairs(list_param(perm, "PrefixListIds")) do add { prefix_list = pl.PrefixListId, desc = pl.Description } end
  end
  return rules
end

local function same_rule(a, b)
  return a.proto == b.proto and a.from == b.from and a.to == b.to and a.cidr == b.cidr and a.group == b.group
     and a.prefix_list == b.prefix_list
end

local function change_rules(ctx, p, direction, add)
  local sg, err = lookup(ctx, "sg", p.GroupId, "InvalidGroup.NotFound")
  if not sg then return nil, err end
  local rules
  rules, err = rules_of(ctx, p)
  if not rules then return nil, err end
  local list = sg[direction]
  if add then
    for _, r in ipairs(rules) do
      for _, have in ipairs(list) do
        if same_rule(have, r) then
          return fail("InvalidPermission.Duplicate", "the specified rule \"peer: " .. (r.cidr or r.group or r.prefix_list) ..
            ", " .. r.proto .. ", ALLOW\" already exists")
        end
      end
    end
    local out = {}
    for _, r in ipairs(rules) do
      r.rule_id = ctx.state:new_id("sgr")
      list[#list + 1] = r
      out[#out + 1] = { SecurityGroupRuleId = r.rule_id, GroupId = sg.id, GroupOwnerId = sg.owner,
                        IsEgress = direction == "egress", IpProtocol = r.proto, FromPort = r.from or -1,
                        ToPort = r.to or -1, CidrIpv4 = r.cidr }
    end
    return { Return = true, SecurityGroupRules = array(out) }
  end
  local unknown = {}
  for _, r in ipairs(rules) do
    local found = false
    for i = #list, 1, -1 do if same_rule(list[i], r) then table.remove(list, i); found = true end end
    if not found then unknown[#unknown + 1] = render_rule(r) end
  end
  if #unknown == #rules then
    return fail("InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
  end
  return { Return = true, UnknownIpPermissions = array(unknown) }
end

function A.AuthorizeSecurityGroupIngress(ctx, p) return change_rules(ctx, p, "ingress", true) end
function A.AuthorizeSecurityGroupEgress(ctx, p) return change_rules(ctx, p, "egress", true) end
function A.RevokeSecurityGroupIngress(ctx, p) return change_rules(ctx, p, "ingress", false) end
function A.RevokeSecurityGroupEgress(ctx, p) return change_rules(ctx, p, "egress", false) end

-- ---------------------------------------------------------------------------------------------
-- Network ACLs

function R.acl(acl)
  local entries, assocs = {}, {}
  for i, e in ipairs(acl.entries) do
    entries[i] = { RuleNumber = e.number, Protocol = e.proto, RuleAction = e.action, Egress = e.egress,
                   CidrBlock = e.cidr, PortRange = e.from and { From = e.from, To = e.to } or nil,
                   IcmpTypeCode = e.icmp_type and { Type = e.icmp_type, Code = e.icmp_code } or nil }
  end
  for i, a in ipairs(acl.associations) do
    assocs[i] = { NetworkAclAssociationId = a.id, NetworkAclId = acl.id, SubnetId = a.subnet }
  end
  -- AWS's wire name for NetworkAcl.IsDefault is <default> (the model's locationName)
  return {
    NetworkAclId = acl.id, VpcId = acl.vpc, OwnerId = acl.owner, IsDefault = acl.default or false,
    Entries = array(entries), Associations = array(assocs),
    Tags = render_tags(acl.tags),
  }
end

local function acl_fields(acl)
  local subnets = {}
  for _, a in ipairs(acl.associations) do subnets[#subnets + 1] = a.subnet end
  return { ["network-acl-id"] = acl.id, ["vpc-id"] = acl.vpc, ["default"] = tostring(acl.default or false),
           ["association.subnet-id"] = subnets, ["owner-id"] = acl.owner }
end

function A.CreateNetworkAcl(ctx, p)
  local vpc, err = lookup(ctx, "vpc", p.VpcId, "InvalidVpcID.NotFound")
  if not vpc then return nil, err end
  return { NetworkAcl = R.acl(new_network_acl(ctx, vpc, false, spec_tags(p, "network-acl"))) }
end

A.DescribeNetworkAcls = describer("acl", "NetworkAclIds", "InvalidNetworkAclID.NotFound", acl_fields,
  R.acl, "NetworkAcls")

function A.DeleteNetworkAcl(ctx, p)
  local acl, err = lookup(ctx, "acl", p.NetworkAclId, "InvalidNetworkAclID.NotFound")
  if not acl then return nil, err end
  if acl.default then return fail("InvalidParameterValue", "cannot delete default network ACL " .. acl.id) end
  if #acl.associations > 0 then
    return fail("DependencyViolation", "The networkAcl '" .. acl.id .. "' has dependencies and cannot be deleted.")
  end
  ctx.state:remove("acl", acl.id)
  return {}
end

local function acl_entry(acl, number, egress)
  for i, e in ipairs(acl.entries) do if e.number == number and e.egress == egress then return e, i end end
end

-- Protocol names the API takes besides numbers (the CLI's examples pass "udp"); stored as numbers,
-- as describe-network-acls prints them.
local ACL_PROTOCOLS = { tcp = "6", udp = "17", icmp = "1", icmpv6 = "58", all = "-1" }

-- An integer parameter within lo..hi, or nil.
local function int_in(v, lo, hi)
  local n = math.tointeger(tonumber(v))
  return n and n >= lo and n <= hi and n or nil
end

-- The entry a Create/ReplaceNetworkAclEntry describes, checked as the API reference states
-- (CreateNetworkAclEntry): RuleAction allow or deny, a protocol number -1..255, a port range
-- required for TCP (6) and UDP (17), an ICMP type and code required for ICMP (1); ports and
-- types of other protocols are not kept (they match all traffic of the protocol).
local function acl_entry_of(p)
  local number = int_in(p.RuleNumber, 1, 32766)
  if not number then return fail("InvalidParameterValue", "Invalid rule number " .. tostring(p.RuleNumber)) end
  if p.RuleAction ~= "allow" and p.RuleAction ~= "deny" then
    return fail("InvalidParameterValue", "Invalid value '" .. tostring(p.RuleAction) .. "' for ruleAction: allow or deny")
  end
  local proto = ACL_PROTOCOLS[tostring(p.Protocol):lower()] or tostring(p.Protocol)
  local pn = proto:match("^%-?%d+$") and int_in(proto, -1, 255)
  if not pn then return fail("InvalidParameterValue", "Invalid value '" .. tostring(p.Protocol) .. "' for protocol") end
  if p.CidrBlock == nil and p.Ipv6CidrBlock ~= nil then
    return fail("InvalidParameterValue", "IPv6 network ACL entries are not supported by the sandbox (its VPCs are IPv4)")
  end
  if p.CidrBlock == nil then return fail("MissingParameter", "The request must contain the parameter cidrBlock") end
  local c = cidr.normalize(p.CidrBlock)
  if not c then return fail("InvalidParameterValue", "Invalid CIDR block " .. tostring(p.CidrBlock)) end
  local entry = { number = number, proto = tostring(pn), action = p.RuleAction, egress = bool_param(p.Egress) or false,
    cidr = c }
  if pn == 6 or pn == 17 then
    local range = type(p.PortRange) == "table" and p.PortRange or {}
    if range.From == nil or range.To == nil then
      return fail("MissingParameter", "The request must contain the parameter portRange")
    end
    entry.from, entry.to = int_in(range.From, 0, 65535), int_in(range.To, 0, 65535)
    if not entry.from or not entry.to or entry.from > entry.to then
      return fail("InvalidParameterValue", string.format("Invalid port range %s-%s", tostring(range.From),
        tostring(range.To)))
    end
  elseif pn == 1 then
    local icmp = type(p.IcmpTypeCode) == "table" and p.IcmpTypeCode or {}
    if icmp.Type == nil or icmp.Code == nil then
      return fail("MissingParameter", "The request must contain the parameter icmpTypeCode")
    end
    entry.icmp_type, entry.icmp_code = int_in(icmp.Type, -1, 255), int_in(icmp.Code, -1, 255)
    if not entry.icmp_type or not entry.icmp_code then
      return fail("InvalidParameterValue", string.format("Invalid ICMP type and code %s/%s", tostring(icmp.Type),
        tostring(icmp.Code)))
    end
  end
  return entry
end

local function change_acl_entry(ctx, p, replace)
  local ok, err = need(p, "NetworkAclId", "RuleNumber", "Protocol", "RuleAction", "Egress")
  if not ok then return nil, err end
  local acl
  acl, err = lookup(ctx, "acl", p.NetworkAclId, "InvalidNetworkAclID.NotFound")
  if not acl then return nil, err end
  local entry
  entry, err = acl_entry_of(p)
  if not entry then return nil, err end
  local number, egress = entry.number, entry.egress
  local existing, i = acl_entry(acl, number, egress)
  if replace then
    if not existing then return not_found("InvalidNetworkAclEntry.NotFound", number) end
    acl.entries[i] = entry
  else
    if existing then
      return fail("NetworkAclEntryAlreadyExists", "The network acl entry identified by " .. number .. " already exists.")
    end
    table.insert(acl.entries, entry)
  end
  table.sort(acl.entries, function(a, b) return a.number < b.number end)
  return {}
end

function A.CreateNetworkAclEntry(ctx, p) return change_acl_entry(ctx, p, false) end
function A.ReplaceNetworkAclEntry(ctx, p) return change_acl_entry(ctx, p, true) end

function A.DeleteNetworkAclEntry(ctx, p)
  local ok, nerr = need(p, "NetworkAclId", "RuleNumber", "Egress")
  if not ok then return nil, nerr end
  local acl, err = lookup(ctx, "acl", p.NetworkAclId, "InvalidNetworkAclID.NotFound")
  if not acl then return nil, err end
  local _, i = acl_entry(acl, math.tointeger(tonumber(p.RuleNumber)), bool_param(p.Egress) or false)
  if not i then return not_found("InvalidNetworkAclEntry.NotFound", p.RuleNumber) end
  table.remove(acl.entries, i)
  return {}
end

function A.ReplaceNetworkAclAssociation(ctx, p)
  local acl, err = lookup(ctx, "acl", p.NetworkAclId, "InvalidNetworkAclID.NotFound")
  if not acl then return nil, err end
  for _, other in ipairs(ctx.state:list("acl", function(a) return a.owner == ctx.account end)) do
    for i, a in ipairs(other.associations) do
      if a.id == p.AssociationId then
        if other.vpc ~= acl.vpc then return fail("InvalidParameterValue", "network ACL and subnet belong to different VPCs") end
        table.remove(other.associations, i)
        local new = { id = ctx.state:new_id("aclassoc"), subnet = a.subnet }
        acl.associations[#acl.associations + 1] = new
        return { NewAssociationId = new.id }
      end
    end
  end
  return not_found("InvalidAssociationID.NotFound", p.AssociationId)
end

-- ---------------------------------------------------------------------------------------------
-- Network interfaces, zones, prefix lists

local function eni_fields(e)
  return { ["network-interface-id"] = e.id, ["subnet-id"] = e.subnet, ["vpc-id"] = e.vpc, ["interface-type"] = e.interface_type,
           ["description"] = e.description, ["group-id"] = e.groups, ["private-ip-address"] = e.ip,
           ["addresses.private-ip-address"] = e.ip, ["requester-id"] = e.requester_id or false, ["owner-id"] = e.owner,
           ["status"] = e.status }
end

A.DescribeNetworkInterfaces = describer("eni", "NetworkInterfaceIds",
  "InvalidNetworkInterfaceID.NotFound", eni_fields, R.eni, "NetworkInterfaces")

-- An ENI of the caller's own (a host's, as an instance would have): in a subnet, with the VPC's
-- default group when no group is named, at the first free address.
function A.CreateNetworkInterface(ctx, p)
  local ok, err = need(p, "SubnetId")
  if not ok then return nil, err end
  local subnet
  subnet, err = lookup(ctx, "subnet", p.SubnetId, "InvalidSubnetID.NotFound")
  if not subnet then return nil, err end
  local groups = list_param(p, "Groups")
  for _, gid in ipairs(groups) do
    local sg, gerr = lookup(ctx, "sg", gid, "InvalidGroup.NotFound")
    if not sg then return nil, gerr end
    if sg.vpc ~= subnet.vpc then return fail("InvalidParameterValue", "security group " .. gid .. " is in another VPC") end
  end
  if #groups == 0 then
    local default = ctx.state:list("sg", function(g) return g.vpc == subnet.vpc and g.name == "default" end)[1]
    if default then groups = { default.id } end
  end
  local eni
  eni, err = ec2.create_eni(ctx, subnet, { groups = groups, description = p.Description })
  if not eni then return nil, err end
  eni.status = "available"
  return { NetworkInterface = R.eni(eni, ctx) }
end

function A.DeleteNetworkInterface(ctx, p)
  local eni, err = lookup(ctx, "eni", p.NetworkInterfaceId, "InvalidNetworkInterfaceID.NotFound")
  if not eni then return nil, err end
  if eni.requester_managed then
    return fail("InvalidParameterValue", "Network interface '" .. eni.id .. "' is currently in use.")
  end
  ec2.delete_eni(ctx, eni.id)
  return {}
end

function A.DescribeAvailabilityZones(ctx, p)
  local names, ids, out = list_param(p, "ZoneNames"), list_param(p, "ZoneIds"), {}
  local function wanted(list, v)
    if #list == 0 then return true end
    for _, x in ipairs(list) do if x == v then return true end end
    return false
  end
  for _, z in ipairs(ctx.state:zones(ctx.account)) do
    if wanted(names, z.name) and wanted(ids, z.id) then
      out[#out + 1] = { ZoneName = z.name, ZoneId = z.id, State = "available", RegionName = ctx.region,
        ZoneType = "availability-zone", OptInStatus = "opt-in-not-required", GroupName = ctx.region,
        NetworkBorderGroup = ctx.region, Messages = array({}) }
    end
  end
  local err
  out, err = apply_filters(list_param(p, "Filters"), out, function(o)
    return { ["zone-name"] = o.ZoneName, ["zone-id"] = o.ZoneId, ["state"] = o.State, ["region-name"] = o.RegionName }
  end)
  if not out then return nil, err end
  return { AvailabilityZones = array(out) }
end

-- The sandbox's regions (awsnet.sandbox.regions.plan): enabled ones, one opt-in region disabled.
function A.DescribeRegions(ctx, p)
  local out, err = require("awsnet.sandbox.regions").describe(ctx.sandbox.regions, p, function(items, fields)
    return apply_filters(list_param(p, "Filters"), items, fields)
  end)
  if not out then return nil, err end
  return { Regions = array(out) }
end

-- AWS-managed prefix lists every account sees (S3 and DynamoDB gateway endpoints' ranges).
local function managed_prefix_lists(ctx)
  local digits = { s3 = "63a5400a", dynamodb = "66a54007" }
  local out = {}
  for _, svc in ipairs({ "dynamodb", "s3" }) do
    local id = "pl-" .. digits[svc]
    out[#out + 1] = {
      PrefixListId = id, PrefixListName = "com.amazonaws." .. ctx.region .. "." .. svc, AddressFamily = "IPv4",
      State = "create-complete", OwnerId = "AWS", MaxEntries = 0, Version = 1,
      PrefixListArn = "arn:aws:ec2:" .. ctx.region .. ":aws:prefix-list/" .. id, Tags = render_tags({}),
    }
  end
  return out
end

function A.DescribeManagedPrefixLists(ctx, p)
  local ids, out = list_param(p, "PrefixListIds"), {}
  for _, pl in ipairs(managed_prefix_lists(ctx)) do
    local want = #ids == 0
    for _, id in ipairs(ids) do if id == pl.PrefixListId then want = true end end
    if want then out[#out + 1] = pl end
  end
  local err
  out, err = apply_filters(list_param(p, "Filters"), out, function(o)
    return { ["prefix-list-id"] = o.PrefixListId, ["prefix-list-name"] = o.PrefixListName, ["owner-id"] = o.OwnerId }
  end)
  if not out then return nil, err end
  return { PrefixLists = array(out) }
end

-- ---------------------------------------------------------------------------------------------
-- Transit Gateways

local function enable(v, default)
  if v == nil then return default end
  return v == "enable"
end

local function flag(b) return b and "enable" or "disable" end

function R.tgw(t, ctx)
  return {
    TransitGatewayId = t.id, TransitGatewayArn = t.arn, OwnerId = t.owner, State = settle(ctx, "tgw", t),
    Description = t.description, CreationTime = wire.timestamp(t.created), Tags = render_tags(t.tags),
    Options = {
      AmazonSideAsn = t.asn, AutoAcceptSharedAttachments = flag(t.auto_accept),
      DefaultRouteTableAssociation = flag(t.default_association), DefaultRouteTablePropagation = flag(t.default_propagation),
      AssociationDefaultRouteTableId = t.default_association and t.default_rt or nil,
      PropagationDefaultRouteTableId = t.default_propagation and t.default_rt or nil,
      DnsSupport = flag(t.dns_support), VpnEcmpSupport = flag(t.vpn_ecmp),
      SecurityGroupReferencingSupport = flag(t.sg_referencing), MulticastSupport = "disable",
    },
  }
end

local function tgw_fields(t)
  return { ["transit-gateway-id"] = t.id, ["state"] = t.state, ["owner-id"] = t.owner }
end

local function new_tgw_route_table(ctx, tgw, default, tags)
  local rt = ctx.state:put("tgw_rt", {
    id = ctx.state:new_id("tgw-rtb"), owner = tgw.owner, tgw = tgw.id, default = default, tags = tags or {},
    routes = {}, associations = {}, propagations = {}, created = os.time(),
  })
  ctx.state:transition(rt, "pending", "available")
  return rt
end

function A.CreateTransitGateway(ctx, p)
  local o = p.Options or {}
  local st = ctx.state
  local id = st:new_id("tgw")
  local tgw = st:put("tgw", {
    id = id, owner = ctx.account, description = p.Description, created = os.time(), tags = spec_tags(p, "transit-gateway"),
    arn = string.format("arn:aws:ec2:%s:%s:transit-gateway/%s", ctx.region, ctx.account, id),
    asn = math.tointeger(tonumber(o.AmazonSideAsn or 64512)),
    auto_accept = enable(o.AutoAcceptSharedAttachments, false),
    default_association = enable(o.DefaultRouteTableAssociation, true),
    default_propagation = enable(o.DefaultRouteTablePropagation, true),
    dns_support = enable(o.DnsSupport, true), vpn_ecmp = enable(o.VpnEcmpSupport, true),
    sg_referencing = enable(o.SecurityGroupReferencingSupport, false),
  })
  st:transition(tgw, "pending", "available")
  if tgw.default_association or tgw.default_propagation then
    tgw.default_rt = new_tgw_route_table(ctx, tgw, true).id
  end
  return { TransitGateway = as_started(R.tgw(tgw, ctx), "pending") }
end

A.DescribeTransitGateways = describer("tgw", "TransitGatewayIds", "InvalidTransitGatewayID.NotFound", tgw_fields, R.tgw,
  "TransitGateways")

local function live_attachment(ctx, att)
  local s = ctx.state:settle(att)
  return s ~= "deleted" and s ~= "rejected" and s ~= "failed"
end

function A.DeleteTransitGateway(ctx, p)
  local tgw, err = lookup(ctx, "tgw", p.TransitGatewayId, "InvalidTransitGatewayID.NotFound")
  if not tgw then return nil, err end
  if tgw.owner ~= ctx.account then
    return fail("UnauthorizedOperation", "You are not authorized to perform this operation.", 403)
  end
  for _, att in ipairs(ctx.state:list("tgw_attachment", function(a) return a.tgw == tgw.id end)) do
    if live_attachment(ctx, att) then
      return fail("IncorrectState", "tgw " .. tgw.id .. " has non-deleted Transit Gateway Attachments: " .. att.id)
    end
  end
  ctx.state:transition(tgw, "deleting", "deleted")
  tgw.deleted_at = os.time()
  for _, rt in ipairs(ctx.state:list("tgw_rt", function(r) return r.tgw == tgw.id end)) do ctx.state:remove("tgw_rt", rt.id) end
  return { TransitGateway = as_started(R.tgw(tgw, ctx), "deleting") }
end

-- ---------------------------------------------------------------------------------------------
-- Transit Gateway VPC attachments

function R.tgw_attachment(att, ctx)
  local subnets = {}
  for i, s in ipairs(att.subnets) do subnets[i] = s end
  return {
    TransitGatewayAttachmentId = att.id, TransitGatewayId = att.tgw, VpcId = att.vpc, VpcOwnerId = att.owner,
    State = settle(ctx, "tgw_attachment", att), SubnetIds = array(subnets),
    CreationTime = wire.timestamp(att.created), Tags = render_tags(att.tags),
    Options = { DnsSupport = flag(att.dns_support), Ipv6Support = "disable", ApplianceModeSupport = flag(att.appliance_mode),
                SecurityGroupReferencingSupport = flag(att.sg_referencing) },
  }
end

local function attachment_fields(att)
  return { ["transit-gateway-attachment-id"] = att.id, ["transit-gateway-id"] = att.tgw, ["vpc-id"] = att.vpc,
           ["state"] = att.state, ["vpc-owner-id"] = att.owner, ["resource-id"] = att.vpc,
           ["resource-owner-id"] = att.owner, ["transit-gateway-owner-id"] = att.tgw_owner, ["resource-type"] = "vpc" }
end

-- On acceptance: the TGW's default association and propagation, as AWS applies them.
local function apply_defaults(ctx, att)
  local tgw = ctx.state:get("tgw", att.tgw)
  local rt = tgw and tgw.default_rt and ctx.state:get("tgw_rt", tgw.default_rt)
  if not rt then return end
  if tgw.default_association then rt.associations[att.id] = true; att.association = rt.id end
  if tgw.default_propagation then rt.propagations[att.id] = true end
end

local function release_attachment(ctx, att)
  for _, rt in ipairs(ctx.state:list("tgw_rt", function(r) return r.tgw == att.tgw end)) do
    rt.associations[att.id], rt.propagations[att.id] = nil, nil
    for i = #rt.routes, 1, -1 do if rt.routes[i].attachment == att.id then table.remove(rt.routes, i) end end
  end
  att.association = nil
  for _, eni in ipairs(ctx.state:list("eni", function(e) return e.attachment_id == att.id end)) do ec2.delete_eni(ctx, eni.id) end
end

function A.CreateTransitGatewayVpcAttachment(ctx, p)
  local ok, err = need(p, "TransitGatewayId", "VpcId")
  if not ok then return nil, err end
  local tgw
  tgw, err = lookup(ctx, "tgw", p.TransitGatewayId, "InvalidTransitGatewayID.NotFound")
  if not tgw then return nil, err end
  if tgw.state ~= "available" then return fail("IncorrectState", "tgw " .. tgw.id .. " is in invalid state") end
  local vpc
  vpc, err = lookup(ctx, "vpc", p.VpcId, "InvalidVpcID.NotFound")
  if not vpc then return nil, err end
  local subnet_ids = list_param(p, "SubnetIds")
  if #subnet_ids == 0 then return fail("MissingParameter", "The request must contain the parameter SubnetIds") end
  local zones, subnets = {}, {}
  for _, sid in ipairs(subnet_ids) do
    local s
    s, err = lookup(ctx, "subnet", sid, "InvalidSubnetID.NotFound")
    if not s then return nil, err end
    if s.vpc ~= vpc.id then return fail("InvalidParameterValue", "Subnet " .. sid .. " does not belong to VPC " .. vpc.id) end
    if zones[s.az_id] then return fail("DuplicateSubnetsInSameZone", "Duplicate Subnets for same AvailabilityZone") end
    zones[s.az_id] = true
    subnets[#subnets + 1] = s
  end
  for _, other in ipairs(ctx.state:list("tgw_attachment", function(a) return a.tgw == tgw.id and a.vpc == vpc.id end)) do
    if live_attachment(ctx, other) then
      return fail("DuplicateTransitGatewayAttachment", tgw.id .. " has non-deleted Transit Gateway Attachments with same VPC ID.")
    end
  end
  local o = p.Options or {}
  local att = ctx.state:put("tgw_attachment", {
    id = ctx.state:new_id("tgw-attach"), owner = ctx.account, tgw = tgw.id, tgw_owner = tgw.owner, vpc = vpc.id,
    subnets = subnet_ids, created = os.time(), tags = spec_tags(p, "transit-gateway-attachment"),
    dns_support = enable(o.DnsSupport, true), appliance_mode = enable(o.ApplianceModeSupport, false),
    sg_referencing = enable(o.SecurityGroupReferencingSupport, true),
  })
  for _, s in ipairs(subnets) do
    local eni
    eni, err = ec2.create_eni(ctx, s, { interface_type = "transit_gateway", requester_managed = true,
      requester_id = "amazon-aws", description = "Network Interface for Transit Gateway Attachment " .. att.id })
    if not eni then return nil, err end
    eni.attachment_id = att.id
  end
  local initial = "pendingAcceptance"
  if tgw.owner == ctx.account or tgw.auto_accept then
    initial = "pending"
    ctx.state:transition(att, "pending", "available")
    apply_defaults(ctx, att)
  else
    att.state = initial
  end
  return { TransitGatewayVpcAttachment = as_started(R.tgw_attachment(att, ctx), initial) }
end

A.DescribeTransitGatewayVpcAttachments = describer("tgw_attachment", "TransitGatewayAttachmentIds",
  "InvalidTransitGatewayAttachmentID.NotFound", attachment_fields, R.tgw_attachment, "TransitGatewayVpcAttachments")

function A.DescribeTransitGatewayAttachments(ctx, p)
  local atts, err = describe(ctx, "tgw_attachment", p, list_param(p, "TransitGatewayAttachmentIds"),
    "InvalidTransitGatewayAttachmentID.NotFound", attachment_fields)
  if not atts then return nil, err end
  local out = {}
  for i, att in ipairs(atts) do
    out[i] = {
      TransitGatewayAttachmentId = att.id, TransitGatewayId = att.tgw, TransitGatewayOwnerId = att.tgw_owner,
      ResourceOwnerId = att.owner, ResourceType = "vpc", ResourceId = att.vpc, State = settle(ctx, "tgw_attachment", att),
      Association = att.association and { TransitGatewayRouteTableId = att.association, State = "associated" } or nil,
      CreationTime = wire.timestamp(att.created), Tags = render_tags(att.tags),
    }
  end
  return { TransitGatewayAttachments = array(out) }
end

local function owner_attachment(ctx, id)
  local att, err = lookup(ctx, "tgw_attachment", id, "InvalidTransitGatewayAttachmentID.NotFound")
  if not att then return nil, err end
  if att.tgw_owner ~= ctx.account then
    return fail("UnauthorizedOperation", "You are not authorized to perform this operation.", 403)
  end
  return att
end

-- The TGW owner's answer to an attachment waiting in pendingAcceptance.
local function answer_attachment(ctx, p, accept)
  local att, err = owner_attachment(ctx, p.TransitGatewayAttachmentId)
  if not att then return nil, err end
  if att.state ~= "pendingAcceptance" then return fail("IncorrectState", att.id .. " is in invalid state " .. att.state) end
  if accept then
    ctx.state:transition(att, "pending", "available")
    apply_defaults(ctx, att)
  else
    ctx.state:transition(att, "rejecting", "rejected")
    release_attachment(ctx, att)
  end
  local started = att.state
  return { TransitGatewayVpcAttachment = as_started(R.tgw_attachment(att, ctx), started) }
end

function A.AcceptTransitGatewayVpcAttachment(ctx, p) return answer_attachment(ctx, p, true) end
function A.RejectTransitGatewayVpcAttachment(ctx, p) return answer_attachment(ctx, p, false) end

function A.DeleteTransitGatewayVpcAttachment(ctx, p)
  local att, err = lookup(ctx, "tgw_attachment", p.TransitGatewayAttachmentId, "InvalidTransitGatewayAttachmentID.NotFound")
  if not att then return nil, err end
  if att.state == "deleted" or att.state == "deleting" then
    return fail("IncorrectState", att.id .. " is in invalid state " .. att.state)
  end
  ctx.state:transition(att, "deleting", "deleted")
  release_attachment(ctx, att)
  return { TransitGatewayVpcAttachment = as_started(R.tgw_attachment(att, ctx), "deleting") }
end

-- ---------------------------------------------------------------------------------------------
-- Transit Gateway route tables

function R.tgw_rt(rt, ctx)
  return {
    TransitGatewayRouteTableId = rt.id, TransitGatewayId = rt.tgw, State = settle(ctx, "tgw_rt", rt),
    DefaultAssociationRouteTable = rt.default or false, DefaultPropagationRouteTable = rt.default or false,
    CreationTime = wire.timestamp(rt.created), Tags = render_tags(rt.tags),
  }
end

local function tgw_rt_fields(rt)
  return { ["transit-gateway-route-table-id"] = rt.id, ["transit-gateway-id"] = rt.tgw, ["state"] = rt.state,
           ["default-association-route-table"] = tostring(rt.default or false) }
end

local function tgw_rt_owned(ctx, id)
  local rt = ctx.state:get("tgw_rt", id)
  -- route tables stay visible to the TGW owner only, as in AWS
  if not rt or rt.owner ~= ctx.account then return not_found("InvalidRouteTableID.NotFound", id) end
  settle(ctx, "tgw_rt", rt)
  return rt
end

function A.CreateTransitGatewayRouteTable(ctx, p)
  local tgw, err = lookup(ctx, "tgw", p.TransitGatewayId, "InvalidTransitGatewayID.NotFound")
  if not tgw then return nil, err end
  if tgw.owner ~= ctx.account then
    return fail("UnauthorizedOperation", "You are not authorized to perform this operation.", 403)
  end
  local rt = new_tgw_route_table(ctx, tgw, false, spec_tags(p, "transit-gateway-route-table"))
  return { TransitGatewayRouteTable = as_started(R.tgw_rt(rt, ctx), "pending") }
end

function A.DescribeTransitGatewayRouteTables(ctx, p)
  local ids = list_param(p, "TransitGatewayRouteTableIds")
  for _, id in ipairs(ids) do
    local rt, err = tgw_rt_owned(ctx, id)
    if not rt then return nil, err end
  end
  local rts = describe(ctx, "tgw_rt", p, ids, "InvalidRouteTableID.NotFound", tgw_rt_fields)
  return { TransitGatewayRouteTables = render_all(rts, R.tgw_rt, ctx) }
end

function A.DeleteTransitGatewayRouteTable(ctx, p)
  local rt, err = tgw_rt_owned(ctx, p.TransitGatewayRouteTableId)
  if not rt then return nil, err end
  if rt.default then return fail("IncorrectState", "Default route table " .. rt.id .. " cannot be deleted") end
  if next(rt.associations) or next(rt.propagations) then
    return fail("IncorrectState", rt.id .. " has associations or propagations")
  end
  ctx.state:remove("tgw_rt", rt.id)
  return { TransitGatewayRouteTable = as_started(R.tgw_rt(rt, ctx), "deleting") }
end

local function rt_and_attachment(ctx, p)
  local rt, err = tgw_rt_owned(ctx, p.TransitGatewayRouteTableId)
  if not rt then return nil, err end
  local att
  att, err = lookup(ctx, "tgw_attachment", p.TransitGatewayAttachmentId, "InvalidTransitGatewayAttachmentID.NotFound")
  if not att then return nil, err end
  if att.tgw ~= rt.tgw then
    return fail("InvalidParameterValue", "attachment and route table belong to different transit gateways")
  end
  return rt, att
end

function A.AssociateTransitGatewayRouteTable(ctx, p)
  local rt, att = rt_and_attachment(ctx, p)
  if not rt then return nil, att end
  if att.association then
    return fail("Resource.AlreadyAssociated",
      "Transit Gateway Attachment " .. att.id .. " is already associated to a route table.")
  end
  rt.associations[att.id], att.association = true, rt.id
  return { Association = { TransitGatewayRouteTableId = rt.id, TransitGatewayAttachmentId = att.id, ResourceId = att.vpc,
                           ResourceType = "vpc", State = "associated" } }
end

function A.DisassociateTransitGatewayRouteTable(ctx, p)
  local rt, att = rt_and_attachment(ctx, p)
  if not rt then return nil, att end
  if not rt.associations[att.id] then return fail("InvalidAssociation.NotFound", "Association not found") end
  rt.associations[att.id], att.association = nil, nil
  return { Association = { TransitGatewayRouteTableId = rt.id, TransitGatewayAttachmentId = att.id, ResourceId = att.vpc,
                           ResourceType = "vpc", State = "disassociated" } }
end

local function propagation_result(rt, att, state)
  return { Propagation = { TransitGatewayRouteTableId = rt.id, TransitGatewayAttachmentId = att.id, ResourceId = att.vpc,
                           ResourceType = "vpc", State = state } }
end

function A.EnableTransitGatewayRouteTablePropagation(ctx, p)
  local rt, att = rt_and_attachment(ctx, p)
  if not rt then return nil, att end
  if rt.propagations[att.id] then return fail("TransitGatewayRouteTablePropagation.Duplicate", "Propagation already exists") end
  rt.propagations[att.id] = true
  return propagation_result(rt, att, "enabled")
end

function A.DisableTransitGatewayRouteTablePropagation(ctx, p)
  local rt, att = rt_and_attachment(ctx, p)
  if not rt then return nil, att end
  if not rt.propagations[att.id] then return fail("InvalidRouteTableId.NotFound", "Propagation not found") end
  rt.propagations[att.id] = nil
  return propagation_result(rt, att, "disabled")
end

--- Every route of a TGW route table, static and propagated: {cidr, type, state, attachment}.
-- A static route shadows the propagated route of the same CIDR.
-- @tparam table ctx the request context
-- @tparam table rt the TGW route table object
-- @treturn table the routes, sorted by CIDR
function ec2.tgw_routes(ctx, rt)
  local out = {}
  for _, r in ipairs(rt.routes) do
    out[#out + 1] = { cidr = r.cidr, type = "static", state = r.blackhole and "blackhole" or "active", attachment = r.attachment }
  end
  for att_id in pairs(rt.propagations) do
    local att = ctx.state:get("tgw_attachment", att_id)
    local vpc = att and ctx.state:get("vpc", att.vpc)
    if vpc and ctx.state:settle(att) == "available" then
      -- a VPC attachment propagates every CIDR of the VPC
      for _, c in ipairs(vpc_cidrs(vpc)) do
        local shadowed = false
        for _, r in ipairs(rt.routes) do if r.cidr == c then shadowed = true end end
        if not shadowed then out[#out + 1] = { cidr = c, type = "propagated", state = "active", attachment = att.id } end
      end
    end
  end
  table.sort(out, function(a, b) return a.cidr < b.cidr end)
  return out
end

function R.tgw_route(r, ctx)
  local out = { DestinationCidrBlock = r.cidr, Type = r.type, State = r.state }
  if r.attachment then
    local att = ctx.state:get("tgw_attachment", r.attachment)
    out.TransitGatewayAttachments = array({ { TransitGatewayAttachmentId = r.attachment, ResourceType = "vpc",
      ResourceId = att and att.vpc } })
  end
  return out
end

function A.CreateTransitGatewayRoute(ctx, p)
  local ok, err = need(p, "TransitGatewayRouteTableId", "DestinationCidrBlock")
  if not ok then return nil, err end
  local rt
  rt, err = tgw_rt_owned(ctx, p.TransitGatewayRouteTableId)
  if not rt then return nil, err end
  local dest = cidr.normalize(p.DestinationCidrBlock)
  if not dest then return fail("InvalidParameterValue", "Invalid CIDR " .. p.DestinationCidrBlock) end
  local blackhole = bool_param(p.Blackhole) or false
  local att
  if not blackhole then
    att, err = lookup(ctx, "tgw_attachment", p.TransitGatewayAttachmentId, "InvalidTransitGatewayAttachmentID.NotFound")
    if not att then return nil, err end
    if att.tgw ~= rt.tgw then return fail("InvalidParameterValue", "attachment belongs to another transit gateway") end
  end
  for _, r in ipairs(rt.routes) do
    if r.cidr == dest then
      return fail("RouteAlreadyExists", "Route " .. dest .. " already exists in Transit Gateway Route Table " .. rt.id)
    end
  end
  local route = { cidr = dest, blackhole = blackhole, attachment = att and att.id }
  rt.routes[#rt.routes + 1] = route
  return { Route = R.tgw_route({ cidr = dest, type = "static", state = blackhole and "blackhole" or "active",
                                 attachment = route.attachment }, ctx) }
end

function A.DeleteTransitGatewayRoute(ctx, p)
  local rt, err = tgw_rt_owned(ctx, p.TransitGatewayRouteTableId)
  if not rt then return nil, err end
  local dest = cidr.normalize(p.DestinationCidrBlock or "")
  for i, r in ipairs(rt.routes) do
    if r.cidr == dest then
      table.remove(rt.routes, i)
      return { Route = R.tgw_route({ cidr = dest, type = "static", state = "deleted", attachment = r.attachment }, ctx) }
    end
  end
  return not_found("InvalidRoute.NotFound", p.DestinationCidrBlock)
end

function A.SearchTransitGatewayRoutes(ctx, p)
  local rt, err = tgw_rt_owned(ctx, p.TransitGatewayRouteTableId)
  if not rt then return nil, err end
  local filters = list_param(p, "Filters")
  if #filters == 0 then return fail("MissingParameter", "The request must contain the parameter Filters") end
  local routes
  routes, err = apply_filters(filters, ec2.tgw_routes(ctx, rt), function(o)
    return { type = o.type, state = o.state, ["route-search.exact-match"] = o.cidr,
      ["route-search.subnet-of-match"] = function(v) return cidr.contains(v, o.cidr) end,
      ["route-search.supernet-of-match"] = function(v) return cidr.contains(o.cidr, v) end,
      ["attachment.transit-gateway-attachment-id"] = o.attachment or false,
      ["attachment.resource-type"] = o.attachment and "vpc" or false }
  end)
  if not routes then return nil, err end
  local out = {}
  for i, r in ipairs(routes) do out[i] = R.tgw_route(r, ctx) end
  return { Routes = array(out), AdditionalRoutesAvailable = false }
end

local function rt_links(ctx, p, which)
  local rt, err = tgw_rt_owned(ctx, p.TransitGatewayRouteTableId)
  if not rt then return nil, err end
  local out = {}
  for att_id in pairs(rt[which]) do
    local att = ctx.state:get("tgw_attachment", att_id)
    out[#out + 1] = { TransitGatewayAttachmentId = att_id, ResourceId = att and att.vpc, ResourceType = "vpc",
                      State = which == "associations" and "associated" or "enabled" }
  end
  table.sort(out, function(a, b) return a.TransitGatewayAttachmentId < b.TransitGatewayAttachmentId end)
  return out
end

function A.GetTransitGatewayRouteTableAssociations(ctx, p)
  local out, err = rt_links(ctx, p, "associations")
  if not out then return nil, err end
  return { Associations = array(out) }
end

function A.GetTransitGatewayRouteTablePropagations(ctx, p)
  local out, err = rt_links(ctx, p, "propagations")
  if not out then return nil, err end
  return { TransitGatewayRouteTablePropagations = array(out) }
end

-- ---------------------------------------------------------------------------------------------
-- Tags

local TAGGABLE = {
  vpc = "vpc", subnet = "subnet", rtb = "rtb", sg = "sg", acl = "acl", eni = "eni", tgw = "tgw",
  ["tgw-attach"] = "tgw_attachment", ["tgw-rtb"] = "tgw_rt",
}

local function taggable(ctx, id)
  local prefix = id:match("^(.-)%-%x+$")
  local kind = TAGGABLE[prefix or ""]
  local obj = kind and ctx.state:get(kind, id)
  if not obj or not (obj.owner == ctx.account or (kind == "tgw_attachment" and obj.tgw_owner == ctx.account)) then
    return fail("InvalidID", "The ID '" .. id .. "' is not valid")
  end
  return obj
end

local function change_tags(ctx, p, add)
  local ids = list_param(p, "Resources")
  if #ids == 0 then return fail("MissingParameter", "The request must contain the parameter resourceIdSet") end
  local objs = {}
  for i, id in ipairs(ids) do
    local obj, err = taggable(ctx, id)
    if not obj then return nil, err end
    objs[i] = obj
  end
  local tags = list_param(p, "Tags")
  for _, obj in ipairs(objs) do
    obj.tags = obj.tags or {}
    for _, t in ipairs(tags) do
      if add then obj.tags[t.Key] = t.Value or ""
      elseif t.Value == nil or obj.tags[t.Key] == t.Value then obj.tags[t.Key] = nil end
    end
    if not add and #tags == 0 then obj.tags = {} end
  end
  return { Return = true }
end

function A.CreateTags(ctx, p) return change_tags(ctx, p, true) end
function A.DeleteTags(ctx, p) return change_tags(ctx, p, false) end

-- nil, or the error for a tag key or value XML 1.0 cannot carry (every answer that shows the tag,
-- to this account or another, would be unreadable) or longer than EC2 takes.
local function bad_tag(t)
  for _, part in ipairs({ { "key", t.Key, 128 }, { "value", t.Value, 256 } }) do
    local what, v, max = part[1], part[2], part[3]
    if v ~= nil and not wire.xml_text_ok(v) then
      return fail("InvalidParameterValue", "Tag " .. what .. " contains characters that are not allowed: " ..
        "only XML 1.0 characters in UTF-8 may be used.")
    end
    if v ~= nil and utf8.len(v) > max then
      return fail("InvalidParameterValue", string.format("Tag %s exceeds the maximum length of %d characters", what, max))
    end
  end
end

-- Every action refuses bad tags in Tag.N and TagSpecification.N.Tag.N before it runs.
for name, action in pairs(A) do
  A[name] = function(ctx, p)
    for _, t in ipairs(list_param(p, "Tags")) do
      local _, err = bad_tag(t)
      if err then return nil, err end
    end
    for _, spec in ipairs(list_param(p, "TagSpecifications")) do
      for _, t in ipairs(list_param(spec, "Tags")) do
        local _, err = bad_tag(t)
        if err then return nil, err end
      end
    end
    return action(ctx, p)
  end
end

--- Looks up a visible object for another service (RDS, Lambda): kind, id, not-found code.
-- @function lookup
-- @tparam table ctx the request context (whose account must see the object)
-- @tparam string kind "vpc", "subnet", "sg", ...
-- @tparam string id the object's id
-- @tparam string code the error code when it is not there ("InvalidSubnetID.NotFound")
-- @treturn table the object, or nil, err with `code`
ec2.lookup = lookup

return ec2
