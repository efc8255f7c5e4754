"""The core runtime embedded in every driver and worker.

It owns this process's connections (to its node daemon, to peers), its listening socket, the
objects it owns (:class:`ownership.RefTable`), and task submission (:mod:`submitter`). I/O runs
on an asyncio loop in a background thread; the user's thread calls in through the public API.
"""

from __future__ import annotations

import _thread
import asyncio
import collections
import concurrent.futures
import logging
import os
import socket
import sys
import threading

from .. import exceptions as exc_mod
from ..object_ref import ObjectRef
from . import object_store, serialization, transport
from .actor_submitter import ActorSubmitter
from .aio import spawn
from .config import config
from .ids import IdSource
from .ownership import READY, Free, RefTable, ReleaseBorrow, Value
from .submitter import Submitter, TaskSpec
from .transport import ConnectionLost, RemoteError, connect, serve_unix

log = logging.getLogger(__name__)


class CoreRuntime:
    def __init__(self, *, mode: str, session_dir: str, session_tag: str, node_address: str,
                 node_id: bytes, token: bytes, worker_id: bytes, namespace: str = "",
                 job_id: int | None = None, node_ip: str | None = None,
                 head_address: str | None = None):
        self.mode = mode  # "driver" or "worker"
        self.session_dir = session_dir
        self.session_tag = session_tag
        self.node_address = node_address
        self.node_id = node_id
        self.token = token
        self.worker_id = worker_id
        self.namespace = namespace
        self.job_id = job_id
        self.cfg = config
        self.ids = IdSource()
        sock = os.path.join(session_dir, "sockets", f"{mode[0]}_{worker_id.hex()[:12]}.sock")
        self.sock_path = sock
        # In a cluster, peers on other nodes reach us over TCP at our node's IP; the socket
        # is bound now so that our address (our identity as an owner) is known from the start.
        self.node_ip = node_ip
        self.head_address = head_address
        self._tcp_sock = None
        tcp = None
        if node_ip is not None:
            transport.LOCAL_IP["ip"] = node_ip
            self._tcp_sock = socket.create_server((node_ip, 0))
            tcp = f"{node_ip}:{self._tcp_sock.getsockname()[1]}"
        self.address = transport.join_address(tcp, sock)
        self.node_addresses: dict[bytes, str] = {}  # node id -> node daemon address
        self.refs = RefTable(self.address)
        self.submitter = Submitter(self)
        self.actor_submitter = ActorSubmitter(self)
        self.head_conn = None  # the control store (the node daemon's process on the head)
        self.actor_id: bytes | None = None  # set in an actor's worker
        self.actor_handle = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run_loop, name="shoal-io", daemon=True)
        self.node_conn = None
        self.peers: dict[str, object] = {}
        self._peer_connecting: dict[str, asyncio.Future] = {}
        self.server = None
        self.shutting_down = False
        self._pending_frees: list = []
        self._frees_scheduled = False
        self._saw_foreign_refs = False
        self.extra_handlers: dict = {}  # message kind -> handler (the worker's executor adds)
        self.current_task = threading.local()
        self._infeasible_warned: set = set()
        self.max_inline = config.max_inline_bytes
        self._borrowed_cache: dict[bytes, Value] = {}  # values fetched for borrowed refs
        self.resolving: dict[bytes, TaskSpec] = {}  # tasks waiting for their arguments
        self.generators: dict = {}  # task id -> ObjectRefGenerator of a streaming task
        self._submissions: collections.deque = collections.deque()
        self._submit_scheduled = False

    # -- start / stop ---------------------------------------------------------------------
    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self.thread.start()
        self.call(self._start(), timeout=config.connect_timeout_s + 5)

    async def _start(self) -> None:
        self.server = await serve_unix(self.sock_path, self._handle, self.token)
        if self._tcp_sock is not None:
            self.tcp_server = await self.loop.create_server(
                lambda: transport.Connection(self._handle, self.token, server=True),
                sock=self._tcp_sock)
        hello = {"role": self.mode, "address": self.address}
        self.node_conn = await connect(self.node_address, self.token, self._handle,
                                       hello=hello, timeout=config.connect_timeout_s)
        self.node_conn.close_callbacks.append(self._node_lost)
        head = self.head_address
        if head and head not in (self.node_address,
                                 transport.split_address(self.node_address)[0]):
            self.head_conn = await connect(head, self.token, self._handle, hello=hello,
                                           timeout=config.connect_timeout_s)
            self.head_conn.close_callbacks.append(self._node_lost)
        else:
            self.head_conn = self.node_conn
        if self.mode == "driver":
            body, _ = await self.head_conn.request(
                "register_job", {"pid": os.getpid(), "namespace": self.namespace})
            self.job_id = body["job_id"]
            if config.log_to_driver:
                await self.node_conn.request("subscribe_logs", {"job_id": self.job_id})
        await self.node_conn.request("register_owner",
                                     {"owner_id": self.worker_id, "job_id": self.job_id})

    def call(self, coro, timeout: float | None = None):
        """Run ``coro`` on the I/O loop and wait for its result from a user thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def shutdown(self) -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        try:
            self.call(self._shutdown(), timeout=5)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    async def _shutdown(self) -> None:
        self.submitter.shutdown()
        self._flush_frees()
        if self.server is not None:
            self.server.close()
        if getattr(self, "tcp_server", None) is not None:
            self.tcp_server.close()
        if self.head_conn is not None and self.head_conn is not self.node_conn:
            self.head_conn.close()
        for conn in list(self.peers.values()):
            conn.close()
        if self.node_conn is not None:
            self.node_conn.close()
        try:
            os.unlink(self.sock_path)
        except OSError:
            pass

    def _node_lost(self, _conn) -> None:
        if not self.shutting_down:
            self.on_node_lost()

    def on_node_lost(self) -> None:
        """Overridden by workers (exit); a driver just reports the loss."""
        log.error("lost the connection to the shoal node daemon")

    # -- peers ----------------------------------------------------------------------------
    async def peer(self, address: str):
        conn = self.peers.get(address)
        if conn is not None and not conn.closed:
            return conn
        waiting = self._peer_connecting.get(address)
        if waiting is not None:
            return await asyncio.shield(waiting)
        fut = self.loop.create_future()
        self._peer_connecting[address] = fut
        try:
            conn = await connect(address, self.token, self._handle,
                                 hello={"role": self.mode, "address": self.address},
                                 timeout=config.connect_timeout_s)
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved
            raise
        finally:
            self._peer_connecting.pop(address, None)
        conn.close_callbacks.append(self._peer_closed)
        self.peers[address] = conn
        fut.set_result(conn)
        return conn

    def _peer_closed(self, conn) -> None:
        addr = conn.peer.get("address")
        if addr is not None and self.peers.get(addr) is conn:
            del self.peers[addr]
        self.submitter.peer_lost(conn)
        self.actor_submitter.peer_lost(conn)
        if addr:
            self._apply(self.refs.borrowers_gone(addr))

    def node_send(self, kind: str, body: dict) -> None:
        conn = self.node_conn
        if conn is not None and not conn.closed:
            conn.send(kind, body)

    # -- references -----------------------------------------------------------------------
    def make_ref(self, oid: bytes) -> ObjectRef:
        return ObjectRef(oid, self.address, self)

    def ref_deleted(self, oid: bytes) -> None:
        actions = self.refs.remove_local(oid)
        if oid in self._borrowed_cache and oid not in self.refs.borrowed:
            self._borrowed_cache.pop(oid, None)
        if actions:
            self._apply(actions)

    def note_deserialized_ref(self, ref: ObjectRef) -> None:
        if ref._owner != self.address:
            self._saw_foreign_refs = True

    def _apply(self, actions: list) -> None:
        """Carry out Free/ReleaseBorrow actions; safe from any thread (even in __del__)."""
        if self.shutting_down:
            return
        self._pending_frees.extend(actions)
        if not self._frees_scheduled:
            self._frees_scheduled = True
            try:
                self.loop.call_soon_threadsafe(self._flush_frees)
            except RuntimeError:  # loop closed
                pass

    def _flush_frees(self) -> None:
        self._frees_scheduled = False
        actions, self._pending_frees = self._pending_frees, []
        paths: dict[bytes | None, list] = {}
        for a in actions:
            if isinstance(a, Free):
                v = a.entry.value
                if v is not None and v.path is not None:
                    paths.setdefault(v.node_id, []).append(v.path)
                if a.entry.actor_id is not None and self.head_conn is not None \
                        and not self.head_conn.closed:
                    self.head_conn.send("actor_out_of_scope", {"aid": a.entry.actor_id})
            elif isinstance(a, ReleaseBorrow):
                spawn(self._send_peer(a.owner, "remove_borrower",
                                                      {"oid": a.oid, "borrower": self.address}))
        for node_id, ps in paths.items():
            self.free_on_node(node_id, ps)

    def free_on_node(self, node_id: bytes | None, paths: list) -> None:
        """Free segments on the node holding them (its daemon frees replicas elsewhere)."""
        if node_id in (None, self.node_id):
            self.node_send("free", {"paths": paths})
        else:
            spawn(self._free_remote(node_id, paths))

    async def _free_remote(self, node_id: bytes, paths: list) -> None:
        try:
            address = await self.node_address_of(node_id)
            if address is not None:
                (await self.peer(address)).send("free", {"paths": paths})
        except (ConnectionLost, OSError, RemoteError):
            pass  # that node is gone, and its store with it

    async def node_address_of(self, node_id: bytes) -> str | None:
        address = self.node_addresses.get(node_id)
        if address is None:
            body, _ = await self.head_conn.request("get_nodes", {})
            for n in body["nodes"]:
                self.node_addresses[n["node_id"]] = n["address"]
            address = self.node_addresses.get(node_id)
        return address

    async def _send_peer(self, address: str, kind: str, body: dict) -> None:
        try:
            conn = await self.peer(address)
            conn.send(kind, body)
        except (ConnectionLost, OSError, RemoteError):
            pass  # the owner is gone; so is the object

    async def register_borrows(self) -> None:
        """Tell owners about refs we hold that they do not know we hold (awaits their acks)."""
        self._saw_foreign_refs = False
        pending = self.refs.unregistered_borrows()
        if not pending:
            return

        async def one(oid, owner):
            try:
                conn = await self.peer(owner)
                await conn.request("add_borrower", {"oid": oid, "borrower": self.address})
                self.refs.mark_registered(oid)
            except (ConnectionLost, OSError, RemoteError):
                pass

        await asyncio.gather(*(one(o, w) for o, w in pending))

    # -- values ---------------------------------------------------------------------------
    def store_value(self, ser: serialization.Serialized, oid: bytes, owner_id: bytes,
                    replace: bool = False) -> Value:
        """Turn a serialized value into a Value: inline if small, else a shm segment here."""
        if ser.total_bytes <= self.max_inline:
            return Value(ser.is_error, bytes(ser.meta), [bytes(b) for b in ser.buffers],
                         size=ser.total_bytes)
        path = os.path.join(config.shm_dir, f"shoal-{self.session_tag}-{oid.hex()}")
        size = object_store.segment_size(len(ser.meta),
                                         [memoryview(b).nbytes for b in ser.buffers])
        reserved = self._reserve(size)
        try:
            size = object_store.write_segment(path, ser.meta, ser.buffers,
                                              object_store.FLAG_ERROR if ser.is_error else 0,
                                              replace=replace)
        except BaseException:
            if reserved:
                self.loop.call_soon_threadsafe(self.node_send, "unreserve", {"size": size})
            raise
        self.loop.call_soon_threadsafe(
            self.node_send, "seal", {"path": path, "size": size, "owner": owner_id,
                                     "reserved": reserved})
        return Value(ser.is_error, path=path, node_id=self.node_id, size=size)

    def _reserve(self, size: int) -> bool:
        """Wait for the node to set aside ``size`` bytes (it spills objects if it must)."""
        if _on_loop(self.loop):
            return False  # cannot block the I/O loop: write without a reservation
        try:
            self.call(self.node_conn.request("reserve", {"size": size}))
        except RemoteError as e:
            if e.body.get("store_full"):
                raise exc_mod.ObjectStoreFullError(e.body.get("error", "")) from None
            raise
        return True

    def materialize(self, v: Value):
        """Deserialize a Value (zero-copy for shm segments on this node)."""
        if v.path is not None:
            path = v.path
            if v.node_id is not None and v.node_id != self.node_id:
                path = self.call(self._pull(v))
            pinned = False
            try:
                meta, bufs, _flags = object_store.read_segment(path, self._unpinner(path))
            except FileNotFoundError:
                path = self.call(self._restore(v, path))  # spilled: bring it back
                pinned = True
                meta, bufs, _flags = object_store.read_segment(path, self._unpinner(path))
            if not pinned:
                self.loop.call_soon_threadsafe(self.node_send, "pin", {"paths": [path]})
            return serialization.deserialize(meta, bufs)
        return serialization.deserialize(v.meta, v.bufs)

    def _unpinner(self, path: str):
        def unpin():
            if not self.shutting_down:
                try:
                    self.loop.call_soon_threadsafe(self.node_send, "unpin", {"paths": [path]})
                except RuntimeError:
                    pass
        return unpin

    async def _restore(self, v: Value, path: str) -> str:
        try:
            body, _ = await self.node_conn.request("restore", {"path": path})
        except RemoteError as e:
            if e.body.get("store_full"):
                raise exc_mod.ObjectStoreFullError(e.body.get("error", "")) from None
            raise exc_mod.ObjectLostError(os.path.basename(path).rsplit("-", 1)[-1]) from e
        return body["path"]

    async def _pull(self, v: Value) -> str:
        """Have our node daemon fetch a segment held by another node; its local path."""
        try:
            body, _ = await self.node_conn.request("pull_object", {
                "path": v.path, "node_id": v.node_id, "size": v.size})
        except RemoteError as e:
            raise exc_mod.ObjectLostError(os.path.basename(v.path).rsplit("-", 1)[-1]) from e
        return body["path"]

    def placement_group_ready(self, pg) -> ObjectRef:
        """An ObjectRef that resolves to ``pg`` once all its bundles are reserved."""
        oid = self.ids.put_id()
        self.refs.new_owned(oid)
        ref = self.make_ref(oid)

        async def wait():
            try:
                await self.head_conn.request("wait_pg", {"pg": pg.id.binary()})
                ser = serialization.serialize(pg)
            except (RemoteError, ConnectionLost) as e:
                ser = serialization.serialize(exc_mod.RaySystemError(
                    f"placement group {pg.id.hex()} will never be ready: {e}"), is_error=True)
            self._set_one(oid, Value(ser.is_error, bytes(ser.meta), [], size=len(ser.meta)),
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
        ref = self.make_ref(oid)
        self.refs.owned[oid].name = "(put)"
        v = self.store_value(ser, oid, self.worker_id)
        self.refs.set_value(oid, v, ser.contained)
        return ref

    # -- get / wait -----------------------------------------------------------------------
    def _ready_value(self, ref: ObjectRef) -> Value | None:
        entry = self.refs.owned.get(ref._id)
        if entry is not None and entry.state == READY:
            return entry.value
        return self._borrowed_cache.get(ref._id)

    async def _value_of(self, ref: ObjectRef) -> Value:
        oid = ref._id
        entry = self.refs.owned.get(oid)
        if ref._owner == self.address:
            if entry is None:
                raise exc_mod.ObjectFreedError(oid.hex())
            if entry.state == READY:
                return entry.value
            fut = self.loop.create_future()
            entry.waiters.append(lambda v, f=fut: f.done() or f.set_result(v))
            return await fut
        cached = self._borrowed_cache.get(oid)
        if cached is not None:
            return cached
        try:
            conn = await self.peer(ref._owner)
            body, bufs = await conn.request("get_object", {"oid": oid})
        except (ConnectionLost, OSError) as e:
            raise exc_mod.OwnerDiedError(oid.hex(), ref._owner) from e
        except RemoteError as e:
            raise exc_mod.ObjectLostError(oid.hex(), ref._owner) from e
        v = Value.from_wire(body, bufs)
        if oid in self.refs.borrowed:
            self._borrowed_cache[oid] = v
        return v

    async def _gather_values(self, refs: list) -> list:
        return await asyncio.gather(*(self._value_of(r) for r in refs))

    def _wait_owned(self, refs: list, timeout: float | None) -> list | None:
        """Wait for objects owned here without going through the I/O loop.

        A waiter is registered on each pending entry (under the table's lock, so no result
        can slip by) and the caller sleeps on an event the I/O thread sets. Returns None if
        some ref is not owned here, or has been freed.
        """
        done = _thread.allocate_lock()  # held until the last value arrives (cheaper than Event)
        done.acquire()
        remaining = [0]
        values: list = [None] * len(refs)

        def waiter(i):
            def set_value(v):
                values[i] = v
                with self.refs.lock:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        done.release()
            return set_value

        with self.refs.lock:
            for i, r in enumerate(refs):
                entry = self.refs.owned.get(r._id)
                if r._owner != self.address or entry is None:
                    return None
                if entry.state == READY:
                    values[i] = entry.value
                else:
                    remaining[0] += 1
                    entry.waiters.append(waiter(i))
            if remaining[0] == 0:
                return values
        if not done.acquire(timeout=-1 if timeout is None else timeout):
            raise exc_mod.GetTimeoutError(
                f"Get timed out: some object(s) not ready after {timeout} s.")
        return values

    def get_values(self, refs: list, timeout: float | None) -> list[Value]:
        values = [self._ready_value(r) for r in refs]
        missing = [r for r, v in zip(refs, values, strict=True) if v is None]
        if missing and self.mode == "driver":
            got = self._wait_owned(missing, timeout)
            if got is not None:
                it = iter(got)
                return [v if v is not None else next(it) for v in values]
        if missing:
            fut = asyncio.run_coroutine_threadsafe(self._gather_values(missing), self.loop)
            blocked = self.mode == "worker"
            if blocked:
                self.loop.call_soon_threadsafe(self.node_send, "worker_blocked", {})
            try:
                got = fut.result(timeout)
            except concurrent.futures.TimeoutError:
                fut.cancel()
                raise exc_mod.GetTimeoutError(
                    f"Get timed out: some object(s) not ready after {timeout} s.") from None
            finally:
                if blocked:
                    self.loop.call_soon_threadsafe(self.node_send, "worker_unblocked", {})
            it = iter(got)
            values = [v if v is not None else next(it) for v in values]
        return values

    def get(self, refs: list, timeout: float | None):
        values = self.get_values(refs, timeout)
        out = []
        for v in values:
            obj = self.materialize(v)
            if v.is_error:
                if isinstance(obj, exc_mod.RayTaskError):
                    raise obj.as_instanceof_cause()
                raise obj
            out.append(obj)
        if self._saw_foreign_refs:
            self.call(self.register_borrows())
        return out

    def value_future(self, ref: ObjectRef) -> concurrent.futures.Future:
        out: concurrent.futures.Future = concurrent.futures.Future()

        def done(f):
            try:
                out.set_result(self.get([ref], 0)[0])
            except BaseException as e:  # noqa: BLE001 - handed to the future's owner
                out.set_exception(e)

        asyncio.run_coroutine_threadsafe(self._value_of(ref), self.loop).add_done_callback(
            lambda f: threading.Thread(target=done, args=(f,), daemon=True).start()
            if f.exception() is None else out.set_exception(f.exception()))
        return out

    def _ready_flags(self, refs: list) -> list[bool]:
        owned, cache = self.refs.owned, self._borrowed_cache
        flags = []
        append = flags.append
        for r in refs:
            oid = r._id
            e = owned.get(oid)
            append((e is not None and e.state == READY) or oid in cache)
        return flags

    def wait(self, refs: list, num_returns: int, timeout: float | None) -> tuple[list, list]:
        ready_flags = self._ready_flags(refs)
        if sum(ready_flags) < num_returns and (timeout is None or timeout > 0):
            fut = asyncio.run_coroutine_threadsafe(
                self._wait(refs, ready_flags, num_returns), self.loop)
            try:
                ready_flags = fut.result(timeout)
            except concurrent.futures.TimeoutError:
                fut.cancel()
                ready_flags = self._ready_flags(refs)
        if num_returns == len(refs) and all(ready_flags):
            return list(refs), []
        ready, not_ready = [], []
        for r, ok in zip(refs, ready_flags, strict=True):
            (ready if ok and len(ready) < num_returns else not_ready).append(r)
        return ready, not_ready

    async def _wait(self, refs, flags, num_returns):
        flags = list(flags)
        tasks = {self.loop.create_task(self._value_of(r)): i
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

    # -- tasks ----------------------------------------------------------------------------
    def submit(self, spec: TaskSpec, deps: list) -> None:
        """Queue a task from a user thread; it runs once its ObjectRef arguments are ready.

        Submissions made while the I/O loop is busy are handed over in one batch, with one
        wake-up of the loop rather than one per task.
        """
        self._submissions.append((self._submit, spec, deps))
        if not self._submit_scheduled:
            self._submit_scheduled = True
            self.loop.call_soon_threadsafe(self._drain_submissions)

    def _drain_submissions(self) -> None:
        self._submit_scheduled = False
        q = self._submissions
        while q:
            fn, spec, deps = q.popleft()
            fn(spec, deps)

    def create_actor(self, spec: dict, cls_bytes: bytes, args: list, deps: list) -> None:
        """Send an actor's creation spec to the head once its ObjectRef arguments are ready."""
        self.loop.call_soon_threadsafe(
            lambda: spawn(self._create_actor(spec, cls_bytes, args, deps)))

    async def _create_actor(self, spec, cls_bytes, args, deps) -> None:
        if deps:
            try:
                values = await self._gather_values([args[i] for i in deps])
            except exc_mod.RayError as e:
                values = [None] * len(deps)
                log.error("arguments of actor %s could not be fetched: %s", spec["aid"].hex(), e)
            for i, v in zip(deps, values, strict=True):
                args[i] = v
        bufs: list = [cls_bytes]
        spec["cls"] = 0
        spec["job"] = self.job_id
        spec["args"] = [v.to_wire(bufs) for v in args]
        if self.head_conn is not None and not self.head_conn.closed:
            self.head_conn.send("create_actor", spec, bufs)

    def submit_actor_call(self, call, deps: list) -> None:
        """Queue an actor call from a user thread (in order with the caller's other calls)."""
        if not deps and self.actor_submitter.try_direct(call):
            return
        if deps:
            with self.actor_submitter.queue(call.actor_id).lock:
                self.actor_submitter.queue(call.actor_id).in_transit += 1
        self._submissions.append((self.actor_submitter.submit, call, deps))
        if not self._submit_scheduled:
            self._submit_scheduled = True
            self.loop.call_soon_threadsafe(self._drain_submissions)

    def _submit(self, spec: TaskSpec, deps: list) -> None:
        if not deps:
            self.submitter.enqueue(spec)
            return
        self.resolving[spec.task_id] = spec
        spawn(self._resolve_and_enqueue(spec, deps))

    async def _resolve_and_enqueue(self, spec: TaskSpec, deps: list) -> None:
        try:
            values = await self._gather_values([spec.args[i] for i in deps])
        except exc_mod.RayError as e:
            self.fail_task(spec, e)
            return
        finally:
            self.resolving.pop(spec.task_id, None)
        for i, v in zip(deps, values, strict=True):
            if v.is_error:
                self._set_returns(spec, [v] if spec.num_returns == "streaming"
                                  else [v] * spec.num_returns)
                return
            spec.args[i] = v
        if spec.cancelled:
            self.fail_task(spec, exc_mod.TaskCancelledError(spec.task_id.hex()))
            return
        self.submitter.enqueue(spec)

    def _gen_item(self, body: dict, bufs: list) -> None:
        gen = self.generators.get(body["tid"])
        v = Value.from_wire(body["v"], bufs)
        if gen is None:  # nobody iterates any more
            if v.path is not None:
                self.free_on_node(v.node_id, [v.path])
            return
        rid = body["tid"] + body["i"].to_bytes(4, "big")
        self.refs.new_owned(rid, body["tid"])
        ref = self.make_ref(rid)
        self._set_one(rid, v, None)
        gen._add(body["i"], ref)

    def task_finished(self, spec: TaskSpec, body: dict, bufs: list) -> bool:
        """A worker replied. Returns True if the task should run again (retry_exceptions)."""
        if spec.num_returns == "streaming":
            gen = self.generators.pop(spec.task_id, None)
            if gen is not None:
                gen._finish(body.get("n", 0))
            self.release_hold(spec)
            return False
        values = [Value.from_wire(d, bufs) for d in body["r"]]
        if body.get("app_err") and values and self._should_retry_exception(spec, values[0]):
            return True
        contained = body.get("cont") or {}
        for i, v in enumerate(values):
            inner = [ObjectRef(oid, owner, self) for oid, owner in contained.get(i, ())]
            for r in inner:
                if r._owner != self.address:
                    self.refs.mark_registered(r._id)
            self._set_one(spec.return_ids[i], v, inner)
        self.release_hold(spec)
        return False

    def _should_retry_exception(self, spec: TaskSpec, v: Value) -> bool:
        allow = spec.retry_exceptions
        if not allow or spec.cancelled:
            return False
        if spec.max_retries >= 0 and spec.attempt > spec.max_retries:
            return False
        if allow is True:
            return True
        if v.path is not None and v.node_id not in (None, self.node_id):
            return True  # a remote error value: fetching it here would block the I/O loop
        try:
            err = self.materialize(v)
        except Exception:
            return False
        cause = getattr(err, "cause", err)
        return isinstance(cause, tuple(allow))

    def release_hold(self, spec) -> None:
        """A task or call is done: the refs it kept alive as arguments let go."""
        for r in spec.hold:
            self._apply(self.refs.remove_submitted(r._id))
        spec.hold = []

    def fail_task(self, spec: TaskSpec, error: BaseException) -> None:
        ser = serialization.serialize(error, is_error=True)
        v = Value(True, bytes(ser.meta), [bytes(b) for b in ser.buffers], size=ser.total_bytes)
        self._set_returns(spec, [v] * (1 if spec.num_returns == "streaming"
                                       else spec.num_returns))

    def _set_returns(self, spec: TaskSpec, values: list) -> None:
        if spec.num_returns == "streaming":  # the error ends the stream as its next item
            gen = self.generators.pop(spec.task_id, None)
            if gen is not None:
                index = max(gen._refs, default=gen._next - 1) + 1
                rid = spec.task_id + index.to_bytes(4, "big")
                self.refs.new_owned(rid, spec.task_id)
                ref = self.make_ref(rid)
                self._set_one(rid, values[0], None)
                gen._add(index, ref)
                gen._finish(index)
            self.release_hold(spec)
            return
        for oid, v in zip(spec.return_ids, values, strict=True):
            self._set_one(oid, v, None)
        self.release_hold(spec)

    def _set_one(self, oid: bytes, v: Value, contains) -> None:
        waiters = self.refs.set_value(oid, v, contains)
        if waiters is None:
            if v.path is not None:  # nobody wants it any more
                self.free_on_node(v.node_id, [v.path])
            return
        for w in waiters:
            w(v)

    def cancel(self, ref: ObjectRef, force: bool, recursive: bool) -> None:
        self.loop.call_soon_threadsafe(self._cancel, ref._id[:24], force)

    def _cancel(self, task_id: bytes, force: bool) -> None:
        spec = self.submitter.cancel_queued(task_id)
        if spec is not None:
            spec.cancelled = True
            self.fail_task(spec, exc_mod.TaskCancelledError(task_id.hex()))
            return
        spec = self.submitter.running.get(task_id)
        if spec is not None:
            spec.cancelled = True
            spec.force_cancel = force
            lw = spec.worker
            if lw is not None and not lw.conn.closed:
                lw.conn.send("cancel_task", {"tid": task_id, "force": force})
            return
        spec = self.resolving.get(task_id)
        if spec is not None:  # still waiting for its arguments: it will never run
            spec.cancelled = True

    # -- serving peers --------------------------------------------------------------------
    def _handle(self, conn, kind, body, bufs, req_id):
        if kind == "get_object":
            return self._serve_get(conn, body, req_id)
        if kind == "add_borrower":
            conn.reply(req_id, {"ok": self.refs.add_borrower(body["oid"], body["borrower"])})
            if not conn.state.get("borrower_watch"):
                conn.state["borrower_watch"] = True
                borrower = body["borrower"]
                conn.close_callbacks.append(
                    lambda _c: self._apply(self.refs.borrowers_gone(borrower)))
        elif kind == "remove_borrower":
            self._apply(self.refs.remove_borrower(body["oid"], body["borrower"]))
        elif kind == "owned_objects":
            owned, borrowed = self.refs.summary()
            conn.reply(req_id, {"owned": owned, "borrowed": borrowed, "pid": os.getpid(),
                                "mode": self.mode, "worker_id": self.worker_id,
                                "actor_id": self.actor_id, "address": self.address})
        elif kind == "worker_oom":
            self.submitter.worker_oom(body)
        elif kind == "gen_item":
            self._gen_item(body, bufs)
        elif kind == "log_lines":
            if config.log_to_driver:
                self._print_logs(body)
        elif kind == "infeasible":
            self._warn_infeasible(body)
        else:
            h = self.extra_handlers.get(kind)
            if h is None:
                conn.reply_error(req_id, f"unknown message {kind!r}")
                return None
            return h(conn, body, bufs, req_id)
        return None

    async def _serve_get(self, conn, body, req_id):
        oid = body["oid"]
        entry = self.refs.owned.get(oid)
        if entry is None:
            conn.reply_error(req_id, f"object {oid.hex()} is not known to its owner (freed)")
            return
        if entry.state != READY:
            fut = self.loop.create_future()
            entry.waiters.append(lambda v, f=fut: f.done() or f.set_result(v))
            v = await fut
        else:
            v = entry.value
        out: list = []
        conn.reply(req_id, v.to_wire(out), out)

    def _print_logs(self, body: dict) -> None:
        prefix = f"(pid={body['pid']}) " if body.get("ip") in (None, "127.0.0.1") else \
            f"(pid={body['pid']}, ip={body['ip']}) "
        stream = sys.stderr if body.get("err") else sys.stdout
        try:
            stream.write("".join(prefix + line + "\n" for line in body["lines"]))
            stream.flush()
        except (ValueError, OSError):
            pass

    def _warn_infeasible(self, body: dict) -> None:
        key = tuple(sorted(body["demand"].items()))
        if key in self._infeasible_warned:
            return
        self._infeasible_warned.add(key)
        msg = (f"Warning: a task or actor requires {body['demand']}, which no node in the "
               f"cluster can provide (node total: {body['total']}). It will wait until a node "
               f"with these resources joins.")
        log.warning(msg)
        print(msg, file=sys.stderr, flush=True)


def _on_loop(loop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
