"""The VPC resolvers of the network twin: one process answering DNS at each VPC's base + 2.

Usage: python3 resolver.py CONFIG.json   (as root, in the host's namespaces)
CONFIG: {"vpcs": [{"ns": router namespace, "address": base + 2,
                   "records": {"name.": "a.b.c.d", ...}}]}
For each VPC it enters the router's namespace (setns), binds UDP port 53 on the address there (a
socket stays in the namespace it was made in) and answers: an A query for a name it holds with
its address (TTL 5), another type of query for such a name with no answer, a name under a domain
it serves (rds.amazonaws.com) that it does not hold with NXDOMAIN, any other name with REFUSED
(nothing leaves the twin to ask the internet). Each VPC sees its own records (an RDS endpoint
resolves as seen from that VPC). It prints "ready" once every socket is bound.
"""
import ctypes
import json
import os
import select
import socket
import struct
import sys

CLONE_NEWNET = 0x40000000
SERVED = ("rds.amazonaws.com.",)
_libc = ctypes.CDLL(None, use_errno=True)


def setns_fd(fd, what):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns " + what)


def parse_question(msg):
    """(id, flags, qname lower-case with a final dot, qtype, end of question) or None."""
    if len(msg) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", msg[:6])
    if qdcount != 1 or flags & 0x8000:
        return None
    labels, pos = [], 12
    while True:
        if pos >= len(msg):
            return None
        n = msg[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0 or pos + 1 + n > len(msg) or len(labels) > 127:
            return None
        labels.append(msg[pos + 1:pos + 1 + n].decode("ascii", "replace").lower())
        pos += 1 + n
    if pos + 4 > len(msg):
        return None
    qtype, _ = struct.unpack("!HH", msg[pos:pos + 4])
    return ident, flags, ".".join(labels) + ".", qtype, pos + 4


def answer(msg, records):
    q = parse_question(msg)
    if q is None:
        return None
    ident, flags, name, qtype, end = q
    question = msg[12:end]
    rd = flags & 0x0100
    address = records.get(name)
    if address is not None:
        rcode, answers = 0, []
        if qtype == 1:
            answers.append(b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + socket.inet_aton(address))
    elif any(name == d or name.endswith("." + d) for d in SERVED):
        rcode, answers = 3, []
    else:
        rcode, answers = 5, []
    head = struct.pack("!HHHHHH", ident, 0x8000 | 0x0400 * (address is not None) | rd | 0x0080 | rcode, 1,
                       len(answers), 0, 0)
    return head + question + b"".join(answers)


def main():
    with open(sys.argv[1]) as f:
        config = json.load(f)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    socks = {}
    for vpc in config.get("vpcs", []):
        fd = os.open("/run/netns/" + vpc["ns"], os.O_RDONLY)
        try:
            setns_fd(fd, vpc["ns"])
        finally:
            os.close(fd)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((vpc["address"], 53))
        records = {k.lower().rstrip(".") + ".": v for k, v in (vpc.get("records") or {}).items()}
        socks[s.fileno()] = (s, records)
    setns_fd(home, "home")
    os.close(home)
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select(list(socks), [], [])
        for fd in ready:
            s, records = socks[fd]
            try:
                msg, peer = s.recvfrom(4096)
            except OSError:
                continue
            out = answer(msg, records)
            if out is not None:
                try:
                    s.sendto(out, peer)
                except OSError:
                    pass


if __name__ == "__main__":
    main()
