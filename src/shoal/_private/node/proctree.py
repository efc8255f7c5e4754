"""Processes a worker started, found and ended with it (issue 13 item 18).

A task may fork a child into a session of its own (``setsid``, ``start_new_session``): the
worker's process group does not hold it, and it outlived the worker and ``shutdown()``. Two
things keep such descendants findable: the daemon is its descendants' *child subreaper*
(Linux ``PR_SET_CHILD_SUBREAPER``), so an orphan is re-parented to the daemon instead of
init and stays in its process tree; and every worker is started with ``SHOAL_WORKER_ID`` in
its environment, which its descendants inherit. When a worker exits, and when the node stops,
the daemon's descendants carrying a dead worker's id are killed (and reaped, when they are
the daemon's own children now). Processes the daemon starts otherwise (job drivers) carry no
such id and are left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal

import psutil

log = logging.getLogger(__name__)

WORKER_ENV = "SHOAL_WORKER_ID"
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (Linux); whether it did."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def descendants_of_workers(worker_ids: set[str] | None,
                           spare: set[int] = frozenset()) -> list:
    """This process's descendants started under one of ``worker_ids`` (hex; None: under
    any worker), except the pids in ``spare`` (the workers themselves, while they run)."""
    try:
        procs = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    found = []
    for p in procs:
        if p.pid in spare:
            continue
        try:
            wid = p.environ().get(WORKER_ENV)
            if wid is not None and (worker_ids is None or wid in worker_ids):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def kill_descendants(worker_ids: set[str] | None, spare: set[int] = frozenset()) -> list[int]:
    """SIGKILL what ``descendants_of_workers`` finds, reap those that are our children;
    the pids killed."""
    me = os.getpid()
    killed = []
    for p in descendants_of_workers(worker_ids, spare):
        with contextlib.suppress(psutil.Error, OSError):
            parent = p.ppid()
            p.send_signal(signal.SIGKILL)
            killed.append(p.pid)
            if parent == me:
                reap(p.pid)
    if killed:
        log.info("killed %d processes left behind by workers: %s", len(killed), killed)
    return killed


def reap(pid: int) -> None:
    """Collect an orphan that became our child (no one else waits for it)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)
