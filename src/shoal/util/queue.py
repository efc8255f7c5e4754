"""A first-in, first-out queue shared across tasks and actors, as ``ray.util.queue``.

The items live in an async actor holding an ``asyncio.Queue``; a ``Queue`` object is a thin
client of that actor and can be passed to tasks and actors (it pickles as its actor handle).
Blocking ``get``/``put`` wait inside the actor, so many callers can wait at once.
"""

from __future__ import annotations

import asyncio
import queue as _stdlib_queue
from collections.abc import Iterable
from typing import Any

__all__ = ["Empty", "Full", "Queue"]


class Empty(_stdlib_queue.Empty):
    """Raised when getting from an empty queue without blocking, or after a timeout."""


class Full(_stdlib_queue.Full):
    """Raised when putting to a full queue without blocking, or after a timeout."""


class _QueueActor:
    """The actor owning the items. Methods report failure as a value, never by raising."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self.queue: asyncio.Queue = asyncio.Queue(maxsize)

    def qsize(self) -> int:
        return self.queue.qsize()

    def empty(self) -> bool:
        return self.queue.empty()

    def full(self) -> bool:
        return self.queue.full()

    async def put(self, item, timeout: float | None = None) -> bool:
        """Add ``item``, waiting up to ``timeout`` seconds for room; False if none came."""
        try:
            await asyncio.wait_for(self.queue.put(item), timeout)
        except TimeoutError:  # asyncio.TimeoutError is TimeoutError since 3.11
            return False
        return True

    async def get(self, timeout: float | None = None) -> tuple[bool, Any]:
        """``(True, item)``, waiting up to ``timeout`` seconds; ``(False, None)`` if none."""
        try:
            return True, await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:  # asyncio.TimeoutError is TimeoutError since 3.11
            return False, None

    async def put_nowait(self, item) -> bool:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    async def get_nowait(self) -> tuple[bool, Any]:
        try:
            return True, self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return False, None

    async def put_nowait_batch(self, items: list) -> str | None:
        """Add all of ``items`` or none of them; an error message if they do not fit."""
        size = self.queue.qsize()
        if self.maxsize > 0 and size + len(items) > self.maxsize:
            return (f"Cannot add {len(items)} items to queue of size {size} and maxsize "
                    f"{self.maxsize}.")
        for item in items:
            self.queue.put_nowait(item)
        return None

    async def get_nowait_batch(self, num_items: int) -> tuple[bool, Any]:
        """``(True, items)`` taking ``num_items`` at once, or ``(False, message)``."""
        size = self.queue.qsize()
        if num_items > size:
            return False, f"Cannot get {num_items} items from queue of size {size}."
        return True, [self.queue.get_nowait() for _ in range(num_items)]


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")


class Queue:
    """A first-in, first-out queue usable from any task or actor of the cluster.

    ``maxsize <= 0`` means unbounded. ``actor_options`` are passed to the queue actor's
    ``.options(...)`` (e.g. ``{"num_cpus": 1}`` or a ``name``).

    >>> q = Queue()
    >>> q.put(1)
    >>> q.get()
    1
    """

    def __init__(self, maxsize: int = 0, actor_options: dict | None = None) -> None:
        import shoal

        self.maxsize = maxsize
        actor_cls = shoal.remote(_QueueActor)
        if actor_options:
            actor_cls = actor_cls.options(**actor_options)
        self.actor = actor_cls.remote(self.maxsize)

    def __len__(self) -> int:
        return self.size()

    # -- state -----------------------------------------------------------------------------
    def size(self) -> int:
        """The number of items in the queue."""
        import shoal

        return shoal.get(self.actor.qsize.remote())

    def qsize(self) -> int:
        """The number of items in the queue."""
        return self.size()

    def empty(self) -> bool:
        """Whether the queue holds no item."""
        import shoal

        return shoal.get(self.actor.empty.remote())

    def full(self) -> bool:
        """Whether the queue holds ``maxsize`` items (never, if unbounded)."""
        import shoal

        return shoal.get(self.actor.full.remote())

    # -- put -------------------------------------------------------------------------------
    def _put_ref(self, item, block: bool, timeout: float | None):
        if not block:
            return self.actor.put_nowait.remote(item)
        _check_timeout(timeout)
        return self.actor.put.remote(item, timeout)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add ``item``. If the queue is full: with ``block``, wait up to ``timeout``
        seconds (None: forever) for room; raise ``Full`` if there is none."""
        import shoal

        if not shoal.get(self._put_ref(item, block, timeout)):
            raise Full

    async def put_async(self, item: Any, block: bool = True,
                        timeout: float | None = None) -> None:
        """``put`` for asyncio code: waits without blocking the event loop."""
        if not await self._put_ref(item, block, timeout):
            raise Full

    def put_nowait(self, item: Any) -> None:
        """``put(item, block=False)``."""
        return self.put(item, block=False)

    def put_nowait_batch(self, items: Iterable) -> None:
        """Add all of ``items`` in order, or raise ``Full`` (adding none) if they don't fit."""
        import shoal

        if not isinstance(items, Iterable):
            raise TypeError("Argument 'items' must be an Iterable")
        error = shoal.get(self.actor.put_nowait_batch.remote(list(items)))
        if error is not None:
            raise Full(error)

    # -- get -------------------------------------------------------------------------------
    def _get_ref(self, block: bool, timeout: float | None):
        if not block:
            return self.actor.get_nowait.remote()
        _check_timeout(timeout)
        return self.actor.get.remote(timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Take the oldest item. If the queue is empty: with ``block``, wait up to
        ``timeout`` seconds (None: forever) for one; raise ``Empty`` if none comes."""
        import shoal

        ok, item = shoal.get(self._get_ref(block, timeout))
        if not ok:
            raise Empty
        return item

    async def get_async(self, block: bool = True, timeout: float | None = None) -> Any:
        """``get`` for asyncio code: waits without blocking the event loop."""
        ok, item = await self._get_ref(block, timeout)
        if not ok:
            raise Empty
        return item

    def get_nowait(self) -> Any:
        """``get(block=False)``."""
        return self.get(block=False)

    def get_nowait_batch(self, num_items: int) -> list:
        """Take ``num_items`` items in order, or raise ``Empty`` (taking none) if there are
        fewer."""
        import shoal

        if not isinstance(num_items, int):
            raise TypeError("Argument 'num_items' must be an int")
        if num_items < 0:
            raise ValueError("'num_items' must be nonnegative")
        ok, result = shoal.get(self.actor.get_nowait_batch.remote(num_items))
        if not ok:
            raise Empty(result)
        return result

    # -- end -------------------------------------------------------------------------------
    def shutdown(self, force: bool = False, grace_period_s: int = 5) -> None:
        """End the queue's actor, releasing what it holds.

        With ``force`` it is killed at once; otherwise it is asked to leave after the calls
        already sent, and killed if it has not left within ``grace_period_s`` seconds.
        """
        import shoal

        if self.actor is not None:
            if force:
                shoal.kill(self.actor, no_restart=True)
            else:
                done = self.actor.__ray_terminate__.remote()
                _, not_done = shoal.wait([done], timeout=grace_period_s)
                if not_done:
                    shoal.kill(self.actor, no_restart=True)
        self.actor = None
