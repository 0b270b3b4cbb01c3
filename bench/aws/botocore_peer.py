"""botocore's side of bench/aws (Debian python3-botocore), one figure per call, best of ROUNDS.

  botocore_peer.py parse FILE ROUNDS   seconds for parsers.create_parser('ec2').parse of the
                                       DescribeSecurityGroups answer in FILE, best round
  botocore_peer.py sign SECONDS ROUNDS requests per second: EC2 serializer + SigV4Auth.add_auth of
                                       AuthorizeSecurityGroupIngress (params as bench/aws/run.lua)
  botocore_peer.py client              seconds (CPU) of get_session() + create_client("ec2") in this
                                       fresh process, after the import; one figure per process
"""
import sys
import time

import botocore.session  # imported before any clock starts, as the bench's rules say


def params():
    # the same request as run.lua's REQUEST: 5 rules of 6 ranges, 2 group pairs, 2 IPv6 ranges
    perms = []
    for p in range(5):
        perms.append({
            "IpProtocol": "tcp", "FromPort": 8000 + p, "ToPort": 8100 + p,
            "IpRanges": [{"CidrIp": "10.%d.%d.0/24" % (p, r), "Description": "range %d" % r} for r in range(6)],
            "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef%d" % g, "UserId": "123456789012"} for g in range(2)],
            "Ipv6Ranges": [{"CidrIpv6": "2001:db8:%d::/48" % r} for r in range(2)],
        })
    return {"GroupId": "sg-0123456789abcdef0", "IpPermissions": perms}


def parse(path, rounds):
    from botocore import parsers
    session = botocore.session.get_session()
    model = session.get_service_model("ec2")
    shape = model.operation_model("DescribeSecurityGroups").output_shape
    with open(path, "rb") as f:
        body = f.read()
    best = None
    for _ in range(rounds):
        t0 = time.process_time()
        result = parsers.create_parser("ec2").parse({"body": body, "headers": {}, "status_code": 200}, shape)
        t = time.process_time() - t0
        assert len(result["SecurityGroups"]) > 0
        best = t if best is None else min(best, t)
    print("%.6f" % best)


def sign(seconds, rounds):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import prepare_request_dict, create_request_object
    from botocore.credentials import Credentials
    from botocore import serialize
    session = botocore.session.get_session()
    model = session.get_service_model("ec2")
    op = model.operation_model("AuthorizeSecurityGroupIngress")
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "FQoGZXIvYXdzEXAMPLETOKEN")
    auth = SigV4Auth(creds, "ec2", "us-east-1")
    serializer = serialize.create_serializer("ec2")
    p = params()
    best = 0.0
    for _ in range(rounds):
        n, t0 = 0, time.process_time()
        while True:
            for _ in range(200):
                d = serializer.serialize_to_request(p, op)
                prepare_request_dict(d, "https://ec2.us-east-1.amazonaws.com")
                req = create_request_object(d)
                auth.add_auth(req)
            n += 200
            t = time.process_time() - t0
            if t >= seconds:
                break
        best = max(best, n / t)
    print("%.1f" % best)


def client():
    t0 = time.process_time()
    s = botocore.session.get_session()
    c = s.create_client("ec2", region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    t = time.process_time() - t0
    assert c.meta.region_name == "us-east-1"
    print("%.6f" % t)


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "parse":
        parse(sys.argv[2], int(sys.argv[3]))
    elif what == "sign":
        sign(float(sys.argv[2]), int(sys.argv[3]))
    else:
        client()
