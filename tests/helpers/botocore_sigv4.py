"""Signs requests with Debian's python3-botocore, for the byte-for-byte cross-check in
tests/sigv4_spec.lua (run with /usr/bin/python3, never the pyenv shim).

stdin: JSON array of cases
  {"kind": "sign"|"presign", "method", "url", "headers": [[name, value], ...], "body",
   "access_key_id", "secret_access_key", "session_token", "region", "service", "time", "expires"}
  {"kind": "rds", "host", "port", "user", "region", "access_key_id", "secret_access_key",
   "session_token", "time"}
stdout: JSON array, one result per case: {"authorization", "date", "token"} for sign, {"url"}
for presign, {"token", "crt_token"} for rds: "token" from botocore's own
SigV4QueryAuth (what pip's botocore returns), "crt_token" from the signer the client picks (on
Debian awscrt's, which lists X-Amz-SignedHeaders before X-Amz-Expires; null without awscrt). "time" is "YYYYMMDDTHHMMSSZ"; botocore reads the clock through
datetime.datetime.utcnow(), which is pinned to it.
"""
import datetime
import json
import sys
import types

import botocore.auth
import botocore.session
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class PinnedClock(datetime.datetime):
    now_value = None

    @classmethod
    def utcnow(cls):
        return cls.now_value


botocore.auth.datetime = types.SimpleNamespace(datetime=PinnedClock)
try:  # with python3-awscrt installed (Debian), botocore's clients sign through aws-c-auth
    import botocore.crt.auth
    botocore.crt.auth.datetime = types.SimpleNamespace(datetime=PinnedClock, timezone=datetime.timezone)
except ImportError:
    pass


def pin(stamp):
    PinnedClock.now_value = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ")


def credentials(case):
    return Credentials(case["access_key_id"], case["secret_access_key"], case.get("session_token"))


def sign(case):
    pin(case["time"])
    request = AWSRequest(method=case["method"], url=case["url"], data=case.get("body", "").encode("utf-8"))
    for name, value in case.get("headers") or []:  # an empty Lua array arrives as {}
        request.headers[name] = value  # appends: repeated names stay repeated, in order
    if case["kind"] == "sign":
        botocore.auth.SigV4Auth(credentials(case), case["service"], case["region"]).add_auth(request)
        return {
            "authorization": request.headers["Authorization"],
            "date": request.headers["X-Amz-Date"],
            "token": request.headers.get("X-Amz-Security-Token"),
        }
    botocore.auth.SigV4QueryAuth(credentials(case), case["service"], case["region"],
                                 expires=case["expires"]).add_auth(request)
    return {"url": request.url}


def rds_token(case, session, clients):
    pin(case["time"])
    key = (case["access_key_id"], case["secret_access_key"], case.get("session_token"))
    if key not in clients:  # creating a client is slow; the token's region is a parameter
        clients[key] = session.create_client(
            "rds", region_name="us-east-1", aws_access_key_id=key[0], aws_secret_access_key=key[1],
            aws_session_token=key[2])
    client = clients[key]
    args = (case["host"], case["port"], case["user"])
    chosen = botocore.auth.AUTH_TYPE_MAPS["v4-query"]
    crt = None if chosen is botocore.auth.SigV4QueryAuth else client.generate_db_auth_token(*args, Region=case["region"])
    botocore.auth.AUTH_TYPE_MAPS["v4-query"] = botocore.auth.SigV4QueryAuth
    try:
        token = client.generate_db_auth_token(*args, Region=case["region"])
    finally:
        botocore.auth.AUTH_TYPE_MAPS["v4-query"] = chosen
    return {"token": token, "crt_token": crt}


def main():
    cases = json.load(sys.stdin)
    session = botocore.session.get_session()
    clients = {}
    out = [rds_token(c, session, clients) if c["kind"] == "rds" else sign(c) for c in cases]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
