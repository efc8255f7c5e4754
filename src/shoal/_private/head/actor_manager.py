"""The head's actor manager: carries out what :mod:`actor_table` decides.

It leases a dedicated worker from a node daemon, sends the creation spec to it, watches its
connection to learn of its death (then restarts or buries it), kills or gracefully ends
actors, and answers callers asking where an actor lives.
"""

from __future__ import annotations

import asyncio
import logging

from ..node import cluster_policy, runtime_envs
from ..wire import death_causes
from ..wire.aio import spawn
from ..wire.config import config
from ..wire.resources import ResourceSet
from ..wire.transport import Connection, ConnectionLost, RemoteError, connect
from . import actor_table as at

log = logging.getLogger(__name__)


class ActorManager:
    def __init__(self, token: bytes, store=None):
        self.store = store  # the control store (for the node table)
        self._orphans: set[bytes] = set()
        self.table = at.ActorTable(max_dead=config.dead_actors_max)
        self.token = token
        self.node_links: dict[bytes, object] = {}  # node id -> node daemon link
        self.worker_conns: dict[bytes, Connection] = {}  # actor id -> its worker
        self.leases: dict[bytes, tuple] = {}  # worker id -> (node link, lease id)
        # lease returns for nodes not linked to this head yet (a restarted head): sent on link
        self.returns_waiting: dict[bytes, list] = {}
        self.grants: dict[bytes, dict] = {}  # actor id -> its current lease grant
        # Leases asked of a node and not granted yet (node id -> actor id -> needs): the
        # node's reports do not count them, so placing several actors at once would send
        # them all to the same node, to wait there for one another.
        # Granted ones stay counted until the node's next report.
        self.placing: dict[bytes, dict[bytes, tuple[ResourceSet, bool]]] = {}

    # -- durability -----------------------------------------------------------------------
    def _row(self, e: at.ActorEntry) -> dict:
        fields = {k: v for k, v in e.__dict__.items() if k != "waiters"}
        held = self.leases.get(e.worker_id) or (None, None)
        fields["lease_node"], fields["lease_id"] = held
        return fields

    def _save(self, *entries: at.ActorEntry | None) -> None:
        """Write ``entries`` and what changed beside them (new and unused class blobs,
        deaths no action named, evicted records) in one transaction."""
        changed = self.table.take_changed()
        evicted = self.table.take_evicted()
        added, removed = self.table.blobs.take_changes()
        db = self.store.db if self.store is not None else None
        if db is None:
            return
        todo = {id(e): e for e in (*entries, *changed)
                if e is not None and self.table.actors.get(e.actor_id) is e}
        if todo or evicted or added or removed:
            db.write_actors(added, [(e.actor_id, self._row(e)) for e in todo.values()],
                            removed, evicted)

    def recover(self, rows: list[dict]) -> None:
        """Actors as the previous head left them: live ones are watched again, unfinished
        ones placed again; owners get a window to reattach."""
        lost = []
        for row in rows:
            lease_node = row.pop("lease_node", None)
            lease_id = row.pop("lease_id", None)
            e = at.ActorEntry(**row)
            if not self.table.recovered(e):
                lost.append(e)
            if e.worker_id is not None and lease_node is not None:
                self.leases[e.worker_id] = (lease_node, lease_id)
            if e.state == at.ALIVE and e.address:
                spawn(self._rewatch(e))
            elif e.state in (at.PENDING, at.RESTARTING) and e.spec is not None:
                e.worker_id = e.address = None
                spawn(self._lease(e))
        for e in lost:  # its class is gone: alive, it runs on but cannot restart
            e.no_restart = True
            if e.state != at.ALIVE:
                self._run(self.table.creation_aborted(
                    e.actor_id, "its class was lost from the head's control store"))
        self._save()
        if self.store is not None and self.store.db is not None:
            self.store.db.drop_unused_blobs()
        self._orphans = {e.owner_id for e in self.table.actors.values()
                         if not e.detached and e.state != at.DEAD}
        asyncio.get_running_loop().call_later(
            config.head_reconnect_timeout_s, self._bury_orphans)

    async def _rewatch(self, e: at.ActorEntry) -> None:
        worker_id = e.worker_id
        try:
            conn = await connect(e.address, self.token, hello={"role": "head"})
        except (OSError, ConnectionError, TimeoutError):
            self._worker_gone(e.actor_id, worker_id, death_causes.worker_died_cause(
                "SYSTEM_ERROR", "The actor's worker died while the head was away."))
            return
        self._watch_worker(e.actor_id, worker_id, conn)

    def reattach_owner(self, conn: Connection, owner_id: bytes) -> None:
        self._orphans.discard(owner_id)
        watched = conn.state.setdefault("actor_owners", set())
        if owner_id not in watched:
            watched.add(owner_id)
            conn.close_callbacks.append(lambda _c: self._run(self.table.owner_died(owner_id)))

    def _bury_orphans(self) -> None:
        """Owners that did not come back within the reconnect window have died."""
        for owner in list(self._orphans):
            self._run(self.table.owner_died(owner))
        self._orphans.clear()

    # -- requests -------------------------------------------------------------------------
    def handle(self, conn: Connection, kind: str, body, bufs, req_id: int) -> bool:
        if kind == "register_actor":
            self._register(conn, body, req_id)
        elif kind == "create_actor":
            self._run(self.table.set_spec(body["aid"], body, bufs))
            self._save(self.table.actors.get(body["aid"]))
        elif kind == "actor_creation_failed":
            self._run(self.table.creation_aborted(body["aid"], body.get("error", "")))
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
            self.table.exiting(body["aid"], body.get("exit_type") or "INTENDED_USER_EXIT",
                               body.get("detail") or body.get("cause", ""),
                               body.get("intended", True))
            self._save(self.table.actors.get(body["aid"]))
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
        self._save(got)
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
            lambda e: fut.done() or fut.set_result(e.public()),
            restarting=bool(body.get("restarting"))))
        conn.reply(req_id, await fut)

    # -- actions --------------------------------------------------------------------------
    def _run(self, actions: list) -> None:
        self._save(*{id(a.entry): a.entry for a in actions}.values())
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

    def _pick_node(self, e: at.ActorEntry) -> bytes | None:
        """The node to ask first: the policy's choice over the nodes the head knows."""
        store = self.store
        if store is None or not self.node_links:
            return next(iter(self.node_links), None)
        me = store.local_daemon.node_id if store.local_daemon is not None else None
        view = cluster_policy.ClusterView(me or b"")
        for n in store.nodes.values():
            avail = dict(n.available)
            for aid, (other, _granted) in self.placing.get(n.node_id, {}).items():
                if aid != e.actor_id:  # what others were promised, never below nothing
                    for k, v in other.to_dict().items():
                        if k in avail:
                            avail[k] = max(0, avail[k] - v)
            view.update(n.node_id, n.address, n.total, avail, n.alive)
        spec = e.spec or {}
        needs = ResourceSet(spec.get("place") or spec.get("resources") or {})
        strategy = spec.get("strategy")
        mine = view.nodes.get(me)
        try:
            where = cluster_policy.choose(
                view, needs, strategy,
                local_fits_now=mine is not None and needs.fits_in(mine.available))
        except cluster_policy.Unschedulable:
            return None
        if where in (cluster_policy.LOCAL, cluster_policy.INFEASIBLE):
            return me if me in self.node_links else next(iter(self.node_links), None)
        return where if where in self.node_links else next(iter(self.node_links), None)

    async def _lease(self, e: at.ActorEntry) -> None:
        """Lease a dedicated worker for ``e``, following spillbacks, retrying on node loss."""
        spec = e.spec or {}
        body = {"resources": spec.get("resources") or {}, "place": spec.get("place"),
                "dedicated": True, "job_id": e.job_id, "spilled": True}
        if spec.get("env_key"):
            body["env_key"], body["runtime_env"] = spec["env_key"], spec.get("runtime_env")
        node_id = self._pick_node(e)
        grant = None
        for _ in range(100):
            link = self.node_links.get(node_id) if node_id is not None else None
            if link is None:
                await asyncio.sleep(0.5)  # no node can take it yet: wait for one to join
                node_id = self._pick_node(e)
                continue
            placing = self.placing.setdefault(node_id, {})
            placing[e.actor_id] = (
                ResourceSet(spec.get("place") or spec.get("resources") or {}), False)
            try:
                grant = await link.lease_worker(body)
            except (runtime_envs.SetupError, RemoteError) as err:
                if isinstance(err, RemoteError) and not err.body.get("runtime_env_setup"):
                    placing.pop(e.actor_id, None)
                    log.warning("lease for actor %s on node %s failed: %s", e.actor_id.hex(),
                                node_id.hex()[:12], err)
                    node_id = self._pick_node(e)
                    continue
                placing.pop(e.actor_id, None)
                why = err.body.get("error", str(err)) if isinstance(err, RemoteError) else str(err)
                self._run(self.table.creation_aborted(
                    e.actor_id, f"RuntimeEnvSetupError: Failed to set up the runtime "
                    f"environment.\n{why}"))
                return
            except (ConnectionLost, cluster_policy.Unschedulable) as err:
                placing.pop(e.actor_id, None)
                log.warning("lease for actor %s on node %s failed: %s", e.actor_id.hex(),
                            node_id.hex()[:12], err)
                node_id = self._pick_node(e)
                continue
            except BaseException:
                placing.pop(e.actor_id, None)
                raise
            if "spillback" in grant:
                placing.pop(e.actor_id, None)
                node_id = grant["node_id"]
                continue
            break
        if grant is not None and "lease_id" in grant and node_id in self.placing:
            needs = self.placing[node_id].pop(e.actor_id, (None, False))[0]
            if needs is not None and e.state != at.DEAD:
                self.placing[node_id][e.actor_id] = (needs, True)
        if grant is None or "spillback" in grant or e.state == at.DEAD:
            if grant is not None and "lease_id" in grant:
                self.node_links[node_id].return_lease({"lease_id": grant["lease_id"],
                                                       "kill": True})
            return
        self.leases[grant["worker_id"]] = (node_id, grant["lease_id"])
        node = self.store.nodes.get(node_id) if self.store is not None else None
        grant["ip"] = getattr(node, "ip", None) or "127.0.0.1"
        self.grants[e.actor_id] = grant
        link.set_worker_job(grant["worker_id"], e.job_id)
        self._run(self.table.leased(e.actor_id, grant))

    def node_reported(self, node_id: bytes) -> None:
        """A node's resource report arrived: the leases it granted before are counted in
        it now (the report follows the grant on the same connection)."""
        placing = self.placing.get(node_id)
        if placing:
            for aid in [a for a, (_needs, granted) in placing.items() if granted]:
                del placing[aid]

    async def _create(self, e: at.ActorEntry) -> None:
        worker_id, address = e.worker_id, e.address
        try:
            conn = await connect(address, self.token, hello={"role": "head"})
        except (TimeoutError, OSError, ConnectionError) as err:
            self._worker_gone(e.actor_id, worker_id, death_causes.worker_died_cause(
                "SYSTEM_ERROR", f"could not reach the actor's worker: {err}"))
            return
        if e.state == at.DEAD or e.spec is None:  # died while we connected: already killed
            conn.close()
            return
        self._watch_worker(e.actor_id, worker_id, conn)
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
        self._save(e)

    def _watch_worker(self, actor_id: bytes, worker_id: bytes, conn: Connection) -> None:
        """The actor's death is seen here first: its worker's connection closes."""
        self.worker_conns[actor_id] = conn
        crashed = death_causes.worker_died_cause("SYSTEM_ERROR", death_causes.CRASHED)
        conn.close_callbacks.append(
            lambda _c: self._worker_gone(actor_id, worker_id, crashed, death_causes.CRASHED))

    def _worker_gone(self, actor_id: bytes, worker_id: bytes, cause: str,
                     detail: str = "") -> None:
        if self.worker_conns.get(actor_id) is not None and \
                self.worker_conns[actor_id].closed:
            self.worker_conns.pop(actor_id, None)
        self._release(worker_id)
        self._run(self.table.worker_died(actor_id, worker_id, cause, detail))

    def _release(self, worker_id: bytes) -> None:
        held = self.leases.pop(worker_id, None)
        if held is not None:
            node_id, lease_id = held
            link = self.node_links.get(node_id)
            if link is not None:
                link.return_lease({"lease_id": lease_id, "kill": True})
            else:  # not linked (yet) to this head, as just after a head restart: on link
                self.returns_waiting.setdefault(node_id, []).append(
                    {"lease_id": lease_id, "kill": True})

    def node_linked(self, node_id: bytes) -> None:
        """A node (re)joined: give it the leases ended while it was not linked."""
        link = self.node_links.get(node_id)
        for body in self.returns_waiting.pop(node_id, ()):
            link.return_lease(body)

    def node_died(self, node_id: bytes) -> None:
        """Actors on a dead node have died with it (restarted elsewhere if they may)."""
        for e in list(self.table.actors.values()):
            if e.node_id == node_id and e.worker_id is not None and e.state != at.DEAD:
                conn = self.worker_conns.pop(e.actor_id, None)
                if conn is not None:
                    conn.close()
                self.leases.pop(e.worker_id, None)
                self._run(self.table.worker_died(e.actor_id, e.worker_id,
                                                 death_causes.node_died_cause(node_id)))

    def _kill(self, a: at.Kill) -> None:
        conn = self.worker_conns.get(a.entry.actor_id)
        if a.graceful and conn is not None and not conn.closed:
            # Ends after the calls it has already received; its lease is returned when its
            # connection closes.
            conn.send("exit_actor", {"cause": a.entry.death_cause})
            return
        self._release(a.worker_id)
