"""Starting and finding clusters on this machine.

``init()`` with no cluster running starts an *embedded* head: one daemon process (control
store + node daemon) with a prestarted worker pool. The driver holds the daemon's stdin; when
the driver exits for any reason the pipe closes and the daemon shuts down with its workers.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time

from .config import config
from .session import Session


class LocalHead:
    def __init__(self, proc: subprocess.Popen, session: Session, info: dict):
        self.proc = proc
        self.session = session
        self.info = info

    @property
    def node_address(self) -> str:
        return self.info["node_address"]

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc.poll() is None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait(5)
        for f in (proc.stdout,):
            try:
                f.close()
            except OSError:
                pass


def start_head(*, num_cpus=None, num_gpus=None, resources=None, memory=None,
               object_store_memory=None, watch_stdin=True, include_dashboard=None,
               dashboard_host=None, dashboard_port=None) -> LocalHead:
    sess = Session.create()
    cmd = [sys.executable, "-m", "shoal._private.daemon", "--session-dir", sess.path, "--head",
           "--num-cpus", str(os.cpu_count() if num_cpus is None else num_cpus)]
    if num_gpus:
        cmd += ["--num-gpus", str(num_gpus)]
    if resources:
        cmd += ["--resources", json.dumps(resources)]
    if memory:
        cmd += ["--memory", str(memory)]
    if object_store_memory:
        cmd += ["--object-store-memory", str(object_store_memory)]
    if watch_stdin:
        cmd.append("--watch-stdin")
    if include_dashboard is not None:
        cmd += ["--include-dashboard", "true" if include_dashboard else "false"]
    if dashboard_host:
        cmd += ["--dashboard-host", dashboard_host]
    if dashboard_port is not None:
        cmd += ["--dashboard-port", str(int(dashboard_port))]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
        start_new_session=True, close_fds=True,
    )
    try:
        info = _read_ready(proc, config.start_timeout_s)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return LocalHead(proc, sess, info)


def _read_ready(proc: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the shoal daemon did not start within {timeout} s")
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"the shoal daemon exited during start (code {proc.wait()}); "
                                   "see its log in the session directory")
            buf += chunk
            if b"\n" in buf:
                line = buf.split(b"\n", 1)[0].decode()
                if line.startswith("READY "):
                    return json.loads(line[6:])
                raise RuntimeError(f"the shoal daemon failed to start: {line}")
    finally:
        sel.close()


def _alive(path: str) -> bool:
    """Is the daemon of the session at ``path`` running (an exited, unreaped one is not)?"""
    import psutil

    try:
        with open(os.path.join(path, "address.json")) as f:
            pid = json.load(f)["pid"]
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (OSError, ValueError, KeyError, psutil.Error):
        return False


def _live_sessions() -> list[tuple[str, dict]]:
    root = config.session_root
    try:
        names = [n for n in os.listdir(root) if n.startswith("session_") and n != "session_latest"]
    except OSError:
        return []
    out = []
    for n in names:
        path = os.path.join(root, n)
        if _alive(path):
            try:
                with open(os.path.join(path, "address.json")) as f:
                    out.append((path, json.load(f)))
            except (OSError, ValueError):
                continue
    return out


def _same_address(a: str, b: str) -> bool:
    def norm(x: str) -> str:
        host, _, port = x.rpartition(":")
        host = host.strip("[]")
        if host in ("localhost", "0.0.0.0", ""):
            host = "127.0.0.1"
        return f"{host}:{port}"

    return norm(a) == norm(b)


def find_session_for_head(address: str) -> Session | None:
    """A live node of this machine that belongs to the cluster whose head is ``address``
    (the head's own session first)."""
    matches = [(p, info) for p, info in _live_sessions()
               if _same_address(info.get("head_address", ""), address)]
    matches.sort(key=lambda pi: not pi[1].get("is_head"))
    return Session(matches[0][0]) if matches else None


def find_local_session() -> Session | None:
    """The newest session on this machine whose daemon is alive (for ``address='auto'``).

    ``session_latest`` is tried first; if that cluster has stopped, the newest live one.
    """
    root = config.session_root
    latest = os.path.realpath(os.path.join(root, "session_latest"))
    if _alive(latest):
        return Session(latest)
    try:
        names = [n for n in os.listdir(root) if n.startswith("session_") and n != "session_latest"]
    except OSError:
        return None
    paths = [os.path.join(root, n) for n in names]
    paths.sort(key=lambda p: os.stat(p).st_mtime if os.path.exists(p) else 0, reverse=True)
    for path in paths:
        if _alive(path):
            return Session(path)
    return None
