"""The daemon's side of the worker fork server (:mod:`..launch.zygote`).

:class:`ForkServer` starts the zygote and asks it for workers; :class:`ForkedProc` is what
the daemon holds for a forked worker, with the part of ``asyncio.subprocess.Process`` it
uses (``pid``, ``send_signal``, ``wait``), through a pidfd: the worker is the daemon's child
once forked (re-parented to it, the subreaper), so it is reaped here, and no signal can
reach a process that merely reuses its pid.

Until the zygote is ready, when it is gone, or when a worker needs another interpreter
setting (a ``PYTHON*`` variable that differs from the zygote's), the daemon starts workers
by exec as before: the fork server only ever makes starting faster.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys

log = logging.getLogger(__name__)

PLACEHOLDER = "0" * 56  # the zygote's worker id (hex, 28 bytes): each worker writes its own


def available() -> bool:
    return hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal") \
        and hasattr(socket, "send_fds") and sys.platform.startswith("linux")


class ForkedProc:
    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._fd = os.pidfd_open(pid)
        self._done = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_reader(self._fd, self._exited)

    def _exited(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._fd)
        try:
            _pid, status = os.waitpid(self.pid, os.WNOHANG)
            self.returncode = os.waitstatus_to_exitcode(status) if _pid else -1
        except ChildProcessError:  # reaped elsewhere (e.g. proctree.reap)
            self.returncode = -1
        os.close(self._fd)
        self._fd = -1
        if not self._done.done():
            self._done.set_result(self.returncode)

    def send_signal(self, sig: int) -> None:
        if self._fd < 0:
            raise ProcessLookupError(self.pid)
        signal.pidfd_send_signal(self._fd, sig)

    async def wait(self) -> int:
        return await asyncio.shield(self._done)


class ForkServer:
    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.sock: socket.socket | None = None
        self.ready = False
        self.env: dict = {}
        self._lock = asyncio.Lock()
        self.settled = asyncio.Event()  # started, or failed to: spawns stop waiting for it

    async def start(self, argv: list[str], env: dict, log_path: str) -> None:
        """Start the zygote (``argv``: worker_main's options, the worker id a placeholder);
        it says when it is ready, in the background."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**env, "SHOAL_WORKER_ID": PLACEHOLDER}
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "shoal._private.launch.worker_main", *argv,
                "--zygote", str(theirs.fileno()), env=env, pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL, stdout=fd, stderr=fd)
        except OSError as e:
            log.warning("no worker fork server (workers start by exec): %s", e)
            mine.close()
            self.settled.set()
            return
        finally:
            os.close(fd)
            theirs.close()
        mine.setblocking(False)
        self.sock, self.env = mine, env
        loop = asyncio.get_running_loop()
        try:
            msg = await loop.sock_recv(mine, 4096)
        except OSError:
            msg = b""
        try:
            ok = bool(json.loads(msg or b"{}").get("ready"))
        except ValueError:
            ok = False
        if ok:
            self.ready = True
        else:
            log.warning("the worker fork server did not start: workers start by exec")
            self.close()
        self.settled.set()

    def can_fork(self, env: dict) -> bool:
        if not self.ready or self.sock is None:
            return False
        interp = {k: v for k, v in env.items() if k.startswith("PYTHON")}
        mine = {k: v for k, v in self.env.items() if k.startswith("PYTHON")}
        return interp == mine

    async def spawn(self, argv: list[str], env: dict, out_fd: int, err_fd: int) -> ForkedProc | None:
        """A new worker forked by the zygote, or None (then start it by exec)."""
        if not self.can_fork(env):
            return None
        loop = asyncio.get_running_loop()
        async with self._lock:  # one request at a time on the socket
            if self.sock is None:
                return None
            req = json.dumps({"argv": argv, "env": env}).encode()
            try:
                socket.send_fds(self.sock, [req], [out_fd, err_fd])
            except BlockingIOError:
                return None
            except OSError as e:
                log.warning("the worker fork server is gone (%s): workers start by exec", e)
                self.close()
                return None
            try:
                answer = json.loads(await loop.sock_recv(self.sock, 4096) or b"{}")
                if not answer:
                    raise OSError("it closed its end")
            except (OSError, ValueError) as e:
                log.warning("the worker fork server is gone (%s): workers start by exec", e)
                self.close()
                return None
        pid = answer.get("pid")
        if not isinstance(pid, int):
            log.warning("the worker fork server could not fork: %s", answer.get("error"))
            return None
        try:
            return ForkedProc(pid)
        except OSError as e:  # gone already, and reaped: treat it as a worker that died
            log.warning("forked worker %d vanished: %s", pid, e)
            return None

    def close(self) -> None:
        self.ready = False
        self.settled.set()
        if self.sock is not None:
            self.sock.close()  # the zygote exits on EOF
            self.sock = None
