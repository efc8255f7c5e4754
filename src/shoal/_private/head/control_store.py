"""The control store: cluster metadata kept by the head.

It holds the node table (with each node's resources as last reported), the job table, and an
internal key-value store. Node daemons and drivers talk to it with the messages in
``docs/protocol.md``; state changes are pushed to subscribers (``node_update``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from ..node.head_link import RemoteNodeLink
from ..state import task_records
from ..wire.aio import spawn
from ..wire.config import config
from ..wire.transport import Connection
from .actor_manager import ActorManager
from .persistence import HeadStore
from .pg_manager import PGManager

log = logging.getLogger(__name__)


@dataclass
class NodeEntry:
    node_id: bytes
    address: str  # where the node daemon listens
    ip: str
    total: dict
    available: dict
    alive: bool = True
    is_head: bool = False
    last_seen: float = field(default_factory=time.monotonic)
    conn: Connection | None = None
    start_time: float = field(default_factory=time.time)
    end_time: float | None = None
    death: str | None = None  # why it was declared dead

    def public(self) -> dict:
        return {
            "node_id": self.node_id,
            "address": self.address,
            "ip": self.ip,
            "total": self.total,
            "available": self.available,
            "alive": self.alive,
            "is_head": self.is_head,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "death": self.death,
        }


@dataclass
class JobEntry:
    job_id: int
    driver_pid: int
    namespace: str
    start_time: float
    end_time: float | None = None
    conn: Connection | None = None
    entrypoint: str = ""
    driver_ip: str = ""
    submission_id: str = ""  # the submitted job (Jobs API) whose entrypoint this driver is


class TaskArchive:
    """Task records that drivers hand over when they exit, so a finished job's tasks can
    still be listed and drawn: at most ``limit`` records in all, the oldest owner's dropped
    first (and counted)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.owners: list[dict] = []  # task_events replies, oldest first
        self.count = 0
        self.dropped = 0

    def add(self, reply: dict) -> None:
        if self.limit <= 0 or not reply.get("tasks"):
            return
        reply = dict(reply)
        reply["tasks"] = reply["tasks"][-self.limit:]
        self.owners.append(reply)
        self.count += len(reply["tasks"])
        while self.count > self.limit:
            oldest = self.owners[0]
            extra = self.count - self.limit
            if extra >= len(oldest["tasks"]):
                self.owners.pop(0)
                self.count -= len(oldest["tasks"])
                self.dropped += len(oldest["tasks"])
            else:
                oldest["tasks"] = oldest["tasks"][extra:]
                self.count -= extra
                self.dropped += extra

    def processes(self) -> list[dict]:
        return self.owners


