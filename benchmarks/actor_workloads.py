"""Actor workloads (the actor rows of ``ray microbenchmark``), registered into core.py.

Each function takes the implementation imported as ``ray`` and returns its metrics.
"""

from __future__ import annotations

import time
from typing import Any

N_CALLS = 1000


def _best_rate(fn, n: int, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def create_and_call(ray: Any, n: int) -> float:
    """Create ``n`` actors (``num_cpus=0``), call each once; actors per second. Kills them."""

    @ray.remote(num_cpus=0)
    class A:
        def f(self):
            return None

    t0 = time.perf_counter()
    actors = [A.remote() for _ in range(n)]
    ray.get([a.f.remote() for a in actors])
    rate = n / (time.perf_counter() - t0)
    for a in actors:
        ray.kill(a)
    return rate


def register(benchmark, rate_for) -> None:
    @benchmark("actor_create", metrics=("actor_create_per_s",))
    def actor_create(ray: Any, ctx) -> dict[str, float]:
        """Actors created and each called once (``num_cpus=0``, so that CPUs never bound
        them): N ``A.remote()`` then one ``get`` of a call to each; actors per second. Each
        actor is a worker process of its own, so this is the cost of starting one."""

        return {"actor_create_per_s": create_and_call(ray, ctx.repeats(50, 200))}

    @benchmark("actor_sync", metrics=("actor_sync_per_s",))
    def actor_sync(ray: Any, ctx) -> dict[str, float]:
        """1:1 actor calls sync: ``ray.get(a.f.remote())`` back to back."""

        @ray.remote
        class A:
            def f(self):
                return None

        a = A.remote()
        ray.get(a.f.remote())
        out = {"actor_sync_per_s": rate_for(lambda: ray.get(a.f.remote()), duration=2.0)}
        ray.kill(a)
        return out

    @benchmark("actor_async", metrics=("actor_async_per_s",))
    def actor_async(ray: Any, ctx) -> dict[str, float]:
        """1:1 actor calls async: submit 1000 calls to one actor, then get them all."""

        @ray.remote
        class A:
            def f(self):
                return None

        a = A.remote()
        ray.get(a.f.remote())

        def batch():
            ray.get([a.f.remote() for _ in range(N_CALLS)])

        out = {"actor_async_per_s": _best_rate(batch, N_CALLS, ctx.repeats(3, 5))}
        ray.kill(a)
        return out

    @benchmark("actor_1n_async", metrics=("actor_1n_async_per_s",))
    def actor_1n(ray: Any, ctx) -> dict[str, float]:
        """1:n actor calls async: one driver, calls spread over n actors (n = CPUs)."""

        @ray.remote
        class A:
            def f(self):
                return None

        n = max(2, int(ray.cluster_resources().get("CPU", 2)))
        actors = [A.remote() for _ in range(n)]
        ray.get([a.f.remote() for a in actors])

        def batch():
            ray.get([actors[i % n].f.remote() for i in range(N_CALLS)])

        out = {"actor_1n_async_per_s": _best_rate(batch, N_CALLS, ctx.repeats(3, 5))}
        for a in actors:
            ray.kill(a)
        return out

    @benchmark("actor_nn_async", metrics=("actor_nn_async_per_s",))
    def actor_nn(ray: Any, ctx) -> dict[str, float]:
        """n:n actor calls async: n client actors, each calling all n server actors."""

        @ray.remote
        class Server:
            def f(self):
                return None

        @ray.remote
        class Client:
            def __init__(self, servers):
                self.servers = servers

            def run(self, calls):
                n = len(self.servers)
                ray.get([self.servers[i % n].f.remote() for i in range(calls)])

        n = max(2, int(ray.cluster_resources().get("CPU", 2)))
        servers = [Server.remote() for _ in range(n)]
        clients = [Client.remote(servers) for _ in range(n)]
        ray.get([c.run.remote(10) for c in clients])
        per_client = N_CALLS // n

        def batch():
            ray.get([c.run.remote(per_client) for c in clients])

        out = {"actor_nn_async_per_s": _best_rate(batch, per_client * n, ctx.repeats(3, 5))}
        for a in servers + clients:
            ray.kill(a)
        return out

    @benchmark("async_actor", metrics=("async_actor_sync_per_s", "async_actor_async_per_s"))
    def async_actor(ray: Any, ctx) -> dict[str, float]:
        """1:1 async-actor calls: an actor whose method is ``async def``, sync and async."""

        @ray.remote
        class AA:
            async def f(self):
                return None

        a = AA.remote()
        ray.get(a.f.remote())
        sync = rate_for(lambda: ray.get(a.f.remote()), duration=2.0)

        def batch():
            ray.get([a.f.remote() for _ in range(N_CALLS)])

        out = {"async_actor_sync_per_s": sync,
               "async_actor_async_per_s": _best_rate(batch, N_CALLS, ctx.repeats(3, 5))}
        ray.kill(a)
        return out
