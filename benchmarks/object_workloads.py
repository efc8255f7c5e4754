"""Object workloads: refs inside objects, wait on many refs, a store under spilling pressure.

Registered into core.py; each function takes the implementation imported as ``ray``.
"""

from __future__ import annotations

import time
from typing import Any


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def register(benchmark, rate_for) -> None:
    @benchmark("get_10k_refs", metrics=("get_obj_10k_refs_per_s",))
    def get_10k_refs(ray: Any, ctx) -> dict[str, float]:
        """ray microbenchmark's "get object containing 10k refs": a task returns a list of
        10,000 refs it put; the driver gets that list (gets per second)."""

        @ray.remote
        def make():
            return [ray.put(i) for i in range(10000)]

        ref = make.remote()
        ray.get(ref)
        t = _best(lambda: ray.get(ref), ctx.repeats(3, 10))
        return {"get_obj_10k_refs_per_s": 1 / t}

    @benchmark("wait_1k_refs", metrics=("wait_1k_refs_per_s",))
    def wait_1k(ray: Any, ctx) -> dict[str, float]:
        """ray microbenchmark's "wait 1k refs": ray.wait for all of 1,000 finished tasks."""

        @ray.remote
        def small(i):
            return i

        refs = [small.remote(i) for i in range(1000)]
        ray.get(refs)

        def once():
            ready, _ = ray.wait(refs, num_returns=len(refs))
            assert len(ready) == 1000

        return {"wait_1k_refs_per_s": 1 / _best(once, ctx.repeats(5, 20))}

    @benchmark("spill", metrics=("put_spilling_mb_per_s", "get_spilled_mb_per_s"),
               isolated=True)
    def spilling(ray: Any, ctx) -> dict[str, float]:
        """A 256 MB store: put 1.25 GB of 10 MB objects (most spill), then get them all back
        (most restore); MB per second for each phase."""
        import numpy as np

        ray.init(num_cpus=2, object_store_memory=256 * 1024 * 1024)
        try:
            n, size = 125, 10 * 1024 * 1024
            arr = np.ones(size, dtype=np.uint8)
            t0 = time.perf_counter()
            refs = [ray.put(arr) for _ in range(n)]
            put_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            for r in refs:
                v = ray.get(r)
                assert v.nbytes == size
                del v
            get_s = time.perf_counter() - t0
            del refs
            mb = n * size / (1 << 20)
            return {"put_spilling_mb_per_s": mb / put_s, "get_spilled_mb_per_s": mb / get_s}
        finally:
            ray.shutdown()
