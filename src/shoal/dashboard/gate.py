"""The dashboard's door: what a connection must do before aiohttp sees it, and how many a
source may hold.

aiohttp has no deadline for a request's head and keeps an idle connection for an hour, so a
peer that connects and says nothing (or a few bytes a minute) holds a file descriptor of the
head for as long as it likes; a thousand such peers leave the head none. The gate holds each
new connection itself until its first request head has arrived whole:

- within ``dashboard_header_timeout_s`` (else it is dropped), and in at most
  ``dashboard_max_header_bytes`` (else it is answered 431 and closed);
- while it waits it counts as a connection in its handshake, with the wire's (the same
  :class:`~shoal._private.wire.auth.PendingConnections` of this event loop, so the wire's
  ``max_pending_per_source`` and ``max_pending_connections`` bound both ports together):
  past a cap the oldest pending connection of the busiest source is dropped, so a flood of
  idle connections evicts itself and never a connection already being served;
- then the transport goes to aiohttp's request handler, through :class:`_Served`, which
  counts the connections each source has open: past ``dashboard_max_open_per_source`` a new
  one is answered 503 and closed, unless its request carries the cluster token (checked by
  the ``authorized`` callback), so token holders are served while an anonymous flood is not.

Refusals are logged through the wire's rate-limited log (:data:`auth.refusals`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .._private.wire import auth
from .._private.wire.config import config

# (headers with lower-case names, cookies) -> whether the request carries the cluster token
Authorized = Callable[[dict, dict], bool]


def head_end(buf: bytes | bytearray, start: int = 0) -> int:
    """Where the request head in ``buf`` ends (just past its empty line), or -1 if it has not
    arrived yet. A bare LF ends a line too, so that such a client meets aiohttp's answer
    rather than the deadline."""
    start = max(0, start - 2)
    crlf = buf.find(b"\n\r\n", start)
    lf = buf.find(b"\n\n", start)
    ends = [i + n for i, n in ((crlf, 3), (lf, 2)) if i >= 0]
    return min(ends) if ends else -1


def head_fields(head: bytes) -> tuple[dict, dict]:
    """(headers with lower-case names, cookies) of a request head, enough to find the token
    in (a header given twice keeps its last value)."""
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    cookies = {}
    for part in headers.get("cookie", "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            cookies[name] = value.strip('"')
    return headers, cookies


class Gate:
    """The protocol factory of the dashboard's listening socket (``loop.create_server``).

    ``make_handler`` makes aiohttp's request handler for one connection (``runner.server``).
    """

    def __init__(self, make_handler: Callable[[], asyncio.Protocol],
                 authorized: Authorized | None = None) -> None:
        self.make_handler = make_handler
        self.authorized = authorized
        self.loop = asyncio.get_running_loop()
        self.pending = auth.pending_for(self.loop)
        self.waiting: set[_Pending] = set()  # ours among self.pending, for close()
        self.open_by_source: dict[str, int] = {}
        self.closed = False

    def __call__(self) -> asyncio.Protocol:
        return _Pending(self)

    def close(self) -> None:
        """Drop the connections that have not been handed to aiohttp (the runner's cleanup
        closes the others)."""
        self.closed = True
        for p in list(self.waiting):
            p.abort()

    @property
    def open_connections(self) -> int:
        return sum(self.open_by_source.values())


def _source(transport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "local"


class _Pending(asyncio.Protocol):
    """A connection whose first request head has not arrived yet."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.transport: asyncio.Transport | None = None
        self.source = ""
        self.buf = bytearray()
        self.limit = config.dashboard_max_header_bytes
        self.deadline: asyncio.TimerHandle | None = None
        self.done = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.gate.closed:
            self.done = True
            transport.abort()
            return
        self.source = _source(transport)
        self.gate.waiting.add(self)
        self.gate.pending.add(self, self.source)
        self.deadline = self.gate.loop.call_later(
            config.dashboard_header_timeout_s, self.drop, "no request head in time")

    def data_received(self, data: bytes) -> None:
        if self.done:  # dropped, its abort not yet through
            return
        seen = len(self.buf)
        self.buf += data
        end = head_end(self.buf, seen)
        if end < 0 and len(self.buf) <= self.limit:
            return
        if end < 0 or end > self.limit:
            self.refuse(431, "Request Header Fields Too Large",
                        f"request head over {self.limit} bytes")
            return
        self._stop_waiting()
        gate = self.gate
        if gate.open_by_source.get(self.source, 0) >= config.dashboard_max_open_per_source \
                and not self._authorized(bytes(self.buf[:end])):
            self.refuse(503, "Service Unavailable",
                        "too many dashboard connections open from this source")
            return
        served = _Served(gate, gate.make_handler(), self.source)
        self.transport.set_protocol(served)
        served.connection_made(self.transport)
        served.data_received(bytes(self.buf))
        self.buf = bytearray()

    def _authorized(self, head: bytes) -> bool:
        if self.gate.authorized is None:
            return False
        try:
            return bool(self.gate.authorized(*head_fields(head)))
        except Exception:  # noqa: BLE001 - a head we cannot read has no token
            return False

    def eof_received(self) -> bool:
        return False  # the peer is done before its request: close

    def connection_lost(self, exc) -> None:
        self._stop_waiting()

    def _stop_waiting(self) -> None:
        self.done = True
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        self.gate.pending.discard(self, self.source)
        self.gate.waiting.discard(self)

    def drop(self, why: str) -> None:
        """End the connection at once (the deadline, or evicted by the pending caps)."""
        if self.done:
            return
        auth.refusals.warning("dashboard: dropped connection from %s: %s", self.source, why)
        self.abort()

    def abort(self) -> None:
        if not self.done:
            self._stop_waiting()
            self.transport.abort()

    def refuse(self, status: int, reason: str, why: str) -> None:
        auth.refusals.warning("dashboard: refused connection from %s: %s", self.source, why)
        self._stop_waiting()
        # Nothing was written before, so these few bytes go out at once and close() does not
        # wait on a peer that will not read.
        body = f"{status} {reason}: {why}\n".encode()
        self.transport.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
                             f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                             .encode() + body)
        self.transport.close()


class _Served(asyncio.Protocol):
    """aiohttp's handler for one connection, counted among its source's open connections.

    It stays the transport's protocol, so asyncio's sendfile fallback (which swaps in its own
    protocol through ``get_protocol``/``set_protocol`` and puts this one back) works as with
    aiohttp's handler alone.
    """

    def __init__(self, gate: Gate, handler: asyncio.Protocol, source: str) -> None:
        self.gate = gate
        self.handler = handler
        self.source = source
        self.counted = False

    def connection_made(self, transport) -> None:
        self.gate.open_by_source[self.source] = self.gate.open_by_source.get(self.source, 0) + 1
        self.counted = True
        self.handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.handler.data_received(data)

    def eof_received(self):
        return self.handler.eof_received()

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()

    def connection_lost(self, exc) -> None:
        if self.counted:
            self.counted = False
            n = self.gate.open_by_source[self.source] - 1
            if n:
                self.gate.open_by_source[self.source] = n
            else:
                del self.gate.open_by_source[self.source]
        self.handler.connection_lost(exc)
