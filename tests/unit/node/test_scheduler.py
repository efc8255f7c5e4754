"""Unit tests for shoal._private.node.scheduler: the node's lease state machine (no processes)."""

from __future__ import annotations

import itertools

from shoal._private.node.scheduler import (
    DEAD,
    IDLE,
    LEASED,
    Grant,
    Infeasible,
    KillWorker,
    LeaseRequest,
    LocalScheduler,
    StartWorker,
)
from shoal._private.wire.resources import NodeResources, ResourceSet


def rs(**amounts) -> ResourceSet:
    return ResourceSet(amounts)


class Node:
    """Feeds a LocalScheduler and carries out StartWorker the way the daemon does."""

    def __init__(self, total, *, max_workers=8, idle_keep=8, workers=0):
        self.sched = LocalScheduler(NodeResources(total), max_workers=max_workers,
                                    idle_keep=idle_keep)
        self._wids = (b"w%03d" % i for i in itertools.count())
        self._lids = itertools.count(1)
        self.started: list[bytes] = []  # spawned, not yet registered
        for _ in range(workers):
            self.register(self.spawn())

    def spawn(self) -> bytes:
        wid = next(self._wids)
        self.sched.worker_starting(wid)
        self.started.append(wid)
        return wid

    def apply(self, actions) -> list:
        """Spawn a worker for every StartWorker (as the daemon does) and return the actions."""
        for a in actions:
            if isinstance(a, StartWorker):
                self.spawn()
        return actions

    def register(self, wid) -> list:
        if wid in self.started:
            self.started.remove(wid)
        return self.apply(self.sched.worker_registered(wid))

    def register_started(self) -> list:
        actions = []
        for wid in list(self.started):
            actions += self.register(wid)
        return actions

    def request(self, *, dedicated=False, owner=None, **demand):
        req = LeaseRequest(next(self._lids), rs(**demand), owner=owner, dedicated=dedicated)
        return req, self.apply(self.sched.request_lease(req))

    def available(self) -> ResourceSet:
        return self.sched.resources.available


def grants(actions) -> list:
    return [a.lease for a in actions if isinstance(a, Grant)]


def starts(actions) -> int:
    return sum(isinstance(a, StartWorker) for a in actions)


def kills(actions) -> list[bytes]:
    return [a.worker_id for a in actions if isinstance(a, KillWorker)]


# --------------------------------------------------------------------------- granting


def test_grants_immediately_with_resources_and_an_idle_worker():
    node = Node({"CPU": 2}, workers=1)
    req, actions = node.request(CPU=1, owner="conn-1")
    [lease] = grants(actions)
    assert starts(actions) == 0
    assert lease.lease_id == req.lease_id
    assert lease.worker_id == b"w000"
    assert lease.owner == "conn-1"
    assert lease.demand == rs(CPU=1)
    assert node.available() == rs(CPU=1)
    w = node.sched.workers[b"w000"]
    assert (w.state, w.lease_id) == (LEASED, req.lease_id)


def test_starts_a_worker_when_none_is_idle_and_grants_once_it_registers():
    node = Node({"CPU": 2})
    req, actions = node.request(CPU=1)
    assert grants(actions) == []
    assert starts(actions) == 1
    assert node.available() == rs(CPU=2)  # nothing is taken before a worker exists

    # Another event before the worker registers must not start a second one for the same need.
    _, unrelated = node.request(GPU=1)  # infeasible here
    assert starts(unrelated) == 0
    assert node.sched.starting == 1

    [lease] = grants(node.register_started())
    assert lease.lease_id == req.lease_id
    assert node.available() == rs(CPU=1)


def test_does_not_start_more_workers_than_requests_waiting():
    node = Node({"CPU": 4})
    _, a1 = node.request(CPU=1)
    _, a2 = node.request(CPU=1)
    # The first request's worker is already starting: only one more is needed.
    assert starts(a1) == 1
    assert starts(a2) == 1
    assert node.sched.starting == 2
    got = grants(node.register_started())
    assert len(got) == 2
    assert len({lease.worker_id for lease in got}) == 2


