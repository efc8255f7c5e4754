"""Live actors of one class cost the head's SQLite store one copy of the class, not one per
actor (issue 13 item 17), and a head restarted on the same session gets the class back.

A head with no CPUs and a worker node; a driver on the node starts detached named actors of
a class holding 1 MiB of random bytes in its body. The head's store grows by about one
class, not by one per actor. The head is killed with SIGKILL and started again on its
session: the actors are found by name and answer from the same instances, and one restarted
by ``kill(no_restart=False)`` is made again from the class the new head read back from the
store. When the last of them dies its class leaves the store.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys

from shoal._private.launch.local_cluster import _read_ready
from shoal._private.wire.session import Session
from tests.conftest import stop_daemons, wait_for_condition

N = 8
MIB = 1 << 20

DRIVER = r"""
import os, sys
import shoal as ray
ray.init(address=sys.argv[1], namespace="blobs")
N = int(sys.argv[2])

@ray.remote(num_cpus=0.2, max_restarts=1)
class Holder:
    data = os.urandom(1 << 20)  # 1 MiB of class bytes in every creation spec
    def __init__(self):
        self.calls = 0
    def bump(self):
        self.calls += 1
        return self.calls, len(self.data)

hs = [Holder.options(name=f"h{i}", lifetime="detached").remote() for i in range(N)]
assert ray.get([h.bump.remote() for h in hs], timeout=120) == [(1, 1 << 20)] * N
print("UP", flush=True)
sys.stdin.readline()  # the head is killed and restarted meanwhile
again = [ray.get_actor(f"h{i}") for i in range(N)]
print("SAME", ray.get([h.bump.remote() for h in again], timeout=120), flush=True)
ray.kill(again[0], no_restart=False)  # made again from the spec the new head read back
import time
deadline = time.time() + 60
while time.time() < deadline:  # the kill is asynchronous: the old instance may answer first
    try:
        got = ray.get(again[0].bump.remote(), timeout=30)
    except ray.exceptions.RayActorError:
        continue
    if got[0] == 1:
        break
print("RESTARTED", got, flush=True)
for h in again:
    ray.kill(h)
print("KILLED", flush=True)
sys.stdin.readline()
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _daemon(session: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "shoal._private.launch.daemon",
                             "--session-dir", session, "--watch-stdin", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            start_new_session=True)


def _db_bytes(db: str) -> int:
    return sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))


def _query(db: str, sql: str) -> list:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_actors_of_one_class_store_it_once_and_a_restarted_head_restores_it():
    head_s, node_s = Session.create(latest=False), Session.create(latest=False)
    with open(os.path.join(node_s.path, "token"), "w") as f:
        f.write(head_s.read_token().decode())
    db = os.path.join(head_s.path, "control_store.sqlite3")
    head_args = ["--head", "--port", str(_port()), "--num-cpus", "0"]
    procs, driver = [], None
    try:
        head = _daemon(head_s.path, *head_args)
        procs.append(head)
        info = _read_ready(head, 30)
        node = _daemon(node_s.path, "--port", "0", "--num-cpus", "2",
                       "--head-address", info["head_address"])
        procs.append(node)
        _read_ready(node, 30)
        before = _db_bytes(db)
        driver = subprocess.Popen([sys.executable, "-c", DRIVER, node_s.path, str(N)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert driver.stdout.readline().strip() == "UP"
        grown = _db_bytes(db) - before
        # one class (its row, and the WAL frames that carried it) rather than N of them
        assert grown < 3 * MIB, f"the store grew by {grown / MIB:.1f} MiB for {N} actors"
        blobs = [n for (n,) in _query(db, "SELECT length(data) FROM blobs")]
        assert len(blobs) == 1 and blobs[0] > MIB  # the pickled class, once
        assert max(n for (n,) in _query(db, "SELECT length(data) FROM actors")) < 64 * 1024

        head.send_signal(signal.SIGKILL)
        head.wait(10)
        new_head = _daemon(head_s.path, *head_args)
        procs.append(new_head)
        _read_ready(new_head, 30)
        driver.stdin.write("go\n")
        driver.stdin.flush()
        assert driver.stdout.readline().strip() == "SAME " + str([(2, MIB)] * N)
        assert driver.stdout.readline().strip() == f"RESTARTED (1, {MIB})"
        assert driver.stdout.readline().strip() == "KILLED"
        # the class goes with the last actor that used it
        wait_for_condition(lambda: _query(db, "SELECT hash FROM blobs") == [], timeout=30,
                           msg="(the class blob deleted)")
        driver.stdin.write("done\n")
        driver.stdin.flush()
        driver.communicate(timeout=60)
        assert driver.returncode == 0
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
            driver.wait(10)
        stop_daemons(procs, (head_s.path, node_s.path), timeout=20)
