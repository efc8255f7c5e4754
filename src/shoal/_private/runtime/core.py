"""The core runtime embedded in every driver and worker.

It owns this process's connections (to its node daemon, to peers), its listening socket, the
objects it owns (:class:`ownership.RefTable`), and task submission (:mod:`submitter`). I/O runs
on an asyncio loop in a background thread; the user's thread calls in through the public API.

Its work is done by parts it holds and names, each the one owner of its state: ``values``
(:mod:`values`: storing, reading, get/put/wait), ``tasks`` (:mod:`task_results`: submission,
results, cancellation) and ``lineage`` (:mod:`lineage`: remaking objects lost with a node).
What the public modules call on the runtime (``rt.get``, ``rt.submit``...) is bound to the
part that does it when the runtime is made.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import threading

from ..wire import aio, auth, transport
from ..wire.aio import spawn
from ..wire.config import config
from ..wire.ids import IdSource
from ..wire.transport import ConnectionLost, RemoteError, connect, serve_unix
from .actor_submitter import ActorSubmitter
from .head_channel import HeadChannel
from .lineage import Lineage
from .object_ref import ObjectRef
from .ownership import Free, RefTable, ReleaseBorrow
from .submitter import Submitter
from .task_events import TaskEvents
from .task_results import Tasks
from .values import Values
from .worker_env import CodePaths, driver_code_paths

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
        self.submission_id = ""  # a driver that is a submitted job's entrypoint: that job
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
        self.actor_group: list | None = None  # an actor's placement group (current_group)
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
        self.cancelling_task: bytes | None = None  # a worker's task being cancelled
        self.task_events = TaskEvents()
        # A driver of a cluster that outlives it leaves its task records with the head.
        self.archive_tasks_on_exit = True
        self.code_paths = CodePaths()  # each job's driver directories, for workers' sys.path
        self.inherited_env: dict | None = None  # env_vars children inherit (the job's, a task's)
        # working_dir/py_modules/pip children inherit: the worker's own (its node set it),
        # or the job's (a driver's, from init's runtime_env).
        raw = os.environ.get("SHOAL_RUNTIME_ENV") if mode == "worker" else None
        self.inherited_runtime_env: dict | None = json.loads(raw) if raw else None
        self.tcp_server = None  # the TCP side of our listening socket, in a cluster (start)
        # Set from outside once known (read with getattr and these same defaults):
        self.job_config = None  # init's JobConfig (a driver; api.init)
        self.job_runtime_env: dict | None = None  # the job's runtime_env (a driver; api.init)
        self.task_executor = None  # a worker's worker.executor (it sets itself)
        self.actor_executor = None  # an actor worker's worker.actor_executor (likewise)
        self.actor_name: str | None = None  # and the rest of an actor's identity (set there)
        self.actor_restarted = False
        self.actor_class = None
        self.actor_gpu_ids: list | None = None
        self.actor_resources: dict | None = None

        # The parts, made last (they take what they need of the above) in this order: each
        # gets the parts it uses; lineage reaches values and tasks, made after it, through us.
        self.lineage = Lineage(self, self.refs)
        self.values = Values(self, self.refs, self.lineage)
        self.tasks = Tasks(self, self.refs, self.values, self.lineage)
        # The facade: what the public modules, the submitters and the worker's executor call
        # on the runtime, bound once to the part that does it (nothing added per call).
        v = self.values
        self.put = v.put
        self.put_serialized = v.put_serialized
        self.get = v.get
        self.wait = v.wait
        self.value_future = v.value_future
        self.store_value = v.store_value
        self.materialize = v.materialize
        self.placement_group_ready = v.placement_group_ready
        self._ready_flags = v.ready_flags  # wait_mixed
        self._wait = v.wait_flags  # wait_mixed
        self._gather_values = v.gather_values  # actor_submitter
        self._set_one = v.set_one  # generator
        t = self.tasks
        self.submit = t.submit
        self.submit_actor_call = t.submit_actor_call
        self.create_actor = t.create_actor
        self.cancel = t.cancel
        self.cancel_children = t.cancel_children
        self.task_finished = t.task_finished  # the submitters
        self.fail_task = t.fail_task  # the submitters
        self._set_returns = t.set_returns  # actor_submitter

    @property
    def max_inline(self) -> int:
        """The largest value kept inline rather than in a shared-memory segment."""
        return self.values.max_inline

    @property
    def generators(self) -> dict:
        """Task id -> ObjectRefGenerator of the streaming tasks submitted here."""
        return self.tasks.generators

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
                sock=self._tcp_sock, ssl=auth.server_ssl_context())
        hello = {"role": self.mode, "address": self.address}
        self.node_conn = await connect(self.node_address, self.token, self._handle,
                                       hello=hello, timeout=config.connect_timeout_s)
        self.node_conn.close_callbacks.append(self._node_lost)
        head = self.head_address
        if head and head not in (self.node_address,
                                 transport.split_address(self.node_address)[0]):
            conn = await connect(head, self.token, self._handle, hello=hello,
                                 timeout=config.connect_timeout_s)
            self.head_conn = HeadChannel(self, head, conn)  # survives head restarts
            self.head_conn.close_callbacks.append(self._node_lost)
        else:
            self.head_conn = self.node_conn
        if self.mode == "driver":
            body, _ = await self.head_conn.request(
                "register_job", {"pid": os.getpid(), "namespace": self.namespace,
                                 "entrypoint": _entrypoint(), "ip": self.node_ip or "127.0.0.1",
                                 "submission_id": self.submission_id})
            self.job_id = body["job_id"]
            self.code_paths.learn(self.job_id, driver_code_paths())
            if config.log_to_driver:
                await self.node_conn.request("subscribe_logs", {"job_id": self.job_id})
        await self.node_conn.request("register_owner",
                                     {"owner_id": self.worker_id, "job_id": self.job_id})
        await self.head_conn.request("subscribe", {})  # node deaths, for lineage

    def call(self, coro, timeout: float | None = None):
        """Run ``coro`` on the I/O loop and wait for its result from a user thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def shutdown(self) -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        try:
            self.call(self._shutdown(), timeout=10)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    async def _shutdown(self) -> None:
        if self.mode == "driver" and config.log_to_driver and self.head_conn is not None:
            await self._flush_worker_output()
        if self.archive_tasks_on_exit and self.mode == "driver" and self.head_conn is not None:
            await self._archive_tasks()
        self.submitter.shutdown()
        self._flush_frees()
        if self.server is not None:
            self.server.close()
        if self.tcp_server is not None:
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
        # Requests still waiting (a lease asked for, say) end here rather than be destroyed
        # pending when the loop stops, which asyncio reports at exit.
        me = asyncio.current_task()
        pending = [t for t in list(aio._background) if t is not me and not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1)

    async def _flush_worker_output(self) -> None:
        """Before leaving, print what this job's workers have written so far (Ray's driver
        does too): a line printed before the last ``get`` returned is not lost. Every node
        answers once it has sent those lines, which come first on the same connections."""
        asks = [self.head_conn.request("flush_job_logs", {"job_id": self.job_id}, timeout=3)]
        if self.node_conn is not self.head_conn and self.node_conn is not None:
            asks.append(self.node_conn.request("flush_logs", {"job_id": self.job_id},
                                               timeout=3))
        try:
            await asyncio.wait_for(asyncio.gather(*asks, return_exceptions=True), 4)
        except TimeoutError:
            log.debug("workers' output not flushed in time")

    async def _archive_tasks(self) -> None:
        """Leave this driver's task records with the head, which outlives the job."""
        rows, dropped = self.task_events.rows()
        if not rows:
            return
        try:
            await self.head_conn.request("archive_tasks", {
                "tasks": rows, "dropped": dropped, "pid": os.getpid(), "mode": self.mode,
                "worker_id": self.worker_id}, timeout=2)
        except Exception:  # noqa: BLE001 - the records are a convenience; exit regardless
            log.debug("could not hand the task records to the head", exc_info=True)

    def _node_lost(self, _conn) -> None:
        if not self.shutting_down:
            self.on_node_lost()

    def on_node_lost(self) -> None:
        """Overridden by workers (exit); a driver just reports the loss."""
        log.error("lost the connection to the shoal node daemon")

    def current_group(self) -> list | None:
        """``[pg id, bundle index, capture child tasks, bundles]`` of the placement group the
        running task (or this actor) was scheduled in, or None."""
        group = getattr(self.current_task, "placement_group", None)
        return group if group is not None else self.actor_group

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
        cache = self.values.borrowed_cache
        if oid in cache and oid not in self.refs.borrowed:
            cache.pop(oid, None)
        if actions:
            self._apply(actions)

    def note_deserialized_ref(self, ref: ObjectRef) -> None:
        if ref._owner != self.address:
            self._saw_foreign_refs = True

    def _apply(self, actions: list) -> None:
        """Carry out Free/ReleaseBorrow actions; safe from any thread (even in __del__)."""
        if self.shutting_down:
            return
        # An inline value (most task results) has nothing to free outside this process:
        # no loop wake-up for it (one self-pipe write per sync call saved).
        actions = [a for a in actions if not _frees_nothing_outside(a)]
        if not actions:
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
        elif kind == "cancel_owned_task":  # a borrower's cancel(), or the dashboard's
            self.tasks.cancel_local(body["task_id"], bool(body.get("force")),
                                    bool(body.get("recursive", True)))
        elif kind == "app_metrics":
            from .app_metrics import REGISTRY

            conn.reply(req_id, {"metrics": REGISTRY.snapshot(), "pid": os.getpid()})
        elif kind == "task_counts":
            states, actors = self.task_events.counts()
            conn.reply(req_id, {"counts": states, "actor_calls": actors, "pid": os.getpid(),
                                "dropped": self.task_events.dropped})
        elif kind == "task_events":
            rows, dropped = self.task_events.rows(body)
            conn.reply(req_id, {"tasks": rows, "dropped": dropped, "pid": os.getpid(),
                                "worker_id": self.worker_id, "mode": self.mode})
        elif kind == "head_event":
            self.lineage.on_head_event(body)
        elif kind == "worker_oom":
            self.submitter.worker_oom(body)
        elif kind == "gen_item":
            self.tasks.gen_item(body, bufs)
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
        v = await self.lineage.live_value(oid, entry)  # remade first if its copy was lost
        out: list = []
        conn.reply(req_id, v.to_wire(out), out)

    def _print_logs(self, body: dict) -> None:
        prefix = log_prefix(body, self.node_ip or "127.0.0.1")
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


