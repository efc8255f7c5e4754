"""What the dashboard costs: its API's answer times with many task records, and task
throughput while the overview is polled every second against not polled.

    python benchmarks/dashboard_api.py [--records 10000] [--gets 10]

It starts a local cluster, runs ``--records`` tasks (each owner remembers them), times
``--gets`` requests of each endpoint, then measures 5,000-task batches with and without a
thread polling ``/api/cluster`` once a second (as an open overview page does).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import urllib.request

import shoal

ENDPOINTS = ("/api/cluster", "/api/tasks?limit=100", "/api/actors", "/api/nodes", "/metrics")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=10000)
    p.add_argument("--gets", type=int, default=10)
    args = p.parse_args()
    ctx = shoal.init(num_cpus=2, dashboard_port=0)
    base = "http://" + ctx.dashboard_url

    @shoal.remote
    def f(i):
        return i

    shoal.get([f.remote(i) for i in range(args.records)])
    for path in ENDPOINTS:
        urllib.request.urlopen(base + path).read()  # warm
        t = time.perf_counter()
        for _ in range(args.gets):
            urllib.request.urlopen(base + path).read()
        print(f"{path:<24}{(time.perf_counter() - t) / args.gets * 1000:8.1f} ms")

    def rate() -> float:
        t = time.perf_counter()
        shoal.get([f.remote(i) for i in range(5000)])
        return 5000 / (time.perf_counter() - t)

    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            urllib.request.urlopen(base + "/api/cluster").read()
            stop.wait(1.0)

    quiet, polled = [], []
    for i in range(6):  # alternate, so that drift hits both alike
        if i % 2:
            th = threading.Thread(target=poll)
            th.start()
            polled.append(rate())
            stop.set()
            th.join()
            stop.clear()
        else:
            quiet.append(rate())
    print(f"tasks/s, overview not polled {statistics.median(quiet):8,.0f}")
    print(f"tasks/s, overview polled 1/s {statistics.median(polled):8,.0f}")
    shoal.shutdown()


if __name__ == "__main__":
    main()
