"""Placement groups that capture child tasks: a group's children run in its bundles (and
get_current_placement_group() names it), unless they opt out."""

from __future__ import annotations

import pytest

import shoal as ray
from shoal.util.placement_group import (
    get_current_placement_group,
    placement_group,
    remove_placement_group,
)
from shoal.util.scheduling_strategies import PlacementGroupSchedulingStrategy
from tests.conftest import shoal_processes, wait_for_condition


@ray.remote
def current_group():
    pg = get_current_placement_group()
    return pg.id.hex() if pg is not None else None


@ray.remote
def parent_of_children(depth):
    mine = current_group.remote()
    child = parent_of_children.remote(depth - 1) if depth > 0 else None
    return [ray.get(mine)] + (ray.get(child) if child is not None else [])


@ray.remote
def parent_opting_out():
    return ray.get(current_group.options(placement_group=None).remote())


@ray.remote
class InGroup:
    def group(self):
        return ray.get(current_group.remote())


@pytest.fixture(scope="module")
def two_cpus():
    ctx = ray.init(num_cpus=2)
    yield ray
    ray.shutdown()
    wait_for_condition(lambda: not shoal_processes(ctx["session_dir"]), timeout=15)


def test_children_of_a_capturing_group_run_in_its_bundle(two_cpus):
    # The group takes both CPUs: children could run nowhere else.
    pg = placement_group([{"CPU": 2}])
    assert pg.wait(10)
    try:
        strategy = PlacementGroupSchedulingStrategy(pg, placement_group_capture_child_tasks=True)
        got = ray.get(parent_of_children.options(scheduling_strategy=strategy).remote(1),
                      timeout=30)
        assert got == [pg.id.hex()] * 2
        actor = InGroup.options(scheduling_strategy=strategy, num_cpus=0).remote()
        assert ray.get(actor.group.remote(), timeout=30) == pg.id.hex()
        ray.kill(actor)
    finally:
        remove_placement_group(pg)


def test_without_capture_children_leave_the_group(two_cpus):
    pg = placement_group([{"CPU": 1}])
    assert pg.wait(10)
    try:
        strategy = PlacementGroupSchedulingStrategy(pg)
        assert ray.get(current_group.options(scheduling_strategy=strategy).remote()) == \
            pg.id.hex()
        got = ray.get(parent_of_children.options(scheduling_strategy=strategy).remote(0))
        assert got == [None]
        capturing = PlacementGroupSchedulingStrategy(pg, placement_group_capture_child_tasks=True)
        assert ray.get(parent_opting_out.options(scheduling_strategy=capturing).remote()) is None
    finally:
        remove_placement_group(pg)


def test_driver_has_no_current_group(two_cpus):
    assert get_current_placement_group() is None
    assert ray.get(current_group.remote()) is None
