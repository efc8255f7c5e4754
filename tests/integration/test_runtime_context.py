"""``get_runtime_context()`` as Ray documents it: assigned resources in plain names (in
placement groups too), the placement group id, the deprecated id properties, ``get()``;
bundle checks at ``.remote()``; node affinity by NodeID."""

from __future__ import annotations

import warnings

import pytest

import shoal as ray
from shoal.util.placement_group import placement_group, remove_placement_group
from shoal.util.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)
from tests.conftest import shoal_cluster  # noqa: F401

pytestmark = pytest.mark.usefixtures("shoal_cluster")


def _context():
    ctx = ray.get_runtime_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return ctx.get_assigned_resources(), ctx.get_placement_group_id(), sorted(ctx.get())


@ray.remote
def task_context():
    return _context()


@ray.remote
class ActorContext:
    def context(self):
        return _context()


@pytest.fixture(scope="module")
def pg():
    group = placement_group([{"CPU": 1, "custom": 1}])
    assert group.wait(60)
    yield group
    remove_placement_group(group)


def test_task_assigned_resources_are_plain_amounts():
    res, pg_id, keys = ray.get(task_context.remote())
    assert res == {"CPU": 1.0} and pg_id is None
    assert keys == ["job_id", "namespace", "node_id", "task_id"]
    res, _, _ = ray.get(task_context.options(num_cpus=0.5, resources={"custom": 0.5}).remote())
    assert res == {"CPU": 0.5, "custom": 0.5}


def test_actor_assigned_resources_hold_in_every_call():
    a = ActorContext.remote()
    res, pg_id, keys = ray.get(a.context.remote())
    assert res == {} and pg_id is None  # a default actor holds no CPU while it runs
    assert keys == ["actor_id", "job_id", "namespace", "node_id", "task_id"]
    b = ActorContext.options(num_cpus=0.5).remote()
    assert ray.get(b.context.remote())[0] == {"CPU": 0.5}
    assert ray.get(b.context.remote())[0] == {"CPU": 0.5}
    c = ActorContext.options(resources={"custom": 1}).remote()
    assert ray.get(c.context.remote())[0] == {"CPU": 1.0, "custom": 1.0}


def test_placement_group_tasks_and_actors_see_plain_names_and_the_group(pg):
    strategy = PlacementGroupSchedulingStrategy(pg)
    res, pg_id, _ = ray.get(task_context.options(scheduling_strategy=strategy).remote())
    assert res == {"CPU": 1.0} and pg_id == pg.id.hex()
    indexed = PlacementGroupSchedulingStrategy(pg, 0)
    res, pg_id, _ = ray.get(task_context.options(
        num_cpus=0, resources={"custom": 0.5}, scheduling_strategy=indexed).remote())
    assert res == {"custom": 0.5} and pg_id == pg.id.hex()
    a = ActorContext.options(num_cpus=0.5, scheduling_strategy=strategy).remote()
    res, pg_id, _ = ray.get(a.context.remote())
    assert res == {"CPU": 0.5} and pg_id == pg.id.hex()
    ray.kill(a)


def test_request_that_fits_no_bundle_fails_at_remote(pg):
    strategy = PlacementGroupSchedulingStrategy(pg)
    with pytest.raises(ValueError) as info:
        task_context.options(num_cpus=2, scheduling_strategy=strategy).remote()
    assert str(info.value) == (
        "Cannot schedule task_context with the placement group because the resource request "
        "{'CPU': 2} cannot fit into any bundles for the placement group, "
        "[{'CPU': 1.0, 'custom': 1.0}].")
    with pytest.raises(ValueError, match="Cannot schedule ActorContext with the placement"):
        ActorContext.options(resources={"other": 1}, scheduling_strategy=strategy).remote()
    with pytest.raises(ValueError, match="placement group bundle index 3 is invalid"):
        task_context.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 3)).remote()


def test_default_actor_needs_a_cpu_in_some_bundle():
    group = placement_group([{"custom": 1}])
    try:
        assert group.wait(60)
        with pytest.raises(ValueError, match="the actor requires 1 CPU for creation"):
            ActorContext.options(
                scheduling_strategy=PlacementGroupSchedulingStrategy(group)).remote()
    finally:
        remove_placement_group(group)


def test_bundle_resource_name_is_reserved():
    with pytest.raises(ValueError, match="`bundle` which is reserved for Ray"):
        task_context.options(resources={"bundle": 1}).remote()
    with pytest.raises(ValueError, match="`bundle` which is reserved for Ray"):
        ActorContext.options(resources={"bundle": 1}).remote()


