"""Framed, authenticated messages over asyncio (Unix sockets on a node, TCP between nodes).

A frame is ``[u32 frame_len][u32 header_len][msgpack header][raw payload buffers]``. The header
is ``[kind, req_id, body, buffer_lengths]``: payload buffers (pickled values, object chunks) are
appended as they are, never re-encoded. ``req_id`` 0 means no reply is expected; replies use
the kinds ``"r"`` (result) and ``"e"`` (error) with the request's id.

Every connection starts with ``hello`` carrying the cluster token; until it is accepted the
server answers nothing else, and a wrong token closes the connection with a reason.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import os
import struct
import threading
from collections.abc import Callable
from typing import Any

import msgpack

from .addresses import join_address as join_address  # re-exported: callers use transport's
from .addresses import split_address

log = logging.getLogger(__name__)

_HDR = struct.Struct(">II")


def _packb(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)
MAX_FRAME = 1 << 31


class ConnectionLost(ConnectionError):
    """The peer went away while a request was outstanding."""


class AuthError(ConnectionError):
    """The peer refused our token, or sent a wrong one."""


class RemoteError(Exception):
    """A request failed on the peer; ``body`` holds what the peer said."""

    def __init__(self, body: dict):
        super().__init__(body.get("error", "remote error"))
        self.body = body


Handler = Callable[["Connection", str, dict, list], Any]


class Reply:
    """The outcome of a request answered through a callback (``request_cb``)."""

    __slots__ = ("_value", "_error")

    def __init__(self, value=None, error: BaseException | None = None):
        self._value = value
        self._error = error

    def exception(self) -> BaseException | None:
        return self._error

    def result(self):
        if self._error is not None:
            raise self._error
        return self._value


def _frame(kind, req_id, body, bufs) -> list:
    lens = [b.nbytes if type(b) is memoryview else len(b) for b in bufs] if bufs else []
    header = _packb([kind, req_id, body, lens])
    flen = 4 + len(header) + sum(lens)
    if not bufs:
        return [_HDR.pack(flen, len(header)) + header]
    return [_HDR.pack(flen, len(header)), header, *bufs]


def _unpack(b):
    return msgpack.unpackb(b, raw=False, use_list=True, strict_map_key=False)


class Connection(asyncio.Protocol):
    """One side of a framed connection; both sides may send requests."""

    def __init__(self, handler: Handler | None, token: bytes, *, server: bool):
        self._handler = handler
        self._token = token
        self._server = server
        self._authed = not server
        self._buf = bytearray()
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.close_callbacks: list[Callable[[Connection], None]] = []
        self.peer: dict = {}  # what the peer told us in hello (role, ids, address)
        self.state: dict = {}  # per-connection state owned by the handler
        self._loop = asyncio.get_event_loop()
        self.lost = self._loop.create_future()
        # Frames may also be written from other threads (write_from_thread); the lock keeps
        # frames whole and, with the hand-off count, in order.
        self._wlock = threading.Lock()
        self._handoff = 0
        self._fd = -1

    # -- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self._fd = sock.fileno()

    def data_received(self, data):
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        while n - pos >= 8:
            flen, hlen = _HDR.unpack_from(buf, pos)
            if flen > MAX_FRAME or hlen > flen:
                log.error("bad frame from peer; closing")
                self.transport.close()
                return
            if n - pos < 4 + flen:
                break
            hstart = pos + 8
            kind, req_id, body, lens = _unpack(bytes(buf[hstart : hstart + hlen]))
            off = hstart + hlen
            bufs = []
            for ln in lens:
                bufs.append(bytes(buf[off : off + ln]))
                off += ln
            pos = 4 + pos + flen
            try:
                self._dispatch(kind, req_id, body, bufs)
            except Exception:
                log.exception("error dispatching %s", kind)
            if self.closed:
                return
        if pos:
            del buf[:pos]

    def connection_lost(self, exc):
        self.closed = True
        err = ConnectionLost(f"connection to {self.peer.get('role', 'peer')} lost")
        for fut in list(self._pending.values()):
            if callable(fut):
                try:
                    fut(Reply(error=err))
                except Exception:
                    log.exception("reply callback failed")
            elif not fut.done():
                fut.set_exception(err)
        self._pending.clear()
        if not self.lost.done():
            self.lost.set_result(None)
        for cb in self.close_callbacks:
            try:
                cb(self)
            except Exception:
                log.exception("close callback failed")

    # -- sending --------------------------------------------------------------------------
    def _write(self, kind: str, req_id: int, body: Any, bufs) -> None:
        if self.closed or self.transport is None:
            raise ConnectionLost("connection closed")
        parts = _frame(kind, req_id, body, bufs)
        with self._wlock:
            if self._handoff:  # frames from another thread are queued ahead: keep order
                self._handoff += 1
                self._loop.call_soon(self._write_handoff, b"".join(parts))
            elif len(parts) == 1:
                self.transport.write(parts[0])
            else:
                self.transport.writelines(parts)

    def write_from_thread(self, kind: str, req_id: int, body: Any, bufs=()) -> None:
        """Write a frame from a thread that is not the loop's (a worker replying).

        When nothing is buffered the frame goes straight to the socket, saving a wake-up of
        the I/O loop; otherwise it is handed to the loop, behind what is already queued.
        """
        data = b"".join(_frame(kind, req_id, body, bufs))
        with self._wlock:
            if self.closed or self.transport is None:
                return
            if not self._handoff and self.transport.get_write_buffer_size() == 0 \
                    and self._fd >= 0:
                try:
                    n = os.write(self._fd, data)
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError:
                    return  # the peer is gone; the loop will notice and close
                if n == len(data):
                    return
                data = data[n:]
            self._handoff += 1
        self._loop.call_soon_threadsafe(self._write_handoff, data)

    def _write_handoff(self, data: bytes) -> None:
        with self._wlock:
            self._handoff -= 1
            if not self.closed and self.transport is not None:
                self.transport.write(data)

    def send(self, kind: str, body: Any = None, bufs=()) -> None:
        """Send a one-way message."""
        self._write(kind, 0, body, bufs)

    def request_from_thread(self, kind: str, body: Any, bufs, on_reply) -> None:
        """Send a request from a thread that is not the loop's; ``on_reply(future)`` runs
        on the loop when the answer (or the connection's loss) comes."""
        req_id = next(self._ids)
        self._pending[req_id] = on_reply  # before sending: the reply cannot precede it
        self.write_from_thread(kind, req_id, body, bufs)

    def request_cb(self, kind: str, body: Any, bufs, on_reply) -> None:
        """Send a request from the loop; ``on_reply(Reply)`` is called as soon as the answer
        (or the connection's loss) arrives."""
        req_id = next(self._ids)
        self._pending[req_id] = on_reply
        try:
            self._write(kind, req_id, body, bufs)
        except ConnectionLost:
            del self._pending[req_id]
            raise

    def request_future(self, kind: str, body: Any = None, bufs=()) -> asyncio.Future:
        req_id = next(self._ids)
        fut = self._loop.create_future()
        self._pending[req_id] = fut
        try:
            self._write(kind, req_id, body, bufs)
        except ConnectionLost:
            del self._pending[req_id]
            raise
        return fut

    async def request(self, kind: str, body: Any = None, bufs=(), timeout: float | None = None):
        """Send a request and wait for ``(body, bufs)`` of the reply."""
        fut = self.request_future(kind, body, bufs)
        if timeout is None:
            return await fut
        return await asyncio.wait_for(fut, timeout)

    def reply(self, req_id: int, body: Any = None, bufs=()) -> None:
        if req_id and not self.closed:
            self._write("r", req_id, body, bufs)

    def reply_error(self, req_id: int, message: str, **extra) -> None:
        if req_id and not self.closed:
            self._write("e", req_id, {"error": message, **extra}, ())

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    # -- receiving ------------------------------------------------------------------------
    def _dispatch(self, kind, req_id, body, bufs):
        if kind == "r" or kind == "e":
            fut = self._pending.pop(req_id, None)
            if fut is None:
                return
            if callable(fut):  # request_cb: answer now, no extra turn of the loop
                fut(Reply((body, bufs)) if kind == "r" else Reply(error=RemoteError(body)))
                return
            if fut.done():
                return
            if kind == "r":
                fut.set_result((body, bufs))
            else:
                fut.set_exception(RemoteError(body))
            return
        if not self._authed:
            self._check_hello(kind, req_id, body)
            return
        if kind == "hello":
            self.reply(req_id, {"ok": True})
            return
        handler = self._handler
        if handler is None:
            self.reply_error(req_id, f"no handler for {kind!r}")
            return
        try:
            result = handler(self, kind, body, bufs, req_id)
        except Exception as e:  # a handler bug must not kill the connection
            log.exception("handler for %s failed", kind)
            self.reply_error(req_id, f"{type(e).__name__}: {e}")
            return
        if asyncio.iscoroutine(result):
            task = self._loop.create_task(self._run_async_handler(kind, req_id, result))
            _handler_tasks.add(task)
            task.add_done_callback(_handler_tasks.discard)

    async def _run_async_handler(self, kind, req_id, coro):
        try:
            await coro
        except ConnectionLost:
            pass
        except Exception as e:  # a handler bug must still answer the request
            log.exception("handler for %s failed", kind)
            self.reply_error(req_id, f"{type(e).__name__}: {e}")

    def _check_hello(self, kind, req_id, body):
        if kind != "hello" or not isinstance(body, dict):
            self._refuse(req_id, "authentication required: the first message must be hello")
            return
        token = body.get("token")
        if not isinstance(token, bytes) or not hmac.compare_digest(token, self._token):
            self._refuse(req_id, "authentication failed: wrong cluster token")
            return
        self._authed = True
        self.peer = {k: v for k, v in body.items() if k != "token"}
        self.reply(req_id, {"ok": True})

    def _refuse(self, req_id, message):
        peer = self.transport.get_extra_info("peername") if self.transport else None
        log.warning("refused connection from %s: %s", peer or "local peer", message)
        try:
            self._write("e", req_id or 0, {"error": message, "auth": True}, ())
        finally:
            self.transport.close()
            self.closed = True


# Running async handlers, kept referenced so that none is garbage-collected mid-way.
_handler_tasks: set[asyncio.Task] = set()


async def serve_unix(path: str, handler: Handler, token: bytes):
    loop = asyncio.get_running_loop()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server = await loop.create_unix_server(
        lambda: Connection(handler, token, server=True), path=path
    )
    os.chmod(path, 0o600)
    return server


async def serve_tcp(host: str, port: int, handler: Handler, token: bytes):
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: Connection(handler, token, server=True), host=host, port=port, reuse_address=True
    )


