#!/usr/bin/python3
"""Runs a command (its stdout discarded) and prints its wall time, CPU time (user + system, the command and its
children) and peak RSS (ru_maxrss of the waited-for process: its VmHWM at exit, in KiB) as one
JSON line, the same measure for every peer of bench/snapshot.

usage: measure.py CMD ARGS..."""
import json
import resource
import subprocess
import sys
import time

t0 = time.monotonic()
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)  # the peers' output (awsnet's --json events) is not measured
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "hwm_kib": ru.ru_maxrss}))
