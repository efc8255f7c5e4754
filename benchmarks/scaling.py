"""Costs as work grows: the same Ray-API workloads at growing sizes, for shoal or Ray.

    python benchmarks/scaling.py --impl shoal [--sizes 1000,10000,100000] [--json OUT]
    /tmp/rayenv/bin/python benchmarks/scaling.py --impl ray --sizes 1000,10000

Each workload runs in a fresh ``ray.init(num_cpus=2)`` per size, and prints one line per
size. Memory is the driver's resident set (psutil), measured after a ``gc.collect()``:

- ``tasks``: submit n no-op tasks, then ``get`` them all: driver bytes per pending task
  (RSS after submitting minus before) and tasks per second from the first submit to the
  last result.
- ``puts``: ``put`` n small objects, keep the refs: driver bytes per ref; then drop them all:
  seconds until the driver's refs are gone (``del`` of the list).
- ``wait``: ``wait`` on n refs that are all ready, with ``num_returns=n``: waits per second.
- ``actors``: create n actors (``num_cpus=0``) and call each once: actors per second; then
  kill them.

Nothing may grow worse than linearly: per-item figures should stay flat across sizes.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import sys
import time

import actor_workloads  # beside this script, as core.py imports it
import psutil


def _rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def tasks(ray, n: int) -> dict:
    @ray.remote
    def noop():
        return None

    ray.get([noop.remote() for _ in range(100)])  # warm: workers up
    before = _rss()
    t0 = time.perf_counter()
    refs = [noop.remote() for _ in range(n)]
    per_task = (_rss() - before) / n
    for i in range(0, n, 10_000):  # gets in slices: what a program with n results does
        ray.get(refs[i:i + 10_000])
    rate = n / (time.perf_counter() - t0)
    del refs
    return {"bytes_per_pending_task": per_task, "tasks_per_s": rate}


def puts(ray, n: int) -> dict:
    before = _rss()
    t0 = time.perf_counter()
    refs = [ray.put(i) for i in range(n)]
    put_rate = n / (time.perf_counter() - t0)
    per_ref = (_rss() - before) / n
    t1 = time.perf_counter()
    del refs
    gc.collect()
    return {"bytes_per_ref": per_ref, "puts_per_s": put_rate,
            "free_all_s": time.perf_counter() - t1}


def wait(ray, n: int) -> dict:
    refs = [ray.put(i) for i in range(n)]
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        ready, _ = ray.wait(refs, num_returns=n)
        best = min(best, time.perf_counter() - t0)
        assert len(ready) == n
    return {"waits_per_s": 1 / best, "refs_per_s": n / best}


def actors(ray, n: int) -> dict:
    return {"actors_per_s": actor_workloads.create_and_call(ray, n)}


WORKLOADS = {"tasks": tasks, "puts": puts, "wait": wait, "actors": actors}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--impl", choices=("shoal", "ray"), default="shoal")
    p.add_argument("--sizes", default="1000,10000,100000")
    p.add_argument("--only", default=",".join(WORKLOADS))
    p.add_argument("--actor-sizes", default="10,100,1000",
                   help="sizes for the actors workload (each actor is a process)")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    if args.impl == "shoal":
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    ray = importlib.import_module(args.impl)
    out: dict = {}
    for name in args.only.split(","):
        sizes = args.actor_sizes if name == "actors" else args.sizes
        for n in (int(s) for s in sizes.split(",")):
            ray.init(num_cpus=2, include_dashboard=False)
            try:
                res = WORKLOADS[name](ray, n)
            finally:
                ray.shutdown()
            out[f"{name}/{n}"] = res
            figures = ", ".join(f"{k} {v:,.1f}" for k, v in res.items())
            print(f"{args.impl} {name:7s} n={n:>9,}: {figures}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
