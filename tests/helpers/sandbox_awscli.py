"""The AWS CLI (Debian's awscli, the code /usr/bin/aws runs) kept warm for the sandbox specs.

Usage: python3 sandbox_awscli.py IN_FIFO OUT_FIFO
Reads one JSON request per line from IN_FIFO: {"args": "ec2 describe-vpcs ...", "env": {...}}
(args split as a shell would); runs
awscli.clidriver exactly as /usr/bin/aws does (its entry point once per command, so credentials come
from the request's environment), and writes {"rc", "out", "err"} as one JSON line to OUT_FIFO.
Starting Python and importing awscli once instead of per command makes a call ~6 times faster.
"""
import contextlib
import io
import json
import os
import shlex
import sys

import awscli.clidriver

# importing awscli sets what it needs (AWS_DATA_PATH); each request starts from this environment
BASE_ENV = dict(os.environ)


def run(request):
    os.environ.clear()
    os.environ.update(BASE_ENV)
    os.environ.update(request.get("env", {}))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = awscli.clidriver.AWSCLIEntryPoint().main(shlex.split(request["args"]))
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 255
    return {"rc": rc, "out": out.getvalue(), "err": err.getvalue()}


def main():
    with open(sys.argv[1]) as requests, open(sys.argv[2], "w") as answers:
        for line in requests:
            answers.write(json.dumps(run(json.loads(line))) + "\n")
            answers.flush()


if __name__ == "__main__":
    main()
