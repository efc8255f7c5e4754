"""``cancel()`` as Ray documents it: actor calls (async, sync, queued at the caller), tasks
waiting for their arguments, refs owned by another process, ``is_canceled()``, bad input."""

from __future__ import annotations

import asyncio
import time

import pytest

import shoal as ray
from shoal import exceptions as ex
from tests.conftest import gate_actor, wait_for_condition


@pytest.fixture(scope="module", autouse=True)
def cluster(shoal_cluster):
    return shoal_cluster


@ray.remote
class AsyncWorker:
    def __init__(self):
        self.seen = []

    async def wait_long(self, swallow=False):
        self.seen.append("started")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.seen.append("CancelledError")
            if swallow:
                return "swallowed"
            raise
        return "slept"

    async def quick(self):
        return "quick"

    async def seen_so_far(self):
        return list(self.seen)

    async def is_canceled(self):
        return ray.get_runtime_context().is_canceled()


@pytest.mark.parametrize("swallow", [False, True])
def test_cancel_async_actor_call_raises_cancelled_error_inside(swallow):
    a = AsyncWorker.remote()
    ref = a.wait_long.remote(swallow)
    wait_for_condition(lambda: ray.get(a.seen_so_far.remote()) == ["started"], timeout=20)
    ray.cancel(ref)
    with pytest.raises(ex.TaskCancelledError):
        ray.get(ref, timeout=20)
    assert ray.get(a.seen_so_far.remote()) == ["started", "CancelledError"]
    assert ray.get(a.quick.remote()) == "quick"  # the actor lives on


def test_cancel_of_a_finished_actor_call_changes_nothing():
    a = AsyncWorker.remote()
    ref = a.quick.remote()
    assert ray.get(ref) == "quick"
    ray.cancel(ref)
    assert ray.get(ref) == "quick"


def test_cancel_actor_call_queued_at_the_caller_never_runs():
    @ray.remote(resources={"missing": 1})
    class Unplaceable:
        def ping(self):
            return "pong"

    u = Unplaceable.remote()  # cannot be placed: its calls wait at the caller
    ref = u.ping.remote()
    ray.cancel(ref)
    with pytest.raises(ex.TaskCancelledError, match="before it executes"):
        ray.get(ref, timeout=20)
    ray.kill(u)


def test_cancel_actor_call_waiting_for_its_argument():
    gate = gate_actor(ray).remote()
    a = AsyncWorker.remote()

    @ray.remote
    def later(g):
        ray.get(g.wait.remote())
        return 1

    ref = a.wait_long.remote(later.remote(gate))
    ray.cancel(ref)
    with pytest.raises(ex.TaskCancelledError):
        ray.get(ref, timeout=20)
    ray.get(gate.open.remote())
    assert ray.get(a.seen_so_far.remote()) == []  # it never started


@ray.remote
class SyncWorker:
    def __init__(self):
        self.n = 0

    def poll(self, started):
        open(started, "w").close()
        for _ in range(600):
            if ray.get_runtime_context().is_canceled():
                return "saw the cancel"
            time.sleep(0.05)
        return "never saw it"

    def incr(self):
        self.n += 1
        return self.n

    def canceled_now(self):
        return ray.get_runtime_context().is_canceled()


def test_cancel_sync_actor_call_sets_is_canceled_and_get_raises(tmp_path):
    s = SyncWorker.remote()
    started = tmp_path / "started"
    ref = s.poll.remote(str(started))
    wait_for_condition(started.exists, timeout=20)
    ray.cancel(ref)
    with pytest.raises(ex.TaskCancelledError):
        ray.get(ref, timeout=30)
    assert ray.get(s.canceled_now.remote()) is False  # the flag was that call's only


def test_cancel_sync_actor_call_queued_at_the_actor_never_runs(tmp_path):
    s = SyncWorker.remote()
    ray.get(s.incr.remote())
    started = tmp_path / "started"
    running = s.poll.remote(str(started))
    queued = s.incr.remote()  # sent, waiting behind poll
    wait_for_condition(started.exists, timeout=20)
    ray.cancel(queued)
    ray.cancel(running)
    for ref in (queued, running):
        with pytest.raises(ex.TaskCancelledError):
            ray.get(ref, timeout=30)
    assert ray.get(s.incr.remote()) == 2


