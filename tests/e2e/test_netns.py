"""Two nodes with different IP addresses: network namespaces joined by a veth pair.

The head runs in one namespace (10.231.0.1), a node in the other (10.231.0.2); a driver
next to the head runs tasks on both and moves a 50 MB array each way. Needs root and
``ip netns``; skipped, saying why, where that is not permitted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.conftest import stop_daemons

NS_A, NS_B = f"shoal_a_{uuid.uuid4().hex[:6]}", f"shoal_b_{uuid.uuid4().hex[:6]}"
IP_A, IP_B = "10.231.0.1", "10.231.0.2"


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def namespaces():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 (`ip netns`) to create network namespaces")
    veth_a, veth_b = f"va{uuid.uuid4().hex[:6]}", f"vb{uuid.uuid4().hex[:6]}"
    try:
        _sh("ip", "netns", "add", NS_A)
        _sh("ip", "netns", "add", NS_B)
        _sh("ip", "link", "add", veth_a, "type", "veth", "peer", "name", veth_b)
        _sh("ip", "link", "set", veth_a, "netns", NS_A)
        _sh("ip", "link", "set", veth_b, "netns", NS_B)
        for ns, dev, ip in ((NS_A, veth_a, IP_A), (NS_B, veth_b, IP_B)):
            _sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", dev)
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
    except subprocess.CalledProcessError as e:
        for ns in (NS_A, NS_B):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip(f"cannot create network namespaces here: {e.stderr.strip()}")
    yield
    for ns in (NS_A, NS_B):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _daemon(ns: str, session_dir: str, *args: str) -> tuple[subprocess.Popen, dict]:
    from shoal._private.launch.local_cluster import _read_ready

    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "shoal._private.launch.daemon",
         "--session-dir", session_dir, "--watch-stdin", "--num-cpus", "1", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    return proc, _read_ready(proc, 60)


DRIVER = r"""
import json, sys
import numpy as np
import shoal as ray
from shoal.util.scheduling_strategies import NodeAffinitySchedulingStrategy as On
ray.init(address=sys.argv[1])
a, b = sys.argv[2], sys.argv[3]

@ray.remote
def where():
    import socket
    return ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()

@ray.remote
def make(seed):
    return np.random.default_rng(seed).integers(0, 1 << 30, 50 * 1024 * 1024 // 8)

@ray.remote
def digest(arr):
    return int(arr.sum()), ray.get_runtime_context().get_node_id()

out = {}
out["where"] = [ray.get(where.options(scheduling_strategy=On(n, soft=False)).remote())
                for n in (a, b)]
expected = int(np.random.default_rng(3).integers(0, 1 << 30, 50 * 1024 * 1024 // 8).sum())
ref_b = make.options(scheduling_strategy=On(b, soft=False)).remote(3)
out["b_to_a"] = ray.get(digest.options(scheduling_strategy=On(a, soft=False)).remote(ref_b))
out["driver_reads_b"] = int(ray.get(ref_b).sum())
ref_a = ray.put(np.random.default_rng(3).integers(0, 1 << 30, 50 * 1024 * 1024 // 8))
out["a_to_b"] = ray.get(digest.options(scheduling_strategy=On(b, soft=False)).remote(ref_a))
out["expected"] = expected
print("RESULT " + json.dumps(out))
ray.shutdown()
"""


def test_tasks_and_50mb_objects_cross_between_namespaces(namespaces):
    from shoal._private.wire.session import Session

    head_sess = Session.create(latest=False)
    node_sess = Session.create(latest=False)
    with open(os.path.join(node_sess.path, "token"), "w") as f:
        f.write(head_sess.read_token().decode())
    procs = []
    try:
        head, head_info = _daemon(NS_A, head_sess.path, "--head", "--port", "0", "--ip", IP_A)
        procs.append(head)
        node, node_info = _daemon(NS_B, node_sess.path, "--port", "0", "--ip", IP_B,
                                  "--head-address", head_info["head_address"])
        procs.append(node)
        out = subprocess.run(
            ["ip", "netns", "exec", NS_A, sys.executable, "-c", DRIVER, head_sess.path,
             head_info["node_id"], node_info["node_id"]],
            capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stderr[-3000:]
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
        res = json.loads(line[7:])
        (id_a, ip_a), (id_b, ip_b) = res["where"]
        assert (id_a, ip_a) == (head_info["node_id"], IP_A)
        assert (id_b, ip_b) == (node_info["node_id"], IP_B)
        assert res["b_to_a"] == [res["expected"], head_info["node_id"]]
        assert res["a_to_b"] == [res["expected"], node_info["node_id"]]
        assert res["driver_reads_b"] == res["expected"]
    finally:
        stop_daemons(procs, (head_sess.path, node_sess.path), timeout=15)
