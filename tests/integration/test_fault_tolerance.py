"""Breaking things on purpose: lost objects remade from lineage, dead owners, actors moved
off dead nodes, a killed driver's work reclaimed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import numpy as np
import psutil
import pytest

import shoal as ray
from shoal import exceptions as ex
from shoal.cluster_utils import Cluster
from tests.conftest import shoal_processes, wait_for_condition


@pytest.fixture
def cluster():
    os.environ["SHOAL_NODE_DEAD_TIMEOUT_S"] = "2"
    os.environ["SHOAL_HEARTBEAT_INTERVAL_S"] = "0.2"
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.connect()
    sessions = [c.head_node.session.path]
    try:
        yield c, sessions
    finally:
        sessions += [n.session.path for n in c.list_all_nodes()]
        c.shutdown()
        os.environ.pop("SHOAL_NODE_DEAD_TIMEOUT_S", None)
        os.environ.pop("SHOAL_HEARTBEAT_INTERVAL_S", None)
        for s in set(sessions):
            wait_for_condition(lambda s=s: not shoal_processes(s), timeout=15)


def _add(c, sessions, **kw):
    node = c.add_node(**kw)
    sessions.append(node.session.path)
    return node


def _dead(node_id: str) -> bool:
    return any(n["NodeID"] == node_id and not n["Alive"] for n in ray.nodes())


def test_lost_object_is_rebuilt_through_two_levels_of_lineage(cluster, tmp_path):
    c, sessions = cluster
    x = _add(c, sessions, num_cpus=1, resources={"x": 1})
    runs = tmp_path / "runs"

    @ray.remote(resources={"x": 1}, max_retries=2)
    def first(seed, log):
        with open(log, "a") as f:
            f.write("first\n")
        return np.random.default_rng(seed).random(1_000_000)  # 8 MB: in shared memory

    @ray.remote(resources={"x": 1}, max_retries=2)
    def second(arr, log):
        with open(log, "a") as f:
            f.write("second\n")
        return arr * 2

    a = first.remote(5, str(runs))
    b = second.remote(a, str(runs))
    expected = np.random.default_rng(5).random(1_000_000) * 2
    assert np.allclose(ray.get(b), expected)
    del a  # the driver keeps only b; a lives on as b's lineage
    c.remove_node(x, allow_graceful=False)
    wait_for_condition(lambda: _dead(x.node_id), timeout=15)
    _add(c, sessions, num_cpus=1, resources={"x": 1})
    assert np.allclose(ray.get(b, timeout=60), expected)
    assert runs.read_text().split() == ["first", "second", "first", "second"]


def test_lost_object_without_retries_left_fails_with_reconstruction_error(cluster):
    c, sessions = cluster
    x = _add(c, sessions, num_cpus=1, resources={"x": 1})

    @ray.remote(resources={"x": 1}, max_retries=1)
    def make():
        return np.ones(1_000_000)

    ref = make.remote()
    ray.get(ref)
    c.remove_node(x, allow_graceful=False)
    wait_for_condition(lambda: _dead(x.node_id), timeout=15)
    x2 = _add(c, sessions, num_cpus=1, resources={"x": 1})
    assert ray.get(ref, timeout=60).sum() == 1_000_000  # the one retry remakes it
    c.remove_node(x2, allow_graceful=False)
    wait_for_condition(lambda: _dead(x2.node_id), timeout=15)
    _add(c, sessions, num_cpus=1, resources={"x": 1})
    with pytest.raises(ex.ObjectReconstructionFailedError) as info:
        ray.get(ref, timeout=60)
    assert ref.hex() in str(info.value)


def test_borrower_of_object_whose_owner_died_gets_owner_died_error(cluster):
    c, sessions = cluster
    x = _add(c, sessions, num_cpus=1, resources={"x": 1})

    @ray.remote(resources={"x": 1})
    def owner_on_x():
        return [ray.put(np.ones(500_000))]  # the worker on x owns the inner object

    inner = ray.get(owner_on_x.remote())[0]
    c.remove_node(x, allow_graceful=False)
    wait_for_condition(lambda: _dead(x.node_id), timeout=15)
    with pytest.raises(ex.OwnerDiedError):
        ray.get(inner, timeout=30)


def test_actor_restarts_on_another_node_after_its_node_is_removed(cluster):
    c, sessions = cluster
    x = _add(c, sessions, num_cpus=1, resources={"x": 1})

    @ray.remote(max_restarts=1, resources={"x": 0.5})
    class Sticky:
        def __init__(self):
            self.n = 0

        def where(self):
            self.n += 1
            return ray.get_runtime_context().get_node_id(), self.n

    a = Sticky.remote()
    assert ray.get(a.where.remote()) == (x.node_id, 1)
    c.remove_node(x, allow_graceful=False)
    wait_for_condition(lambda: _dead(x.node_id), timeout=15)
    y = _add(c, sessions, num_cpus=1, resources={"x": 1})
    assert ray.get(a.where.remote(), timeout=60) == (y.node_id, 1)


KILLED_DRIVER = r"""
import sys, time
import shoal as ray
ray.init(address=sys.argv[1])

@ray.remote
class Holder:
    def pid(self):
        import os
        return os.getpid()

@ray.remote
def spin():
    import os
    print("TASK", os.getpid(), flush=True)
    time.sleep(600)

h = Holder.remote()
print("ACTOR", ray.get(h.pid.remote()), flush=True)
spin.remote()
time.sleep(600)
"""


def test_killed_driver_workers_and_actors_are_reclaimed(cluster):
    c, sessions = cluster
    _add(c, sessions, num_cpus=1)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_DRIVER, c.head_node.session.path],
                            stdout=subprocess.PIPE, text=True)
    try:
        pids = {}
        while len(pids) < 2:
            line = proc.stdout.readline()
            if not line:
                break
            line = re.sub(r"\x1b\[[0-9;]*m", "", line)  # the prefix's colour
            if line.startswith(("(spin pid=", "ACTOR", "TASK")):
                kind, pid = line.split()[-2:]
                pids[kind.strip("()").split("=")[0]] = int(pid)
        assert {"ACTOR", "TASK"} <= set(pids), pids
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        def gone(pid: int) -> bool:
            try:
                return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        def reclaimed():
            return all(gone(p) for p in pids.values())

        wait_for_condition(reclaimed, timeout=15, msg="(a dead driver's worker survived)")
    finally:
        if proc.poll() is None:
            proc.kill()

    @ray.remote
    def ok():
        return "served"

    assert ray.get([ok.remote() for _ in range(4)], timeout=30) == ["served"] * 4


LOST_PUT_DRIVER = r"""
import sys
import numpy as np
import shoal as ray
from shoal import exceptions as ex
ray.init(address=sys.argv[1])
ref = ray.put(np.ones(1_000_000))  # in the store of this driver's node
print("READY", ref.hex(), flush=True)
sys.stdin.readline()  # this driver's node is removed meanwhile
try:
    ray.get(ref, timeout=30)
    print("NOT LOST")
except ex.ObjectLostError as e:
    print("LOST", type(e).__name__, ref.hex() in str(e), flush=True)
"""


def test_lost_put_object_raises_object_lost_error(cluster):
    c, sessions = cluster
    x = _add(c, sessions, num_cpus=1)
    proc = subprocess.Popen([sys.executable, "-c", LOST_PUT_DRIVER, x.session.path],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("READY")
        c.remove_node(x, allow_graceful=False)
        wait_for_condition(lambda: _dead(x.node_id), timeout=15)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=60)
        assert "LOST ObjectLostError True" in out, out
    finally:
        if proc.poll() is None:
            proc.kill()
