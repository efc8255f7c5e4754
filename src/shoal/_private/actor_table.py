"""The head's actor table: each actor's lifecycle as a pure state machine.

States: ``PENDING`` (registered, waiting for its creation spec or a worker), ``ALIVE``,
``RESTARTING`` (its process died and restarts remain), ``DEAD``. Events come from creators,
node daemons and workers; each returns actions for the head to carry out (lease a worker,
create the instance, kill a process, answer the callers waiting for an address). No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PENDING, ALIVE, RESTARTING, DEAD = "PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"


@dataclass
class ActorEntry:
    actor_id: bytes
    class_name: str
    name: str | None
    namespace: str
    detached: bool
    owner_id: bytes  # worker id of the process that created it
    owner_address: str
    job_id: int | None
    max_restarts: int
    meta: dict = field(default_factory=dict)  # method metadata for handles made by name
    state: str = PENDING
    num_restarts: int = 0
    incarnation: int = 0
    spec: dict | None = None  # creation spec (class, args, resources), kept for restarts
    spec_bufs: list = field(default_factory=list)
    address: str | None = None
    worker_id: bytes | None = None
    node_id: bytes | None = None
    lease_id: int | None = None
    pid: int | None = None
    death_cause: str = ""
    waiters: list = field(default_factory=list)  # callables(entry) run on ALIVE or DEAD
    no_restart: bool = False  # the next death is final (killed or exited on purpose)

    def public(self) -> dict:
        return {
            "actor_id": self.actor_id, "class_name": self.class_name, "name": self.name or "",
            "namespace": self.namespace, "state": self.state, "address": self.address,
            "incarnation": self.incarnation, "num_restarts": self.num_restarts,
            "death_cause": self.death_cause, "pid": self.pid, "node_id": self.node_id,
            "job_id": self.job_id, "detached": self.detached, "worker_id": self.worker_id,
            "max_restarts": self.max_restarts,
        }


# Actions ---------------------------------------------------------------------------------
@dataclass
class Lease:
    entry: ActorEntry


@dataclass
class Create:
    entry: ActorEntry


@dataclass
class Kill:
    entry: ActorEntry
    worker_id: bytes
    lease_id: int | None
    graceful: bool = False


@dataclass
class Notify:
    entry: ActorEntry
    waiters: list


class NameTaken(ValueError):
    pass


class ActorTable:
    def __init__(self) -> None:
        self.actors: dict[bytes, ActorEntry] = {}
        self.names: dict[tuple[str, str], bytes] = {}

    # -- creation -------------------------------------------------------------------------
    def register(self, entry: ActorEntry, get_if_exists: bool = False) -> ActorEntry:
        """Add an actor; a taken name raises NameTaken unless ``get_if_exists``."""
        if entry.name:
            key = (entry.namespace, entry.name)
            existing = self.names.get(key)
            if existing is not None and self.actors[existing].state != DEAD:
                if get_if_exists:
                    return self.actors[existing]
                raise NameTaken(f"The name {entry.name!r} (namespace={entry.namespace!r}) is "
                                "already taken by another actor.")
            self.names[key] = entry.actor_id
        self.actors[entry.actor_id] = entry
        return entry

    def set_spec(self, actor_id: bytes, spec: dict, bufs: list) -> list:
        e = self.actors.get(actor_id)
        if e is None or e.state == DEAD:
            return []
        e.spec, e.spec_bufs = spec, bufs
        return [Lease(e)]

    def leased(self, actor_id: bytes, grant: dict) -> list:
        e = self.actors.get(actor_id)
        if e is None or e.state == DEAD:
            return [Kill(e, grant["worker_id"], grant["lease_id"])] if e else []
        e.worker_id, e.lease_id = grant["worker_id"], grant["lease_id"]
        e.address, e.pid, e.node_id = grant["address"], grant.get("pid"), grant.get("node_id")
        return [Create(e)]

    def created(self, actor_id: bytes, worker_id: bytes) -> list:
        e = self.actors.get(actor_id)
        if e is None or e.worker_id != worker_id:
            return []
        if e.state == DEAD:
            return [Kill(e, worker_id, e.lease_id)]
        e.state = ALIVE
        return self._notify(e)

    def creation_failed(self, actor_id: bytes, worker_id: bytes, error: str) -> list:
        """``__init__`` raised: the actor is dead, with that error as its cause."""
        e = self.actors.get(actor_id)
        if e is None or e.worker_id != worker_id:
            return []
        return self._die(e, f"The actor died because of an error raised in its creation "
                            f"task:\n{error}", graceful=False)

    def creation_aborted(self, actor_id: bytes, why: str) -> list:
        """The creator could not send a spec (an argument failed): dead before it lived."""
        e = self.actors.get(actor_id)
        if e is None or e.state == DEAD:
            return []
        return self._die(e, f"The actor could not be created: {why}", graceful=False)

    # -- death ----------------------------------------------------------------------------
    def worker_died(self, actor_id: bytes, worker_id: bytes, cause: str) -> list:
        e = self.actors.get(actor_id)
        if e is None or e.state == DEAD or e.worker_id != worker_id:
            return []
        lease_id = e.lease_id
        e.address = e.worker_id = e.lease_id = None
        if not e.no_restart and (e.max_restarts < 0 or e.num_restarts < e.max_restarts):
            e.state = RESTARTING
            e.num_restarts += 1
            e.incarnation += 1
            return [Kill(e, worker_id, lease_id), Lease(e)]
        e.state = DEAD
        if not e.death_cause:
            e.death_cause = cause
        return [Kill(e, worker_id, lease_id)] + self._notify(e)

    def kill(self, actor_id: bytes, no_restart: bool = True, cause: str = "") -> list:
        """``shoal.kill``: end the process now; restart it unless ``no_restart``."""
        e = self.actors.get(actor_id)
        if e is None or e.state == DEAD:
            return []
        if no_restart:
            return self._die(e, cause or "The actor was killed by shoal.kill().",
                             graceful=False)
        if e.worker_id is None:
            return []
        return [Kill(e, e.worker_id, e.lease_id)]

    def exiting(self, actor_id: bytes, cause: str) -> None:
        """The actor is leaving on purpose (exit_actor, __ray_terminate__): no restart."""
        e = self.actors.get(actor_id)
        if e is not None:
            e.no_restart = True
            e.death_cause = cause

    def owner_died(self, owner_id: bytes) -> list:
        actions: list = []
        for e in list(self.actors.values()):
            if e.owner_id == owner_id and not e.detached and e.state != DEAD:
                actions += self._die(e, "The actor's owner (the process that created it) "
                                        "has died.", graceful=False)
        return actions

    def out_of_scope(self, actor_id: bytes) -> list:
        e = self.actors.get(actor_id)
        if e is None or e.detached or e.state == DEAD:
            return []
        return self._die(e, "All references to the actor were removed; it was terminated.",
                         graceful=True)

    def _die(self, e: ActorEntry, cause: str, graceful: bool) -> list:
        e.no_restart = True
        e.death_cause = e.death_cause or cause
        actions: list = []
        if e.worker_id is not None:
            actions.append(Kill(e, e.worker_id, e.lease_id, graceful=graceful))
        e.state = DEAD
        e.address = None
        return actions + self._notify(e)

    def _notify(self, e: ActorEntry) -> list:
        if not e.waiters:
            return []
        waiters, e.waiters = e.waiters, []
        return [Notify(e, waiters)]

    # -- lookups --------------------------------------------------------------------------
    def wait_for(self, actor_id: bytes, after_incarnation: int, waiter) -> list:
        """Call ``waiter(entry)`` once the actor is ALIVE past ``after_incarnation``, or DEAD."""
        e = self.actors.get(actor_id)
        if e is None:
            return [Notify(ActorEntry(actor_id, "", None, "", False, b"", "", None, 0,
                                      state=DEAD, death_cause="unknown actor"), [waiter])]
        if e.state == DEAD or (e.state == ALIVE and e.incarnation > after_incarnation):
            return [Notify(e, [waiter])]
        e.waiters.append(waiter)
        return []

    def by_name(self, name: str, namespace: str) -> ActorEntry | None:
        aid = self.names.get((namespace, name))
        e = self.actors.get(aid) if aid else None
        return e if e is not None and e.state != DEAD else None

    def named(self, namespace: str | None) -> list[dict]:
        out = []
        for (ns, name), aid in self.names.items():
            e = self.actors.get(aid)
            if e is not None and e.state != DEAD and (namespace is None or ns == namespace):
                out.append({"name": name, "namespace": ns})
        return out