# The IP of this process's node: a peer at the same IP whose Unix socket exists here is
# reached through that socket, others over TCP. Set once when the process starts.
LOCAL_IP: dict = {"ip": None}


def _route(address: str) -> tuple[str, str]:
    tcp, unix = split_address(address)
    if unix is not None:
        same_host = tcp is None or tcp.rpartition(":")[0].strip("[]") == LOCAL_IP["ip"]
        if same_host and os.path.exists(unix):
            return "unix", unix
    if tcp is None:
        raise ConnectionError(f"no route to {address}: its Unix socket is not on this machine")
    return "tcp", tcp


async def connect(
    address: str,
    token: bytes,
    handler: Handler | None = None,
    hello: dict | None = None,
    timeout: float = 10.0,
) -> Connection:
    """Connect to an address (``unix:/path``, ``host:port`` or both joined by ``|``) and
    authenticate with the cluster token."""
    loop = asyncio.get_running_loop()

    def factory():
        return Connection(handler, token, server=False)

    kind, where = _route(address)
    if kind == "unix":
        coro = loop.create_unix_connection(factory, path=where)
    else:
        host, _, port = where.rpartition(":")
        coro = loop.create_connection(factory, host=host.strip("[]"), port=int(port))
    _, conn = await asyncio.wait_for(coro, timeout)
    try:
        await conn.request("hello", {"token": token, **(hello or {})}, timeout=timeout)
    except TimeoutError:
        conn.close()
        raise
    except RemoteError as e:
        conn.close()
        if e.body.get("auth"):
            raise AuthError(f"{address} refused the connection: {e.body['error']}") from None
        raise
    except ConnectionLost:
        # A shoal peer that refuses us says why before closing; a silent close means
        # whatever listens there is not a shoal node.
        raise ConnectionError(f"{address} closed the connection during the handshake: it "
                              "does not look like a shoal node") from None
    return conn
