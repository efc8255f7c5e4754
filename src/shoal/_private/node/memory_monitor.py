"""The node's memory monitor: end one task's worker before the machine runs out of memory.

Every ``memory_monitor_refresh_ms`` the node's memory use is compared with
``memory_usage_threshold`` (a fraction of total memory, Ray's default 0.95). Above it, the
worker of the most recently granted task lease is killed (newest work first: it has
done the least), after telling the lease's owner, which fails or retries that task with
an ``OutOfMemoryError`` naming it. One kill at a time: the next check waits for that
worker to exit.
"""

from __future__ import annotations

import asyncio
import logging

import psutil

from ..wire.config import config

log = logging.getLogger(__name__)


def usage() -> tuple[int, int]:
    """(bytes in use, total bytes) of this machine."""
    vm = psutil.virtual_memory()
    return vm.total - vm.available, vm.total


def pick_victim(leases: list, procs: dict):
    """The task lease to end: the newest one of a non-actor worker (None if there is none)."""
    candidates = [lease for lease in leases
                  if lease.worker_id in procs and not getattr(lease, "dedicated", False)]
    if not candidates:
        candidates = [lease for lease in leases if lease.worker_id in procs]
    return max(candidates, key=lambda lease: lease.lease_id, default=None)


async def run(daemon) -> None:
    interval = config.memory_monitor_refresh_ms / 1000
    threshold = config.memory_usage_threshold
    if interval <= 0 or threshold >= 1:
        return
    while not daemon.stopping:
        await asyncio.sleep(interval)
        used, total = usage()
        if used <= threshold * total:
            continue
        lease = pick_victim(list(daemon.sched.leases.values()), daemon.procs)
        if lease is None:
            continue
        wp = daemon.procs[lease.worker_id]
        try:
            rss = psutil.Process(wp.pid).memory_info().rss
        except psutil.Error:
            rss = 0
        info = {"lease_id": lease.lease_id, "worker_id": lease.worker_id, "pid": wp.pid,
                "used": used, "total": total, "threshold": threshold, "rss": rss,
                "node_id": daemon.node_id, "ip": daemon.ip}
        log.warning("memory use %.1f%% is above the threshold %.1f%%: killing worker pid %d "
                    "(rss %d bytes)", 100 * used / total, 100 * threshold, wp.pid, rss)
        owner = lease.owner  # None for an actor's lease: its head sees it die as a crash
        if owner is not None and not owner.closed:
            owner.send("worker_oom", info)
        daemon.kill_worker(lease.worker_id)
        try:
            await asyncio.wait_for(wp.proc.wait(), 10)
        except TimeoutError:
            pass
