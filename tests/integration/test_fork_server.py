"""Workers forked from the node's preloaded fork server (the zygote): they look and behave
as exec'd workers, the node still owns and reaps them, and without the zygote (gone, or
turned off) workers start by exec."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile

import psutil
import pytest

import shoal as ray
from tests.conftest import cmdline, shoal_processes, wait_for_condition


@pytest.fixture
def root(monkeypatch):
    path = tempfile.mkdtemp(prefix="shoal-fs-")  # short: socket paths have a length cap
    monkeypatch.setenv("SHOAL_SESSION_ROOT", path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cluster(root):
    ctx = ray.init(num_cpus=2)
    yield ctx
    ray.shutdown()
    wait_for_condition(lambda: not shoal_processes(ctx["session_dir"]), timeout=15,
                       msg="(the zygote or a worker outlived shutdown)")


def _zygotes(session_dir: str) -> list:
    return [p for p in shoal_processes(session_dir) if "--zygote" in cmdline(p)]


@ray.remote
def whoami():
    import random

    return os.getpid(), os.environ.get("SHOAL_WORKER_ID"), random.getrandbits(64)


@ray.remote(num_cpus=0)
class Who:
    def who(self):
        import random

        return os.getpid(), random.getrandbits(64)


def test_workers_are_forked_and_look_like_exec_workers(cluster):
    wait_for_condition(lambda: len(_zygotes(cluster["session_dir"])) == 1, timeout=20)
    pid, wid, _ = ray.get(whoami.remote())
    p = psutil.Process(pid)
    cmd = " ".join(p.cmdline())
    assert f"--worker-id {wid}" in cmd and "--forked" in cmd and "--zygote" not in cmd
    assert p.environ()["SHOAL_WORKER_ID"] == wid  # what the node tracks its children by
    daemon = p.parent()
    assert "shoal._private.launch.daemon" in " ".join(daemon.cmdline())  # its child, reaped
    # Every forked worker has its own random state and id.
    seen = ray.get([a.who.remote() for a in [Who.remote() for _ in range(6)]])
    assert len({pid for pid, _ in seen}) == 6 and len({r for _, r in seen}) == 6


def test_a_killed_worker_is_reaped_and_replaced(cluster):
    pid, _, _ = ray.get(whoami.remote())
    os.kill(pid, signal.SIGKILL)
    wait_for_condition(lambda: not psutil.pid_exists(pid), timeout=15,
                       msg="(the killed forked worker was not reaped)")
    assert ray.get(whoami.remote())[0] != pid


def test_the_zygote_dying_leaves_its_workers_and_workers_start_by_exec(cluster):
    wait_for_condition(lambda: len(_zygotes(cluster["session_dir"])) == 1, timeout=20)
    a = Who.remote()
    before, _ = ray.get(a.who.remote())
    zygote = _zygotes(cluster["session_dir"])[0]
    zygote.kill()
    zygote.wait(10)
    assert ray.get(a.who.remote())[0] == before  # its worker lives on
    more = [Who.remote() for _ in range(4)]  # more than the idle pool: fresh ones, by exec
    pids = [pid for pid, _ in ray.get([m.who.remote() for m in more], timeout=60)]
    assert any("--forked" not in " ".join(psutil.Process(p).cmdline()) for p in pids)


def test_turned_off_there_is_no_zygote(monkeypatch, root):
    monkeypatch.setenv("SHOAL_WORKER_FORK_SERVER", "0")
    ctx = ray.init(num_cpus=1)
    try:
        pid, _, _ = ray.get(whoami.remote())
        assert "--forked" not in " ".join(psutil.Process(pid).cmdline())
        assert _zygotes(ctx["session_dir"]) == []
    finally:
        ray.shutdown()
    wait_for_condition(lambda: not shoal_processes(ctx["session_dir"]), timeout=15)


def test_a_forked_workers_own_fork_is_killed_with_the_cluster(cluster):
    # A task's child made by fork() alone (no exec) shows the worker's id in its environ as
    # an exec'd worker's would: the node finds it and ends it at shutdown.
    @ray.remote
    def fork_and_leave():
        child = os.fork()
        if child == 0:
            os.setsid()
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
            while True:
                signal.pause()
        return child

    child = ray.get(fork_and_leave.remote())
    assert psutil.Process(child).environ().get("SHOAL_WORKER_ID")
    ray.shutdown()
    wait_for_condition(lambda: not psutil.pid_exists(child)
                       or psutil.Process(child).status() == psutil.STATUS_ZOMBIE,
                       timeout=20, msg="(a forked task's child outlived the cluster)")
