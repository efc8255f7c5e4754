"""shoal.util.ActorPool: ordered and unordered maps, submit/get_next, timeouts, membership."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

import shoal as ray
from shoal import exceptions as ex
from shoal.util import ActorPool


@pytest.fixture(scope="module", autouse=True)
def cluster(shoal_cluster):
    return shoal_cluster


@ray.remote
class Worker:
    def double(self, v):
        return 2 * v

    def slow_double(self, v, delay):
        time.sleep(delay)  # simulates work of uneven length, waits for nothing
        return 2 * v

    def gated(self, signal, v):
        ray.get(signal.wait.remote())
        return v

    def fail(self, v):
        raise ValueError(f"bad {v}")

    def die(self, v):
        os._exit(1)

    def pid(self, v):
        return os.getpid()


@ray.remote
class Signal:
    def __init__(self):
        self.event = asyncio.Event()

    async def wait(self):
        await self.event.wait()

    async def send(self):
        self.event.set()


@pytest.fixture(scope="module")
def actors():
    return [Worker.remote(), Worker.remote()]


def double(a, v):
    return a.double.remote(v)


def test_map_returns_results_in_order(actors):
    pool = ActorPool(actors)
    # Early values take longest, so they finish last.
    delays = {0: 0.3, 1: 0.2, 2: 0.1}
    out = list(pool.map(lambda a, v: a.slow_double.remote(v, delays.get(v, 0)), range(8)))
    assert out == [2 * v for v in range(8)]
    assert not pool.has_next()
    assert pool.has_free()


def test_map_runs_on_every_actor(actors):
    pool = ActorPool(actors)
    pids = set(pool.map(lambda a, v: a.pid.remote(v), range(6)))
    assert len(pids) == 2


def test_map_unordered_returns_every_result(actors):
    pool = ActorPool(actors)
    delays = {0: 0.3, 1: 0.2}
    out = list(pool.map_unordered(
        lambda a, v: a.slow_double.remote(v, delays.get(v, 0)), range(10)))
    assert sorted(out) == [2 * v for v in range(10)]
    assert not pool.has_next()


def test_map_unordered_yields_fast_results_first(actors):
    pool = ActorPool(actors)
    # One actor takes the slow value, the other all the fast ones.
    out = list(pool.map_unordered(
        lambda a, v: a.slow_double.remote(v, 1.0 if v == 0 else 0), range(4)))
    assert sorted(out) == [0, 2, 4, 6]
    assert out[-1] == 0


def test_map_of_nothing_and_empty_pool_get(actors):
    pool = ActorPool(actors)
    assert list(pool.map(double, [])) == []
    assert list(pool.map_unordered(double, [])) == []
    with pytest.raises(StopIteration, match="No more results to get"):
        pool.get_next()
    with pytest.raises(StopIteration, match="No more results to get"):
        pool.get_next_unordered()


def test_submit_and_get_next_keep_submission_order(actors):
    pool = ActorPool(actors)
    assert not pool.has_next()
    for v, delay in [(1, 0.3), (2, 0), (3, 0), (4, 0)]:
        pool.submit(lambda a, x: a.slow_double.remote(x[0], x[1]), (v, delay))
    assert pool.has_next()
    assert not pool.has_free()  # two running, two waiting for an actor
    results = []
    while pool.has_next():
        results.append(pool.get_next())
    assert results == [2, 4, 6, 8]
    assert not pool.has_next()
    assert pool.has_free()


def test_get_next_unordered_then_get_next_is_refused(actors):
    pool = ActorPool(actors)
    pool.submit(double, 1)
    pool.submit(double, 2)
    got = {pool.get_next_unordered(), pool.get_next_unordered()}
    assert got == {2, 4}
    pool.submit(lambda a, v: a.slow_double.remote(v, 0.3), 10)
    pool.submit(double, 20)
    assert pool.get_next_unordered() == 40
    with pytest.raises(ValueError, match="get_next_unordered"):
        pool.get_next()
    assert pool.get_next_unordered() == 20


def test_get_next_timeout_keeps_the_task(actors):
    signal = Signal.remote()
    pool = ActorPool(actors)
    pool.submit(lambda a, v: a.gated.remote(signal, v), "late")
    with pytest.raises(TimeoutError, match="Timed out waiting for result"):
        pool.get_next(timeout=0.1)
    with pytest.raises(TimeoutError):
        pool.get_next_unordered(timeout=0.1)
    assert pool.has_next()
    signal.send.remote()
    assert pool.get_next(timeout=10) == "late"
    assert not pool.has_next()


def test_get_next_timeout_ignored_drops_the_task(actors):
    signal = Signal.remote()
    pool = ActorPool(actors[:1])
    pool.submit(lambda a, v: a.gated.remote(signal, v), "dropped")
    pool.submit(double, 5)  # waits for the only actor
    assert not pool.has_free()
    with pytest.raises(TimeoutError, match="has been ignored"):
        pool.get_next(timeout=0.1, ignore_if_timedout=True)
    # The actor went back to the pool and took the waiting work (queued behind the gate).
    assert pool.has_next()
    signal.send.remote()
    assert pool.get_next(timeout=10) == 10
    assert not pool.has_next()
    assert pool.has_free()


def test_get_next_unordered_timeout_ignored_drops_the_oldest(actors):
    # Ray's own code raises UnboundLocalError here (nothing is ready, so it has no task to
    # drop); shoal gives up the oldest pending task, as get_next does.
    signal = Signal.remote()
    pool = ActorPool(actors)
    pool.submit(lambda a, v: a.gated.remote(signal, v), "first")
    pool.submit(lambda a, v: a.gated.remote(signal, v), "second")
    with pytest.raises(TimeoutError, match="has been ignored"):
        pool.get_next_unordered(timeout=0.1, ignore_if_timedout=True)
    signal.send.remote()
    assert pool.get_next_unordered(timeout=10) == "second"
    assert not pool.has_next()


def test_map_drops_results_left_from_before(actors):
    pool = ActorPool(actors)
    pool.submit(double, 100)
    pool.submit(double, 200)
    assert list(pool.map(double, [1, 2, 3])) == [2, 4, 6]
    pool.submit(double, 100)
    assert sorted(pool.map_unordered(double, [1, 2, 3])) == [2, 4, 6]


def test_pop_idle_and_push(actors):
    a1, a2 = actors
    pool = ActorPool([a1])
    popped = pool.pop_idle()
    assert popped == a1
    assert pool.pop_idle() is None
    assert not pool.has_free()
    pool.push(a1)
    assert pool.has_free()
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(a1)

    pool.submit(double, 1)
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(a1)  # busy members count too
    pool.submit(double, 2)  # waits: the only actor is busy
    assert not pool.has_free()
    assert pool.pop_idle() is None
    pool.push(a2)  # takes the waiting work at once
    assert not pool.has_free()
    assert [pool.get_next(), pool.get_next()] == [2, 4]
    assert pool.has_free()
    assert {pool.pop_idle(), pool.pop_idle()} == {a1, a2}
    assert pool.pop_idle() is None


def test_task_error_is_raised_and_actor_kept(actors):
    pool = ActorPool(actors[:1])
    pool.submit(lambda a, v: a.fail.remote(v), 7)
    pool.submit(double, 8)
    with pytest.raises(ValueError, match="bad 7"):
        pool.get_next()
    assert pool.get_next() == 16
    assert pool.has_free()


def test_dead_actor_leaves_the_pool():
    doomed, spare = Worker.remote(), Worker.remote()
    pool = ActorPool([doomed])
    pool.submit(lambda a, v: a.die.remote(v), 0)
    pool.submit(double, 3)  # waits for an actor
    with pytest.raises(ex.ActorDiedError):
        pool.get_next(timeout=10)
    assert pool.pop_idle() is None  # the dead actor is gone, the work still waits
    assert not pool.has_next()
    pool.push(spare)
    assert pool.get_next(timeout=10) == 6
    assert pool.pop_idle() == spare
