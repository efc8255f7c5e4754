"""What a node daemon answers about itself: its memory view, its processes' task records,
its machine's use, and its log files (named by ids; see :mod:`node_logs`)."""

from __future__ import annotations

import asyncio
import os

from ..wire.aio import spawn
from ..wire.transport import ConnectionLost, RemoteError
from . import logs as node_logs
from . import output as node_output
from . import stats as node_stats


class NodeObserver:
    """A part of :class:`daemon.NodeDaemon` (``daemon.observe``): the state API's and the
    dashboard's questions. It reads the daemon's state, and owns the set of the node's
    processes it asks them of."""

    def __init__(self, daemon):
        self.daemon = daemon  # read: its resources, store, workers, pending leases (and flush)
        self.node_id = daemon.node_id
        self.ip = daemon.ip
        self.is_head = daemon.is_head
        self.logs_dir = os.path.join(daemon.session_dir, "logs")
        self.owner_conns: set = set()  # every driver and worker of this node (register_owner)

    def add_owner(self, conn) -> None:
        """A driver or worker of this node: asked when the node is (until it disconnects)."""
        self.owner_conns.add(conn)
        conn.close_callbacks.append(self.owner_conns.discard)

    def node_info(self) -> dict:
        d = self.daemon
        return {
            "node_id": self.node_id, "ip": self.ip, "is_head": self.is_head,
            "total": d.res.total.to_dict(), "available": d.res.available.to_dict(),
            "store": d.store.state.stats(),
            "workers": [{"pid": w.pid, "worker_id": w.worker_id, "job_id": w.job_id}
                        for w in d.procs.values()],
            "machine": node_stats.machine_stats(d.session_dir),
            "pending_leases": len(d.pending_replies),
        }

    async def memory_summary(self) -> dict:
        """This node's store and what each of its processes owns and borrows."""
        replies = await self.gather("owned_objects")
        state = self.daemon.store.state
        segments = {p: {"size": e.size, "pins": e.pins, "spilled": e.spilled is not None,
                        "replica": e.replica, "freed": e.freed}
                    for p, e in state.entries.items()}
        return {"node_id": self.node_id, "ip": self.ip, "store": state.stats(),
                "segments": segments, "processes": replies}

    async def gather(self, kind: str, body: dict | None = None) -> list[dict]:
        """Ask every process of this node for ``kind`` (task_events, ...)."""

        async def ask(conn):
            try:
                return (await conn.request(kind, body or {}, timeout=5))[0]
            except (ConnectionLost, RemoteError, TimeoutError):
                return None

        got = await asyncio.gather(*(ask(c) for c in list(self.owner_conns) if not c.closed))
        return [g for g in got if g]

    async def list_tasks(self, kind: str = "task_events", query: dict | None = None) -> dict:
        """Every owner's task records here (``query``: only the newest that match, see
        ``task_records.select``); or, by ``kind``, their counts (``task_counts``) or their
        application metrics (``app_metrics``)."""
        return {"node_id": self.node_id, "processes": await self.gather(kind, query)}

    def list_logs(self) -> dict:
        live = {w.pid for w in self.daemon.procs.values()}
        return {"node_id": self.node_id, "ip": self.ip,
                "logs": node_logs.list_logs(self.logs_dir, live)}

    def read_log(self, body: dict) -> dict:
        """A log by ``worker_id``/``pid``/``node`` from ``offset`` or its last ``tail`` lines
        (raises ValueError or node_logs.LogNotFound with a message for the caller)."""
        wid = body.get("worker_id")
        if isinstance(wid, (bytes, bytearray)):
            wid = wid.hex()
        path = node_logs.find_log(self.logs_dir, worker_id=wid, pid=body.get("pid"),
                                  node=bool(body.get("node")))
        out = node_logs.read_log(path, body.get("offset"), body.get("tail"),
                                 body.get("limit", node_logs.MAX_READ))
        out["name"] = os.path.basename(path)
        return out

    async def ask(self, kind: str, body: dict | None = None) -> dict:
        """The in-process form of the questions below (the head's own node)."""
        body = body or {}
        if kind == "memory_summary":
            return await self.memory_summary()
        if kind == "list_tasks":
            return await self.list_tasks(query=body)
        if kind in ("task_counts", "app_metrics"):
            return await self.list_tasks(kind)
        if kind == "node_info":
            return self.node_info()
        if kind == "list_logs":
            return self.list_logs()
        if kind == "flush_logs":
            return await node_output.flush(self.daemon, body.get("job_id"))
        if kind == "read_log":
            return self.read_log(body)
        if kind == "cancel_owned_task":
            return self.cancel_owned_task(body)
        raise ValueError(f"unknown question {kind!r}")

    def cancel_owned_task(self, body: dict) -> dict:
        """Pass a cancellation to the process that owns the task (it alone can cancel)."""
        for conn in list(self.owner_conns):
            if conn.state.get("owner_id") == body["owner_id"] and not conn.closed:
                conn.send("cancel_owned_task", {"task_id": body["task_id"],
                                                "force": bool(body.get("force"))})
                return {"ok": True}
        raise LookupError("the task's owner is not connected to this node any more")

    def handle(self, conn, kind: str, body, req_id: int) -> bool:
        """Answer ``kind`` if it is one of these questions; False if it is not."""
        if kind == "memory_summary":
            spawn(self._reply_when(conn, req_id, self.memory_summary()))
        elif kind == "list_tasks":
            spawn(self._reply_when(conn, req_id, self.list_tasks(query=body)))
        elif kind in ("task_counts", "app_metrics"):
            spawn(self._reply_when(conn, req_id, self.list_tasks(kind)))
        elif kind == "node_info":
            conn.reply(req_id, self.node_info())
        elif kind == "list_logs":
            conn.reply(req_id, self.list_logs())
        elif kind == "flush_logs":
            spawn(self._reply_when(conn, req_id, node_output.flush(self.daemon, body.get("job_id"))))
        elif kind in ("read_log", "cancel_owned_task"):
            op = self.read_log if kind == "read_log" else self.cancel_owned_task
            try:
                conn.reply(req_id, op(body))
            except (ValueError, LookupError, OSError) as e:
                conn.reply_error(req_id, str(e).strip("'\""))
        else:
            return False
        return True

    @staticmethod
    async def _reply_when(conn, req_id, coro) -> None:
        conn.reply(req_id, await coro)
