"""Actor deaths and restarts as Ray documents them: calls in flight resubmitted to the next
incarnation within max_task_retries, kill with restart, sys.exit() and exit_actor(), and the
reasons an ActorDiedError gives."""

from __future__ import annotations

import atexit
import os
import signal
import sys

import pytest

import shoal as ray
from shoal import exceptions as ex
from tests.conftest import wait_for_condition


@pytest.fixture(scope="module", autouse=True)
def cluster(shoal_cluster):
    return shoal_cluster


def _lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@ray.remote(max_restarts=1, max_task_retries=-1)
class Counter:
    def __init__(self):
        self.n = 0

    def incr(self, delay=0.0):
        import time

        time.sleep(delay)
        self.n += 1
        return self.n

    def pid(self):
        return os.getpid()


def test_calls_in_flight_when_the_actor_dies_run_in_order_on_the_restarted_actor():
    a = Counter.remote()
    pid = ray.get(a.pid.remote())
    refs = [a.incr.remote(0.01) for _ in range(40)]
    os.kill(pid, signal.SIGKILL)
    results = ray.get(refs, timeout=60)
    # Those that ran before the death count from 1, the rest again from 1 on the new
    # incarnation, each exactly once and in the order they were made.
    k = next((i for i, r in enumerate(results) if r != i + 1), len(results))
    assert results == list(range(1, k + 1)) + list(range(1, len(results) - k + 1))
    assert ray.get(a.pid.remote(), timeout=30) != pid
    assert ray.get(a.incr.remote(), timeout=30) == results[-1] + 1


def test_resubmissions_count_against_max_task_retries(tmp_path):
    log = tmp_path / "runs"

    @ray.remote(max_restarts=3, max_task_retries=1)
    class Crasher:
        def crash(self, path):
            with open(path, "a") as f:
                f.write("ran\n")
            os._exit(1)

        def ping(self):
            return "pong"

    c = Crasher.remote()
    with pytest.raises(ex.RayActorError):
        ray.get(c.crash.remote(str(log)), timeout=60)
    assert _lines(log) == ["ran", "ran"]  # the first run and one retry, no more
    assert ray.get(c.ping.remote(), timeout=30) == "pong"  # a restart was left


def test_calls_in_flight_fail_with_actor_died_error_once_restarts_run_out():
    a = Counter.remote()
    ray.get(a.incr.remote())
    os.kill(ray.get(a.pid.remote()), signal.SIGKILL)
    ray.get(a.incr.remote(), timeout=30)  # the one restart
    pid = ray.get(a.pid.remote())
    refs = [a.incr.remote(0.01) for _ in range(20)]
    os.kill(pid, signal.SIGKILL)
    for ref in refs:
        try:
            ray.get(ref, timeout=30)
        except ex.ActorDiedError as e:
            assert "The actor is dead because its worker process has died" in str(e)
    with pytest.raises(ex.ActorDiedError):
        ray.get(a.incr.remote(), timeout=30)


def test_kill_with_restart_runs_later_calls_on_the_new_incarnation():
    a = Counter.remote()
    first = ray.get(a.pid.remote())
    ray.kill(a, no_restart=False)
    # With max_task_retries=-1 no call may fail: each runs on one incarnation or the next.
    wait_for_condition(lambda: ray.get(a.pid.remote(), timeout=30) != first, timeout=30)
    assert ray.get(a.incr.remote(), timeout=30) == 1


def test_kill_with_restart_but_no_restarts_left_is_final():
    @ray.remote
    class Once:
        def ping(self):
            return "pong"

    o = Once.remote()
    ray.get(o.ping.remote())
    ray.kill(o, no_restart=False)
    with pytest.raises(ex.ActorDiedError, match="killed by `ray.kill`"):
        wait_for_condition(lambda: ray.get(o.ping.remote(), timeout=30) is None, timeout=30)


def test_sys_exit_in_a_method_ends_the_actor():
    @ray.remote
    class Exits:
        def leave(self, code):
            sys.exit(code)

        def ping(self):
            return "pong"

    e = Exits.remote()
    assert ray.get(e.ping.remote()) == "pong"
    with pytest.raises(ex.ActorDiedError) as info:
        ray.get(e.leave.remote(3), timeout=30)
    assert not isinstance(info.value, ex.RayTaskError)
    assert "Worker exit type: SYSTEM_ERROR" in str(info.value)
    assert "exit code 3" in str(info.value)
    with pytest.raises(ex.ActorDiedError):
        ray.get(e.ping.remote(), timeout=30)


def test_sys_exit_in_a_method_restarts_the_actor_if_allowed():
    @ray.remote(max_restarts=1)
    class Exits:
        def leave(self):
            sys.exit()

        def pid(self):
            return os.getpid()

    e = Exits.remote()
    first = ray.get(e.pid.remote())
    with pytest.raises(ex.RayActorError) as info:
        ray.get(e.leave.remote(), timeout=30)
    assert isinstance(info.value, ex.ActorUnavailableError)  # it restarts
    assert ray.get(e.pid.remote(), timeout=30) != first


