-- The sandbox's network twin (awsnet.sandbox.twin): VPCs as Linux network namespaces. Real
-- kernel, real packets (the twin's probe, ping): the twin follows each API change before the
-- call answers (a route deleted, a rule revoked, an attachment deleted), drops are silent, the
-- mode is said when the privilege is missing, and nothing of the twin is left after a stop or a
-- SIGKILL. Needs root: without it the spec fails, unless AWSNET_TWIN=off says to skip it.
local sandbox = require "awsnet.sandbox"
local twin_mod = require "awsnet.sandbox.twin"
local direct = require "helpers.sandbox_direct"
local cases = require "helpers.twin_cases"
local process = require "awsnet.svc.process"
local core = require "awsnet.core"

local REGION = cases.REGION
local A = "111111111111"
local SKIP = os.getenv("AWSNET_TWIN") == "off"

local function netns_list()
  return process.run("ip netns list 2>/dev/null", { interruptible = false }) or ""
end

local function must(res, err)
  assert(res, err and (tostring(err.code) .. ": " .. tostring(err.message)))
  return res
end

local article = cases.article

-- A TCP connect from A's host to B's host on 3306 (B's responder listening): true when it completes.
local function mysql_port_open(sb, t, timeout)
  local res = must(sb.twin:probe({ { eni = t[2].eni, tcp = { 3306 } } },
    { { id = "x", src = t[1].eni, dst = t[2].ip, proto = "tcp", port = 3306 } }, timeout))
  return res.x
end

describe("network twin", function()
  if SKIP then
    pending("AWSNET_TWIN=off: the network twin is not checked")
    return
  end

  it("runs here (root with CAP_SYS_ADMIN and CAP_NET_ADMIN, ip and nft installed)", function()
    local ok, lack = twin_mod.available()
    assert(ok, "the network twin cannot run on this machine (" .. tostring(lack) .. "): run as root, " ..
      "or set AWSNET_TWIN=off to skip its specs")
  end)

  describe("in-process sandbox", function()
    local sb, t
    setup(function()
      sb = assert(sandbox.start { port = 0, twin = "on", transition_s = 0, region = REGION, log = function() end })
      t = article(sb)
    end)
    teardown(function() if sb then sb:stop() end end)
    -- every change the twin was asked to make was made
    after_each(function() if sb then assert.is_nil(sb.twin.last_error) end end)

    it("realises each ENI's address in its own namespace and carries the article's path over the TGW", function()
      local e = sb.twin:eni(t[1].eni)
      assert.truthy(netns_list():find(e.ns, 1, true))
      local addrs = must(process.run("ip -n " .. e.ns .. " -o -4 address show"))
      assert.truthy(addrs:find(t[1].ip .. "/32", 1, true))
      assert.is_true(mysql_port_open(sb, t))
      -- ICMP is allowed by B's group too: the kernel's own ping gets an answer
      local out = process.run(table.concat(sb.twin:exec_argv(e.ns, { "ping", "-c1", "-W1", t[2].ip }), " "))
      assert.truthy(out and out:find("1 received", 1, true))
    end)

    it("follows a deleted route before the call answers, and the blocked connect times out", function()
      local key = t[1].rtb .. " no route or blackhole"
      local before = twin_mod.counters(sb.twin.prefix)[key]
      assert.is_number(before)
      -- a connection the route carries does not count as dropped
      assert.is_true(mysql_port_open(sb, t))
      assert.equal(before, twin_mod.counters(sb.twin.prefix)[key])
      must(t[1].api("ec2", "DeleteRoute", { RouteTableId = t[1].rtb, DestinationCidrBlock = t[1].peer_cidr }))
      local started = core.httpd.monotonic()
      assert.is_false(mysql_port_open(sb, t, 0.3))
      -- nothing answered: the probe waited out its whole timeout (no ICMP error, no RST)
      assert.is_true(core.httpd.monotonic() - started >= 0.29)
      -- the route table the evaluator blocks at counted the drop
      assert.is_true(twin_mod.counters(sb.twin.prefix)[key] > before)
      assert.equal(t[1].rtb, must(sb:model()):trace { src = t[1].eni, dst = t[2].ip, protocol = "tcp", port = 3306 }
        .blocked_at.component)
      must(t[1].api("ec2", "CreateRoute", { RouteTableId = t[1].rtb, DestinationCidrBlock = t[1].peer_cidr,
        TransitGatewayId = t.tgw.TransitGatewayId }))
      assert.is_true(mysql_port_open(sb, t))
    end)

    it("follows a revoked security-group rule and a network ACL deny", function()
      local perm = { IpProtocol = "tcp", FromPort = 3306, ToPort = 3306, IpRanges = { { CidrIp = "10.0.128.0/28" } } }
      must(t[2].api("ec2", "RevokeSecurityGroupIngress", { GroupId = t[2].sg, IpPermissions = { perm } }))
      assert.is_false(mysql_port_open(sb, t))
      must(t[2].api("ec2", "AuthorizeSecurityGroupIngress", { GroupId = t[2].sg, IpPermissions = { perm } }))
      assert.is_true(mysql_port_open(sb, t))
      local acl = must(t[2].api("ec2", "DescribeNetworkAcls", { Filters = { { Name = "vpc-id", Values = { t[2].vpc } } } }))
        .NetworkAcls[1].NetworkAclId
      -- B's host and the TGW share a subnet: the TGW -> host leg crosses no NACL, the reply host ->
      -- TGW crosses its outbound rules (tgw-nacls.html), where this deny stops it
      must(t[2].api("ec2", "CreateNetworkAclEntry", { NetworkAclId = acl, RuleNumber = 50, Protocol = "6",
        RuleAction = "deny", Egress = true, CidrBlock = "10.0.0.0/16", PortRange = { From = 0, To = 65535 } }))
      assert.is_false(mysql_port_open(sb, t))
      -- the evaluator blocks at that rule, and it is that rule's counter that moved in the kernel
      local res = must(sb:model()):trace { src = t[1].eni, dst = t[2].ip, protocol = "tcp", port = 3306 }
      assert.is_false(res.reachable)
      assert.equal("SUBNET_ACL_RESTRICTION", res.code)
      local ruleset = must(process.run(table.concat(sb.twin:exec_argv(sb.twin:vpc(t[2].vpc).ns,
        { "nft", "list", "table", "ip", sb.twin.prefix }), " ")))
      local line
      for l in ruleset:gmatch("[^\n]+") do if l:find(acl .. " out 50", 1, true) then line = l end end
      assert.truthy(line and line:match("packets [1-9]"), ruleset)
      must(t[2].api("ec2", "DeleteNetworkAclEntry", { NetworkAclId = acl, RuleNumber = 50, Egress = true }))
      assert.is_true(mysql_port_open(sb, t))
    end)

    it("matches a network ACL entry's ICMP type, as the evaluator does", function()
      local e = sb.twin:eni(t[1].eni)
      local function ping()
        local out = process.run(table.concat(sb.twin:exec_argv(e.ns, { "ping", "-c1", "-W1", t[2].ip }), " "))
        return (out and out:find("1 received", 1, true)) ~= nil
      end
      local function traced()
        return must(sb:model()):trace { src = t[1].eni, dst = t[2].ip, protocol = "icmp" }
      end
      local acl = must(t[2].api("ec2", "DescribeNetworkAcls", { Filters = { { Name = "vpc-id", Values = { t[2].vpc } } } }))
        .NetworkAcls[1].NetworkAclId
      -- the echo reply (type 0) leaves B's host subnet through its outbound rules, where this stops it
      local entry = { NetworkAclId = acl, RuleNumber = 50, Protocol = "1", RuleAction = "deny", Egress = true,
        CidrBlock = "10.0.0.0/16", IcmpTypeCode = { Type = 0, Code = -1 } }
      must(t[2].api("ec2", "CreateNetworkAclEntry", entry))
      assert.is_false(ping())
      local res = traced()
      assert.is_false(res.reachable)
      assert.equal("SUBNET_ACL_RESTRICTION", res.code)
      -- another type (destination unreachable) leaves the echo reply alone, in both
      entry.IcmpTypeCode = { Type = 3, Code = -1 }
      must(t[2].api("ec2", "ReplaceNetworkAclEntry", entry))
      assert.is_true(ping())
      assert.is_true(traced().reachable)
      must(t[2].api("ec2", "DeleteNetworkAclEntry", { NetworkAclId = acl, RuleNumber = 50, Egress = true }))
    end)

    it("routes a secondary CIDR: its local route, the TGW's propagation and a route to it", function()
      local b = t[2].api
      local assoc = must(b("ec2", "AssociateVpcCidrBlock", { VpcId = t[2].vpc, CidrBlock = "10.20.0.0/16" }))
        .CidrBlockAssociation
      local vpc = must(b("ec2", "DescribeVpcs", { VpcIds = { t[2].vpc } })).Vpcs[1]
      assert.equal(2, #vpc.CidrBlockAssociationSet)
      local zone = must(b("ec2", "DescribeSubnets", { SubnetIds = { t[2].subnet } })).Subnets[1].AvailabilityZoneId
      local subnet = must(b("ec2", "CreateSubnet", { VpcId = t[2].vpc, CidrBlock = "10.20.1.0/24",
        AvailabilityZoneId = zone })).Subnet.SubnetId
      local eni = must(b("ec2", "CreateNetworkInterface", { SubnetId = subnet, Groups = { t[2].sg } })).NetworkInterface
      local _, inuse = b("ec2", "DisassociateVpcCidrBlock", { AssociationId = assoc.AssociationId })
      assert.equal("InvalidCidrBlock.InUse", inuse and inuse.code)
      local function open()
        local res = must(sb.twin:probe({ { eni = eni.NetworkInterfaceId, tcp = { 3306 } } },
          { { id = "x", src = t[1].eni, dst = eni.PrivateIpAddress, proto = "tcp", port = 3306 } }))
        return res.x
      end
      -- A routes only B's primary CIDR to the TGW: the secondary is not reachable, as traced
      assert.is_false(open())
      assert.is_false(must(sb:model()):trace { src = t[1].eni, dst = eni.PrivateIpAddress, protocol = "tcp", port = 3306 }
        .reachable)
      must(t[1].api("ec2", "CreateRoute", { RouteTableId = t[1].rtb, DestinationCidrBlock = "10.20.0.0/16",
        TransitGatewayId = t.tgw.TransitGatewayId }))
      assert.is_true(open())
      assert.is_true(must(sb:model()):trace { src = t[1].eni, dst = eni.PrivateIpAddress, protocol = "tcp", port = 3306 }
        .reachable)
    end)

    it("answers DNS at each VPC's base + 2 from inside the VPC, honouring enableDnsSupport", function()
      local ns = sb.twin:eni(t[1].eni).ns
      local function ask(server)
        -- dig exits 9 when no server answers: its output is then in the error
        local out, err = process.run(table.concat(sb.twin:exec_argv(ns, { "dig", "+time=1", "+tries=1", "@" .. server,
          "nothing.rds.amazonaws.com" }), " "))
        return out or tostring(err)
      end
      -- a name under the domain it serves, unknown: NXDOMAIN, from the resolver at 10.0.0.2
      assert.truthy(ask("10.0.0.2"):find("status: NXDOMAIN", 1, true))
      -- B's resolver is not reachable from A's VPC (multi-VPC whitepaper: base + 2 is the VPC's own)
      assert.truthy(ask("10.1.0.2"):find("timed out", 1, true))
      must(t[1].api("ec2", "ModifyVpcAttribute", { VpcId = t[1].vpc, EnableDnsSupport = { Value = false } }))
      assert.truthy(ask("10.0.0.2"):find("timed out", 1, true))
      must(t[1].api("ec2", "ModifyVpcAttribute", { VpcId = t[1].vpc, EnableDnsSupport = { Value = true } }))
      assert.truthy(ask("10.0.0.2"):find("status: NXDOMAIN", 1, true))
    end)

    it("runs a VPC Lambda inside its ENI's namespace, as nobody, seeing only its code and the runtime", function()
      local a = t[1].api
      local role = must(a("iam", "CreateRole", { RoleName = "twin-fn", AssumeRolePolicyDocument = require("cjson").encode({
        Version = "2012-10-17", Statement = { { Effect = "Allow", Principal = { Service = "lambda.amazonaws.com" },
          Action = "sts:AssumeRole" } } }) })).Role.Arn
      local dir = process.tempdir("awsnet-twin-fn")
      process.write_file(dir .. "/h.py", table.concat({
        "import os, socket",
        "def handler(event, context):",
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
        "    s.connect(('10.0.0.2', 53))  # no packet: the source address its routes pick",
        "    return {'uid': os.getuid(), 'gid': os.getgid(), 'root': sorted(os.listdir('/')),",
        "            'task': sorted(os.listdir('/var/task')), 'var': sorted(os.listdir('/var')),",
        "            'secret': os.environ.get('MY_SECRET'), 'key': bool(os.environ.get('AWS_SECRET_ACCESS_KEY')),",
        "            'src': s.getsockname()[0], 'cwd': os.getcwd()}",
      }, "\n") .. "\n")
      local zipped = must(process.run("cd " .. process.quote(dir) .. " && zip -q - h.py"))
      process.remove(dir)
      must(a("lambda", "CreateFunction", { FunctionName = "twin-fn", Runtime = "python3.11", Role = role,
        Handler = "h.handler", Code = { ZipFile = zipped }, Environment = { Variables = { MY_SECRET = "s3cr3t-value" } },
        VpcConfig = { SubnetIds = { t[1].subnet }, SecurityGroupIds = { t[1].sg } } }))
      sb:serve_for(1.1)
      local res = must(a("lambda", "Invoke", { FunctionName = "twin-fn", Payload = "{}" }))
      assert.is_nil(res.FunctionError, res.Payload)
      local out = require("cjson").decode(res.Payload)
      assert.equal(65534, out.uid)
      assert.equal(65534, out.gid)
      -- its own root: the runtime (/usr, /etc and their links), /dev, /tmp and /var; nothing else
      assert.same({ "bin", "dev", "etc", "lib", "lib64", "sbin", "tmp", "usr", "var" }, out.root)
      assert.same({ "result", "runtime", "task" }, out.var)
      assert.same({ "h.py" }, out.task)
      assert.equal("/var/task", out.cwd)
      -- its variables and the role's keys reached it (through a pipe: no file, no command line)
      assert.equal("s3cr3t-value", out.secret)
      assert.is_true(out.key)
      -- and it ran inside its ENI's namespace: its packets leave with the ENI's address
      local eni = must(a("ec2", "DescribeNetworkInterfaces", { Filters = { { Name = "interface-type",
        Values = { "lambda" } } } })).NetworkInterfaces[1]
      assert.truthy(sb.twin:eni(eni.NetworkInterfaceId))
      assert.equal(eni.PrivateIpAddress, out.src)
    end)

    it("follows a deleted attachment: its links are gone and the path with them", function()
      must(t[2].api("ec2", "DeleteTransitGatewayVpcAttachment", { TransitGatewayAttachmentId = t[2].att }))
      assert.is_false(mysql_port_open(sb, t))
      local links = must(process.run("ip -n " .. sb.twin:vpc(t[2].vpc).ns .. " -o link show"))
      assert.falsy(links:find(sb.twin.prefix .. "a", 1, true))
    end)

    it("removes its namespaces, and only its own, when the sandbox stops", function()
      local other = assert(sandbox.start { port = 0, twin = "on", transition_s = 0, region = REGION, log = function() end })
      local ok, err = pcall(function()
        assert.are_not.equal(other.twin.prefix, sb.twin.prefix)
        local prefix = sb.twin.prefix
        sb:stop()
        sb = nil
        assert.falsy(netns_list():find(prefix .. "-", 1, true))
        -- the other sandbox's twin is untouched
        local api = direct(other, A, REGION)
        must(api("ec2", "CreateVpc", { CidrBlock = "10.9.0.0/16" }))
        assert.truthy(netns_list():find(other.twin.prefix .. "-", 1, true))
      end)
      local prefix = other.twin.prefix
      other:stop()
      assert.falsy(netns_list():find(prefix .. "-", 1, true))
      assert(ok, err)
    end)
  end)

  describe("awsnet sandbox", function()
    local AWSNET = (os.getenv("PWD") or ".") .. "/bin/awsnet"

    it("with --twin on and no privilege is an error; with auto it says once what it lacks", function()
      -- root without CAP_SYS_ADMIN and CAP_NET_ADMIN (a bounding set of CAP_SETUID and CAP_SETGID
      -- only, which its dnsmasq needs): it still reads the checkout it owns, wherever that is
      local base = "setpriv --bounding-set=-all,+setuid,+setgid --inh-caps=-all lua5.4 " .. process.quote(AWSNET) ..
        " sandbox --port 0 "
      local how, code, out = core.process.capture({ "/bin/sh", "-c", base .. "--twin on 2>&1" }, { timeout = 30 })
      assert.equal("exited", how)
      assert.equal(2, code)
      assert.truthy(out:find("network twin unavailable: needs root", 1, true), out)
      -- auto: the sandbox starts, says it once, and is stopped by its timeout
      local _, _, auto = core.process.capture({ "/bin/sh", "-c", "timeout -s TERM 4 " .. base .. "--twin auto 2>&1" },
        { timeout = 30 })
      local _, n = auto:gsub(twin_mod.UNAVAILABLE:gsub("%p", "%%%0"), "")
      assert.equal(1, n, auto)
      assert.truthy(auto:find("network gated by the evaluator", 1, true), auto)
    end)

    it("leaves no namespace of its own after a SIGKILL (the watchdog removes them)", function()
      local proc = assert(sandbox.spawn { twin = "on", transition_s = 0 })
      local prefix
      local ok, err = pcall(function()
        local log = process.read_file(proc.log) or ""
        prefix = log:match("network twin (aw%w+)")
        assert.truthy(prefix, log)
        local aws = require "awsnet.aws"
        local ec2 = assert(aws.client("ec2", { region = "us-east-1", endpoint = proc.endpoint,
          credentials = { access_key_id = A, secret_access_key = "test" } }))
        must(ec2:call("CreateVpc", { CidrBlock = "10.5.0.0/16" }))
        assert.truthy(netns_list():find(prefix .. "-", 1, true))
        core.process.kill(proc.pid, "KILL")
      end)
      proc.stop()
      assert(ok, err)
      local gone = false
      for _ = 1, 100 do
        if not netns_list():find(prefix .. "-", 1, true) then gone = true; break end
        core.process.sleep(0.1, false)
      end
      assert.is_true(gone, netns_list())
    end)
  end)
end)
