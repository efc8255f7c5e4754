"""Unit tests for shoal._private.wire.transport over real asyncio Unix sockets."""

from __future__ import annotations

import array
import asyncio
import contextlib
import os
import stat

import pytest

from shoal._private.wire import transport
from shoal._private.wire.transport import AuthError, Connection, ConnectionLost, RemoteError

TOKEN = b"cluster-token-0123456789"
WAIT = 5.0  # upper bound for anything that should happen promptly


def run(coro):
    """Run a test coroutine on a fresh loop, failing (not hanging) if it stalls."""
    return asyncio.run(asyncio.wait_for(coro, 20))


@contextlib.asynccontextmanager
async def serving(tmp_path, handler):
    path = str(tmp_path / "s.sock")
    server = await transport.serve_unix(path, handler, TOKEN)
    try:
        yield "unix:" + path
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def connected(address, token=TOKEN, **kw):
    conn = await transport.connect(address, token, timeout=WAIT, **kw)
    try:
        yield conn
    finally:
        conn.close()
        await asyncio.wait_for(conn.lost, WAIT)


async def raw_connection(address) -> Connection:
    """A client connection that has not said hello."""
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_unix_connection(
        lambda: Connection(None, TOKEN, server=False), path=address[len("unix:"):])
    return conn


def echo_handler(calls=None):
    def handler(conn, kind, body, bufs, req_id):
        if calls is not None:
            calls.append((kind, body, req_id))
        if kind == "boom":
            raise ValueError(f"boom {body}")
        conn.reply(req_id, {"kind": kind, "body": body, "peer": conn.peer}, bufs)

    return handler


# --------------------------------------------------------------------------- request / reply


def test_request_gets_its_reply_and_peer_sees_hello_fields(tmp_path):
    async def main():
        async with serving(tmp_path, echo_handler()) as addr:
            async with connected(addr, hello={"role": "worker", "id": b"\x01\x02"}) as conn:
                body, bufs = await conn.request("ping", {"n": 1, "b": b"\x00\xff"}, timeout=WAIT)
                assert body == {"kind": "ping", "body": {"n": 1, "b": b"\x00\xff"},
                                "peer": {"role": "worker", "id": b"\x01\x02"}}
                assert bufs == []
                # The token is not exposed to handlers through conn.peer.
                assert "token" not in body["peer"]

    run(main())


def test_raw_payload_buffers_come_back_byte_identical(tmp_path):
    payloads = [
        b"",
        bytes(range(256)),
        bytearray(b"\x00" * 10),
        memoryview(b"view of bytes"),
        os.urandom(3 * 1024 * 1024 + 17),  # larger than any socket buffer
        b"last",
    ]

    async def main():
        async with serving(tmp_path, echo_handler()) as addr:
            async with connected(addr) as conn:
                body, bufs = await conn.request("data", {"x": 1}, payloads, timeout=WAIT)
                assert [bytes(b) for b in bufs] == [bytes(p) for p in payloads]
                # The connection's framing is intact afterwards.
                body, bufs = await conn.request("again", None, [b"ok"], timeout=WAIT)
                assert (body["kind"], bufs) == ("again", [b"ok"])

    run(main())


def test_many_concurrent_requests_each_get_their_own_reply(tmp_path):
    async def main():
        async with serving(tmp_path, echo_handler()) as addr:
            async with connected(addr) as conn:
                replies = await asyncio.wait_for(asyncio.gather(
                    *(conn.request("n", i, [str(i).encode()]) for i in range(200))), WAIT)
                for i, (body, bufs) in enumerate(replies):
                    assert body["body"] == i
                    assert bufs == [str(i).encode()]

    run(main())


def test_one_way_message_reaches_the_handler(tmp_path):
    async def main():
        got = asyncio.get_running_loop().create_future()

        def handler(conn, kind, body, bufs, req_id):
            if not got.done():
                got.set_result((kind, body, bufs, req_id))

        async with serving(tmp_path, handler) as addr:
            async with connected(addr) as conn:
                assert conn.send("note", {"k": "v"}, [b"payload"]) is None
                kind, body, bufs, req_id = await asyncio.wait_for(got, WAIT)
                assert (kind, body, bufs, req_id) == ("note", {"k": "v"}, [b"payload"], 0)

    run(main())


