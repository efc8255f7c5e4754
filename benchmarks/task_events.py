"""Task throughput with task events (records) on against off, in one run.

    python benchmarks/task_events.py [--rounds 5] [--only task_sync,task_async]

Each round runs ``benchmarks/core.py --impl shoal --only ...`` twice in fresh processes,
once with ``SHOAL_TASK_EVENTS_MAX`` at its default (10000: records on) and once at 0
(records off), in alternating order so that drift of the machine hits both alike. It prints
every round and then the median of each metric with the on/off ratio (issue 7 asks that
records cost at most 10%).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run(only: str, events_max: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env = {**os.environ, "SHOAL_TASK_EVENTS_MAX": str(events_max)}
        subprocess.run([sys.executable, os.path.join(HERE, "core.py"), "--impl", "shoal",
                        "--only", only, "--json", out.name], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        with open(out.name) as f:
            return json.load(f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--only", default="task_sync,task_async")
    args = p.parse_args()
    on: list[dict] = []
    off: list[dict] = []
    for i in range(args.rounds):
        order = [(on, 10000), (off, 0)] if i % 2 == 0 else [(off, 0), (on, 10000)]
        for bucket, n in order:
            bucket.append(run(args.only, n))
        print(f"round {i + 1}: on {on[-1]}  off {off[-1]}", flush=True)
    print(f"\n{'metric':<28}{'events on':>12}{'events off':>12}{'on/off':>9}")
    for metric in sorted(on[0]):
        a = statistics.median(r[metric] for r in on)
        b = statistics.median(r[metric] for r in off)
        print(f"{metric:<28}{a:>12,.1f}{b:>12,.1f}{a / b:>9.3f}")


if __name__ == "__main__":
    main()
