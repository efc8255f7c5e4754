"""shoal.dag without a cluster: building graphs with .bind(), their accessors, traversal,
input nodes, string forms, the object scanner and the plot's graph."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cloudpickle
import pytest

import shoal as ray
from shoal.dag import (
    PARENT_CLASS_NODE_KEY,
    PREV_CLASS_METHOD_CALL_KEY,
    ClassMethodNode,
    ClassNode,
    DAGInputData,
    DAGNode,
    FunctionNode,
    InputAttributeNode,
    InputNode,
    MultiOutputNode,
    vis_utils,
)
from shoal.dag.py_obj_scanner import _instances, _PyObjScanner

# execute() warns that it is deprecated, as on Ray 2.60 (one test checks that warning).
pytestmark = pytest.mark.filterwarnings(r"ignore:DAGNode\.execute\(\) is deprecated")


@ray.remote
def a(*args, **kwargs):
    return None


@ray.remote(num_gpus=100)
def heavy():
    return None


@ray.remote
class Counter:
    def __init__(self, start=0):
        self.i = start

    def inc(self, by=1):
        self.i += by

    def get(self):
        return self.i


# ---- what .bind() returns -----------------------------------------------------------------

def test_bind_returns_nodes_of_each_kind():
    fn = a.bind(1)
    actor = Counter.bind(5)
    call = actor.get.bind()
    assert isinstance(fn, FunctionNode) and isinstance(fn, DAGNode)
    assert isinstance(actor, ClassNode)
    assert isinstance(call, ClassMethodNode)
    assert fn._body is a._function
    assert actor._body.__name__ == "Counter"
    assert call.get_method_name() == "get"


def test_the_import_paths_of_ray_dag():
    from shoal.dag.class_node import ClassMethodNode as C2
    from shoal.dag.dag_node import DAGNode as D2
    from shoal.dag.function_node import FunctionNode as F2
    from shoal.dag.input_node import InputAttributeNode as IA2
    from shoal.dag.input_node import InputNode as I2
    from shoal.dag.output_node import MultiOutputNode as M2

    assert (C2, D2, F2, IA2, I2, M2) == (ClassMethodNode, DAGNode, FunctionNode,
                                         InputAttributeNode, InputNode, MultiOutputNode)
    assert ray.dag.plot is vis_utils.plot


def test_get_options_holds_decorator_and_options_values():
    assert heavy.bind().get_options() == {"num_gpus": 100}
    assert heavy.options(num_gpus=300).bind().get_options() == {"num_gpus": 300}
    assert heavy.options(num_cpus=500).bind().get_options() == {"num_gpus": 100,
                                                                "num_cpus": 500}
    assert a.bind().get_options() == {}

    @ray.remote(num_gpus=100)
    class Foo:
        pass

    assert Foo.bind().get_options() == {"num_gpus": 100}
    assert Foo.options(num_cpus=500).bind().get_options() == {"num_gpus": 100,
                                                               "num_cpus": 500}
    assert Counter.bind().get_options() == {}


def test_invalid_options_are_refused_before_binding():
    with pytest.raises(ValueError, match="num_cpus"):
        a.options(num_cpus=-1).bind()
    with pytest.raises(ValueError, match="Invalid option keyword bogus"):
        Counter.options(bogus=1).bind()


def test_node_accessors_and_child_nodes():
    t1, t2, t3 = a.bind(), a.bind(), a.bind()
    node = a.bind(1, t1, x=t2, y={"foo": t3})
    assert node.get_args() == (1, t1)
    assert node.get_kwargs() == {"x": t2, "y": {"foo": t3}}
    assert node._get_toplevel_child_nodes() == [t1, t2]
    assert node._get_all_child_nodes() == [t1, t2, t3]
    # The accessors give copies: changing them leaves the node alone.
    node.get_kwargs()["x"] = 0
    assert node.get_kwargs()["x"] is t2


def test_apply_and_replace_all_child_nodes_copies_with_the_same_uuid():
    t1, t2, t3 = a.bind(), a.bind(), a.bind()
    node = a.bind(1, t1, x=t2, y={"foo": [t3]})
    t4, t5 = a.bind(), a.bind()
    replace = {t1: t4, t2: t4, t3: t5}
    copy = node._apply_and_replace_all_child_nodes(lambda n: replace[n])
    assert copy is not node and copy.get_stable_uuid() == node.get_stable_uuid()
    assert copy._get_all_child_nodes() == [t4, t5]
    assert copy.get_kwargs()["y"] == {"foo": [t5]}
    assert node._get_all_child_nodes() == [t1, t2, t3]


def test_apply_recursive_runs_once_per_node_bottom_up():
    inp = InputNode()
    x, y = inp, a.bind(inp)
    for _ in range(10):
        x, y = a.bind(x, y), a.bind(x, y)
    seen: list[str] = []

    def visit(node):
        seen.append(node.get_stable_uuid())
        return node

    x.apply_recursive(visit)
    # inp, a(inp), then the 19 nodes above them that x depends on.
    assert len(seen) == len(set(seen)) == 21
    assert seen[0] == inp.get_stable_uuid() and seen[-1] == x.get_stable_uuid()


def test_apply_recursive_does_not_walk_shared_subgraphs_again():
    # Ray's count: each node expands its distinct children once, a cached node stops there.
    inp = InputNode()
    x, y = inp, a.bind(inp)
    for _ in range(10):
        x, y = a.bind(x, y), a.bind(x, y)
    calls = 0
    original = DAGNode.apply_recursive

    def counting(self, fn):
        nonlocal calls
        calls += 1
        return original(self, fn)

    DAGNode.apply_recursive = counting
    try:
        x.apply_recursive(lambda node: node)
    finally:
        DAGNode.apply_recursive = original
    assert calls == 40


def test_apply_functional_replaces_only_chosen_nodes():
    f1, f2 = a.bind(1), a.bind(2)
    actor = Counter.bind()
    out = f1.apply_functional([f1, {"k": actor}, f2],
                              predicate_fn=lambda n: isinstance(n, ClassNode),
                              apply_fn=lambda n: "handle")
    assert out == [f1, {"k": "handle"}, f2]


def test_traverse_and_apply_visits_every_connected_node_once():
    with InputNode() as inp:
        left = a.bind(inp)
        right = a.bind(inp[0])
        dag = a.bind(left, right)
    visited = []
    left.traverse_and_apply(visited.append)
    assert len(visited) == len({id(n) for n in visited}) == 5
    assert {id(n) for n in visited} == {id(n) for n in (inp, inp[0], left, right, dag)}
    assert dag._find_root() is inp
    with pytest.raises(ValueError, match="No InputNode found"):
        a.bind(a.bind())._find_root()


def test_upstream_and_downstream_nodes_are_linked():
    t1 = a.bind()
    t2 = a.bind([t1])
    assert t2._upstream_nodes == [t1]
    assert t1._downstream_nodes == [t2]


def test_nodes_survive_cloudpickle_with_their_uuids():
    with InputNode() as inp:
        dag = a.bind(inp.x, [Counter.bind(1).get.bind()])
    again = cloudpickle.loads(cloudpickle.dumps(dag))
    assert again.get_stable_uuid() == dag.get_stable_uuid()
    assert [n.get_stable_uuid() for n in again._get_all_child_nodes()] == \
        [n.get_stable_uuid() for n in dag._get_all_child_nodes()]


# ---- actors and methods ---------------------------------------------------------------------

def test_method_calls_bound_on_a_class_node_chain_in_bind_order():
    @ray.remote
    def combine(x, y):
        return x + y

    c1 = Counter.options(name="c1").bind(10)
    c2 = Counter.options(name="c2").bind(10)
    c1.inc.options(name="v1").bind(2)
    c1.inc.options(name="v2").bind(4)
    c2.inc.options(name="v3").bind(6)
    dag = combine.options(name="v4").bind(c1.get.bind(), c2.get.bind())
    g1, g2 = dag.get_args()
    assert g2.get_options() == {}
    assert g2.get_other_args_to_resolve()[PARENT_CLASS_NODE_KEY].get_options()["name"] == "c2"
    assert g2.get_other_args_to_resolve()[PREV_CLASS_METHOD_CALL_KEY].get_options() == \
        {"name": "v3"}
    prev = g1.get_other_args_to_resolve()[PREV_CLASS_METHOD_CALL_KEY]
    assert prev.get_options()["name"] == "v2"
    assert prev.get_other_args_to_resolve()[PREV_CLASS_METHOD_CALL_KEY] \
        .get_options()["name"] == "v1"


def test_misuse_of_nodes_raises_attribute_errors():
    actor = Counter.bind()
    with pytest.raises(AttributeError, match=r"\.bind\(\) cannot be used again on"):
        actor.bind()
    with pytest.raises(AttributeError, match=r"\.remote\(\) cannot be used on ClassMethodNodes"):
        actor.get.remote()
    with pytest.raises(AttributeError, match="'Counter' has no attribute 'remote'"):
        actor.remote()
    with pytest.raises(AttributeError, match="'Counter' has no attribute 'nope'"):
        actor.nope.bind()
    with pytest.raises(AttributeError, match=r"\.remote\(\) cannot be used on"):
        a.bind().remote()
    with pytest.raises(AttributeError, match=r"\.bind\(\) cannot be used again on"):
        a.bind().bind()
    with pytest.raises(AttributeError, match="'FunctionNode' object has no attribute 'nope'"):
        a.bind().nope  # noqa: B018


def test_input_node_cannot_build_an_actor():
    with pytest.raises(ValueError, match="cannot be used as args, kwargs, or "
                                         "other_args_to_resolve in ClassNode constructor"):
        with InputNode() as inp:
            Counter.bind(inp)


# ---- input and output nodes -----------------------------------------------------------------

def test_input_node_takes_no_arguments():
    with pytest.raises(ValueError, match="InputNode should not take any args or kwargs"):
        InputNode(0)
    with pytest.raises(ValueError, match="InputNode should not take any args or kwargs"):
        InputNode(key=1)


def test_input_attribute_nodes_are_made_once_per_key():
    inp = InputNode()
    assert inp.x is inp.x and inp[0] is inp[0] and inp["k"] is inp["k"]
    assert isinstance(inp.x, InputAttributeNode) and inp.x.key == "x"
    assert inp[0] is not inp["0"]
    with pytest.raises(AssertionError, match="only use int index or str as first-level key"):
        inp[(1, 2)]  # noqa: B018


def test_input_values_without_a_cluster():
    with InputNode() as inp:
        out = MultiOutputNode([inp, inp[0], inp[1], inp.x, inp["y"]])
    whole, first, second, x, y = out.execute(1, 2, x=3, y=4)
    assert isinstance(whole, DAGInputData)
    assert (first, second, x, y) == (1, 2, 3, 4)
    assert inp.execute(7) == 7
    assert inp.x.execute(x=3) == 3
    assert inp[0].execute(3, 4) == 3


def test_execute_warns_as_ray_does_that_it_is_deprecated():
    with InputNode() as inp:
        dag = MultiOutputNode([inp])
    with pytest.warns(DeprecationWarning, match=r"DAGNode.execute\(\) is deprecated"):
        assert dag.execute(1) == [1]


def test_a_single_input_is_indexed_or_read_by_attribute():
    class Obj:
        field = "f"

    with InputNode() as inp:
        by_attr = MultiOutputNode([inp.field])
        by_index = MultiOutputNode([inp[0], inp[2]])
        by_key = MultiOutputNode([inp["m1"]])
    assert by_attr.execute(Obj()) == ["f"]
    assert by_index.execute([1, 2, 3]) == [1, 3]
    assert by_key.execute({"m1": 9}) == [9]


def test_attribute_and_key_reads_of_one_name_stay_apart():
    with InputNode() as inp:
        dag = MultiOutputNode([inp.a, inp["a"]])
    assert inp.a is not inp["a"] and inp.input_attribute_nodes["a"] is inp.a

    class Obj:
        a = "attr"

        def __getitem__(self, key):
            return f"item {key}"

    assert dag.execute(Obj()) == ["attr", "item a"]


def test_missing_inputs_name_what_was_missing():
    with InputNode() as inp:
        second = MultiOutputNode([inp[1]])
        keyword = MultiOutputNode([inp.x])
    with pytest.raises(IndexError, match=r"\[1\] was used, but execute\(\) was given 0"):
        second.execute()
    with pytest.raises(KeyError, match="no keyword argument 'x'"):
        keyword.execute(1, 2)
    with pytest.raises(AttributeError, match="'int' object has no attribute 'x'"):
        keyword.execute(5)
    with pytest.raises(TypeError, match="not subscriptable"):
        second.execute(5)


def test_input_node_outside_its_context_manager_refuses_to_run():
    with pytest.raises(AssertionError, match="should be only used in context manager"):
        InputNode().execute()
    with pytest.raises(AssertionError, match="should be only used in context manager"):
        MultiOutputNode([InputNode()[0]]).execute(1)


def test_one_input_node_per_dag():
    with InputNode() as first:
        left = first[0]
    with InputNode() as second:
        dag = MultiOutputNode([left, second[1]])
    with pytest.raises(AssertionError, match="Each DAG should only have one unique InputNode"):
        dag.execute(1, 2)


def test_multi_output_node_takes_a_list_or_tuple():
    with pytest.raises(ValueError, match="Invalid input type for `args`"):
        MultiOutputNode(a.bind())
    node = MultiOutputNode((a.bind(), a.bind()))
    assert isinstance(node.get_args(), list) and len(node.get_args()) == 2
    assert MultiOutputNode([]).execute() == []


# ---- string forms ---------------------------------------------------------------------------

def test_str_shows_body_arguments_options_and_nested_nodes():
    @ray.remote
    def my_func(x, y=None):
        return x

    node = my_func.options(num_cpus=1).bind(
        [1, my_func.bind(2)],
        y={"hyperparams": {"learning_rate": 0.01}, "inner_list": [3, 4],
           "nested_node": my_func.bind(5)})
    text = str(node)
    assert text.startswith(f"(FunctionNode, {node.get_stable_uuid()})(\n")
    assert "body=<function" in text and "my_func" in text
    for part in ("args=[", "kwargs={", "y: {", "hyperparams: {", "learning_rate: 0.01",
                 "inner_list: [", "nested_node: (FunctionNode", "options={",
                 "num_cpus: 1", "other_args_to_resolve={}"):
        assert part in text, part
    assert text.count("(FunctionNode,") == 3


def test_str_of_each_node_kind():
    with InputNode() as inp:
        call = Counter.bind(3).inc.bind(inp.x)
        out = MultiOutputNode([call])
    assert "body=__InputNode__" in str(inp)
    assert 'body=["x"]' in str(inp.x)
    assert "body=inc()" in str(call) and repr(call) == str(call)
    assert "parent_class_node: (ClassNode" in str(call)
    assert "body=<class" in str(call) and "Counter" in str(call)
    assert "body=__MultiOutputNode__" in str(out)


# ---- the object scanner ---------------------------------------------------------------------

class Source:
    pass


class Holder:
    def __init__(self, inner):
        self.inner = inner


class NotSerializable:
    def __reduce__(self):
        raise Exception("don't even try to serialize me.")


def test_scanner_finds_and_replaces_in_containers():
    scanner = _PyObjScanner(source_type=Source)
    objs = [Source(), (Source(), {"key": Source()}), {Source()}]
    found = scanner.find_nodes(objs)
    assert len(found) == 4
    assert scanner.replace_nodes({o: 1 for o in found}) == [1, (1, {"key": 1}), {1}]
    scanner.clear()


def test_scanner_finds_nodes_inside_other_objects():
    s = Source()
    scanner = _PyObjScanner(source_type=Source)
    found = scanner.find_nodes([Holder([s]), s])
    assert found == [s]  # each instance once
    holder, again = scanner.replace_nodes({s: "new"})
    assert isinstance(holder, Holder) and holder.inner == ["new"] and again == "new"
    scanner.clear()


def test_scanner_keeps_values_without_nodes_as_they_are():
    plain, unpicklable = Holder([1, 2]), NotSerializable()
    value = [plain, unpicklable, {"key": Source()}, [3, 4]]
    scanner = _PyObjScanner(source_type=Source)
    found = scanner.find_nodes(value)
    out = scanner.replace_nodes({o: 1 for o in found})
    assert out[0] is plain and out[1] is unpicklable and out[3] is value[3]
    assert out[2] == {"key": 1}
    scanner.clear()


def test_scanner_can_be_used_once_and_is_forgotten_when_cleared():
    before = len(_instances)
    scanner = _PyObjScanner(source_type=Source)
    scanner.find_nodes([Source()])
    with pytest.raises(AssertionError, match="cannot be called twice"):
        scanner.find_nodes([])
    scanner.clear()
    assert id(scanner) not in _instances and len(_instances) == before
    with pytest.raises(AssertionError, match="find_nodes must be called first"):
        _PyObjScanner().replace_nodes({})


# ---- plotting -------------------------------------------------------------------------------

def _named_dag():
    t1 = a.options(name="tmp1").bind()
    t2 = a.options(name="tmp2").bind()
    t3 = a.options(name="tmp3").bind(t1, t2)
    t4 = a.options(name="tmp4").bind()
    t5 = a.options(name="tmp5").bind(t4)
    t6 = a.options(name="tmp6").bind()
    return a.bind(t3, t5, t6)


def test_dot_source_names_nodes_and_draws_their_edges():
    text = vis_utils.to_dot(_named_dag())
    for edge in ("tmp1 -> tmp3", "tmp2 -> tmp3", "tmp4 -> tmp5", "tmp3 -> a", "tmp5 -> a",
                 "tmp6 -> a"):
        assert edge in text
    assert text.startswith("digraph G {") and "rankdir=LR;" in text


def test_nodes_without_names_get_numbered_names():
    t1, t2 = a.bind(), a.bind()
    t3 = a.bind(t1, t2)
    t4 = a.bind()
    t5 = a.bind(t4)
    t6 = a.bind()
    text = vis_utils.to_dot(a.bind(t3, t5, t6))
    for edge in ("a -> a_2", "a_1 -> a_2", "a_3 -> a_4", "a_2 -> a_6", "a_4 -> a_6",
                 "a_5 -> a_6"):
        assert edge in text
    with InputNode() as inp:
        dag = MultiOutputNode([Counter.bind().get.bind(inp.x)])
    text = vis_utils.to_dot(dag)
    assert "INPUT_NODE -> INPUT_ATTRIBUTE_NODE_x" in text
    assert "Counter -> get" in text and "get -> MultiOutputNode" in text


def test_plot_to_a_dot_file_needs_nothing_installed(tmp_path):
    path = tmp_path / "dag.dot"
    assert ray.dag.plot(_named_dag(), str(path)) is None
    assert "tmp1 -> tmp3" in path.read_text()


def test_plot_without_pydot_names_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pydot", None)
    with pytest.raises(ImportError, match="pip install pydot"):
        ray.dag.plot(_named_dag(), str(tmp_path / "dag.png"))


def test_plot_draws_an_image_with_pydot_and_graphviz(tmp_path):
    pydot = pytest.importorskip("pydot")
    try:
        pydot.Dot.create(pydot.Dot())
    except Exception:
        pytest.skip("graphviz is not installed")
    path = tmp_path / "dag.png"
    ray.dag.plot(_named_dag(), str(path))
    assert path.stat().st_size > 0
    assert "tmp1 -> tmp3" in vis_utils._dag_to_dot(_named_dag()).to_string()


# ---- packaging ------------------------------------------------------------------------------

def test_import_shoal_does_not_import_the_dag_library():
    code = "import sys, shoal; print('shoal.dag' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env={**os.environ})
    assert out.stdout.strip() == "False", out.stderr


def test_the_dag_library_uses_only_the_public_api():
    src = Path(ray.dag.__file__).parent
    for path in src.glob("*.py"):
        assert "_private" not in path.read_text(), path.name


def test_the_dag_library_does_not_import_back_what_binds_it():
    """``.bind()`` imports shoal.dag lazily: an import of shoal, shoal.api, shoal.actor or
    shoal.remote_function from here would close an import cycle (shoal._hooks lends them)."""
    import ast

    upward = {"shoal", "shoal.api", "shoal.actor", "shoal.remote_function"}
    for path in Path(ray.dag.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = "shoal" if node.level == 2 else ("shoal.dag" if node.level else "")
                mod = ".".join(p for p in (base, node.module or "") if p)
                # ``from shoal import _hooks`` names a module, not the package's namespace
                names = {f"{mod}.{a.name}" for a in node.names}
                if mod != "shoal" or names - {"shoal._hooks"}:
                    names.add(mod)
            else:
                continue
            assert not names & upward, (path.name, node.lineno, names & upward)
