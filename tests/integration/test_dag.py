"""The DAG API on a real cluster: chains, diamonds, actors, inputs, several outputs, nested
graphs, reuse across executes, and errors."""

from __future__ import annotations

import asyncio

import pytest

import shoal as ray
from shoal import exceptions as ex
from shoal.dag import InputNode, MultiOutputNode

# execute() warns that it is deprecated, as on Ray 2.60 (one test checks that warning).
pytestmark = pytest.mark.filterwarnings(r"ignore:DAGNode\.execute\(\) is deprecated")


@pytest.fixture(scope="module", autouse=True)
def cluster(shoal_cluster):
    return shoal_cluster


@ray.remote
class Calls:
    """Counts the calls made by the tasks of a test."""

    def __init__(self):
        self.n = 0

    def inc(self):
        self.n += 1

    def get(self):
        return self.n


@ray.remote
class Actor:
    def __init__(self, value):
        self.value = value
        self.calls = []

    def inc(self, x):
        self.value += x
        self.calls.append(x)
        return self.value

    def get(self):
        return self.value

    def history(self):
        return self.calls

    @ray.method(num_returns=2)
    def pair(self):
        return self.value, -self.value


@ray.remote
def add(x, y):
    return x + y


@ray.remote
def echo(x):
    return x


def test_a_diamond_runs_each_node_once_per_execute():
    calls = Calls.remote()

    @ray.remote
    def a():
        ray.get(calls.inc.remote())
        return 2

    @ray.remote
    def b(x):
        ray.get(calls.inc.remote())
        return x * 2

    @ray.remote
    def c(x):
        ray.get(calls.inc.remote())
        return x + 1

    @ray.remote
    def d(x, y):
        ray.get(calls.inc.remote())
        return x + y

    a_node = a.bind()
    d_node = d.bind(b.bind(a_node), c.bind(a_node))
    d1 = d.bind(d_node, d_node)
    dag = d.bind(d.bind(d1, d_node), d_node)
    ref = dag.execute()
    assert isinstance(ref, ray.ObjectRef)
    assert ray.get(ref) == 28
    assert ray.get(calls.get.remote()) == 7
    assert ray.get(dag.execute()) == 28
    assert ray.get(calls.get.remote()) == 14


def test_a_chain_takes_its_input_from_execute():
    @ray.remote
    def first(x):
        return f"{x} -> a"

    @ray.remote
    def second(x):
        return f"{x} -> b"

    with InputNode() as inp:
        dag = second.bind(first.bind(inp))
    assert ray.get(dag.execute("input")) == "input -> a -> b"
    assert ray.get(dag.execute("test")) == "test -> a -> b"


def test_bound_options_apply_when_executed():
    @ray.remote
    def split(x):
        return x, x + 1

    node = split.options(num_returns=2, name="split").bind(1)
    refs = node.execute()
    assert isinstance(refs, list) and ray.get(refs) == [1, 2]
    big = echo.options(num_gpus=1).bind(5)
    assert ray.get(big.execute()) == 5
    assert ray.get(echo.options(num_cpus=0).bind(3).execute()) == 3


def test_nodes_nested_in_lists_and_dicts_are_passed_as_refs():
    @ray.remote
    def nested(d):
        return ray.get(d["x"]) + sum(ray.get(d["ys"]))

    dag = nested.bind({"x": echo.bind(1), "ys": [echo.bind(2), add.bind(1, 2)]})
    assert ray.get(dag.execute()) == 6
    kw = add.bind(x=echo.bind(1), y=echo.bind(2))
    assert ray.get(kw.execute()) == 3


def test_input_parts_by_index_attribute_and_key():
    class UserData:
        def __init__(self, a, b):
            self.a, self.b = a, b

    with InputNode() as inp:
        m1 = Actor.bind(1)
        dag = MultiOutputNode([m1.inc.bind(inp[0]), echo.bind(inp[1]), echo.bind(inp.m3),
                               echo.bind(inp["m4"])])
    assert ray.get(dag.execute(1, 2, m3=3, m4={"deep": 4})) == [2, 2, 3, {"deep": 4}]
    with InputNode() as inp:
        by_attr = add.bind(inp.a, inp.b)
        by_index = add.bind(inp[0], inp[1])
        by_key = add.bind(inp["a"], inp["b"])
    assert ray.get(by_attr.execute(UserData(1, 2))) == 3
    assert ray.get(by_index.execute([3, 4])) == 7
    assert ray.get(by_index.execute(3, 4)) == 7
    assert ray.get(by_key.execute({"a": 5, "b": 6})) == 11


def test_multi_output_node_gives_a_list_of_refs():
    with InputNode() as inp:
        dag = MultiOutputNode([echo.bind(inp["x"]), echo.bind(inp["y"]), echo.bind(inp["x"])])
    refs = dag.execute({"x": 1, "y": 2})
    assert len(refs) == 3 and all(isinstance(r, ray.ObjectRef) for r in refs)
    assert ray.get(refs) == [1, 2, 1]
    with InputNode() as inp:
        one = MultiOutputNode([echo.bind(inp)])
    assert ray.get(one.execute(1)) == [1]


