"""Values to bytes and back: cloudpickle with pickle protocol 5 out-of-band buffers.

A serialized value is a small pickle stream (``meta``) plus a list of raw buffers (numpy array
data and the like) that are never copied into the stream: they are written once to shared
memory or appended raw to a message, and read back as views.

ObjectRefs found inside a value are recorded while pickling (``contained``), so the runtime
can keep the objects they name alive while the outer value lives.
"""

from __future__ import annotations

import copyreg
import io
import pickle
import threading
import types
from collections import ChainMap
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

_local = threading.local()


# -- code objects keep their file name ------------------------------------------------------
# cloudpickle pickles functions defined in the driver's script by value. From 3.1 on it
# replaces each code object's ``co_filename`` with "<dynamic-code>" (for deterministic
# bytes), which leaves remote tracebacks without a file and without source lines. We keep
# the real name whatever the installed version does: the code object is rebuilt by
# cloudpickle's own reducer and then renamed back on load. Versions that keep the name
# (cloudpickle < 3.1) produce exactly what they always did.

_cp_code_reduce = cloudpickle.Pickler.dispatch_table[types.CodeType]


def _code_with_filename(rebuild, args, filename):
    return rebuild(*args).replace(co_filename=filename)


def _reduce_code(code: types.CodeType):
    rebuild, args = _cp_code_reduce(code)[:2]
    filename = code.co_filename
    if filename in args:
        return rebuild, args
    return _code_with_filename, (rebuild, args, filename)


class _Pickler(cloudpickle.Pickler):
    dispatch_table = ChainMap({types.CodeType: _reduce_code}, cloudpickle.Pickler.dispatch_table,
                              copyreg.dispatch_table)


def _dumps(obj, protocol: int = 5, buffer_callback=None) -> bytes:
    with io.BytesIO() as f:
        _Pickler(f, protocol=protocol, buffer_callback=buffer_callback).dump(obj)
        return f.getvalue()


@dataclass
class Serialized:
    meta: bytes
    buffers: list = field(default_factory=list)  # raw buffer objects (PickleBuffer.raw())
    contained: list = field(default_factory=list)  # ObjectRefs pickled inside the value
    is_error: bool = False

    @property
    def total_bytes(self) -> int:
        return len(self.meta) + sum(b.nbytes for b in self.buffers)


def current_contained() -> list | None:
    """The list collecting ObjectRefs of the value being pickled now (None outside pickling)."""
    return getattr(_local, "contained", None)


def serialize(value: Any, *, is_error: bool = False) -> Serialized:
    buffers: list = []
    prev = getattr(_local, "contained", None)
    contained: list = []
    _local.contained = contained
    try:
        meta = _dumps(value, protocol=5, buffer_callback=lambda pb: buffers.append(pb.raw()))
    finally:
        _local.contained = prev
    return Serialized(meta, buffers, contained, is_error)


def deserialize(meta, buffers) -> Any:
    return pickle.loads(meta, buffers=buffers)


def dumps_function(fn) -> bytes:
    return _dumps(fn, protocol=5)


# -- explaining what cannot be serialized ---------------------------------------------------

def _fails(obj) -> Exception | None:
    try:
        _dumps(obj, protocol=5)
    except Exception as e:  # noqa: BLE001 - any failure is what we are looking for
        return e
    return None


def _children(obj):
    """(label, child) pairs worth inspecting to find the unpicklable part of ``obj``."""
    if isinstance(obj, dict):
        for k, v in list(obj.items())[:200]:
            yield f"[{k!r}]", v
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for i, v in enumerate(list(obj)[:200]):
            yield f"[{i}]", v
    elif callable(obj) and hasattr(obj, "__code__"):
        closure = getattr(obj, "__closure__", None) or ()
        for name, cell in zip(obj.__code__.co_freevars, closure, strict=False):
            try:
                yield f" (closure variable {name!r})", cell.cell_contents
            except ValueError:
                continue
        g = getattr(obj, "__globals__", {})
        for name in obj.__code__.co_names:
            if name in g:
                yield f" (global {name!r})", g[name]
    else:
        d = getattr(obj, "__dict__", None)
        if isinstance(d, dict):
            for k, v in d.items():
                yield f".{k}", v


def find_unserializable(obj, label: str = "value", depth: int = 4) -> tuple[str, Any]:
    """Walk ``obj`` and return ``(path, leaf)`` of the innermost part that fails to pickle."""
    path, cur = label, obj
    for _ in range(depth):
        for child_label, child in _children(cur):
            if _fails(child) is not None:
                path, cur = path + child_label, child
                break
        else:
            break
    return path, cur


def _short_repr(obj) -> str:
    """A bounded repr (nesting cut at a few levels): a recursion-deep value, or a
    ``__repr__`` that fails, must not make the error's description fail too."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother = 4, 200, 200
    try:
        shown = r.repr(obj)
    except Exception:  # noqa: BLE001 - RecursionError, or a broken __repr__
        shown = f"<{type(obj).__module__}.{type(obj).__qualname__} object>"
    return shown[:200] + "..." if len(shown) > 200 else shown


def describe_unserializable(obj, what: str, error: Exception) -> str:
    try:
        path, leaf = find_unserializable(obj)
    except Exception:  # noqa: BLE001 - RecursionError walking it: describe the whole
        path, leaf = "value", obj
    leaf_type = f"{type(leaf).__module__}.{type(leaf).__qualname__}"
    shown = _short_repr(obj)
    msg = f"Could not serialize {what} {shown}: {type(error).__name__}: {error}."
    if path != "value" or leaf is not obj:
        msg += f" The offending field is {path} (of type {leaf_type})."
    return msg
