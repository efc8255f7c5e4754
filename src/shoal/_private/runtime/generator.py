"""Streaming generators: a task or actor method that yields hands back one ref per value.

The worker sends each yielded value to the owner as it is produced (``gen_item``, on the
same connection as the final reply, so order holds). The owner makes an ObjectRef for each
and queues it in the :class:`ObjectRefGenerator` the caller holds. An exception raised by
the generator becomes the next item: iterating reaches it and ``get`` raises it. Items are
numbered, so a retried task's repeats are ignored.

``num_returns="dynamic"`` (deprecated in Ray, still supported) runs the same way on the
wire; the caller gets one ObjectRef instead, whose value, set when the stream ends, is a
:class:`DynamicObjectRefGenerator` of the items' refs (an error raised by the generator is
its last item, as in Ray; a task that fails as a whole makes the ref itself an error).
"""

from __future__ import annotations

import asyncio
import collections
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
        self._listeners: list = []  # called (under the lock) whenever an item or the end comes

    # producer side (the runtime's loop thread) ------------------------------------------
    def _add(self, index: int, ref) -> None:
        with self._cond:
            if index >= self._next and index not in self._refs and \
                    (self._end is None or index < self._end):
                self._refs[index] = ref
            self._cond.notify_all()
            self._notify()

    def _finish(self, count: int) -> None:
        with self._cond:
            if self._end is None:
                self._end = count + 1
            self._cond.notify_all()
            self._notify()

    def _notify(self) -> None:
        for fn in self._listeners:
            fn()

    # waiting (``wait([gen])``): ready once the next item is there or the stream ended --
    def _ready(self) -> bool:
        with self._cond:
            return self._next in self._refs or (self._end is not None and
                                                self._next >= self._end)

    def _listen(self, fn) -> None:
        with self._cond:
            self._listeners.append(fn)

    def _unlisten(self, fn) -> None:
        with self._cond:
            if fn in self._listeners:
                self._listeners.remove(fn)

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
        from ..wire.ids import TaskID

        return TaskID(self._task_id)

    def __repr__(self) -> str:
        return f"ObjectRefGenerator({self._task_id.hex()})"

    def __reduce__(self):
        raise TypeError("An ObjectRefGenerator cannot be passed to another task or actor; "
                        "pass the ObjectRefs it yields instead.")


class DynamicObjectRefGenerator:
    """The value of a ``num_returns="dynamic"`` task's ref: iterate for the items' refs."""

    def __init__(self, refs):
        self._refs = collections.deque(refs)

    def __iter__(self):
        while self._refs:
            yield self._refs.popleft()

    def __len__(self) -> int:
        return len(self._refs)


class DynamicCollector:
    """Owner side of a ``num_returns="dynamic"`` task: gathers the streamed items' refs and,
    when the stream ends, sets the task's one ref to a DynamicObjectRefGenerator of them.
    Runs on the runtime's I/O loop (where ``_add``/``_finish``/``_fail`` are called)."""

    def __init__(self, rt, outer_id: bytes):
        self._rt = rt
        self._outer = outer_id
        self._items: dict[int, object] = {}
        self._done = False

    def _add(self, index: int, ref) -> None:
        if not self._done:
            self._items.setdefault(index, ref)

    def _finish(self, count: int) -> None:
        from ..wire import serialization
        from .ownership import Value

        if self._done:
            return
        self._done = True
        refs = [self._items[i] for i in sorted(self._items) if i <= count]
        self._items = {}
        ser = serialization.serialize(DynamicObjectRefGenerator(refs))
        value = Value(False, bytes(ser.meta), [bytes(b) for b in ser.buffers],
                      size=ser.total_bytes)
        self._rt._set_one(self._outer, value, list(ser.contained))

    def _fail(self, value) -> None:
        """The task failed as a whole (not inside the generator): the ref is the error."""
        if self._done:
            return
        self._done = True
        self._items = {}
        self._rt._set_one(self._outer, value, None)
