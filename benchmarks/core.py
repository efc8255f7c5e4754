"""Core microbenchmarks for shoal, runnable unchanged against Ray.

    python benchmarks/core.py --impl shoal [--quick] [--json OUT]
    python benchmarks/core.py --impl ray   [--quick] [--json OUT]

The chosen implementation is imported as ``ray`` and only its public, Ray-compatible API is used,
so the very same code measures both. One line is printed per metric; ``--json`` also writes a
flat ``{metric: value}`` dict. Metric names end in their unit: ``_per_s`` (higher is better),
``_ms`` or ``_s`` (lower is better).

Benchmarks live in a registry (:data:`BENCHMARKS`). To add one (actor benchmarks, say), write a
small function taking the imported ``ray`` module and a :class:`Context`, returning a dict of
metrics, and decorate it with :func:`benchmark`::

    @benchmark("actor_sync", metrics=("actor_sync_per_s",))
    def bench_actor_sync(ray, ctx):
        ...
        return {"actor_sync_per_s": rate}

Benchmarks with ``isolated=True`` run before the driver calls ``ray.init()`` (they start their own
processes); all others run inside one driver session.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
IMPLS = ("shoal", "ray")


# --------------------------------------------------------------------------------------------
# Registry


@dataclass
class Context:
    """What a benchmark may need besides the ``ray`` module itself."""

    impl: str
    quick: bool
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    python: str = sys.executable

    def repeats(self, quick: int, full: int) -> int:
        return quick if self.quick else full


BenchFn = Callable[[Any, Context], dict[str, float]]


@dataclass
class Benchmark:
    name: str
    fn: BenchFn
    metrics: tuple[str, ...]
    group: str = "core"
    isolated: bool = False  # runs before the driver's ray.init(), in processes of its own


BENCHMARKS: dict[str, Benchmark] = {}


def benchmark(
    name: str, *, metrics: tuple[str, ...], group: str = "core", isolated: bool = False
) -> Callable[[BenchFn], BenchFn]:
    """Register ``fn(ray, ctx) -> {metric: value}`` under ``name``."""

    def register(fn: BenchFn) -> BenchFn:
        if name in BENCHMARKS:
            raise ValueError(f"benchmark {name!r} registered twice")
        BENCHMARKS[name] = Benchmark(name, fn, tuple(metrics), group, isolated)
        return fn

    return register


# --------------------------------------------------------------------------------------------
# Timing helpers


def best_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    """Smallest wall time in seconds of ``fn()`` over ``repeats`` timed calls."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def rate_for(fn: Callable[[], Any], duration: float, warmup_s: float = 0.3) -> float:
    """Calls of ``fn()`` per second, run back to back for about ``duration`` seconds."""
    end = time.perf_counter() + warmup_s
    while time.perf_counter() < end:
        fn()
    n = 0
    t0 = time.perf_counter()
    end = t0 + duration
    while True:
        fn()
        n += 1
        now = time.perf_counter()
        if now >= end:
            return n / (now - t0)


_registered: list = []


def _register_workloads() -> None:
    """Workload families kept in their own modules (actors, ...)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import actor_workloads
    import cluster_workloads
    import object_workloads

    actor_workloads.register(benchmark, rate_for)
    cluster_workloads.register(benchmark)
    object_workloads.register(benchmark, rate_for)


def unit_of(metric: str) -> str:
    if metric.endswith("_per_s"):
        return "/s"
    if metric.endswith("_ms"):
        return "ms"
    if metric.endswith("_s"):
        return "s"
    return ""


def fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


# --------------------------------------------------------------------------------------------
# Startup: a fresh interpreter from process start to the first task result

_STARTUP_MARK = "@@STARTUP@@"

_STARTUP_SCRIPT = """\
import time
t0 = time.perf_counter()
import {module} as ray
t_import = time.perf_counter()
ray.init(**{init_kwargs!r})
t_init = time.perf_counter()

@ray.remote
def f():
    return 1

