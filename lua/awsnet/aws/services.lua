--- What awsnet knows about each service: protocol, API version, signing name, endpoint rules,
-- pagination tokens, list element names, and the REST routes of the rest-json operations.
-- A REST route: {method, path (with {Member} or {Member+} placeholders), query = {Member =
-- "name"}, headers = {Member = "Header-Name"}, payload = Member sent as the raw body,
-- blobs = {"Member.Path"} base64-encoded in the JSON body, response_payload = Member that gets
-- the raw response body, response_headers = {Member = "header-name"}, status_member = Member that
-- gets the HTTP status}. Members not placed elsewhere go into the JSON body.
-- @module awsnet.aws.services
local services = {}

--- EC2: its own flavour of the query protocol, pages by NextToken.
services.ec2 = {
  protocol = "ec2", version = "2016-11-15", signing_name = "ec2", endpoint_prefix = "ec2", env_id = "EC2",
  paging = { input = "NextToken", output = "nextToken" },
}

--- STS: query protocol (AssumeRole, GetCallerIdentity).
services.sts = {
  protocol = "query", version = "2011-06-15", signing_name = "sts", endpoint_prefix = "sts", env_id = "STS",
}

--- IAM: query protocol, one global endpoint signed for us-east-1.
services.iam = {
  protocol = "query", version = "2010-05-08", signing_name = "iam", endpoint_prefix = "iam", env_id = "IAM",
  global = true, paging = { input = "Marker", output = "Marker", truncated = "IsTruncated" },
}

--- RDS: query protocol, pages by Marker.
-- RDS names its list elements after the member (<DBInstances><DBInstance>) and expects the same
-- names in requests (VpcSecurityGroupIds.VpcSecurityGroupId.1).
services.rds = {
  protocol = "query", version = "2014-10-31", signing_name = "rds", endpoint_prefix = "rds", env_id = "RDS",
  paging = { input = "Marker", output = "Marker" },
  list_members = {
    VpcSecurityGroupIds = "VpcSecurityGroupId", SubnetIds = "SubnetIdentifier", Tags = "Tag", Filters = "Filter",
    Values = "Value", DBSecurityGroups = "DBSecurityGroupName", AvailabilityZones = "AvailabilityZone",
    TagKeys = "member",
  },
  response_lists = {
    "DBInstance", "DBSubnetGroup", "Subnet", "VpcSecurityGroupMembership", "DBSecurityGroupMembership",
    "DBParameterGroupStatus", "OptionGroupMembership", "DBInstanceStatusInfo", "Tag", "DBCluster",
    "DBClusterMember", "DomainMembership", "AvailabilityZone", "DBSecurityGroup", "DBParameterGroup",
    "DBEngineVersion", "Event", "DBSnapshot", "Parameter", "ProcessorFeature", "DBInstanceAutomatedBackup",
  },
}

--- RAM: REST-JSON, POST /<operation> except the routes listed.
services.ram = {
  protocol = "rest-json", version = "2018-01-04", signing_name = "ram", endpoint_prefix = "ram", env_id = "RAM",
  paging = { input = "nextToken", output = "nextToken" },
  -- every RAM operation is POST /<lower-case name> with a JSON body, except these
  routes = {
    DeleteResourceShare = { method = "DELETE", path = "/deleteresourceshare",
      query = { resourceShareArn = "resourceShareArn", clientToken = "clientToken" } },
    DeletePermission = { method = "DELETE", path = "/deletepermission",
      query = { permissionArn = "permissionArn", clientToken = "clientToken" } },
  },
  default_route = function(op) return { method = "POST", path = "/" .. op:lower() } end,
}

local FN = "/2015-03-31/functions/{FunctionName}"

--- Lambda: REST-JSON, with a route per operation.
services.lambda = {
  protocol = "rest-json", version = "2015-03-31", signing_name = "lambda", endpoint_prefix = "lambda",
  env_id = "LAMBDA", paging = { input = "Marker", output = "NextMarker" },
  routes = {
    CreateFunction = { method = "POST", path = "/2015-03-31/functions", blobs = { "Code.ZipFile" } },
    GetFunction = { method = "GET", path = FN, query = { Qualifier = "Qualifier" } },
    GetFunctionConfiguration = { method = "GET", path = FN .. "/configuration", query = { Qualifier = "Qualifier" } },
    DeleteFunction = { method = "DELETE", path = FN, query = { Qualifier = "Qualifier" } },
    ListFunctions = { method = "GET", path = "/2015-03-31/functions/",
      query = { Marker = "Marker", MaxItems = "MaxItems", FunctionVersion = "FunctionVersion", MasterRegion = "MasterRegion" } },
    UpdateFunctionConfiguration = { method = "PUT", path = FN .. "/configuration" },
    UpdateFunctionCode = { method = "PUT", path = FN .. "/code", blobs = { "ZipFile" } },
    AddPermission = { method = "POST", path = FN .. "/policy", query = { Qualifier = "Qualifier" } },
    RemovePermission = { method = "DELETE", path = FN .. "/policy/{StatementId}",
      query = { Qualifier = "Qualifier", RevisionId = "RevisionId" } },
    GetPolicy = { method = "GET", path = FN .. "/policy", query = { Qualifier = "Qualifier" } },
    GetAccountSettings = { method = "GET", path = "/2016-08-19/account-settings/" },
    Invoke = { method = "POST", path = FN .. "/invocations", query = { Qualifier = "Qualifier" },
      headers = { InvocationType = "X-Amz-Invocation-Type", LogType = "X-Amz-Log-Type", ClientContext = "X-Amz-Client-Context" },
      payload = "Payload", response_payload = "Payload", status_member = "StatusCode",
      response_headers = { FunctionError = "x-amz-function-error", LogResult = "x-amz-log-result",
        ExecutedVersion = "x-amz-executed-version" } },
  },
}

return services
