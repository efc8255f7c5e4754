"""The dashboard's gate (issue 13 item 8), from raw sockets, against the real dashboard
service (aiohttp on a real socket, in an event loop of its own thread)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import http.client
import logging
import os
import socket
import threading
import time

import pytest

from shoal._private.head.services import HeadContext, HeadQueries
from shoal._private.wire import auth as wire_auth
from shoal.dashboard import server
from tests.conftest import wait_for_condition

TOKEN = "ab" * 32
WAIT = 5.0


class Loop:
    """An event loop running in a thread of its own, as the head's runs in its process."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def dashboard():
    """The dashboard service started as the head starts it; yields (service, port)."""
    loop = Loop()
    svc = server.DashboardService()
    try:
        svc.bind("127.0.0.1", 0, "127.0.0.1")
        port = svc.sock.getsockname()[1]
        loop.run(svc.start(HeadContext(HeadQueries(None), TOKEN, loop.loop)))
        yield svc, port
    finally:
        loop.run(svc.stop())
        loop.close()


def raw(port) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT)


def closed_by_peer(s: socket.socket, timeout=WAIT) -> bytes:
    """What the server sent before it closed ``s``; fails the test if it has not closed it
    within ``timeout``."""
    s.settimeout(timeout)
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {timeout} s")
    return got


def get(port, path="/api/whoami", headers=None, conn=None):
    """A real HTTP GET (http.client, keep-alive); returns (status, body, connection)."""
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.read(), conn


def head(port, path="/api/whoami", extra=""):
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n").encode()


def test_idle_connections_from_one_source_evict_themselves_not_a_real_request(monkeypatch):
    monkeypatch.setenv("SHOAL_MAX_PENDING_PER_SOURCE", "16")
    monkeypatch.setenv("SHOAL_MAX_PENDING_CONNECTIONS", "32")
    with dashboard() as (svc, port):
        idle = [raw(port) for _ in range(200)]
        try:
            status, body, conn = get(port)
            assert status == 200 and b'"loopback": true' in body
            conn.close()
            # The oldest idle connections were dropped, without a byte of answer; the newest
            # (at most the cap) are still waiting for their request.
            for s in idle[:-16]:
                assert closed_by_peer(s) == b""
            assert len(svc.serving.gate.waiting) <= 16
        finally:
            for s in idle:
                s.close()


def test_a_half_sent_head_is_dropped_at_the_deadline_and_others_are_served(monkeypatch):
    monkeypatch.setenv("SHOAL_DASHBOARD_HEADER_TIMEOUT_S", "0.5")
    with dashboard() as (svc, port):
        stalled = raw(port)
        start = time.monotonic()
        stalled.sendall(head(port)[:30])  # the request line and half the Host header
        status, _, conn = get(port)  # served meanwhile, and not on the clock once served
        assert status == 200
        assert closed_by_peer(stalled) == b""
        assert time.monotonic() - start >= 0.45
        assert get(port, conn=conn)[0] == 200
        conn.close()
        stalled.close()


def test_an_over_long_head_is_answered_431(monkeypatch, caplog):
    monkeypatch.setenv("SHOAL_DASHBOARD_MAX_HEADER_BYTES", "2048")
    monkeypatch.setattr(wire_auth, "refusals", wire_auth.RateLimitedLog())  # a fresh budget
    with dashboard() as (svc, port), caplog.at_level(logging.WARNING):
        s = raw(port)
        s.sendall(head(port, extra="X-Pad: " + "a" * 3000 + "\r\n"))  # each line < aiohttp's 8190
        answer = closed_by_peer(s)
        assert answer.startswith(b"HTTP/1.1 431 ") and b"over 2048 bytes" in answer
        s.close()
        s = raw(port)
        s.sendall(b"GET / HTTP/1.1\r\n" + b"X-Pad: a\r\n" * 300)  # no end in sight
        assert closed_by_peer(s).startswith(b"HTTP/1.1 431 ")
        s.close()
        # A head just under the cap, with a pipelined request after it, is served whole.
        s = raw(port)
        first = head(port, "/static/style.css", "X-Pad: " + "a" * 1800 + "\r\n")
        assert len(first) < 2048
        s.sendall(first + head(port, extra="Connection: close\r\n"))
        answer = closed_by_peer(s)
        assert answer.count(b"HTTP/1.1 200 OK") == 2 and b'"loopback": true' in answer
        s.close()
    assert any("dashboard: refused connection" in r.getMessage() for r in caplog.records)
    assert all(r.exc_info is None for r in caplog.records)


