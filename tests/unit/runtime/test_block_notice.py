"""A worker's blocking get tells its node only when it really waits (values.Values._blocking):
a value already there, or back at once, lends no CPU; a long wait is bracketed by
worker_blocked / worker_unblocked, also when it is cancelled."""

from __future__ import annotations

import asyncio

import pytest

from shoal._private.runtime.values import BLOCK_NOTICE_S, Values


class FakeRuntime:
    """What the values part takes from its runtime, with node_send recorded."""

    ids = loop = address = node_id = worker_id = session_tag = None
    mode = "worker"

    def __init__(self):
        self.sent: list[str] = []
        self.values = Values(self, refs=None, lineage=None)
        self._blocking = self.values._blocking

    def node_send(self, kind, body):
        self.sent.append(kind)


async def _value(v, delay=0.0):
    if delay:
        await asyncio.sleep(delay)
    return v


def test_a_value_already_there_sends_nothing():
    rt = FakeRuntime()
    assert asyncio.run(rt._blocking(_value(1))) == 1
    assert rt.sent == []


def test_a_real_wait_is_bracketed_by_blocked_and_unblocked():
    rt = FakeRuntime()
    assert asyncio.run(rt._blocking(_value(2, delay=BLOCK_NOTICE_S * 20))) == 2
    assert rt.sent == ["worker_blocked", "worker_unblocked"]


def test_a_failure_after_blocking_still_unblocks():
    rt = FakeRuntime()

    async def fails():
        await asyncio.sleep(BLOCK_NOTICE_S * 20)
        raise KeyError("gone")

    with pytest.raises(KeyError):
        asyncio.run(rt._blocking(fails()))
    assert rt.sent == ["worker_blocked", "worker_unblocked"]


def test_a_cancelled_wait_unblocks_and_cancels_the_inner_work():
    rt = FakeRuntime()
    inner_cancelled = []

    async def forever():
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            inner_cancelled.append(True)
            raise

    async def main():
        t = asyncio.ensure_future(rt._blocking(forever()))
        await asyncio.sleep(BLOCK_NOTICE_S * 20)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    asyncio.run(main())
    assert rt.sent == ["worker_blocked", "worker_unblocked"] and inner_cancelled
