"""Signatures per second of botocore's SigV4Auth.add_auth (Debian python3-botocore) for the
request bench/sign/run.lua signs with awsnet; prints the rate. Run with /usr/bin/python3.
argv: seconds to measure."""
import sys
import time

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "FQoGZXIvYXdzEXAMPLETOKEN")
    signer = SigV4Auth(creds, "ec2", "us-east-1")
    request = AWSRequest(method="POST", url="https://ec2.us-east-1.amazonaws.com/",
                         data=b"Action=DescribeVpcs&Version=2016-11-15&Filter.1.Name=tag%3AName&Filter.1.Value.1=a",
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    n = 0
    start = time.process_time()
    while True:
        for _ in range(200):
            signer.add_auth(request)  # replaces the previous signature's headers each time
        n += 200
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            break
    print(n / elapsed)


if __name__ == "__main__":
    main()
