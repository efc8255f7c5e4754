"""The node daemon: one per machine. Worker pool, leases, the node's object store, logs.

The scheduling rules live in :mod:`scheduler` (pure); this module is the I/O around them:
it spawns and watches worker processes, answers lease requests, accounts for the shared
memory segments sealed on this node, and forwards workers' output to drivers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import sys

from ..wire.aio import spawn
from ..wire.config import config
from ..wire.resources import NodeResources, ResourceSet
from ..wire.transport import Connection, ConnectionLost, RemoteError, connect
from . import (
    cluster_policy,
    forkserver,
    memory_monitor,
    placement,
    proctree,
    runtime_envs,
    scheduler,
)
from . import output as node_output
from .env_workers import EnvWorkers
from .observe import NodeObserver
from .store import NodeStore
from .transfer import ObjectTransfer

log = logging.getLogger(__name__)

EXIT_GRACE_S = 10.0  # how long a worker that leaves by itself may take before it is killed


class WorkerProc:
    def __init__(self, worker_id: bytes, proc: asyncio.subprocess.Process):
        self.worker_id = worker_id
        self.proc = proc
        self.pid = proc.pid
        self.address: str | None = None
        self.conn: Connection | None = None
        self.job_id: int | None = None  # job of the current/last lease, for log routing
        self.log_file = None
        self.readers: list = []  # node_output.OutputReader of its stdout and stderr


class NodeDaemon:
    def __init__(self, *, node_id: bytes, session_dir: str, session_tag: str, address: str,
                 ip: str, total: dict, head, token: bytes, is_head: bool):
        self.node_id = node_id
        self.session_dir = session_dir
        self.session_tag = session_tag
        self.address = address
        self.ip = ip
        self.head = head  # link to the control store (in-process or remote)
        self.token = token
        self.is_head = is_head
        self.res = NodeResources(total)
        ncpu = max(1, int(self.res.total.get("CPU")))
        idle_keep = config.idle_worker_keep
        self.sched = scheduler.LocalScheduler(
            resources=self.res,
            max_workers=max(4, ncpu * config.max_workers_per_cpu),
            idle_keep=ncpu if idle_keep < 0 else idle_keep,
        )
        self.procs: dict[bytes, WorkerProc] = {}
        self.envs = EnvWorkers(self)  # workers in runtime environments of their own
        proctree.become_subreaper()  # orphans of workers' children stay in our tree
        self.lease_ids = itertools.count(1)
        # lease id -> (connection, request id, future): where a grant is to be delivered
        self.pending_replies: dict[int, tuple] = {}
        self.store = NodeStore(self, int(self.res.total.get("object_store_memory"))
                               or 1 << 62)
        self.log_subscribers: dict[int, set[Connection]] = {}
        self.stopping = False
        self.view = cluster_policy.ClusterView(node_id)
        self.view.update(node_id, address, self.res.total.to_dict(),
                         self.res.available.to_dict(), True)
        self.transfer = ObjectTransfer(self)
        self.peers: dict[str, Connection] = {}
        self.worker_env: dict[str, str] = {}  # extra environment for workers (cluster mode)
        self._report_scheduled = False
        self.bundles: dict[tuple[bytes, int], tuple] = {}  # (pg, index) -> (base, named, gpus)
        # What the node answers about itself (it knows the node's drivers and workers).
        self.observe = NodeObserver(self)
        self.ask = self.observe.ask  # the head's questions of its own node (in process)
        # Workers are forked from a preloaded process where the platform allows it.
        self.forks = forkserver.ForkServer() \
            if config.worker_fork_server and forkserver.available() else None

    # -- lifecycle ------------------------------------------------------------------------
    def registration(self) -> dict:
        return {"node_id": self.node_id, "address": self.address, "ip": self.ip,
                "total": self.res.total.to_dict(), "is_head": self.is_head,
                "available": self.res.available.to_dict(), "session_dir": self.session_dir}

    async def start(self, prestart: int) -> None:
        if self.forks is not None:
            argv = self._worker_argv(forkserver.PLACEHOLDER)
            spawn(self.forks.start(argv, self._worker_env(), os.path.join(
                self.session_dir, "logs", f"zygote-{self.node_id.hex()[:8]}.log")))
        await self.head.register_node(self.registration())
        for _ in range(prestart):
            self._start_worker()
        spawn(memory_monitor.run(self))

    async def heartbeat(self, interval: float) -> None:
        """Report resources to the head periodically: the head's proof we are alive."""
        while not self.stopping:
            self._send_report()
            await asyncio.sleep(interval)

    def on_cluster_view(self, nodes: list[dict]) -> None:
        for n in nodes:
            if n["node_id"] == self.node_id:
                continue
            self.view.update(n["node_id"], n["address"], n["total"], n["available"],
                             n["alive"])
        self._respill()

    def _respill(self) -> None:
        """Send queued requests that cannot run here now to nodes where they fit now
        (a node that fits an infeasible request joined, or another node became free)."""
        for req in list(self.sched.queue):
            if self.sched.resources.can_fit(req.needs) or req.dedicated and \
                    self.res.can_ever_fit(req.needs):
                continue
            fit = [n for n in self.view.alive()
                   if n.node_id != self.node_id and req.needs.fits_in(n.available)]
            if not fit:
                continue
            conn, req_id, fut = self.pending_replies.get(req.lease_id, (None, 0, None))
            if conn is None and fut is None:
                continue
            target = min(fit, key=lambda n: (n.load(), n.node_id))
            self.sched.cancel_request(req.lease_id)
            self.pending_replies.pop(req.lease_id, None)
            if conn is not None:
                conn.state.get("lease_requests", set()).discard(req.lease_id)
            self._answer(conn, req_id, fut,
                         grant={"spillback": target.address, "node_id": target.node_id})

    async def peer(self, address: str) -> Connection:
        conn = self.peers.get(address)
        if conn is None or conn.closed:
            conn = await connect(address, self.token, self._peer_handler,
                                 hello={"role": "node", "address": self.address})
            self.peers[address] = conn
        return conn

    def _peer_handler(self, conn, kind, body, bufs, req_id):
        self.handle(conn, kind, body, bufs, req_id)

    async def send_to_node(self, address: str, kind: str, body: dict) -> None:
        try:
            (await self.peer(address)).send(kind, body)
        except (OSError, ConnectionError, ConnectionLost):
            pass

    async def stop(self) -> None:
        self.stopping = True
        if self.forks is not None:
            self.forks.close()
            if self.forks.proc is not None:
                _signal(self.forks.proc, signal.SIGKILL)
                await self.forks.proc.wait()
        for wp in list(self.procs.values()):
            _signal(wp.proc, signal.SIGTERM)
        waits = [wp.proc.wait() for wp in self.procs.values()]
        if waits:
            done, pending = await asyncio.wait(
                [asyncio.ensure_future(w) for w in waits], timeout=3.0
            )
            for wp in list(self.procs.values()):
                _signal(wp.proc, signal.SIGKILL)
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        # What tasks started (in sessions of their own, too) dies with the node.
        proctree.kill_descendants(None, spare={w.proc.pid for w in self.procs.values()})
        self.sweep_objects()

    def sweep_objects(self) -> None:
        self.store.sweep(self.session_tag)

    # -- worker processes -----------------------------------------------------------------
    def _start_worker(self, env_key: str = "") -> None:
        worker_id = os.urandom(28)
        self.sched.worker_starting(worker_id, env_key)
        spawn(self._spawn(worker_id, env_key))

    def _worker_env(self) -> dict:
        env = dict(os.environ)
        env.pop("SHOAL_LEAN_INIT", None)  # the daemon's own: workers use the public API
        env["PYTHONUNBUFFERED"] = "1"
        env["SHOAL_SESSION_DIR"] = self.session_dir
        env.update(self.worker_env)
        return env

    def _worker_argv(self, worker_hex: str) -> list[str]:
        return ["--node-address", self.address, "--worker-id", worker_hex,
                "--node-id", self.node_id.hex(), "--session-tag", self.session_tag]

    async def _spawn(self, worker_id: bytes, env_key: str = "") -> None:
        env = self._worker_env()
        env[proctree.WORKER_ENV] = worker_id.hex()  # inherited by what its tasks start
        argv = self._worker_argv(worker_id.hex())
        python, cwd = sys.executable, None
        if env_key:  # its own interpreter, cwd and paths: started by exec, never forked
            prepared = await self.envs.prepare(worker_id, env_key)
            if prepared is None:
                return
            python, extra, cwd = prepared
            env.update(extra)
        # Our own pipes (not asyncio's): their readers count bytes, for flush_logs.
        pipes = [os.pipe(), os.pipe()]
        try:
            proc = None
            if self.forks is not None and not env_key:
                if not self.forks.settled.is_set():  # the first workers: it is starting
                    try:
                        await asyncio.wait_for(self.forks.settled.wait(),
                                               config.fork_server_start_timeout_s)
                    except TimeoutError:
                        self.forks.close()
                proc = await self.forks.spawn(argv, env, pipes[0][1], pipes[1][1])
            if proc is None:
                proc = await asyncio.create_subprocess_exec(
                    python, "-m", "shoal._private.launch.worker_main", *argv,
                    env=env, stdin=asyncio.subprocess.DEVNULL, cwd=cwd,
                    stdout=pipes[0][1], stderr=pipes[1][1],
                )
        except OSError:
            log.exception("could not start a worker")
            for r, _w in pipes:
                os.close(r)
            self._apply(self.sched.worker_died(worker_id)[0])
            return
        finally:
            for _r, w in pipes:
                os.close(w)
        wp = WorkerProc(worker_id, proc)
        self.procs[worker_id] = wp
        wp.log_file = open(  # noqa: SIM115 - lives as long as the worker
            os.path.join(self.session_dir, "logs", f"worker-{worker_id.hex()[:8]}-{proc.pid}.log"),
            "ab", buffering=0,
        )
        await self._read_output(wp, [r for r, _w in pipes])
        await proc.wait()
        if env_key and wp.address is None:
            self.envs.worker_failed(env_key, wp.log_file.name)
        self._worker_exited(wp)
        # A grandchild may still hold the pipes: stop reading them soon.
        await asyncio.wait([r.done for r in wp.readers], timeout=2.0)
        for r in wp.readers:
            if r.transport is not None:
                r.transport.close()
        wp.log_file.close()

    async def _read_output(self, wp: WorkerProc, fds: list[int]) -> None:
        loop = asyncio.get_running_loop()
        for fd, is_err in zip(fds, (False, True), strict=True):
            reader = node_output.OutputReader(self, wp, is_err)
            wp.readers.append(reader)
            await loop.connect_read_pipe(lambda r=reader: r, os.fdopen(fd, "rb", buffering=0))

    def _worker_exited(self, wp: WorkerProc) -> None:
        self.procs.pop(wp.worker_id, None)
        # Its descendants (a task's setsid child too) do not outlive it.
        proctree.kill_descendants({wp.worker_id.hex()},
                                  spare={w.proc.pid for w in self.procs.values()})
        actions, lease = self.sched.worker_died(wp.worker_id)
        if lease is not None:
            self._report_resources()
        if not self.stopping:
            self._apply(actions)

    def register_worker(self, conn: Connection, body: dict) -> None:
        worker_id = body["worker_id"]
        wp = self.procs.get(worker_id)
        if wp is None:
            # A worker we did not start, or one whose spawn we lost track of.
            conn.close()
            return
        wp.address = body["address"]
        wp.conn = conn
        if worker_id in self.sched.workers:
            self.envs.started(self.sched.workers[worker_id].env)
        conn.state["worker_id"] = worker_id
        conn.close_callbacks.append(lambda _c: _signal(wp.proc, signal.SIGKILL))
        self._apply(self.sched.worker_registered(worker_id))

    # -- leases ---------------------------------------------------------------------------
    def request_lease(self, body: dict, *, conn: Connection | None = None, req_id: int = 0,
                      future: asyncio.Future | None = None) -> int:
        """Queue a lease request; the answer goes to ``conn`` (a reply) or ``future``.

        In a cluster the policy may send it elsewhere: the answer is then a *spillback*
        naming the node daemon to ask instead.
        """
        lease_id = next(self.lease_ids)
        place = body.get("place")
        if len(self.view.nodes) > 1 or body.get("strategy") not in (None, "DEFAULT"):
            needs = ResourceSet(place or body.get("resources") or {})
            demand = ResourceSet(body.get("resources") or {})
            try:
                where = cluster_policy.choose(
                    self.view, needs, body.get("strategy"),
                    local_fits_now=self.sched.fits_after_queue(needs)
                    and self.res.can_fit(demand),
                    spilled=bool(body.get("spilled")))
            except cluster_policy.Unschedulable as e:
                self._answer(conn, req_id, future, error=str(e))
                return lease_id
            if where not in (cluster_policy.LOCAL, cluster_policy.INFEASIBLE):
                target = self.view.nodes[where]
                self._answer(conn, req_id, future,
                             grant={"spillback": target.address, "node_id": where})
                return lease_id
        req = scheduler.LeaseRequest(
            lease_id, ResourceSet(body.get("resources") or {}), owner=conn,
            dedicated=bool(body.get("dedicated")), place=ResourceSet(place) if place else None,
            job_id=body.get("job_id"), env=str(body.get("env_key") or ""),
        )
        if req.env:
            self.envs.learn(req.env, body.get("runtime_env"))
        self.pending_replies[lease_id] = (conn, req_id, future)
        head_conn = getattr(self.head, "conn", None)
        if conn is not None and conn is head_conn:
            # An actor's lease, asked by the head: it outlives the head's connection (a
            # restarted head takes it back); the head returns it when the actor ends.
            req.owner = None
        elif conn is not None:
            conn.state.setdefault("lease_requests", set()).add(lease_id)
            if not conn.state.get("owner_watch"):
                conn.state["owner_watch"] = True
                conn.close_callbacks.append(self.owner_gone)
        self._apply(self.sched.request_lease(req))
        return lease_id

    @staticmethod
    def _answer(conn, req_id, future, *, grant=None, error=None, setup=False) -> None:
        """``setup``: the error is the runtime environment's (RuntimeEnvSetupError)."""
        if future is not None:
            if not future.done():
                if error is not None:
                    future.set_exception(runtime_envs.SetupError(error) if setup
                                         else cluster_policy.Unschedulable(error))
                else:
                    future.set_result(grant)
        elif conn is not None and not conn.closed:
            if error is not None:
                if setup:
                    conn.reply_error(req_id, error, runtime_env_setup=True)
                else:
                    conn.reply_error(req_id, error, unschedulable=True)
            else:
                conn.reply(req_id, grant)

    def lease_worker(self, body: dict) -> asyncio.Future:
        """In-process lease (the head's, for actors): a future of the grant."""
        fut = asyncio.get_running_loop().create_future()
        self.request_lease(body, future=fut)
        return fut

    def return_lease(self, body: dict) -> None:
        actions = self.sched.lease_returned(body["lease_id"],
                                            worker_alive=not body.get("kill", False))
        if body.get("exiting"):
            actions = self._let_exit(actions)
        self._apply(actions)
        self._report_resources()

    def _let_exit(self, actions: list) -> list:
        """A worker leaving by itself (``max_calls``) is not killed at once: it is given
        ``EXIT_GRACE_S`` to run its exit handlers, and killed only if still there then."""
        loop = asyncio.get_running_loop()
        kept = []
        for a in actions:
            if isinstance(a, scheduler.KillWorker):
                loop.call_later(EXIT_GRACE_S, self.kill_worker, a.worker_id)
            else:
                kept.append(a)
        return kept

    def owner_gone(self, conn: Connection) -> None:
        """A driver or worker holding leases disconnected: take its workers back."""
        for lease_id in conn.state.get("lease_requests", ()):
            self.sched.cancel_request(lease_id)
            self.pending_replies.pop(lease_id, None)
        for lease in list(self.sched.leases.values()):
            if lease.owner is conn:
                # Its tasks' results have nowhere to go: recycle the worker.
                self._apply(self.sched.lease_returned(lease.lease_id, worker_alive=False))
        for subs in self.log_subscribers.values():
            subs.discard(conn)
        owner_id = conn.state.get("owner_id")
        if owner_id:
            for path in self.store.owned_by(owner_id):
                self._free(path)
        self._report_resources()

    def _apply(self, actions: list) -> None:
        for a in actions:
            if isinstance(a, scheduler.Grant):
                self._grant(a.lease)
            elif isinstance(a, scheduler.StartWorker):
                self._start_worker(a.env)
            elif isinstance(a, scheduler.KillWorker):
                wp = self.procs.get(a.worker_id)
                if wp is not None:
                    _signal(wp.proc, signal.SIGKILL)
            elif isinstance(a, scheduler.Infeasible):
                # Warn only if it is still infeasible in a second: resources that are on
                # their way (a bundle being reserved, a node joining) do not deserve one.
                asyncio.get_running_loop().call_later(1.0, self._warn_infeasible, a.request)

    def _grant(self, lease: scheduler.Lease) -> None:
        conn, req_id, fut = self.pending_replies.pop(lease.lease_id, (None, 0, None))
        wp = self.procs.get(lease.worker_id)
        gone = (fut.done() if fut is not None else (conn is None or conn.closed))
        if gone or wp is None or wp.address is None:
            self._apply(self.sched.lease_returned(lease.lease_id, worker_alive=wp is not None))
            return
        grant = {"lease_id": lease.lease_id, "worker_id": lease.worker_id,
                 "address": wp.address, "gpu_ids": lease.gpu_ids, "pid": wp.pid,
                 "node_id": self.node_id}
        if fut is not None:
            fut.set_result(grant)
        else:
            conn.state.get("lease_requests", set()).discard(lease.lease_id)
            wp.job_id = lease.job_id or conn.state.get("job_id")
            conn.reply(req_id, grant)
        self._report_resources()

    def set_worker_job(self, worker_id: bytes, job_id: int | None) -> None:
        wp = self.procs.get(worker_id)
        if wp is not None:
            wp.job_id = job_id

    def kill_worker(self, worker_id: bytes) -> None:
        wp = self.procs.get(worker_id)
        if wp is not None:
            _signal(wp.proc, signal.SIGKILL)

    def _warn_infeasible(self, req: scheduler.LeaseRequest) -> None:
        if req not in self.sched.queue or self.res.can_ever_fit(req.needs):
            return
        if any(req.needs.fits_in(n.total) for n in self.view.alive()):
            return
        conn, _req_id, fut = self.pending_replies.get(req.lease_id, (None, 0, None))
        warning = {"lease_id": req.lease_id, "demand": req.needs.to_dict(),
                   "total": self.res.total.to_dict()}
        if conn is not None and not conn.closed:
            conn.send("infeasible", warning)
        elif fut is not None:
            log.warning("an actor cannot be placed on any node: %s", warning)

    # -- placement-group bundles ----------------------------------------------------------
    async def reserve_bundle(self, body: dict) -> dict:
        """Set aside a bundle's resources; they reappear under the bundle's own names."""
        key = (body["pg"], body["index"])
        if key in self.bundles:
            return {"ok": True}
        base = ResourceSet(body["bundle"])
        if not self.sched.fits_after_queue(base) or not self.res.can_fit(base):
            return {"ok": False}
        gpu_ids = self.res.acquire(base)
        named = ResourceSet(placement.bundle_resources(body["pg"].hex(), body["index"],
                                                       body["bundle"]))
        # Shared per-group names may exist already (another bundle of the group here).
        self.res.add_capacity(named)
        self.bundles[key] = (base, named, gpu_ids)
        self._apply(self.sched._schedule())
        self._report_resources()
        return {"ok": True, "total": self.res.total.to_dict(),
                "available": self.res.available.to_dict()}

    async def release_bundle(self, body: dict) -> dict:
        """Give a bundle's resources back; work running in it is stopped."""
        held = self.bundles.pop((body["pg"], body["index"]), None)
        if held is None:
            return {"ok": True}
        base, named, gpu_ids = held
        names = set(named.units())
        for lease in list(self.sched.leases.values()):
            if names & set(lease.demand.units()):
                self.kill_worker(lease.worker_id)
                self._apply(self.sched.lease_returned(lease.lease_id, worker_alive=False))
        for req in list(self.sched.queue):
            if names & set(req.needs.units()):
                self.sched.cancel_request(req.lease_id)
                conn, req_id, fut = self.pending_replies.pop(req.lease_id, (None, 0, None))
                self._answer(conn, req_id, fut, error="its placement group was removed")
        self.res.remove_capacity(named)
        self.res.release(base, gpu_ids)
        self._apply(self.sched._schedule())
        self._report_resources()
        return {"ok": True, "total": self.res.total.to_dict(),
                "available": self.res.available.to_dict()}

    async def _bundle_op(self, conn, kind, body, req_id) -> None:
        op = self.reserve_bundle if kind == "reserve_bundle" else self.release_bundle
        conn.reply(req_id, await op(body))

    def _report_resources(self) -> None:
        """Tell the head our free resources soon (coalescing bursts of lease changes)."""
        if not self._report_scheduled:
            self._report_scheduled = True
            asyncio.get_running_loop().call_later(0.005, self._send_report)

    def _send_report(self) -> None:
        self._report_scheduled = False
        avail = self.res.available.to_dict()
        self.view.update(self.node_id, self.address, self.res.total.to_dict(), avail, True)
        self.head.update_resources({"node_id": self.node_id, "available": avail,
                                    "total": self.res.total.to_dict(),
                                    "store": self.store.state.stats()})

    # -- objects --------------------------------------------------------------------------
    def seal(self, conn: Connection, body: dict) -> None:
        path, size = body.get("path"), body.get("size")
        if not (isinstance(path, str) and type(size) is int and size >= 0
                and os.path.dirname(path) == os.path.normpath(config.shm_dir)
                and os.path.basename(path).startswith(f"shoal-{self.session_tag}-")):
            log.warning("ignoring a seal of %r: not a segment of this session", path)
            return
        self.store.seal(path, size, body.get("owner") or b"",
                        reserved=body.get("reserved", True))

    def _free(self, path: str) -> None:
        self.store.free(path)
        self.transfer.primary_freed(path)
        self.transfer.forget_local(path)

    async def _pull(self, conn: Connection, body: dict, req_id: int) -> None:
        try:
            local = await self.transfer.pull(body)
        except (LookupError, OSError, ConnectionError, RemoteError) as e:
            conn.reply_error(req_id, f"could not fetch object {body['path']}: {e}", lost=True)
            return
        conn.reply(req_id, {"path": local})

    # -- message handling -----------------------------------------------------------------
    def handle(self, conn: Connection, kind: str, body, bufs, req_id: int) -> bool:
        if kind == "request_lease":
            self.request_lease(body, conn=conn, req_id=req_id)
        elif kind == "return_lease":
            self.return_lease(body)
        elif kind == "register_worker":
            self.register_worker(conn, body)
            conn.reply(req_id, {"ok": True})
        elif kind == "register_owner":
            self.observe.add_owner(conn)
            conn.state["owner_id"] = body["owner_id"]
            conn.state["job_id"] = body.get("job_id")
            if not conn.state.get("owner_watch"):
                conn.state["owner_watch"] = True
                conn.close_callbacks.append(self.owner_gone)
            conn.reply(req_id, {"ok": True})
        elif kind == "worker_blocked":
            self._apply(self.sched.worker_blocked(conn.state.get("worker_id")))
        elif kind == "worker_unblocked":
            self._apply(self.sched.worker_unblocked(conn.state.get("worker_id")))
        elif kind == "seal":
            self.seal(conn, body)
        elif kind == "free":  # by object id, through the store's record (transfer.free)
            self.transfer.free(body)
        elif self.store.handle(conn, kind, body, req_id):
            pass
        elif kind == "stream_object":
            spawn(self.transfer.stream(conn, body, req_id))
        elif kind == "read_chunk":
            self.transfer.read_chunk(conn, body, req_id)
        elif kind == "pull_object":
            spawn(self._pull(conn, body, req_id))
        elif kind == "add_replica":
            self.transfer.add_replica(body)
        elif kind == "cluster_view":
            self.on_cluster_view(body["nodes"])
        elif self.observe.handle(conn, kind, body, req_id):
            pass
        elif kind in ("reserve_bundle", "release_bundle"):
            spawn(self._bundle_op(conn, kind, body, req_id))
        elif kind == "kill_worker":
            self.kill_worker(body["worker_id"])
        elif kind == "set_worker_job":
            self.set_worker_job(body["worker_id"], body.get("job_id"))
        elif kind == "subscribe_logs":
            self.log_subscribers.setdefault(body["job_id"], set()).add(conn)
            conn.reply(req_id, {"ok": True})
        else:
            return False
        return True


def _signal(proc, sig) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass
