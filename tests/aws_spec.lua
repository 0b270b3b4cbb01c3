-- awsnet.aws against a loopback server replaying recorded AWS responses: the requests it
-- receives (form bodies, REST paths, signatures), the parsed results, errors, retries, clock
-- skew, endpoints, pagination, waiters and concurrent calls.
local aws = require "awsnet.aws"
local sigv4 = require "awsnet.sigv4"
local stub = require "helpers.stub_http"
local socket = require "socket"

local CREDS = { access_key_id = "AKIDAWSNETTEST", secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" }
local NOW = 1795000000 -- 2026-11-18T...

local EC2_VPCS = [[<?xml version="1.0" encoding="UTF-8"?>
<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>
    <vpcSet>
        <item>
            <vpcId>vpc-0a1b2c3d4e5f60001</vpcId>
            <ownerId>111111111111</ownerId>
            <state>available</state>
            <cidrBlock>10.0.0.0/16</cidrBlock>
            <cidrBlockAssociationSet>
                <item><cidrBlock>10.0.0.0/16</cidrBlock><associationId>vpc-cidr-assoc-1</associationId>
                <cidrBlockState><state>associated</state></cidrBlockState></item>
            </cidrBlockAssociationSet>
            <dhcpOptionsId>dopt-1</dhcpOptionsId>
            <tagSet>
                <item><key>Name</key><value>account-a</value></item>
                <item><key>flag</key><value>true</value></item>
            </tagSet>
            <instanceTenancy>default</instanceTenancy>
            <isDefault>false</isDefault>
        </item>
        <item>
            <vpcId>vpc-2</vpcId><ownerId>111111111111</ownerId><state>pending</state>
            <cidrBlock>172.31.0.0/16</cidrBlock><tagSet/><isDefault>true</isDefault>
        </item>
    </vpcSet>
</DescribeVpcsResponse>]]

local EC2_ERROR = [[<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code><Message>The vpc ID 'vpc-9' does not exist</Message></Error>
</Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>]]

local function ec2_error(code, message)
  return (EC2_ERROR:gsub("InvalidVpcID.NotFound", code):gsub("The vpc ID 'vpc%-9' does not exist", message))
end

local QUERY_ERROR = [[<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role with name missing cannot be found.</Message></Error>
  <RequestId>4f8b2c1a-example</RequestId>
</ErrorResponse>]]

local STS_IDENTITY = [[<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:iam::222222222222:user/ops</Arn>
    <UserId>AIDAEXAMPLE</UserId>
    <Account>222222222222</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>]]

local function iam_roles(names, marker)
  local members = {}
  for _, n in ipairs(names) do
    members[#members + 1] = "<member><Path>/</Path><RoleName>" .. n ..
      "</RoleName><MaxSessionDuration>3600</MaxSessionDuration></member>"
  end
  return "<ListRolesResponse><ListRolesResult><IsTruncated>" .. tostring(marker ~= nil) .. "</IsTruncated>" ..
    (marker and ("<Marker>" .. marker .. "</Marker>") or "") .. "<Roles>" .. table.concat(members) ..
    "</Roles></ListRolesResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></ListRolesResponse>"
end

local RDS_INSTANCES = [[<DescribeDBInstancesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">
  <DescribeDBInstancesResult>
    <DBInstances>
      <DBInstance>
        <DBInstanceIdentifier>orders</DBInstanceIdentifier>
        <DBInstanceStatus>%s</DBInstanceStatus>
        <Engine>mysql</Engine>
        <Endpoint><Address>orders.abc.eu-west-1.rds.amazonaws.com</Address><Port>3306</Port></Endpoint>
        <AllocatedStorage>20</AllocatedStorage>
        <IAMDatabaseAuthenticationEnabled>true</IAMDatabaseAuthenticationEnabled>
        <VpcSecurityGroups>
          <VpcSecurityGroupMembership>
            <VpcSecurityGroupId>sg-1</VpcSecurityGroupId><Status>active</Status>
          </VpcSecurityGroupMembership>
        </VpcSecurityGroups>
      </DBInstance>
    </DBInstances>
  </DescribeDBInstancesResult>
  <ResponseMetadata><RequestId>rds-req</RequestId></ResponseMetadata>
</DescribeDBInstancesResponse>]]

local function tgws(state)
  return [[<DescribeTransitGatewaysResponse><requestId>r</requestId><transitGatewaySet><item>
    <transitGatewayId>tgw-1</transitGatewayId><state>]] .. state .. [[</state>
    <options><amazonSideAsn>64512</amazonSideAsn><autoAcceptSharedAttachments>disable</autoAcceptSharedAttachments></options>
    </item></transitGatewaySet></DescribeTransitGatewaysResponse>]]
end

local function json_response(body, extra)
  local headers = { ["Content-Type"] = "application/json", ["x-amzn-RequestId"] = "json-req-1" }
  for k, v in pairs(extra or {}) do headers[k] = v end
  return { status = 200, headers = headers, body = body }
end

local function xml(body) return { status = 200, headers = { ["Content-Type"] = "text/xml;charset=UTF-8" }, body = body } end

-- The form parameters of a query request body.
local form = stub.form

-- Recomputes the signature of a logged request with the signer's verifier mode.
local function signature_checks(srv, got, creds)
  local auth = got.headers.authorization
  local scope_region, scope_service = auth:match("Credential=[^/]+/%d+/([^/]+)/([^/]+)/aws4_request")
  local names = {}
  for n in auth:match("SignedHeaders=([^,]+)"):gmatch("[^;]+") do names[#names + 1] = n end
  local _, debug = assert(sigv4.sign({ method = got.method, url = "http://127.0.0.1:" .. srv.port .. got.target,
    headers = got.headers, body = got.body }, creds or CREDS,
    { region = scope_region, service = scope_service, time = got.headers["x-amz-date"], signed_headers = names }))
  return debug.signature == auth:match("Signature=(%x+)")
end

-- The cache of preprocessed models goes to a temp folder, never to the real home.
local CACHE = os.tmpname()
os.remove(CACHE)
require("awsnet.aws.model").set_cache(CACHE)

describe("aws", function()
  teardown(function() os.execute("rm -rf '" .. CACHE .. "'") end)

  local srv
  local slept
  local function client(service, extra)
    local opts = { region = "eu-west-1", credentials = CREDS, endpoint = srv.url, env = {},
      clock = function() return NOW end, sleep = function(s) slept[#slept + 1] = s end,
      random = function() return 0.5 end }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return aws.client(service, opts)
  end

  setup(function() srv = stub.start() end)
  teardown(function() if srv then srv:stop() end end)
  before_each(function() slept = {} end)

  describe("EC2 query protocol", function()
    it("sends a signed form request with EC2 list flattening and parses item lists", function()
      srv:routes({ { method = "POST", path = "/", body_contains = "Action=DescribeVpcs", responses = { xml(EC2_VPCS) } } })
      local out = assert(client("ec2"):call("DescribeVpcs", {
        Filters = { { Name = "tag:Name", Values = { "account-a", "b c" } } },
        VpcIds = { "vpc-0a1b2c3d4e5f60001" }, DryRun = false }))
      local got = srv:requests()[1]
      local f = form(got.body)
      assert.equals("DescribeVpcs", f.Action)
      assert.equals("2016-11-15", f.Version)
      assert.equals("tag:Name", f["Filter.1.Name"])
      assert.equals("account-a", f["Filter.1.Value.1"])
      assert.equals("b c", f["Filter.1.Value.2"])
      assert.equals("vpc-0a1b2c3d4e5f60001", f["VpcId.1"])
      assert.equals("false", f.DryRun)
      assert.matches("^application/x%-www%-form%-urlencoded", got.headers["content-type"])
      assert.matches("Credential=AKIDAWSNETTEST/20261118/eu%-west%-1/ec2/aws4_request", got.headers.authorization)
      assert.equals(os.date("!%Y%m%dT%H%M%SZ", NOW), got.headers["x-amz-date"])
      assert.is_true(signature_checks(srv, got))

      assert.equals(2, #out.Vpcs)
      local vpc = out.Vpcs[1]
      assert.equals("vpc-0a1b2c3d4e5f60001", vpc.VpcId)
      assert.equals("111111111111", vpc.OwnerId)
      assert.is_false(vpc.IsDefault)
      assert.is_true(out.Vpcs[2].IsDefault)
      assert.equals("associated", vpc.CidrBlockAssociationSet[1].CidrBlockState.State)
      assert.same({ { Key = "Name", Value = "account-a" }, { Key = "flag", Value = "true" } }, vpc.Tags)
      assert.same({}, out.Vpcs[2].Tags)
      assert.equals('{\n    "Vpcs": [\n        {\n            "Tags": []\n        }\n    ]\n}\n',
        aws.json({ Vpcs = { { Tags = out.Vpcs[2].Tags } } }))
    end)

    it("types numbers by the shape", function()
      srv:routes({ { responses = { xml(tgws("available")) } } })
      local out = assert(client("ec2"):call("DescribeTransitGateways", {}))
      assert.equals(64512, out.TransitGateways[1].Options.AmazonSideAsn)
      assert.equals("integer", math.type(out.TransitGateways[1].Options.AmazonSideAsn))
      assert.equals("disable", out.TransitGateways[1].Options.AutoAcceptSharedAttachments)
    end)

    it("returns AWS errors with code, message, status and request id", function()
      srv:routes({ { responses = { { status = 400, body = EC2_ERROR } } } })
      local out, err = client("ec2"):call("DescribeVpcs", { VpcIds = { "vpc-9" } })
      assert.is_nil(out)
      assert.equals("InvalidVpcID.NotFound", err.code)
      assert.equals("The vpc ID 'vpc-9' does not exist", err.message)
      assert.equals(400, err.status)
      assert.equals("ea966190-f9aa-478e-9ede-example", err.request_id)
      assert.equals("ec2:DescribeVpcs", err.op)
      assert.equals(1, #srv:requests())
    end)
  end)

  describe("query protocol", function()
    it("parses STS results and the response metadata", function()
      srv:routes({ { body_contains = "Action=GetCallerIdentity", responses = { xml(STS_IDENTITY) } } })
      local out = assert(client("sts"):call("GetCallerIdentity"))
      assert.equals("Action=GetCallerIdentity&Version=2011-06-15", srv:requests()[1].body)
      assert.equals("222222222222", out.Account)
      assert.matches("/eu%-west%-1/sts/aws4_request", srv:requests()[1].headers.authorization)
    end)

    it("flattens lists by the model's member names and parses RDS lists", function()
      srv:routes({ { body_contains = "Action=DescribeDBInstances", responses = { xml(RDS_INSTANCES:format("available")) } },
        { responses = { xml("<CreateDBSubnetGroupResponse><CreateDBSubnetGroupResult/></CreateDBSubnetGroupResponse>") } } })
      local rds = client("rds")
      assert(rds:call("CreateDBSubnetGroup", { DBSubnetGroupName = "b", DBSubnetGroupDescription = "d",
        SubnetIds = { "subnet-1", "subnet-2" },
        Tags = { { Key = "k", Value = "v" } } }))
      local out = assert(rds:call("DescribeDBInstances", { DBInstanceIdentifier = "orders" }))
      local f = form(srv:requests()[1].body)
      assert.equals("subnet-2", f["SubnetIds.SubnetIdentifier.2"])
      assert.equals("k", f["Tags.Tag.1.Key"])
      local db = out.DBInstances[1]
      assert.equals("orders", db.DBInstanceIdentifier)
      assert.equals(3306, db.Endpoint.Port)
      assert.equals(20, db.AllocatedStorage)
      assert.is_true(db.IAMDatabaseAuthenticationEnabled)
      assert.equals("sg-1", db.VpcSecurityGroups[1].VpcSecurityGroupId)

      local iam = client("iam")
      srv:routes({ { responses = { xml(iam_roles({ "a" })) } } })
      assert(iam:call("TagRole", { RoleName = "r", Tags = { { Key = "a", Value = "1" }, { Key = "b", Value = "2" } } }))
      local g = form(srv:requests()[1].body)
      assert.equals("b", g["Tags.member.2.Key"])
      assert.equals("2", g["Tags.member.2.Value"])
      assert.matches("/us%-east%-1/iam/aws4_request", srv:requests()[1].headers.authorization)
    end)

    it("returns query errors", function()
      srv:routes({ { responses = { { status = 404, body = QUERY_ERROR } } } })
      local _, err = client("iam"):call("GetRole", { RoleName = "missing" })
      assert.equals("NoSuchEntity", err.code)
      assert.equals("The role with name missing cannot be found.", err.message)
      assert.equals("4f8b2c1a-example", err.request_id)
      assert.equals(404, err.status)
    end)
  end)

  describe("REST-JSON protocol", function()
    it("sends RAM operations by the model's HTTP binding with a JSON body", function()
      srv:routes({ { method = "POST", path = "/createresourceshare", responses = { json_response(
        '{"resourceShare":{"resourceShareArn":"arn:aws:ram:eu-west-1:111111111111:resource-share/1",' ..
        '"status":"ACTIVE","allowExternalPrincipals":true,"creationTime":1.7e9,"tags":null}}') } } })
      local out = assert(client("ram"):call("CreateResourceShare", { name = "tgw", resourceArns = { "arn:tgw" },
        principals = { "222222222222" }, allowExternalPrincipals = true }))
      local got = srv:requests()[1]
      local cjson = require "cjson"
      local body = cjson.decode(got.body)
      assert.equals("tgw", body.name)
      assert.same({ "222222222222" }, body.principals)
      assert.is_true(body.allowExternalPrincipals)
      assert.equals("application/json", got.headers["content-type"])
      assert.is_true(signature_checks(srv, got))
      assert.equals("ACTIVE", out.resourceShare.status)
      assert.equals("2023-11-14T22:13:20+00:00", out.resourceShare.creationTime)
      assert.is_nil(out.resourceShare.tags)
    end)

    it("puts members in the path, query and headers, and handles raw payloads", function()
      srv:routes({
        { method = "DELETE", path = "/deleteresourceshare", responses = { json_response('{"returnValue":true}') } },
        { method = "POST", path = "/2015-03-31/functions/writer%20fn/invocations", responses = { json_response(
          '{"ok":1}', { ["X-Amz-Function-Error"] = "Unhandled", ["X-Amz-Executed-Version"] = "$LATEST" }) } },
      })
      assert(client("ram"):call("DeleteResourceShare", { resourceShareArn = "arn:aws:ram:x:1:resource-share/1" }))
      local out = assert(client("lambda"):call("Invoke", { FunctionName = "writer fn", Payload = '{"action":"write"}',
        InvocationType = "RequestResponse", LogType = "Tail" }))
      local got = srv:requests()
      assert.equals("resourceShareArn=arn%3Aaws%3Aram%3Ax%3A1%3Aresource-share%2F1", got[1].query)
      assert.equals('{"action":"write"}', got[2].body)
      assert.equals("Tail", got[2].headers["x-amz-log-type"])
      assert.equals("RequestResponse", got[2].headers["x-amz-invocation-type"])
      assert.is_true(signature_checks(srv, got[2]))
      assert.equals('{"ok":1}', out.Payload)
      assert.equals(200, out.StatusCode)
      assert.equals("Unhandled", out.FunctionError)
      assert.equals("$LATEST", out.ExecutedVersion)
    end)

    it("base64-encodes the function zip and reads REST-JSON errors", function()
      srv:routes({ { method = "POST", path = "/2015-03-31/functions", responses = { { status = 409,
        headers = { ["x-amzn-ErrorType"] = "ResourceConflictException:http://internal.amazon.com/coral/",
          ["x-amzn-RequestId"] = "lambda-req" },
        body = '{"Type":"User","message":"Function already exist: writer"}' } } } })
      local _, err = client("lambda"):call("CreateFunction", { FunctionName = "writer", Runtime = "python3.12",
        Role = "arn:aws:iam::1:role/r", Code = { ZipFile = "PK\3\4zip" },
        VpcConfig = { SubnetIds = { "subnet-1" }, SecurityGroupIds = { "sg-1" } } })
      assert.equals("ResourceConflictException", err.code)
      assert.equals("Function already exist: writer", err.message)
      assert.equals("lambda-req", err.request_id)
      assert.equals(409, err.status)
      local body = require("cjson").decode(srv:requests()[1].body)
      assert.equals("UEsDBHppcA==", body.Code.ZipFile)
      srv:routes({ { responses = { { status = 400,
        body = '{"__type":"com.amazonaws.ram#UnknownResourceException","message":"no"}' } } } })
      local _, e2 = client("ram"):call("GetResourceShares", { resourceOwner = "SELF" })
      assert.equals("UnknownResourceException", e2.code)
    end)

    it("validates the input before sending: unknown operations and members, missing required ones", function()
      srv:clear()
      local _, e1 = client("lambda"):call("NoSuchOperation", {})
      assert.equals("unknown_operation", e1.code)
      local _, e2 = client("lambda"):call("GetFunction", {})
      assert.equals("invalid_parameter", e2.code)
      local _, e3 = client("ec2"):call("AuthorizeSecurityGroupIngress", { GroupId = "sg-1",
        IpPermissions = { { IpProtocol = "tcp", FromPort = "x" } } })
      assert.equals("invalid_parameter", e3.code)
      assert.equals("IpPermissions[1].FromPort", e3.path)
      assert.equals(0, #srv:requests())
    end)
  end)

  describe("bad responses", function()
    it("turns malformed, truncated and non-AWS bodies into errors", function()
      srv:routes({
        { body_contains = "Action=DescribeVpcs", responses = { xml("<DescribeVpcsResponse><vpcSet><item>") } },
        { body_contains = "Action=DescribeSubnets", responses = { { status = 200, body = "<a>partial", action = "truncate" } } },
        { body_contains = "Action=DescribeRegions", responses = { { status = 403, body = "<html>Forbidden</html>" } } },
        { path = "/getresourceshares", responses = { json_response("{not json") } },
      })
      local ec2 = client("ec2", { max_attempts = 1 })
      local _, e1 = ec2:call("DescribeVpcs")
      assert.equals("invalid_response", e1.code)
      local _, e2 = ec2:call("DescribeSubnets")
      assert.equals("connection", e2.code)
      local _, e3 = ec2:call("DescribeRegions")
      assert.equals("http_403", e3.code)
      assert.equals(403, e3.status)
      local _, e4 = client("ram"):call("GetResourceShares", { resourceOwner = "SELF" })
      assert.equals("invalid_response", e4.code)
      local _, e5 = client("ec2", { endpoint = "not a url" }):call("DescribeVpcs")
      assert.equals("invalid_url", e5.code)
    end)

    it("needs credentials and a region", function()
      srv:clear()
      local c = aws.client("ec2", { region = "eu-west-1", endpoint = srv.url, env = { AWS_EC2_METADATA_DISABLED = "true",
        HOME = "/nonexistent" } })
      local _, err = c:call("DescribeVpcs")
      assert.equals("no_credentials", err.code)
      local _, err2 = aws.client("ec2", { credentials = CREDS, env = {} }):call("DescribeVpcs")
      assert.equals("no_region", err2.code)
      assert.equals(0, #srv:requests())
    end)
  end)

  describe("retries", function()
    it("retries throttling, then succeeds", function()
      srv:routes({ { responses = { { status = 400, body = ec2_error("RequestLimitExceeded", "Request limit exceeded.") },
        { status = 503, body = "<html>busy</html>" }, xml(EC2_VPCS) } } })
      local out = assert(client("ec2"):call("DescribeVpcs"))
      assert.equals(2, #out.Vpcs)
      assert.equals(3, #srv:requests())
      assert.same({ 0.5, 1.0 }, slept) -- random() * 2^(attempt - 1)
    end)

    it("gives up after max_attempts on a 503 storm", function()
      srv:routes({ { responses = { { status = 503, body = ec2_error("Unavailable", "Service Unavailable") } } } })
      local _, err = client("ec2"):call("DescribeVpcs")
      assert.equals("Unavailable", err.code)
      assert.equals(3, err.attempts)
      assert.equals(3, #srv:requests())
      srv:clear()
      local _, err5 = client("ec2", { env = { AWS_MAX_ATTEMPTS = "5" } }):call("DescribeVpcs")
      assert.equals(5, err5.attempts)
      assert.equals(5, #srv:requests())
      assert.equals(5, client("ec2", { env = { AWS_RETRY_MODE = "legacy" } }).max_attempts)
      assert.equals(3, client("ec2", { env = { AWS_RETRY_MODE = "adaptive" } }).max_attempts)
    end)

    it("retries a reset connection and throttling of each protocol", function()
      srv:routes({
        { path = "/", responses = { { action = "reset" }, xml(STS_IDENTITY) } },
        { path = "/getresourceshares", responses = { { status = 400, headers = { ["x-amzn-ErrorType"] = "ThrottlingException" },
          body = '{"message":"Rate exceeded"}' }, json_response('{"resourceShares":[]}') } },
      })
      assert(client("sts"):call("GetCallerIdentity"))
      assert(client("ram"):call("GetResourceShares", { resourceOwner = "SELF" }))
      assert.equals(4, #srv:requests())
    end)

    it("never retries validation or authorisation errors", function()
      for _, code in ipairs({ "InvalidParameterValue", "UnauthorizedOperation", "AuthFailure", "ValidationError" }) do
        srv:routes({ { responses = { { status = 400, body = ec2_error(code, "no") }, xml(EC2_VPCS) } } })
        local _, err = client("ec2"):call("DescribeVpcs")
        assert.equals(code, err.code)
        assert.equals(1, #srv:requests())
      end
      assert.same({}, slept)
    end)

    it("caps the backoff at 20 s and stops when the retry quota is spent", function()
      srv:routes({ { responses = { { status = 500, body = ec2_error("InternalError", "oops") } } } })
      local c = client("ec2", { max_attempts = 8, random = function() return 0.999 end })
      c:call("DescribeVpcs")
      assert.equals(7, #slept)
      assert.is_true(slept[7] <= 20 and slept[7] > 19)
      c.quota = 4
      srv:clear()
      c:call("DescribeVpcs")
      assert.equals(1, #srv:requests())
    end)

    it("corrects a skewed clock from the server's Date and retries once", function()
      local server_time = NOW + 3600
      local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", server_time)
      srv:routes({ { responses = { { status = 403, headers = { Date = date }, body = QUERY_ERROR:gsub("NoSuchEntity",
        "SignatureDoesNotMatch"):gsub("<Message>.-</Message>", "<Message>Signature expired: is now earlier than</Message>") },
        xml(STS_IDENTITY) } } })
      local sts = client("sts")
      assert(sts:call("GetCallerIdentity"))
      local got = srv:requests()
      assert.equals(2, #got)
      assert.equals(os.date("!%Y%m%dT%H%M%SZ", NOW), got[1].headers["x-amz-date"])
      assert.equals(os.date("!%Y%m%dT%H%M%SZ", server_time), got[2].headers["x-amz-date"])
      assert.same({}, slept)
      -- a signature error with the clocks in step is final
      srv:routes({ { responses = { { status = 403, headers = { Date = date }, body = QUERY_ERROR:gsub("NoSuchEntity",
        "SignatureDoesNotMatch") }, xml(STS_IDENTITY) } } })
      local _, err = sts:call("GetCallerIdentity")
      assert.equals("SignatureDoesNotMatch", err.code)
      assert.equals(1, #srv:requests())
    end)
  end)

  describe("endpoints", function()
    it("takes the explicit option, AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, else the regional one", function()
      local base = { region = "eu-west-1", credentials = CREDS }
      local function ep(service, opts)
        local o = {}
        for k, v in pairs(base) do o[k] = v end
        for k, v in pairs(opts or {}) do o[k] = v end
        o.env = o.env or {}
        return aws.client(service, o).endpoint
      end
      assert.equals("https://ec2.eu-west-1.amazonaws.com", ep("ec2"))
      assert.equals("https://sts.eu-west-1.amazonaws.com", ep("sts"))
      assert.equals("https://iam.amazonaws.com", ep("iam"))
      assert.equals("https://iam.amazonaws.com", ep("iam", { region = false }))
      assert.equals("https://lambda.cn-north-1.amazonaws.com.cn", ep("lambda", { region = "cn-north-1" }))
      assert.equals("https://rds.eu-west-1.amazonaws.com", ep("rds"))
      local env = { AWS_ENDPOINT_URL = "http://127.0.0.1:1/", AWS_ENDPOINT_URL_EC2 = "http://127.0.0.1:2" }
      assert.equals("http://127.0.0.1:2", ep("ec2", { env = env }))
      assert.equals("http://127.0.0.1:1", ep("ram", { env = env }))
      assert.equals("http://127.0.0.1:3", ep("ec2", { env = env, endpoint = "http://127.0.0.1:3" }))
      env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS = "true"
      assert.equals("https://ec2.eu-west-1.amazonaws.com", ep("ec2", { env = env }))
      assert.equals("eu-west-1", aws.client("ec2", { env = { AWS_REGION = "eu-west-1" } }).region)
      assert.equals("ap-south-1", aws.client("ec2", { env = { AWS_DEFAULT_REGION = "ap-south-1" } }).region)
    end)
  end)

  describe("pages", function()
    it("follows EC2 nextToken and IAM Marker/IsTruncated", function()
      local function page(n, token)
        return xml("<DescribeRouteTablesResponse><routeTableSet><item><routeTableId>rtb-" .. n ..
          "</routeTableId></item></routeTableSet>" .. (token and ("<nextToken>" .. token .. "</nextToken>") or "") ..
          "</DescribeRouteTablesResponse>")
      end
      srv:routes({ { responses = { page(1, "t1"), page(2, "t2"), page(3) } } })
      local ids = {}
      for p, err in client("ec2"):pages("DescribeRouteTables", { MaxResults = 5 }) do
        assert(p, err)
        ids[#ids + 1] = p.RouteTables[1].RouteTableId
      end
      assert.same({ "rtb-1", "rtb-2", "rtb-3" }, ids)
      local got = srv:requests()
      assert.is_nil(form(got[1].body).NextToken)
      assert.equals("t1", form(got[2].body).NextToken)
      assert.equals("t2", form(got[3].body).NextToken)
      assert.equals("5", form(got[3].body).MaxResults)

      srv:routes({ { responses = { xml(iam_roles({ "a", "b" }, "m1")), xml(iam_roles({ "c" })) } } })
      local names = {}
      for p in client("iam"):pages("ListRoles") do
        for _, r in ipairs(p.Roles) do names[#names + 1] = r.RoleName end
        assert.equals(3600, p.Roles[1].MaxSessionDuration)
      end
      assert.same({ "a", "b", "c" }, names)
      assert.equals("m1", form(srv:requests()[2].body).Marker)
    end)

    it("ends with false, err when a page fails", function()
      srv:routes({ { responses = { { status = 400, body = ec2_error("InvalidParameterValue", "bad") } } } })
      local seen = {}
      for p, err in client("ec2"):pages("DescribeRouteTables") do seen[#seen + 1] = { p, err and err.code } end
      assert.same({ { false, "InvalidParameterValue" } }, seen)
    end)
  end)

  describe("waiters", function()
    it("polls with the model's waiter until every VPC is available", function()
      local pending = EC2_VPCS:gsub("<state>available</state>", "<state>pending</state>")
      srv:routes({ { responses = { xml(pending), xml(pending), xml(EC2_VPCS:gsub("<state>pending</state>",
        "<state>available</state>")) } } })
      local out = assert(client("ec2"):wait("VpcAvailable", { VpcIds = { "vpc-1" } }))
      assert.equals("available", out.Vpcs[2].State)
      assert.same({ 15, 15 }, slept)
      assert.equals("vpc-1", form(srv:requests()[1].body)["VpcId.1"])
    end)

    it("fails on a failure state, times out, and sees deletion in not-found errors", function()
      srv:routes({ { responses = { xml([[<DescribeInstancesResponse><reservationSet><item><instancesSet><item>
        <instanceId>i-1</instanceId><instanceState><code>48</code><name>terminated</name></instanceState>
        </item></instancesSet></item></reservationSet></DescribeInstancesResponse>]]) } } })
      local _, err = client("ec2"):wait("InstanceRunning", { InstanceIds = { "i-1" } })
      assert.equals("waiter_failed", err.code)
      assert.equals("terminated", err.state)
      local _, uerr = client("ec2"):wait("TransitGatewayAvailable", {})
      assert.equals("unknown_waiter", uerr.code)

      local now = NOW
      srv:routes({ { responses = { xml(RDS_INSTANCES:format("creating")) } } })
      local rds = client("rds", { clock = function() return now end, sleep = function(s) now = now + s end })
      local _, terr = rds:wait("DBInstanceAvailable", { DBInstanceIdentifier = "orders" }, { timeout = 100, delay = 30 })
      assert.equals("timeout", terr.code)
      assert.equals(4, #srv:requests())

      srv:routes({ { responses = { xml(RDS_INSTANCES:format("deleting")), { status = 404, body = QUERY_ERROR:gsub("NoSuchEntity",
        "DBInstanceNotFound") } } } })
      assert.is_true(rds:wait("DBInstanceDeleted", { DBInstanceIdentifier = "orders" }))

      srv:routes({ { responses = { json_response('{"State":"Pending"}'),
        json_response('{"State":"Active","LastUpdateStatus":"Successful"}') } } })
      assert(client("lambda"):wait("FunctionActive", { FunctionName = "writer" }))
      assert.equals("/2015-03-31/functions/writer/configuration", srv:requests()[1].path)
    end)
  end)

  describe("many calls at once", function()
    it("runs them concurrently and follows every call's pages", function()
      srv:routes({
        { body_contains = "Action=DescribeVpcs", responses = { { status = 200, body = EC2_VPCS, delay = 1.5 } } },
        { body_contains = "Action=GetCallerIdentity", responses = { { status = 200, body = STS_IDENTITY, delay = 1.5 } } },
        { body_contains = "Action=DescribeTransitGateways",
          responses = { { status = 400, body = ec2_error("UnauthorizedOperation", "no") } } },
      })
      local ec2, sts = client("ec2"), client("sts")
      local t0 = socket.gettime()
      local results, errs = aws.call_many({ { ec2, "DescribeVpcs" }, { sts, "GetCallerIdentity" }, { ec2, "DescribeVpcs" },
        { ec2, "DescribeTransitGateways" }, { sts, "GetCallerIdentity" } })
      local elapsed = socket.gettime() - t0
      assert.equals(2, #results[1].Vpcs)
      assert.equals("222222222222", results[2].Account)
      assert.equals("222222222222", results[5].Account)
      assert.equals("UnauthorizedOperation", errs[4].code)
      assert.is_nil(results[4])
      -- one after the other would take 6 s
      assert.is_true(elapsed < 4.5, "took " .. elapsed .. " s")

      local function page(n, token)
        return xml("<DescribeSubnetsResponse><subnetSet><item><subnetId>subnet-" .. n .. "</subnetId></item></subnetSet>" ..
          (token and ("<nextToken>" .. token .. "</nextToken>") or "") .. "</DescribeSubnetsResponse>")
      end
      srv:routes({ { body_contains = "NextToken=s1", responses = { page(2) } },
        { body_contains = "Action=DescribeSubnets", responses = { page(1, "s1") } },
        { body_contains = "Action=DescribeVpcs", responses = { xml(EC2_VPCS) } } })
      local pages, perrs = aws.pages_many({ { ec2, "DescribeSubnets" }, { ec2, "DescribeVpcs" } })
      assert.same({}, perrs)
      assert.equals(2, #pages[1])
      assert.equals("subnet-2", pages[1][2].Subnets[1].SubnetId)
      assert.equals(1, #pages[2])
    end)
  end)

  describe("a model given as a table", function()
    local THINGS = {
      metadata = { protocol = "json", jsonVersion = "1.1", targetPrefix = "Things_2020", endpointPrefix = "things",
        signingName = "thingsvc", serviceId = "Things", apiVersion = "2020-01-01" },
      operations = {
        ListThings = { name = "ListThings", http = { method = "POST", requestUri = "/" },
          input = { shape = "ListThingsInput" }, output = { shape = "ListThingsOutput" } },
        DescribeThing = { name = "DescribeThing", http = { method = "POST", requestUri = "/" },
          input = { shape = "DescribeThingInput" }, output = { shape = "DescribeThingOutput" },
          documentation = "<p>Describes one thing. Or none.</p>" },
      },
      shapes = {
        ListThingsInput = { type = "structure", members = { NextA = { shape = "String" }, NextB = { shape = "String" },
          Limit = { shape = "Integer" } } },
        ListThingsOutput = { type = "structure", members = { Things = { shape = "ThingList" },
          NextA = { shape = "String" }, NextB = { shape = "String" } } },
        DescribeThingInput = { type = "structure", required = { "Name" }, members = { Name = { shape = "String" } } },
        DescribeThingOutput = { type = "structure", members = { State = { shape = "String" },
          Size = { shape = "Long" }, Created = { shape = "Time" } } },
        ThingList = { type = "list", member = { shape = "String" } },
        String = { type = "string" }, Integer = { type = "integer" }, Long = { type = "long" },
        Time = { type = "timestamp" },
      },
      paginators = { ListThings = { input_token = { "NextA", "NextB" }, output_token = { "NextA", "NextB" },
        result_key = "Things", limit_key = "Limit" } },
      waiters = { ThingReady = { operation = "DescribeThing", delay = 2, maxAttempts = 3, acceptors = {
        { matcher = "path", argument = "State", expected = "READY", state = "success" },
        { matcher = "path", argument = "State", expected = "BROKEN", state = "failure" },
        { matcher = "error", expected = "ThingNotFound", state = "retry" },
        { matcher = "status", expected = 410, state = "success" },
      } } },
    }
    local function things(extra)
      local m = assert(aws.model.load(THINGS))
      return client(m, extra)
    end
    local function answer(body, status)
      return { status = status or 200, headers = { ["Content-Type"] = "application/x-amz-json-1.1",
        ["x-amzn-RequestId"] = "t-1" }, body = body }
    end

    it("is reachable as aws.model and makes a client: operations, help, build and parse with no I/O", function()
      assert.equals(require("awsnet.aws.model"), aws.model)
      local c = things()
      assert.same({ "DescribeThing", "ListThings" }, c:operations())
      local help = c:help("DescribeThing")
      assert.matches("Describes one thing.", help, 1, true)
      assert.matches("Name%s+string%s+required", help)
      srv:clear()
      local req = assert(c:build("DescribeThing", { Name = "a" }))
      assert.equals("POST", req.method)
      assert.equals(srv.url .. "/", req.url)
      assert.equals("Things_2020.DescribeThing", req.headers["X-Amz-Target"])
      assert.same({ Name = "a" }, require("cjson").decode(req.body))
      assert.is_nil(req.headers.Authorization)
      local _, berr = c:build("DescribeThing", { Name = "a", Extra = 1 })
      assert.equals("invalid_parameter", berr.code)
      local out = assert(c:parse("DescribeThing", answer('{"State":"READY","Size":9007199254740993,"Created":1.7e9}')))
      assert.equals(9007199254740993, out.Size)
      assert.equals("2023-11-14T22:13:20+00:00", out.Created)
      local _, perr = c:parse("DescribeThing", answer('{"__type":"ThingNotFound","message":"gone"}', 400))
      assert.equals("ThingNotFound", perr.code)
      assert.equals(0, #srv:requests())
    end)

    it("calls signed with the model's signing name and follows several page tokens", function()
      srv:routes({ { body_contains = '"NextB":"b2"', responses = { answer('{"Things":["z"]}') } },
        { body_contains = '"NextA":"a1"', responses = { answer('{"Things":["y"],"NextB":"b2"}') } },
        { responses = { answer('{"Things":["x","w"],"NextA":"a1","NextB":"b1"}') } } })
      local seen = {}
      for page, err in things():pages("ListThings", { Limit = 2 }) do
        assert(page, err)
        for _, t in ipairs(page.Things) do seen[#seen + 1] = t end
      end
      assert.same({ "x", "w", "y", "z" }, seen)
      local got = srv:requests()
      assert.equals(3, #got)
      assert.matches("/eu%-west%-1/thingsvc/aws4_request", got[1].headers.authorization)
      assert.is_true(signature_checks(srv, got[1]))
      local cjson = require "cjson"
      assert.same({ Limit = 2, NextA = "a1", NextB = "b1" }, cjson.decode(got[2].body))
      assert.same({ Limit = 2, NextB = "b2" }, cjson.decode(got[3].body))
    end)

    it("waits by the model's acceptors: path, error (retry), status; failure; max attempts", function()
      srv:routes({ { responses = { answer('{"__type":"ThingNotFound","message":"not yet"}', 400),
        answer('{"State":"PENDING"}'), answer('{"State":"READY"}') } } })
      local out = assert(things():wait("ThingReady", { Name = "a" }))
      assert.equals("READY", out.State)
      assert.same({ 2, 2 }, slept)
      srv:routes({ { responses = { answer('{"State":"BROKEN"}') } } })
      local _, ferr = things():wait("ThingReady", { Name = "a" })
      assert.equals("waiter_failed", ferr.code)
      assert.equals("BROKEN", ferr.state)
      srv:routes({ { responses = { answer('{"State":"PENDING"}') } } })
      local _, terr = things():wait("ThingReady", { Name = "a" })
      assert.equals("timeout", terr.code)
      assert.equals(3, #srv:requests())
      srv:routes({ { responses = { answer('{"__type":"Gone","message":"gone"}', 410) } } })
      assert.is_true(things():wait("ThingReady", { Name = "a" }))
      srv:routes({ { responses = { answer('{"__type":"AccessDenied","message":"no"}', 403) } } })
      local _, aerr = things():wait("ThingReady", { Name = "a" })
      assert.equals("AccessDenied", aerr.code)
      local _, uerr = things():wait("NoSuchWaiter", {})
      assert.equals("unknown_waiter", uerr.code)
    end)

    it("raises on misuse: a bad service or options, operation names and parameters of the wrong type", function()
      assert.has_error(function() aws.client(42) end)
      assert.has_error(function() aws.client("ec2", "eu-west-1") end)
      assert.has_error(function() aws.client({ metadata = {}, shapes = {} }) end)
      local c = things()
      assert.has_error(function() c:call(1) end)
      assert.has_error(function() c:build("ListThings", "x") end)
      assert.has_error(function() c:parse("ListThings", "x") end)
      assert.has_error(function() c:pages(nil) end)
      assert.has_error(function() c:wait(nil) end)
      local _, jerr = aws.json({ f = function() end })
      assert.equals("invalid_parameter", jerr.code)
    end)

    it("prints results as the AWS CLI's --output json", function()
      local out = assert(things():parse("ListThings", answer('{"Things":[]}')))
      assert.equals('{\n    "Things": []\n}\n', aws.json(out))
      assert.equals('{\n    "A": {\n        "B": [\n            1,\n            "x"\n        ]\n    }\n}\n',
        aws.json({ A = { B = { 1, "x" } } }))
    end)

    it("decodes IAM policy documents as botocore's json_decode_policies", function()
      local iam = client("iam")
      local doc = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D"
      local out = assert(iam:parse("GetRole", { status = 200, headers = {}, body = "<GetRoleResponse><GetRoleResult>" ..
        "<Role><Path>/</Path><RoleName>r</RoleName><RoleId>AROA1</RoleId><Arn>arn:aws:iam::1:role/r</Arn>" ..
        "<CreateDate>2026-01-02T03:04:05Z</CreateDate><AssumeRolePolicyDocument>" .. doc ..
        "</AssumeRolePolicyDocument></Role></GetRoleResult></GetRoleResponse>" }))
      assert.equals("2012-10-17", out.Role.AssumeRolePolicyDocument.Version)
      assert.equals(0, #out.Role.AssumeRolePolicyDocument.Statement)
      assert.equals("2026-01-02T03:04:05+00:00", out.Role.CreateDate)
      local names = {}
      for _, c in ipairs(aws.customizations.list) do
        assert.is_string(c.handler)
        names[c.handler] = c.done
      end
      assert.is_true(names.json_decode_policies)
      assert.is_false(names.inject_presigned_url_ec2)
    end)
  end)

  it("keeps secrets out of errors and tostring", function()
    srv:routes({ { responses = { { status = 400, body = ec2_error("AuthFailure", "no") } } } })
    local c = client("ec2")
    local _, err = c:call("DescribeVpcs")
    for _, text in ipairs({ tostring(err), tostring(c) }) do
      assert.is_nil(text:find(CREDS.secret_access_key, 1, true))
    end
    assert.has_error(function() aws.client("no-such-service", {}) end)
  end)

  it("checks and form-encodes in C (core.queryform) exactly as the Lua code does", function()
    local core = require "awsnet.core"
    if not core.queryform then
      pending("the C core has no queryform")
      return
    end
    local function perms(n)
      local out = {}
      for p = 1, n do
        out[p] = { IpProtocol = "tcp", FromPort = 8000 + p, ToPort = 8100.0 + p, Ipv6Ranges = {},
          IpRanges = { { CidrIp = "10.0." .. p .. ".0/24", Description = "é & = + ~ rule " .. p } },
          UserIdGroupPairs = { { GroupId = "sg-1", UserId = "123456789012" } } }
      end
      return out
    end
    local cases = {
      { "AuthorizeSecurityGroupIngress", { GroupId = "sg-1", IpPermissions = perms(3), DryRun = true } },
      { "AuthorizeSecurityGroupIngress", { GroupId = "sg-1", IpPermissions = perms(1), Bogus = 1 } },
      { "AuthorizeSecurityGroupIngress", { GroupId = "sg-1", IpPermissions = { { FromPort = 1.5 } } } },
      { "AuthorizeSecurityGroupIngress", { GroupId = 7 } },
      { "AuthorizeSecurityGroupIngress", { IpPermissions = { [1] = {}, [3] = {} } } },
      { "DescribeInstances", { Filters = { { Name = "vpc-id", Values = { "vpc-1", "a b/c" } } }, MaxResults = 5 } },
      { "RunInstances", { ImageId = "ami-1", MinCount = 1, MaxCount = 1 } },
      { "RunInstances", { ImageId = "ami-1", MinCount = 1, MaxCount = 1, ClientToken = "t" } },
      { "DescribeSpotPriceHistory", { StartTime = 1398796238, InstanceTypes = { "t3.micro" } } },
      { "CreateTags", { Resources = { "i-1" }, Tags = { { Key = "k", Value = "v" } }, DryRun = false } },
    }
    local function build_all()
      local c = aws.client("ec2", { region = "eu-west-1", credentials = CREDS, env = {} })
      local out = {}
      for i, case in ipairs(cases) do
        local req, err = c:build(case[1], case[2])
        -- a filled idempotency token differs by run
        out[i] = req and req.body:gsub("ClientToken=[%x%-]+", "ClientToken=*") or err.code .. " " .. err.message
      end
      return out
    end
    local with_c = build_all()
    local saved = core.queryform
    local loaded = {}
    for name in pairs(package.loaded) do
      if name:match("^awsnet%.aws") then loaded[name] = package.loaded[name] end
    end
    core.queryform = nil
    for name in pairs(loaded) do package.loaded[name] = nil end
    local ok, lua_only = pcall(function()
      aws = require "awsnet.aws"
      return build_all()
    end)
    core.queryform = saved
    for name, mod in pairs(loaded) do package.loaded[name] = mod end
    aws = loaded["awsnet.aws"]
    assert(ok, lua_only)
    assert.same(lua_only, with_c)
    assert.matches("^Action=AuthorizeSecurityGroupIngress&Version=2016%-11%-15&DryRun=true&GroupId=sg%-1&", with_c[1])
    assert.matches("^invalid_parameter IpPermissions%[1%]%.FromPort", with_c[3])
  end)
end)