def test_sys_exit_in_a_task_crashes_its_worker_and_is_retried(tmp_path):
    log = tmp_path / "runs"

    @ray.remote(max_retries=1)
    def leave(path):
        with open(path, "a") as f:
            f.write("ran\n")
        sys.exit(0)

    with pytest.raises(ex.WorkerCrashedError):
        ray.get(leave.remote(str(log)), timeout=60)
    assert _lines(log) == ["ran", "ran"]


def test_exit_actor_in_init_runs_atexit_handlers_and_the_actor_is_dead(tmp_path):
    marker = tmp_path / "atexit"

    @ray.remote(max_restarts=2)
    class Quits:
        def __init__(self, path):
            atexit.register(lambda: open(path, "w").close())
            ray.actor.exit_actor()

        def ping(self):
            return "pong"

    q = Quits.remote(str(marker))
    with pytest.raises(ex.ActorDiedError) as info:
        ray.get(q.ping.remote(), timeout=30)
    assert "INTENDED_USER_EXIT" in str(info.value)
    assert "exit_actor() is called" in str(info.value)
    assert not info.value.actor_init_failed
    wait_for_condition(marker.exists, timeout=10)


@pytest.mark.parametrize("options", [{}, {"max_task_retries": -1},
                                     {"concurrency_groups": {"other": 1}}])
def test_calls_queued_behind_exit_actor_fail_with_actor_error(options):
    @ray.remote
    class Quitter:
        def quit(self):
            import time

            time.sleep(0.2)
            ray.actor.exit_actor()

        def ping(self):
            return "pong"

    q = Quitter.options(**options).remote()
    assert ray.get(q.ping.remote()) == "pong"
    quit_ref = q.quit.remote()
    behind = [q.ping.remote() for _ in range(3)]
    with pytest.raises(ex.RayActorError):
        ray.get(quit_ref, timeout=30)
    for ref in behind:
        with pytest.raises(ex.RayActorError):
            ray.get(ref, timeout=30)
    with pytest.raises(ex.ActorDiedError):
        ray.get(q.ping.remote(), timeout=30)


def test_calls_queued_behind_exit_actor_in_an_async_actor_fail_with_actor_error():
    @ray.remote(max_concurrency=1)
    class AsyncQuitter:
        async def quit(self):
            import asyncio

            await asyncio.sleep(0.2)
            ray.actor.exit_actor()

        async def ping(self):
            return "pong"

    q = AsyncQuitter.remote()
    assert ray.get(q.ping.remote()) == "pong"
    quit_ref = q.quit.remote()
    behind = [q.ping.remote() for _ in range(3)]
    for ref in [quit_ref, *behind]:
        with pytest.raises(ex.RayActorError):
            ray.get(ref, timeout=30)


def test_actor_died_error_names_the_actor_and_the_reason():
    @ray.remote
    class Victim:
        def pid(self):
            return os.getpid()

        def crash(self):
            os._exit(1)

    v = Victim.remote()
    pid = ray.get(v.pid.remote())
    with pytest.raises(ex.ActorDiedError) as info:
        ray.get(v.crash.remote(), timeout=30)
    msg = str(info.value)
    assert msg.startswith("The actor died unexpectedly before finishing this task.")
    assert "\tclass_name: Victim" in msg
    assert f"\tactor_id: {v._actor_id.hex()}" in msg
    assert f"\tpid: {pid}" in msg
    assert f"\tnamespace: {ray.get_runtime_context().namespace}" in msg
    assert "The actor is dead because its worker process has died. Worker exit type: " \
           "SYSTEM_ERROR" in msg
    assert info.value.actor_id == v._actor_id.hex()

    k = Victim.remote()
    ray.get(k.pid.remote())
    ray.kill(k)
    with pytest.raises(ex.ActorDiedError,
                       match="The actor is dead because it was killed by `ray.kill`."):
        ray.get(k.pid.remote(), timeout=30)


def test_actor_died_error_when_the_owner_died():
    @ray.remote
    class Child:
        def ping(self):
            return "pong"

    @ray.remote
    class Parent:
        def make(self):
            self.child = Child.remote()
            return [self.child]

    p = Parent.remote()
    [child] = ray.get(p.make.remote())
    assert ray.get(child.ping.remote(), timeout=30) == "pong"
    ray.kill(p)

    def child_dead():
        try:
            ray.get(child.ping.remote(), timeout=30)
        except ex.ActorDiedError as e:
            assert "The actor is dead because its owner has died." in str(e)
            return True
        return False

    wait_for_condition(child_dead, timeout=30)


def test_creation_error_is_the_actor_died_error():
    @ray.remote
    class Broken:
        def __init__(self):
            raise ValueError("no good")

        def ping(self):
            return "pong"

    b = Broken.remote()
    with pytest.raises(ex.ActorDiedError) as info:
        ray.get(b.ping.remote(), timeout=30)
    assert str(info.value).startswith(
        "The actor died because of an error raised in its creation task, ")
    assert "ValueError: no good" in str(info.value)
    assert info.value.actor_init_failed
