"""MultiOutputNode: the end of a DAG with several outputs; ``execute()`` gives a list."""

from __future__ import annotations

from typing import Any

from .dag_node import DAGNode
from .format_utils import get_dag_node_str


class MultiOutputNode(DAGNode):
    """Marks the outputs of a DAG: ``MultiOutputNode([a, b]).execute()`` is ``[ref_a, ref_b]``."""

    def __init__(self, args: list[DAGNode] | tuple[DAGNode, ...],
                 other_args_to_resolve: dict[str, Any] | None = None):
        if isinstance(args, tuple):
            args = list(args)
        if not isinstance(args, list):
            raise ValueError(f"Invalid input type for `args`, {type(args)}.")
        super().__init__(args, {}, {}, other_args_to_resolve=other_args_to_resolve or {})

    def _execute_impl(self, *args, **kwargs) -> list:
        return self._bound_args

    def _copy_impl(self, new_args, new_kwargs, new_options, new_other_args_to_resolve):
        return MultiOutputNode(new_args, new_other_args_to_resolve)

    def __str__(self) -> str:
        return get_dag_node_str(self, "__MultiOutputNode__")
