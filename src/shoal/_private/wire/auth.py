"""What a connection must get through before it is served: the mutual challenge-response,
the handshake's limits, optional TLS, and rate-limited refusal logs.

The handshake (docs/protocol.md section 3) never sends the cluster token: the client sends a
nonce in ``hello``; the server answers with its own nonce and a proof, an HMAC keyed by the
token over both nonces and the label ``server``; the client checks it and answers with the
proof labelled ``client``. Each side thus shows it holds the token, a listener that does not
hold it learns nothing it could replay, and a proof cannot be reflected to the other role.

Connections still in their handshake are counted per source and in total; past a limit the
oldest pending connection of the busiest source is dropped, so a flood of idle connections
evicts itself and never the peers that have authenticated (they are no longer counted).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import ssl
import time
import weakref

from .config import config

log = logging.getLogger("shoal._private.wire.transport")

PROTOCOL = b"shoal-auth-v1"
NONCE_BYTES = 32


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def proof(token: bytes, role: str, client_nonce: bytes, server_nonce: bytes) -> bytes:
    """The HMAC-SHA256 by which ``role`` ("client" or "server") shows it holds ``token``."""
    msg = b"\0".join((PROTOCOL, role.encode(), client_nonce, server_nonce))
    return hmac.new(token, msg, hashlib.sha256).digest()


def valid_nonce(n) -> bool:
    return isinstance(n, bytes) and 16 <= len(n) <= 64


def check_proof(token: bytes, role: str, client_nonce: bytes, server_nonce: bytes,
                got) -> bool:
    return isinstance(got, bytes) and hmac.compare_digest(
        got, proof(token, role, client_nonce, server_nonce))


# -- refusal logs -----------------------------------------------------------------------------
class RateLimitedLog:
    """At most ``burst`` warnings per ``window`` seconds; the rest are counted and reported
    once, as one line, when the next window opens."""

    def __init__(self, burst: int = 10, window: float = 60.0):
        self.burst = burst
        self.window = window
        self._start = -window
        self._count = 0
        self._suppressed = 0

    def warning(self, msg: str, *args) -> None:
        now = time.monotonic()
        if now - self._start >= self.window:
            if self._suppressed:
                log.warning("%d more refused connections were not logged in the last %.0f s",
                            self._suppressed, now - self._start)
            self._start, self._count, self._suppressed = now, 0, 0
        if self._count < self.burst:
            self._count += 1
            log.warning(msg, *args)
        else:
            self._suppressed += 1


refusals = RateLimitedLog()


# -- connections in their handshake ----------------------------------------------------------
class PendingConnections:
    """The server-side connections of one event loop that have not authenticated yet."""

    def __init__(self):
        self.by_source: dict[str, dict] = {}
        self.total = 0

    def add(self, conn, source: str) -> None:
        per_source = max(1, config.max_pending_per_source)
        limit = max(1, config.max_pending_connections)
        mine = self.by_source.get(source)
        if mine is not None and len(mine) >= per_source:
            self._evict(source, "too many connections from this source in their handshake")
        while self.total >= limit:
            busiest = max(self.by_source, key=lambda s: len(self.by_source[s]))
            self._evict(busiest, "too many connections in their handshake")
        self.by_source.setdefault(source, {})[conn] = None
        self.total += 1

    def discard(self, conn, source: str) -> None:
        mine = self.by_source.get(source)
        if mine is not None and mine.pop(conn, 0) is None:
            self.total -= 1
            if not mine:
                del self.by_source[source]

    def _evict(self, source: str, why: str) -> None:
        oldest = next(iter(self.by_source[source]))
        self.discard(oldest, source)
        oldest.drop(why)


_pending: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def pending_for(loop) -> PendingConnections:
    p = _pending.get(loop)
    if p is None:
        p = _pending[loop] = PendingConnections()
    return p


# -- TLS --------------------------------------------------------------------------------------
def tls_enabled() -> bool:
    return bool(config.tls_cert and config.tls_key)


def _context(purpose) -> ssl.SSLContext:
    ctx = ssl.create_default_context(purpose, cafile=config.tls_ca or config.tls_cert)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.tls_cert, config.tls_key)
    ctx.verify_mode = ssl.CERT_REQUIRED  # both ends show a certificate of the cluster's CA
    return ctx


def server_ssl_context() -> ssl.SSLContext | None:
    """The TLS context of a TCP listener, or None when TLS is off."""
    return _context(ssl.Purpose.CLIENT_AUTH) if tls_enabled() else None


def client_ssl_context() -> ssl.SSLContext | None:
    """The TLS context of a TCP connection to another node, or None when TLS is off.

    Nodes are addressed by IP and the CA is the cluster's own, so the certificate's chain is
    checked but not its host name.
    """
    if not tls_enabled():
        return None
    ctx = _context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False
    return ctx
