"""DAGNode: one node of a task graph built with ``.bind()``, run with ``execute()``.

A node holds its bound arguments (values, nodes, nodes nested in values), its ``.options()``
and the extra values of its subclass (``other_args_to_resolve``). ``execute()`` walks the graph
bottom-up (``apply_recursive``): each node is copied with its children replaced by what they
gave, then the copy's ``_execute_impl`` submits its task or actor call through the public API.
Each node runs at most once per ``execute()``, however many nodes use it.
"""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from .base import DAGNodeBase
from .format_utils import get_dag_node_str
from .py_obj_scanner import _PyObjScanner

T = TypeVar("T")


def _scan(value: Any) -> list[DAGNode]:
    scanner = _PyObjScanner()
    try:
        return scanner.find_nodes(value)
    finally:
        scanner.clear()


class _CachingFn:
    """Wraps the function given to ``apply_recursive``: one result per node (by stable uuid)
    in one walk, and at most one InputNode per graph."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.cache: dict[str, Any] = {}
        self.input_node_uuid: str | None = None
        try:
            fn.cache = self.cache  # Ray's executors read the walk's results from here
        except AttributeError:
            pass

    def __call__(self, node: DAGNode):
        if node._is_input_node:
            if self.input_node_uuid is None:
                self.input_node_uuid = node._stable_uuid
            elif self.input_node_uuid != node._stable_uuid:
                raise AssertionError("Each DAG should only have one unique InputNode.")
        if node._stable_uuid not in self.cache:
            self.cache[node._stable_uuid] = self.fn(node)
        return self.cache[node._stable_uuid]


class DAGNode(DAGNodeBase):
    """A node in a task graph: a type (function, actor, method call, input, output), bound
    arguments, options, and subclass-specific values to resolve before it runs."""

    _is_input_node = False  # True on InputNode (so that this module need not import it)

    def __init__(self, args: tuple | list, kwargs: dict[str, Any], options: dict[str, Any],
                 other_args_to_resolve: dict[str, Any] | None):
        self._bound_args = args or []
        self._bound_kwargs: dict[str, Any] = kwargs or {}
        self._bound_options: dict[str, Any] = options or {}
        self._bound_other_args_to_resolve: dict[str, Any] = other_args_to_resolve or {}
        # The same across copies of this node (execute() runs on copies).
        self._stable_uuid = uuid.uuid4().hex
        self._downstream_nodes: list[DAGNode] = []
        self._upstream_nodes: list[DAGNode] = self._collect_upstream_nodes()
        self.cache_from_last_execute: dict[str, Any] = {}

    def _collect_upstream_nodes(self) -> list[DAGNode]:
        """The nodes this one uses (at any depth of its arguments); each learns of this one."""
        upstream = _scan([self._bound_args, self._bound_kwargs,
                          self._bound_other_args_to_resolve])
        for node in upstream:
            node._downstream_nodes.append(self)
        return upstream

    # ---- accessors -------------------------------------------------------------------------

    def get_args(self) -> tuple | list:
        """The positional arguments bound to this node."""
        return self._bound_args

    def get_kwargs(self) -> dict[str, Any]:
        """A copy of the keyword arguments bound to this node."""
        return self._bound_kwargs.copy()

    def get_options(self) -> dict[str, Any]:
        """A copy of the ``.options()`` of this node."""
        return self._bound_options.copy()

    def get_other_args_to_resolve(self) -> dict[str, Any]:
        """A copy of the subclass-specific values resolved before this node runs."""
        return self._bound_other_args_to_resolve.copy()

    def get_stable_uuid(self) -> str:
        """This node's id: made once, kept by copies, pickling and replacement."""
        return self._stable_uuid

    async def get_object_refs_from_last_execute(self) -> dict[str, Any]:
        """What each node of this graph gave in the last ``execute(_ray_cache_refs=True)``,
        by node uuid (asyncio tasks awaited)."""
        cache = {}
        for node_uuid, value in self.cache_from_last_execute.items():
            cache[node_uuid] = await value if isinstance(value, asyncio.Task) else value
        return cache

    def clear_cache(self) -> None:
        self.cache_from_last_execute = {}

    # ---- children --------------------------------------------------------------------------

    def _get_toplevel_child_nodes(self) -> list[DAGNode]:
        """The nodes given directly as arguments (not nested in values), each once."""
        children: list[DAGNode] = []
        values = [*self.get_args(), *self.get_kwargs().values(),
                  *self.get_other_args_to_resolve().values()]
        for a in values:
            if isinstance(a, DAGNode) and a not in children:
                children.append(a)
        return children

    def _get_all_child_nodes(self) -> list[DAGNode]:
        """The nodes in this node's arguments at any depth, each once, in argument order."""
        children: list[DAGNode] = []
        for n in _scan([self._bound_args, self._bound_kwargs,
                        self._bound_other_args_to_resolve]):
            if n not in children:
                children.append(n)
        return children

    def _apply_and_replace_all_child_nodes(self, fn: Callable[[DAGNode], Any]) -> DAGNode:
        """A copy of this node with each child replaced by ``fn(child)`` (one level only)."""
        scanner = _PyObjScanner()
        try:
            found = scanner.find_nodes([self._bound_args, self._bound_kwargs,
                                        self._bound_other_args_to_resolve])
            table = {}
            for node in found:
                if node not in table:
                    table[node] = fn(node)
            new_args, new_kwargs, new_other = scanner.replace_nodes(table)
        finally:
            scanner.clear()
        return self._copy(new_args, new_kwargs, self.get_options(), new_other)

    def apply_recursive(self, fn: Callable[[DAGNode], T]) -> T:
        """Apply ``fn`` to every node of this graph, bottom-up: each node is copied with its
        children replaced by what ``fn`` gave for them, then given to ``fn``. ``fn`` runs
        once per node however many nodes use it."""
        if not isinstance(fn, _CachingFn):
            fn = _CachingFn(fn)
        elif self._stable_uuid in fn.cache:
            return fn.cache[self._stable_uuid]
        return fn(self._apply_and_replace_all_child_nodes(
            lambda node: node.apply_recursive(fn)))

    def apply_functional(self, source_input_list: Any, predicate_fn: Callable[[DAGNode], bool],
                         apply_fn: Callable[[DAGNode], Any]) -> Any:
        """``source_input_list`` rebuilt with each node in it that passes ``predicate_fn``
        replaced by ``apply_fn(node)``; no node is copied or changed."""
        scanner = _PyObjScanner()
        try:
            table = {}
            for node in scanner.find_nodes(source_input_list):
                table[node] = apply_fn(node) if predicate_fn(node) else node
            return scanner.replace_nodes(table)
        finally:
            scanner.clear()

    def traverse_and_apply(self, fn: Callable[[DAGNode], Any]) -> None:
        """Apply ``fn`` once to every node connected to this one, upstream or downstream,
        breadth-first from this node."""
        visited: set[int] = set()
        queue = [self]
        while queue:
            node = queue.pop(0)
            if id(node) in visited:
                continue
            visited.add(id(node))
            fn(node)
            queue.extend(n for n in (*node._downstream_nodes, *node._upstream_nodes)
                         if id(n) not in visited)

    def _find_root(self) -> DAGNode:
        """The InputNode this node descends from, following first upstream nodes."""
        node = self
        while not node._is_input_node:
            if not node._upstream_nodes:
                raise ValueError("No InputNode found in the DAG: when traversing upwards, "
                                 f"no upstream node was found for {node}.")
            node = node._upstream_nodes[0]
        return node

    # ---- execution -------------------------------------------------------------------------

    def execute(self, *args: Any, _ray_cache_refs: bool = False, **kwargs: Any) -> Any:
        """Run this graph: every node it needs is submitted once, its inputs taken from
        ``args``/``kwargs`` through the InputNode. Returns what this node gives: an
        ObjectRef for a function or method call, an ActorHandle for an actor, a list of
        those for a MultiOutputNode.

        With ``_ray_cache_refs`` the result of every node is kept, by uuid, in
        ``cache_from_last_execute``.
        """
        warnings.warn("DAGNode.execute() is deprecated and will be removed in a future "
                      "release.", DeprecationWarning, stacklevel=2)  # as Ray 2.60 warns
        executor = _CachingFn(lambda node: node._execute_impl(*args, **kwargs))
        result = self.apply_recursive(executor)
        if _ray_cache_refs:
            self.cache_from_last_execute = executor.cache
        return result

    def experimental_compile(self, *args, **kwargs):
        raise NotImplementedError(
            "Ray Compiled Graphs (experimental_compile) are not supported by shoal; run the "
            "DAG with execute() instead.")

    def _execute_impl(self, *args, **kwargs):
        """Run this node, its children already replaced by their results."""
        raise NotImplementedError

    def _copy_impl(self, new_args: list[Any], new_kwargs: dict[str, Any],
                   new_options: dict[str, Any], new_other_args_to_resolve: dict[str, Any],
                   ) -> DAGNode:
        """A node of this type with the given arguments."""
        raise NotImplementedError

    def _copy(self, new_args: list[Any], new_kwargs: dict[str, Any],
              new_options: dict[str, Any], new_other_args_to_resolve: dict[str, Any],
              ) -> DAGNode:
        """A copy of this node (same stable uuid) with the given arguments."""
        instance = self._copy_impl(new_args, new_kwargs, new_options, new_other_args_to_resolve)
        instance._stable_uuid = self._stable_uuid
        return instance

    # ---- misuse ----------------------------------------------------------------------------

    def __getattr__(self, attr: str):
        if attr == "bind":
            raise AttributeError(f".bind() cannot be used again on {type(self)} ")
        if attr == "remote":
            raise AttributeError(f".remote() cannot be used on {type(self)}. To execute the "
                                 "task graph for this node, use .execute().")
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{attr}'")

    def __str__(self) -> str:
        return get_dag_node_str(self, type(self).__name__)
