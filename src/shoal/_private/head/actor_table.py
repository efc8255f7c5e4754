"""The head's actor table: each actor's lifecycle as a pure state machine.

States: ``PENDING`` (registered, waiting for its creation spec or a worker), ``ALIVE``,
``RESTARTING`` (its process died and restarts remain), ``DEAD``. Events come from creators,
node daemons and workers; each returns actions for the head to carry out (lease a worker,
create the instance, kill a process, answer the callers waiting for an address). No I/O here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..wire.addresses import split_address
from ..wire.death_causes import (
    KILLED,
    KILLED_RESTARTABLE,
    OUT_OF_SCOPE,
    creation_failed_cause,
    owner_died_cause,
    worker_died_cause,
)
from .class_blobs import ClassBlobs

PENDING, ALIVE, RESTARTING, DEAD = "PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"


def _address_ip(address: str) -> str:
    tcp, _ = split_address(address or "")
    return tcp.rpartition(":")[0].strip("[]") if tcp else "127.0.0.1"


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
    class_blob: bytes | None = None  # key of spec_bufs[spec["cls"]] in the table's blobs
    address: str | None = None
    worker_id: bytes | None = None
    node_id: bytes | None = None
    lease_id: int | None = None
    pid: int | None = None
    death_cause: str = ""
    # (callable(entry), also on RESTARTING) pairs, run on ALIVE or DEAD (or RESTARTING)
    waiters: list = field(default_factory=list)
    no_restart: bool = False  # the next death is final (killed or exited on purpose)
    node_ip: str = ""
    exit_type: str = ""  # how the current worker is about to die, if it said so first
    exit_detail: str = ""  # and why
    last_exit: str = ""  # why the last worker died (the cause of the current restart)
    init_failed: bool = False  # __init__ raised: death_cause is its error
    never_started: bool = False  # died before it was ever created

    def public(self) -> dict:
        return {
            "actor_id": self.actor_id, "class_name": self.class_name, "name": self.name or "",
            "namespace": self.namespace, "state": self.state, "address": self.address,
            "incarnation": self.incarnation, "num_restarts": self.num_restarts,
            "death_cause": self.death_cause, "pid": self.pid, "node_id": self.node_id,
            "job_id": self.job_id, "detached": self.detached, "worker_id": self.worker_id,
            "max_restarts": self.max_restarts, "ip": self.node_ip,
            "init_failed": self.init_failed, "never_started": self.never_started,
            "restart_cause": self.last_exit,
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
    """``max_dead`` bounds the dead actors' records kept for the state API (oldest death
    dropped first, as Ray's ``maximum_gcs_destroyed_actor_cached_count``); a dead actor's
    creation spec is dropped at death. Identical class bytes are held once, in ``blobs``,
    by the specs that use them."""

    def __init__(self, max_dead: int = 10000) -> None:
        self.actors: dict[bytes, ActorEntry] = {}
        self.names: dict[tuple[str, str], bytes] = {}
        self.max_dead = max_dead
        self.dead: deque[bytes] = deque()  # ids of dead actors still kept, oldest first
        self.evicted: list[bytes] = []  # dropped records not yet taken by take_evicted
        self.blobs = ClassBlobs()
        self.changed: list[ActorEntry] = []  # changed outside any action, to save

    # -- class blobs ----------------------------------------------------------------------
    def _hold_spec(self, e: ActorEntry, spec: dict, bufs: list, stored: bool = False) -> None:
        """``e``'s spec becomes ``spec``: its class bytes are the table's shared copy."""
        self._release_class(e)
        i = spec.get("cls")
        if isinstance(i, int) and 0 <= i < len(bufs) and bufs[i] is not None:
            e.class_blob, shared = self.blobs.hold(bufs[i], stored)
            bufs = list(bufs)
            bufs[i] = shared
        e.spec, e.spec_bufs = spec, bufs

    def _release_class(self, e: ActorEntry) -> None:
        if e.class_blob is not None:
            self.blobs.release(e.class_blob)
            e.class_blob = None

    def take_changed(self) -> list[ActorEntry]:
        """The entries to save that no action names: deaths with no worker to kill and no
        one waiting, records read back in an older form."""
        out, self.changed = self.changed, []
        return out

    def recovered(self, e: ActorEntry) -> bool:
        """``e`` as the durable store kept it; its class bytes, if it names a blob, came
        from there. False if the class is lost (the blob it names was missing)."""
        self.actors[e.actor_id] = e
        key, e.class_blob = e.class_blob, None
        if e.state == DEAD:  # records of an older head: specs dropped, bounded
            if e.spec is not None:
                self.buried(e)
            else:
                self._keep_dead(e)
            return True
        if e.name:
            self.names[(e.namespace, e.name)] = e.actor_id
        if e.spec is None:
            return key is None  # no spec yet (waiting for it), or its class was lost
        self._hold_spec(e, e.spec, e.spec_bufs, stored=key is not None)
        if key is None and e.class_blob is not None:
            self.changed.append(e)  # its row still holds the class bytes: store them apart
        return True

    # -- dead actors ----------------------------------------------------------------------
    def buried(self, e: ActorEntry) -> None:
        """``e`` is dead for good: drop its spec and keep its record among the last
        ``max_dead`` deaths."""
        self._release_class(e)
        e.spec, e.spec_bufs = None, []
        self.changed.append(e)
        self._keep_dead(e)

    def _keep_dead(self, e: ActorEntry) -> None:
        self.dead.append(e.actor_id)
        while len(self.dead) > max(self.max_dead, 0):
            aid = self.dead.popleft()
            old = self.actors.get(aid)
            if old is None or old.state != DEAD:
                continue
            del self.actors[aid]
            if old.name and self.names.get((old.namespace, old.name)) == aid:
                del self.names[(old.namespace, old.name)]
            self.evicted.append(aid)

    def take_evicted(self) -> list[bytes]:
        """The ids whose records were dropped since the last call (to delete on disk)."""
        out, self.evicted = self.evicted, []
        return out

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
        self._hold_spec(e, spec, bufs)
        return [Lease(e)]

    def leased(self, actor_id: bytes, grant: dict) -> list:
        e = self.actors.get(actor_id)
        if e is None or e.state == DEAD:
            return [Kill(e, grant["worker_id"], grant["lease_id"])] if e else []
        e.worker_id, e.lease_id = grant["worker_id"], grant["lease_id"]
        e.address, e.pid, e.node_id = grant["address"], grant.get("pid"), grant.get("node_id")
        e.node_ip = grant.get("ip") or e.node_ip
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
        e.init_failed = True
        return self._die(e, creation_failed_cause(error), graceful=False)

    def creation_aborted(self, actor_id: bytes, why: str) -> list:
        """The creator could not send a spec (an argument failed): dead before it lived."""
        e = self.actors.get(actor_id)
        if e is None or e.state == DEAD:
            return []
        return self._die(e, f"The actor could not be created: {why}", graceful=False)

    # -- death ----------------------------------------------------------------------------
    def worker_died(self, actor_id: bytes, worker_id: bytes, cause: str,
                    detail: str = "") -> list:
        """The actor's worker is gone. ``cause`` is the full death cause, ``detail`` the
        short form a restart reports (unless the worker said why first)."""
        e = self.actors.get(actor_id)
        if e is None or e.state == DEAD or e.worker_id != worker_id:
            return []
        lease_id = e.lease_id
        e.address = e.worker_id = e.lease_id = None
        if e.exit_detail:
            cause = worker_died_cause(e.exit_type, e.exit_detail)
            detail = e.exit_detail
        e.last_exit, e.exit_type, e.exit_detail = detail or cause, "", ""
        if not e.no_restart and (e.max_restarts < 0 or e.num_restarts < e.max_restarts):
            e.state = RESTARTING
            e.num_restarts += 1
            e.incarnation += 1
            return [Kill(e, worker_id, lease_id), Lease(e)] + self._notify(e, restarting=True)
        e.state = DEAD
        if not e.death_cause:
            e.death_cause = cause
        self.buried(e)
        return [Kill(e, worker_id, lease_id)] + self._notify(e)

    def kill(self, actor_id: bytes, no_restart: bool = True, cause: str = "") -> list:
        """``shoal.kill``: end the process now; restart it unless ``no_restart``."""
        e = self.actors.get(actor_id)
        if e is None or e.state == DEAD:
            return []
        if no_restart:
            return self._die(e, cause or KILLED, graceful=False)
        if e.worker_id is None:
            return []
        e.exit_type, e.exit_detail = "INTENDED_SYSTEM_EXIT", KILLED_RESTARTABLE
        return [Kill(e, e.worker_id, e.lease_id)]

    def exiting(self, actor_id: bytes, exit_type: str, detail: str,
                intended: bool = True) -> None:
        """The actor's worker is about to exit. On purpose (exit_actor, __ray_terminate__):
        no restart, and this is the death cause. Not intended (``sys.exit()`` in a method):
        a crash as far as restarts go, this saying why it died."""
        e = self.actors.get(actor_id)
        if e is None or e.state == DEAD:
            return
        if intended:
            e.no_restart = True
            e.death_cause = worker_died_cause(exit_type, detail)
        else:
            e.exit_type, e.exit_detail = exit_type, detail

    def owner_died(self, owner_id: bytes) -> list:
        actions: list = []
        for e in list(self.actors.values()):
            if e.owner_id == owner_id and not e.detached and e.state != DEAD:
                cause = owner_died_cause(owner_id, _address_ip(e.owner_address))
                actions += self._die(e, cause, graceful=False)
        return actions

    def out_of_scope(self, actor_id: bytes) -> list:
        e = self.actors.get(actor_id)
        if e is None or e.detached or e.state == DEAD:
            return []
        return self._die(e, OUT_OF_SCOPE, graceful=True)

    def _die(self, e: ActorEntry, cause: str, graceful: bool) -> list:
        e.no_restart = True
        e.death_cause = e.death_cause or cause
        e.never_started = e.state == PENDING
        actions: list = []
        if e.worker_id is not None:
            actions.append(Kill(e, e.worker_id, e.lease_id, graceful=graceful))
        e.state = DEAD
        e.address = None
        self.buried(e)
        return actions + self._notify(e)

    def _notify(self, e: ActorEntry, restarting: bool = False) -> list:
        """Answer the waiters: all of them, or (``restarting``) those that asked to hear of
        a restart too."""
        if restarting:
            now = [w for w, on_restart in e.waiters if on_restart]
            e.waiters = [(w, r) for w, r in e.waiters if not r]
        else:
            now, e.waiters = [w for w, _ in e.waiters], []
        return [Notify(e, now)] if now else []

    # -- lookups --------------------------------------------------------------------------
    def wait_for(self, actor_id: bytes, after_incarnation: int, waiter,
                 restarting: bool = False) -> list:
        """Call ``waiter(entry)`` once the actor is ALIVE past ``after_incarnation``, or DEAD;
        with ``restarting``, also once it is RESTARTING past ``after_incarnation``."""
        e = self.actors.get(actor_id)
        if e is None:
            return [Notify(ActorEntry(actor_id, "", None, "", False, b"", "", None, 0,
                                      state=DEAD, death_cause="unknown actor"), [waiter])]
        past = e.incarnation > after_incarnation
        if e.state == DEAD or (past and (e.state == ALIVE or
                                         (restarting and e.state == RESTARTING))):
            return [Notify(e, [waiter])]
        e.waiters.append((waiter, restarting))
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
