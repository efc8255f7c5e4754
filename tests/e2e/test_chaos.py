"""Chaos: a tree of 2,047 tasks and 4 restartable actors while nodes die and join.

A 3-node cluster (a head and two workers); a killer removes a random worker node and
adds a fresh one every 2 s while the job runs. Tasks pass 240 KB arrays (in shared
memory, so they die with their node) between levels; lost ones are remade from lineage.
The result must be exactly the fault-free one, and nothing may survive shutdown.
"""

from __future__ import annotations

import os
import random
import threading
import time

import numpy as np

import shoal as ray
from shoal.cluster_utils import Cluster
from tests.conftest import shm_entries, shoal_processes, wait_for_condition

WIDTH = 30_000
LEAVES = 1024


def test_tree_of_tasks_and_actors_survives_nodes_dying():
    os.environ["SHOAL_NODE_DEAD_TIMEOUT_S"] = "2"
    os.environ["SHOAL_HEARTBEAT_INTERVAL_S"] = "0.2"
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    sessions = [c.head_node.session.path]
    for _ in range(2):
        sessions.append(c.add_node(num_cpus=1).session.path)
    c.connect()
    stop = threading.Event()
    kills = []

    def killer():
        rng = random.Random(7)
        while not stop.wait(2.0):
            victims = sorted(c.worker_nodes, key=lambda n: n.proc.pid)
            if not victims:
                continue
            node = rng.choice(victims)
            c.remove_node(node, allow_graceful=False)
            kills.append(node.node_id)
            sessions.append(c.add_node(num_cpus=1, wait=False).session.path)

    try:
        @ray.remote(max_retries=-1)
        def leaf(i):
            time.sleep(0.01)
            return np.full(WIDTH, i, dtype=np.int64)

        @ray.remote(max_retries=-1)
        def join(a, b):
            time.sleep(0.01)
            return a + b

        @ray.remote(max_restarts=-1, max_task_retries=-1)
        class Scaler:
            def scale(self, arr, k):
                return arr * k

        actors = [Scaler.remote() for _ in range(4)]
        chaos = threading.Thread(target=killer, daemon=True)
        chaos.start()
        level = [leaf.remote(i) for i in range(LEAVES)]
        while len(level) > 1:
            level = [join.remote(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        root = ray.get(level[0], timeout=600)
        scaled = ray.get([a.scale.remote(level[0], k + 1) for k, a in enumerate(actors)],
                         timeout=600)
        stop.set()
        chaos.join()
        expected = np.full(WIDTH, sum(range(LEAVES)), dtype=np.int64)
        assert np.array_equal(root, expected)
        for k, arr in enumerate(scaled):
            assert np.array_equal(arr, expected * (k + 1))
        assert len(kills) >= 2, "the killer hardly struck: the job ended too fast to test"
    finally:
        stop.set()
        c.shutdown()
        os.environ.pop("SHOAL_NODE_DEAD_TIMEOUT_S", None)
        os.environ.pop("SHOAL_HEARTBEAT_INTERVAL_S", None)
        for s in set(sessions):
            wait_for_condition(lambda s=s: not shoal_processes(s), timeout=20)
            tag = os.path.basename(s).rsplit("_", 1)[-1]
            assert shm_entries(tag) == [], f"shared memory left by {s}"
