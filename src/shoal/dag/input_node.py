"""InputNode: where the arguments of ``dag.execute(...)`` enter a DAG.

``with InputNode() as inp:`` then ``inp`` stands for the input, ``inp[0]`` / ``inp["key"]`` /
``inp.name`` for a part of it. Executed with one positional argument, ``inp`` is that value and
its parts are taken from it (index, key, attribute); executed with several arguments or with
keywords, ``inp[i]`` is the i-th positional argument and ``inp["k"]`` / ``inp.k`` the keyword.
"""

from __future__ import annotations

from typing import Any

from .dag_node import DAGNode
from .format_utils import get_dag_node_str

IN_CONTEXT_MANAGER = "__in_context_manager__"


class InputNode(DAGNode):
    """The input of a DAG; one per DAG, used inside ``with InputNode() as inp:``."""

    _is_input_node = True

    def __init__(self, *args: Any, input_type: type | dict | None = None,
                 _other_args_to_resolve: dict[str, Any] | None = None, **kwargs: Any):
        if args or kwargs:
            raise ValueError("InputNode should not take any args or kwargs.")
        self.input_attribute_nodes: dict[int | str, InputAttributeNode] = {}
        self._attribute_nodes: dict[tuple[str, int | str], InputAttributeNode] = {}
        self.input_type = input_type
        super().__init__([], {}, {}, other_args_to_resolve=_other_args_to_resolve)

    def _copy_impl(self, new_args, new_kwargs, new_options, new_other_args_to_resolve):
        return InputNode(_other_args_to_resolve=new_other_args_to_resolve)

    def _execute_impl(self, *args, **kwargs):
        """The user's input: the one value given, or all arguments as a DAGInputData."""
        assert self._in_context_manager(), (
            "InputNode is a singleton instance that should be only used in context manager "
            "for dag building and execution: `with InputNode() as inp: dag = f.bind(inp)`.")
        if len(args) == 1 and not kwargs:
            return args[0]
        return DAGInputData(*args, **kwargs)

    def _in_context_manager(self) -> bool:
        return bool(self._bound_other_args_to_resolve.get(IN_CONTEXT_MANAGER, False))

    def set_context(self, key: str, val: Any) -> None:
        """Set a value kept with this node through copies and pickling."""
        self._bound_other_args_to_resolve[key] = val

    def get_result_type(self) -> str | None:
        return self._bound_other_args_to_resolve.get("result_type_string")

    def __getattr__(self, key: str):
        if key.startswith("__") or "_attribute_nodes" not in self.__dict__:
            return super().__getattr__(key)
        return self._attribute_node(key, "__getattr__")

    def __getitem__(self, key: int | str) -> InputAttributeNode:
        assert isinstance(key, (str, int)), (
            "Please only use int index or str as first-level key to access fields of dag "
            f"input, not {key!r}.")
        return self._attribute_node(key, "__getitem__")

    def _attribute_node(self, key: int | str, accessor: str) -> InputAttributeNode:
        # One node per key and way of reading it: inp.a and inp["a"] read a single input
        # differently (attribute, key). input_attribute_nodes has the first made per key.
        node = self._attribute_nodes.get((accessor, key))
        if node is None:
            node = self._attribute_nodes[(accessor, key)] = \
                InputAttributeNode(self, key, accessor)
            self.input_attribute_nodes.setdefault(key, node)
        return node

    def __enter__(self) -> InputNode:
        self.set_context(IN_CONTEXT_MANAGER, True)
        return self

    def __exit__(self, *args) -> None:
        pass

    def __str__(self) -> str:
        return get_dag_node_str(self, "__InputNode__")


class InputAttributeNode(DAGNode):
    """One part of the DAG's input: ``inp[0]``, ``inp["key"]`` or ``inp.name``."""

    def __init__(self, dag_input_node: InputNode, key: int | str, accessor_method: str,
                 input_type: str | None = None):
        self._dag_input_node = dag_input_node
        self._key = key
        self._accessor_method = accessor_method
        super().__init__([], {}, {}, {
            "dag_input_node": dag_input_node,
            "key": key,
            "accessor_method": accessor_method,
            "result_type_string": input_type,
        })

    def _copy_impl(self, new_args, new_kwargs, new_options, new_other_args_to_resolve):
        other = new_other_args_to_resolve
        return InputAttributeNode(other["dag_input_node"], other["key"],
                                  other["accessor_method"], other["result_type_string"])

    def _execute_impl(self, *args, **kwargs):
        """The part of the input; by now ``_dag_input_node`` holds the input itself."""
        value = self._dag_input_node
        if isinstance(value, DAGInputData):
            return value[self._key]
        if isinstance(self._key, str) and self._accessor_method == "__getattr__":
            return getattr(value, self._key)
        if isinstance(self._key, (str, int)):
            return value[self._key]
        raise ValueError("Please only use int index or str as first-level key to access "
                         "fields of dag input.")

    def get_result_type(self) -> str | None:
        return self._bound_other_args_to_resolve.get("result_type_string")

    @property
    def key(self) -> int | str:
        return self._key

    def __str__(self) -> str:
        return get_dag_node_str(self, f'["{self._key}"]')


class DAGInputData:
    """All arguments of ``execute(*args, **kwargs)`` when there is not exactly one:
    ``data[i]`` is a positional argument, ``data["k"]`` a keyword argument."""

    _dag_scan_atom = True  # the scanner never looks for nodes inside user input

    def __init__(self, *args: Any, **kwargs: Any):
        self._args = list(args)
        self._kwargs = kwargs

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, int):
            if not -len(self._args) <= key < len(self._args):
                raise IndexError(f"The DAG input [{key}] was used, but execute() was given "
                                 f"{len(self._args)} positional argument(s).")
            return self._args[key]
        if isinstance(key, str):
            if key not in self._kwargs:
                raise KeyError(f"The DAG input {key!r} was used, but execute() was given no "
                               f"keyword argument {key!r} (keywords given: "
                               f"{sorted(self._kwargs)}).")
            return self._kwargs[key]
        raise ValueError("Please only use int index or str as first-level key to access "
                         "fields of dag input.")
