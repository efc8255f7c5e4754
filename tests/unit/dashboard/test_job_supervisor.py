"""A job's supervisor, as a real process: it passes the entrypoint's exit on, and ends
everything the entrypoint started (setsid and double-forked ones too) when the entrypoint
exits, when it is told to stop, and when its parent (the head) dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

from shoal.dashboard.jobs.manager import SUPERVISOR
from tests.conftest import wait_for_condition

SPAWNER = textwrap.dedent("""
    import os, subprocess, sys
    kids = [subprocess.Popen(["sleep", "300"]),
            subprocess.Popen(["sleep", "300"], start_new_session=True)]
    if os.fork() == 0:  # a double fork: the grandchild is orphaned at once
        if os.fork() == 0:
            os.setsid()
            open(sys.argv[1] + ".orphan", "w").write(str(os.getpid()))
            os.execvp("sleep", ["sleep", "300"])
        os._exit(0)
    while not os.path.exists(sys.argv[1] + ".orphan"):
        pass
    open(sys.argv[1], "w").write(" ".join(str(k.pid) for k in kids))
    print("started", flush=True)
    sys.exit(int(sys.argv[2]))
""")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _supervise(tmp_path, *cmd: str, parent: int | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-S", "-u", SUPERVISOR,
                             str(parent or os.getpid()), "1", *cmd],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _pids(path) -> list[int]:
    return [int(p) for p in path.read_text().split()] + \
        [int((path.parent / (path.name + ".orphan")).read_text())]


@pytest.mark.parametrize("code", [0, 5])
def test_the_exit_code_passes_and_what_was_left_running_ends(tmp_path, code):
    out = tmp_path / "pids"
    spawner = tmp_path / "spawner.py"
    spawner.write_text(SPAWNER)
    sup = _supervise(tmp_path, sys.executable, str(spawner), str(out), str(code))
    assert sup.stdout.readline() == "started\n"
    assert sup.wait(timeout=30) == code
    pids = _pids(out)
    wait_for_condition(lambda: not any(_alive(p) for p in pids), timeout=10)
    assert sup.stdout.read() == ""  # the pipe closed: nothing holds it open


def test_sigterm_ends_everything_and_the_exit_is_the_signal(tmp_path):
    out = tmp_path / "pids"
    spawner = tmp_path / "spawner.py"
    spawner.write_text(SPAWNER.replace("sys.exit(int(sys.argv[2]))",
                                       "import time; time.sleep(300)"))
    sup = _supervise(tmp_path, sys.executable, str(spawner), str(out), "0")
    assert sup.stdout.readline() == "started\n"
    pids = _pids(out)
    assert all(_alive(p) for p in pids)
    sup.send_signal(signal.SIGTERM)
    assert sup.wait(timeout=30) == -signal.SIGTERM
    wait_for_condition(lambda: not any(_alive(p) for p in pids), timeout=10)


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path):
    sup = _supervise(tmp_path, sys.executable, "-c",
                     "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                     "print('up', flush=True); time.sleep(300)")
    assert sup.stdout.readline() == "up\n"
    sup.send_signal(signal.SIGTERM)
    assert sup.wait(timeout=30) == -signal.SIGKILL


def test_the_supervisor_and_its_job_die_with_its_parent(tmp_path):
    out = tmp_path / "pids"
    spawner = tmp_path / "spawner.py"
    spawner.write_text(SPAWNER.replace("sys.exit(int(sys.argv[2]))",
                                       "import time; time.sleep(300)"))
    # A stand-in for the head: starts the supervisor, reports its pid, and waits.
    head = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, subprocess, sys
        sup = subprocess.Popen([sys.executable, "-S", "-u", {SUPERVISOR!r}, str(os.getpid()),
                                "1", sys.executable, {str(spawner)!r}, {str(out)!r}, "0"],
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert sup.stdout.readline() == "started\\n"
        print(sup.pid, flush=True)
        sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        sup_pid = int(head.stdout.readline())
        pids = _pids(out) + [sup_pid]
        assert all(_alive(p) for p in pids)
        head.kill()
        head.wait()
        wait_for_condition(lambda: not any(_alive(p) for p in pids), timeout=15,
                           msg="(a job outlived the head that supervised it)")
    finally:
        head.kill()
        head.wait()


def test_a_command_that_cannot_start(tmp_path):
    sup = _supervise(tmp_path, "/no/such/program")
    assert sup.wait(timeout=30) == 127
    assert "cannot start the entrypoint" in sup.stdout.read()


def test_a_supervisor_whose_parent_is_already_gone_exits(tmp_path):
    sup = _supervise(tmp_path, "sleep", "300", parent=1)  # "the head" is not its parent
    assert sup.wait(timeout=30) == 1
