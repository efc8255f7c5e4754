"""A node's log files, named by ids: never by paths a client sends.

Each worker's stdout and stderr go to ``<session>/logs/worker-<worker id, 8 hex>-<pid>.log``;
the node daemon's own log is ``node.log`` (``head.log`` on the head). A client names a log by
``worker_id`` (hex, any prefix of at least 8 digits), ``pid`` or ``"node"``; this module finds
the file by listing the directory and comparing parsed fields, so no client text ever
becomes part of a path.
"""

from __future__ import annotations

import os
import re

_WORKER_LOG = re.compile(r"^worker-([0-9a-f]{8})-([0-9]+)\.log$")
DAEMON_LOGS = ("head.log", "node.log")
MAX_READ = 1 << 20  # one answer carries at most 1 MiB


class LogNotFound(LookupError):
    pass


def worker_log(name: str) -> tuple[str, int] | None:
    """``(worker id's first 8 hex digits, pid)`` of a worker log's file name, else None."""
    m = _WORKER_LOG.match(name)
    return (m.group(1), int(m.group(2))) if m else None


def list_logs(logs_dir: str, live_pids: set[int] | None = None) -> list[dict]:
    """The node's logs: one entry per worker that ever ran here, and the daemon's own."""
    out = []
    try:
        names = sorted(os.listdir(logs_dir))
    except OSError:
        return out
    for name in names:
        worker = worker_log(name)
        if worker is None and name not in DAEMON_LOGS:
            continue
        try:
            size = os.stat(os.path.join(logs_dir, name)).st_size
        except OSError:
            continue
        if worker is None:
            out.append({"kind": "node", "name": name, "size": size})
        else:
            wid, pid = worker
            out.append({"kind": "worker", "name": name, "worker_id": wid, "pid": pid,
                        "size": size, "alive": live_pids is not None and pid in live_pids})
    return out


def find_log(logs_dir: str, *, worker_id: str | None = None, pid: int | None = None,
             node: bool = False) -> str:
    """The path of the log named by exactly one of ``worker_id``, ``pid`` or ``node``."""
    if node:
        for name in DAEMON_LOGS:
            path = os.path.join(logs_dir, name)
            if os.path.exists(path):
                return path
        raise LogNotFound("this node has no daemon log")
    if worker_id is not None:
        wid = str(worker_id).lower()
        if not re.fullmatch(r"[0-9a-f]{8,64}", wid):
            raise ValueError(f"worker_id must be hexadecimal (8 to 64 digits), got {worker_id!r}")
        prefix = wid[:8]
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0):
        raise ValueError(f"pid must be a positive integer, got {pid!r}")
    if worker_id is None and pid is None:
        raise ValueError("name a log by worker_id, pid or node")
    matches = [e for e in list_logs(logs_dir) if e["kind"] == "worker"
               and (worker_id is None or e["worker_id"] == prefix)
               and (pid is None or e["pid"] == pid)]
    if not matches:
        what = f"worker {worker_id}" if worker_id is not None else f"pid {pid}"
        raise LogNotFound(f"no log of {what} on this node")
    return os.path.join(logs_dir, matches[-1]["name"])


def read_log(path: str, offset: int | None = None, tail: int | None = None,
             limit: int = MAX_READ) -> dict:
    """Bytes of a log: from ``offset`` (to follow it), or its last ``tail`` lines.

    Answers ``{"data": text, "offset": where the next read starts, "size": file size}``.
    """
    limit = max(1, min(int(limit), MAX_READ))
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if offset is None:
            lines = 1000 if tail is None else max(0, int(tail))
            start = _tail_start(f, size, lines, limit)
        else:
            start = min(max(0, int(offset)), size)
        f.seek(start)
        data = f.read(min(limit, size - start))
    return {"data": data.decode("utf-8", "replace"), "offset": start + len(data), "size": size}


def _tail_start(f, size: int, lines: int, limit: int) -> int:
    """Where the last ``lines`` lines begin (at most ``limit`` bytes before the end)."""
    if lines == 0:
        return size
    start = max(0, size - limit)
    f.seek(start)
    chunk = f.read(size - start)
    if chunk.endswith(b"\n"):
        chunk = chunk[:-1]
    cut = len(chunk)
    for _ in range(lines):
        cut = chunk.rfind(b"\n", 0, cut)
        if cut < 0:
            return start
    return start + cut + 1