def test_async_handler_replies_and_requests_are_multiplexed(tmp_path):
    async def main():
        release = asyncio.Event()

        async def handler(conn, kind, body, bufs, req_id):
            if kind == "slow":
                await release.wait()  # needs a later request on the same connection
            elif kind == "release":
                release.set()
            await asyncio.sleep(0)
            conn.reply(req_id, {"done": kind}, bufs)

        async with serving(tmp_path, handler) as addr:
            async with connected(addr) as conn:
                slow = asyncio.ensure_future(conn.request("slow", None, [b"s"]))
                body, _ = await conn.request("release", timeout=WAIT)
                assert body == {"done": "release"}
                assert await asyncio.wait_for(slow, WAIT) == ({"done": "slow"}, [b"s"])

    run(main())


def test_server_can_request_from_the_client(tmp_path):
    async def main():
        async def server_handler(conn, kind, body, bufs, req_id):
            answer, _ = await conn.request("question", {"q": body}, timeout=WAIT)
            conn.reply(req_id, {"client said": answer})

        def client_handler(conn, kind, body, bufs, req_id):
            conn.reply(req_id, {"a": body["q"] * 2})

        async with serving(tmp_path, server_handler) as addr:
            async with connected(addr, handler=client_handler) as conn:
                body, _ = await conn.request("ask", 21, timeout=WAIT)
                assert body == {"client said": {"a": 42}}

    run(main())


def test_request_to_a_peer_without_handler_fails_with_remote_error(tmp_path):
    async def main():
        async def server_handler(conn, kind, body, bufs, req_id):
            try:
                await conn.request("anything", timeout=WAIT)
            except RemoteError as e:
                conn.reply(req_id, {"error": str(e)})

        async with serving(tmp_path, server_handler) as addr:
            async with connected(addr) as conn:  # no handler on this side
                body, _ = await conn.request("go", timeout=WAIT)
                assert "no handler" in body["error"]

    run(main())


# --------------------------------------------------------------------------- handler errors


def test_handler_exception_becomes_remote_error_and_connection_survives(tmp_path):
    async def main():
        async with serving(tmp_path, echo_handler()) as addr:
            async with connected(addr) as conn:
                with pytest.raises(RemoteError) as info:
                    await conn.request("boom", 7, timeout=WAIT)
                assert "ValueError" in str(info.value)
                assert "boom 7" in str(info.value)
                assert "boom 7" in info.value.body["error"]
                assert not conn.closed
                body, _ = await conn.request("still-there", timeout=WAIT)
                assert body["kind"] == "still-there"

    run(main())


def test_explicit_reply_error_reaches_the_requester_with_extra_fields(tmp_path):
    async def main():
        def handler(conn, kind, body, bufs, req_id):
            conn.reply_error(req_id, "object is gone", oid=b"\x07")

        async with serving(tmp_path, handler) as addr:
            async with connected(addr) as conn:
                with pytest.raises(RemoteError, match="object is gone") as info:
                    await conn.request("get", timeout=WAIT)
                assert info.value.body == {"error": "object is gone", "oid": b"\x07"}

    run(main())


def test_async_handler_exception_becomes_remote_error(tmp_path):
    async def main():
        async def handler(conn, kind, body, bufs, req_id):
            await asyncio.sleep(0)
            raise KeyError("missing")

        async with serving(tmp_path, handler) as addr:
            async with connected(addr) as conn:
                with pytest.raises(RemoteError, match="missing"):
                    await conn.request("get", timeout=1.0)

    run(main())


def test_payload_buffer_with_multibyte_items_comes_back_byte_identical(tmp_path):
    doubles = array.array("d", [1.5, 2.5, 3.5])

    async def main():
        async with serving(tmp_path, echo_handler()) as addr:
            async with connected(addr) as conn:
                _, bufs = await conn.request("data", None, [memoryview(doubles), b"after"],
                                             timeout=1.0)
                assert bufs == [doubles.tobytes(), b"after"]

    run(main())


# --------------------------------------------------------------------------- authentication


