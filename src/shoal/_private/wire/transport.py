"""Framed, authenticated messages over asyncio (Unix sockets on a node, TCP between nodes).

A frame is ``[u32 frame_len][u32 header_len][msgpack header][raw payload buffers]``. The header
is ``[kind, req_id, body, buffer_lengths]``: payload buffers (pickled values, object chunks) are
appended as they are, never re-encoded. ``req_id`` 0 means no reply is expected; replies use
the kinds ``"r"`` (result) and ``"e"`` (error) with the request's id.

Every connection starts with a mutual challenge-response (``hello``, then ``auth``; see
:mod:`.auth`): the token never crosses the wire and each end proves it holds it. Until then
the server answers nothing else, frames are capped at a few KiB, and a peer that does not
finish within ``handshake_timeout_s`` is dropped; a failed proof closes the connection.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import struct
import threading
from collections.abc import Callable
from typing import Any

import msgpack

from . import auth
from .addresses import join_address as join_address  # re-exported: callers use transport's
from .addresses import split_address
from .config import config

log = logging.getLogger(__name__)

_HDR = struct.Struct(">II")


def _packb(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


class BadFrame(ValueError):
    """Bytes that are not a shoal frame (or exceed what the connection accepts)."""


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


def check_prefix(flen: int, hlen: int, limit: int) -> None:
    """Refuse a frame from its first 8 bytes, before any of it is buffered."""
    if flen > limit:
        raise BadFrame(f"frame of {flen} bytes exceeds the limit of {limit}")
    if hlen + 4 > flen:
        raise BadFrame("header longer than its frame")


def decode_header(flen: int, header: bytes) -> tuple:
    """``(kind, req_id, body, lens)`` of a frame's header, checked against its length."""
    try:
        h = _unpack(header)
    except Exception as e:  # msgpack raises several types for malformed input
        raise BadFrame(f"undecodable header ({type(e).__name__})") from None
    if type(h) is not list or len(h) != 4:
        raise BadFrame("header is not [kind, req_id, body, buffer_lengths]")
    kind, req_id, body, lens = h
    if type(kind) is not str or type(req_id) is not int or req_id < 0 \
            or type(lens) is not list:
        raise BadFrame("malformed header fields")
    total = 4 + len(header)
    for ln in lens:
        if type(ln) is not int or ln < 0:
            raise BadFrame("malformed buffer length")
        total += ln
    if total != flen:
        raise BadFrame("buffer lengths do not add up to the frame's length")
    return kind, req_id, body, lens


