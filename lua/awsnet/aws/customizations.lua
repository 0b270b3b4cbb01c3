--- The botocore customisations that change what a user sees, in one place. botocore registers
-- handlers in `botocore/handlers.py` (`BUILTIN_HANDLERS`) that run before a request is built or
-- after an answer is parsed; the models alone do not say these things. Each entry names the
-- handler it mirrors, its event, and whether awsnet does it (`done`); `apply_input` rewrites the
-- parameters before validation, `apply_output` the parsed result.
-- @module awsnet.aws.customizations
local scalar = require "awsnet.aws.protocol.scalar"
local jsoncodec = require "awsnet.aws.protocol.jsoncodec"

local customizations = {}

local function url_decode(s)
  return (s:gsub("%+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- botocore's decode_quoted_jsondoc: URL-decoded, then JSON-decoded; left as it is when it is not JSON.
local function decode_quoted_jsondoc(value)
  if type(value) ~= "string" then return value end
  local ok, doc = pcall(jsoncodec.decode, url_decode(value))
  if ok and doc ~= nil then return doc end
  return value
end

-- botocore's _decode_policy_types: every string member whose shape is `policyDocumentType`.
local function decode_policy_types(m, parsed, ref)
  local s = m.shapes[ref.shape]
  if type(parsed) ~= "table" or not s then return end
  if s.type == "structure" then
    for name, mref in pairs(s.members or {}) do
      local ms = m.shapes[mref.shape]
      if parsed[name] ~= nil then
        if ms and ms.type == "string" and mref.shape == "policyDocumentType" then
          parsed[name] = decode_quoted_jsondoc(parsed[name])
        else
          decode_policy_types(m, parsed[name], mref)
        end
      end
    end
  elseif s.type == "list" then
    for _, item in ipairs(parsed) do decode_policy_types(m, item, s.member) end
  end
end

--- The list, in botocore's order of `BUILTIN_HANDLERS`. `service`/`operation` nil = every one.
customizations.list = {
  { handler = "json_decode_policies", event = "after-call.iam", service = "iam", done = true,
    what = "IAM policy documents (policyDocumentType members) URL-decoded and JSON-decoded",
    apply_output = function(m, op, result)
      if op.output then decode_policy_types(m, result, op.output) end
    end },
  { handler = "decode_console_output", event = "after-call.ec2.GetConsoleOutput", service = "ec2",
    operation = "GetConsoleOutput", done = true, what = "EC2 console output base64-decoded",
    apply_output = function(_, _, result)
      if type(result.Output) == "string" then
        result.Output = scalar.unbase64(result.Output) or result.Output
      end
    end },
  { handler = "base64_encode_user_data", event = "before-parameter-build.ec2.RunInstances", service = "ec2",
    operation = "RunInstances", done = true, what = "RunInstances UserData sent base64-encoded",
    apply_input = function(_, _, params)
      if type(params.UserData) == "string" then
        local copy = {}
        for k, v in pairs(params) do copy[k] = v end
        copy.UserData = scalar.base64(params.UserData)
        return copy
      end
      return params
    end },
  { handler = "generate_idempotent_uuid", event = "before-parameter-build", done = true,
    what = "idempotencyToken members filled with a UUID when absent (done by awsnet.aws.protocol)" },
  { handler = "inject_presigned_url_ec2", event = "before-call.ec2.CopySnapshot", service = "ec2",
    operation = "CopySnapshot", done = false,
    what = "CopySnapshot's PresignedUrl and DestinationRegion filled in (give PresignedUrl yourself)" },
  { handler = "inject_presigned_url_rds", event = "before-call.rds.CopyDBSnapshot, CreateDBCluster, ...",
    service = "rds", done = false, what = "RDS cross-region PreSignedUrl filled in from SourceRegion" },
  { handler = "json_decode_template_body", event = "after-call.cloudformation.GetTemplate",
    service = "cloudformation", done = false, what = "a JSON TemplateBody decoded to a table" },
  { handler = "parse_get_bucket_location", event = "after-call.s3.GetBucketLocation", service = "s3", done = false,
    what = "LocationConstraint read from the unmodeled XML body" },
  { handler = "decode_list_object (and _v2, _versions)", event = "after-call.s3.ListObjects*", service = "s3",
    done = false, what = "keys URL-decoded when EncodingType=url was added by the client" },
  { handler = "sse_md5, copy_source_sse_md5, conditionally_calculate_md5", event = "before-parameter-build.s3.*",
    service = "s3", done = false, what = "S3 SSE-C key MD5 and Content-MD5 headers" },
  { handler = "fix_route53_ids", event = "before-parameter-build.route53", service = "route53", done = false,
    what = "/hostedzone/ and /change/ prefixes stripped from Route 53 ids" },
  { handler = "inject_account_id, add_glacier_checksums", event = "before-parameter-build.glacier",
    service = "glacier", done = false, what = "Glacier accountId '-' default and tree-hash checksums" },
  { handler = "disable_signing", event = "choose-signer.sts.AssumeRoleWithSAML/WebIdentity, cognito-identity",
    done = false, what = "unsigned operations (awsnet signs every call)" },
}

local function applies(c, m, op_name)
  local svc = m.service or (m.metadata and m.metadata.endpointPrefix)
  return c.done and (c.service == nil or c.service == svc) and (c.operation == nil or c.operation == op_name)
end

--- The parameters as botocore would send them (a copy when changed).
-- @tparam table m the model (`awsnet.aws.model`)
-- @tparam string op_name the operation's name
-- @tparam table params the input, by the model's member names
-- @treturn table the parameters (`params` itself when no customisation changes them)
function customizations.input(m, op_name, params)
  local op = m.operations[op_name]
  for _, c in ipairs(customizations.list) do
    if c.apply_input and op and applies(c, m, op_name) then params = c.apply_input(m, op, params) end
  end
  return params
end

--- Rewrites a parsed result in place as botocore's after-call handlers do.
-- @tparam table m the model (`awsnet.aws.model`)
-- @tparam string op_name the operation's name
-- @param result the parsed result
-- @return `result`
function customizations.output(m, op_name, result)
  local op = m.operations[op_name]
  for _, c in ipairs(customizations.list) do
    if c.apply_output and op and type(result) == "table" and applies(c, m, op_name) then
      c.apply_output(m, op, result)
    end
  end
  return result
end

return customizations
