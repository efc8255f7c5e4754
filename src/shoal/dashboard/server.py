"""The dashboard's HTTP server, run by the head in its own event loop (aiohttp).

``bind()`` takes the port before the head says READY (so the URL it prints is true);
``serve()`` imports aiohttp and starts answering afterwards, off the start's critical path.
Routes are listed in ``docs/dashboard.md``; every request passes :mod:`auth` first.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
from urllib.parse import parse_qs

from .._private.wire.config import config
from . import auth

log = logging.getLogger(__name__)

STATIC = os.path.join(os.path.dirname(__file__), "static")
_TYPES = {".html": "text/html", ".js": "application/javascript", ".css": "text/css",
          ".svg": "image/svg+xml"}
# Security headers on every answer: no framing, no foreign scripts, no sniffing.
_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                       "frame-ancestors 'none'; form-action 'self'"}


class DashboardBindError(OSError):
    pass


def bind(host: str, port: int | None) -> socket.socket:
    """A listening socket at ``host:port``; ``port`` None means the default port, or any
    free one if that is taken (an explicit port that is taken is an error)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    wanted = config.dashboard_port if port is None else port
    for attempt in (wanted, 0):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, attempt))
            sock.listen(128)
            sock.setblocking(False)
            if attempt != wanted:
                log.warning("dashboard port %d is taken: serving on %d", wanted,
                            sock.getsockname()[1])
            return sock
        except OSError as e:
            sock.close()
            if port is not None or e.errno != errno.EADDRINUSE:
                raise DashboardBindError(e.errno, f"cannot serve the dashboard at "
                                         f"{host}:{attempt}: {e.strerror}") from None
    raise AssertionError("unreachable")


def url_of(sock: socket.socket, advertise_ip: str) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = advertise_ip
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


async def serve(sock: socket.socket, store, token: str):
    """Answer on ``sock`` until the returned runner is cleaned up."""
    from aiohttp import web

    from .routes import build_app

    host, port = sock.getsockname()[:2]
    extra = tuple(h.strip() for h in config.dashboard_allowed_hosts.split(",") if h.strip())
    policy = auth.Policy(token=token, host=host, port=port, extra_hosts=extra)
    app = build_app(store, policy)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    log.info("dashboard serving at %s:%d", host, port)
    return runner


def parse_query(qs: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(qs, keep_blank_values=True).items()}


def dumps(obj) -> str:
    return json.dumps(obj, default=_default)


def _default(o):
    if isinstance(o, (bytes, bytearray)):
        return o.hex()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not JSON")