def test_an_actor_in_a_dag_gets_its_calls_in_bind_order():
    a1 = Actor.bind(10)
    assert ray.get(a1.get.bind().execute()) == 10
    a1 = Actor.bind(10)
    a2 = Actor.bind(10)
    a1.inc.bind(2)
    a1.inc.bind(4)
    a2.inc.bind(6)
    dag = add.bind(a1.get.bind(), a2.get.bind())
    assert ray.get(dag.execute()) == 32
    # Every execute makes its own actors: the result does not grow.
    assert ray.get(dag.execute()) == 32
    history = a1.history.bind()
    assert ray.get(history.execute()) == [2, 4]


def test_one_actor_per_class_node_in_one_execute():
    counter = Actor.bind(0)
    dag = MultiOutputNode([counter.inc.bind(1), counter.inc.bind(1), counter.get.bind()])
    assert ray.get(dag.execute()) == [1, 2, 2]
    handle = counter.execute()
    assert isinstance(handle, ray.ActorHandle)
    assert ray.get(handle.get.remote()) == 0


def test_actors_as_arguments_arrive_as_handles():
    @ray.remote
    class Outer:
        def __init__(self, inner):
            self.inner = inner

        def inc(self, x):
            return ray.get(self.inner.inc.remote(x))

    @ray.remote
    def read(handle):
        assert isinstance(handle, ray.ActorHandle), handle
        return ray.get(handle.get.remote())

    outer = Outer.bind(Actor.bind(10))
    assert ray.get(outer.inc.bind(2).execute()) == 12
    assert ray.get(read.bind(Actor.bind(7)).execute()) == 7


def test_actor_options_and_method_options_are_applied():
    named = Actor.options(name="dag_named_actor", max_pending_calls=10).bind(10)
    call = named.get.options(name="get_value").bind()
    assert call.get_options() == {"name": "get_value"}
    assert named.get_options()["name"] == "dag_named_actor"
    handle = named.execute()
    assert ray.get(handle.get.remote()) == 10
    assert ray.get_actor("dag_named_actor") == handle
    ray.kill(handle)


def test_methods_bound_on_a_live_actor_reuse_it_across_executes():
    worker = Actor.remote(0)
    with InputNode() as inp:
        dag = worker.inc.bind(inp)
    with InputNode() as inp:
        other = worker.inc.options(name="second").bind(inp)
    assert ray.get(dag.execute(1)) == 1
    assert ray.get(other.execute(2)) == 3
    assert ray.get(dag.execute(1)) == 4
    assert ray.get(worker.history.remote()) == [1, 2, 1]
    workers = [Actor.remote(i) for i in range(3)]
    with InputNode() as inp:
        fan_out = MultiOutputNode([w.inc.bind(inp) for w in workers])
    for i in range(1, 4):
        assert len(ray.get(fan_out.execute(i))) == 3
    assert ray.get([w.get.remote() for w in workers]) == [6, 7, 8]


def test_a_method_with_several_returns_binds_one_node_per_value():
    worker = Actor.remote(5)
    first, second = worker.pair.bind()
    assert ray.get(MultiOutputNode([first, second]).execute()) == [5, -5]
    assert ray.get(add.bind(first, second).execute()) == 0
    assert first.num_returns == 2 and first.output_idx == 0 and second.output_idx == 1


def test_nested_dags_compose_and_run_inside_tasks():
    def stage(inp, k):
        return add.bind(echo.bind(inp), k)

    with InputNode() as inp:
        dag = add.bind(stage(inp, 1), stage(inp, 10))
    assert ray.get(dag.execute(1)) == 13

    @ray.remote
    def run_inside(graph, x):
        return ray.get(graph.execute(x))

    assert ray.get(run_inside.remote(dag, 2)) == 15
    # A node bound as an argument is a child: it runs, and its result is passed.
    outer = add.bind(dag, echo.bind(inp))
    assert ray.get(outer.execute(3)) == 20


def test_execute_can_keep_every_nodes_result():
    with InputNode() as inp:
        mid = echo.bind(inp)
        dag = add.bind(mid, 1)
    ref = dag.execute(1, _ray_cache_refs=True)
    assert ray.get(ref) == 2
    cache = asyncio.run(dag.get_object_refs_from_last_execute())
    assert ray.get(cache[mid.get_stable_uuid()]) == 1
    assert cache[inp.get_stable_uuid()] == 1
    dag.clear_cache()
    assert dag.cache_from_last_execute == {}


def test_a_failing_task_fails_the_dag_result():
    @ray.remote
    def boom(x):
        raise ValueError(f"bad {x}")

    with InputNode() as inp:
        dag = add.bind(boom.bind(inp), 1)
    with pytest.raises(ex.RayTaskError, match="bad 3"):
        ray.get(dag.execute(3))


def test_misuse_is_refused_with_rays_errors():
    with InputNode() as one:
        left = echo.bind(one)
    with InputNode() as two:
        dag = add.bind(left, echo.bind(two))
    with pytest.raises(AssertionError, match="Each DAG should only have one unique InputNode"):
        dag.execute(2)
    outside = echo.bind(InputNode())
    with pytest.raises(AssertionError, match="should be only used in context manager"):
        outside.execute(1)
    with InputNode() as inp:
        missing = add.bind(inp[0], inp.y)
    with pytest.raises(KeyError, match="no keyword argument 'y'"):
        missing.execute(1, 2)
    with pytest.raises(IndexError, match="given 0 positional"):
        missing.execute(y=1)
    with pytest.raises(ValueError, match="num_cpus"):
        echo.options(num_cpus=-1).bind(1)
