#!/usr/bin/python3
"""bench/snapshot's peer: the organisation snapshot written the way a boto3 user would, with the
same calls as `awsnet snapshot --organization` and the same files (aws_configs/accounts/<id>/
<region>/<Key>.json, {Key: items}, 4-space indentation): STS GetCallerIdentity, Organizations
ListAccounts (paginated), AssumeRole of OrganizationAccountAccessRole in every member account, in
every account x region the describe calls of awsnet.snapshot.CALLS (paginated where boto3 has a
paginator), then DescribeVpcAttribute per VPC and the TGW route tables' routes and propagations.
An operation the endpoint does not offer is written to NotCollected.json, as awsnet does.

usage: boto3_peer.py ENDPOINT OUT REGIONS THREADS   (THREADS 1: one call after another; else a
thread pool over the account x region pairs, one boto3 client per service and pair)
Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of the management account."""
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore.config
import botocore.exceptions

ENDPOINT, OUT, REGIONS, THREADS = sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])
ROLE = "OrganizationAccountAccessRole"
CALLS = [
    ("ec2", "describe_availability_zones", "AvailabilityZones"), ("ec2", "describe_vpcs", "Vpcs"),
    ("ec2", "describe_subnets", "Subnets"), ("ec2", "describe_route_tables", "RouteTables"),
    ("ec2", "describe_security_groups", "SecurityGroups"), ("ec2", "describe_network_acls", "NetworkAcls"),
    ("ec2", "describe_network_interfaces", "NetworkInterfaces"), ("ec2", "describe_instances", "Reservations"),
    ("ec2", "describe_internet_gateways", "InternetGateways"), ("ec2", "describe_nat_gateways", "NatGateways"),
    ("ec2", "describe_vpc_peering_connections", "VpcPeeringConnections"),
    ("ec2", "describe_transit_gateways", "TransitGateways"),
    ("ec2", "describe_transit_gateway_attachments", "TransitGatewayAttachments"),
    ("ec2", "describe_transit_gateway_vpc_attachments", "TransitGatewayVpcAttachments"),
    ("ec2", "describe_transit_gateway_route_tables", "TransitGatewayRouteTables"),
    ("rds", "describe_db_instances", "DBInstances"), ("lambda", "list_functions", "Functions"),
]
UNSUPPORTED = {"InvalidAction", "UnknownOperationException", "UnsupportedOperation"}
CONFIG = botocore.config.Config(retries={"max_attempts": 10, "mode": "standard"})


def client(service, region, creds=None):
    kw = {"region_name": region, "endpoint_url": ENDPOINT, "config": CONFIG}
    if creds:
        kw.update(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                  aws_session_token=creds["SessionToken"])
    return boto3.client(service, **kw)


def items(c, op, key, **params):
    out = []
    if c.can_paginate(op):
        for page in c.get_paginator(op).paginate(**params):
            out.extend(page.get(key, []))
    else:
        out.extend(getattr(c, op)(**params).get(key, []))
    return out


def default(v):
    return v.isoformat() if hasattr(v, "isoformat") else str(v)


def collect(account, region, creds):
    clients = {s: client(s, region, creds) for s in ("ec2", "rds", "lambda")}
    data, not_collected = {"VpcAttributes": [], "TransitGatewayRoutes": [], "TransitGatewayPropagations": []}, []
    for service, op, key in CALLS:
        try:
            data[key] = items(clients[service], op, key)
        except botocore.exceptions.ClientError as e:
            code = e.response["Error"]["Code"]
            if code not in UNSUPPORTED:
                raise
            not_collected.append({"Key": key, "Reason": "%s:%s: %s" % (service, op, code)})
    ec2 = clients["ec2"]
    for vpc in data.get("Vpcs", []):
        for attr in ("enableDnsSupport", "enableDnsHostnames"):
            r = ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute=attr)
            r.pop("ResponseMetadata", None)
            data["VpcAttributes"].append(r)
    for rt in data.get("TransitGatewayRouteTables", []):
        rid = rt["TransitGatewayRouteTableId"]
        routes = ec2.search_transit_gateway_routes(TransitGatewayRouteTableId=rid,
                                                   Filters=[{"Name": "type", "Values": ["static", "propagated"]}])
        data["TransitGatewayRoutes"].append({"TransitGatewayRouteTableId": rid, "Routes": routes["Routes"]})
        props = items(ec2, "get_transit_gateway_route_table_propagations", "TransitGatewayRouteTablePropagations",
                      TransitGatewayRouteTableId=rid)
        data["TransitGatewayPropagations"].append({"TransitGatewayRouteTableId": rid,
                                                   "TransitGatewayRouteTablePropagations": props})
    if not_collected:
        data["NotCollected"] = not_collected
    path = os.path.join(OUT, "aws_configs", "accounts", account, region)
    os.makedirs(path, exist_ok=True)
    for key, value in data.items():
        with open(os.path.join(path, key + ".json"), "w") as f:
            json.dump({key: value}, f, indent=4, default=default)


def main():
    home = REGIONS[0]
    me = client("sts", home).get_caller_identity()["Account"]
    accounts = items(client("organizations", home), "list_accounts", "Accounts")
    sts = client("sts", home)

    def creds_of(account):
        if account == me:
            return None
        return sts.assume_role(RoleArn="arn:aws:iam::%s:role/%s" % (account, ROLE),
                               RoleSessionName="boto3-snapshot", DurationSeconds=3600)["Credentials"]

    pairs = []
    for a in accounts:
        creds = creds_of(a["Id"])
        pairs.extend((a["Id"], r, creds) for r in REGIONS)
    if THREADS == 1:
        for p in pairs:
            collect(*p)
    else:
        with ThreadPoolExecutor(THREADS) as pool:
            for f in [pool.submit(collect, *p) for p in pairs]:
                f.result()


main()
