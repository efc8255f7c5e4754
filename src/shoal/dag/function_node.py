"""FunctionNode: a task in a DAG, made by ``remote_function.bind(...)``."""

from __future__ import annotations

from typing import Any

from .. import _hooks
from .dag_node import DAGNode
from .format_utils import get_dag_node_str


class FunctionNode(DAGNode):
    """A bound task: runs ``func_body`` as a task with the bound arguments and options."""

    def __init__(self, func_body, func_args, func_kwargs, func_options,
                 other_args_to_resolve: dict[str, Any] | None = None, *,
                 _remote_function=None):
        self._body = func_body
        if _remote_function is None:
            _remote_function = _hooks.remote(func_body)
        # The remote function, kept so the function is pickled once, not once per execute.
        self._remote_function = _remote_function
        super().__init__(func_args, func_kwargs, func_options,
                         other_args_to_resolve=other_args_to_resolve)

    def _copy_impl(self, new_args, new_kwargs, new_options, new_other_args_to_resolve):
        return FunctionNode(self._body, new_args, new_kwargs, new_options,
                            other_args_to_resolve=new_other_args_to_resolve,
                            _remote_function=self._remote_function)

    def _execute_impl(self, *args, **kwargs):
        """Submit the task; the bound arguments are already results (refs, values)."""
        return self._remote_function.options(**self._bound_options).remote(
            *self._bound_args, **self._bound_kwargs)

    def __str__(self) -> str:
        return get_dag_node_str(self, str(self._body))
