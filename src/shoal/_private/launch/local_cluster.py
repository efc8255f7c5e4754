"""Starting and finding clusters on this machine.

``init()`` with no cluster running starts an *embedded* head: one daemon process (control
store + node daemon) with a prestarted worker pool. The driver holds the daemon's stdin; when
the driver exits for any reason the pipe closes and the daemon shuts down with its workers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import selectors
import signal
import stat
import subprocess
import sys
import time

from ..wire.config import config
from ..wire.session import Session, check_private, read_address
from ..wire.version import __version__ as VERSION


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


def daemon_env() -> dict:
    """The environment a node daemon starts with: ours, and ``SHOAL_LEAN_INIT`` so that its
    ``import shoal`` skips the public API it never uses (~0.1 s of its start)."""
    return {**os.environ, "SHOAL_LEAN_INIT": "1"}


def start_head(*, num_cpus=None, num_gpus=None, resources=None, memory=None,
               object_store_memory=None, watch_stdin=True, include_dashboard=None,
               dashboard_host=None, dashboard_port=None) -> LocalHead:
    sess = Session.create()
    cmd = [sys.executable, "-m", "shoal._private.launch.daemon", "--session-dir", sess.path, "--head",
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
        start_new_session=True, close_fds=True, env=daemon_env(),
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
        pid = (read_address(path) or {})["pid"]
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (KeyError, TypeError, ValueError, psutil.Error):
        return False


def _checked_root() -> str:
    """The session root, refused (:class:`UnsafeSessionError`, saying why) if another user
    owns it or may write it; a root that does not exist yet is fine (nothing to find)."""
    root = config.session_root
    if os.path.lexists(root):
        check_private(root, "session root")
    return root


def _live_sessions() -> list[tuple[str, dict]]:
    root = _checked_root()
    try:
        names = [n for n in os.listdir(root) if n.startswith("session_") and n != "session_latest"]
    except OSError:
        return []
    out = []
    for n in names:
        path = os.path.join(root, n)
        if _alive(path) and (info := read_address(path)) is not None:
            out.append((path, info))
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
    root = _checked_root()
    latest = os.path.realpath(os.path.join(root, "session_latest"))
    if _alive(latest):
        sess = Session(latest)
        sess.verify()
        return sess
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


# -- the current cluster ---------------------------------------------------------------------
# ``shoal start --head`` records the cluster it started here, as ``ray start --head`` writes
# ``/tmp/ray/ray_current_cluster``: ``init()`` with no address joins it. Embedded heads and
# ``Cluster`` never write it. The record names a session directory, so it is trusted only
# if this user owns it (and it is writable by nobody else), the session directory is this
# user's too, and that session's daemon is running.
CURRENT_CLUSTER = "current_cluster"
_DAEMON_MODULE = "shoal._private.launch.daemon"


def current_cluster_path(root: str | None = None) -> str:
    return os.path.join(root or config.session_root, CURRENT_CLUSTER)


def record_current_cluster(session_path: str, info: dict, root: str | None = None) -> None:
    """Make the head of ``session_path`` this machine's current cluster: a new file (created
    exclusively, mode 0600) renamed over the record."""
    path = current_cluster_path(root)
    tmp = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"session_dir": os.path.abspath(session_path), "pid": info["pid"],
                       "head_address": info["head_address"]}, f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def clear_current_cluster(root: str | None = None, session_path: str | None = None) -> bool:
    """Remove the record (only if it names ``session_path``, when given); whether it was."""
    path = current_cluster_path(root)
    if session_path is not None:
        rec = _read_record(path)
        if rec is None or rec.get("session_dir") != os.path.abspath(session_path):
            return False
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def current_cluster(root: str | None = None) -> Session | None:
    """The session of the recorded current cluster, if the record can be trusted and its
    head runs; else None."""
    rec = _read_record(current_cluster_path(root))
    if rec is None:
        return None
    path = rec.get("session_dir")
    if not isinstance(path, str) or not _owned_dir(path):
        return None
    if not _head_runs(path, rec.get("pid")):
        return None
    return Session(path)


def _read_record(path: str) -> dict | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd) as f:
        st = os.fstat(f.fileno())
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid()
                or st.st_mode & 0o022):
            return None
        try:
            rec = json.load(f)
        except ValueError:
            return None
    return rec if isinstance(rec, dict) else None


def _owned_dir(path: str) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def _head_runs(path: str, pid) -> bool:
    """Is ``pid`` the running head daemon of the session at ``path`` (not a reused pid)?"""
    import psutil

    info = read_address(path)
    if info is None:
        return False
    if not isinstance(pid, int) or info.get("pid") != pid or not info.get("is_head"):
        return False
    try:
        proc = psutil.Process(pid)
        cmd = proc.cmdline()
        return (proc.status() != psutil.STATUS_ZOMBIE and _DAEMON_MODULE in cmd
                and path in cmd)
    except psutil.Error:
        return False


# -- versions --------------------------------------------------------------------------------
def version_info() -> dict:
    """This process's shoal and Python versions, as a daemon records them in address.json."""
    return {"shoal_version": VERSION,
            "python_version": ".".join(str(v) for v in sys.version_info[:3])}


def check_version(info: dict, where: str) -> None:
    """Raise RuntimeError if the cluster (``info``: its address.json) runs another shoal or
    Python version than this process, as Ray's ``check_version_info`` does. Python must
    match to the patch level, or to the minor level with
    ``RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL=minor`` (a patch difference is then a
    warning). A daemon that recorded no versions is not checked."""
    theirs = (info.get("shoal_version"), info.get("python_version"))
    if theirs[0] is None or theirs[1] is None:
        return
    mine = version_info()
    mine = (mine["shoal_version"], mine["python_version"])
    level = os.environ.get("RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL", "patch")
    if level not in ("patch", "minor"):
        raise ValueError(f"Invalid python_version_match_level: {level}, want: 'minor' or "
                         "'patch'")
    depth = 3 if level == "patch" else 2
    python_ok = str(theirs[1]).split(".")[:depth] == mine[1].split(".")[:depth]
    message = ("The cluster was started with:\n"
               f"    shoal: {theirs[0]}\n    Python: {theirs[1]}\n"
               f"This process on {where} was started with:\n"
               f"    shoal: {mine[0]}\n    Python: {mine[1]}\n")
    if theirs[0] != mine[0] or not python_ok:
        raise RuntimeError(f"Version mismatch: {message}")
    if theirs[1] != mine[1]:
        logging.getLogger("shoal").warning("Python patch version mismatch: %s", message)