def test_worker_starts_are_capped_by_max_workers():
    node = Node({"CPU": 8}, max_workers=2)
    total_starts = 0
    for _ in range(5):
        _, actions = node.request(CPU=1)
        total_starts += starts(actions)
    assert total_starts == 2
    assert len(grants(node.register_started())) == 2
    assert len(node.sched.queue) == 3


def test_request_waits_for_resources_not_for_a_worker():
    node = Node({"CPU": 1}, workers=2)
    _, a1 = node.request(CPU=1)
    req2, a2 = node.request(CPU=1)
    assert len(grants(a1)) == 1
    assert grants(a2) == []
    assert starts(a2) == 0  # an idle worker exists; the lack is CPU
    assert [r.lease_id for r in node.sched.queue] == [req2.lease_id]


def test_infeasible_request_is_reported_and_kept_queued():
    node = Node({"CPU": 2}, workers=1)
    req, actions = node.request(CPU=3)
    assert [type(a) for a in actions] == [Infeasible]
    assert actions[0].request is req
    assert req.warned_infeasible
    assert node.available() == rs(CPU=2)
    # Unknown resources are infeasible too.
    req2, actions2 = node.request(CPU=1, TPU=1)
    assert [a.request for a in actions2 if isinstance(a, Infeasible)] == [req2]
    # A feasible request behind them is still granted.
    _, actions3 = node.request(CPU=1)
    assert len(grants(actions3)) == 1
    assert {r.lease_id for r in node.sched.queue} == {req.lease_id, req2.lease_id}


def test_cancelled_request_is_never_granted():
    node = Node({"CPU": 1}, workers=1)
    _, a1 = node.request(CPU=1)
    [first] = grants(a1)
    req2, _ = node.request(CPU=1)
    req3, _ = node.request(CPU=1)
    node.sched.cancel_request(req2.lease_id)
    [lease] = grants(node.sched.lease_returned(first.lease_id))
    assert lease.lease_id == req3.lease_id


def test_queued_requests_are_granted_in_arrival_order():
    node = Node({"CPU": 1}, workers=1)
    _, a = node.request(CPU=1)
    [first] = grants(a)
    queued = [node.request(CPU=1)[0] for _ in range(3)]
    order = []
    lease_id = first.lease_id
    for _ in queued:
        [lease] = grants(node.sched.lease_returned(lease_id))
        order.append(lease.lease_id)
        lease_id = lease.lease_id
    assert order == [r.lease_id for r in queued]


def test_small_request_is_not_blocked_by_a_big_one_ahead_of_it():
    node = Node({"CPU": 2}, workers=2)
    _, a = node.request(CPU=1)
    assert len(grants(a)) == 1
    big, a_big = node.request(CPU=2)
    assert grants(a_big) == []
    small, a_small = node.request(CPU=1)
    [lease] = grants(a_small)
    assert lease.lease_id == small.lease_id
    assert [r.lease_id for r in node.sched.queue] == [big.lease_id]


# --------------------------------------------------------------------------- returning


def test_lease_returned_frees_resources_and_regrants_queued_request():
    node = Node({"CPU": 1}, workers=1)
    _, a1 = node.request(CPU=1)
    [first] = grants(a1)
    req2, a2 = node.request(CPU=1)
    assert grants(a2) == []

    actions = node.sched.lease_returned(first.lease_id)
    [second] = grants(actions)
    assert second.lease_id == req2.lease_id
    assert second.worker_id == first.worker_id  # the returned worker is reused
    assert kills(actions) == []
    assert node.available() == ResourceSet()

    assert grants(node.sched.lease_returned(second.lease_id)) == []
    assert node.available() == rs(CPU=1)
    assert node.sched.workers[first.worker_id].state == IDLE


def test_returning_an_unknown_or_already_returned_lease_is_a_no_op():
    node = Node({"CPU": 1}, workers=1)
    _, a = node.request(CPU=1)
    [lease] = grants(a)
    node.sched.lease_returned(lease.lease_id)
    assert node.sched.lease_returned(lease.lease_id) == []
    assert node.sched.lease_returned(12345) == []
    assert node.available() == rs(CPU=1)  # not released twice


