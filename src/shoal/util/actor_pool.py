"""ActorPool: spread work over a fixed set of actors, as ``ray.util.ActorPool``.

Each unit of work is ``fn(actor, value)``, which must call a method of ``actor`` and return
the ObjectRef (or list of ObjectRefs) of that call. An actor is busy from the moment work is
handed to it until its result has been taken with ``get_next``/``get_next_unordered``; work
submitted while every actor is busy waits in the pool and starts as actors come back.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["ActorPool"]

_TIMEOUT_MSG = "Timed out waiting for result"


def _refs_of(future) -> list:
    """The ObjectRefs making up one unit of work's result."""
    return list(future) if isinstance(future, (list, tuple)) else [future]


def _key_of(future):
    """A hashable key for a unit of work's result (lists become tuples)."""
    return tuple(future) if isinstance(future, list) else future


class ActorPool:
    """Operate on a fixed pool of actors.

    >>> pool = ActorPool([a1, a2])
    >>> list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3, 4]))
    [2, 4, 6, 8]
    """

    def __init__(self, actors: Iterable):
        self._idle_actors: list = list(actors)
        # key of an in-flight result -> (submission index, actor running it)
        self._future_to_actor: dict = {}
        # submission index -> in-flight result (ObjectRef or list of ObjectRefs)
        self._index_to_future: dict[int, Any] = {}
        self._next_task_index = 0
        self._next_return_index = 0
        # work submitted while no actor was idle, oldest first
        self._pending_submits: deque = deque()

    # -- bulk ------------------------------------------------------------------------------
    def map(self, fn: Callable[[Any, Any], Any], values: Iterable):
        """Apply ``fn(actor, value)`` over ``values``; an iterator of results in order.

        Work is submitted at once; results still pending from earlier submissions are
        dropped first. Iterate to the end to wait for all of the results.
        """
        self._discard_pending(ordered=True)
        for v in values:
            self.submit(fn, v)

        def results():
            while self.has_next():
                yield self.get_next()

        return results()

    def map_unordered(self, fn: Callable[[Any, Any], Any], values: Iterable):
        """Like ``map``, but results come in the order they finish."""
        self._discard_pending(ordered=False)
        for v in values:
            self.submit(fn, v)

        def results():
            while self.has_next():
                yield self.get_next_unordered()

        return results()

    def _discard_pending(self, ordered: bool) -> None:
        # As Ray: ``map`` abandons whatever earlier work has not been collected (taking any
        # that is done); ``map_unordered`` waits for the earlier work to finish.
        while self.has_next():
            try:
                if ordered:
                    self.get_next(timeout=0, ignore_if_timedout=True)
                else:
                    self.get_next_unordered(timeout=0)
            except TimeoutError:
                pass

    # -- one at a time ---------------------------------------------------------------------
    def submit(self, fn: Callable[[Any, Any], Any], value: Any) -> None:
        """Run ``fn(actor, value)`` on an idle actor, or queue it until one is idle."""
        if not self._idle_actors:
            self._pending_submits.append((fn, value))
            return
        actor = self._idle_actors.pop()
        future = fn(actor, value)
        index = self._next_task_index
        self._future_to_actor[_key_of(future)] = (index, actor)
        self._index_to_future[index] = future
        self._next_task_index += 1

    def has_next(self) -> bool:
        """Whether any submitted result has not been returned yet."""
        return bool(self._future_to_actor)

    def get_next(self, timeout: float | None = None, ignore_if_timedout: bool = False):
        """The next result in submission order, waiting up to ``timeout`` seconds.

        Raises ``TimeoutError`` if it is not ready in time; with ``ignore_if_timedout`` the
        late work is given up (its actor goes back to the pool) before raising.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return_index >= self._next_task_index:
            raise ValueError("It is not allowed to call get_next() after "
                             "get_next_unordered().")
        index = self._next_return_index
        future = self._index_to_future[index]
        timed_out = False
        if timeout is not None:
            import shoal

            refs = _refs_of(future)
            ready, _ = shoal.wait(refs, num_returns=len(refs), timeout=timeout)
            if len(ready) < len(refs):
                if not ignore_if_timedout:
                    raise TimeoutError(_TIMEOUT_MSG)
                timed_out = True
        del self._index_to_future[index]
        self._next_return_index += 1
        _, actor = self._future_to_actor.pop(_key_of(future))
        if timed_out:
            self._return_actor(actor)
            raise TimeoutError(f"{_TIMEOUT_MSG}. The task {future} has been ignored.")
        return self._get_result(future, actor)

    def get_next_unordered(self, timeout: float | None = None,
                           ignore_if_timedout: bool = False):
        """Whichever pending result is ready first, waiting up to ``timeout`` seconds.

        Raises ``TimeoutError`` if none is ready in time; with ``ignore_if_timedout`` the
        oldest pending work is given up (its actor goes back to the pool) before raising.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        key = self._wait_any(timeout)
        if key is None:
            if not ignore_if_timedout:
                raise TimeoutError(_TIMEOUT_MSG)
            index = min(i for i, _ in self._future_to_actor.values())
            future = self._index_to_future.pop(index)
            _, actor = self._future_to_actor.pop(_key_of(future))
            self._next_return_index = max(self._next_return_index, index + 1)
            self._return_actor(actor)
            raise TimeoutError(f"{_TIMEOUT_MSG}. The task {future} has been ignored.")
        index, actor = self._future_to_actor.pop(key)
        future = self._index_to_future.pop(index)
        self._next_return_index = max(self._next_return_index, index + 1)
        return self._get_result(future, actor)

    def _wait_any(self, timeout: float | None):
        """The key of an in-flight result whose refs are all ready, or None on timeout."""
        import shoal

        owner: dict = {}  # ObjectRef -> key of the result it belongs to
        for key in self._future_to_actor:
            for ref in _refs_of(key):
                owner[ref] = key
        ready: set = set()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            waiting = [r for r in owner if r not in ready]
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = shoal.wait(waiting, num_returns=1, timeout=left)
            ready.update(done)
            for ref in done:
                key = owner[ref]
                if all(r in ready for r in _refs_of(key)):
                    return key
            if not done or (deadline is not None and time.monotonic() >= deadline):
                return None

    def _get_result(self, future, actor):
        import shoal
        from shoal.exceptions import ActorDiedError

        alive = True
        try:
            return shoal.get(future)
        except ActorDiedError:
            alive = False  # a dead actor leaves the pool
            raise
        finally:
            self._return_actor(actor, alive)

    def _return_actor(self, actor, alive: bool = True) -> None:
        if alive:
            self._idle_actors.append(actor)
        if self._pending_submits and self._idle_actors:
            self.submit(*self._pending_submits.popleft())

    # -- membership ------------------------------------------------------------------------
    def has_free(self) -> bool:
        """Whether an actor is idle and no submitted work is waiting for one."""
        return bool(self._idle_actors) and not self._pending_submits

    def pop_idle(self):
        """Take an idle actor out of the pool; None if none is free."""
        if self.has_free():
            return self._idle_actors.pop()
        return None

    def push(self, actor) -> None:
        """Add an actor to the pool (it starts on waiting work at once, if any)."""
        busy = [a for _, a in self._future_to_actor.values()]
        if actor in self._idle_actors or actor in busy:
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)
