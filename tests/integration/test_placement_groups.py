"""Placement groups on a real 2-node cluster: strategies, readiness, removal, bad input."""

from __future__ import annotations

import pytest

import shoal as ray
from shoal import exceptions as ex
from shoal.cluster_utils import Cluster
from shoal.util import (
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from shoal.util.scheduling_strategies import PlacementGroupSchedulingStrategy as InGroup
from tests.conftest import shoal_processes, wait_for_condition


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    c.add_node(num_cpus=2)
    c.connect()
    try:
        yield c
    finally:
        sessions = [n.session.path for n in c.list_all_nodes()]
        c.shutdown()
        for s in sessions:
            wait_for_condition(lambda s=s: not shoal_processes(s), timeout=15)


@ray.remote
def node_of():
    return ray.get_runtime_context().get_node_id()


def _nodes_of(pg, n):
    return [ray.get(node_of.options(scheduling_strategy=InGroup(pg, i)).remote(), timeout=20)
            for i in range(n)]


@pytest.mark.parametrize("strategy,distinct", [
    ("PACK", 1), ("STRICT_PACK", 1), ("SPREAD", 2), ("STRICT_SPREAD", 2)])
def test_strategies_place_bundles(cluster, strategy, distinct):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy=strategy)
    assert ray.get(pg.ready(), timeout=20) == pg
    assert len(set(_nodes_of(pg, 2))) == distinct
    table = placement_group_table(pg)
    assert table["state"] == "CREATED" and table["strategy"] == strategy
    remove_placement_group(pg)


def test_reserved_resources_leave_the_pool_and_come_back(cluster):
    wait_for_condition(lambda: ray.available_resources().get("CPU") == 4, timeout=10)
    pg = placement_group([{"CPU": 2}, {"CPU": 1}], strategy="PACK")
    assert pg.wait(20)
    wait_for_condition(lambda: ray.available_resources().get("CPU") == 1, timeout=10)
    remove_placement_group(pg)
    wait_for_condition(lambda: ray.available_resources().get("CPU") == 4, timeout=10)


def test_group_that_cannot_fit_waits_until_a_node_joins(cluster):
    pg = placement_group([{"CPU": 1}] * 3, strategy="STRICT_SPREAD")
    assert not pg.wait(1)
    extra = cluster.add_node(num_cpus=1)
    try:
        assert pg.wait(20)
        assert len(set(_nodes_of(pg, 3))) == 3
    finally:
        remove_placement_group(pg)
        cluster.remove_node(extra)


def test_any_bundle_and_named_lookup(cluster):
    pg = placement_group([{"CPU": 1}], strategy="PACK", name="named_pg")
    assert pg.wait(20)
    got = ray.get(node_of.options(scheduling_strategy=InGroup(pg, -1)).remote(), timeout=20)
    assert got in {n.node_id for n in cluster.list_all_nodes()}
    same = get_placement_group("named_pg")
    assert same.id == pg.id
    remove_placement_group(pg)
    with pytest.raises(ValueError):
        get_placement_group("named_pg")


def test_actor_in_bundle_dies_when_group_is_removed(cluster):
    pg = placement_group([{"CPU": 1}], strategy="STRICT_PACK")
    assert pg.wait(20)

    @ray.remote(num_cpus=1)
    class Inside:
        def ping(self):
            return "pong"

    a = Inside.options(scheduling_strategy=InGroup(pg, 0)).remote()
    assert ray.get(a.ping.remote(), timeout=20) == "pong"
    remove_placement_group(pg)
    with pytest.raises(ex.RayActorError):
        ray.get(a.ping.remote(), timeout=20)


def test_bad_input(cluster):
    with pytest.raises(ValueError):
        placement_group([])
    with pytest.raises(ValueError):
        placement_group([{}])
    with pytest.raises(ValueError, match="STRICT_SPREAD"):
        placement_group([{"CPU": 1}], strategy="EVERYWHERE")
    pg = placement_group([{"CPU": 1}])
    try:
        with pytest.raises(ValueError, match="bundle index 3 is invalid"):
            node_of.options(scheduling_strategy=InGroup(pg, 3)).remote()
    finally:
        remove_placement_group(pg)
