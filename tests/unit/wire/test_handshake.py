"""The handshake and the limits before it, from raw sockets (issue 13 items 7, 8, 9, 10, 11)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct

import pytest

from shoal._private.wire import auth, transport
from shoal._private.wire.transport import AuthError, _frame

TOKEN = b"cluster-token-0123456789"
WAIT = 5.0


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def handler(conn, kind, body, bufs, req_id):
    conn.reply(req_id, {"kind": kind, "n": sum(len(b) for b in bufs)})


@contextlib.asynccontextmanager
async def tcp_server():
    server = await transport.serve_tcp("127.0.0.1", 0, handler, TOKEN)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def raw(port):
    return await asyncio.open_connection("127.0.0.1", port)


async def closed_by_peer(reader, timeout=WAIT) -> bool:
    """True once the server has closed (EOF or reset) without us sending anything more."""
    try:
        while await asyncio.wait_for(reader.read(65536), timeout):
            pass
    except ConnectionResetError:
        pass
    return True


def frame(kind, req_id, body, bufs=()):
    return b"".join(_frame(kind, req_id, body, list(bufs)))


async def read_frame(reader):
    flen, hlen = struct.unpack(">II", await reader.readexactly(8))
    rest = await reader.readexactly(flen - 4)
    return transport.decode_header(flen, rest[:hlen])


async def authed_raw(port):
    """A raw client that does the handshake by hand."""
    r, w = await raw(port)
    mine = auth.new_nonce()
    w.write(frame("hello", 1, {"role": "tool", "nonce": mine}))
    kind, _, body, _ = await read_frame(r)
    assert kind == "r"
    w.write(frame("auth", 2, {"proof": auth.proof(TOKEN, "client", mine, body["nonce"])}))
    kind, _, body, _ = await read_frame(r)
    assert kind == "r" and body == {"ok": True}
    return r, w


def test_the_token_never_crosses_the_wire_and_a_fake_server_is_refused():
    """A listener without the token (a process holding a dead head's port) gets a nonce only,
    and the client refuses it instead of sending anything more."""
    async def main():
        got = bytearray()
        done = asyncio.Event()

        async def fake(reader, writer):
            got.extend(await reader.read(65536))
            flen, hlen = struct.unpack(">II", bytes(got[:8]))
            _, req_id, _, _ = transport.decode_header(flen, bytes(got[8:8 + hlen]))
            writer.write(frame("r", req_id, {"nonce": b"n" * 32, "proof": b"p" * 32}))
            await writer.drain()
            with contextlib.suppress(Exception):  # whatever else the client sends
                got.extend(await asyncio.wait_for(reader.read(65536), WAIT))
            writer.close()
            done.set()

        srv = await asyncio.start_server(fake, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        with pytest.raises(AuthError, match="did not prove"):
            await transport.connect(f"127.0.0.1:{port}", TOKEN, timeout=WAIT)
        await asyncio.wait_for(done.wait(), WAIT)
        srv.close()
        await srv.wait_closed()
        assert TOKEN not in bytes(got)
        assert b"auth" not in bytes(got)  # no proof was sent to it either
    run(main())


def test_a_real_client_and_server_authenticate_each_other():
    async def main():
        async with tcp_server() as port:
            conn = await transport.connect(f"127.0.0.1:{port}", TOKEN, timeout=WAIT)
            body, _ = await conn.request("ping", timeout=WAIT)
            assert body["kind"] == "ping"
            conn.close()
            with pytest.raises(AuthError, match="did not prove"):
                await transport.connect(f"127.0.0.1:{port}", b"wrong", timeout=WAIT)
    run(main())


def test_a_hello_carrying_a_token_is_refused_without_looking_at_it():
    async def main():
        async with tcp_server() as port:
            r, w = await raw(port)
            w.write(frame("hello", 1, {"token": TOKEN}))
            kind, _, body, _ = await read_frame(r)
            assert kind == "e" and body["auth"] is True
            assert await closed_by_peer(r)
            w.close()
    run(main())


def test_a_second_hello_on_an_authenticated_connection_ends_it():
    async def main():
        async with tcp_server() as port:
            r, w = await authed_raw(port)
            w.write(frame("hello", 3, {"token": b"wrong", "nonce": auth.new_nonce()}))
            kind, _, body, _ = await read_frame(r)
            assert kind == "e" and "already authenticated" in body["error"]
            assert await closed_by_peer(r)
            w.close()
    run(main())


def test_an_oversized_frame_before_hello_is_dropped_without_buffering():
    async def main():
        async with tcp_server() as port:
            r, w = await raw(port)
            w.write(struct.pack(">II", 1 << 30, 10))  # announces 1 GiB, sends 8 bytes
            assert await closed_by_peer(r)  # at once: nothing waits for the rest
            w.close()
    run(main())


def test_authenticated_frames_are_capped_by_the_setting(monkeypatch):
    monkeypatch.setenv("SHOAL_MAX_FRAME_BYTES", str(1 << 20))

    async def main():
        async with tcp_server() as port:
            r, w = await authed_raw(port)
            w.write(frame("echo", 3, {}, [b"x" * (1 << 19)]))  # under the cap: served
            kind, _, body, _ = await read_frame(r)
            assert kind == "r" and body["n"] == 1 << 19
            w.write(struct.pack(">II", (1 << 20) + 1, 10))
            assert await closed_by_peer(r)
            w.close()
    run(main())


def test_malformed_frames_are_dropped_quietly():
    async def main():
        async with tcp_server() as port:
            for junk in (struct.pack(">II", 8, 4) + b"\xc1\xc1\xc1\xc1",  # bad msgpack
                         struct.pack(">II", 6, 2) + b"\x92\x01",  # not 4 fields
                         struct.pack(">II", 2, 9)):  # header longer than the frame
                r, w = await raw(port)
                w.write(junk)
                assert await closed_by_peer(r)
                w.close()
            r, w = await authed_raw(port)  # still serving
            w.close()
    run(main())


def test_a_peer_that_does_not_finish_the_handshake_in_time_is_dropped(monkeypatch):
    monkeypatch.setenv("SHOAL_HANDSHAKE_TIMEOUT_S", "0.3")

    async def main():
        async with tcp_server() as port:
            r, w = await raw(port)
            r2, w2 = await authed_raw(port)
            assert await closed_by_peer(r, timeout=WAIT)
            w2.write(frame("ping", 3, {}))  # an authenticated peer is not on the clock
            kind, _, _, _ = await read_frame(r2)
            assert kind == "r"
            w.close()
            w2.close()
    run(main())


def test_idle_connections_past_the_caps_evict_themselves_not_real_peers(monkeypatch):
    monkeypatch.setenv("SHOAL_MAX_PENDING_PER_SOURCE", "8")
    monkeypatch.setenv("SHOAL_MAX_PENDING_CONNECTIONS", "16")

    async def main():
        async with tcp_server() as port:
            r0, w0 = await authed_raw(port)
            idle = [await raw(port) for _ in range(40)]
            # Only the newest 8 are kept waiting; the others were closed by the server.
            gone = 0
            for r, _w in idle[:-8]:
                assert await closed_by_peer(r)
                gone += 1
            assert gone == 32
            conn = await transport.connect(f"127.0.0.1:{port}", TOKEN, timeout=WAIT)
            await conn.request("ping", timeout=WAIT)
            conn.close()
            w0.write(frame("ping", 3, {}))
            assert (await read_frame(r0))[0] == "r"
            for _r, w in idle:
                w.close()
            w0.close()
    run(main())


def test_refusals_are_logged_at_a_bounded_rate(caplog, monkeypatch):
    monkeypatch.setattr(auth, "refusals", auth.RateLimitedLog(burst=3, window=3600))

    async def main():
        async with tcp_server() as port:
            for _ in range(20):
                r, w = await raw(port)
                w.write(frame("ping", 1, {}))
                assert await closed_by_peer(r)
                w.close()

    with caplog.at_level(logging.WARNING):
        run(main())
    refused = [r for r in caplog.records if "refused connection" in r.getMessage()]
    assert len(refused) == 3
    assert all(r.exc_info is None for r in caplog.records)  # no tracebacks


def test_blocking_handshake_matches_the_server():
    async def main():
        async with tcp_server() as port:
            def client():
                with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
                    transport.handshake_blocking(s, TOKEN, {"role": "pull"})
                    s.sendall(frame("ping", 3, {}))
                    return transport.read_frame_blocking(s, 1 << 16)[0]
            assert await asyncio.to_thread(client) == "r"

            def wrong():
                with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
                    transport.handshake_blocking(s, b"wrong", {"role": "pull"})
            with pytest.raises(AuthError):
                await asyncio.to_thread(wrong)
    run(main())


def _self_signed(tmp_path):
    import shutil
    import subprocess
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=shoal-test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_tls_between_nodes_with_a_self_signed_certificate(tmp_path, monkeypatch):
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("SHOAL_TLS_CERT", str(cert))
    monkeypatch.setenv("SHOAL_TLS_KEY", str(key))

    async def main():
        async with tcp_server() as port:
            conn = await transport.connect(f"127.0.0.1:{port}", TOKEN, timeout=WAIT)
            assert conn.transport.get_extra_info("sslcontext") is not None
            body, _ = await conn.request("ping", timeout=WAIT)
            assert body["kind"] == "ping"
            conn.close()
            r, w = await raw(port)  # a plain-text client gets nothing
            w.write(frame("hello", 1, {"nonce": auth.new_nonce()}))
            assert await closed_by_peer(r)
            w.close()

            def pull():  # the bulk-transfer thread's client side, over TLS too
                s = auth.client_ssl_context().wrap_socket(
                    socket.create_connection(("127.0.0.1", port), timeout=WAIT))
                with s:
                    transport.handshake_blocking(s, TOKEN, {"role": "pull"})
            await asyncio.to_thread(pull)
    run(main())