def test_force_cancel_of_an_actor_call_is_a_value_error():
    a = AsyncWorker.remote()
    ref = a.wait_long.remote()
    with pytest.raises(ValueError, match="force=True is not supported for actor tasks."):
        ray.cancel(ref, force=True)
    ray.cancel(ref)
    with pytest.raises(ex.TaskCancelledError):
        ray.get(ref, timeout=20)


def test_cancel_task_whose_argument_is_not_ready(tmp_path):
    gate = gate_actor(ray).remote()
    marker = tmp_path / "ran"

    @ray.remote
    def blocked(g):
        ray.get(g.wait.remote())
        return 1

    @ray.remote
    def touch(_dep, path):
        open(path, "w").close()

    ref = touch.remote(blocked.remote(gate), str(marker))
    ray.cancel(ref)
    with pytest.raises(ex.TaskCancelledError):
        ray.get(ref, timeout=10)  # at once, not when the argument is ready
    ray.get(gate.open.remote())
    assert not marker.exists()


def test_cancel_a_task_owned_by_another_worker():
    gate = gate_actor(ray).remote()

    @ray.remote
    def wait_on(g):
        ray.get(g.wait.remote())

    @ray.remote
    def spawn(g):
        return [wait_on.remote(g)]

    [inner] = ray.get(spawn.remote(gate))
    assert ray.wait([inner], timeout=0.3)[1] == [inner]
    ray.cancel(inner)  # we borrow it: the worker that owns it cancels it
    with pytest.raises(ex.TaskCancelledError):
        ray.get(inner, timeout=20)


def test_cancel_an_actor_call_from_another_task():
    a = AsyncWorker.remote()
    ref = a.wait_long.remote()

    @ray.remote
    def canceller(refs):
        ray.cancel(refs[0])
        return "asked"

    assert ray.get(canceller.remote([ref]), timeout=20) == "asked"
    with pytest.raises(ex.TaskCancelledError):
        ray.get(ref, timeout=20)


def test_is_canceled_in_a_task_after_its_keyboard_interrupt(tmp_path):
    started = tmp_path / "started"

    @ray.remote
    def interrupted(path):
        try:
            open(path, "w").close()
            time.sleep(60)
        except KeyboardInterrupt:
            return ray.get_runtime_context().is_canceled()
        return None

    @ray.remote
    def not_cancelled():
        return ray.get_runtime_context().is_canceled()

    assert ray.get(not_cancelled.remote()) is False
    ref = interrupted.remote(str(started))
    wait_for_condition(started.exists, timeout=20)
    ray.cancel(ref)
    assert ray.get(ref, timeout=20) is True  # it saw the cancel, and returned


def test_is_canceled_outside_a_worker_and_in_an_async_actor_raise():
    with pytest.raises(RuntimeError, match="only available when the process is a worker"):
        ray.get_runtime_context().is_canceled()
    a = AsyncWorker.remote()
    with pytest.raises(RuntimeError, match="not supported in an async actor"):
        ray.get(a.is_canceled.remote())


def test_cancel_streaming_generator_of_an_async_actor():
    @ray.remote
    class Streamer:
        async def items(self):
            yield 1
            await asyncio.sleep(60)
            yield 2

    s = Streamer.remote()
    gen = s.items.remote()
    assert ray.get(next(gen), timeout=20) == 1
    ray.cancel(gen)
    with pytest.raises(ex.TaskCancelledError):
        ray.get(next(gen), timeout=20)


def test_cancel_rejects_what_is_not_an_object_ref():
    a = AsyncWorker.remote()
    with pytest.raises(TypeError, match=r"ray.cancel\(\) only supported for object refs. "
                                        r"For actors, try ray.kill\(\)."):
        ray.cancel(a)
    with pytest.raises(ValueError, match=r"ray.kill\(\) only supported for actors"):
        ray.kill(a.quick.remote())