def test_lease_returned_with_dead_worker_kills_it_and_keeps_resources_consistent():
    node = Node({"CPU": 1}, workers=1)
    _, a = node.request(CPU=1)
    [lease] = grants(a)
    actions = node.sched.lease_returned(lease.lease_id, worker_alive=False)
    assert kills(actions) == [lease.worker_id]
    assert lease.worker_id not in node.sched.workers
    assert node.available() == rs(CPU=1)


def test_dedicated_worker_is_killed_when_its_lease_returns():
    node = Node({"CPU": 2}, workers=1)
    _, a = node.request(CPU=1, dedicated=True)
    [lease] = grants(a)
    assert node.sched.workers[lease.worker_id].dedicated
    w = node.sched.workers[lease.worker_id]
    actions = node.sched.lease_returned(lease.lease_id)
    assert kills(actions) == [lease.worker_id]
    assert w.state == DEAD
    assert lease.worker_id not in node.sched.workers
    assert node.available() == rs(CPU=2)


def test_dedicated_worker_is_not_reused_for_a_queued_request():
    node = Node({"CPU": 1}, workers=1)
    _, a = node.request(CPU=1, dedicated=True)
    [actor_lease] = grants(a)
    req2, _ = node.request(CPU=1)
    actions = node.apply(node.sched.lease_returned(actor_lease.lease_id))
    assert kills(actions) == [actor_lease.worker_id]
    assert grants(actions) == []
    assert starts(actions) == 1  # a fresh process is needed
    [lease] = grants(node.register_started())
    assert lease.lease_id == req2.lease_id
    assert lease.worker_id != actor_lease.worker_id
    assert not node.sched.workers[lease.worker_id].dedicated


# --------------------------------------------------------------------------- worker death


def test_worker_died_releases_its_lease_and_returns_it():
    node = Node({"CPU": 1, "GPU": 1}, workers=1)
    _, a = node.request(CPU=1, GPU=1)
    [lease] = grants(a)
    req2, _ = node.request(CPU=1, GPU=1)

    actions, lost = node.sched.worker_died(lease.worker_id)
    node.apply(actions)
    assert lost is lease
    assert lease.worker_id not in node.sched.workers
    assert node.available() == rs(CPU=1, GPU=1)
    assert starts(actions) == 1  # the queued request needs a new process
    [regrant] = grants(node.register_started())
    assert regrant.lease_id == req2.lease_id
    assert regrant.gpu_ids == lease.gpu_ids == [0]
    # The dead worker's lease can no longer be returned (and released twice).
    assert node.sched.lease_returned(lease.lease_id) == []
    assert node.available() == ResourceSet()


def test_idle_and_unknown_worker_death():
    node = Node({"CPU": 1}, workers=1)
    actions, lost = node.sched.worker_died(b"w000")
    assert (actions, lost) == ([], None)
    assert node.sched.workers == {}
    assert node.sched.worker_died(b"never-seen") == ([], None)
    assert node.available() == rs(CPU=1)


def test_starting_worker_death_lets_the_scheduler_start_another():
    node = Node({"CPU": 1})
    _, a = node.request(CPU=1)
    assert starts(a) == 1
    [wid] = node.started
    node.started.clear()
    actions, lost = node.sched.worker_died(wid)
    assert lost is None
    assert node.sched.starting == 0
    assert starts(actions) == 1


# --------------------------------------------------------------------------- blocking


def test_blocked_worker_lends_its_cpu_and_takes_it_back_on_unblock():
    node = Node({"CPU": 1}, workers=2)
    _, a = node.request(CPU=1)
    [outer] = grants(a)
    inner_req, a2 = node.request(CPU=1)
    assert grants(a2) == []

    [inner] = grants(node.sched.worker_blocked(outer.worker_id))
    assert inner.lease_id == inner_req.lease_id
    assert inner.worker_id != outer.worker_id
    assert node.available() == ResourceSet()

    # Blocking twice lends nothing more.
    assert node.sched.worker_blocked(outer.worker_id) == []
    assert node.available() == ResourceSet()

    assert node.sched.worker_unblocked(outer.worker_id) == []
    assert node.available().get("CPU") == -1  # oversubscribed until the inner lease returns
    assert node.sched.worker_unblocked(outer.worker_id) == []  # idempotent
    assert node.available().get("CPU") == -1

    node.sched.lease_returned(inner.lease_id)
    assert node.available() == ResourceSet()
    node.sched.lease_returned(outer.lease_id)
    assert node.available() == rs(CPU=1)


