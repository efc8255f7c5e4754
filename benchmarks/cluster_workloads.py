"""Cluster workloads: object transfer between two node daemons on this machine.

Written against ``cluster_utils.Cluster`` (the same API in Ray and shoal), so the one
function measures both. Registered into core.py as an isolated benchmark: it starts and
stops its own two-node cluster.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

SIZES = {"1mb": 1 << 20, "100mb": 100 << 20, "1gb": 1 << 30}


def register(benchmark) -> None:
    @benchmark("transfer", metrics=tuple(f"transfer_{k}_mb_per_s" for k in SIZES),
               isolated=True)
    def transfer(ray: Any, ctx) -> dict[str, float]:
        """Bandwidth of moving an object made on node A to a task on node B (MB/s).

        Time of ``get`` of B's task minus a same-size local read, best of several runs.
        """
        import numpy as np

        cluster_utils = importlib.import_module(f"{ray.__name__}.cluster_utils")
        store = 3 << 30
        c = cluster_utils.Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "resources": {"a": 1}, "object_store_memory": store})
        c.add_node(num_cpus=1, resources={"b": 1}, object_store_memory=store)
        c.connect()
        try:
            @ray.remote(resources={"a": 1})
            def make(n):
                return np.ones(n, dtype=np.uint8)

            @ray.remote(resources={"b": 1})
            def touch(arr):
                return int(arr[-1])

            @ray.remote(resources={"b": 1})
            def make_b(n):
                return np.ones(n, dtype=np.uint8)

            out = {}
            for label, size in SIZES.items():
                runs = ctx.repeats(2, 3) if size >= (1 << 30) else ctx.repeats(3, 5)
                best = float("inf")
                for _ in range(runs):
                    src = make.remote(size)
                    ray.wait([src])
                    local = make_b.remote(size)
                    ray.wait([local])
                    t0 = time.perf_counter()
                    ray.get(touch.remote(local))  # same path, no transfer: the baseline
                    base = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    ray.get(touch.remote(src))
                    moved = time.perf_counter() - t0
                    best = min(best, max(moved - base, 1e-6))
                    del src, local
                out[f"transfer_{label}_mb_per_s"] = (size / (1 << 20)) / best
            return out
        finally:
            ray.shutdown()  # Ray refuses to remove the node its driver is connected to
            c.shutdown()
