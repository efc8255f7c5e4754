"""The runtime's lineage part on its own (runtime.lineage.Lineage): what counts as lost, which
returns keep their task, and what remaking an object does through the parts it is given (the
values part settles an object, the tasks part re-runs its task)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from shoal._private.runtime.lineage import Lineage
from shoal._private.runtime.ownership import PENDING, READY, RefTable, Value
from shoal._private.runtime.values import Values
from shoal._private.wire import serialization

ME = "unix:/tmp/me.sock"
DEAD, ALIVE = b"d" * 28, b"a" * 28
OID = b"o" * 28


class FakeTasks:
    def __init__(self):
        self.resubmitted = []

    def resubmit(self, spec):
        self.resubmitted.append(spec)


class FakeRuntime:
    """The runtime as the lineage and values parts see it: nothing started."""

    ids = worker_id = session_tag = None
    mode = "driver"
    address = ME
    node_id = ALIVE

    def __init__(self, loop=None):
        self.loop = loop
        self.freed = []
        self.refs = RefTable(ME)
        self.lineage = Lineage(self, self.refs)
        self.values = Values(self, self.refs, self.lineage)
        self.tasks = FakeTasks()

    def free_on_node(self, node_id, paths):
        self.freed.append((node_id, paths))


def _spec(**kw):
    base = dict(max_retries=3, attempt=1, num_returns=1, return_ids=[OID], name="make")
    base.update(kw)
    return SimpleNamespace(**base)


def _lost_value():
    return Value(False, path="/dev/shm/shoal-x", node_id=DEAD, size=1 << 20)


def _error_of(entry):
    assert entry.state == READY and entry.value.is_error
    return serialization.deserialize(entry.value.meta, entry.value.bufs)


def test_only_a_segment_on_a_dead_node_is_lost():
    rt = FakeRuntime()
    lin = rt.lineage
    lin.on_head_event({"node": {"node_id": DEAD, "alive": False}})
    lin.on_head_event({"node": {"node_id": ALIVE, "alive": True}})
    assert lin.dead_nodes == {DEAD}
    assert lin.is_lost(_lost_value())
    assert not lin.is_lost(Value(False, path="/dev/shm/y", node_id=ALIVE))
    assert not lin.is_lost(Value(False, b"inline", []))
    assert not lin.is_lost(None)


def test_returns_keep_their_task_unless_it_cannot_be_retried_or_streams():
    rt = FakeRuntime()
    rt.refs.new_owned(OID)
    rt.lineage.keep(_spec(max_retries=0))
    assert rt.refs.owned[OID].lineage is None
    rt.lineage.keep(_spec(num_returns="streaming"))
    assert rt.refs.owned[OID].lineage is None
    spec = _spec()
    rt.lineage.keep(spec)
    assert rt.refs.owned[OID].lineage is spec


def test_a_lost_put_object_becomes_an_object_lost_error_through_the_values_part():
    rt = FakeRuntime()
    entry = rt.refs.new_owned(OID)
    rt.refs.set_value(OID, _lost_value())
    woken = []
    entry.waiters.append(woken.append)
    rt.lineage.reconstruct(OID, entry)
    err = _error_of(rt.refs.owned[OID])
    assert type(err).__name__ == "ObjectLostError" and "put()" in str(err)
    assert len(woken) == 1 and woken[0].is_error
    assert rt.tasks.resubmitted == []


def test_lineage_with_retries_spent_is_an_error_and_is_not_rerun():
    rt = FakeRuntime()
    entry = rt.refs.new_owned(OID)
    rt.refs.set_value(OID, _lost_value())
    entry.lineage = _spec(max_retries=1, attempt=2)
    rt.lineage.reconstruct(OID, entry)
    err = _error_of(rt.refs.owned[OID])
    assert type(err).__name__ == "ObjectReconstructionFailedMaxAttemptsExceededError"
    assert rt.tasks.resubmitted == []


def test_a_lost_return_goes_back_to_pending_and_its_task_runs_again():
    rt = FakeRuntime()
    entry = rt.refs.new_owned(OID)
    rt.refs.set_value(OID, _lost_value())
    entry.lineage = spec = _spec()
    rt.lineage.reconstruct(OID, entry)
    assert entry.state == PENDING and entry.value is None
    assert rt.tasks.resubmitted == [spec]


def test_live_value_waits_for_the_remade_copy():
    async def main():
        rt = FakeRuntime(asyncio.get_running_loop())
        rt.lineage.on_head_event({"node": {"node_id": DEAD, "alive": False}})
        entry = rt.refs.new_owned(OID)
        rt.refs.set_value(OID, _lost_value())
        entry.lineage = _spec()
        reading = asyncio.ensure_future(rt.lineage.live_value(OID, entry))
        await asyncio.sleep(0)
        assert not reading.done() and len(rt.tasks.resubmitted) == 1
        fresh = Value(False, path="/dev/shm/shoal-x", node_id=ALIVE, size=1 << 20)
        rt.values.set_one(OID, fresh, None)  # the rerun's reply
        return await asyncio.wait_for(reading, 1)

    assert asyncio.run(main()).node_id == ALIVE


def test_a_value_nobody_wants_is_freed_where_it_lies():
    rt = FakeRuntime()
    rt.values.set_one(OID, Value(False, path="/dev/shm/z", node_id=ALIVE), None)
    assert rt.freed == [(ALIVE, ["/dev/shm/z"])]
