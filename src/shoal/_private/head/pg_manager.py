"""The head's placement-group manager: reserve bundles on nodes, atomically, or wait.

A group is placed as a whole: the head picks nodes (``placement.place``), asks each to
reserve its bundle, and if any refuses (its resources moved on since the last report) it
releases the others and tries again when the cluster's resources next change. Removing a
group releases its bundles; what runs in them is stopped by their nodes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from ..node import placement
from ..wire.aio import spawn
from ..wire.transport import Connection, ConnectionLost, RemoteError

log = logging.getLogger(__name__)

PENDING, CREATED, REMOVED = "PENDING", "CREATED", "REMOVED"


@dataclass
class PGEntry:
    pg_id: bytes
    bundles: list
    strategy: str
    name: str
    namespace: str
    job_id: int | None
    detached: bool
    state: str = PENDING
    nodes: list = field(default_factory=list)  # node id per bundle once created
    waiters: list = field(default_factory=list)
    placing: bool = False

    def public(self) -> dict:
        return {"placement_group_id": self.pg_id, "name": self.name, "state": self.state,
                "strategy": self.strategy, "bundles": self.bundles,
                "bundles_to_node_id": self.nodes, "namespace": self.namespace,
                "job_id": self.job_id, "detached": self.detached}


class PGManager:
    def __init__(self, store):
        self.store = store
        self.groups: dict[bytes, PGEntry] = {}

    def _save(self, e: PGEntry) -> None:
        db = self.store.db
        if db is not None:
            db.put_pg(e.pg_id, {k: v for k, v in e.__dict__.items()
                                if k not in ("waiters", "placing")})

    def recover(self, rows: list[dict]) -> None:
        for row in rows:
            e = PGEntry(**row)
            self.groups[e.pg_id] = e
            if e.state == PENDING:
                spawn(self._place(e))

    def handle(self, conn: Connection, kind: str, body, bufs, req_id: int) -> bool:
        if kind == "create_pg":
            self._create(conn, body, req_id)
        elif kind == "wait_pg":
            spawn(self._wait(conn, body, req_id))
        elif kind == "remove_pg":
            spawn(self._remove(conn, body, req_id))
        elif kind == "get_pg":
            e = self._by_name(body["name"], body.get("namespace", ""))
            if e is None:
                conn.reply_error(req_id, f"Failed to look up placement group with name "
                                         f"'{body['name']}'.", not_found=True)
            else:
                conn.reply(req_id, e.public())
        elif kind == "pg_table":
            conn.reply(req_id, {"groups": [e.public() for e in self.groups.values()]})
        else:
            return False
        return True

    def _by_name(self, name: str, namespace: str) -> PGEntry | None:
        for e in self.groups.values():
            if e.name == name and e.namespace == namespace and e.state != REMOVED:
                return e
        return None

    def _create(self, conn: Connection, body: dict, req_id: int) -> None:
        if body.get("name") and self._by_name(body["name"], body.get("namespace", "")):
            conn.reply_error(req_id, f"Placement group named {body['name']!r} already exists.",
                             name_taken=True)
            return
        e = PGEntry(body["pg"], body["bundles"], body["strategy"], body.get("name", ""),
                    body.get("namespace", ""), body.get("job_id"), bool(body.get("detached")))
        self.groups[e.pg_id] = e
        self._save(e)
        conn.reply(req_id, {"ok": True})
        spawn(self._place(e))

    async def _place(self, e: PGEntry) -> None:
        if e.placing or e.state != PENDING:
            return
        e.placing = True
        try:
            free = {n.node_id: n.available for n in self.store.nodes.values() if n.alive}
            chosen = placement.place(e.bundles, e.strategy, free)
            if chosen is None:
                return
            links = self.store.actors.node_links
            reserved = []
            ok = True
            for i, (bundle, nid) in enumerate(zip(e.bundles, chosen, strict=True)):
                link = links.get(nid)
                body = {"pg": e.pg_id, "index": i, "bundle": bundle}
                try:
                    got = await link.reserve_bundle(body) if link else {"ok": False}
                except (ConnectionLost, RemoteError, OSError):
                    got = {"ok": False}
                if not got.get("ok"):
                    ok = False
                    break
                reserved.append((link, body))
                node = self.store.nodes.get(nid)
                if node is not None and "total" in got:  # known now: no wait for a report
                    node.total, node.available = got["total"], got["available"]
            if not ok or e.state == REMOVED:
                for link, body in reserved:
                    await _quiet(link.release_bundle(body))
                return
            e.nodes = chosen
            e.state = CREATED
            self._save(e)
            self.store._broadcast_view()  # every node knows the bundles before anyone asks
            waiters, e.waiters = e.waiters, []
            for w in waiters:
                if not w.done():
                    w.set_result(True)
        finally:
            e.placing = False

    def resources_changed(self) -> None:
        """Cluster resources moved: pending groups may fit now."""
        for e in self.groups.values():
            if e.state == PENDING and not e.placing:
                spawn(self._place(e))

    async def _wait(self, conn: Connection, body: dict, req_id: int) -> None:
        e = self.groups.get(body["pg"])
        if e is None or e.state == REMOVED:
            conn.reply_error(req_id, "the placement group was removed", removed=True)
            return
        if e.state != CREATED:
            fut = asyncio.get_running_loop().create_future()
            e.waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                pass
            if e.state != CREATED:
                conn.reply_error(req_id, "the placement group was removed", removed=True)
                return
        conn.reply(req_id, {"ok": True})

    async def _remove(self, conn: Connection, body: dict, req_id: int) -> None:
        e = self.groups.get(body["pg"])
        if e is None:
            conn.reply_error(req_id, "no such placement group")
            return
        was = e.state
        e.state = REMOVED
        self._save(e)
        for w in e.waiters:
            if not w.done():
                w.cancel()
        e.waiters = []
        if was == CREATED:
            links = self.store.actors.node_links
            for i, nid in enumerate(e.nodes):
                link = links.get(nid)
                if link is not None:
                    got = await _quiet(link.release_bundle({"pg": e.pg_id, "index": i}))
                    node = self.store.nodes.get(nid)
                    if node is not None and got and "total" in got:
                        node.total, node.available = got["total"], got["available"]
            self.store._broadcast_view()
            self.resources_changed()
        conn.reply(req_id, {"ok": True})

    def job_finished(self, job_id: int) -> None:
        """Groups of a finished job go with it, unless detached."""
        for e in list(self.groups.values()):
            if e.job_id == job_id and not e.detached and e.state != REMOVED:
                spawn(self._remove_quiet(e))

    async def _remove_quiet(self, e: PGEntry) -> None:
        class _Null:
            def reply(self, *a, **k):
                pass

            reply_error = reply

        await self._remove(_Null(), {"pg": e.pg_id}, 0)


async def _quiet(coro):
    try:
        return await coro
    except (ConnectionLost, RemoteError, OSError):
        return None
