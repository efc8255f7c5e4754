"""ObjectRef: the name of an object and of its owner; a future for its value.

Defined here so that the runtime makes refs without importing a public module;
:mod:`shoal.object_ref` re-exports the class, which names that module as its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from ..wire import serialization
from .current import current_runtime_or_none


class ObjectRef:
    """A reference to an object in the cluster.

    Holding it keeps the object alive; dropping the last reference anywhere frees it.
    ``await ref`` and ``ref.future()`` give the value without blocking a thread.
    """

    __slots__ = ("_id", "_owner", "_rt", "__weakref__")

    def __init__(self, object_id: bytes, owner: str = "", _runtime=None):
        self._id = object_id
        self._owner = owner
        self._rt = _runtime
        if _runtime is not None:
            _runtime.refs.add_local(object_id, owner)

    def __del__(self):
        rt = self._rt
        if rt is not None:
            try:
                rt.ref_deleted(self._id)
            except Exception:  # interpreter shutdown: nothing to free any more
                pass

    def binary(self) -> bytes:
        return self._id

    def hex(self) -> str:
        return self._id.hex()

    def task_id(self):
        from ..wire.ids import TaskID

        return TaskID(self._id[:24])

    def owner_address(self) -> str:
        return self._owner

    def __eq__(self, other) -> bool:
        return isinstance(other, ObjectRef) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __repr__(self) -> str:
        return f"ObjectRef({self._id.hex()})"

    def __reduce__(self):
        contained = serialization.current_contained()
        if contained is not None:
            contained.append(self)
        return (_rebuild_ref, (self._id, self._owner))

    def future(self) -> concurrent.futures.Future:
        """A concurrent.futures.Future that completes with the object's value."""
        rt = self._rt
        if rt is None:
            raise RuntimeError("this ObjectRef is not attached to a running shoal runtime")
        return rt.value_future(self)

    def __await__(self):
        return asyncio.wrap_future(self.future()).__await__()

    def as_future(self) -> asyncio.Future:
        return asyncio.wrap_future(self.future())


def _rebuild_ref(object_id: bytes, owner: str) -> Any:
    rt = current_runtime_or_none()
    ref = ObjectRef(object_id, owner, rt)
    if rt is not None:
        rt.note_deserialized_ref(ref)
    return ref


ObjectRef.__module__ = "shoal.object_ref"
