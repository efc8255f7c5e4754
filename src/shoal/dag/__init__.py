"""Ray Core's DAG API: build a graph of tasks and actor calls with ``.bind()``, run it with
``execute()``.

    with InputNode() as inp:
        dag = combine.bind(f.bind(inp[0]), Model.bind(2).forward.bind(inp.x))
    ref = dag.execute(1, x=3)

Built only on shoal's public API (``.options(...).remote(...)``) and ``shoal._hooks``
(which lends it ``remote`` and the handle types without an import of ``shoal.actor``:
``.bind()`` imports this package, so it must not import back); not imported by
``import shoal`` until a ``.bind()`` or an import of ``shoal.dag`` needs it.
"""

from .class_node import ClassMethodNode, ClassNode
from .constants import (
    BIND_INDEX_KEY,
    COLLECTIVE_OPERATION_KEY,
    DAGNODE_TYPE_KEY,
    IS_CLASS_METHOD_OUTPUT_KEY,
    PARENT_CLASS_NODE_KEY,
    PREV_CLASS_METHOD_CALL_KEY,
)
from .dag_node import DAGNode
from .function_node import FunctionNode
from .input_node import DAGInputData, InputAttributeNode, InputNode
from .output_node import MultiOutputNode
from .vis_utils import plot

__all__ = [
    "ClassNode",
    "ClassMethodNode",
    "DAGNode",
    "FunctionNode",
    "InputNode",
    "InputAttributeNode",
    "DAGInputData",
    "PARENT_CLASS_NODE_KEY",
    "PREV_CLASS_METHOD_CALL_KEY",
    "BIND_INDEX_KEY",
    "IS_CLASS_METHOD_OUTPUT_KEY",
    "COLLECTIVE_OPERATION_KEY",
    "DAGNODE_TYPE_KEY",
    "plot",
    "MultiOutputNode",
]
