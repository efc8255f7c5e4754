"""Finding DAG nodes inside bound arguments, and rebuilding arguments with them replaced.

``.bind()`` arguments may hold nodes anywhere: at top level, inside lists and dicts, or inside
any other object. The scanner walks plain containers (``list``, ``tuple``, ``dict``, ``set``,
``frozenset``, exactly those types) itself; values that cannot hold a node (numbers, strings,
classes, functions, object refs, actor handles, numpy arrays of plain dtypes) are kept as they
are; any other object is pickled with cloudpickle to look inside it and is rebuilt from that
pickle, with the nodes replaced, only if it held one. An object that cannot be pickled is kept
as it is. Parts that hold no node are never copied.
"""

from __future__ import annotations

import io
import pickle
import types
import weakref
from typing import Any, Generic, TypeVar

import cloudpickle

from .. import _hooks
from .base import DAGNodeBase

# The scanners between find_nodes and clear (Ray's module keeps the same registry).
_instances: weakref.WeakValueDictionary[int, _PyObjScanner] = weakref.WeakValueDictionary()

SourceType = TypeVar("SourceType")
TransformedType = TypeVar("TransformedType")

_ATOMS = frozenset({
    type(None), bool, int, float, complex, str, bytes, bytearray, range, type(Ellipsis),
    type, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType,
})
_CONTAINERS = frozenset({list, tuple, set, frozenset})
_KEEP = object()  # plan of a value holding no source object: use the value itself


def _kept_by_identity() -> tuple[type, ...]:
    """Values passed through as they are, never pickled: they name cluster state."""
    return _hooks.kept_by_identity()


def _is_atom(obj: Any, identity_types: tuple[type, ...]) -> bool:
    t = type(obj)
    if t in _ATOMS or isinstance(obj, identity_types) or getattr(t, "_dag_scan_atom", False):
        return True
    dtype = getattr(obj, "dtype", None) if t.__module__ == "numpy" else None
    return dtype is not None and not dtype.hasobject


class _Found:
    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def build(self, table):
        return table[self.obj]


class _Seq:
    __slots__ = ("obj", "plans")

    def __init__(self, obj, plans):
        self.obj, self.plans = obj, plans

    def build(self, table):
        items = [x if p is _KEEP else p.build(table)
                 for x, p in zip(self.obj, self.plans, strict=True)]
        return type(self.obj)(items)


class _Map:
    __slots__ = ("obj", "plans")

    def __init__(self, obj, plans):
        self.obj, self.plans = obj, plans

    def build(self, table):
        return {k: v if p is _KEEP else p.build(table)
                for (k, v), p in zip(self.obj.items(), self.plans, strict=True)}


class _Pickled:
    __slots__ = ("data", "scanner", "kept")

    def __init__(self, data, scanner, kept):
        self.data, self.scanner, self.kept = data, scanner, kept

    def build(self, table):
        return _ReplacingUnpickler(self.data, self.scanner._found, self.kept, table).load()


class _FindingPickler(cloudpickle.CloudPickler):
    def __init__(self, file, scanner: _PyObjScanner, identity_types):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.scanner = scanner
        self.identity_types = identity_types
        self.kept: list = []
        self.found_any = False

    def persistent_id(self, obj):
        if isinstance(obj, self.scanner.source_type):
            self.found_any = True
            return ("n", self.scanner._note(obj))
        if isinstance(obj, self.identity_types):
            self.kept.append(obj)
            return ("k", len(self.kept) - 1)
        return None


class _ReplacingUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, found: list, kept: list, table: dict):
        super().__init__(io.BytesIO(data))
        self.found, self.kept, self.table = found, kept, table

    def persistent_load(self, pid):
        kind, i = pid
        return self.table[self.found[i]] if kind == "n" else self.kept[i]


class _PyObjScanner(Generic[SourceType, TransformedType]):
    """Find the instances of ``source_type`` in a Python value, then rebuild the value with
    them replaced: ``find_nodes(value)``, then ``replace_nodes({found: new, ...})``.

    Each instance is found once however often it occurs. A scanner serves one value; call
    ``clear()`` when done with it.
    """

    def __init__(self, source_type: type | tuple[type, ...] = DAGNodeBase):
        self.source_type = source_type
        self._found: list | None = None
        self._index: dict[int, int] = {}
        self._path: set[int] = set()
        self._plan: Any = _KEEP
        self._identity = _kept_by_identity()
        _instances[id(self)] = self

    def find_nodes(self, obj: Any) -> list[SourceType]:
        """Every instance of ``source_type`` inside ``obj``, in the order first met."""
        assert self._found is None, \
            "find_nodes cannot be called twice on the same PyObjScanner instance."
        self._found = []
        self._plan = self._scan(obj)
        self._value = obj
        return self._found

    def replace_nodes(self, table: dict[SourceType, TransformedType]) -> Any:
        """The scanned value with each found instance replaced by ``table[instance]``."""
        assert self._found is not None, "find_nodes must be called first"
        return self._value if self._plan is _KEEP else self._plan.build(table)

    def clear(self) -> None:
        """Forget this scanner (it no longer counts among the live ones)."""
        _instances.pop(id(self), None)

    def __del__(self):
        self.clear()

    def _note(self, obj) -> int:
        i = self._index.get(id(obj))
        if i is None:
            i = self._index[id(obj)] = len(self._found)
            self._found.append(obj)
        return i

    def _scan(self, obj):
        if isinstance(obj, self.source_type):
            self._note(obj)
            return _Found(obj)
        if _is_atom(obj, self._identity):
            return _KEEP
        t = type(obj)
        if t in _CONTAINERS or t is dict:
            if id(obj) in self._path:  # a container holding itself: its first visit counts
                return _KEEP
            self._path.add(id(obj))
            try:
                plans = [self._scan(v) for v in (obj.values() if t is dict else obj)]
            finally:
                self._path.discard(id(obj))
            if all(p is _KEEP for p in plans):
                return _KEEP
            return _Map(obj, plans) if t is dict else _Seq(obj, plans)
        return self._scan_opaque(obj)

    def _scan_opaque(self, obj):
        buf = io.BytesIO()
        pickler = _FindingPickler(buf, self, self._identity)
        before = len(self._found)
        try:
            pickler.dump(obj)
        except Exception:  # not picklable: it cannot carry a node we could rebuild
            del self._found[before:]
            self._index = {id(o): i for i, o in enumerate(self._found)}
            return _KEEP
        if not pickler.found_any:
            return _KEEP
        return _Pickled(buf.getvalue(), self, pickler.kept)