assert ray.get(f.remote()) == 1
t_result = time.perf_counter()
print({mark!r}, t_import - t0, t_init - t0, t_result - t0, flush=True)
ray.shutdown()
"""


def child_env(impl: str) -> dict[str, str]:
    """Environment for a fresh process that must start its own cluster, not join ours."""
    env = dict(os.environ)
    env.pop(f"{impl.upper()}_ADDRESS", None)
    env.pop("RAY_ADDRESS", None)
    return env


def _startup_once(ctx: Context, timeout: float) -> tuple[float, float, float, float]:
    script = _STARTUP_SCRIPT.format(
        module=ctx.impl, init_kwargs=ctx.init_kwargs, mark=_STARTUP_MARK
    )
    with tempfile.TemporaryFile(mode="w+") as err:
        t_start = time.perf_counter()
        proc = subprocess.Popen(
            [ctx.python, "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env=child_env(ctx.impl),
            text=True,
        )
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            inside = None
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(_STARTUP_MARK):
                    outside = time.perf_counter() - t_start
                    inside = [float(x) for x in line.split()[1:]]
                    break
            # Shutdown and interpreter exit are not counted, but must finish before the next run.
            proc.stdout.read()
            rc = proc.wait()
        finally:
            watchdog.cancel()
        if inside is None or rc != 0:
            err.seek(0)
            tail = err.read()[-3000:]
            raise RuntimeError(f"startup subprocess failed (rc={rc}):\n{tail}")
    t_import, t_init, t_result = inside
    return outside, t_import, t_init, t_result


@benchmark(
    "startup",
    metrics=(
        "init_to_first_result_s",
        "init_to_first_result_inside_s",
        "import_s",
        "init_s",
    ),
    isolated=True,
)
def bench_startup(ray: Any, ctx: Context) -> dict[str, float]:
    """Fresh interpreter: ``import; ray.init(); ray.get(f.remote())``, best of 3.

    ``init_to_first_result_s`` is measured from outside (process spawn, interpreter start
    included) to the moment the result line is read; ``init_to_first_result_inside_s`` from just
    before the import to the result, inside the child. ``import_s`` and ``init_s`` are the
    import and ``ray.init()`` parts of the inside time.
    """
    runs = [_startup_once(ctx, timeout=180.0) for _ in range(3)]
    return {
        "init_to_first_result_s": min(r[0] for r in runs),
        "init_to_first_result_inside_s": min(r[3] for r in runs),
        "import_s": min(r[1] for r in runs),
        "init_s": min(r[2] - r[1] for r in runs),
    }


# --------------------------------------------------------------------------------------------
# Tasks


@benchmark("task_sync", metrics=("task_sync_per_s",))
def bench_task_sync(ray: Any, ctx: Context) -> dict[str, float]:
    """``ray.get(f.remote())`` round trips per second for a no-op task, over about 2 s."""

    @ray.remote
    def noop():
        return None

    def round_trip():
        ray.get(noop.remote())

    return {"task_sync_per_s": rate_for(round_trip, duration=2.0, warmup_s=0.5)}


@benchmark("task_async", metrics=("task_async_per_s",))
def bench_task_async(ray: Any, ctx: Context) -> dict[str, float]:
    """Submit 1000 no-op tasks, then ``ray.get`` them all; tasks per second, best batch."""
    n = 1000

    @ray.remote
    def noop():
        return None

    def batch():
        refs = [noop.remote() for _ in range(n)]
        ray.get(refs)

    return {"task_async_per_s": n / best_time(batch, repeats=ctx.repeats(3, 10), warmup=1)}


# --------------------------------------------------------------------------------------------
# Small objects


@benchmark("put_small", metrics=("put_small_per_s",))
def bench_put_small(ray: Any, ctx: Context) -> dict[str, float]:
    """``ray.put(i)`` of a small int; puts per second, best batch of 1000."""
    n = 1000
    batches = ctx.repeats(10, 30)
    best = float("inf")
    for i in range(batches + 1):  # the first batch is a warm-up
        refs = []
        t0 = time.perf_counter()
        for j in range(n):
            refs.append(ray.put(j))
        dt = time.perf_counter() - t0
        del refs  # freeing the objects is not timed
        if i:
            best = min(best, dt)
    return {"put_small_per_s": n / best}


@benchmark("get_small", metrics=("get_small_per_s",))
def bench_get_small(ray: Any, ctx: Context) -> dict[str, float]:
    """``ray.get`` of a list of 1000 refs to small put objects; objects per second."""
    n = 1000
    refs = [ray.put(i) for i in range(n)]

    def get_all():
        values = ray.get(refs)
        assert len(values) == n

    return {"get_small_per_s": n / best_time(get_all, repeats=ctx.repeats(10, 30), warmup=2)}


# --------------------------------------------------------------------------------------------
# Large objects

LARGE_BYTES = 200 * 1024 * 1024


@benchmark(
    "large_object",
    metrics=("memcpy_large_ms", "copyto_large_ms", "put_large_ms", "get_large_ms"),
)
def bench_large_object(ray: Any, ctx: Context) -> dict[str, float]:
    """A 200 MiB uint8 numpy array: plain ``arr.copy()`` baseline, ``ray.put``, ``ray.get``.

    Each is the best of 5 after one warm-up. ``memcpy_large_ms`` is ``arr.copy()`` (a fresh
    allocation, so it pays page faults); ``copyto_large_ms`` is ``np.copyto`` into an already
    touched buffer (the bare copy, for reference). ``get_large_ms`` is ``ray.get(ref)`` in the
    driver on an object the driver put (zero-copy is expected: the result may be read-only).
    """
    import numpy as np

    repeats = 5
    arr = np.ones(LARGE_BYTES, dtype=np.uint8)

    memcpy_s = best_time(arr.copy, repeats=repeats, warmup=1)
    dst = np.zeros_like(arr)
    dst.fill(0)  # touch every page so only the copy is timed
    copy_into = functools.partial(np.copyto, dst, arr)
    copyto_s = best_time(copy_into, repeats=repeats, warmup=1)
    del copy_into, dst

    best_put = float("inf")
    for i in range(repeats + 1):  # the first put is a warm-up
        t0 = time.perf_counter()
        ref = ray.put(arr)
        dt = time.perf_counter() - t0
        del ref  # releasing the object is not timed
        gc.collect()
        if i:
            best_put = min(best_put, dt)

    ref = ray.put(arr)
    best_get = float("inf")
    for i in range(repeats + 1):  # the first get is a warm-up
        t0 = time.perf_counter()
        out = ray.get(ref)
        dt = time.perf_counter() - t0
        if out.nbytes != arr.nbytes or out[0] != 1 or out[-1] != 1:
            raise AssertionError("ray.get returned a different array")
        del out
        if i:
            best_get = min(best_get, dt)
    del ref

    return {
        "memcpy_large_ms": memcpy_s * 1e3,
        "copyto_large_ms": copyto_s * 1e3,
        "put_large_ms": best_put * 1e3,
        "get_large_ms": best_get * 1e3,
    }


# --------------------------------------------------------------------------------------------
# Runner


def import_impl(impl: str) -> Any:
    """Import ``impl`` (shoal falls back to this checkout's ``src/`` if it is not installed)."""
    if impl == "shoal" and importlib.util.find_spec("shoal") is None:
        src = REPO_ROOT / "src"
        if (src / "shoal").is_dir():
            sys.path.insert(0, str(src))
            # Processes shoal starts (and the startup benchmark's child) must find it too.
            old = os.environ.get("PYTHONPATH")
            os.environ["PYTHONPATH"] = str(src) + (os.pathsep + old if old else "")
    return importlib.import_module(impl)


def select(only: str | None) -> list[Benchmark]:
    if not _registered:
        _registered.append(True)
        _register_workloads()
    if not only:
        return list(BENCHMARKS.values())
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    chosen = [
        b
        for b in BENCHMARKS.values()
        if any(w in (b.name, b.group) or w in b.metrics for w in wanted)
    ]
    if not chosen:
        raise SystemExit(f"no benchmark matches {only!r}; see --list")
    return chosen


def run_one(bench: Benchmark, ray: Any, ctx: Context, results: dict[str, float]) -> bool:
    try:
        metrics = bench.fn(ray, ctx)
    except Exception:
        print(f"# {bench.name}: FAILED", flush=True)
        traceback.print_exc()
        return False
    for metric, value in metrics.items():
        results[metric] = float(value)
        print(f"{metric:<32} {fmt(value):>14} {unit_of(metric)}", flush=True)
    return True


def run_all(benches: list[Benchmark], impl: str, ctx: Context, results: dict[str, float]) -> bool:
    """Isolated benchmarks first, then the rest in one driver session; False if any failed."""
    try:
        ray = import_impl(impl)
    except Exception:
        print(f"# cannot import {impl}", flush=True)
        traceback.print_exc()
        return False
    version = getattr(ray, "__version__", "?")
    print(f"# {impl} {version}, python {sys.version.split()[0]}, quick={ctx.quick}", flush=True)

    ok = True
    for bench in (b for b in benches if b.isolated):
        ok &= run_one(bench, ray, ctx, results)
    in_session = [b for b in benches if not b.isolated]
    if not in_session:
        return ok
    try:
        ray.init(**ctx.init_kwargs)
    except Exception:
        print("# ray.init() failed; skipping " + ", ".join(b.name for b in in_session), flush=True)
        traceback.print_exc()
        return False
    try:
        for bench in in_session:
            ok &= run_one(bench, ray, ctx, results)
    finally:
        ray.shutdown()
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", choices=IMPLS, default="shoal", help="imported as `ray`")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--json", metavar="OUT", help="write {metric: value} to this file")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated benchmarks/groups/metrics")
    parser.add_argument("--num-cpus", type=int, default=None, help="ray.init(num_cpus=N)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)

    if args.list:
        for b in BENCHMARKS.values():
            print(f"{b.name:<16} {b.group:<8} {', '.join(b.metrics)}")
        return 0

    benches = select(args.only)
    init_kwargs = {} if args.num_cpus is None else {"num_cpus": args.num_cpus}
    ctx = Context(impl=args.impl, quick=args.quick, init_kwargs=init_kwargs)
    results: dict[str, float] = {}
    t_total = time.perf_counter()
    try:
        ok = run_all(benches, args.impl, ctx, results)
    finally:
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"# total {time.perf_counter() - t_total:.1f} s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