class Connection(asyncio.Protocol):
    """One side of a framed connection; both sides may send requests."""

    def __init__(self, handler: Handler | None, token: bytes, *, server: bool):
        self._handler = handler
        self._token = token
        self._server = server
        # A client is authenticated once the server has proved it holds the token (connect).
        self._authed = False
        self._nonces: tuple[bytes, bytes] | None = None  # server: (client's, ours) after hello
        self._limit = config.max_handshake_frame_bytes  # raised once authenticated
        self._deadline = None
        self._source = ""
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
        if sock is not None and transport.get_extra_info("sslcontext") is None:
            self._fd = sock.fileno()  # direct writes only without TLS
        peer = transport.get_extra_info("peername")
        if self._server and isinstance(peer, tuple) and peer:
            # Network peers only: a Unix socket (0600, in a 0700 directory) admits this user
            # alone, whose workers may start by the hundred at once on a busy machine.
            self._source = peer[0]
            auth.pending_for(self._loop).add(self, self._source)
            self._deadline = self._loop.call_later(
                config.handshake_timeout_s, self.drop, "no handshake in time")

    def drop(self, why: str) -> None:
        """End a connection that has not authenticated, at once, logging why (rate-limited)."""
        if self.closed:
            return
        auth.refusals.warning("dropped connection from %s: %s", self._peer_name(), why)
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _peer_name(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return str(peer or "local peer")

    def _authenticated(self) -> None:
        self._authed = True
        self._limit = config.max_frame_bytes
        if self._deadline is not None:
            auth.pending_for(self._loop).discard(self, self._source)
            self._deadline.cancel()

    def data_received(self, data):
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        while n - pos >= 8:
            flen, hlen = _HDR.unpack_from(buf, pos)
            try:
                check_prefix(flen, hlen, self._limit)
                if n - pos < 4 + flen:
                    break
                hstart = pos + 8
                kind, req_id, body, lens = decode_header(flen, bytes(buf[hstart:hstart + hlen]))
            except BadFrame as e:
                self._bad_frame(str(e))
                return
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

    def _bad_frame(self, why: str) -> None:
        self._buf = bytearray()
        if self._authed:  # a peer that proved itself is not rate-limited: a bug, say so
            log.error("bad frame from %s (%s); closing", self.peer.get("role", "peer"), why)
            self.closed = True
            self.transport.abort()
        else:
            self.drop(f"bad frame: {why}")

    def connection_lost(self, exc):
        self.closed = True
        if self._deadline is not None and not self._authed:
            auth.pending_for(self._loop).discard(self, self._source)
            self._deadline.cancel()
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
        if self.closed:  # lost already: connection_lost may have run before we registered
            self._loop.call_soon_threadsafe(self._lost_late, req_id)
            return
        self.write_from_thread(kind, req_id, body, bufs)

    def _lost_late(self, req_id: int) -> None:
        on_reply = self._pending.pop(req_id, None)
        if on_reply is not None:  # (connection_lost had not seen it)
            on_reply(Reply(error=ConnectionLost(
                f"connection to {self.peer.get('role', 'peer')} lost")))

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
            if self._server:
                self._server_handshake(kind, req_id, body)
            else:  # the server has not proved itself: it may not ask anything yet
                self.drop(f"{kind!r} from a server before it authenticated")
            return
        if kind == "hello" or kind == "auth":
            self._refuse(req_id, "protocol error: the connection is already authenticated")
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

    def _server_handshake(self, kind, req_id, body):
        if self._nonces is None:
            if kind != "hello" or not isinstance(body, dict):
                self._refuse(req_id, "authentication required: the first message must be hello")
            elif "token" in body:
                self._refuse(req_id, "authentication failed: the peer sent its token "
                             "(an older shoal); it is refused and was not looked at")
            elif not auth.valid_nonce(body.get("nonce")):
                self._refuse(req_id, "authentication required: hello carries no nonce")
            else:
                mine = auth.new_nonce()
                self._nonces = (body["nonce"], mine)
                self.peer = {k: v for k, v in body.items() if k != "nonce"}
                self.reply(req_id, {"nonce": mine, "proof": auth.proof(
                    self._token, "server", body["nonce"], mine)})
            return
        if kind != "auth" or not isinstance(body, dict):
            self._refuse(req_id, "authentication required: expected auth after hello")
        elif not auth.check_proof(self._token, "client", *self._nonces, body.get("proof")):
            self._refuse(req_id, "authentication failed: wrong cluster token")
        else:
            self._authenticated()
            self.reply(req_id, {"ok": True})

    def _refuse(self, req_id, message):
        auth.refusals.warning("refused connection from %s: %s", self._peer_name(), message)
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
        lambda: Connection(handler, token, server=True), host=host, port=port,
        reuse_address=True, ssl=auth.server_ssl_context(),
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
        coro = loop.create_connection(factory, host=host.strip("[]"), port=int(port),
                                      ssl=auth.client_ssl_context())
    _, conn = await asyncio.wait_for(coro, timeout)
    try:
        mine = auth.new_nonce()
        body, _ = await conn.request("hello", {**(hello or {}), "nonce": mine}, timeout=timeout)
        theirs = body.get("nonce") if isinstance(body, dict) else None
        if not auth.valid_nonce(theirs) or not auth.check_proof(
                token, "server", mine, theirs, body.get("proof")):
            conn.close()
            raise AuthError(f"{address} did not prove it holds our cluster token: a wrong "
                            "token, or not this cluster's node (nothing secret was sent)")
        conn._authenticated()
        await conn.request("auth", {"proof": auth.proof(token, "client", mine, theirs)},
                           timeout=timeout)
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


def _recv_exact(sock, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        r = sock.recv_into(view[got:], n - got)
        if r == 0:
            raise ConnectionError("the peer closed the connection")
        got += r
    return bytes(buf)


def read_frame_blocking(sock, limit: int) -> tuple:
    """``(kind, body, bufs)`` of the next frame on a blocking socket."""
    flen, hlen = _HDR.unpack(_recv_exact(sock, 8))
    check_prefix(flen, hlen, limit)
    kind, _req_id, body, lens = decode_header(flen, _recv_exact(sock, hlen))
    return kind, body, [_recv_exact(sock, ln) for ln in lens]


def handshake_blocking(sock, token: bytes, hello: dict) -> None:
    """The client's side of the handshake on a blocking socket (a bulk-transfer thread)."""
    limit = config.max_handshake_frame_bytes
    mine = auth.new_nonce()
    sock.sendall(b"".join(_frame("hello", 1, {**hello, "nonce": mine}, ())))
    kind, body, _ = read_frame_blocking(sock, limit)
    if kind != "r" or not isinstance(body, dict):
        raise AuthError(f"the peer refused the connection: {body}")
    theirs = body.get("nonce")
    if not auth.valid_nonce(theirs) or not auth.check_proof(token, "server", mine, theirs,
                                                            body.get("proof")):
        raise AuthError("the peer did not prove it holds the cluster token")
    sock.sendall(b"".join(_frame("auth", 2, {"proof": auth.proof(token, "client", mine,
                                                                 theirs)}, ())))
    kind, body, _ = read_frame_blocking(sock, limit)
    if kind != "r":
        raise AuthError(f"the peer refused the connection: {body}")
