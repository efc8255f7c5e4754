"""Seed 003's demonstration, timed: two 1-CPU nodes started from the command line, then a
driver running 10,000 tasks that sleep 1 ms (5 s of work on 2 CPUs: 5 s is the floor).

    python benchmarks/seed003_cluster.py --impl shoal
    python benchmarks/seed003_cluster.py --impl ray --ray-bin /tmp/rayenv/bin

Prints the seconds from the first ``f.remote()`` to the last result (best of ``--runs``),
and how the tasks were shared between the nodes. The nodes are stopped afterwards.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

DRIVER = r"""
import time
from collections import Counter
import {impl} as ray

ray.init(address={address!r})

@ray.remote
def f():
    time.sleep(0.001)
    return ray.get_runtime_context().get_node_id()

ray.get([f.remote() for _ in range(20)])  # the workers up on both nodes
best = None
for _ in range({runs}):
    t0 = time.perf_counter()
    nodes = ray.get([f.remote() for _ in range(10000)])
    dt = time.perf_counter() - t0
    best = dt if best is None else min(best, dt)
print("RESULT", round(best, 3), sorted(Counter(nodes).values()))
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--impl", choices=("shoal", "ray"), default="shoal")
    p.add_argument("--ray-bin", default="/tmp/rayenv/bin")
    p.add_argument("--runs", type=int, default=2)
    args = p.parse_args()
    root = tempfile.mkdtemp(prefix="seed003-")
    env = dict(os.environ)
    if args.impl == "shoal":
        python = sys.executable
        cli = [python, "-m", "shoal.cli"]
        env["SHOAL_SESSION_ROOT"] = root
    else:
        python = os.path.join(args.ray_bin, "python")
        cli = [os.path.join(args.ray_bin, "ray")]
        env["RAY_TMPDIR"] = root
    port = _port()
    try:
        head = subprocess.run([*cli, "start", "--head", "--port", str(port), "--num-cpus", "1",
                               "--include-dashboard", "false"], env=env, capture_output=True,
                              text=True, timeout=120)
        if head.returncode != 0:
            raise SystemExit(f"head did not start: {head.stderr[-2000:]}")
        if args.impl == "shoal":
            join = re.search(r"--address='([^']+)' --token-file='([^']+)'", head.stdout)
            extra = [f"--address={join.group(1)}", f"--token-file={join.group(2)}"]
            address = "auto"
        else:
            extra = [f"--address=127.0.0.1:{port}"]
            address = f"127.0.0.1:{port}"
        node = subprocess.run([*cli, "start", *extra, "--num-cpus", "1"], env=env,
                              capture_output=True, text=True, timeout=120)
        if node.returncode != 0:
            raise SystemExit(f"second node did not start: {node.stderr[-2000:]}")
        code = DRIVER.format(impl=args.impl, address=address, runs=args.runs)
        out = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True,
                             timeout=600)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")), None)
        if line is None:
            raise SystemExit(f"the driver failed: {out.stderr[-3000:]}")
        _, secs, shares = line.split(" ", 2)
        print(f"{args.impl}: 10,000 x 1 ms tasks on two 1-CPU nodes: {secs} s (shares {shares})")
    finally:
        subprocess.run([*cli, "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