def test_blocked_worker_lends_only_cpu_not_gpu():
    node = Node({"CPU": 2, "GPU": 1}, workers=2)
    _, a = node.request(CPU=1, GPU=1)
    [outer] = grants(a)
    node.sched.worker_blocked(outer.worker_id)
    assert node.available() == rs(CPU=2)
    _, a2 = node.request(CPU=1, GPU=1)
    assert grants(a2) == []


def test_lease_returned_while_blocked_does_not_release_cpu_twice():
    node = Node({"CPU": 1}, workers=2)
    _, a = node.request(CPU=1)
    [outer] = grants(a)
    node.sched.worker_blocked(outer.worker_id)
    assert node.available() == rs(CPU=1)
    node.sched.lease_returned(outer.lease_id)
    assert node.available() == rs(CPU=1)
    # A late unblock for the finished lease takes nothing.
    node.sched.worker_unblocked(outer.worker_id)
    assert node.available() == rs(CPU=1)


def test_worker_died_while_blocked_does_not_release_cpu_twice():
    node = Node({"CPU": 2, "GPU": 1}, workers=1)
    _, a = node.request(CPU=2, GPU=1)
    [lease] = grants(a)
    node.sched.worker_blocked(lease.worker_id)
    assert node.available() == rs(CPU=2)
    node.sched.worker_died(lease.worker_id)
    assert node.available() == rs(CPU=2, GPU=1)


def test_block_events_for_idle_or_unknown_workers_are_ignored():
    node = Node({"CPU": 1}, workers=1)
    assert node.sched.worker_blocked(b"w000") == []  # idle: holds nothing to lend
    assert node.sched.worker_blocked(b"nope") == []
    assert node.sched.worker_unblocked(b"w000") == []
    assert node.sched.worker_unblocked(b"nope") == []
    assert node.available() == rs(CPU=1)


# --------------------------------------------------------------------------- idle trimming


def test_idle_workers_beyond_idle_keep_are_killed_when_leases_return():
    node = Node({"CPU": 4}, workers=4, idle_keep=1)
    leases = []
    for _ in range(4):
        _, a = node.request(CPU=1)
        leases += grants(a)
    assert len(leases) == 4
    killed = []
    for lease in leases:
        killed += kills(node.sched.lease_returned(lease.lease_id))
    assert len(killed) == 3
    assert len(set(killed)) == 3
    remaining = list(node.sched.workers.values())
    assert len(remaining) == 1
    assert remaining[0].state == IDLE
    assert remaining[0].worker_id not in killed


def test_idle_workers_are_not_trimmed_while_requests_wait():
    node = Node({"CPU": 2}, workers=3, idle_keep=0)
    _, a1 = node.request(CPU=1)
    _, a2 = node.request(CPU=1)
    [first] = grants(a1)
    assert len(grants(a2)) == 1
    waiting, _ = node.request(CPU=2)
    actions = node.sched.lease_returned(first.lease_id)
    assert grants(actions) == []
    assert kills(actions) == []  # the waiting request will want these workers
    assert [r.lease_id for r in node.sched.queue] == [waiting.lease_id]
    assert len(node.sched.workers) == 3


# --------------------------------------------------------------------------- GPUs


