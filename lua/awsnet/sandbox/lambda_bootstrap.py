"""Runs one Lambda invocation for the awsnet sandbox, acting as the function's VPC network.

Usage: python3 lambda_bootstrap.py - < INVOCATION.json (a pipe)
The JSON holds: code_dir, handler ("module.function"), event_path (a file of the event's JSON
text), timeout (seconds), function_name, function_arn, memory, request_id, result_path, env (the
role's keys and the function's variables: secrets, so they come on stdin and not in a file, in the
environment the process starts with or on its command line), and either network "kernel" (the
sandbox's network twin: the handler runs inside its ENI's namespace and the kernel routes and
filters) or the network the sandbox
computed for this function: names {dns name: address}, dns (false when the VPC has no DNS),
routes {"address:port": "127.0.0.1:port" (reachable, through to the backing server) or null
(dropped: the connect blocks until the socket's timeout, as a security group drop does)}.
The handler's output goes to stdout (the function's log); the result is written to result_path
as {"ok": payload} or {"error": {...}}.
"""
import json
import os
import signal
import socket
import sys
import time
import traceback

_real_getaddrinfo = socket.getaddrinfo
_real_create_connection = socket.create_connection
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


class FunctionTimeout(BaseException):
    """Raised by the alarm when the function's timeout is up (not catchable as Exception)."""


def _install_network(spec):
    names = spec.get("names") or {}
    routes = spec.get("routes") or {}
    dns_on = spec.get("dns", True)

    def resolve(host):
        if host is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        try:
            socket.inet_aton(host)
            return host
        except OSError:
            pass
        if not dns_on or host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return names[host]

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        address = resolve(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]

    def route(address):
        host, port = address[0], int(address[1])
        key = "%s:%d" % (host, port)
        if key in routes and routes[key]:
            real_host, real_port = routes[key].rsplit(":", 1)
            return (real_host, int(real_port))
        return None

    def drop(sock_timeout):
        # a dropped SYN: nothing answers until the caller gives up
        if sock_timeout is None:
            while True:
                time.sleep(3600)
        time.sleep(sock_timeout)
        raise socket.timeout("timed out")

    def connect(self, address):
        if self.family not in (socket.AF_INET, socket.AF_INET6):
            return _real_connect(self, address)
        target = route((resolve(address[0]), address[1]))
        if target is None:
            drop(self.gettimeout())
        return _real_connect(self, target)

    def connect_ex(self, address):
        try:
            connect(self, address)
            return 0
        except socket.timeout:
            return 110  # ETIMEDOUT

    def create_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, **kwargs):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
            sock.settimeout(timeout)
        try:
            connect(sock, (resolve(address[0]), address[1]))
        except BaseException:
            sock.close()
            raise
        return sock

    socket.getaddrinfo = getaddrinfo
    socket.create_connection = create_connection
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex


class Context:
    def __init__(self, spec, deadline):
        self.function_name = spec["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec["function_arn"]
        self.memory_limit_in_mb = str(spec["memory"])
        self.aws_request_id = spec["request_id"]
        self.log_group_name = "/aws/lambda/" + spec["function_name"]
        self.log_stream_name = "sandbox/[$LATEST]" + spec["request_id"].replace("-", "")
        self._deadline = deadline

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(exc):
    # the trace starts in the handler, as on AWS: the bootstrap's own frame is left out
    tb = traceback.extract_tb(exc.__traceback__)[1:]
    return {"errorMessage": str(exc), "errorType": type(exc).__name__,
            "requestId": "", "stackTrace": traceback.format_list(tb)}


def main():
    spec = json.load(sys.stdin)
    if spec.get("event_path"):
        with open(spec["event_path"]) as f:
            spec["event"] = f.read()
    os.environ.update({str(k): str(v) for k, v in (spec.get("env") or {}).items()})
    result_path = spec["result_path"]

    def finish(value):
        with open(result_path, "w") as out:
            json.dump(value, out)

    timeout = float(spec["timeout"])
    start = time.monotonic()

    def on_alarm(signum, frame):
        raise FunctionTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        if spec.get("network") != "kernel":
            _install_network(spec)
        sys.path.insert(0, spec["code_dir"])
        os.chdir(spec["code_dir"])
        module_name, func_name = spec["handler"].rsplit(".", 1)
        try:
            module = __import__(module_name.replace("/", "."), fromlist=[func_name])
            handler = getattr(module, func_name)
        except Exception as exc:  # import errors are Runtime.ImportModuleError on AWS
            finish({"error": {"errorMessage": "Unable to import module '%s': %s" % (module_name, exc),
                              "errorType": "Runtime.ImportModuleError", "requestId": "", "stackTrace": []}})
            return
        event = json.loads(spec["event"]) if spec.get("event") else {}
        value = handler(event, Context(spec, start + timeout))
        signal.setitimer(signal.ITIMER_REAL, 0)
        try:
            finish({"ok": json.dumps(value)})
        except (TypeError, ValueError) as exc:
            finish({"error": {"errorMessage": "Unable to marshal response: %s" % exc,
                              "errorType": "Runtime.MarshalError", "requestId": "", "stackTrace": []}})
    except FunctionTimeout:
        finish({"timeout": True})
    except Exception as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        traceback.print_exc(file=sys.stdout)
        finish({"error": _error(exc)})
    finally:
        sys.stdout.flush()


if __name__ == "__main__":
    main()
