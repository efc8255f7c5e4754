"""Task submission by an owner: the worker-lease fast path.

Tasks whose arguments are ready wait in a queue per *scheduling key* (their resource shape).
For each key the owner leases workers from the node daemon and pushes tasks straight to them;
a lease is kept while more tasks of its shape wait, and given back after a short linger when
the queue is empty. A worker that dies mid-task makes its task retry (``max_retries``) or
fail with ``WorkerCrashedError``.

Everything here runs on the runtime's event loop thread but :meth:`Submitter.try_direct`: a
user thread submitting a task with no pending arguments, when a leased worker of its shape
has room and nothing is queued, writes the push itself (no hand-off to the loop, whose
wake-up costs more than the write). ``lock`` guards the state both touch: the keys' queues
and workers, the workers' in-flight counts, ``running``.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field

from ..wire.aio import spawn
from ..wire.transport import ConnectionLost, RemoteError

log = logging.getLogger(__name__)

MAX_PENDING_LEASE_REQUESTS = 10
LEASE_LINGER_S = 0.01


@dataclass
class TaskSpec:
    task_id: bytes
    name: str
    fid: bytes
    fn_bytes: bytes
    args: list  # Value per argument (after dependency resolution), or ObjectRef before
    kw_names: list
    num_returns: int
    return_ids: list
    resources: dict
    max_retries: int
    retry_exceptions: object  # bool or tuple of exception classes
    strategy: object = None  # "DEFAULT", "SPREAD" or {"node_id": .., "soft": ..}
    hold: list = field(default_factory=list)  # ObjectRefs kept alive while the task lives
    cancelled: bool = False
    attempt: int = 0
    worker: object = None  # LeasedWorker running it now
    oom: dict | None = None  # why the memory monitor ended its worker, if it did
    dep_refs: dict = field(default_factory=dict)  # argument index -> ObjectRef (lineage)
    arg_losses: int = 0  # times a worker found an argument lost with its node
    group: list | None = None  # its placement group (scheduling_strategies.placement)
    max_calls: int = 0  # calls of this function a worker runs before it exits (0: no limit)
    env_vars: dict | None = None  # runtime_env env_vars (inherited, merged with the task's)
    runtime_env: dict | None = None  # what needs a worker of its own (working_dir, pip, ...)
    env_key: str = ""  # its name ("": the node's own environment)

    @property
    def key(self) -> tuple:
        s = self.strategy
        skey = s if isinstance(s, str) or s is None else (s.get("node_id"), s.get("soft"))
        return tuple(sorted(self.resources.items())), skey, self.env_key


@dataclass
class LeasedWorker:
    lease_id: int
    worker_id: bytes
    address: str
    gpu_ids: list
    conn: object
    node_conn: object = None  # the node daemon that granted the lease
    node_id: bytes | None = None
    inflight: int = 0
    oom: dict | None = None  # set when the memory monitor ends this worker
    dead: bool = False
    pid: int | None = None
    idle_since: float = 0.0  # loop time when its last task ended (inflight fell to 0)


@dataclass
class KeyState:
    resources: dict
    strategy: object = None
    runtime_env: dict | None = None
    env_key: str = ""
    tasks: deque = field(default_factory=deque)
    workers: list = field(default_factory=list)
    requesting: int = 0
    linger: object = None


class Submitter:
    def __init__(self, rt):
        self.rt = rt
        self.keys: dict[tuple, KeyState] = {}
        self.running: dict[bytes, TaskSpec] = {}  # task id -> spec, pushed and not finished
        self.pipeline = max(1, rt.cfg.worker_lease_pipeline)
        self.lock = threading.RLock()

    # -- queueing -------------------------------------------------------------------------
    def enqueue(self, spec: TaskSpec) -> None:
        with self.lock:
            ks = self.keys.get(spec.key)
            if ks is None:
                ks = self.keys[spec.key] = KeyState(spec.resources, spec.strategy,
                                                    spec.runtime_env, spec.env_key)
            ks.tasks.append(spec)
            self._pump(ks)

    def try_direct(self, spec: TaskSpec) -> bool:
        """From a user thread: push ``spec`` (its arguments ready) to a leased worker of its
        shape now, if one has room and no task of that shape is queued; else say no (the
        caller queues it for the loop)."""
        with self.lock:
            ks = self.keys.get(spec.key)
            if ks is None or ks.tasks:
                return False
            for lw in ks.workers:
                if lw.inflight < self.pipeline and not lw.dead and not lw.conn.closed:
                    break
            else:
                return False
            body, bufs = self._body(lw, spec)
            self._start(lw, spec)
            # Under the lock: a cancel (on the loop) that finds it running is sent after it.
            lw.conn.request_from_thread("push_task", body, bufs,
                                        lambda f: self._on_reply(ks, lw, spec, f))
            return True

    def cancel_queued(self, task_id: bytes) -> TaskSpec | None:
        with self.lock:
            for ks in self.keys.values():
                for spec in ks.tasks:
                    if spec.task_id == task_id:
                        ks.tasks.remove(spec)
                        return spec
            return None

    def running_task(self, task_id: bytes) -> TaskSpec | None:
        with self.lock:
            return self.running.get(task_id)

    def unfinished_ids(self) -> set:
        with self.lock:
            ids = set(self.running)
            for ks in self.keys.values():
                ids.update(spec.task_id for spec in ks.tasks)
            return ids

    def _pump(self, ks: KeyState) -> None:
        for lw in ks.workers:
            while ks.tasks and lw.inflight < self.pipeline and not lw.dead:
                self._push(ks, lw, ks.tasks.popleft())
        want = len(ks.tasks)
        while want > ks.requesting and ks.requesting < MAX_PENDING_LEASE_REQUESTS:
            ks.requesting += 1
            spawn(self._lease(ks))
        if not ks.tasks and ks.linger is None and any(lw.inflight == 0 for lw in ks.workers):
            # One timer per linger period, not one per task: it checks how long each
            # worker has been idle when it fires (direct pushes never touch it).
            ks.linger = self.rt.loop.call_later(LEASE_LINGER_S, self._return_idle, ks)

    def _return_idle(self, ks: KeyState) -> None:
        with self.lock:
            ks.linger = None
            if ks.tasks:
                return
            now = self.rt.loop.time()
            soonest = None
            for lw in [w for w in ks.workers if w.inflight == 0]:
                left = lw.idle_since + LEASE_LINGER_S - now
                if left <= 0:
                    ks.workers.remove(lw)
                    self._return(lw)
                else:
                    soonest = left if soonest is None else min(soonest, left)
            if soonest is not None:
                ks.linger = self.rt.loop.call_later(soonest, self._return_idle, ks)

    def _return(self, lw: LeasedWorker, kill: bool = False, exiting: bool = False) -> None:
        conn = lw.node_conn or self.rt.node_conn
        if conn is not None and not conn.closed:
            body = {"lease_id": lw.lease_id, "kill": kill}
            if exiting:
                body["exiting"] = True  # it ends by itself: let it finish exiting
            conn.send("return_lease", body)

    async def _lease(self, ks: KeyState) -> None:
        """Lease a worker for this key from our node, or from the node it spills back to."""
        node_conn = self.rt.node_conn
        request = {"resources": ks.resources, "job_id": self.rt.job_id}
        if ks.env_key:
            request["env_key"], request["runtime_env"] = ks.env_key, ks.runtime_env
        if ks.strategy is not None and ks.strategy != "DEFAULT":
            request["strategy"] = ks.strategy
        try:
            for _hop in range(16):
                try:
                    body, _ = await node_conn.request("request_lease", request)
                except (ConnectionLost, OSError):
                    if node_conn is self.rt.node_conn:
                        raise
                    # The node we were sent to died: start again from our own node.
                    node_conn, request = self.rt.node_conn, {**request, "spilled": False}
                    continue
                if "spillback" not in body:
                    break
                try:
                    node_conn = await self.rt.peer(body["spillback"])
                    request = {**request, "spilled": True}
                except (ConnectionLost, OSError):
                    node_conn, request = self.rt.node_conn, {**request, "spilled": False}
            else:
                raise ConnectionLost("no node would take the lease")
        except RemoteError as e:
            ks.requesting -= 1
            if e.body.get("runtime_env_setup"):
                from .errors import RuntimeEnvSetupError

                self._fail_key(ks, RuntimeEnvSetupError(e.body.get("error", str(e))))
            elif e.body.get("unschedulable"):
                from .errors import TaskUnschedulableError

                self._fail_key(ks, TaskUnschedulableError(e.body.get("error", str(e))))
            elif not self.rt.shutting_down:
                self._fail_key(ks, e)
            return
        except (ConnectionLost, OSError) as e:
            ks.requesting -= 1
            if not self.rt.shutting_down:
                log.warning("lease request failed: %s", e)
                self._fail_key(ks, e)
            return
        try:
            conn = await self.rt.peer(body["address"])
        except (ConnectionLost, RemoteError, OSError) as e:
            # The granted worker is unreachable (it died just now): give the lease back
            # and ask again for the tasks still queued.
            log.warning("leased worker %s unreachable: %s", body["address"], e)
            node_conn.send("return_lease", {"lease_id": body["lease_id"], "kill": True})
            ks.requesting -= 1
            self._pump(ks)
            return
        except BaseException:
            node_conn.send("return_lease", {"lease_id": body["lease_id"]})
            ks.requesting -= 1
            raise
        ks.requesting -= 1
        lw = LeasedWorker(body["lease_id"], body["worker_id"], body["address"],
                          body.get("gpu_ids") or [], conn, node_conn, body.get("node_id"),
                          pid=body.get("pid"), idle_since=self.rt.loop.time())
        with self.lock:
            if conn.closed:
                self._return(lw, kill=True)
            else:
                ks.workers.append(lw)
            self._pump(ks)

    def _fail_key(self, ks: KeyState, err: Exception) -> None:
        from .errors import RayError, RaySystemError

        if not isinstance(err, RayError):
            err = RaySystemError(f"could not lease a worker: {err}")
        with self.lock:
            failed = list(ks.tasks)
            ks.tasks.clear()
        for spec in failed:
            self.rt.fail_task(spec, err)

    # -- pushing --------------------------------------------------------------------------
    def _push(self, ks: KeyState, lw: LeasedWorker, spec: TaskSpec) -> None:
        body, bufs = self._body(lw, spec)
        sent = lw.conn.state["fids"]
        self._start(lw, spec)
        try:
            lw.conn.request_cb("push_task", body, bufs,
                               lambda f: self._on_reply(ks, lw, spec, f))
        except ConnectionLost:
            lw.inflight -= 1
            self.running.pop(spec.task_id, None)
            sent.discard(spec.fid)
            self._worker_lost(ks, lw)
            ks.tasks.appendleft(spec)
            spec.attempt -= 1
            self._pump(ks)
            return

    def _start(self, lw: LeasedWorker, spec: TaskSpec) -> None:
        spec.worker = lw
        spec.attempt += 1
        self.rt.task_events.running(spec.task_id, spec.attempt, lw.worker_id, lw.node_id,
                                    lw.pid)
        lw.inflight += 1
        self.running[spec.task_id] = spec

    def _body(self, lw: LeasedWorker, spec: TaskSpec) -> tuple[dict, list]:
        bufs: list = []
        sent = lw.conn.state.setdefault("fids", set())
        body = {
            "tid": spec.task_id, "fid": spec.fid, "name": spec.name,
            "args": [v.to_wire(bufs) for v in spec.args], "kw": spec.kw_names,
            "nr": spec.num_returns, "job": self.rt.job_id, "gpu": lw.gpu_ids,
            "res": spec.resources,
            "owner": self.rt.address, "owner_id": self.rt.worker_id,
        }
        if spec.group is not None:
            body["pg"] = spec.group
        if spec.fid not in sent:
            body["fn"] = len(bufs)
            bufs.append(spec.fn_bytes)
            sent.add(spec.fid)
            paths = self.rt.code_paths.by_job.get(self.rt.job_id)
            if paths:  # the job's driver directories, needed to load the function
                body["sp"] = paths
        if spec.env_vars:
            body["env"] = spec.env_vars
        if spec.max_calls:
            body["mc"] = spec.max_calls
        return body, bufs

    def _on_reply(self, ks: KeyState, lw: LeasedWorker, spec: TaskSpec, fut) -> None:
        with self.lock:
            self._on_reply_locked(ks, lw, spec, fut)

    def _on_reply_locked(self, ks: KeyState, lw: LeasedWorker, spec: TaskSpec, fut) -> None:
        lw.inflight -= 1
        if lw.inflight == 0:
            lw.idle_since = self.rt.loop.time()
        self.running.pop(spec.task_id, None)
        spec.worker = None
        exc = fut.exception()
        if exc is None:
            body, bufs = fut.result()
            if body.get("exiting"):
                # The worker reached max_calls and leaves after this reply: not a crash.
                self._worker_lost(ks, lw, exiting=True)
            if body.get("requeue"):  # pushed behind a call after which the worker left
                spec.attempt -= 1
                ks.tasks.appendleft(spec)
            elif self.rt.task_finished(spec, body, bufs):
                ks.tasks.append(spec)  # retry of an application error
        elif isinstance(exc, ConnectionLost):
            self._worker_lost(ks, lw)
            self._retry_or_fail(ks, spec)
        else:
            from .errors import RaySystemError

            self.rt.fail_task(spec, RaySystemError(f"task push failed: {exc}"))
        self._pump(ks)

    def worker_oom(self, info: dict) -> None:
        """The node's memory monitor is about to end this worker: remember why."""
        with self.lock:
            running = list(self.running.values())
        for spec in running:
            lw = spec.worker
            if lw is not None and lw.lease_id == info["lease_id"] and \
                    lw.worker_id == info["worker_id"]:
                spec.oom = info

    def _retry_or_fail(self, ks: KeyState, spec: TaskSpec) -> None:
        from .errors import OutOfMemoryError, TaskCancelledError, WorkerCrashedError

        oom = spec.oom
        if oom is not None and not spec.cancelled and not (
                spec.max_retries < 0 or spec.attempt <= spec.max_retries):
            self.rt.fail_task(spec, OutOfMemoryError(
                f"Task {spec.name} was killed because the node {oom['node_id'].hex()[:12]} "
                f"({oom['ip']}) was running low on memory: {oom['used'] / 2**30:.2f} GiB of "
                f"{oom['total'] / 2**30:.2f} GiB in use, above the threshold "
                f"memory_usage_threshold={oom['threshold']} (the task's worker pid "
                f"{oom['pid']} used {oom['rss'] / 2**30:.2f} GiB). It ran "
                f"{spec.attempt} time(s) (max_retries={spec.max_retries})."))
            return
        spec.oom = None
        if spec.cancelled:
            self.rt.fail_task(spec, TaskCancelledError(spec.task_id.hex()))
        elif spec.max_retries < 0 or spec.attempt <= spec.max_retries:
            ks.tasks.append(spec)
        else:
            self.rt.fail_task(spec, WorkerCrashedError(
                f"The worker running task {spec.name} died unexpectedly (it exited or was "
                f"killed) and the task was retried {spec.attempt - 1} time(s) "
                f"(max_retries={spec.max_retries})."
            ))

    def _worker_lost(self, ks: KeyState, lw: LeasedWorker, exiting: bool = False) -> None:
        if lw.dead:
            return
        lw.dead = True
        if lw in ks.workers:
            ks.workers.remove(lw)
        self._return(lw, kill=True, exiting=exiting)

    def peer_lost(self, conn) -> None:
        """A connection closed: leases on that worker are gone."""
        with self.lock:
            for ks in self.keys.values():
                for lw in [w for w in ks.workers if w.conn is conn]:
                    self._worker_lost(ks, lw)

    def shutdown(self) -> None:
        for ks in self.keys.values():
            if ks.linger is not None:
                ks.linger.cancel()
