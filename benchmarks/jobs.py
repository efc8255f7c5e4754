"""The Jobs API timed against Ray's, in one run: from ``submit_job`` to the job's first line
of output read through ``tail_job_logs``, for a trivial job (``echo first``) and for a job
whose entrypoint joins the cluster and runs one task (``python -c 'init(); get(f.remote())'``).

    python benchmarks/jobs.py [--runs 5] [--ray-bin /tmp/rayenv/bin]

Starts a shoal head (``shoal start --head``, in a private session root) and a Ray head
(``ray start --head``, with ``RAY_AUTH_MODE=disabled``) one after the other, each measured
with its own SDK in a process of its own, rounds alternating; prints the median and best of
each and the ratio Ray / shoal. Both heads are stopped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile

CLIENT = r"""
import asyncio, json, sys, time
from {impl}.job_submission import JobSubmissionClient
c = JobSubmissionClient({url!r}, headers={headers!r})
out = {{}}
for name, entry in {entries!r}.items():
    t0 = time.perf_counter()
    sid = c.submit_job(entrypoint=entry)
    async def first():
        async for chunk in c.tail_job_logs(sid):
            if "first" in chunk:
                return time.perf_counter() - t0
    out[name] = asyncio.run(first())
    async def rest():
        async for _ in c.tail_job_logs(sid):
            pass
    asyncio.run(rest())
    assert str(c.get_job_status(sid)) == "SUCCEEDED", c.get_job_info(sid)
print("RESULT", json.dumps(out))
"""

TASK = ("python -c \"import {impl} as ray; ray.init(); "
        "print('first', ray.get(ray.remote(lambda: 1).remote()), flush=True)\"")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _measure(python: str, impl: str, url: str, headers: dict, env: dict) -> dict:
    entries = {"echo": "echo first", "task": TASK.format(impl=impl)}
    code = CLIENT.format(impl=impl, url=url, headers=headers, entries=entries)
    r = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300,
                       env=env)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        raise RuntimeError(f"{impl} client failed:\n{r.stdout}\n{r.stderr}")
    return json.loads(line[0][7:])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--ray-bin", default="/tmp/rayenv/bin")
    args = p.parse_args()
    root = tempfile.mkdtemp(prefix="shoal-bench-jobs-")
    senv = {**os.environ, "SHOAL_SESSION_ROOT": root}
    senv.pop("SHOAL_TOKEN", None)
    renv = {k: v for k, v in os.environ.items() if not k.startswith(("SHOAL_", "RAY_"))}
    renv["RAY_AUTH_MODE"] = "disabled"
    renv["PATH"] = args.ray_bin + os.pathsep + renv.get("PATH", "")
    sport, rport = _port(), _port()
    shoal_cli = [sys.executable, "-m", "shoal.cli"]
    ray_cli = [os.path.join(args.ray_bin, "ray")]
    have_ray = os.path.exists(ray_cli[0])
    try:
        subprocess.run(shoal_cli + ["start", "--head", "--port", "0", "--dashboard-port",
                                    str(sport)], check=True, env=senv, capture_output=True)
        session = os.path.realpath(os.path.join(root, "session_latest"))
        with open(os.path.join(session, "token")) as f:
            token = f.read().strip()
        if have_ray:
            subprocess.run(ray_cli + ["start", "--head", "--port", str(_port()),
                                      "--dashboard-port", str(rport), "--num-cpus", "2",
                                      "--include-dashboard", "true"],
                           check=True, env=renv, capture_output=True)
        results = {"shoal": [], "ray": []}
        for _ in range(args.runs):
            results["shoal"].append(_measure(
                sys.executable, "shoal", f"http://127.0.0.1:{sport}",
                {"Authorization": f"Bearer {token}"}, senv))
            if have_ray:
                results["ray"].append(_measure(
                    os.path.join(args.ray_bin, "python"), "ray", f"http://127.0.0.1:{rport}",
                    {}, renv))
        for name in ("echo", "task"):
            row = {}
            for impl in ("shoal", "ray"):
                xs = [r[name] for r in results[impl]]
                if xs:
                    row[impl] = (statistics.median(xs), min(xs))
            line = f"{name:5s} submit -> first line: " + "  ".join(
                f"{impl} median {m * 1000:.0f} ms (best {b * 1000:.0f})"
                for impl, (m, b) in row.items())
            if "ray" in row:
                line += f"  ratio {row['ray'][0] / row['shoal'][0]:.1f}x"
            print(line)
    finally:
        subprocess.run(shoal_cli + ["stop", "--force"], env=senv, capture_output=True)
        if have_ray:
            subprocess.run(ray_cli + ["stop", "--force"], env=renv, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
