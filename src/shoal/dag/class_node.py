"""ClassNode (an actor in a DAG, ``ActorClass.bind(...)``) and ClassMethodNode (a method call,
``class_node.method.bind(...)`` or ``actor_handle.method.bind(...)``).

Method calls bound on one ClassNode run on the one actor its ``execute()`` creates, in the
order they were bound: each call node names the previous one, which therefore runs first.
"""

from __future__ import annotations

from typing import Any

from .. import _hooks
from .constants import (
    BIND_INDEX_KEY,
    IS_CLASS_METHOD_OUTPUT_KEY,
    PARENT_CLASS_NODE_KEY,
    PREV_CLASS_METHOD_CALL_KEY,
)
from .dag_node import DAGNode
from .format_utils import get_dag_node_str
from .input_node import InputNode


class ClassNode(DAGNode):
    """A bound actor creation: ``execute()`` starts the actor and gives its handle."""

    def __init__(self, cls, cls_args, cls_kwargs, cls_options,
                 other_args_to_resolve: dict[str, Any] | None = None, *, _actor_class=None):
        self._body = cls
        self._last_call: ClassMethodNode | None = None
        if _actor_class is None:
            _actor_class = _hooks.remote(cls)
        self._actor_class = _actor_class
        super().__init__(cls_args, cls_kwargs, cls_options,
                         other_args_to_resolve=other_args_to_resolve)
        if self._contains_input_node():
            raise ValueError(
                "InputNode handles user dynamic input the DAG, and cannot be used as args, "
                "kwargs, or other_args_to_resolve in ClassNode constructor because it is not "
                "available at class construction or binding time.")

    def _copy_impl(self, new_args, new_kwargs, new_options, new_other_args_to_resolve):
        return ClassNode(self._body, new_args, new_kwargs, new_options,
                         other_args_to_resolve=new_other_args_to_resolve,
                         _actor_class=self._actor_class)

    def _execute_impl(self, *args, **kwargs):
        """Create the actor; the bound arguments are already results."""
        return self._actor_class.options(**self._bound_options).remote(
            *self._bound_args, **self._bound_kwargs)

    def _contains_input_node(self) -> bool:
        return any(isinstance(child, InputNode) for child in self._get_all_child_nodes())

    def __getattr__(self, method_name: str):
        if method_name.startswith("__") or "_body" not in self.__dict__:
            return super().__getattr__(method_name)
        if method_name == "bind" and not hasattr(self._body, "bind"):
            raise AttributeError(f".bind() cannot be used again on {type(self)} ")
        getattr(self._body, method_name)  # no such method: AttributeError naming the class
        return _UnboundClassMethodNode(self, method_name, {})

    def __str__(self) -> str:
        return get_dag_node_str(self, str(self._body))


class _UnboundClassMethodNode:
    """``class_node.method``: ``.bind(...)`` makes the call node, ``.options(...)`` sets its
    options."""

    def __init__(self, actor: ClassNode, method_name: str, options: dict):
        self._actor = actor
        self._method_name = method_name
        self._options = options

    def bind(self, *args, **kwargs) -> ClassMethodNode:
        other_args_to_resolve = {
            PARENT_CLASS_NODE_KEY: self._actor,
            PREV_CLASS_METHOD_CALL_KEY: self._actor._last_call,
        }
        node = ClassMethodNode(self._method_name, args, kwargs, self._options,
                               other_args_to_resolve=other_args_to_resolve)
        self._actor._last_call = node
        return node

    def options(self, **options) -> _UnboundClassMethodNode:
        self._options = options
        return self

    def __getattr__(self, attr: str):
        if attr == "remote":
            raise AttributeError(".remote() cannot be used on ClassMethodNodes. Use .bind() "
                                 "instead to express an symbolic actor call.")
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{attr}'")


class _ClassMethodOutput:
    """Which return value of a call with several return values an output node stands for."""

    def __init__(self, class_method_call: ClassMethodNode, output_idx: int):
        self._class_method_call = class_method_call
        self._output_idx = output_idx

    @property
    def class_method_call(self) -> ClassMethodNode:
        return self._class_method_call

    @property
    def output_idx(self) -> int:
        return self._output_idx


