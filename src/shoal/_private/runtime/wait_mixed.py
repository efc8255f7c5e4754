"""``wait()`` over ObjectRefs and ObjectRefGenerators together.

As in Ray, a generator counts as ready when its next item has arrived (its ref is then
ready too: the owner records a streamed item's value before handing out its ref) or when
the stream has ended, so ``next()`` would not block. The caller's thread sleeps on one
event, set by the generators' listeners and by the I/O loop when one of the refs becomes
ready, and looks again each time it is set.
"""

from __future__ import annotations

import asyncio
import threading
import time

from .generator import ObjectRefGenerator


def _flags(rt, items: list) -> list[bool]:
    refs = [x for x in items if not isinstance(x, ObjectRefGenerator)]
    ref_flags = iter(rt._ready_flags(refs)) if refs else iter(())
    return [x._ready() if isinstance(x, ObjectRefGenerator) else next(ref_flags)
            for x in items]


def wait_mixed(rt, items: list, num_returns: int, timeout: float | None):
    deadline = None if timeout is None else time.monotonic() + timeout
    changed = threading.Event()
    gens = [x for x in items if isinstance(x, ObjectRefGenerator)]
    for g in gens:
        g._listen(changed.set)
    pending = None
    try:
        while True:
            changed.clear()
            flags = _flags(rt, items)
            left = None if deadline is None else deadline - time.monotonic()
            if sum(flags) >= num_returns or (left is not None and left <= 0):
                break
            waiting = [x for x, ok in zip(items, flags, strict=True)
                       if not ok and not isinstance(x, ObjectRefGenerator)]
            if waiting and pending is None:
                pending = asyncio.run_coroutine_threadsafe(
                    rt._wait(waiting, [False] * len(waiting), 1), rt.loop)
                pending.add_done_callback(lambda _f: changed.set())
            changed.wait(left)
            if pending is not None and pending.done():
                pending = None
    finally:
        for g in gens:
            g._unlisten(changed.set)
        if pending is not None:
            pending.cancel()
    ready, not_ready = [], []
    for x, ok in zip(items, flags, strict=True):
        (ready if ok and len(ready) < num_returns else not_ready).append(x)
    return ready, not_ready
