"""The state API's logs (Ray's ``list_logs`` and ``get_log``): every node's log files, named
by node, worker pid, actor id, task id or a file name from the list, read whole, from their
tail, or followed. Re-exported by :mod:`shoal.util.state`."""

from __future__ import annotations

import time
from collections.abc import Iterator

from .._private.node import logs as node_logs
from .._private.wire import transport
from .state import _hex, get_task, head_request, list_actors, list_nodes


# -- logs ----------------------------------------------------------------------------------
def list_logs(address: str | None = None, node_id: str | None = None,
              node_ip: str | None = None, glob_filter: str | None = None,
              timeout: float = 30.0) -> dict:
    """Each node's log files, as Ray's ``list_logs``: ``{node_id: {"worker_out": [...],
    "node": [...]}}`` (one node's dict alone when ``node_id`` or ``node_ip`` names it)."""
    import fnmatch

    out = {}
    for n in head_request("list_logs", address=address, timeout=timeout)["nodes"]:
        nid = _hex(n["node_id"])
        if (node_id and nid != node_id) or (node_ip and n["ip"] != node_ip):
            continue
        files: dict[str, list[str]] = {"worker_out": [], "node": []}
        for e in n["logs"]:
            if glob_filter is None or fnmatch.fnmatch(e["name"], glob_filter):
                files["worker_out" if e["kind"] == "worker" else "node"].append(e["name"])
        out[nid] = files
    if node_id or node_ip:
        return next(iter(out.values()), {})
    return out


def log_source(*, node_id: str | None = None, node_ip: str | None = None,
               filename: str | None = None, actor_id: str | None = None,
               task_id: str | None = None, pid: int | None = None,
               address: str | None = None, timeout: float = 30.0) -> dict:
    """Which node and which of its logs the arguments name: ``{"node_id": bytes, and one of
    "worker_id" (hex), "pid" or "node"}``. Raises ValueError naming what is missing."""
    if actor_id:
        rows = [a for a in list_actors(detail=True, address=address, timeout=timeout,
                                       limit=1 << 30) if a["actor_id"] == actor_id]
        if not rows or not rows[0]["node_id"]:
            raise ValueError(f"no actor {actor_id!r} with a worker in this cluster")
        return {"node_id": bytes.fromhex(rows[0]["node_id"]), "pid": rows[0]["pid"]}
    if task_id:
        t = get_task(task_id, address=address, timeout=timeout)
        if t is None:
            raise ValueError(f"no task {task_id!r} is remembered by this cluster")
        if t["actor_id"]:
            return log_source(actor_id=t["actor_id"], address=address, timeout=timeout)
        if not t["worker_id"] or not t["node_id"]:
            raise ValueError(f"task {task_id} has not been given a worker yet")
        return {"node_id": bytes.fromhex(t["node_id"]), "worker_id": t["worker_id"]}
    nodes = list_nodes(address=address, timeout=timeout, limit=1 << 30)
    if node_ip and not node_id:
        node_id = next((n["node_id"] for n in nodes if n["node_ip"] == node_ip
                        and n["state"] == "ALIVE"), None)
        if node_id is None:
            raise ValueError(f"no live node at {node_ip}")
    if not node_id:
        if len([n for n in nodes if n["state"] == "ALIVE"]) != 1:
            raise ValueError("name the node (node_id or node_ip): the cluster has several")
        node_id = next(n["node_id"] for n in nodes if n["state"] == "ALIVE")
    src: dict = {"node_id": bytes.fromhex(node_id)}
    if pid is not None:
        src["pid"] = int(pid)
    elif filename:
        worker = node_logs.worker_log(filename)
        if worker is None and filename not in node_logs.DAEMON_LOGS:
            raise ValueError(f"{filename!r} is not a log name that list_logs() shows")
        if worker is None:
            src["node"] = True
        else:
            src["worker_id"], src["pid"] = worker
    else:
        src["node"] = True
    return src


def read_log(source: dict, offset: int | None = None, tail: int | None = None,
             address: str | None = None, timeout: float = 30.0) -> dict:
    """One read of the log ``source`` names (see :func:`log_source`): ``{"data", "offset",
    "size", "name"}``; pass the answer's ``offset`` back to read what was written since."""
    body = dict(source)
    if offset is not None:
        body["offset"] = offset
    if tail is not None:
        body["tail"] = tail
    try:
        return head_request("read_log", body, address=address, timeout=timeout)
    except transport.RemoteError as e:
        raise ValueError(str(e)) from None


def get_log(address: str | None = None, node_id: str | None = None,
            node_ip: str | None = None, filename: str | None = None,
            actor_id: str | None = None, task_id: str | None = None,
            pid: int | None = None, follow: bool = False, tail: int = -1,
            timeout: float = 30.0, suffix: str = "out", encoding: str | None = "utf-8",
            errors: str | None = "strict", submission_id: str | None = None,
            attempt_number: int = 0, _interval: float | None = None) -> Iterator[str]:
    """The lines of a worker's, actor's, task's or node's log (Ray's ``get_log``): all of
    it (``tail=-1``) or its last ``tail`` lines; with ``follow`` it keeps yielding lines as
    they are written, until the caller stops iterating. A worker's stdout and stderr share
    one file, so ``suffix`` is accepted and does not choose between them."""
    src = log_source(node_id=node_id, node_ip=node_ip, filename=filename, actor_id=actor_id,
                     task_id=task_id, pid=pid, address=address, timeout=timeout)
    if tail is None or tail < 0:
        got = read_log(src, offset=0, address=address, timeout=timeout)
    else:
        got = read_log(src, tail=tail, address=address, timeout=timeout)
    pending = ""
    while True:
        lines = (pending + got["data"]).split("\n")
        pending = lines.pop()
        yield from lines
        if got["offset"] >= got["size"]:
            if not follow:
                if pending:
                    yield pending
                return
            time.sleep(0.5)  # nothing new yet: poll, as tail -f does
        got = read_log(src, offset=got["offset"], address=address, timeout=timeout)
