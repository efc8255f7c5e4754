"""Shared test helpers: waiting on conditions, and finding shoal processes left behind."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import time

import psutil
import pytest


def wait_for_condition(predicate, timeout: float = 10.0, interval: float = 0.02, msg: str = ""):
    """Poll ``predicate`` until it is true; fail the test if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s {msg}")
        time.sleep(interval)


def stop_daemons(procs, sessions, timeout: float = 15) -> None:
    """End daemons started with ``--watch-stdin`` (close their stdin, wait, kill the ones
    that stay), then wait until no process of ``sessions`` is left."""
    for p in procs:
        try:
            p.stdin.close()
        except OSError:
            pass
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
    for s in sessions:
        wait_for_condition(lambda s=s: not shoal_processes(s), timeout=timeout)


@contextlib.contextmanager
def cluster_with_fd_limit(limit: int = 1024):
    """A one-CPU head (``cluster_utils.Cluster``) whose daemons get ``limit`` file
    descriptors, the common default of a stock machine; shut down and waited for after."""
    from shoal.cluster_utils import Cluster

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    try:
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    sessions = [n.session.path for n in c.list_all_nodes()]
    try:
        yield c
    finally:
        c.shutdown()
        for s in sessions:
            wait_for_condition(lambda s=s: not shoal_processes(s), timeout=15)


def shoal_processes(session_dir: str | None = None) -> list[psutil.Process]:
    """Daemons and workers of shoal (of one session if given) that are still alive."""
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "shoal._private.launch.daemon" not in cmd and "shoal._private.launch.worker_main" not in cmd:
            continue
        if session_dir is not None and session_dir not in cmd and not _env_has(p, session_dir):
            continue
        out.append(p)
    return out


def cmdline(p: psutil.Process) -> str:
    """A process's command line as ``shoal_processes`` read it (no second read that a
    process exiting meanwhile could fail)."""
    return " ".join(getattr(p, "info", {}).get("cmdline") or [])


def _env_has(p: psutil.Process, session_dir: str) -> bool:
    try:
        return p.environ().get("SHOAL_SESSION_DIR") == session_dir
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def gate_actor(shoal):
    """An async actor class whose ``wait()`` calls return once ``open()`` is called: tasks
    that wait on it stay RUNNING for as long as a test needs."""

    @shoal.remote
    class Gate:
        def __init__(self):
            import asyncio

            self.ev = asyncio.Event()

        async def wait(self):
            await self.ev.wait()

        async def open(self):
            self.ev.set()

    return Gate


def shm_entries(tag: str) -> list[str]:
    return [f for f in os.listdir("/dev/shm") if f.startswith(f"shoal-{tag}-")]


@pytest.fixture(scope="module")
def shoal_cluster():
    """A local cluster shared by the tests of one module (2 CPUs, 1 logical GPU)."""
    import shoal

    ctx = shoal.init(num_cpus=2, num_gpus=1, resources={"custom": 2})
    session_dir = ctx["session_dir"]
    yield shoal
    shoal.shutdown()
    wait_for_condition(lambda: not shoal_processes(session_dir), timeout=15,
                       msg="(shoal processes left after shutdown)")


def wait_for_output(capfd, text: str, *, stream: str = "out", timeout: float = 10.0) -> None:
    """Wait until ``text`` has been written to this process's stdout (or stderr); the colour
    codes around workers' line prefixes are left out of the comparison."""
    import re

    seen: list[str] = []

    def printed():
        seen.append(getattr(capfd.readouterr(), stream))
        return text in re.sub(r"\x1b\[[0-9;]*m", "", "".join(seen))

    wait_for_condition(printed, timeout=timeout, msg=f"(no {text!r} on std{stream})")
