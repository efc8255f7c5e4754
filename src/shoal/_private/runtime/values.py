"""The object side of the core runtime: storing values, reading them, get, put, wait.

A part of :class:`core.CoreRuntime` (``rt.values``): it turns serialized values into inline
bytes or shared-memory segments (reserving room on the node first), maps segments back
zero-copy (pulling them from other nodes, restoring spilled ones, pinning while mapped), and
waits for objects owned here or elsewhere.
"""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import errno
import operator
import os
import threading

from ..wire import segment as object_store
from ..wire import serialization
from ..wire.aio import spawn
from ..wire.config import config
from ..wire.transport import ConnectionLost, RemoteError
from . import errors as exc_mod
from .object_ref import ObjectRef
from .ownership import READY, Value

_ref_id = operator.attrgetter("_id")

# A worker's get/wait that has not finished within this long tells the node it is blocked.
BLOCK_NOTICE_S = 0.002


class Values:
    """Objects' values: written, read, waited for. The runtime calls its ``get``, ``put``,
    ``wait``... (bound as its own at construction)."""

    def __init__(self, rt, refs, lineage):
        # The runtime, for what it owns and what changes after construction: its connections
        # (node_conn, head_conn: made by start), node_id (a driver learns it at init),
        # shutting_down, _saw_foreign_refs; and its call(), node_send(), peer(), make_ref(),
        # free_on_node(), register_borrows().
        self.rt = rt
        self.refs = refs  # the runtime's ownership.RefTable
        self.lineage = lineage  # lineage.Lineage: is a copy lost, and remaking it
        # The runtime's, fixed for its life (read here without going through it):
        self.ids = rt.ids
        self.loop = rt.loop
        self.mode = rt.mode
        self.address = rt.address
        self.worker_id = rt.worker_id
        self.session_tag = rt.session_tag
        self.max_inline = config.max_inline_bytes  # larger values go to a shm segment
        self.borrowed_cache: dict[bytes, Value] = {}  # values fetched for borrowed refs

    # -- values ---------------------------------------------------------------------------
    def store_value(self, ser: serialization.Serialized, oid: bytes, owner_id: bytes,
                    replace: bool = False) -> Value:
        """Turn a serialized value into a Value: inline if small, else a shm segment here."""
        if ser.total_bytes <= self.max_inline:
            return Value(ser.is_error, bytes(ser.meta), [bytes(b) for b in ser.buffers],
                         size=ser.total_bytes)
        size = object_store.segment_size(len(ser.meta),
                                         [memoryview(b).nbytes for b in ser.buffers])
        reserved = self._reserve(size)
        try:
            path, size = self._write_new_segment(ser, oid, size)
        except BaseException:
            if reserved:
                self.loop.call_soon_threadsafe(self.rt.node_send, "unreserve", {"size": size})
            raise
        self.loop.call_soon_threadsafe(
            self.rt.node_send, "seal", {"path": path, "size": size, "owner": owner_id,
                                     "reserved": reserved})
        return Value(ser.is_error, path=path, node_id=self.rt.node_id, size=size)

    def _write_new_segment(self, ser, oid: bytes, size: int) -> tuple[str, int]:
        """Write the segment under a fresh name: ``shoal-<tag>-<random>-<oid>``. The random
        part means no other user can guess (and pre-create) the name; a name that is taken
        anyway is skipped for another."""
        flags = object_store.FLAG_ERROR if ser.is_error else 0
        for _ in range(8):
            path = os.path.join(config.shm_dir, f"shoal-{self.session_tag}-"
                                f"{os.urandom(8).hex()}-{oid.hex()}")
            try:
                return path, object_store.write_segment(path, ser.meta, ser.buffers, flags)
            except FileExistsError:
                continue
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                raise exc_mod.ObjectStoreFullError(_no_room(path, size)) from e
        raise exc_mod.ObjectStoreFullError(
            f"could not create a segment for object {oid.hex()} in {config.shm_dir}: every "
            "fresh name tried was taken")

    def _reserve(self, size: int) -> bool:
        """Wait for the node to set aside ``size`` bytes (it spills objects if it must)."""
        if _on_loop(self.loop):
            return False  # cannot block the I/O loop: write without a reservation
        try:
            self.rt.call(self.rt.node_conn.request("reserve", {"size": size}))
        except RemoteError as e:
            if e.body.get("out_of_disk"):
                raise exc_mod.OutOfDiskError(e.body.get("error", "")) from None
            if e.body.get("store_full"):
                raise exc_mod.ObjectStoreFullError(e.body.get("error", "")) from None
            raise
        return True

    def materialize(self, v: Value):
        """Deserialize a Value (zero-copy for shm segments on this node)."""
        if v.path is not None:
            path = v.path
            if v.node_id is not None and v.node_id != self.rt.node_id:
                path = self.rt.call(self._pull(v))
            pinned = False
            try:
                meta, bufs, _flags = object_store.read_segment(path, self._unpinner(path))
            except (FileNotFoundError, object_store.UntrustedSegment):
                # Spilled (or its name now holds a file that is not the store's): the store
                # brings it back, and says which file holds it.
                path, file = self.rt.call(self._restore(v, path))
                pinned = True
                meta, bufs, _flags = object_store.read_segment(file, self._unpinner(path))
            if not pinned:
                self.loop.call_soon_threadsafe(self.rt.node_send, "pin", {"paths": [path]})
            return serialization.deserialize(meta, bufs)
        return serialization.deserialize(v.meta, v.bufs)

    def _unpinner(self, path: str):
        def unpin():
            if not self.rt.shutting_down:
                try:
                    self.loop.call_soon_threadsafe(self.rt.node_send, "unpin", {"paths": [path]})
                except RuntimeError:
                    pass
        return unpin

    async def _restore(self, v: Value, path: str) -> str:
        try:
            body, _ = await self.rt.node_conn.request("restore", {"path": path})
        except RemoteError as e:
            if e.body.get("out_of_disk"):
                raise exc_mod.OutOfDiskError(e.body.get("error", "")) from None
            if e.body.get("store_full"):
                raise exc_mod.ObjectStoreFullError(e.body.get("error", "")) from None
            raise exc_mod.ObjectLostError(os.path.basename(path).rsplit("-", 1)[-1]) from e
        return body["path"], body.get("file") or body["path"]

    async def _pull(self, v: Value) -> str:
        """Have our node daemon fetch a segment held by another node; its local path."""
        try:
            body, _ = await self.rt.node_conn.request("pull_object", {
                "path": v.path, "node_id": v.node_id, "size": v.size})
        except RemoteError as e:
            raise exc_mod.ObjectLostError(os.path.basename(v.path).rsplit("-", 1)[-1]) from e
        return body["path"]

    def placement_group_ready(self, pg) -> ObjectRef:
        """An ObjectRef that resolves to ``pg`` once all its bundles are reserved."""
        oid = self.ids.put_id()
        self.refs.new_owned(oid)
        ref = self.rt.make_ref(oid)

        async def wait():
            try:
                await self.rt.head_conn.request("wait_pg", {"pg": pg.id.binary()})
                ser = serialization.serialize(pg)
            except (RemoteError, ConnectionLost) as e:
                ser = serialization.serialize(exc_mod.RaySystemError(
                    f"placement group {pg.id.hex()} will never be ready: {e}"), is_error=True)
            self.set_one(oid, Value(ser.is_error, bytes(ser.meta), [], size=len(ser.meta)),
                         None)

        self.loop.call_soon_threadsafe(lambda: spawn(wait()))
        return ref

    def put(self, value, *, _owner_id=None) -> ObjectRef:
        if isinstance(value, ObjectRef):
            raise TypeError("Calling 'put' on an ObjectRef is not allowed. If you really "
                            "want to do this, you can wrap the ObjectRef in a list and "
                            "call 'put' on it.")
        try:
            ser = serialization.serialize(value)
        except Exception as e:
            raise TypeError(serialization.describe_unserializable(value, "the value", e)) from e
        return self.put_serialized(ser)

    def put_serialized(self, ser: serialization.Serialized) -> ObjectRef:
        oid = self.ids.put_id()
        self.refs.new_owned(oid)
        ref = self.rt.make_ref(oid)
        self.refs.owned[oid].name = "(put)"
        v = self.store_value(ser, oid, self.worker_id)
        # The object's own references to what it contains, apart from the caller's.
        inner = [ObjectRef(r._id, r._owner, self.rt) for r in ser.contained]
        self.refs.set_value(oid, v, inner)
        return ref

    def set_one(self, oid: bytes, v: Value, contains) -> None:
        """Record the value of an object we own and wake those waiting for it (a value
        nobody wants any more is freed at once)."""
        waiters = self.refs.set_value(oid, v, contains)
        if waiters is None:
            if v.path is not None:  # nobody wants it any more
                self.rt.free_on_node(v.node_id, [v.path])
            return
        for w in waiters:
            w(v)

    # -- get / wait -----------------------------------------------------------------------
    def _ready_value(self, ref: ObjectRef) -> Value | None:
        entry = self.refs.owned.get(ref._id)
        if entry is not None and entry.state == READY:
            return entry.value
        return self.borrowed_cache.get(ref._id)

    async def value_of(self, ref: ObjectRef) -> Value:
        oid = ref._id
        entry = self.refs.owned.get(oid)
        if ref._owner == self.address:
            if entry is None:
                raise exc_mod.ObjectFreedError(oid.hex())
            return await self.lineage.live_value(oid, entry)
        cached = self.borrowed_cache.get(oid)
        if cached is not None and not self.lineage.is_lost(cached):
            return cached
        try:
            conn = await self.rt.peer(ref._owner)
            body, bufs = await conn.request("get_object", {"oid": oid})
        except (ConnectionLost, OSError) as e:
            raise exc_mod.OwnerDiedError(oid.hex(), ref._owner) from e
        except RemoteError as e:
            raise exc_mod.ObjectLostError(oid.hex(), ref._owner) from e
        v = Value.from_wire(body, bufs)
        if oid in self.refs.borrowed:
            self.borrowed_cache[oid] = v
        return v

    async def gather_values(self, refs: list) -> list:
        return await asyncio.gather(*(self.value_of(r) for r in refs))

    async def _gather_until_error(self, refs: list) -> list:
        """The values of ``refs``; returns early, with None for those not there yet, as
        soon as one is an error (``get`` raises the first failure without waiting for the
        rest, as Ray does)."""
        if len(refs) == 1:
            return [await self.value_of(refs[0])]
        tasks = [asyncio.ensure_future(self.value_of(r)) for r in refs]
        try:
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending,
                                                   return_when=asyncio.FIRST_COMPLETED)
                if any(t.exception() is None and t.result().is_error for t in done):
                    break
                for t in done:
                    if t.exception() is not None:
                        raise t.exception()
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
        return [t.result() if t.done() and not t.cancelled() and t.exception() is None
                else None for t in tasks]

    def _wait_owned(self, refs: list, timeout: float | None) -> list | None:
        """Wait for objects owned here without going through the I/O loop.

        A waiter is registered on each pending entry (under the table's lock, so no result
        can slip by) and the caller sleeps on an event the I/O thread sets. Returns None if
        some ref is not owned here, or has been freed.
        """
        done = _thread.allocate_lock()  # held until the last value arrives (cheaper than Event)
        done.acquire()
        remaining = [0]  # values still awaited; -1 once the waiter was woken
        values: list = [None] * len(refs)

        def waiter(i):
            def set_value(v):
                values[i] = v
                with self.refs.lock:
                    if remaining[0] < 0:
                        return
                    remaining[0] -= 1
                    if remaining[0] == 0 or v.is_error:  # an error ends the wait at once
                        remaining[0] = -1
                        done.release()
            return set_value

        with self.refs.lock:
            for i, r in enumerate(refs):
                entry = self.refs.owned.get(r._id)
                if r._owner != self.address or entry is None:
                    return None
                if entry.state == READY:
                    values[i] = entry.value
                    if entry.value.is_error:  # raised without waiting for the rest
                        remaining[0] = -1
                        return values
                else:
                    remaining[0] += 1
                    entry.waiters.append(waiter(i))
            if remaining[0] == 0:
                return values
        if not done.acquire(timeout=-1 if timeout is None else timeout):
            with self.refs.lock:
                remaining[0] = -1
            raise exc_mod.GetTimeoutError(
                f"Get timed out: some object(s) not ready after {timeout} s.")
        return values

    def get_values(self, refs: list, timeout: float | None) -> list[Value]:
        values = [self._ready_value(r) for r in refs]
        missing = [r for r, v in zip(refs, values, strict=True) if v is None]
        if missing and any(v is not None and v.is_error for v in values):
            return values  # a failure is raised at once, whatever else is pending
        if missing and self.mode == "driver":
            got = self._wait_owned(missing, timeout)
            if got is not None:
                it = iter(got)
                return [v if v is not None else next(it) for v in values]
        if missing:
            coro = self._gather_until_error(missing)
            if self.mode == "worker":
                coro = self._blocking(coro)
            fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
            try:
                got = fut.result(timeout)
            except concurrent.futures.TimeoutError:
                fut.cancel()
                raise exc_mod.GetTimeoutError(
                    f"Get timed out: some object(s) not ready after {timeout} s.") from None
            it = iter(got)
            values = [v if v is not None else next(it) for v in values]
        return values

    async def _blocking(self, coro):
        """Run ``coro`` for a worker's blocking ``get``/``wait``: if it does not finish at
        once, the worker's node is told it is blocked, so its CPUs go to other work (the
        subtasks it waits for) until it resumes. A value that is already there, or comes
        back within ``BLOCK_NOTICE_S``, costs no message and lends nothing."""
        task = asyncio.ensure_future(coro)
        try:
            done, _ = await asyncio.wait({task}, timeout=BLOCK_NOTICE_S)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if done:
            return task.result()
        self.rt.node_send("worker_blocked", {})
        try:
            return await task
        finally:
            self.rt.node_send("worker_unblocked", {})

    def get(self, refs: list, timeout: float | None):
        values = self.get_values(refs, timeout)
        if any(v is None for v in values):  # returned early: raise the first failure
            values = [next(v for v in values if v is not None and v.is_error)]
        if self.lineage.dead_nodes and any(self.lineage.is_lost(v) for v in values):
            # Copies lost with their node: let the owners remake them, then read again.
            self.borrowed_cache = {k: v for k, v in self.borrowed_cache.items()
                                    if not self.lineage.is_lost(v)}
            lost = [r for r, v in zip(refs, values, strict=True) if self.lineage.is_lost(v)]
            got = self.rt.call(self.gather_values(lost), timeout)
            it = iter(got)
            values = [next(it) if self.lineage.is_lost(v) else v for v in values]
        out = []
        for v in values:
            obj = self.materialize(v)
            if v.is_error:
                if isinstance(obj, exc_mod.RayTaskError):
                    raise obj.as_instanceof_cause()
                raise obj
            out.append(obj)
        if self.rt._saw_foreign_refs:
            self.rt.call(self.rt.register_borrows())
        return out

    def value_future(self, ref: ObjectRef) -> concurrent.futures.Future:
        out: concurrent.futures.Future = concurrent.futures.Future()

        def done(f):
            try:
                out.set_result(self.get([ref], 0)[0])
            except BaseException as e:  # noqa: BLE001 - handed to the future's owner
                out.set_exception(e)

        asyncio.run_coroutine_threadsafe(self.value_of(ref), self.loop).add_done_callback(
            lambda f: threading.Thread(target=done, args=(f,), daemon=True).start()
            if f.exception() is None else out.set_exception(f.exception()))
        return out

    def ready_flags(self, refs: list) -> list[bool]:
        owned, cache = self.refs.owned, self.borrowed_cache
        flags = []
        append = flags.append
        for r in refs:
            oid = r._id
            e = owned.get(oid)
            append((e is not None and e.state == READY) or oid in cache)
        return flags

    def all_ready_split(self, refs, num_returns: int) -> tuple[list, list] | None:
        """``wait``'s answer when every one of ``refs`` (a list or tuple, no duplicates) is
        an object of ours that is ready, else None: three set operations in C instead of a
        Python step per ref (the common "wait for all" of finished work). Only an ObjectRef
        has an ``_id`` that is an object id: anything else fails the lookup or the subset
        test, and the caller's checks refuse it."""
        if type(refs) not in (list, tuple) or not 0 < num_returns <= len(refs):
            return None
        try:
            ids = set(map(_ref_id, refs))
        except (AttributeError, TypeError):
            return None
        if len(ids) != len(refs) or not ids <= self.refs.ready:
            return None
        return list(refs[:num_returns]), list(refs[num_returns:])

    def wait(self, refs: list, num_returns: int, timeout: float | None) -> tuple[list, list]:
        ready_flags = self.ready_flags(refs)
        if sum(ready_flags) < num_returns and (timeout is None or timeout > 0):
            coro = self.wait_flags(refs, ready_flags, num_returns)
            if self.mode == "worker":
                coro = self._blocking(coro)
            fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
            try:
                ready_flags = fut.result(timeout)
            except concurrent.futures.TimeoutError:
                fut.cancel()
                ready_flags = self.ready_flags(refs)
        if num_returns == len(refs) and all(ready_flags):
            return list(refs), []
        ready, not_ready = [], []
        for r, ok in zip(refs, ready_flags, strict=True):
            (ready if ok and len(ready) < num_returns else not_ready).append(r)
        return ready, not_ready

    async def wait_flags(self, refs, flags, num_returns):
        flags = list(flags)
        tasks = {self.loop.create_task(self.value_of(r)): i
                 for i, r in enumerate(refs) if not flags[i]}
        try:
            pending = set(tasks)
            while sum(flags) < num_returns and pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    flags[tasks[t]] = True
                    t.exception()
        finally:
            for t in tasks:
                t.cancel()
        return flags


def _no_room(path: str, size: int) -> str:
    try:
        st = os.statvfs(os.path.dirname(path))
        free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    except OSError:
        free = total = -1
    return (f"no space left in {os.path.dirname(path)} for {path}: {size} bytes needed, "
            f"{free} bytes free of {total}. The shared memory is smaller than the object "
            "store (or shared with other programs); give it more room or lower "
            "object_store_memory.")


def _on_loop(loop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
