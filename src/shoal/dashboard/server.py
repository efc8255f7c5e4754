"""The dashboard's HTTP server, run by the head in its own event loop (aiohttp).

The head runs it as a service (:class:`DashboardService`, named by the ``dashboard_service``
setting; see ``shoal._private.head.services``): ``bind()`` takes the port before the head
says READY (so the URL it prints is true); ``start()`` imports aiohttp and starts answering
afterwards, off the start's critical path. Connections pass :mod:`gate` (a deadline and a
size for the first request head, caps per source) before aiohttp sees them; routes are listed
in ``docs/dashboard.md``; every request passes :mod:`auth` first.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket

from .._private.head.services import HeadContext, HeadQueries, ServiceBindError
from .._private.wire.config import config
from . import auth

log = logging.getLogger(__name__)

class DashboardBindError(ServiceBindError):
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


class Serving:
    """A started dashboard: the listening server, its gate, aiohttp's runner and the jobs."""

    def __init__(self, server: asyncio.AbstractServer, gate, runner, jobs=None) -> None:
        self.server = server
        self.gate = gate
        self.runner = runner
        self.jobs = jobs

    async def close(self) -> None:
        """Stop accepting, drop the connections still in the gate, then let aiohttp close
        the ones it serves (a request in progress has a few seconds to finish); jobs still
        running are stopped first (their followers see the end)."""
        self.server.close()
        if self.jobs is not None:
            await self.jobs.close()
        self.gate.close()
        await self.runner.cleanup()
        await asyncio.wait_for(self.server.wait_closed(), SHUTDOWN_TIMEOUT_S)


SHUTDOWN_TIMEOUT_S = 5.0


async def serve(sock: socket.socket, queries: HeadQueries, token: str,
                head: HeadContext | None = None, url: str = "") -> Serving:
    """Answer on ``sock`` (through :mod:`gate`) until the returned value is closed; with
    ``head`` (its session), also the Jobs API."""
    from aiohttp import web

    from .gate import Gate
    from .routes import build_app

    host, port = sock.getsockname()[:2]
    extra = tuple(h.strip() for h in config.dashboard_allowed_hosts.split(",") if h.strip())
    policy = auth.Policy(token=token, host=host, port=port, extra_hosts=extra)
    jobs = None
    if head is not None and head.session_dir:
        from .jobs.manager import JobManager

        jobs = JobManager(queries, head.session_dir, head.head_address, head.node_id, url)
    app = build_app(queries, policy, jobs)
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           keepalive_timeout=config.dashboard_keepalive_timeout_s,
                           shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    gate = Gate(runner.server, lambda headers, cookies: policy.token_ok(headers, cookies)[0])
    try:
        server = await asyncio.get_running_loop().create_server(gate, sock=sock)
    except BaseException:
        await runner.cleanup()
        raise
    log.info("dashboard serving at %s:%d", host, port)
    return Serving(server, gate, runner, jobs)


class DashboardService:
    """The dashboard as a head service: bound before READY, started after it."""

    def __init__(self) -> None:
        self.url = ""
        self.sock: socket.socket | None = None
        self.serving: Serving | None = None

    def bind(self, host: str, port: int | None, advertise_ip: str) -> str:
        self.sock = bind(host, port)
        self.url = url_of(self.sock, advertise_ip)
        return self.url

    async def start(self, head: HeadContext) -> None:
        try:
            # The import (~0.2 s) runs in a thread so that the head answers meanwhile.
            await head.loop.run_in_executor(None, _import_web)
            self.serving = await serve(self.sock, head.queries, head.token, head, self.url)
        except BaseException:
            self.sock.close()
            raise

    async def stop(self) -> None:
        if self.serving is not None:
            serving, self.serving = self.serving, None
            await serving.close()


def _import_web() -> None:
    import aiohttp.web  # noqa: F401

    from . import routes  # noqa: F401
    from .jobs import routes as job_routes  # noqa: F401
