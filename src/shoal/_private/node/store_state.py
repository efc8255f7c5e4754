"""A node's object store accounting as a pure state machine: capacity, pins, spilling.

Every segment in the node's shared memory is an entry here. Writers *reserve* space before
writing; when the store is full the answer names unpinned objects to move out first
(replicas are dropped, primaries spilled to disk), oldest use first. Objects mapped by a
reader, or being written, are pinned and never moved. ``ObjectStoreFull`` is the answer
only when pinned objects alone leave no room. No I/O here: the daemon does the copying.
"""

from __future__ import annotations

import itertools
import os.path
from dataclasses import dataclass


class ObjectStoreFull(Exception):
    def __init__(self, capacity: int, pinned: int, requested: int, used: int):
        self.capacity, self.pinned, self.requested, self.used = capacity, pinned, requested, used
        super().__init__(
            f"The object store is full: capacity {capacity} bytes, {pinned} bytes pinned by "
            f"objects in use, {used} bytes in memory in all; {requested} bytes requested. "
            "Free references to objects you no longer need, or start the node with a larger "
            "object_store_memory.")


@dataclass
class Entry:
    path: str
    size: int
    owner: bytes
    replica: bool = False  # a copy pulled from another node: drop rather than spill
    pins: int = 0
    spilled: str | None = None  # path of the spill file, when not in memory
    moving: bool = False  # being spilled right now
    last_use: int = 0
    freed: bool = False  # no reference remains, but a reader still maps it

    @property
    def in_memory(self) -> bool:
        return self.spilled is None


def oid_of(path: str) -> str:
    """The object id (hex) a segment's path names: the part after its last ``-``."""
    return os.path.basename(path).rsplit("-", 1)[-1]


class StoreState:
    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.entries: dict[str, Entry] = {}
        # object id (hex, the last ``-`` part of a segment's name) -> its path: how peers'
        # requests, which name objects by id only, find a segment whose name is unguessable
        self.by_oid: dict[str, str] = {}
        self.used = 0  # bytes of segments in memory
        self.reserved = 0  # bytes promised to writers, not sealed yet
        self.spilled_bytes = 0
        self._clock = itertools.count(1)

    def _forget(self, path: str) -> None:
        del self.entries[path]
        oid = oid_of(path)
        if self.by_oid.get(oid) == path:
            del self.by_oid[oid]

    # -- creation -------------------------------------------------------------------------
    def reserve(self, size: int) -> tuple[str, object]:
        """``("ok", None)``, ``("spill", [paths to move out])`` or ``("full", error)``."""
        free = self.capacity - self.used - self.reserved
        if size <= free:
            self.reserved += size
            return "ok", None
        movable = sorted((e for e in self.entries.values()
                          if e.in_memory and e.pins == 0 and not e.moving and not e.freed),
                         key=lambda e: (not e.replica, e.last_use))
        moving_bytes = sum(e.size for e in self.entries.values() if e.moving)
        chosen, gain = [], 0
        for e in movable:
            if free + moving_bytes + gain >= size:
                break
            chosen.append(e.path)
            gain += e.size
        if free + moving_bytes + gain < size:
            pinned = sum(e.size for e in self.entries.values() if e.in_memory and e.pins)
            return "full", ObjectStoreFull(self.capacity, pinned + self.reserved, size,
                                           self.used)
        for p in chosen:
            self.entries[p].moving = True
        return "spill", chosen

    def cancel_reservation(self, size: int) -> None:
        self.reserved = max(0, self.reserved - size)

    def seal(self, path: str, size: int, owner: bytes, *, reserved: bool = True,
             replica: bool = False) -> None:
        if reserved:  # the writer's room is either this entry's now or given back
            self.reserved = max(0, self.reserved - size)
        if path in self.entries:
            return
        self.entries[path] = Entry(path, size, owner, replica=replica,
                                   last_use=next(self._clock))
        self.by_oid[oid_of(path)] = path
        self.used += size

    # -- use ------------------------------------------------------------------------------
    def pin(self, path: str) -> None:
        e = self.entries.get(path)
        if e is not None:
            e.pins += 1
            e.last_use = next(self._clock)

    def unpin(self, path: str) -> None:
        e = self.entries.get(path)
        if e is not None and e.pins > 0:
            e.pins -= 1
            if e.freed and e.pins == 0:  # the last view of a freed object is gone
                self._forget(path)
                self.used -= e.size

    def touch(self, path: str) -> None:
        e = self.entries.get(path)
        if e is not None:
            e.last_use = next(self._clock)

    # -- moving out and back ----------------------------------------------------------------
    def moved_out(self, path: str, spill_path: str | None) -> None:
        """The segment left memory: spilled to ``spill_path``, or dropped (a replica)."""
        e = self.entries.get(path)
        if e is None:
            return
        e.moving = False
        self.used -= e.size
        if spill_path is None:
            self._forget(path)
        else:
            e.spilled = spill_path
            self.spilled_bytes += e.size

    def move_failed(self, path: str) -> None:
        e = self.entries.get(path)
        if e is not None:
            e.moving = False

    def restored(self, path: str, size: int) -> bool:
        """A restore that reserved ``size`` bytes ended: the reservation is released
        whatever happened. Whether the entry is back in memory (False: it was freed, or
        restored by another reader, meanwhile; the caller drops its copy)."""
        self.reserved = max(0, self.reserved - size)
        e = self.entries.get(path)
        if e is None or e.spilled is None:
            return False
        self.spilled_bytes -= e.size
        e.spilled = None
        self.used += e.size
        e.last_use = next(self._clock)
        return True

    # -- freeing --------------------------------------------------------------------------
    def free(self, path: str) -> Entry | None:
        """No reference remains. Its memory stays counted while a reader still maps it
        (the file can go: the mapping keeps the pages until it is dropped)."""
        e = self.entries.get(path)
        if e is None or e.freed:
            return None
        if e.spilled is None and e.pins > 0:
            e.freed = True
            return e
        self._forget(path)
        if e.spilled is None:
            self.used -= e.size
        else:
            self.spilled_bytes -= e.size
        return e

    def stats(self) -> dict:
        return {"capacity": self.capacity, "used": self.used, "reserved": self.reserved,
                "spilled": self.spilled_bytes, "num_objects": len(self.entries),
                "num_spilled": sum(1 for e in self.entries.values() if e.spilled),
                "pinned": sum(e.size for e in self.entries.values() if e.pins and e.in_memory)}
