"""Run benchmarks/core.py for shoal and for Ray, then print them side by side.

    python benchmarks/compare.py [--quick] [--ray-python /tmp/rayenv/bin/python] [--json OUT]

shoal runs under this interpreter (``sys.executable``), Ray under ``--ray-python`` (default
``/tmp/rayenv/bin/python`` if it exists; Ray is skipped with a note otherwise), each in a
subprocess of its own. In the table's ratio column > 1 always means shoal is better: shoal/ray
for rates (``*_per_s``), ray/shoal for times (``*_ms``, ``*_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORE = HERE / "core.py"
DEFAULT_RAY_PYTHON = "/tmp/rayenv/bin/python"

# metric -> (kind, number, label). Kinds: "ratio" (the ratio column must be >= number),
# "max_ms" (shoal's own value must be <= number), "vs_memcpy" (shoal's value must be <= number
# times shoal's memcpy_large_ms from the same run).
TARGETS: dict[str, tuple[str, float, str]] = {
    "init_to_first_result_s": ("ratio", 10.0, ">= 10x ray"),
    "task_sync_per_s": ("ratio", 5.0, ">= 5x ray"),
    "task_async_per_s": ("ratio", 5.0, ">= 5x ray"),
    "get_large_ms": ("max_ms", 1.0, "< 1 ms"),
    "transfer_1mb_mb_per_s": ("ratio", 1.0, ">= ray"),
    "transfer_100mb_mb_per_s": ("ratio", 1.0, ">= ray"),
    "transfer_1gb_mb_per_s": ("ratio", 1.0, ">= ray"),
    "get_obj_10k_refs_per_s": ("ratio", 3.0, ">= 3x ray"),
    "wait_1k_refs_per_s": ("ratio", 3.0, ">= 3x ray"),
    "put_spilling_mb_per_s": ("ratio", 1.0, ">= ray"),
    "get_spilled_mb_per_s": ("ratio", 1.0, ">= ray"),
    "actor_sync_per_s": ("ratio", 5.0, ">= 5x ray"),
    "actor_async_per_s": ("ratio", 5.0, ">= 5x ray"),
    "actor_1n_async_per_s": ("ratio", 3.0, ">= 3x ray"),
    "actor_nn_async_per_s": ("ratio", 8.0, ">= 8x ray"),
    "async_actor_sync_per_s": ("ratio", 3.0, ">= 3x ray"),
    "async_actor_async_per_s": ("ratio", 3.0, ">= 3x ray"),
    "put_large_ms": ("vs_memcpy", 1.1, "<= 1.1x memcpy"),
    "actor_create_per_s": ("ratio", 3.0, ">= 3x ray"),
}


def higher_is_better(metric: str) -> bool:
    return metric.endswith("_per_s")


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def run_core(label: str, python: str, impl: str, passthrough: list[str], timeout: float) -> dict:
    """Run core.py in a subprocess (its output streams through) and return its JSON."""
    print(f"== {label}: {python} {CORE.name} --impl {impl} {' '.join(passthrough)}", flush=True)
    fd, out = tempfile.mkstemp(prefix=f"bench-{impl}-", suffix=".json")
    os.close(fd)
    try:
        cmd = [python, str(CORE), "--impl", impl, "--json", out, *passthrough]
        try:
            rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            print(f"== {label}: timed out after {timeout:.0f} s", flush=True)
            rc = None
        try:
            results = json.loads(Path(out).read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            results = {}
        if rc != 0:
            print(f"== {label}: exit status {rc}; {len(results)} metrics collected", flush=True)
        return results
    finally:
        Path(out).unlink(missing_ok=True)


def ratio(metric: str, shoal: float | None, ray: float | None) -> float | None:
    """> 1 means shoal is better."""
    if shoal is None or ray is None or shoal <= 0 or ray <= 0:
        return None
    return shoal / ray if higher_is_better(metric) else ray / shoal


def target_status(metric: str, shoal: dict, r: float | None) -> str:
    if metric not in TARGETS:
        return ""
    kind, number, label = TARGETS[metric]
    value = shoal.get(metric)
    if kind == "ratio":
        met = None if r is None else r >= number
    elif kind == "max_ms":
        met = None if value is None else value < number
    else:  # vs_memcpy
        base = shoal.get("memcpy_large_ms")
        met = None if value is None or base is None else value <= number * base
    mark = {True: "ok", False: "MISS", None: "?"}[met]
    return f"{label} [{mark}]"


def print_table(shoal: dict, ray: dict) -> None:
    metrics = list(shoal) + [m for m in ray if m not in shoal]
    rows = [("metric", "shoal", "ray", "ratio (>1: shoal better)", "target")]
    for m in metrics:
        s, r = shoal.get(m), ray.get(m)
        q = ratio(m, s, r)
        kind = "shoal/ray" if higher_is_better(m) else "ray/shoal"
        rows.append(
            (
                m,
                fmt(s),
                fmt(r),
                "-" if q is None else f"{q:.2f}x ({kind})",
                target_status(m, shoal, q),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:4], widths[1:4], strict=True)
        ]
        print("  ".join([*cells, row[4]]).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to core.py")
    parser.add_argument("--only", metavar="NAMES", help="pass --only NAMES to core.py")
    parser.add_argument("--num-cpus", type=int, default=None, help="pass --num-cpus to core.py")
    parser.add_argument(
        "--ray-python",
        default=DEFAULT_RAY_PYTHON if Path(DEFAULT_RAY_PYTHON).exists() else None,
        help=f"interpreter with Ray installed (default: {DEFAULT_RAY_PYTHON} if it exists)",
    )
    parser.add_argument("--no-ray", action="store_true", help="run shoal only")
    parser.add_argument("--timeout", type=float, default=900.0, help="per-implementation limit, s")
    parser.add_argument("--json", metavar="OUT", help='write {"shoal": {...}, "ray": {...}}')
    args = parser.parse_args(argv)

    passthrough = []
    if args.quick:
        passthrough.append("--quick")
    if args.only:
        passthrough += ["--only", args.only]
    if args.num_cpus is not None:
        passthrough += ["--num-cpus", str(args.num_cpus)]

    shoal = run_core("shoal", sys.executable, "shoal", passthrough, args.timeout)
    if args.no_ray:
        ray: dict = {}
    elif args.ray_python is None:
        print(f"== ray: skipped: no {DEFAULT_RAY_PYTHON}; pass --ray-python", flush=True)
        ray = {}
    else:
        ray = run_core("ray", args.ray_python, "ray", passthrough, args.timeout)

    print_table(shoal, ray)
    if args.json:
        Path(args.json).write_text(json.dumps({"shoal": shoal, "ray": ray}, indent=2) + "\n")
    return 0 if shoal else 1


if __name__ == "__main__":
    sys.exit(main())
