--- The sandbox's world as describe-* data per account, the table awsnet.reach.load takes. Built
-- from the same renderers that answer the Describe* calls, so the model sees what clients see.
-- @module awsnet.sandbox.snapshot
local ec2 = require "awsnet.sandbox.ec2"

local snapshot = {}

-- `st` is the state seen from one region (State:in_region): everything below is that region's.
local function ctx_for(st, account)
  return { state = st, account = account, region = st:region() }
end

-- Everything of `kind` that `account` owns, rendered as that account sees it.
local function owned(st, account, kind, render)
  local ctx = ctx_for(st, account)
  local out = {}
  for _, obj in ipairs(st:list(kind, function(o) return o.owner == account end)) do
    out[#out + 1] = render(obj, ctx)
  end
  return out
end

local function tgw_tables(st, account)
  local ctx = ctx_for(st, account)
  local tables, routes, propagations, associations = {}, {}, {}, {}
  for _, rt in ipairs(st:list("tgw_rt", function(r) return r.owner == account end)) do
    tables[#tables + 1] = ec2.render.tgw_rt(rt, ctx)
    local list = {}
    for _, r in ipairs(ec2.tgw_routes(ctx, rt)) do
      list[#list + 1] = ec2.render.tgw_route(r, ctx)
    end
    routes[#routes + 1] = { TransitGatewayRouteTableId = rt.id, Routes = list }
    local props, assocs = {}, {}
    for att_id in pairs(rt.propagations) do
      props[#props + 1] = { TransitGatewayAttachmentId = att_id, ResourceType = "vpc", State = "enabled" }
    end
    for att_id in pairs(rt.associations) do
      assocs[#assocs + 1] = { TransitGatewayAttachmentId = att_id, ResourceType = "vpc", State = "associated" }
    end
    propagations[#propagations + 1] = { TransitGatewayRouteTableId = rt.id, TransitGatewayRouteTablePropagations = props }
    associations[#associations + 1] = { TransitGatewayRouteTableId = rt.id, Associations = assocs }
  end
  return tables, routes, propagations, associations
end

local function attachments(st, account)
  local ctx = ctx_for(st, account)
  local vpc_atts, atts = {}, {}
  for _, att in ipairs(st:list("tgw_attachment", function(a) return a.owner == account or a.tgw_owner == account end)) do
    local state = st:settle(att)
    if state ~= "deleted" then
      vpc_atts[#vpc_atts + 1] = ec2.render.tgw_attachment(att, ctx)
      atts[#atts + 1] = {
        TransitGatewayAttachmentId = att.id, TransitGatewayId = att.tgw, TransitGatewayOwnerId = att.tgw_owner,
        ResourceOwnerId = att.owner, ResourceType = "vpc", ResourceId = att.vpc, State = state,
        Association = att.association and { TransitGatewayRouteTableId = att.association, State = "associated" } or nil,
      }
    end
  end
  return vpc_atts, atts
end

-- One account's describe-* data in the region `st` sees.
local function region_of(st, account, extra)
  local ctx = ctx_for(st, account)
  local region = {}
  region.Vpcs = owned(st, account, "vpc", ec2.render.vpc)
  region.Subnets = owned(st, account, "subnet", ec2.render.subnet)
  region.RouteTables = owned(st, account, "rtb", ec2.render.rtb)
  region.SecurityGroups = owned(st, account, "sg", ec2.render.sg)
  region.NetworkAcls = owned(st, account, "acl", ec2.render.acl)
  region.NetworkInterfaces = owned(st, account, "eni", ec2.render.eni)
  region.TransitGateways = owned(st, account, "tgw", ec2.render.tgw)
  region.TransitGatewayVpcAttachments, region.TransitGatewayAttachments = attachments(st, account)
  region.TransitGatewayRouteTables, region.TransitGatewayRoutes, region.TransitGatewayPropagations,
    region.TransitGatewayAssociations = tgw_tables(st, account)
  region.VpcAttributes = {}
  for _, vpc in ipairs(st:list("vpc", function(v) return v.owner == account end)) do
    region.VpcAttributes[#region.VpcAttributes + 1] = { VpcId = vpc.id, EnableDnsSupport = { Value = vpc.dns_support },
      EnableDnsHostnames = { Value = vpc.dns_hostnames } }
  end
  region.AvailabilityZones = {}
  for _, z in ipairs(st:zones(account)) do
    region.AvailabilityZones[#region.AvailabilityZones + 1] = { ZoneName = z.name, ZoneId = z.id, State = "available" }
  end
  for k, v in pairs(extra and extra(account, ctx) or {}) do region[k] = v end
  return region
end

--- The reach table for the whole sandbox: {accounts = {[id] = {[region] = {Vpcs = ..., ...}}}},
-- every region that holds a resource (and the default one), each with that region's resources
-- only. `extra(account, ctx)` may return more keys per account and region (DBInstances,
-- Functions from their modules); ctx.state and ctx.region are the region's.
-- @param st the sandbox state
-- @tparam[opt] function extra (account, ctx) -> table of more keys for that account
-- @treturn table the table form
function snapshot.build(st, extra)
  local data = { accounts = {} }
  for _, account in ipairs(st:accounts()) do
    data.accounts[account] = {}
    for _, name in ipairs(st:regions()) do
      data.accounts[account][name] = region_of(st:in_region(name), account, extra)
    end
  end
  return data
end

return snapshot