def test_socket_file_is_private_and_a_stale_one_is_replaced(tmp_path):
    stale = tmp_path / "s.sock"
    stale.write_bytes(b"left over from a crashed daemon")

    async def main():
        async with serving(tmp_path, echo_handler()) as addr:
            assert stat.S_IMODE(os.stat(stale).st_mode) == 0o600
            async with connected(addr) as conn:
                body, _ = await conn.request("hi", timeout=WAIT)
                assert body["kind"] == "hi"

    run(main())


def test_wrong_token_is_refused_with_auth_error(tmp_path):
    calls = []

    async def main():
        async with serving(tmp_path, echo_handler(calls)) as addr:
            with pytest.raises(AuthError) as info:
                await transport.connect(addr, b"not-the-token", timeout=WAIT)
            msg = str(info.value)
            assert "token" in msg
            assert "wrong" in msg
            assert addr in msg
            # The right token still works afterwards.
            async with connected(addr) as conn:
                await conn.request("ok", timeout=WAIT)

    run(main())
    assert [c[0] for c in calls] == ["ok"]


def test_non_hello_first_message_is_refused_and_connection_closed(tmp_path):
    calls = []

    async def main():
        async with serving(tmp_path, echo_handler(calls)) as addr:
            conn = await raw_connection(addr)
            try:
                with pytest.raises(RemoteError) as info:
                    await conn.request("ping", {"sneaky": True}, timeout=WAIT)
                assert info.value.body.get("auth") is True
                assert "hello" in str(info.value)
                await asyncio.wait_for(conn.lost, WAIT)  # the server hung up
                assert conn.closed
                with pytest.raises(ConnectionLost):
                    conn.send("ping")
            finally:
                conn.close()

    run(main())
    assert calls == []


def test_one_way_message_before_hello_is_not_delivered(tmp_path):
    calls = []

    async def main():
        async with serving(tmp_path, echo_handler(calls)) as addr:
            conn = await raw_connection(addr)
            try:
                conn.send("note", {"x": 1})
                await asyncio.wait_for(conn.lost, WAIT)
            finally:
                conn.close()

    run(main())
    assert calls == []


# --------------------------------------------------------------------------- connection loss


def test_pending_requests_fail_with_connection_lost_when_the_server_closes(tmp_path):
    async def main():
        loop = asyncio.get_running_loop()
        server_side = loop.create_future()
        hung = []

        def handler(conn, kind, body, bufs, req_id):
            hung.append(req_id)  # never replied to
            if len(hung) == 2 and not server_side.done():
                server_side.set_result(conn)

        async with serving(tmp_path, handler) as addr:
            conn = await transport.connect(addr, TOKEN, timeout=WAIT)
            closed_cbs = []
            conn.close_callbacks.append(closed_cbs.append)
            reqs = [asyncio.ensure_future(conn.request("hang", i)) for i in range(2)]
            srv_conn = await asyncio.wait_for(server_side, WAIT)
            srv_conn.close()

            results = await asyncio.wait_for(
                asyncio.gather(*reqs, return_exceptions=True), WAIT)
            assert [type(r) for r in results] == [ConnectionLost, ConnectionLost]
            await asyncio.wait_for(conn.lost, WAIT)
            assert conn.closed
            assert closed_cbs == [conn]
            with pytest.raises(ConnectionLost):
                await conn.request("after-close", timeout=WAIT)
            assert conn._pending == {}

    run(main())


def test_closing_the_client_fails_its_own_pending_requests(tmp_path):
    async def main():
        loop = asyncio.get_running_loop()
        arrived = loop.create_future()

        def handler(conn, kind, body, bufs, req_id):
            arrived.done() or arrived.set_result(True)

        async with serving(tmp_path, handler) as addr:
            conn = await transport.connect(addr, TOKEN, timeout=WAIT)
            req = asyncio.ensure_future(conn.request("hang"))
            await asyncio.wait_for(arrived, WAIT)
            conn.close()
            with pytest.raises(ConnectionLost):
                await asyncio.wait_for(req, WAIT)

    run(main())


def test_connecting_to_a_missing_socket_raises_os_error(tmp_path):
    async def main():
        with pytest.raises(OSError):
            await transport.connect("unix:" + str(tmp_path / "nobody.sock"), TOKEN, timeout=WAIT)

    run(main())
