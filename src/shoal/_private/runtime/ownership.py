"""Reference counting of objects, kept by their owner; pure logic with no I/O.

The owner of an object (the process whose ``.remote()`` or ``put`` made it) keeps its value
or location and counts what still reaches it:

* ``local``: ObjectRef instances alive in the owner's Python heap;
* ``submitted``: tasks submitted with it as an argument that have not finished;
* ``borrowers``: other processes that reported holding it after a task or a ``get``;
* containment: an object whose value holds refs keeps the inner ObjectRef instances alive
  for as long as it lives (its ``contains`` list), so inner objects outlive outer ones.

A process that holds refs it does not own counts them in ``borrowed`` and tells the owner
when it lets go of the last one (if it had registered as a borrower).

When every count of an owned object is zero it is freed: the table returns a ``Free`` action
and the runtime deletes the value wherever it lives. The counts change from user threads
(ObjectRef creation and ``__del__``) and from the I/O thread, so a lock guards them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

PENDING, READY = 0, 1


@dataclass
class Value:
    """Where an object's bytes are: inline (``meta`` + ``bufs``) or a shared-memory segment."""

    is_error: bool = False
    meta: bytes | None = None
    bufs: list = field(default_factory=list)
    path: str | None = None
    node_id: bytes | None = None
    size: int = 0

    @property
    def in_shm(self) -> bool:
        return self.path is not None

    def to_wire(self, out_bufs: list) -> dict:
        """Describe this value in a message; inline bytes are appended to ``out_bufs``."""
        if self.path is not None:
            return {"e": self.is_error, "p": self.path, "n": self.node_id, "z": self.size}
        start = len(out_bufs)
        out_bufs.append(self.meta)
        out_bufs.extend(self.bufs)
        return {"e": self.is_error, "b": start, "c": 1 + len(self.bufs)}

    @classmethod
    def from_wire(cls, d: dict, bufs: list) -> Value:
        if "p" in d:
            return cls(is_error=d["e"], path=d["p"], node_id=d["n"], size=d["z"])
        start, count = d["b"], d["c"]
        parts = bufs[start : start + count]
        return cls(d["e"], parts[0], parts[1:], None, None, sum(map(len, parts)))


@dataclass
class Owned:
    state: int = PENDING
    value: Value | None = None
    local: int = 0
    submitted: int = 0
    borrowers: set = field(default_factory=set)
    contains: list = field(default_factory=list)  # ObjectRefs kept alive by this object
    waiters: list = field(default_factory=list)  # callables(oid) run when it becomes ready
    freed: bool = False
    task_id: bytes | None = None  # the task that makes it (None for put)
    actor_id: bytes | None = None  # set for an actor's handle object: its scope
    name: str = ""  # where it came from: "(put)" or the name of the task that makes it
    lineage: object = None  # the TaskSpec that makes it, kept to remake it if it is lost


@dataclass
class Borrowed:
    owner: str
    local: int = 0
    registered: bool = False


@dataclass
class Free:
    oid: bytes
    entry: Owned


@dataclass
class ReleaseBorrow:
    oid: bytes
    owner: str


