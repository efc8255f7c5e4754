"""``shoal.cluster_utils.Cluster`` before and after its head exists, as Ray's: ``address``
is None until the head is added, connecting without a head is refused, and a test cluster
never becomes the machine's current cluster (only ``shoal start --head`` does)."""

from __future__ import annotations

import pytest

from shoal._private.launch import local_cluster
from shoal.cluster_utils import Cluster
from tests.conftest import shoal_processes, wait_for_condition


def test_address_is_none_before_the_head_exists():
    c = Cluster(initialize_head=False)
    assert c.address is None and c.gcs_address is None
    assert c.head_node is None and c.list_all_nodes() == []


def test_connect_without_a_head_is_refused():
    with pytest.raises(RuntimeError, match="Cannot connect to uninitialized cluster"):
        Cluster(initialize_head=False, connect=True)
    with pytest.raises(RuntimeError, match="uninitialized cluster"):
        Cluster().connect()


def test_address_after_the_head_is_added_and_not_the_current_cluster():
    c = Cluster(initialize_head=False)
    head = c.add_node(num_cpus=1)
    try:
        assert c.address == head.info["head_address"]
        host, _, port = c.address.rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
        current = local_cluster.current_cluster()
        assert current is None or current.path != head.session.path
    finally:
        c.shutdown()
        wait_for_condition(lambda: not shoal_processes(head.session.path), timeout=15)
