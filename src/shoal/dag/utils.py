"""Unique display names for the nodes of a DAG (used by the plot)."""

from __future__ import annotations

from .class_node import ClassMethodNode, ClassNode
from .dag_node import DAGNode
from .function_node import FunctionNode
from .input_node import InputAttributeNode, InputNode
from .output_node import MultiOutputNode


class _DAGNodeNameGenerator:
    """Names nodes by their ``name`` option, method or function/class name; a name met again
    gets ``_1``, ``_2``, ... appended."""

    def __init__(self):
        self.name_to_suffix: dict[str, int] = {}

    def get_node_name(self, node: DAGNode) -> str:
        if isinstance(node, InputNode):
            return "INPUT_NODE"
        if isinstance(node, MultiOutputNode):
            return "MultiOutputNode"
        if isinstance(node, InputAttributeNode):
            return f"INPUT_ATTRIBUTE_NODE_{node._key}"
        if isinstance(node, ClassMethodNode):
            name = node.get_options().get("name") or node._method_name
        elif isinstance(node, (ClassNode, FunctionNode)):
            name = node.get_options().get("name") or getattr(
                node._body, "__name__", type(node).__name__)
        elif isinstance(node, DAGNode):
            name = type(node).__name__
        else:
            raise ValueError("get_node_name() should only be called on DAGNode instances.")
        if name not in self.name_to_suffix:
            self.name_to_suffix[name] = 0
            return name
        self.name_to_suffix[name] += 1
        return f"{name}_{self.name_to_suffix[name]}"

    def reset(self) -> None:
        self.name_to_suffix = {}

    def __enter__(self) -> _DAGNodeNameGenerator:
        return self

    def __exit__(self, *args) -> None:
        self.reset()
