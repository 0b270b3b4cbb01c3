--- AWS Organizations in the sandbox (`sandbox.start{organization = N}`): an organisation of N
-- accounts whose management account is the first of the sandbox's accounts, paged ListAccounts and
-- DescribeOrganization (JSON 1.1, X-Amz-Target), and in every member account the role AWS creates
-- for an account made in an organisation, OrganizationAccountAccessRole, trusting the management
-- account. ListAccounts answers the management account only (a member gets AccessDeniedException,
-- as AWS answers an account that is neither the management account nor a delegated administrator);
-- DescribeOrganization answers every member.
--
-- `populate{vpcs = n}` gives every account, in every enabled region, n VPCs with two subnets
-- each (their main route tables, default security groups and network ACLs come with them): the
-- shape of the snapshot benchmark's organisation, made through the EC2 handlers themselves.
-- @module awsnet.sandbox.organizations
local errors = require "awsnet.errors"
local wire = require "awsnet.sandbox.wire"

local organizations = { actions = {} }

--- The handler of each API action: `actions.<Action>(ctx, params)` -> the result table, or nil,
-- err with AWS's error code and HTTP status. Here: DescribeOrganization, ListAccounts.
-- @table actions
local A = organizations.actions

--- The role AWS creates in an account made by (or invited into) an organisation.
organizations.ROLE = "OrganizationAccountAccessRole"

-- ListAccounts' page: the model's MaxResults is at most 20, AWS's default page is smaller.
local PAGE = 10
local TARGET_PREFIX = "AWSOrganizationsV20161128."

local function fail(code, message, status) return errors.fail(code, message, { status = status or 400 }) end

