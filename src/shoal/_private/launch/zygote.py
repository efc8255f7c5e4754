"""The worker fork server of a node: a process that has imported the worker's code once and
forks each new worker from itself, in milliseconds instead of an interpreter start and its
imports (~0.15-0.5 s of CPU each).

The node daemon starts it (``worker_main --zygote FD``) with one end of a private
``SOCK_SEQPACKET`` socket pair as its only channel: no name on the file system, so nothing
but its daemon can ask it for anything. A request is one JSON packet (the worker's argv and
environment) carrying the worker's stdout and stderr pipes as ``SCM_RIGHTS``; the answer is
the new worker's pid. Workers are forked twice so that the zygote is not their parent: the
middle child exits at once and the worker is re-parented to the daemon (a child subreaper),
which reaps it and whose death kills it (``PR_SET_PDEATHSIG`` follows the subreaper), as
with an exec'd worker; the zygote's own death leaves its workers running.

The kernel shows a process's *initial* argv and environment in ``/proc/<pid>/cmdline`` and
``environ``. The zygote starts with placeholders there for the worker id (in
``--worker-id`` and in ``SHOAL_WORKER_ID``), which each worker overwrites in place with its
own, so that ``ps``, ``shoal stop`` and the node's tracking of what tasks leave behind see
each worker as if it had been exec'd (its ``--zygote`` reads ``--forked``).
"""

from __future__ import annotations

import ctypes
import importlib
import io
import json
import os
import socket
import sys
import traceback

from ..node.forkserver import PLACEHOLDER

MAX_REQUEST = 1 << 20


def serve(fd: int, run_worker) -> None:
    """The zygote's life: preload, say ready, then fork a worker per request until the
    daemon's end of the socket closes; a forked worker calls ``run_worker(argv)`` (the
    worker's ``main``)."""
    sock = socket.socket(fileno=fd)
    _preload()
    sock.send(b'{"ready": true}')
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, MAX_REQUEST, 2)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)  # the daemon is gone
        try:
            req = json.loads(msg)
            pid = _fork_worker(sock, req, fds, run_worker)
            sock.send(json.dumps({"pid": pid}).encode())
        except Exception as e:  # noqa: BLE001 - the daemon falls back to exec
            for f in fds:
                _close(f)
            sock.send(json.dumps({"error": f"{type(e).__name__}: {e}"}).encode())


def _preload() -> None:
    # The public package too, by name: what a task's pickled function refers to. A preload
    # into this process, not a dependency of this module (the layers hold: see .importlinter).
    importlib.import_module("shoal")

    from ..runtime import core  # noqa: F401
    from ..wire import session, worker_output  # noqa: F401
    from ..worker import actor_executor, executor  # noqa: F401


def _fork_worker(sock: socket.socket, req: dict, fds: list[int], run_worker) -> int:
    if len(fds) != 2:
        raise ValueError("a worker needs its stdout and stderr")
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:  # the middle child: fork the worker, tell its pid, go
        try:
            os.close(r)
            gate_r, gate_w = os.pipe()  # EOF for the worker when this process is gone
            me = os.getpid()
            worker = os.fork()
            if worker == 0:
                os.close(w)
                os.close(gate_w)
                sock.close()
                _wait_reparented(gate_r, me)
                _become_worker(req, fds, run_worker)  # never returns
            os.write(w, str(worker).encode())
        finally:
            os._exit(0)
    os.close(w)
    for f in fds:
        os.close(f)
    try:
        data = os.read(r, 32)
    finally:
        os.close(r)
        os.waitpid(middle, 0)
    if not data:
        raise OSError("the worker could not be forked")
    return int(data)


def _wait_reparented(gate: int, middle: int) -> None:
    """Return once the middle child is gone and this process has its new parent (so that
    the parent-death signal the worker sets refers to the daemon, not to the middle child,
    which exits now). Its pipe's EOF comes as it exits; the re-parenting follows within
    microseconds of that, in the same exit."""
    while os.read(gate, 1):
        pass
    os.close(gate)
    while os.getppid() == middle:
        os.sched_yield()


def _become_worker(req: dict, fds: list[int], run_worker) -> None:
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for f in (null, *fds):
            if f > 2:
                os.close(f)
        _fresh_stdio()
        env = req["env"]
        os.environ.clear()
        os.environ.update(env)
        argv = list(req["argv"])
        wid = argv[argv.index("--worker-id") + 1]
        _show_in_proc(PLACEHOLDER, wid)
        _show_in_proc("--zygote", "--forked")  # ps tells the zygote from its workers
        sys.argv = [sys.argv[0], *argv]
        run_worker(argv)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - report, then exit as a crashed worker would
        traceback.print_exc()
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _fresh_stdio() -> None:
    """New ``sys.std*`` objects over fds 0-2 (now the worker's pipes): the zygote's own
    remember facts about the files they had (seekable, position). Unbuffered, as the
    daemon asks of exec'd workers (PYTHONUNBUFFERED)."""
    for name, fd, mode, errors in (("stdin", 0, "r", "strict"), ("stdout", 1, "w", "strict"),
                                   ("stderr", 2, "w", "backslashreplace")):
        old = getattr(sys, name)
        raw = io.FileIO(fd, mode, closefd=False)
        stream = io.TextIOWrapper(raw, encoding=getattr(old, "encoding", None) or "utf-8",
                                  errors=errors, write_through=True)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _show_in_proc(old: str, new: str) -> None:
    """Overwrite ``old`` with ``new`` (same length) in this process's initial argv and
    environment, which ``/proc/self/cmdline`` and ``environ`` show."""
    if len(old) != len(new):
        raise ValueError("a worker id of the wrong length")
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # Fields 48-51 (1-based; the first two precede the ``)``): arg_start, arg_end,
    # env_start, env_end.
    spans = [(int(fields[45]), int(fields[46])), (int(fields[47]), int(fields[48]))]
    needle, repl = old.encode(), new.encode()
    for start, end in spans:
        area = ctypes.string_at(start, end - start)
        at = area.find(needle)
        while at >= 0:
            ctypes.memmove(start + at, repl, len(repl))
            at = area.find(needle, at + len(needle))


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
