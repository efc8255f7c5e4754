"""Drawing a DAG: ``plot(dag, "dag.png")`` (needs pydot and graphviz), or its DOT source with
no dependency: ``to_dot(dag)``, ``plot(dag, "dag.dot")``.

Nodes are named by their ``name`` option, method, function or class name (``_1``, ``_2``, ...
for repeats); edges go from each node to the nodes that use it.
"""

from __future__ import annotations

import os
import re
import tempfile

from .dag_node import DAGNode
from .utils import _DAGNodeNameGenerator

_SOURCE_FORMATS = ("dot", "gv")
_PLAIN_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def plot(dag: DAGNode, to_file: str | None = None):
    """Draw ``dag`` into ``to_file``, in the format its extension names (png when it has
    none, or when no file is given: then a temporary file). ``.dot``/``.gv`` files get the
    DOT source and need nothing installed; other formats need pydot and graphviz. In a
    Jupyter notebook (IPython importable) the image is returned for display."""
    tmp_file = None
    if to_file is None:
        tmp_file = tempfile.NamedTemporaryFile(suffix=".png")
        to_file, extension = tmp_file.name, "png"
    else:
        extension = os.path.splitext(to_file)[1][1:] or "png"
    if extension in _SOURCE_FORMATS:
        with open(to_file, "w") as f:
            f.write(to_dot(dag))
        return None
    _dag_to_dot(dag).write(to_file, format=extension)
    try:
        from IPython import display

        return display.Image(filename=to_file)
    except ImportError:
        pass
    finally:
        if tmp_file is not None:
            tmp_file.close()
    return None


def to_dot(dag: DAGNode) -> str:
    """The DOT source of ``dag``'s graph (left to right), without pydot or graphviz."""
    names, edges = _named_graph(dag)
    lines = ["digraph G {", "rankdir=LR;"]
    lines += [f"{_dot_id(names[a])} -> {_dot_id(names[b])};" for a, b in edges]
    if not edges:
        lines += [f"{_dot_id(name)};" for name in names.values()]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _check_pydot_and_graphviz() -> None:
    """Raise ImportError naming what to install when pydot or graphviz is missing."""
    try:
        import pydot
    except ImportError:
        raise ImportError("pydot is required to plot DAG, install it with "
                          "`pip install pydot`.") from None
    try:
        pydot.Dot.create(pydot.Dot())
    except (OSError, pydot.InvocationException):
        raise ImportError("graphviz is required to plot DAG, download it from "
                          "https://graphviz.org/download/ (or install your system's "
                          "`graphviz` package).") from None


def _get_nodes_and_edges(dag: DAGNode) -> tuple[list[DAGNode], list[tuple[DAGNode, DAGNode]]]:
    """Every node of the graph once (children before the nodes using them), and the edges
    (child, user)."""
    nodes: list[DAGNode] = []
    edges: list[tuple[DAGNode, DAGNode]] = []

    def visit(node: DAGNode) -> DAGNode:
        nodes.append(node)
        edges.extend((child, node) for child in node._get_all_child_nodes())
        return node

    dag.apply_recursive(visit)
    return nodes, edges


def _named_graph(dag: DAGNode) -> tuple[dict[int, str], list[tuple[int, int]]]:
    nodes, edges = _get_nodes_and_edges(dag)
    namer = _DAGNodeNameGenerator()
    names = {id(node): namer.get_node_name(node) for node in nodes}
    return names, [(id(a), id(b)) for a, b in edges]


def _dot_id(name: str) -> str:
    if _PLAIN_ID.match(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dag_to_dot(dag: DAGNode):
    """The graph as a ``pydot.Dot`` (needs pydot and graphviz)."""
    _check_pydot_and_graphviz()
    import pydot

    graph = pydot.Dot(rankdir="LR")
    names, edges = _named_graph(dag)
    for a, b in edges:
        graph.add_edge(pydot.Edge(names[a], names[b]))
    if not edges:
        for name in names.values():
            graph.add_node(pydot.Node(name))
    return graph