class ControlStore:
    def __init__(self, token: bytes = b"", session_dir: str | None = None) -> None:
        self.actors = ActorManager(token, self)
        self.pgs = PGManager(self)
        self.nodes: dict[bytes, NodeEntry] = {}
        self.jobs: dict[int, JobEntry] = {}
        self.kv: dict[tuple[str, bytes], bytes] = {}
        self._next_job = 1
        self.subscribers: set[Connection] = set()
        self.local_daemon = None  # the head's own node daemon (same process)
        self._view_scheduled = False
        self.db = HeadStore(session_dir) if session_dir else None
        self.task_archive = TaskArchive(config.task_events_max)
        self.recovered = bool(self.db and self.db.existed)

    def recover(self) -> None:
        """A head started on an existing session: take back what the last one knew."""
        db = self.db
        self._next_job = db.meta("next_job", 1)
        for job_id, d in db.jobs().items():
            self.jobs[job_id] = JobEntry(job_id, d["pid"], d["namespace"], d["start"],
                                         d.get("end"), entrypoint=d.get("entrypoint", ""),
                                         driver_ip=d.get("ip", ""),
                                         submission_id=d.get("submission_id", ""))
        self.kv.update(db.kv())
        self.actors.recover(db.actors())
        self.pgs.recover(db.pgs())
        log.info("recovered %d jobs, %d actors, %d placement groups from %s",
                 len(self.jobs), len(self.actors.table.actors), len(self.pgs.groups), db.path)

    def _save_job(self, job: JobEntry) -> None:
        if self.db is not None:
            self.db.put_job(job.job_id, {"pid": job.driver_pid, "namespace": job.namespace,
                                         "start": job.start_time, "end": job.end_time,
                                         "entrypoint": job.entrypoint, "ip": job.driver_ip,
                                         "submission_id": job.submission_id})
            self.db.set_meta("next_job", self._next_job)

    # -- nodes ----------------------------------------------------------------------------
    def register_node(self, body: dict, conn: Connection | None, local=None) -> dict:
        entry = NodeEntry(
            node_id=body["node_id"],
            address=body["address"],
            ip=body.get("ip", "127.0.0.1"),
            total=body["total"],
            available=body.get("available", body["total"]),
            is_head=body.get("is_head", False),
        )
        entry.conn = conn
        self.nodes[entry.node_id] = entry
        if local is not None:
            self.local_daemon = local
            self.actors.node_links[entry.node_id] = local
        elif conn is not None:
            self.actors.node_links[entry.node_id] = RemoteNodeLink(conn, entry.node_id)
            conn.state["node_id"] = entry.node_id
            conn.close_callbacks.append(lambda _c: self.node_gone(entry.node_id))
            log.info("node %s joined from %s", entry.node_id.hex()[:12], entry.ip)
        self.actors.node_linked(entry.node_id)
        self._publish({"node": entry.public()})
        self._broadcast_view()  # membership changes go out at once
        self.pgs.resources_changed()
        return {"ok": True, "nodes": self.node_list()}

    def node_gone(self, node_id: bytes, why: str = "its connection closed") -> None:
        entry = self.nodes.get(node_id)
        if entry is None or not entry.alive:
            return
        log.warning("node %s is dead: %s", node_id.hex()[:12], why)
        entry.alive = False
        entry.available = {}
        entry.end_time, entry.death = time.time(), why
        self.actors.node_links.pop(node_id, None)
        if entry.conn is not None:
            entry.conn.close()
        self.actors.node_died(node_id)
        self._publish({"node": entry.public()})
        self._broadcast_view()

    async def monitor(self, timeout: float, interval: float) -> None:
        """Mark nodes dead when their heartbeats stop for ``timeout`` seconds."""
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for entry in list(self.nodes.values()):
                if entry.alive and entry.conn is not None and now - entry.last_seen > timeout:
                    self.node_gone(entry.node_id, f"no heartbeat for {timeout:.1f} s")

    def update_resources(self, body: dict) -> None:
        entry = self.nodes.get(body["node_id"])
        if entry is not None and entry.alive:
            changed = entry.available != body["available"] or \
                ("total" in body and entry.total != body["total"])
            entry.available = body["available"]
            entry.total = body.get("total", entry.total)
            entry.last_seen = time.monotonic()
            self.actors.node_reported(entry.node_id)
            if changed:
                self._schedule_view()
                self.pgs.resources_changed()

    def _schedule_view(self) -> None:
        if not self._view_scheduled:
            self._view_scheduled = True
            asyncio.get_running_loop().call_later(0.01, self._broadcast_view)

    def _broadcast_view(self) -> None:
        """Every node daemon learns every node's resources (for spillback decisions)."""
        self._view_scheduled = False
        nodes = self.node_list()
        if self.local_daemon is not None:
            self.local_daemon.on_cluster_view(nodes)
        for entry in self.nodes.values():
            if entry.alive and entry.conn is not None and not entry.conn.closed:
                entry.conn.send("cluster_view", {"nodes": nodes})

    async def fan_out(self, kind: str, body: dict | None = None) -> list[dict]:
        """Ask every live node daemon ``kind`` (node_info, list_tasks, memory_summary,
        list_logs); nodes that cannot answer are left out."""

        async def ask(link):
            try:
                return await link.ask(kind, body)
            except Exception:  # noqa: BLE001 - a node that cannot answer is left out
                return None

        links = [self.actors.node_links[n.node_id] for n in self.nodes.values()
                 if n.alive and n.node_id in self.actors.node_links]
        got = await asyncio.gather(*(ask(link) for link in links))
        return [g for g in got if g]

    async def ask_node(self, node_id: bytes, kind: str, body: dict | None = None) -> dict:
        """One node's answer; LookupError if the node is unknown or dead."""
        link = self.actors.node_links.get(node_id)
        entry = self.nodes.get(node_id)
        if link is None or entry is None or not entry.alive:
            raise LookupError(f"node {node_id.hex()} is not alive in this cluster")
        return await link.ask(kind, body)

    async def _answer_fan_out(self, conn: Connection, req_id: int, kind: str,
                              body: dict | None = None) -> None:
        if kind == "list_tasks":  # ``body``: a query (task_records.select), e.g. limit 0
            conn.reply(req_id, {"nodes": await self.task_answers(body or None)})
        else:
            conn.reply(req_id, {"nodes": await self.fan_out(kind)})

    async def task_counts(self) -> dict:
        """Task records by state (``counts``), actor calls by actor id and state
        (``actor_calls``), over every owner and the archive, and how many records were
        dropped to keep within ``task_events_max`` (``dropped``)."""
        counts: dict[str, int] = {}
        calls: dict[bytes, dict[str, int]] = {}
        dropped = self.task_archive.dropped

        def add(into: dict, state: str, n: int) -> None:
            into[state] = into.get(state, 0) + n

        for node in await self.fan_out("task_counts"):
            for proc in node["processes"]:
                dropped += proc.get("dropped", 0)
                for state, n in proc["counts"].items():
                    add(counts, state, n)
                for aid, by_state in proc["actor_calls"].items():
                    for state, n in by_state.items():
                        add(calls.setdefault(aid, {}), state, n)
        for owner in self.task_archive.processes():
            for t in owner["tasks"]:
                add(counts, t["state"], 1)
                if t.get("actor_id") is not None:
                    add(calls.setdefault(t["actor_id"], {}), t["state"], 1)
        return {"counts": counts, "actor_calls": calls, "dropped": dropped}

    async def _answer_counts(self, conn: Connection, req_id: int) -> None:
        conn.reply(req_id, await self.task_counts())

    async def task_answers(self, query: dict | None = None) -> list[dict]:
        """Every live owner's task records, and those finished drivers left with the head
        (``query``: each owner's newest that match, see ``task_records.select``)."""
        nodes = await self.fan_out("list_tasks", query)
        if self.task_archive.owners:
            procs = self.task_archive.processes()
            if query:
                procs = [{**p, "tasks": task_records.select(p["tasks"], query)} for p in procs]
            nodes.append({"node_id": b"", "processes": procs})
        return nodes

    def local_message(self, kind: str, body: dict) -> None:
        """A message from the head's own node daemon (see handle for the remote form)."""
        if kind == "job_log":
            self._forward_log(body)

    async def _flush_job_logs(self, conn: Connection, body: dict, req_id: int) -> None:
        """Every node sends what the job's workers wrote so far (lines from other nodes pass
        through here as ``job_log`` before their node's answer), then we answer."""
        await self.fan_out("flush_logs", {"job_id": body.get("job_id")})
        conn.reply(req_id, {"ok": True})

    def _forward_log(self, body: dict) -> None:
        job = self.jobs.get(body.get("job_id"))
        if job is not None and job.conn is not None and not job.conn.closed:
            job.conn.send("log_lines", body)

    def node_list(self) -> list[dict]:
        return [n.public() for n in self.nodes.values()]

    async def _read_log(self, conn: Connection, body: dict, req_id: int) -> None:
        try:
            conn.reply(req_id, await self.ask_node(body["node_id"], "read_log", body))
        except Exception as e:  # noqa: BLE001 - the reason goes back to the asker
            conn.reply_error(req_id, getattr(e, "message", None) or str(e))

    # -- jobs -----------------------------------------------------------------------------
    def register_job(self, body: dict, conn: Connection | None) -> dict:
        job_id = self._next_job
        self._next_job += 1
        job = JobEntry(job_id, body.get("pid", 0), body.get("namespace", ""), time.time(),
                       entrypoint=body.get("entrypoint", ""), driver_ip=body.get("ip", ""),
                       submission_id=str(body.get("submission_id") or ""))
        job.conn = conn
        self.jobs[job_id] = job
        self._save_job(job)
        if conn is not None:
            conn.close_callbacks.append(lambda _c: self._job_finished(job_id))
        return {"job_id": job_id}

    def job_list(self) -> list[dict]:
        return [{"job_id": j.job_id, "driver_pid": j.driver_pid, "namespace": j.namespace,
                 "start_time": j.start_time, "end_time": j.end_time,
                 "entrypoint": j.entrypoint, "driver_ip": j.driver_ip,
                 "submission_id": j.submission_id}
                for j in self.jobs.values()]

    def reattach(self, conn: Connection, body: dict) -> None:
        """A driver or worker reconnected after a head restart: its job and its actors'
        ownership follow its new connection."""
        job = self.jobs.get(body.get("job_id"))
        if job is not None and body.get("driver") and job.end_time is None:
            job.conn = conn
            conn.close_callbacks.append(lambda _c: self._job_finished(job.job_id))
        owner = body.get("owner_id")
        if owner:
            self.actors.reattach_owner(conn, owner)

    def _job_finished(self, job_id: int) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.end_time is None:
            job.end_time = time.time()
            self._save_job(job)
            self.pgs.job_finished(job_id)

    # -- key-value ------------------------------------------------------------------------
    def kv_put(self, ns: str, key: bytes, value: bytes, overwrite: bool = True) -> bool:
        k = (ns, key)
        if not overwrite and k in self.kv:
            return False
        self.kv[k] = value
        if self.db is not None:
            self.db.put_kv(ns, key, value)
        return True

    def kv_get(self, ns: str, key: bytes) -> bytes | None:
        return self.kv.get((ns, key))

    def kv_del(self, ns: str, key: bytes) -> bool:
        if self.db is not None:
            self.db.del_kv(ns, key)
        return self.kv.pop((ns, key), None) is not None

    # -- pubsub ---------------------------------------------------------------------------
    def _publish(self, event: dict) -> None:
        for conn in list(self.subscribers):
            if conn.closed:
                self.subscribers.discard(conn)
                continue
            conn.send("head_event", event)

    # -- message handling -----------------------------------------------------------------
    def handle(self, conn: Connection, kind: str, body, bufs, req_id: int) -> bool:
        """Serve a control-store message; return False if ``kind`` is not ours."""
        if kind == "register_node":
            conn.reply(req_id, self.register_node(body, conn))
        elif kind == "node_resources":
            self.update_resources(body)
        elif kind == "job_log":
            self._forward_log(body)
        elif kind == "flush_job_logs":  # a driver leaving: its workers' lines first
            spawn(self._flush_job_logs(conn, body, req_id))
        elif kind == "reattach":
            self.reattach(conn, body)
            conn.reply(req_id, {"ok": True})
        elif kind in ("memory_summary", "list_tasks", "list_logs"):
            spawn(self._answer_fan_out(conn, req_id, kind, body))
        elif kind == "nodes_info":  # every node's node_info (a node answers its own)
            spawn(self._answer_fan_out(conn, req_id, "node_info"))
        elif kind == "read_log":
            spawn(self._read_log(conn, body, req_id))
        elif kind == "task_counts":  # the whole cluster's (a node answers its own)
            spawn(self._answer_counts(conn, req_id))
        elif kind == "archive_tasks":
            self.task_archive.add(body)
            conn.reply(req_id, {"ok": True})
        elif kind == "list_jobs":
            conn.reply(req_id, {"jobs": self.job_list()})
        elif kind == "register_job":
            conn.reply(req_id, self.register_job(body, conn))
        elif kind == "get_nodes":
            conn.reply(req_id, {"nodes": self.node_list()})
        elif kind == "kv_put":
            ok = self.kv_put(body["ns"], body["key"], bufs[0], body.get("overwrite", True))
            conn.reply(req_id, {"ok": ok})
        elif kind == "kv_get":
            v = self.kv_get(body["ns"], body["key"])
            conn.reply(req_id, {"found": v is not None}, [v] if v is not None else [])
        elif kind == "kv_del":
            conn.reply(req_id, {"ok": self.kv_del(body["ns"], body["key"])})
        elif kind == "subscribe":
            self.subscribers.add(conn)
            conn.reply(req_id, {"ok": True})
        elif self.pgs.handle(conn, kind, body, bufs, req_id):
            pass
        else:
            return self.actors.handle(conn, kind, body, bufs, req_id)
        return True