_COLORS = ("\x1b[35m", "\x1b[36m", "\x1b[32m", "\x1b[90m", "\x1b[94m", "\x1b[95m")


def log_prefix(body: dict, local_ip: str) -> str:
    """Ray's prefix of a worker's line: ``(name pid=N, ip=IP) `` (no name before a task or
    actor spoke; no ip for this node), coloured as ``RAY_COLOR_PREFIX`` says (0: none, 1: a
    colour per process, else cyan)."""
    name = body.get("name")
    ip = body.get("ip")
    text = f"({name + ' ' if name else ''}pid={body['pid']}" \
           f"{'' if ip in (None, local_ip) else f', ip={ip}'})"
    mode = os.environ.get("RAY_COLOR_PREFIX")
    if mode == "0":
        return text + " "
    color = _COLORS[int(body["pid"]) % len(_COLORS)] if mode == "1" else "\x1b[36m"
    return f"{color}{text}\x1b[0m "


def _entrypoint() -> str:
    """How the driver was started, as Ray's job table shows it."""
    import sys

    argv = getattr(sys, "orig_argv", None) or sys.argv
    return " ".join(argv)[:1000]


def _frees_nothing_outside(action) -> bool:
    """A Free of an object whose value is inline (or never came) and that is no actor
    handle: dropping it here is all there is to do. (An entry's value is set under the ref
    table's lock and never after it is freed, so reading it here is safe.)"""
    if not isinstance(action, Free):
        return False
    v = action.entry.value
    return (v is None or v.path is None) and action.entry.actor_id is None