class ClassMethodNode(DAGNode):
    """A bound actor method call (or one return value of a call with several)."""

    def __init__(self, method_name: str, method_args, method_kwargs,
                 method_options: dict[str, Any], other_args_to_resolve: dict[str, Any]):
        self._method_name = method_name
        self._parent_class_node = other_args_to_resolve.get(PARENT_CLASS_NODE_KEY)
        self._prev_class_method_call = other_args_to_resolve.get(PREV_CLASS_METHOD_CALL_KEY)
        self._bind_index = other_args_to_resolve.get(BIND_INDEX_KEY)
        self._is_class_method_output = other_args_to_resolve.get(
            IS_CLASS_METHOD_OUTPUT_KEY, False)
        self._class_method_output = None
        if self._is_class_method_output:
            self._class_method_output = _ClassMethodOutput(method_args[0], method_args[1])
        super().__init__(method_args, method_kwargs, method_options,
                         other_args_to_resolve=other_args_to_resolve)

    def _copy_impl(self, new_args, new_kwargs, new_options, new_other_args_to_resolve):
        return ClassMethodNode(self._method_name, new_args, new_kwargs, new_options,
                               other_args_to_resolve=new_other_args_to_resolve)

    def _execute_impl(self, *args, **kwargs):
        """Call the method on the actor (by now a handle); an output node picks its value
        from the call's list of refs."""
        if self.is_class_method_call:
            method = getattr(self._parent_class_node, self._method_name)
            options = {k: v for k, v in self._bound_options.items() if v is not None}
            return method.options(**options).remote(*self._bound_args, **self._bound_kwargs)
        return self._bound_args[0][self._class_method_output.output_idx]

    def __str__(self) -> str:
        return get_dag_node_str(self, f"{self._method_name}()")

    def __repr__(self) -> str:
        return self.__str__()

    def get_method_name(self) -> str:
        return self._method_name

    def _get_bind_index(self) -> int | None:
        return self._bind_index

    def _get_remote_method(self, method_name: str):
        return getattr(self._parent_class_node, method_name)

    def _get_actor_handle(self):
        parent = self._parent_class_node
        return parent if isinstance(parent, _hooks.actor_handle_type()) else None

    @property
    def num_returns(self) -> int | str:
        """How many values the call returns (that of the call, for an output node)."""
        if not self.is_class_method_call:
            return self._class_method_output.class_method_call.num_returns
        num_returns = self._bound_options.get("num_returns")
        if num_returns is None and isinstance(self._parent_class_node, ClassNode):
            fn = getattr(self._parent_class_node._body, self._method_name, None)
            num_returns = getattr(fn, "__shoal_method_options__", {}).get("num_returns")
        return 1 if num_returns is None else num_returns

    @property
    def is_class_method_call(self) -> bool:
        return not self._is_class_method_output

    @property
    def is_class_method_output(self) -> bool:
        return self._is_class_method_output

    @property
    def class_method_call(self) -> ClassMethodNode | None:
        out = self._class_method_output
        return None if out is None else out.class_method_call

    @property
    def output_idx(self) -> int | None:
        out = self._class_method_output
        return None if out is None else out.output_idx


def _bind_on_handle(handle, method_name: str, num_returns: int | str, args: tuple,
                    kwargs: dict, options: dict) -> ClassMethodNode | tuple[ClassMethodNode, ...]:
    """``handle.method.bind(...)``: a call node on a live actor; a call with several return
    values gives one output node per value."""
    bind_index = handle.__dict__.get("_ray_dag_bind_index", 0)
    handle.__dict__["_ray_dag_bind_index"] = bind_index + 1
    bound_options = {"name": "", "num_returns": num_returns, "concurrency_group": None,
                     "_generator_backpressure_num_objects": None, **options}
    node = ClassMethodNode(method_name, args, kwargs, bound_options, other_args_to_resolve={
        PARENT_CLASS_NODE_KEY: handle,
        PREV_CLASS_METHOD_CALL_KEY: None,
        BIND_INDEX_KEY: bind_index,
    })
    n = node.num_returns
    if not isinstance(n, int) or n <= 1:
        return node
    return tuple(
        ClassMethodNode(f"return_idx_{i}", (node, i), {}, {}, {
            IS_CLASS_METHOD_OUTPUT_KEY: True, PARENT_CLASS_NODE_KEY: handle})
        for i in range(n))
