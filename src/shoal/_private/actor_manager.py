"""The head's actor manager: carries out what :mod:`actor_table` decides.

It leases a dedicated worker from a node daemon, sends the creation spec to it, watches its
connection to learn of its death (then restarts or buries it), kills or gracefully ends
actors, and answers callers asking where an actor lives.
"""

from __future__ import annotations

import asyncio
import logging

from . import actor_table as at
from .aio import spawn
from .transport import Connection, ConnectionLost, RemoteError, connect

log = logging.getLogger(__name__)


class ActorManager:
    def __init__(self, token: bytes):
        self.table = at.ActorTable()
        self.token = token
        self.node_links: dict[bytes, object] = {}  # node id -> node daemon link
        self.worker_conns: dict[bytes, Connection] = {}  # actor id -> its worker
        self.leases: dict[bytes, tuple] = {}  # worker id -> (node link, lease id)
        self.grants: dict[bytes, dict] = {}  # actor id -> its current lease grant

    # -- requests -------------------------------------------------------------------------
    def handle(self, conn: Connection, kind: str, body, bufs, req_id: int) -> bool:
        if kind == "register_actor":
            self._register(conn, body, req_id)
        elif kind == "create_actor":
            self._run(self.table.set_spec(body["aid"], body, bufs))
        elif kind == "get_actor_info":
            spawn(self._answer_info(conn, body, req_id))
        elif kind == "get_named_actor":
            e = self.table.by_name(body["name"], body["namespace"])
            if e is None:
                conn.reply_error(req_id, f"Failed to look up actor with name '{body['name']}'. "
                                         "This could because 1. You are trying to look up a "
                                         "named actor you didn't create. 2. The named actor "
                                         "died. 3. You did not use a namespace matching the "
                                         "namespace of the actor.", not_found=True)
            else:
                conn.reply(req_id, {**e.public(), "meta": e.meta})
        elif kind == "list_named_actors":
            conn.reply(req_id, {"actors": self.table.named(body.get("namespace"))})
        elif kind == "list_actors":
            conn.reply(req_id, {"actors": [e.public() for e in self.table.actors.values()]})
        elif kind == "kill_actor":
            self._run(self.table.kill(body["aid"], body.get("no_restart", True)))
            conn.reply(req_id, {"ok": True})
        elif kind == "actor_out_of_scope":
            self._run(self.table.out_of_scope(body["aid"]))
        elif kind == "actor_exiting":
            self.table.exiting(body["aid"], body.get("cause", ""))
            conn.reply(req_id, {"ok": True})
        else:
            return False
        return True

    def _register(self, conn: Connection, body: dict, req_id: int) -> None:
        opts = body.get("opts") or {}
        entry = at.ActorEntry(
            actor_id=body["aid"], class_name=body["class_name"], name=body.get("name"),
            namespace=body.get("namespace", ""), detached=bool(body.get("detached")),
            owner_id=body["owner_id"], owner_address=body.get("owner_address", ""),
            job_id=body.get("job_id"), max_restarts=opts.get("max_restarts") or 0,
            meta={"methods": body.get("methods", {}), "opts": opts,
                  "class_name": body["class_name"]},
        )
        try:
            got = self.table.register(entry, bool(body.get("get_if_exists")))
        except at.NameTaken as e:
            conn.reply_error(req_id, str(e), name_taken=True)
            return
        watched = conn.state.setdefault("actor_owners", set())
        if entry.owner_id not in watched:
            watched.add(entry.owner_id)
            owner = entry.owner_id
            conn.close_callbacks.append(lambda _c: self._run(self.table.owner_died(owner)))
        conn.reply(req_id, {"actor_id": got.actor_id, "existing": got is not entry,
                            "meta": got.meta})

    async def _answer_info(self, conn: Connection, body: dict, req_id: int) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._run(self.table.wait_for(
            body["aid"], body.get("after", -1),
            lambda e: fut.done() or fut.set_result(e.public())))
        conn.reply(req_id, await fut)

    # -- actions --------------------------------------------------------------------------
    def _run(self, actions: list) -> None:
        for a in actions:
            if isinstance(a, at.Lease):
                spawn(self._lease(a.entry))
            elif isinstance(a, at.Create):
                spawn(self._create(a.entry))
            elif isinstance(a, at.Kill):
                self._kill(a)
            elif isinstance(a, at.Notify):
                for w in a.waiters:
                    w(a.entry)

    def _pick_node(self, e: at.ActorEntry):
        for link in self.node_links.values():
            return link
        return None

    async def _lease(self, e: at.ActorEntry) -> None:
        link = self._pick_node(e)
        if link is None:
            log.error("no node to place actor %s on", e.actor_id.hex())
            return
        spec = e.spec or {}
        grant = await link.lease_worker({
            "resources": spec.get("resources") or {}, "place": spec.get("place"),
            "dedicated": True, "job_id": e.job_id,
        })
        self.leases[grant["worker_id"]] = (link, grant["lease_id"])
        self.grants[e.actor_id] = grant
        link.set_worker_job(grant["worker_id"], e.job_id)
        self._run(self.table.leased(e.actor_id, grant))

    async def _create(self, e: at.ActorEntry) -> None:
        worker_id, address = e.worker_id, e.address
        try:
            conn = await connect(address, self.token, hello={"role": "head"})
        except (TimeoutError, OSError, ConnectionError) as err:
            self._worker_gone(e.actor_id, worker_id, f"could not reach the actor's worker: {err}")
            return
        self.worker_conns[e.actor_id] = conn
        conn.close_callbacks.append(
            lambda _c: self._worker_gone(e.actor_id, worker_id,
                                         "The actor's worker process died unexpectedly."))
        spec = dict(e.spec)
        spec.update(incarnation=e.incarnation, gpu=self.grants[e.actor_id].get("gpu_ids"),
                    name=e.name, namespace=e.namespace, job=e.job_id)
        try:
            reply, _ = await conn.request("create_actor", spec, e.spec_bufs)
        except (ConnectionLost, RemoteError) as err:
            log.info("actor %s creation interrupted: %s", e.actor_id.hex(), err)
            return
        if reply.get("ok"):
            e.pid = reply.get("pid", e.pid)
            self._run(self.table.created(e.actor_id, worker_id))
        else:
            self._run(self.table.creation_failed(e.actor_id, worker_id, reply.get("error", "")))

    def _worker_gone(self, actor_id: bytes, worker_id: bytes, cause: str) -> None:
        if self.worker_conns.get(actor_id) is not None and \
                self.worker_conns[actor_id].closed:
            self.worker_conns.pop(actor_id, None)
        self._release(worker_id)
        self._run(self.table.worker_died(actor_id, worker_id, cause))

    def _release(self, worker_id: bytes) -> None:
        held = self.leases.pop(worker_id, None)
        if held is not None:
            link, lease_id = held
            link.return_lease({"lease_id": lease_id, "kill": True})

    def _kill(self, a: at.Kill) -> None:
        conn = self.worker_conns.get(a.entry.actor_id)
        if a.graceful and conn is not None and not conn.closed:
            # Ends after the calls it has already received; its lease is returned when its
            # connection closes.
            conn.send("exit_actor", {"cause": a.entry.death_cause})
            return
        self._release(a.worker_id)
