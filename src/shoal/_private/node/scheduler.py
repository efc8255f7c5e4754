"""The node's lease scheduler as a pure state machine: events in, actions out.

An owner that wants to run tasks of one resource shape asks the node for a *lease*: a worker
process and the resources to run on it. This module decides who gets which worker and when,
and when the pool needs another process. It does no I/O; the node daemon feeds it events and
carries out the actions it returns, so every rule here is unit-tested without processes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..wire.resources import NodeResources, ResourceSet

STARTING, IDLE, LEASED, DEAD = "starting", "idle", "leased", "dead"


@dataclass
class Worker:
    worker_id: bytes
    state: str = STARTING
    lease_id: int | None = None
    blocked: bool = False
    dedicated: bool = False  # an actor's worker, never returned to the pool
    gpu: bool | None = None  # ran GPU work (True) or CPU-only work (False); None: neither yet
    env: str = ""  # the runtime environment it was started in ("": the node's own)


@dataclass
class LeaseRequest:
    lease_id: int
    demand: ResourceSet  # what the lease holds while it lives
    owner: object = None  # opaque for the daemon (its connection)
    dedicated: bool = False  # an actor's worker: never returns to the pool
    warned_infeasible: bool = False
    place: ResourceSet | None = None  # what must be free to grant it, if more than demand
    job_id: int | None = None
    env: str = ""  # the runtime environment its worker must run in (a key; "": the node's)

    @property
    def needs(self) -> ResourceSet:
        return self.demand if self.place is None else self.place

    @property
    def gpu(self) -> bool:
        return bool(self.demand.get("GPU"))


@dataclass
class Lease:
    lease_id: int
    worker_id: bytes
    demand: ResourceSet
    gpu_ids: list[int]
    owner: object = None
    job_id: int | None = None
    dedicated: bool = False


# Actions -------------------------------------------------------------------------------
@dataclass
class Grant:
    lease: Lease


@dataclass
class StartWorker:
    env: str = ""  # the runtime environment to start it in


@dataclass
class Infeasible:
    request: LeaseRequest


@dataclass
class KillWorker:
    worker_id: bytes


@dataclass
class LocalScheduler:
    resources: NodeResources
    max_workers: int
    idle_keep: int
    workers: dict[bytes, Worker] = field(default_factory=dict)
    queue: deque = field(default_factory=deque)
    leases: dict[int, Lease] = field(default_factory=dict)
    starting: int = 0
    # Leases held per owner: when several owners wait, the one holding fewest goes first.
    held: dict = field(default_factory=dict)

    # -- events ---------------------------------------------------------------------------
    def request_lease(self, req: LeaseRequest) -> list:
        if not (self.resources.can_ever_fit(req.needs) and self.resources.can_ever_fit(req.demand)):
            req.warned_infeasible = True
            self.queue.append(req)
            return [Infeasible(req)]
        self.queue.append(req)
        return self._schedule()

    def cancel_request(self, lease_id: int) -> list:
        self.queue = deque(r for r in self.queue if r.lease_id != lease_id)
        return []

    def worker_starting(self, worker_id: bytes, env: str = "") -> None:
        self.workers[worker_id] = Worker(worker_id, env=env)
        self.starting += 1

    def env_failed(self, env: str) -> list[LeaseRequest]:
        """The runtime environment ``env`` cannot be set up: its queued requests, taken out
        of the queue (each is answered with the error)."""
        failed = [r for r in self.queue if r.env == env]
        self.queue = deque(r for r in self.queue if r.env != env)
        return failed

    def worker_registered(self, worker_id: bytes) -> list:
        w = self.workers.get(worker_id)
        if w is None:
            w = self.workers[worker_id] = Worker(worker_id)
        elif w.state == STARTING:
            self.starting -= 1
        w.state = IDLE
        return self._schedule()

    def lease_returned(self, lease_id: int, *, worker_alive: bool = True) -> list:
        lease = self.leases.pop(lease_id, None)
        if lease is None:
            return []
        w = self.workers.get(lease.worker_id)
        self._release(lease, w)
        actions: list = []
        if w is not None:
            w.lease_id = None
            if not worker_alive or w.dedicated:
                w.state = DEAD
                del self.workers[w.worker_id]
                actions.append(KillWorker(w.worker_id))
            else:
                w.state = IDLE
        return actions + self._schedule() + self._trim_idle()

    def worker_died(self, worker_id: bytes) -> tuple[list, Lease | None]:
        """A worker process exited. Returns actions and the lease it held, if any."""
        w = self.workers.pop(worker_id, None)
        lease = None
        if w is None:
            return [], None
        if w.state == STARTING:
            self.starting -= 1
        if w.lease_id is not None:
            lease = self.leases.pop(w.lease_id, None)
            if lease is not None:
                self._release(lease, w)
        return self._schedule(), lease

    def worker_blocked(self, worker_id: bytes) -> list:
        """A leased worker waits in ``get``: lend its CPUs to others until it resumes."""
        w = self.workers.get(worker_id)
        if w is None or w.blocked or w.lease_id is None:
            return []
        w.blocked = True
        cpu = self._cpu_of(self.leases[w.lease_id])
        self.resources.force_release(cpu)
        return self._schedule()

    def worker_unblocked(self, worker_id: bytes) -> list:
        w = self.workers.get(worker_id)
        if w is None or not w.blocked:
            return []
        w.blocked = False
        if w.lease_id is not None and w.lease_id in self.leases:
            self.resources.force_acquire(self._cpu_of(self.leases[w.lease_id]))
        return []

    def fits_after_queue(self, demand: ResourceSet) -> bool:
        """Would ``demand`` fit now, after the requests already queued here take theirs?"""
        free = self.resources.available
        for req in self.queue:
            if req.needs.fits_in(free):
                free = free - req.needs
        return demand.fits_in(free)

    # -- rules ----------------------------------------------------------------------------
    @staticmethod
    def _cpu_of(lease: Lease) -> ResourceSet:
        """The CPUs a blocked lease lends: plain ones, or its placement-group bundle's."""
        return ResourceSet({k: v for k, v in lease.demand.to_dict().items()
                            if k == "CPU" or k.startswith("CPU_group_")})

    def _release(self, lease: Lease, w: Worker | None) -> None:
        n = self.held.get(lease.owner, 0) - 1
        if n > 0:
            self.held[lease.owner] = n
        else:
            self.held.pop(lease.owner, None)
        if w is not None and w.blocked:
            # Its CPUs were already lent out while it was blocked.
            w.blocked = False
            self.resources.release(lease.demand - self._cpu_of(lease), lease.gpu_ids)
        else:
            self.resources.release(lease.demand, lease.gpu_ids)

    def _idle(self) -> list[Worker]:
        return [w for w in self.workers.values() if w.state == IDLE]

    def _fits(self, req: LeaseRequest) -> bool:
        return self.resources.can_fit(req.needs) and self.resources.can_fit(req.demand)

    @staticmethod
    def _worker_for(req: LeaseRequest, idle: list[Worker]) -> Worker | None:
        """An idle worker that may run ``req``: one started in its runtime environment;
        GPU and CPU-only work never share a process (a CUDA context would stay behind), as
        in Ray; one that ran the same kind first."""
        fresh = None
        for w in idle:
            if w.env != req.env:
                continue
            if w.gpu is None:
                fresh = fresh or w
            elif w.gpu == req.gpu:
                return w
        return fresh

    def _schedule(self) -> list:
        """Grant what fits to idle workers, then start the workers still needed.

        Among requests that fit, the owner holding the fewest leases here goes first (FIFO
        within an owner): a task blocked in ``get`` lends its CPU to the subtasks it waits
        for, not to more siblings of its own that would block in turn.
        """
        actions: list = []
        idle = self._idle()
        order = {id(r): i for i, r in enumerate(self.queue)}
        pending = list(self.queue)
        granted: set[int] = set()
        while idle and pending:
            best = None
            for req in pending:
                if not self._fits(req) or self._worker_for(req, idle) is None:
                    continue
                rank = (self.held.get(req.owner, 0), order[id(req)])
                if best is None or rank < best[0]:
                    best = (rank, req)
            if best is None:
                break
            req = best[1]
            pending.remove(req)
            granted.add(id(req))
            w = self._worker_for(req, idle)
            idle.remove(w)
            gpu_ids = self.resources.acquire(req.demand)
            lease = Lease(req.lease_id, w.worker_id, req.demand, gpu_ids, req.owner,
                          req.job_id, req.dedicated)
            w.state, w.lease_id, w.dedicated = LEASED, req.lease_id, req.dedicated
            w.gpu = req.gpu
            self.leases[req.lease_id] = lease
            self.held[req.owner] = self.held.get(req.owner, 0) + 1
            actions.append(Grant(lease))
        self.queue = deque(r for r in self.queue if id(r) not in granted)
        # Requests that fit but lack a worker are counted only as far as they fit together,
        # so that the pool grows to what can run at once and no further.
        virtual = self.resources.available
        waiting: dict[str, list[int]] = {}  # env -> [task requests, dedicated requests]
        for req in self.queue:
            if self._fits(req) and req.needs.fits_in(virtual):
                virtual = virtual - req.demand
                waiting.setdefault(req.env, [0, 0])[1 if req.dedicated else 0] += 1
        # Start processes for requests that fit but lack a worker, in their runtime
        # environment. Task workers are bounded by the cap, which workers blocked in ``get``
        # do not count against (their subtasks need workers to finish); actors' dedicated
        # workers are bounded by resources alone, as in Ray. An idle worker of the wrong
        # kind (GPU/CPU, another environment) makes way at the cap.
        starting: dict[str, int] = {}
        for w in self.workers.values():
            if w.state == STARTING:
                starting[w.env] = starting.get(w.env, 0) + 1
        live = sum(1 for w in self.workers.values() if not w.dedicated and not w.blocked)
        spare = [w for w in idle if w.state == IDLE]
        for env, (tasks, dedicated_waiting) in waiting.items():
            need = tasks + dedicated_waiting - starting.get(env, 0)
            spare.sort(key=lambda w, e=env: w.env == e)  # other environments' go first
            while need > 0:
                if live >= self.max_workers and dedicated_waiting == 0:
                    if not spare:
                        break
                    w = spare.pop(0)
                    del self.workers[w.worker_id]
                    actions.append(KillWorker(w.worker_id))
                    live -= 1
                actions.append(StartWorker(env))
                need -= 1
                if dedicated_waiting > 0:
                    dedicated_waiting -= 1
                else:
                    live += 1
        return actions

    def _trim_idle(self) -> list:
        idle = self._idle()
        extra = len(idle) - self.idle_keep
        if extra <= 0 or self.queue:
            return []
        actions = []
        for w in idle[:extra]:
            del self.workers[w.worker_id]
            actions.append(KillWorker(w.worker_id))
        return actions
