"""Streaming generators: a task or actor method that yields hands back one ref per value.

The worker sends each yielded value to the owner as it is produced (``gen_item``, on the
same connection as the final reply, so order holds). The owner makes an ObjectRef for each
and queues it in the :class:`ObjectRefGenerator` the caller holds. An exception raised by
the generator becomes the next item: iterating reaches it and ``get`` raises it. Items are
numbered, so a retried task's repeats are ignored.
"""

from __future__ import annotations

import asyncio
import threading


class ObjectRefGenerator:
    """Iterate to get an ObjectRef per value the remote generator yields, as they arrive."""

    def __init__(self, rt, task_id: bytes):
        self._rt = rt
        self._task_id = task_id
        self._refs: dict[int, object] = {}
        self._next = 1
        self._end: int | None = None  # index after the last item, once known
        self._cond = threading.Condition()

    # producer side (the runtime's loop thread) ------------------------------------------
    def _add(self, index: int, ref) -> None:
        with self._cond:
            if index >= self._next and index not in self._refs and \
                    (self._end is None or index < self._end):
                self._refs[index] = ref
            self._cond.notify_all()

    def _finish(self, count: int) -> None:
        with self._cond:
            if self._end is None:
                self._end = count + 1
            self._cond.notify_all()

    # consumer side ----------------------------------------------------------------------
    def __iter__(self):
        return self

    def __next__(self):
        ref = self._next_ref(None)
        if ref is None:
            raise StopIteration
        return ref

    def _next_ref(self, timeout: float | None):
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self._next in self._refs or
                (self._end is not None and self._next >= self._end), timeout)
            if not ok:
                raise TimeoutError("no item from the generator within the timeout")
            if self._next in self._refs:
                ref = self._refs.pop(self._next)
                self._next += 1
                return ref
            return None

    def __aiter__(self):
        return self

    async def __anext__(self):
        ref = await asyncio.to_thread(self._next_ref, None)
        if ref is None:
            raise StopAsyncIteration
        return ref

    def is_finished(self) -> bool:
        with self._cond:
            return self._end is not None and self._next >= self._end and not self._refs

    def task_id(self):
        from .ids import TaskID

        return TaskID(self._task_id)

    def __repr__(self) -> str:
        return f"ObjectRefGenerator({self._task_id.hex()})"

    def __reduce__(self):
        raise TypeError("An ObjectRefGenerator cannot be passed to another task or actor; "
                        "pass the ObjectRefs it yields instead.")
