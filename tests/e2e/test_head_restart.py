"""The head is killed with SIGKILL and started again on its session: the cluster carries on.

A head (with no CPUs of its own) and a worker node; a driver on the worker node starts a
detached named actor and a job of tasks. The head dies mid-job and a new head process is
started on the same session directory and port. The node and the driver reconnect, the
running job completes, and the actor is found by name and answers with its state intact
(it was never restarted: the new head learned where it lives from its SQLite file).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from shoal._private.launch.local_cluster import _read_ready
from shoal._private.wire.session import Session
from tests.conftest import stop_daemons

DRIVER = r"""
import sys, time
import shoal as ray
ray.init(address=sys.argv[1], namespace="restart")

@ray.remote
class Survivor:
    def __init__(self):
        self.calls = 0
    def bump(self):
        self.calls += 1
        return self.calls

@ray.remote
def work(i):
    time.sleep(0.5)
    return i * i

s = Survivor.options(name="survivor", lifetime="detached").remote()
assert ray.get(s.bump.remote()) == 1
from shoal.util import placement_group, get_placement_group, placement_group_table
pg = placement_group([{"CPU": 1}], name="kept_pg", lifetime="detached")
assert pg.wait(30)
refs = [work.remote(i) for i in range(8)]
print("STARTED", flush=True)
sys.stdin.readline()  # the head is killed and restarted meanwhile
print("RESULTS", ray.get(refs, timeout=120), flush=True)
again = ray.get_actor("survivor")
print("ACTOR", ray.get(again.bump.remote(), timeout=60), flush=True)
kept = get_placement_group("kept_pg")
print("PG", placement_group_table(kept)["state"], kept.id == pg.id, flush=True)
ray.kill(again)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _daemon(session: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "shoal._private.launch.daemon", "--session-dir",
                             session, "--watch-stdin", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            start_new_session=True)


def test_head_killed_and_restarted_keeps_jobs_and_detached_actors():
    head_s, node_s = Session.create(latest=False), Session.create(latest=False)
    with open(os.path.join(node_s.path, "token"), "w") as f:
        f.write(head_s.read_token().decode())
    port = _port()
    head_args = ["--head", "--port", str(port), "--num-cpus", "0"]
    procs = []
    driver = None
    try:
        head = _daemon(head_s.path, *head_args)
        procs.append(head)
        info = _read_ready(head, 30)
        node = _daemon(node_s.path, "--port", "0", "--num-cpus", "2",
                       "--head-address", info["head_address"])
        procs.append(node)
        _read_ready(node, 30)
        driver = subprocess.Popen([sys.executable, "-c", DRIVER, node_s.path],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert driver.stdout.readline().strip() == "STARTED"
        head.send_signal(signal.SIGKILL)
        head.wait(10)
        new_head = _daemon(head_s.path, *head_args)
        procs.append(new_head)
        _read_ready(new_head, 30)
        driver.stdin.write("go\n")
        driver.stdin.flush()
        out, _ = driver.communicate(timeout=180)
        assert driver.returncode == 0, out
        assert "RESULTS [0, 1, 4, 9, 16, 25, 36, 49]" in out
        assert "ACTOR 2" in out  # the same instance: its state survived the head
        assert "PG CREATED True" in out  # the placement group was kept
        assert node.poll() is None  # the node outlived the head and rejoined it
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        stop_daemons(procs, (head_s.path, node_s.path), timeout=20)