def test_keep_alive_then_idle_keep_alive_connections_are_closed(monkeypatch):
    monkeypatch.setenv("SHOAL_DASHBOARD_KEEPALIVE_TIMEOUT_S", "0.5")
    with dashboard() as (svc, port):
        status, css, conn = get(port, "/static/style.css")
        assert status == 200 and b"{" in css
        sock = conn.sock
        status, body, _ = get(port, "/", conn=conn)
        assert status == 200 and b"<html" in body.lower()
        assert conn.sock is sock  # the same connection served both
        assert closed_by_peer(sock) == b""  # idle past the keep-alive timeout
        wait_for_condition(lambda: not svc.serving.gate.open_by_source, timeout=WAIT)
        conn.close()


def test_open_connections_per_source_are_capped_except_for_token_holders(monkeypatch):
    monkeypatch.setenv("SHOAL_DASHBOARD_MAX_OPEN_PER_SOURCE", "3")
    with dashboard() as (svc, port):
        held = [get(port)[2] for _ in range(3)]  # three keep-alive connections, open
        s = raw(port)
        s.sendall(head(port))
        answer = closed_by_peer(s)
        assert answer.startswith(b"HTTP/1.1 503 ") and b"too many" in answer
        s.close()
        status, body, conn = get(port, headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and b'"authenticated": true' in body
        cookie = f"shoal_dashboard={server.auth.cookie_value(TOKEN)}"
        status, body, conn2 = get(port, headers={"Cookie": cookie})
        assert status == 200 and b'"authenticated": true' in body
        for c in [conn, conn2, *held]:
            c.close()
        gate = svc.serving.gate
        wait_for_condition(lambda: not gate.open_by_source, timeout=WAIT)
        assert get(port)[0] == 200  # room again


@pytest.mark.parametrize("native", [True, False], ids=["sendfile", "sendfile-fallback"])
def test_a_file_response_goes_through_the_gate(native, tmp_path, monkeypatch):
    """aiohttp's FileResponse uses loop.sendfile; without native sendfile asyncio's fallback
    swaps the transport's protocol for its own and back, which the gate must survive."""
    from aiohttp import web

    from shoal.dashboard.gate import Gate

    swaps = []

    class Fallback(asyncio.base_events._SendfileFallbackProtocol):
        def __init__(self, transp):
            swaps.append(type(transp.get_protocol()).__name__)
            super().__init__(transp)

    monkeypatch.setattr(asyncio.base_events, "_SendfileFallbackProtocol", Fallback)
    if not native:
        def unavailable(*_a, **_k):
            raise asyncio.SendfileNotAvailableError("the test says no")

        monkeypatch.setattr(asyncio.selector_events.BaseSelectorEventLoop,
                            "_sendfile_native", unavailable)
    data = os.urandom(3 * 1024 * 1024 + 17)  # several of the fallback's 16 KiB blocks
    (tmp_path / "blob.bin").write_bytes(data)

    async def start(sock):
        async def blob(_request):
            return web.FileResponse(tmp_path / "blob.bin")

        app = web.Application()
        app.router.add_get("/blob", blob)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        gate = Gate(runner.server)
        srv = await asyncio.get_running_loop().create_server(gate, sock=sock)
        return server.Serving(srv, gate, runner)

    loop = Loop()
    sock = server.bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    serving = loop.run(start(sock))
    try:
        status, body, conn = get(port, "/blob")
        assert status == 200 and body == data
        assert get(port, "/blob", conn=conn)[1] == data  # kept alive after the swap
        assert serving.gate.open_by_source == {"127.0.0.1": 1}
        assert swaps == ([] if native else ["_Served", "_Served"])
        conn.close()
        wait_for_condition(lambda: not serving.gate.open_by_source, timeout=WAIT)
    finally:
        loop.run(serving.close())
        loop.close()


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_stop_closes_every_connection_and_leaks_nothing(caplog):
    before = _fds()
    with caplog.at_level(logging.WARNING):
        with dashboard() as (svc, port):
            waiting = raw(port)  # in the gate
            waiting.sendall(b"GET / HTTP/1.1\r\n")
            # Handed to aiohttp and kept alive; accepted after ``waiting`` (in order).
            status, _, served = get(port)
            assert status == 200
        # Stopped: both connections closed by the server, the port refuses.
        assert closed_by_peer(waiting) == b""
        assert closed_by_peer(served.sock) == b""
        with pytest.raises(ConnectionRefusedError):
            raw(port)
        waiting.close()
        served.close()
        gc.collect()
    assert _fds() <= before
    assert not [r for r in caplog.records if "destroyed" in r.getMessage()
                or r.levelno >= logging.ERROR]
