"""Several node daemons on this machine (cluster_utils.Cluster): scheduling across nodes,
objects crossing nodes, node death, and authentication between nodes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

import shoal as ray
from shoal import exceptions as ex
from shoal.cluster_utils import Cluster
from shoal.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tests.conftest import shoal_processes, wait_for_condition, wait_for_output


@pytest.fixture(scope="module")
def cluster():
    os.environ["SHOAL_NODE_DEAD_TIMEOUT_S"] = "2"
    os.environ["SHOAL_HEARTBEAT_INTERVAL_S"] = "0.2"
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1, resources={"side": 1})
    c.connect()
    try:
        yield c
    finally:
        sessions = [n.session.path for n in c.list_all_nodes()]
        c.shutdown()
        os.environ.pop("SHOAL_NODE_DEAD_TIMEOUT_S", None)
        os.environ.pop("SHOAL_HEARTBEAT_INTERVAL_S", None)
        for s in sessions:
            wait_for_condition(lambda s=s: not shoal_processes(s), timeout=15)


@ray.remote
def node_of(sleep=0.0):
    time.sleep(sleep)
    return ray.get_runtime_context().get_node_id()


def _ids(cluster):
    return [n.node_id for n in cluster.list_all_nodes()]


def test_cluster_view_covers_both_nodes(cluster):
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    res = ray.cluster_resources()
    assert res["CPU"] == 2 and res["side"] == 1


def test_busy_node_spills_tasks_to_the_other(cluster):
    counts = Counter(ray.get([node_of.remote(0.01) for _ in range(200)]))
    assert set(counts) == set(_ids(cluster))
    assert min(counts.values()) >= 20


def test_spread_uses_every_node(cluster):
    counts = Counter(ray.get([node_of.options(scheduling_strategy="SPREAD").remote(0.2)
                              for _ in range(4)]))
    assert set(counts) == set(_ids(cluster))


def test_custom_resource_only_on_one_node(cluster):
    side = next(n for n in cluster.worker_nodes)
    assert ray.get(node_of.options(resources={"side": 1}).remote()) == side.node_id


def test_node_affinity_hard_and_soft(cluster):
    head, side = cluster.head_node, next(iter(cluster.worker_nodes))
    for node in (head, side):
        strat = NodeAffinitySchedulingStrategy(node.node_id, soft=False)
        got = ray.get([node_of.options(scheduling_strategy=strat).remote() for _ in range(5)])
        assert set(got) == {node.node_id}
    missing = "ab" * 28
    soft = NodeAffinitySchedulingStrategy(missing, soft=True)
    assert ray.get(node_of.options(scheduling_strategy=soft).remote()) in _ids(cluster)
    hard = NodeAffinitySchedulingStrategy(missing, soft=False)
    with pytest.raises(ex.TaskUnschedulableError):
        ray.get(node_of.options(scheduling_strategy=hard).remote(), timeout=20)


def test_numpy_array_crosses_nodes_intact(cluster):
    head, side = cluster.head_node, next(iter(cluster.worker_nodes))
    on = {n.node_id: NodeAffinitySchedulingStrategy(n.node_id, soft=False)
          for n in (head, side)}

    @ray.remote
    def make(seed):
        return np.random.default_rng(seed).random(3_000_000)  # 24 MB: several chunks

    @ray.remote
    def checksum(arr):
        return float(arr.sum()), ray.get_runtime_context().get_node_id()

    expected = float(np.random.default_rng(7).random(3_000_000).sum())
    ref = make.options(scheduling_strategy=on[side.node_id]).remote(7)
    total, where = ray.get(checksum.options(scheduling_strategy=on[head.node_id]).remote(ref))
    assert where == head.node_id and total == pytest.approx(expected)
    local = ray.get(ref)  # the driver (on the head node) reads it too
    assert float(local.sum()) == pytest.approx(expected)
    put_on_head = ray.put(np.arange(2_000_000))
    assert ray.get(checksum.options(scheduling_strategy=on[side.node_id]).remote(
        put_on_head))[0] == float(np.arange(2_000_000).sum())


def test_worker_output_from_other_node_reaches_driver(cluster, capfd):
    side = next(iter(cluster.worker_nodes))

    @ray.remote
    def speak():
        print("hello from the side node")
        return os.getpid()

    strat = NodeAffinitySchedulingStrategy(side.node_id, soft=False)
    pid = ray.get(speak.options(scheduling_strategy=strat).remote())
    wait_for_output(capfd, f"(speak pid={pid}) hello from the side node")


def test_actor_on_remote_node(cluster):
    side = next(iter(cluster.worker_nodes))

    @ray.remote
    class Where:
        def node(self):
            return ray.get_runtime_context().get_node_id()

    strat = NodeAffinitySchedulingStrategy(side.node_id, soft=False)
    w = Where.options(scheduling_strategy=strat).remote()
    assert ray.get(w.node.remote()) == side.node_id


def test_infeasible_task_waits_for_a_node_that_fits(cluster, capfd):
    ref = node_of.options(resources={"late": 1}).remote()
    ready, _ = ray.wait([ref], timeout=0.5)
    assert ready == []
    wait_for_output(capfd, "late", stream="err")
    late = cluster.add_node(num_cpus=1, resources={"late": 1})
    try:
        assert ray.get(ref, timeout=30) == late.node_id
    finally:
        cluster.remove_node(late)


def test_removed_node_is_marked_dead(cluster):
    extra = cluster.add_node(num_cpus=1)
    assert ray.cluster_resources()["CPU"] == 3
    cluster.remove_node(extra, allow_graceful=False)

    def dead():
        states = {n["NodeID"]: n["Alive"] for n in ray.nodes()}
        return states.get(extra.node_id) is False

    wait_for_condition(dead, timeout=10)
    wait_for_condition(lambda: ray.cluster_resources()["CPU"] == 2, timeout=10)


def test_silent_node_is_marked_dead_after_missed_heartbeats(cluster):
    extra = cluster.add_node(num_cpus=1)
    try:
        extra.kill(signal.SIGSTOP)  # alive but silent: only heartbeats can tell
        start = time.monotonic()

        def dead():
            return any(n["NodeID"] == extra.node_id and not n["Alive"] for n in ray.nodes())

        wait_for_condition(dead, timeout=15)
        assert time.monotonic() - start < 10
    finally:
        extra.kill(signal.SIGCONT)
        cluster.remove_node(extra, allow_graceful=False)


def test_node_with_wrong_token_is_refused(cluster, tmp_path):
    from shoal._private.wire.session import Session

    sess = Session.create(latest=False)
    with open(os.path.join(sess.path, "token"), "w") as f:
        f.write("0" * 64)
    proc = subprocess.run(
        [sys.executable, "-m", "shoal._private.launch.daemon", "--session-dir", sess.path,
         "--port", "0", "--head-address", cluster.address, "--num-cpus", "1"],
        capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "FAILED" in proc.stdout and "token" in proc.stdout
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2


def test_init_with_head_address_from_another_driver(cluster):
    code = ("import shoal as ray\n"
            f"ray.init(address={cluster.address!r})\n"
            "print(len([n for n in ray.nodes() if n['Alive']]))\n"
            "ray.shutdown()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
    bad = subprocess.run([sys.executable, "-c",
                          "import shoal as ray\nray.init(address='127.0.0.1:1')"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "ConnectionError" in bad.stderr
    assert "shoal start --address=127.0.0.1:1" in bad.stderr


def test_dashboard_sees_every_node_and_reads_a_remote_nodes_log(cluster):
    import json
    import urllib.request

    url = cluster.head_node.info["webui_url"]

    def get(path):
        with urllib.request.urlopen(url + path, timeout=30) as r:
            return json.load(r)

    nodes = [n for n in get("/api/nodes")["nodes"] if n["state"] == "ALIVE"]
    assert len(nodes) >= 2 and all(n["machine"]["mem_total"] > 0 for n in nodes)

    @ray.remote(resources={"side": 1})
    def on_side():
        print("side-node-line")
        return ray.get_runtime_context().get_node_id()

    side = ray.get(on_side.remote())
    task = get("/api/tasks?name=on_side")["tasks"][0]
    assert task["node_id"] == side

    def logged():
        got = get(f"/api/logs/read?node_id={side}&worker_id={task['worker_id']}")
        return "side-node-line" in got["data"]

    wait_for_condition(logged, timeout=10)
    logs = {n["node_id"]: n for n in get("/api/logs")["nodes"]}
    assert side in logs and any(e["name"] == "node.log" for e in logs[side]["logs"])