def test_gpu_ids_are_distinct_across_concurrent_leases_and_reused_after_return():
    node = Node({"CPU": 4, "GPU": 3}, workers=4)
    got = []
    for n in (1, 2):
        _, a = node.request(CPU=1, GPU=n)
        got += grants(a)
    ids = [i for lease in got for i in lease.gpu_ids]
    assert sorted(ids) == [0, 1, 2]
    assert [len(lease.gpu_ids) for lease in got] == [1, 2]

    waiting, a = node.request(CPU=1, GPU=1)
    assert grants(a) == []
    [regrant] = grants(node.sched.lease_returned(got[0].lease_id))
    assert regrant.lease_id == waiting.lease_id
    assert regrant.gpu_ids == got[0].gpu_ids
    assert not set(regrant.gpu_ids) & set(got[1].gpu_ids)


def test_whole_gpu_lease_after_fractional_gpu_lease_gets_a_device():
    node = Node({"CPU": 2, "GPU": 1}, workers=2)
    _, a = node.request(CPU=1, GPU=0.5)
    [frac] = grants(a)
    assert frac.gpu_ids == [0]
    node.sched.lease_returned(frac.lease_id)
    _, a = node.request(CPU=1, GPU=1)
    [whole] = grants(a)
    assert whole.gpu_ids == [0]


def test_pool_grows_only_to_what_fits_at_once():
    # Ten queued 1-CPU requests on a 2-CPU node with 2 workers still starting: nothing more
    # may be started, since only two of the requests can ever run together.
    node = Node({"CPU": 2}, max_workers=8)
    node.spawn()
    node.spawn()
    actions = []
    for _ in range(10):
        actions += node.apply(node.sched.request_lease(
            LeaseRequest(next(node._lids), rs(CPU=1))))
    assert not [a for a in actions if isinstance(a, StartWorker)]
    grants = [a for a in node.register_started() if isinstance(a, Grant)]
    assert len(grants) == 2 and len(node.sched.workers) == 2


def test_fits_after_queue_counts_requests_not_yet_granted():
    node = Node({"CPU": 2}, max_workers=8)
    node.spawn()
    node.spawn()  # both still starting: requests queue without taking resources
    for _ in range(2):
        node.apply(node.sched.request_lease(LeaseRequest(next(node._lids), rs(CPU=1))))
    assert node.sched.resources.can_fit(rs(CPU=1))  # nothing granted yet...
    assert not node.sched.fits_after_queue(rs(CPU=1))  # ...but both CPUs are spoken for


# --------------------------------------------------------------------------- nested gets


def test_blocked_workers_do_not_count_against_the_worker_cap():
    # A recursion that gets its child at every level needs a worker per level, however
    # deep it goes: each blocked level lends its CPU and its place under the cap.
    node = Node({"CPU": 1}, max_workers=2)
    _, a = node.request(CPU=1, owner="driver")
    [lease] = grants(node.register_started())
    for depth in range(1, 6):
        _, a = node.request(CPU=1, owner=f"level-{depth}")
        assert grants(a) == []
        a = node.apply(node.sched.worker_blocked(lease.worker_id))
        assert starts(a) == 1, f"no worker started for level {depth}"
        [lease] = grants(node.register_started())
    live = [w for w in node.sched.workers.values() if w.state == LEASED]
    assert len(live) == 6 and sum(w.blocked for w in live) == 5


def test_unblocked_workers_still_cap_the_pool():
    node = Node({"CPU": 4}, max_workers=2)
    for _ in range(4):
        node.request(CPU=1)
    assert node.sched.starting == 2


def test_the_owner_holding_fewest_leases_goes_first():
    # f holds the node's only CPU and blocks waiting for g; its owner has more f's queued
    # ahead of g. The lent CPU goes to g (whose owner holds nothing), not to another f that
    # would block too.
    node = Node({"CPU": 1}, workers=3)
    _, a = node.request(CPU=1, owner="driver")
    [f1] = grants(a)
    f2, _ = node.request(CPU=1, owner="driver")
    g1, _ = node.request(CPU=1, owner="worker-of-f1")
    [lease] = grants(node.sched.worker_blocked(f1.worker_id))
    assert lease.lease_id == g1.lease_id
    # Within one owner, arrival order still holds: g's CPU goes to the next f.
    [lease] = grants(node.sched.lease_returned(lease.lease_id))
    assert lease.lease_id == f2.lease_id
    assert node.sched.held == {"driver": 2}


