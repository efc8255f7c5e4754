"""Fuzzing the frame decoder and the server's handshake (hypothesis, bounded time).

Whatever bytes arrive, the decoder either yields well-formed frames or refuses with
``BadFrame``; a server connection fed arbitrary bytes never raises, never dispatches to its
handler before a valid proof, and never buffers more than the pre-authentication limit.
"""

from __future__ import annotations

import asyncio
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal._private.wire import auth, transport
from shoal._private.wire.config import config

TOKEN = b"fuzz-token"
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


class FakeTransport:
    def __init__(self):
        self.out = bytearray()
        self.closed = False

    def get_extra_info(self, name, default=None):
        return ("203.0.113.9", 4242) if name == "peername" else default

    def write(self, data):
        self.out += data

    def writelines(self, parts):
        for p in parts:
            self.out += p

    def get_write_buffer_size(self):
        return 0

    def close(self):
        self.closed = True

    abort = close


def _feed(chunks):
    calls = []
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        conn = transport.Connection(lambda *a: calls.append(a), TOKEN, server=True)
        t = FakeTransport()
        conn.connection_made(t)
        for c in chunks:
            if conn.closed or t.closed:
                break
            conn.data_received(c)  # must never raise
            assert len(conn._buf) <= config.max_handshake_frame_bytes + 8
        conn.connection_lost(None)
        return conn, calls
    finally:
        asyncio.set_event_loop(None)
        loop.close()


frames = st.builds(
    lambda kind, req_id, body, bufs: b"".join(transport._frame(kind, req_id, body, bufs)),
    st.sampled_from(["hello", "auth", "ping", "r", "e", "free", "read_chunk"]),
    st.integers(0, 2**32), st.one_of(st.none(), st.dictionaries(
        st.sampled_from(["nonce", "proof", "token", "role", "oid"]),
        st.one_of(st.binary(max_size=70), st.text(max_size=20), st.integers(-2**63, 2**63 - 1)), max_size=4)),
    st.lists(st.binary(max_size=50), max_size=3))


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=200), frames), max_size=6))
def test_server_survives_any_bytes_and_serves_nothing_unauthenticated(chunks):
    conn, calls = _feed(chunks)
    assert calls == []  # no valid proof can be guessed, so nothing reached the handler
    assert not conn._authed


@FUZZ
@given(st.binary(min_size=8, max_size=300))
def test_decoder_accepts_only_consistent_frames(data):
    flen, hlen = struct.unpack(">II", data[:8])
    try:
        transport.check_prefix(flen, hlen, 1 << 16)
        kind, req_id, body, lens = transport.decode_header(flen, data[8:8 + hlen])
    except transport.BadFrame:
        return
    assert isinstance(kind, str) and isinstance(req_id, int) and req_id >= 0
    assert 4 + hlen + sum(lens) == flen


@FUZZ
@given(st.binary(max_size=100), st.binary(max_size=100))
def test_frames_round_trip_through_the_decoder(a, b):
    raw = b"".join(transport._frame("k", 7, {"x": a}, [a, b]))
    flen, hlen = struct.unpack(">II", raw[:8])
    assert transport.decode_header(flen, raw[8:8 + hlen]) == ("k", 7, {"x": a},
                                                              [len(a), len(b)])


@FUZZ
@given(st.binary(min_size=16, max_size=64), st.binary(max_size=40))
def test_a_handshake_with_a_forged_proof_never_authenticates(nonce, forged):
    hello = b"".join(transport._frame("hello", 1, {"nonce": nonce, "role": "x"}, ()))
    proof = b"".join(transport._frame("auth", 2, {"proof": forged}, ()))
    conn, calls = _feed([hello, proof, b"".join(transport._frame("ping", 3, {}, ()))])
    assert calls == [] and not conn._authed


def test_the_real_proof_authenticates_in_the_fuzz_harness():
    """The harness can tell success from failure: a correct proof gets through."""
    nonce = auth.new_nonce()
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        calls = []
        conn = transport.Connection(lambda *a: calls.append(a[1]), TOKEN, server=True)
        t = FakeTransport()
        conn.connection_made(t)
        conn.data_received(b"".join(transport._frame("hello", 1, {"nonce": nonce}, ())))
        flen, hlen = struct.unpack(">II", t.out[:8])
        _, _, body, _ = transport.decode_header(flen, bytes(t.out[8:8 + hlen]))
        p = auth.proof(TOKEN, "client", nonce, body["nonce"])
        conn.data_received(b"".join(transport._frame("auth", 2, {"proof": p}, ())))
        conn.data_received(b"".join(transport._frame("ping", 3, {}, ())))
        assert conn._authed and calls == ["ping"]
        conn.connection_lost(None)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
