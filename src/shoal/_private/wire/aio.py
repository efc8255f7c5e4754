"""Small asyncio helpers."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

# asyncio keeps only weak references to tasks: one that nothing else references can be
# garbage-collected while it waits. Every fire-and-forget task is kept here until it ends.
_background: set[asyncio.Task] = set()


def spawn(coro) -> asyncio.Task:
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_done)
    return task


def _done(task: asyncio.Task) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        if not isinstance(exc, (ConnectionError, asyncio.CancelledError)):
            log.error("background task failed", exc_info=exc)
