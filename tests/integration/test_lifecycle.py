"""Starting and stopping the embedded cluster: nothing may outlive the driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psutil

from tests.conftest import cmdline, shm_entries, shoal_processes, wait_for_condition

DRIVER = r"""
import json, os, sys, time
import numpy as np
import shoal as ray
ctx = ray.init(num_cpus=2)
@ray.remote
def f(x):
    return np.ones(1_000_000) * x
refs = [f.remote(i) for i in range(3)]
big = ray.put(np.zeros(2_000_000))
ray.get(refs)
print(json.dumps({"session_dir": ctx["session_dir"]}), flush=True)
if sys.argv[1] == "hang":
    time.sleep(600)
elif sys.argv[1] == "exit":
    pass  # interpreter exit without shutdown()
else:
    ray.shutdown()
"""


def _run_driver(mode: str):
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, mode], stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    info = json.loads(line)
    return proc, info["session_dir"], os.path.basename(info["session_dir"]).rsplit("_", 1)[-1]


def test_shutdown_leaves_no_process_and_no_shared_memory():
    proc, session_dir, tag = _run_driver("shutdown")
    assert proc.wait(60) == 0
    wait_for_condition(lambda: not shoal_processes(session_dir), timeout=15)
    assert shm_entries(tag) == []


def test_interpreter_exit_without_shutdown_cleans_up():
    proc, session_dir, tag = _run_driver("exit")
    assert proc.wait(60) == 0
    wait_for_condition(lambda: not shoal_processes(session_dir), timeout=15)
    assert shm_entries(tag) == []


def test_killed_driver_leaves_no_process_behind():
    proc, session_dir, tag = _run_driver("hang")
    try:
        daemons = shoal_processes(session_dir)
        assert any("daemon" in cmdline(p) for p in daemons)
        assert sum("worker_main" in cmdline(p) for p in daemons) >= 2
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_for_condition(lambda: not shoal_processes(session_dir), timeout=15,
                           msg="(daemon or workers survived their driver)")
        wait_for_condition(lambda: shm_entries(tag) == [], timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_init_starts_daemon_with_prestarted_workers_and_session_dir():
    import shoal

    ctx = shoal.init(num_cpus=2)
    try:
        session_dir = ctx["session_dir"]
        assert os.path.basename(session_dir).startswith("session_")
        assert os.path.isdir(os.path.join(session_dir, "logs"))
        token = os.path.join(session_dir, "token")
        assert os.stat(token).st_mode & 0o777 == 0o600
        wait_for_condition(  # the node's worker fork server (--zygote) is not a worker
            lambda: sum("worker_main" in cmdline(p) and "--zygote" not in cmdline(p)
                        for p in shoal_processes(session_dir)) == 2, timeout=10)
        # The daemon is in its own session: a Ctrl-C in the driver's terminal is not its.
        daemon = next(p for p in shoal_processes(session_dir)
                      if "daemon" in cmdline(p))
        assert os.getsid(daemon.pid) != os.getsid(0)
    finally:
        shoal.shutdown()
    wait_for_condition(lambda: not shoal_processes(session_dir), timeout=15)


def test_api_initializes_on_first_use():
    code = ("import shoal as ray\n"
            "@ray.remote\n"
            "def f():\n"
            "    return 'auto'\n"
            "print(ray.is_initialized(), ray.get(f.remote()), ray.is_initialized())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False auto True"


def test_auto_address_without_cluster_raises_connection_error(tmp_path):
    env = dict(os.environ, SHOAL_SESSION_ROOT=str(tmp_path))
    code = ("import shoal as ray\n"
            "try:\n"
            "    ray.init(address='auto')\n"
            "except ConnectionError as e:\n"
            "    print('CE', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("CE") and "shoal start --head" in out.stdout


def test_second_driver_joins_with_address_auto():
    import shoal

    ctx = shoal.init(num_cpus=1)
    try:
        code = ("import shoal as ray\n"
                "ray.init(address='auto')\n"
                "@ray.remote\n"
                "def f():\n"
                "    return 7\n"
                "print(ray.get(f.remote()))\n"
                "ray.shutdown()\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "7"
        assert psutil.pid_exists(json.load(
            open(os.path.join(ctx["session_dir"], "address.json")))["pid"])
    finally:
        shoal.shutdown()
