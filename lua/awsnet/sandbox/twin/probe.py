"""The network twin's probe and responder: one process that answers and probes inside the twin's
network namespaces (it enters each with setns; a socket stays in the namespace it was made in).

Usage: python3 probe.py < REQUEST.json > ANSWER.json (run as root, in the host's namespaces)
REQUEST: {"timeout": seconds,
          "listen": [{"ns": name, "ip": address, "tcp": [ports], "udp": [ports]}],
          "flows": [{"id": key, "ns": name, "src": address, "dst": address,
                     "proto": "tcp"|"udp"|"icmp", "port": n, "sport": n}]}
ANSWER: {"<id>": true | false}: a TCP connect completed, a UDP datagram came back from the
responder, an ICMP echo was answered, within the timeout (every flow starts at once).
"""
import ctypes
import errno
import json
import os
import select
import socket
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def enter(ns):
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + ns)
    finally:
        os.close(fd)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def main():
    req = json.load(sys.stdin)
    timeout = min(float(req.get("timeout", 0.3)), 5.0)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    servers = {}   # fd -> (sock, kind)
    for item in req.get("listen", []):
        enter(item["ns"])
        for port in item.get("tcp", []):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((item["ip"], int(port)))
            s.listen(64)
            s.setblocking(False)
            servers[s.fileno()] = (s, "tcp-listen")
        for port in item.get("udp", []):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((item["ip"], int(port)))
            s.setblocking(False)
            servers[s.fileno()] = (s, "udp-echo")
    result = {}
    pending = {}   # fd -> (flow, sock)
    writers = set()
    for n, flow in enumerate(req.get("flows", [])):
        key = str(flow["id"])
        result[key] = False
        enter(flow["ns"])
        proto = flow["proto"]
        if proto == "tcp":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((flow["src"], int(flow.get("sport") or 0)))
            s.setblocking(False)
            rc = s.connect_ex((flow["dst"], int(flow["port"])))
            if rc not in (0, errno.EINPROGRESS):
                s.close()
                continue
            writers.add(s.fileno())
        elif proto == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((flow["src"], int(flow.get("sport") or 0)))
            s.setblocking(False)
            s.sendto(("probe " + key).encode(), (flow["dst"], int(flow["port"])))
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            s.bind((flow["src"], 0))
            s.setblocking(False)
            ident = (os.getpid() + n) & 0xFFFF
            flow["_ident"] = ident
            head = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
            body = b"awsnet-twin-probe"
            s.sendto(struct.pack("!BBHHH", 8, 0, checksum(head + body), ident, 1) + body, (flow["dst"], 0))
        pending[s.fileno()] = (flow, s)
    os.close(home)
    deadline = time.monotonic() + timeout
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        readers = [fd for fd in pending if fd not in writers] + list(servers)
        r, w, _ = select.select(readers, list(writers), [], left)
        for fd in w:
            flow, s = pending.pop(fd)
            writers.discard(fd)
            result[str(flow["id"])] = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            s.close()
        for fd in r:
            if fd in servers:
                s, kind = servers[fd]
                try:
                    if kind == "tcp-listen":
                        c, _ = s.accept()
                        c.close()
                    else:
                        data, peer = s.recvfrom(2048)
                        s.sendto(data, peer)
                except OSError:
                    pass
                continue
            if fd not in pending:
                continue
            flow, s = pending[fd]
            try:
                data, peer = s.recvfrom(2048)
            except OSError:
                continue
            if flow["proto"] == "udp":
                ok = peer[0] == flow["dst"] and peer[1] == int(flow["port"])
            else:
                ihl = (data[0] & 0x0F) * 4
                typ, _, _, ident, _ = struct.unpack("!BBHHH", data[ihl:ihl + 8])
                ok = typ == 0 and ident == flow["_ident"] and peer[0] == flow["dst"]
            if ok:
                result[str(flow["id"])] = True
                pending.pop(fd)
                s.close()
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