class RefTable:
    def __init__(self, my_address: str):
        self.my_address = my_address
        self.owned: dict[bytes, Owned] = {}
        self.borrowed: dict[bytes, Borrowed] = {}
        # Ids of the owned entries whose state is READY: ``wait`` on many refs asks it in one
        # set operation rather than entry by entry. Changed with ``state``, under the lock.
        self.ready: set[bytes] = set()
        self.lock = threading.RLock()

    # -- creation -------------------------------------------------------------------------
    def new_owned(self, oid: bytes, task_id: bytes | None = None, name: str = "") -> Owned:
        with self.lock:
            entry = self.owned.get(oid)
            if entry is None:
                entry = self.owned[oid] = Owned(task_id=task_id, name=name)
            return entry

    # -- local references -----------------------------------------------------------------
    def add_local(self, oid: bytes, owner: str) -> None:
        with self.lock:
            if owner == self.my_address:
                entry = self.owned.get(oid)
                if entry is not None:
                    entry.local += 1
                return
            b = self.borrowed.get(oid)
            if b is None:
                b = self.borrowed[oid] = Borrowed(owner)
            b.local += 1

    def remove_local(self, oid: bytes) -> list:
        with self.lock:
            entry = self.owned.get(oid)
            if entry is not None:
                entry.local -= 1
                return self._maybe_free(oid, entry)
            b = self.borrowed.get(oid)
            if b is None:
                return []
            b.local -= 1
            if b.local <= 0:
                del self.borrowed[oid]
                if b.registered:
                    return [ReleaseBorrow(oid, b.owner)]
            return []

    # -- task arguments -------------------------------------------------------------------
    def add_submitted(self, oid: bytes) -> None:
        with self.lock:
            entry = self.owned.get(oid)
            if entry is not None:
                entry.submitted += 1

    def remove_submitted(self, oid: bytes) -> list:
        with self.lock:
            entry = self.owned.get(oid)
            if entry is None:
                return []
            entry.submitted -= 1
            return self._maybe_free(oid, entry)

    # -- borrowers ------------------------------------------------------------------------
    def add_borrower(self, oid: bytes, borrower: str) -> bool:
        with self.lock:
            entry = self.owned.get(oid)
            if entry is None or entry.freed:
                return False
            entry.borrowers.add(borrower)
            return True

    def remove_borrower(self, oid: bytes, borrower: str) -> list:
        with self.lock:
            entry = self.owned.get(oid)
            if entry is None:
                return []
            entry.borrowers.discard(borrower)
            return self._maybe_free(oid, entry)

    def borrowers_gone(self, borrower: str) -> list:
        """A borrowing process died: it holds nothing any more."""
        actions: list = []
        with self.lock:
            for oid, entry in list(self.owned.items()):
                if borrower in entry.borrowers:
                    entry.borrowers.discard(borrower)
                    actions += self._maybe_free(oid, entry)
        return actions

    def unregistered_borrows(self) -> list[tuple[bytes, str]]:
        """Borrowed refs alive here that the owner does not know about yet."""
        with self.lock:
            return [(oid, b.owner) for oid, b in self.borrowed.items()
                    if not b.registered and b.local > 0]

    def mark_registered(self, oid: bytes) -> None:
        with self.lock:
            b = self.borrowed.get(oid)
            if b is not None:
                b.registered = True

    # -- values ---------------------------------------------------------------------------
    def set_value(self, oid: bytes, value: Value, contains: list | None = None):
        """Record the value; returns the waiters to call, or None if already freed."""
        with self.lock:
            entry = self.owned.get(oid)
            if entry is None or entry.freed:
                return None
            entry.state = READY
            entry.value = value
            self.ready.add(oid)
            if contains:
                entry.contains = list(contains)
            waiters, entry.waiters = entry.waiters, []
            return waiters

    def mark_pending(self, oid: bytes, *, drop_value: bool = False) -> None:
        """The entry's value is to be made (again): not ready until ``set_value``."""
        with self.lock:
            entry = self.owned.get(oid)
            if entry is None:
                return
            entry.state = PENDING
            if drop_value:
                entry.value = None
            self.ready.discard(oid)

    def _maybe_free(self, oid: bytes, entry: Owned) -> list:
        if entry.local > 0 or entry.submitted > 0 or entry.borrowers or entry.freed:
            return []
        entry.freed = True
        del self.owned[oid]
        self.ready.discard(oid)
        return [Free(oid, entry)]

    def summary(self) -> tuple[list[dict], list[dict]]:
        """What this process owns and borrows, with why each object is alive."""
        with self.lock:
            contained: dict[bytes, int] = {}
            lineage: dict[bytes, int] = {}
            specs = set()
            for e in self.owned.values():
                for r in e.contains:
                    contained[r._id] = contained.get(r._id, 0) + 1
                spec = e.lineage
                if spec is not None and id(spec) not in specs:
                    specs.add(id(spec))
                    for r in spec.dep_refs.values():
                        lineage[r._id] = lineage.get(r._id, 0) + 1
            owned = []
            for oid, e in self.owned.items():
                v = e.value
                owned.append({
                    "oid": oid, "name": e.name, "ready": e.state == READY,
                    "size": v.size if v is not None else 0,
                    "path": v.path if v is not None else None,
                    "node_id": v.node_id if v is not None else None,
                    # Python refs of the process itself: not task holds, lineage or
                    # the references other objects keep to it.
                    "local": max(0, e.local - e.submitted - contained.get(oid, 0)
                                 - lineage.get(oid, 0)),
                    "submitted": e.submitted, "lineage": lineage.get(oid, 0),
                    "borrowers": len(e.borrowers), "contained": contained.get(oid, 0),
                    "actor_handle": e.actor_id is not None,
                })
            borrowed = [{"oid": oid, "owner": b.owner, "local": b.local}
                        for oid, b in self.borrowed.items()]
            return owned, borrowed

    def stats(self) -> dict:
        with self.lock:
            return {"owned": len(self.owned), "borrowed": len(self.borrowed)}
