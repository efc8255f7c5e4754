"""Lineage reconstruction: an owner re-runs the task that made an object lost with its node.

A retryable task's returns keep its spec (and the ObjectRefs of its arguments, which pins
them, as Ray's lineage pinning does) while they are in scope. When an object's only copy
was on a node that died, the owner puts the task's returns back to pending and submits
the task again; lost arguments are reconstructed first, through the same path, since the
resubmitted task resolves its arguments again. A lost ``put`` object cannot be remade:
that is ``ObjectLostError``; lineage whose retries are spent is
``ObjectReconstructionFailedMaxAttemptsExceededError``.
"""

from __future__ import annotations

import logging

from ..wire import serialization
from . import errors as exc_mod
from .ownership import READY, Value

log = logging.getLogger(__name__)


class Lineage:
    """The runtime's knowledge of dead nodes, and the remaking of what died with them.

    A part of :class:`core.CoreRuntime` (``rt.lineage``); runs on its I/O loop. It is made
    before the values and tasks parts, which consult it on their hot paths; remaking an
    object (rare) reaches them back through the runtime.
    """

    def __init__(self, rt, refs):
        self.rt = rt  # for rt.values (to settle an object) and rt.tasks (to re-run its task)
        self.refs = refs  # the runtime's ownership.RefTable: an entry's .lineage is set here
        self.loop = rt.loop
        self.address = rt.address  # ours, as the owner named in the errors
        self.dead_nodes: set[bytes] = set()  # as the head announced them

    def is_lost(self, v) -> bool:
        return v is not None and v.path is not None and v.node_id in self.dead_nodes

    def keep(self, spec) -> None:
        """Let the returns of ``spec`` remember how to make them again."""
        if spec.max_retries == 0 or spec.num_returns == "streaming":
            return
        for rid in spec.return_ids:
            entry = self.refs.owned.get(rid)
            if entry is not None:
                entry.lineage = spec

    async def live_value(self, oid: bytes, entry):
        """The value of an object we own, reconstructed first if its copy was lost."""
        while True:
            if entry.state == READY and not self.is_lost(entry.value):
                return entry.value
            if entry.state == READY:
                self.reconstruct(oid, entry)
                if entry.state == READY:  # settled at once (with an error): look again
                    continue
            fut = self.loop.create_future()
            entry.waiters.append(lambda v, f=fut: f.done() or f.set_result(v))
            await fut
            entry = self.refs.owned.get(oid)
            if entry is None:
                raise exc_mod.ObjectFreedError(oid.hex())

    def reconstruct(self, oid: bytes, entry) -> None:
        """Start re-running the task that made ``oid`` (errors become its value)."""
        spec = entry.lineage
        if spec is None:
            self._set_error(oid, exc_mod.ObjectLostError(
                oid.hex(), self.address,
                "it was created by put() and its only copy was on a node that died"))
            return
        if spec.max_retries >= 0 and spec.attempt > spec.max_retries:
            self._set_error(oid, exc_mod.ObjectReconstructionFailedMaxAttemptsExceededError(
                oid.hex(), self.address, f"task {spec.name} has used its retries"))
            return
        log.info("reconstructing %s by re-running %s", oid.hex()[:16], spec.name)
        for rid in spec.return_ids:
            e = self.refs.owned.get(rid)
            if e is not None and e.state == READY:
                self.refs.mark_pending(rid, drop_value=True)
        self.rt.tasks.resubmit(spec)

    def _set_error(self, oid: bytes, err: BaseException) -> None:
        ser = serialization.serialize(err, is_error=True)
        self.refs.mark_pending(oid)  # so that set_value wakes waiters with the error
        self.rt.values.set_one(oid, Value(True, bytes(ser.meta), [], size=len(ser.meta)), None)

    def on_head_event(self, body: dict) -> None:
        node = body.get("node")
        if node is not None and not node["alive"]:
            self.dead_nodes.add(node["node_id"])