--- The action a JSON 1.1 request names by its X-Amz-Target header.
-- @tparam string method the HTTP method (POST)
-- @tparam string path the request path ("/")
-- @tparam ?table headers the request's headers (lower-case names)
-- @treturn ?string the action
function organizations.route(method, path, headers)
  local target = headers and headers["x-amz-target"] or ""
  if method ~= "POST" or path ~= "/" or target:sub(1, #TARGET_PREFIX) ~= TARGET_PREFIX then return nil end
  return target:sub(#TARGET_PREFIX + 1)
end

--- The sandbox options for an organisation of `opts.organization` accounts: opts.accounts first
-- (the first is the management account), then generated ids up to N.
-- @tparam table opts sandbox.start's options
-- @treturn table a copy with `accounts` of N ids
-- @raise when N is not an integer in 1..10000
function organizations.options(opts)
  local n = math.tointeger(opts.organization)
  assert(n and n >= 1 and n <= 10000, "organization: the number of accounts must be 1..10000")
  local out, accounts, seen = {}, {}, {}
  for k, v in pairs(opts) do out[k] = v end
  for _, id in ipairs(opts.accounts or { "111111111111", "222222222222" }) do
    if #accounts < n and not seen[id] then accounts[#accounts + 1] = id; seen[id] = true end
  end
  local k = 0
  while #accounts < n do
    k = k + 1
    local id = string.format("%012d", 300000000000 + k)
    if not seen[id] then accounts[#accounts + 1] = id; seen[id] = true end
  end
  out.accounts = accounts
  return out
end

--- Makes the organisation in the sandbox's state (once: a saved world keeps its own) and the
-- OrganizationAccountAccessRole of every member account.
-- @param sb the sandbox
-- @tparam {string,...} accounts the account ids, the management account first
function organizations.setup(sb, accounts)
  local st = sb.state
  if st.data.organization then return end
  local management = accounts[1]
  local id = "o-" .. st:hex(10)
  st.data.organization = { id = id, management = management, accounts = accounts, joined = os.time() }
  local trust = wire.json({ Version = "2012-10-17", Statement = { { Effect = "Allow", Action = "sts:AssumeRole",
    Principal = { AWS = "arn:aws:iam::" .. management .. ":root" } } } })
  local iam = sb:service_module("iam")
  for i = 2, #accounts do
    local ctx = { sandbox = sb, state = st, account = accounts[i], region = st:region() }
    local role = assert(iam.actions.CreateRole(ctx, { RoleName = organizations.ROLE, AssumeRolePolicyDocument = trust }))
    assert(iam.actions.AttachRolePolicy(ctx, { RoleName = role.Role.RoleName,
      PolicyArn = "arn:aws:iam::aws:policy/AdministratorAccess" }))
  end
end

local function org_of(ctx)
  local org = ctx.state.data.organization
  if not org then
    return fail("AWSOrganizationsNotInUseException", "Your account is not a member of an organization.")
  end
  for _, a in ipairs(org.accounts) do if a == ctx.account then return org end end
  return fail("AWSOrganizationsNotInUseException", "Your account is not a member of an organization.")
end

local function account_arn(org, account)
  return string.format("arn:aws:organizations::%s:account/%s/%s", org.management, org.id, account)
end

function A.DescribeOrganization(ctx)
  local org, err = org_of(ctx)
  if not org then return nil, err end
  return { Organization = {
    Id = org.id, Arn = string.format("arn:aws:organizations::%s:organization/%s", org.management, org.id),
    FeatureSet = "ALL", MasterAccountArn = account_arn(org, org.management), MasterAccountId = org.management,
    MasterAccountEmail = "management@example.com", AvailablePolicyTypes = wire.array({}),
  } }
end

function A.ListAccounts(ctx, p)
  local org, err = org_of(ctx)
  if not org then return nil, err end
  if ctx.account ~= org.management then
    return fail("AccessDeniedException", "You don't have permissions to access this resource.")
  end
  local size = math.tointeger(p.MaxResults) or PAGE
  if size < 1 or size > 20 then
    return fail("InvalidInputException", "You provided a value that does not match the required pattern.")
  end
  local from = 1
  if p.NextToken then
    from = math.tointeger(tonumber((p.NextToken:match("^page%-(%d+)$")))) or 0
    if from < 1 or from > #org.accounts + 1 then
      return fail("InvalidInputException", "The NextToken you provided is not valid.")
    end
  end
  local out = {}
  for i = from, math.min(#org.accounts, from + size - 1) do
    local id = org.accounts[i]
    out[#out + 1] = { Id = id, Arn = account_arn(org, id), Email = "aws+" .. id .. "@example.com",
      Name = i == 1 and "management" or ("member-" .. id), Status = "ACTIVE",
      JoinedMethod = i == 1 and "INVITED" or "CREATED", JoinedTimestamp = org.joined }
  end
  local last = from + size - 1
  return { Accounts = wire.array(out), NextToken = last < #org.accounts and ("page-" .. (last + 1)) or nil }
end

--- Gives every account, in each of `regions`, `opts.vpcs` VPCs with two subnets each, through the
-- EC2 handlers (so they are what a client would have made).
-- @param sb the sandbox
-- @tparam {string,...} regions the regions
-- @tparam table opts {vpcs = n}
function organizations.populate(sb, regions, opts)
  local ec2 = sb:service_module("ec2")
  local st = sb.state
  for _, account in ipairs(st:accounts()) do
    for _, region in ipairs(regions) do
      local ctx = { sandbox = sb, state = st:in_region(region), account = account, region = region,
        arn = "arn:aws:iam::" .. account .. ":root" }
      local zones = ctx.state:zones(account)
      for v = 1, opts.vpcs or 0 do
        local vpc = assert(ec2.actions.CreateVpc(ctx, { CidrBlock = string.format("10.%d.0.0/16", v) })).Vpc
        for s = 1, 2 do
          assert(ec2.actions.CreateSubnet(ctx, { VpcId = vpc.VpcId, CidrBlock = string.format("10.%d.%d.0/24", v, s),
            AvailabilityZone = zones[(s - 1) % #zones + 1].name }))
        end
      end
    end
  end
end

return organizations