def test_driver_context_leaves_out_task_and_actor():
    ctx = ray.get_runtime_context()
    with pytest.warns(DeprecationWarning, match="This API is deprecated"):
        info = ctx.get()
    assert sorted(info) == ["job_id", "namespace", "node_id"]
    assert ctx.get_placement_group_id() is None
    assert ctx.get_task_id() is None and ctx.get_actor_id() is None
    with pytest.raises(AssertionError, match="only available when the process is a"):
        ctx.get_assigned_resources()


def test_deprecated_id_properties_warn_and_return_ids():
    ctx = ray.get_runtime_context()
    with pytest.warns(DeprecationWarning, match="Use get_node_id"):
        assert ctx.node_id == ray.NodeID.from_hex(ctx.get_node_id())
    with pytest.warns(DeprecationWarning, match="Use get_job_id"):
        assert ctx.job_id.hex() == ctx.get_job_id()
    with pytest.warns(DeprecationWarning, match="Use get_task_id"), \
            pytest.raises(AssertionError):
        ctx.task_id  # noqa: B018 - the driver has no task
    with pytest.warns(DeprecationWarning, match="Use get_actor_id"), \
            pytest.raises(AssertionError):
        ctx.actor_id  # noqa: B018


@ray.remote
class Ids:
    def ids(self):
        ctx = ray.get_runtime_context()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            out = (ctx.actor_id.hex() == ctx.get_actor_id(),
                   ctx.task_id.hex() == ctx.get_task_id())
        return out, {type(x.message).__name__ for x in w}


def test_deprecated_properties_inside_an_actor():
    (actor_ok, task_ok), warned = ray.get(Ids.remote().ids.remote())
    assert actor_ok and task_ok
    assert warned == {"RayDeprecationWarning"}


def test_runtime_context_module_function():
    from shoal.runtime_context import get_runtime_context

    assert get_runtime_context().get_node_id() == ray.get_runtime_context().get_node_id()
    assert ray.get_runtime_context().should_capture_child_tasks_in_placement_group is False


def test_node_affinity_takes_a_node_id_object():
    node_hex = ray.get_runtime_context().get_node_id()
    strategy = NodeAffinitySchedulingStrategy(node_id=ray.NodeID.from_hex(node_hex),
                                              soft=False)
    assert strategy.node_id == node_hex
    assert ray.get(task_context.options(scheduling_strategy=strategy).remote())[0] == \
        {"CPU": 1.0}
    with pytest.raises(ValueError, match="Invalid node_id 'zz'"):
        NodeAffinitySchedulingStrategy(node_id="zz", soft=False)


@ray.remote
def names():
    ctx = ray.get_runtime_context()
    return ctx.get_task_name(), ctx.get_task_function_name(), ctx.get_actor_name()


@ray.remote
class Names:
    def names(self):
        ctx = ray.get_runtime_context()
        return ctx.get_task_name(), ctx.get_task_function_name(), ctx.get_actor_name()


def test_task_and_actor_names_as_ray_gives_them():
    assert ray.get(names.remote()) == ("names", f"{__name__}.names", None)
    assert ray.get(names.options(name="custom").remote())[0] == "custom"
    assert ray.get(Names.remote().names.remote()) == \
        ("Names.names", f"{__name__}.Names.names", "")
    keep = Names.options(name="has-a-name").remote()
    assert ray.get(keep.names.remote())[2] == "has-a-name"
    threaded = Names.options(max_concurrency=2).remote()
    assert ray.get(threaded.names.remote())[0] == "Names.names"
    ctx = ray.get_runtime_context()
    assert ctx.get_task_name() is None and ctx.get_actor_name() is None
    assert isinstance(ctx.get_dashboard_url(), str)


@ray.remote
def current_group():
    from shoal.util.placement_group import get_current_placement_group

    pg = get_current_placement_group()
    return None if pg is None else pg.id.hex()


def test_current_placement_group_inside_and_outside(pg):
    from shoal.util.placement_group import get_current_placement_group

    assert get_current_placement_group() is None
    assert ray.get(current_group.remote()) is None
    strategy = PlacementGroupSchedulingStrategy(pg)
    assert ray.get(current_group.options(scheduling_strategy=strategy).remote()) == \
        pg.id.hex()


@ray.remote
class InitContext:
    def __init__(self):
        ctx = ray.get_runtime_context()
        self.seen = (ctx.get_task_id(), ctx.get_task_name(), ctx.get_actor_id())

    def seen_in_init(self):
        return self.seen


def test_actor_constructor_runs_as_its_creation_task():
    ray.get([task_context.remote() for _ in range(4)])  # workers that ran other tasks
    task_id, name, actor_id = ray.get(InitContext.remote().seen_in_init.remote())
    assert name == "InitContext.__init__"
    assert task_id is not None and task_id.endswith(actor_id)
