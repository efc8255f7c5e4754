"""Several actors created at once, over nodes of one CPU each: they land one per node (or
one per bundle of a STRICT_SPREAD group), where room is, instead of queueing together on
the node the head picked first for each."""

from __future__ import annotations

import pytest

import shoal as ray
from shoal.cluster_utils import Cluster
from shoal.util.placement_group import placement_group
from shoal.util.scheduling_strategies import PlacementGroupSchedulingStrategy
from tests.conftest import shoal_processes, wait_for_condition


@ray.remote(num_cpus=1)
class Where:
    def node(self):
        return ray.get_runtime_context().get_node_id()


@pytest.fixture
def cluster_factory():
    made = []

    def make(head_cpus, nodes):
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": head_cpus})
        for _ in range(nodes):
            c.add_node(num_cpus=1)
        c.connect()
        made.append(c)
        return c

    yield make
    for c in made:
        sessions = [n.session.path for n in c.list_all_nodes()]
        ray.shutdown()
        c.shutdown()
        for s in sessions:
            wait_for_condition(lambda s=s: not shoal_processes(s), timeout=15)


def test_actors_created_together_spread_over_one_cpu_nodes(cluster_factory):
    c = cluster_factory(0, 3)
    actors = [Where.remote() for _ in range(3)]
    nodes = ray.get([a.node.remote() for a in actors], timeout=60)
    assert sorted(nodes) == sorted(n.node_id for n in c.list_all_nodes()[1:])


def test_actors_without_bundle_index_fill_a_strict_spread_group(cluster_factory):
    c = cluster_factory(1, 2)
    pg = placement_group([{"CPU": 1}] * 3, strategy="STRICT_SPREAD")
    assert pg.wait(20)
    strategy = PlacementGroupSchedulingStrategy(pg)
    actors = [Where.options(scheduling_strategy=strategy).remote() for _ in range(3)]
    nodes = ray.get([a.node.remote() for a in actors], timeout=60)
    assert sorted(nodes) == sorted(n.node_id for n in c.list_all_nodes())
