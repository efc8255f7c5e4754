"""The seeds' cluster walkthrough (document 003), end to end with the CLI.

``shoal start --head``; a second node joined with ``shoal start --address=...`` and the
printed token file; a driver with ``init(address="auto")`` that runs the document's program:
10,000 tiny tasks reporting where they ran, both nodes taking a share. ``shoal stop``
then leaves no process and no shared memory behind. The document reports IP addresses;
both nodes here share one IP, so the tasks report their node id as well.
"""

from __future__ import annotations

import re

from tests.conftest import wait_for_condition
from tests.e2e.conftest import _free_port

DRIVER = r"""
from collections import Counter
import socket
import time

import shoal as ray

ray.init(address="auto")

print('''This cluster consists of
    {} nodes in total
    {} CPU resources in total
'''.format(len(ray.nodes()), ray.cluster_resources()['CPU']))

@ray.remote
def f():
    time.sleep(0.001)
    # Return IP address (and, since both nodes share one IP here, the node id).
    return socket.gethostbyname(socket.gethostname()), ray.get_runtime_context().get_node_id()

object_ids = [f.remote() for _ in range(10000)]
results = ray.get(object_ids)

print('Tasks executed')
for (ip_address, node), num_tasks in Counter(results).items():
    print('    {} tasks on {} (node {})'.format(num_tasks, ip_address, node[:8]))
"""


def test_seed_cluster_walkthrough(cli):  # noqa: F811 - pytest fixture
    port = _free_port()
    r = cli.run("start", "--head", "--port", str(port), "--num-cpus", "1")
    assert r.returncode == 0, r.stderr
    join = re.search(r"shoal start --address='([^']+)' --token-file='([^']+)'", r.stdout)
    assert join, r.stdout
    r2 = cli.run("start", f"--address={join.group(1)}", f"--token-file={join.group(2)}",
                 "--num-cpus", "1")
    assert r2.returncode == 0, r2.stderr
    out = cli.python(DRIVER, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2 nodes in total" in out.stdout and "2.0 CPU resources in total" in out.stdout
    shares = [int(n) for n in re.findall(r"^\s+(\d+) tasks on", out.stdout, re.M)]
    assert len(shares) == 2 and sum(shares) == 10000, out.stdout
    assert min(shares) >= 1000, out.stdout  # both nodes took a real share
    stop = cli.run("stop")
    assert stop.returncode == 0 and "Stopped" in stop.stdout
    wait_for_condition(lambda: not cli.processes(), timeout=15)
    assert cli.shm() == []
