"""``shoal stop``: stop every shoal process of this machine and free its shared memory.

Each session under the session root whose daemon runs gets SIGTERM (its daemon then stops
its workers and unlinks its shared-memory segments); a daemon still running after the grace
period, or every one with ``--force``, gets SIGKILL. Then daemons and workers of those
sessions that are still around (e.g. workers of a killed daemon) are stopped too, and the
``shoal-<tag>-*`` segments those sessions left in ``/dev/shm`` (or the directory a node's
``--plasma-directory`` named) are removed, and so is the current-cluster record that
``shoal start --head`` wrote. Only sessions under ``SHOAL_SESSION_ROOT`` (default
``/tmp/shoal``) are touched.
"""

from __future__ import annotations

import glob
import os
import signal
import time

import click
import psutil

from .._private.launch import local_cluster
from .._private.wire.config import config
from .._private.wire.session import Session, UnsafeSessionError
from ..util import state

_DAEMON = "shoal._private.launch.daemon"
_WORKER = "shoal._private.launch.worker_main"


@click.command()
@click.option("-f", "--force", is_flag=True, help="SIGKILL at once instead of SIGTERM.")
@click.option("-g", "--grace-period", type=click.FloatRange(min=0), default=10.0,
              show_default=True,
              help="Seconds to wait after SIGTERM before sending SIGKILL.")
def stop(force: bool, grace_period: float) -> None:
    """Stop all shoal processes of this machine (daemons and their workers)."""
    try:
        sessions = state.session_dirs()
    except UnsafeSessionError as e:  # another user's root: act on nothing in it
        raise click.ClickException(str(e)) from None
    stopped, failed = _stop_all(_live_daemons(sessions), force, grace_period)
    more, more_failed = _stop_all(_leftovers(set(sessions)), force, min(grace_period, 3.0))
    stopped, failed = stopped + more, failed + more_failed
    if failed:  # keep the segments of sessions whose processes still run
        busy = {_session_of(p, p.info["cmdline"] or []) for p in _leftovers(set(sessions))}
        sessions = [s for s in sessions if s not in busy]
    removed = _remove_segments(sessions)
    local_cluster.clear_current_cluster()  # as `ray stop` resets ray_current_cluster
    if stopped:
        click.echo(f"Stopped {stopped} shoal process{'es' if stopped != 1 else ''}.")
    else:
        click.echo("Did not find any active shoal processes.")
    if removed:
        click.echo(f"Removed {removed} shared-memory file{'s' if removed != 1 else ''}.")
    if failed:
        raise click.ClickException(f"{failed} shoal process(es) could not be stopped "
                                   "(not permitted?); see `ps aux | grep shoal`.")


def _live_daemons(sessions: list[str]) -> list[psutil.Process]:
    """The daemon of each session whose ``address.json`` names a running daemon process."""
    out = []
    for path in sessions:
        info = state.read_address(path)
        if info is None or not state.pid_alive(info.get("pid")):
            continue
        try:
            proc = psutil.Process(info["pid"])
            cmd = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if _DAEMON in cmd and path in cmd and _running(proc):  # not a reused pid
            out.append(proc)
    return out


def _leftovers(sessions: set[str]) -> list[psutil.Process]:
    """Daemons and workers of these sessions still running (matched by ``--session-dir`` or
    the ``SHOAL_SESSION_DIR`` environment variable)."""
    out = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.pid == os.getpid() or not (_DAEMON in cmd or _WORKER in cmd):
            continue
        if _session_of(proc, cmd) in sessions and _running(proc):
            out.append(proc)
    return out


def _session_of(proc: psutil.Process, cmd: list[str]) -> str | None:
    if "--session-dir" in cmd:
        i = cmd.index("--session-dir")
        return cmd[i + 1] if i + 1 < len(cmd) else None
    try:
        return proc.environ().get("SHOAL_SESSION_DIR")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _stop_all(procs: list[psutil.Process], force: bool, grace: float) -> tuple[int, int]:
    """Signal the processes and wait for them; ``(stopped, could not be stopped)``."""
    sent, denied = _signal(procs, signal.SIGKILL if force else signal.SIGTERM)
    alive = _wait_gone(sent, 5.0 if force else grace)
    if alive and not force:
        click.echo(f"{len(alive)} shoal process(es) did not exit within {grace:g} s after "
                   "SIGTERM; sending SIGKILL.")
        _signal(alive, signal.SIGKILL)
        alive = _wait_gone(alive, 5.0)
    return len(sent) - len(alive), denied + len(alive)


def _signal(procs: list[psutil.Process], sig: int) -> tuple[list[psutil.Process], int]:
    sent, denied = [], 0
    for proc in procs:
        try:
            proc.send_signal(sig)
            sent.append(proc)
        except psutil.NoSuchProcess:
            pass
        except psutil.AccessDenied:
            denied += 1
    return sent, denied


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Poll until the processes have exited (a zombie counts as exited); return the rest."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive:
        alive = [p for p in alive if _running(p)]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return alive


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _remove_segments(sessions: list[str]) -> int:
    """Unlink the shared-memory segments (``shoal-<tag>-*``) the sessions left behind."""
    removed = 0
    for path in sessions:
        tag = Session(path).tag
        shm_dir = (state.read_address(path) or {}).get("shm_dir") or config.shm_dir
        for seg in glob.glob(os.path.join(glob.escape(shm_dir), f"shoal-{glob.escape(tag)}-*")):
            try:
                os.unlink(seg)
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as e:
                click.echo(f"Could not remove {seg}: {e.strerror}", err=True)
    return removed
