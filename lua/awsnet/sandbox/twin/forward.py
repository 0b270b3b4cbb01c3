"""Forwards TCP from an address inside a network namespace of the twin to a server of the host.

Usage: python3 forward.py NAMESPACE ADDRESS PORT TARGET_PORT   (as root, in the host's namespaces)
It listens on ADDRESS:PORT inside NAMESPACE (an RDS instance's ENI: its address is only there) and
relays each connection, byte for byte in both directions, to 127.0.0.1:TARGET_PORT in the host (the
instance's MariaDB). The listening socket is made after setns into the namespace and the process
then returns to the host's: a socket stays in the namespace it was made in. It prints "ready"
once listening.
"""
import ctypes
import os
import selectors
import socket
import sys

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def setns_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + path)
    finally:
        os.close(fd)


def main():
    ns, address, port, target = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    home = "/proc/self/ns/net"
    home_fd = os.open(home, os.O_RDONLY)
    setns_path("/run/netns/" + ns)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(64)
    listener.setblocking(False)
    if _libc.setns(home_fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns back")
    os.close(home_fd)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                try:
                    client, _ = listener.accept()
                except OSError:
                    continue
                server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    server.connect(("127.0.0.1", target))
                except OSError:
                    client.close()
                    server.close()
                    continue
                client.setblocking(False)
                server.setblocking(False)
                sel.register(client, selectors.EVENT_READ, server)
                sel.register(server, selectors.EVENT_READ, client)
                continue
            src, dst = key.fileobj, key.data
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if data:
                try:
                    dst.setblocking(True)
                    dst.sendall(data)
                    dst.setblocking(False)
                    continue
                except OSError:
                    pass
            for s in (src, dst):
                try:
                    sel.unregister(s)
                except (KeyError, ValueError):
                    pass
                s.close()


if __name__ == "__main__":
    main()
