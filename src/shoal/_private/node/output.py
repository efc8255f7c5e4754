"""A node daemon's side of its workers' output: reading their pipes, the log files, the
lines sent to drivers, and waiting until what was written has been read (``flush``).

Each worker's stdout and stderr are pipes read by an ``OutputReader``. Every complete line is
appended to the worker's log file and sent to the drivers of the worker's current job
(``log_lines``), in one message per read, under the name the worker announced last on that
stream (``worker_output.MARK`` lines, which are taken out). A driver that is leaving asks its
node (and through the head, every node) to ``flush_logs``: the node notes how many bytes each
pipe of that job's workers holds and answers once they have been read and sent, so lines
written before a driver's last ``get`` returned are printed before it exits.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios

from ..wire.config import config
from ..wire.worker_output import MARK

FLUSH_TIMEOUT_S = 2.0  # the longest a leaving driver waits for its workers' lines
MAX_LINE = 1 << 16  # a longer line without a newline is sent in pieces


class OutputReader(asyncio.Protocol):
    """One pipe (stdout or stderr) of one worker."""

    def __init__(self, daemon, wp, is_err: bool):
        self.daemon = daemon
        self.wp = wp
        self.is_err = is_err
        self.name: str | None = None  # who is speaking, as the worker announced it
        self.received = 0  # bytes taken from the pipe so far
        self._partial = b""
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self.transport = None
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE:
            lines.append(self._partial)
            self._partial = b""
        if lines:
            self._lines(lines)
        self._wake()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc) -> None:
        if self._partial:
            self._lines([self._partial])
            self._partial = b""
        waiters, self._waiters = self._waiters, []
        for _target, fut in waiters:  # nothing more will come
            if not fut.done():
                fut.set_result(None)
        if not self.done.done():
            self.done.set_result(None)

    def _lines(self, lines: list[bytes]) -> None:
        wp = self.wp
        batch: list[str] = []
        raw: list[bytes] = []
        for line in lines:
            if line.startswith(MARK):
                if batch:
                    self._send(batch)
                    batch = []
                self.name = line[len(MARK):].decode("utf-8", "replace") or None
                continue
            raw.append(line + b"\n")
            batch.append(line.decode("utf-8", "replace"))
        if raw and wp.log_file is not None:
            write_log(wp, b"".join(raw))
        if batch:
            self._send(batch)

    def _send(self, lines: list[str]) -> None:
        forward(self.daemon, self.wp, self.is_err, self.name, lines)

    # -- flushing -------------------------------------------------------------------------
    def pending(self) -> int:
        """Bytes written to the pipe and not read yet."""
        pipe = self.transport.get_extra_info("pipe") if self.transport is not None else None
        if pipe is None:
            return 0
        try:
            buf = fcntl.ioctl(pipe.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (OSError, ValueError):
            return 0
        return struct.unpack("i", buf)[0]

    def drained(self) -> asyncio.Future:
        """Done once every byte in the pipe now has been read (and its lines sent)."""
        fut = asyncio.get_running_loop().create_future()
        target = self.received + self.pending()
        if self.received >= target or self.done.done():
            fut.set_result(None)
        else:
            self._waiters.append((target, fut))
        return fut

    def _wake(self) -> None:
        if not self._waiters:
            return
        still = []
        for target, fut in self._waiters:
            if self.received >= target:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((target, fut))
        self._waiters = still


def write_log(wp, data: bytes) -> None:
    """Append to a worker's log file, rotating it by size (``<name>.1``, ...) as
    ``log_max_bytes`` and ``log_backup_count`` say; the current file keeps its name."""
    f = wp.log_file
    limit = config.log_max_bytes
    if limit <= 0 or f.tell() == 0 or f.tell() + len(data) <= limit:
        f.write(data)
        return
    name = f.name
    f.close()
    keep = max(0, config.log_backup_count)
    if keep == 0:
        os.unlink(name)
    else:
        for i in range(keep - 1, 0, -1):
            if os.path.exists(f"{name}.{i}"):
                os.replace(f"{name}.{i}", f"{name}.{i + 1}")
        os.replace(name, f"{name}.1")
    wp.log_file = open(name, "ab", buffering=0)  # noqa: SIM115 - lives as long as the worker
    wp.log_file.write(data)


def forward(daemon, wp, is_err: bool, name: str | None, lines: list[str]) -> None:
    """Send a worker's lines to the drivers of its job: on this node, or through the head."""
    if wp.job_id is None:
        return
    msg = {"pid": wp.pid, "ip": daemon.ip, "err": is_err, "lines": lines}
    if name:
        msg["name"] = name
    subs = daemon.log_subscribers.get(wp.job_id)
    live = [c for c in subs if not c.closed] if subs else []
    if subs is not None and len(live) != len(subs):
        daemon.log_subscribers[wp.job_id] = set(live)
    if live:
        for conn in live:
            conn.send("log_lines", msg)
    else:  # the job's driver is on another node: the head forwards it
        daemon.head.send("job_log", {**msg, "job_id": wp.job_id})


async def flush(daemon, job_id) -> dict:
    """Wait (at most ``FLUSH_TIMEOUT_S``) until the output already written by the workers of
    ``job_id`` has been read and sent."""
    waits = [r.drained() for wp in list(daemon.procs.values()) if wp.job_id == job_id
             for r in wp.readers]
    waits = [w for w in waits if not w.done()]
    if waits:
        await asyncio.wait(waits, timeout=FLUSH_TIMEOUT_S)
    return {"ok": True}