def test_gpu_and_cpu_work_never_share_a_worker():
    node = Node({"CPU": 2, "GPU": 1}, workers=1)
    _, a = node.request(GPU=1, owner="o")
    [gpu_lease] = grants(a)
    node.sched.lease_returned(gpu_lease.lease_id)
    # The worker that ran GPU work is idle, but a CPU task gets a new process.
    cpu_req, a = node.request(CPU=1, owner="o")
    assert grants(a) == [] and starts(a) == 1
    [cpu_lease] = grants(node.register_started())
    assert cpu_lease.lease_id == cpu_req.lease_id
    assert cpu_lease.worker_id != gpu_lease.worker_id
    # ...and GPU work goes back to the worker that had it.
    _, a = node.request(GPU=1, owner="o")
    [again] = grants(a)
    assert again.worker_id == gpu_lease.worker_id


def test_an_idle_worker_of_the_wrong_kind_makes_way_at_the_cap():
    node = Node({"CPU": 2, "GPU": 1}, max_workers=1, workers=1)
    _, a = node.request(GPU=1)
    [gpu_lease] = grants(a)
    node.sched.lease_returned(gpu_lease.lease_id)
    _, a = node.request(CPU=1)
    assert kills(a) == [gpu_lease.worker_id] and starts(a) == 1
    assert len(grants(node.register_started())) == 1


# ------------------------------------------------------------------ runtime environments


def test_workers_of_another_runtime_env_are_never_leased_and_each_env_gets_its_own():
    sched = LocalScheduler(NodeResources({"CPU": 4}), max_workers=4, idle_keep=4)
    sched.worker_starting(b"plain")
    sched.worker_registered(b"plain")
    a = LeaseRequest(1, rs(CPU=1), owner="o", env="env-a")
    actions = sched.request_lease(a)
    assert grants(actions) == []
    assert [x.env for x in actions if isinstance(x, StartWorker)] == ["env-a"]
    sched.worker_starting(b"wa", env="env-a")
    # A second request of env-a waits for that worker rather than starting another...
    b = LeaseRequest(2, rs(CPU=1), owner="o", env="env-a")
    actions = sched.request_lease(b)
    assert [x.env for x in actions if isinstance(x, StartWorker)] == ["env-a"]
    sched.worker_starting(b"wa2", env="env-a")
    # ...and a plain request takes the plain worker.
    [lease] = grants(sched.request_lease(LeaseRequest(3, rs(CPU=1), owner="o")))
    assert lease.worker_id == b"plain"
    [lease] = grants(sched.worker_registered(b"wa"))
    assert (lease.lease_id, lease.worker_id) == (1, b"wa")
    # Returned, the env-a worker is idle for env-a only.
    sched.lease_returned(1)
    actions = sched.request_lease(LeaseRequest(4, rs(CPU=1), owner="o", env="env-b"))
    assert grants(actions) == [] and [x.env for x in actions
                                      if isinstance(x, StartWorker)] == ["env-b"]


def test_at_the_cap_an_idle_worker_of_another_env_makes_way():
    sched = LocalScheduler(NodeResources({"CPU": 2}), max_workers=1, idle_keep=1)
    sched.worker_starting(b"plain")
    sched.worker_registered(b"plain")
    actions = sched.request_lease(LeaseRequest(1, rs(CPU=1), owner="o", env="env-a"))
    assert kills(actions) == [b"plain"]
    assert [x.env for x in actions if isinstance(x, StartWorker)] == ["env-a"]


def test_an_env_that_cannot_be_set_up_takes_its_requests_out_of_the_queue():
    sched = LocalScheduler(NodeResources({"CPU": 2}), max_workers=2, idle_keep=2)
    sched.request_lease(LeaseRequest(1, rs(CPU=1), owner="o", env="bad"))
    sched.request_lease(LeaseRequest(2, rs(CPU=1), owner="o"))
    failed = sched.env_failed("bad")
    assert [r.lease_id for r in failed] == [1]
    assert [r.lease_id for r in sched.queue] == [2]
