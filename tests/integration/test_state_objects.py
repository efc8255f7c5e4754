"""The state API's objects: ``list_objects`` rows, why each object is alive, filters,
``summarize_objects``, and the ``shoal memory`` text built from the same memory view."""

from __future__ import annotations

import asyncio
import gc
import os

import numpy as np
import pytest

import shoal as ray
from shoal.cli.memory import format_memory, summary_line
from shoal.util import state
from tests.conftest import wait_for_condition

MB = 1024 * 1024


@pytest.fixture(scope="module", autouse=True)
def cluster(shoal_cluster):
    return shoal_cluster


@ray.remote
class Signal:
    def __init__(self):
        self.event = asyncio.Event()

    async def wait(self):
        await self.event.wait()

    async def send(self):
        self.event.set()


@ray.remote
class Keeper:
    def keep(self, boxed):
        self.kept = boxed[0]
        return os.getpid()

    def drop(self):
        del self.kept


@ray.remote
def wait_then_sum(arr, signal):
    ray.get(signal.wait.remote())
    return int(arr.sum())


@ray.remote
def make_seven():
    return 7


def rows_of(ref_or_hex, detail: bool = True) -> list[dict]:
    oid = ref_or_hex if isinstance(ref_or_hex, str) else ref_or_hex.hex()
    return state.list_objects(filters=[("object_id", "=", oid)], detail=detail)


def only_row(ref_or_hex) -> dict:
    rows = rows_of(ref_or_hex)
    assert len(rows) == 1, rows
    return rows[0]


def reference_types(ref_or_hex) -> list[str]:
    return sorted(r["reference_type"] for r in rows_of(ref_or_hex))


def test_put_object_is_a_local_reference():
    value = np.arange(1000, dtype=np.int64)  # 8000 bytes: inline, in the driver's memory
    ref = ray.put(value)
    row = only_row(ref)
    assert row["reference_type"] == state.LOCAL_REFERENCE
    assert row["call_site"] == "(put)"
    assert value.nbytes <= row["object_size"] < value.nbytes + 1024
    assert row["type"] == "DRIVER" and row["pid"] == os.getpid()
    assert row["task_status"] == "FINISHED"
    assert row["in_shared_memory"] is False and row["spilled"] is False
    assert row["store_node_id"] is None
    assert row["node_id"] == ray.get_runtime_context().get_node_id()
    assert row["ip"] and row["owner_address"]
    del ref
    gc.collect()
    wait_for_condition(lambda: not rows_of(row["object_id"]), msg="(freed object listed)")


def test_rows_without_detail_have_rays_fields():
    ref = ray.put("fields")
    (row,) = rows_of(ref, detail=False)
    assert list(row) == ["object_id", "object_size", "task_status", "attempt_number",
                         "reference_type", "call_site", "type", "pid", "ip"]  # Ray 2.60's
    assert row["object_id"] == ref.hex() and len(row["object_id"]) == 56


def test_large_object_is_in_shared_memory():
    value = np.ones(4 * MB, dtype=np.uint8)
    ref = ray.put(value)
    row = only_row(ref)
    assert row["in_shared_memory"] is True and row["spilled"] is False
    assert value.nbytes <= row["object_size"] < value.nbytes + 4096
    assert row["store_node_id"] == row["node_id"]
    text = format_memory(state.memory_report())
    line = next(x for x in text.splitlines() if x.startswith(ref.hex()))
    assert "4.00MiB" in line and "shared memory" in line and "LOCAL_REFERENCE" in line


def test_captured_object_after_its_ref_is_dropped():
    inner = ray.put("inner value")
    outer = ray.put([inner])
    inner_id = inner.hex()
    del inner
    gc.collect()
    wait_for_condition(lambda: reference_types(inner_id) == [state.CAPTURED_IN_OBJECT],
                       msg="(inner object not CAPTURED_IN_OBJECT)")
    assert only_row(outer)["reference_type"] == state.LOCAL_REFERENCE
    del outer
    gc.collect()
    wait_for_condition(lambda: not rows_of(inner_id), msg="(inner object outlives outer)")


def test_captured_object_still_held_is_a_local_reference():
    inner = ray.put("held inner value")
    outer = ray.put([inner])
    assert only_row(inner)["reference_type"] == state.LOCAL_REFERENCE
    del outer


def test_argument_of_running_task_is_used_by_pending_task():
    signal = Signal.remote()
    arg = ray.put(np.ones(1000, dtype=np.int64))
    arg_id = arg.hex()
    result = wait_then_sum.remote(arg, signal)
    del arg
    gc.collect()
    wait_for_condition(lambda: reference_types(arg_id) == [state.USED_BY_PENDING_TASK],
                       msg="(argument not USED_BY_PENDING_TASK)")
    pending = only_row(result)
    assert pending["call_site"] == "wait_then_sum"
    assert pending["task_status"] not in ("FINISHED", "NIL")  # a Ray TaskStatus of a pending task
    assert pending["object_size"] == 0 and pending["reference_type"] == state.LOCAL_REFERENCE
    ray.get(signal.send.remote())
    assert ray.get(result) == 1000
    wait_for_condition(lambda: state.USED_BY_PENDING_TASK not in reference_types(arg_id),
                       msg="(argument still USED_BY_PENDING_TASK after the task)")
    assert only_row(result)["task_status"] == "FINISHED"
    # The return may keep its task's arguments (lineage, to remake it): both go together.
    del result
    gc.collect()
    wait_for_condition(lambda: not rows_of(arg_id), msg="(argument kept after the task)")


def test_task_return_has_task_name_as_call_site():
    ref = make_seven.remote()
    assert ray.get(ref) == 7
    row = only_row(ref)
    assert row["call_site"] == "make_seven" and row["task_status"] == "FINISHED"
    assert row["reference_type"] == state.LOCAL_REFERENCE and row["type"] == "DRIVER"


def test_ref_borrowed_by_actor():
    keeper = Keeper.remote()
    ref = ray.put(np.zeros(2 * MB, dtype=np.uint8))
    oid = ref.hex()
    actor_pid = ray.get(keeper.keep.remote([ref]))
    rows = {r["borrower"]: r for r in rows_of(oid)}
    assert sorted(rows) == [False, True]
    borrowed, owner = rows[True], rows[False]
    # As Ray: both hold refs (LOCAL_REFERENCE); an actor's process is a WORKER.
    assert borrowed["reference_type"] == owner["reference_type"] == state.LOCAL_REFERENCE
    assert borrowed["type"] == "WORKER" and borrowed["pid"] == actor_pid
    assert borrowed["actor_id"] == keeper._actor_id.hex() and owner["actor_id"] is None
    assert borrowed["owner_address"] == owner["owner_address"]
    assert borrowed["object_size"] == owner["object_size"] >= 2 * MB
    assert borrowed["call_site"] == "(put)" and borrowed["in_shared_memory"] is True
    assert owner["type"] == "DRIVER" and owner["pid"] == os.getpid()
    # The owner's own ref gone, the object lives through the actor's borrow.
    del ref
    gc.collect()
    wait_for_condition(lambda: reference_types(oid) == [state.LOCAL_REFERENCE,
                                                        state.UNKNOWN_STATUS],
                       msg="(owner row not UNKNOWN_STATUS once only the actor holds it)")
    assert {r["pid"] for r in rows_of(oid)} == {actor_pid, os.getpid()}
    ray.get(keeper.drop.remote())
    wait_for_condition(lambda: not rows_of(oid), msg="(object kept after the actor drops it)")


def test_actor_method_return_and_handles_are_hidden():
    keeper = Keeper.remote()
    inner = ray.put(1)
    ref = keeper.keep.remote([inner])
    ray.get(ref)
    assert only_row(ref)["call_site"] == "Keeper.keep"
    # The handle's internal scope object is never listed, by its owner nor its borrowers.
    assert not [r for r in state.list_objects(limit=10_000)
                if r["object_id"].endswith("0" * 16 + b"ACTR".hex())]
    del keeper


def test_value_read_after_its_ref_is_gone_is_pinned_in_memory():
    arr = ray.get(ray.put(np.ones(2 * MB, dtype=np.uint8)))

    def pinned():
        return [r for r in state.list_objects(
            filters=[("reference_type", "=", state.PINNED_IN_MEMORY)], detail=True)
            if r["object_size"] >= 2 * MB]

    wait_for_condition(lambda: len(pinned()) == 1, msg="(no PINNED_IN_MEMORY row)")
    (row,) = pinned()
    assert row["in_shared_memory"] is True and row["pid"] == -1  # not known
    del arr
    gc.collect()
    wait_for_condition(lambda: not pinned(), msg="(pinned row left once the value is gone)")


def test_filters_and_limit():
    refs = [ray.put(i) for i in range(5)]
    local = state.list_objects(filters=[("reference_type", "=", "LOCAL_REFERENCE")],
                               limit=10_000)
    assert {r["object_id"] for r in local} >= {r.hex() for r in refs}
    assert all(r["reference_type"] == "LOCAL_REFERENCE" for r in local)
    others = state.list_objects(filters=[("reference_type", "!=", "LOCAL_REFERENCE")],
                                limit=10_000)
    assert not {r["object_id"] for r in others} & {r.hex() for r in refs}
    assert len(state.list_objects(limit=2)) == 2
    assert state.list_objects(limit=0) == []
    # Typed values and the command line's text compare alike.
    by_pid = state.list_objects(filters=[("pid", "=", str(os.getpid())),
                                         ("call_site", "=", "(put)")], limit=10_000)
    assert {r.hex() for r in refs} <= {r["object_id"] for r in by_pid}
    assert state.list_objects(filters=[("in_shared_memory", "=", "true"),
                                       ("object_id", "=", refs[0].hex())]) == []
    with pytest.raises(ValueError, match="no_such_field"):
        state.list_objects(filters=[("no_such_field", "=", "1")])
    with pytest.raises(ValueError, match="predicate"):
        state.list_objects(filters=[("pid", ">", "1")])


def test_summarize_objects_counts_by_call_site():
    refs = [make_seven.remote() for _ in range(3)]
    ray.get(refs)
    summary = state.summarize_objects()["cluster"]
    assert summary["summary_by"] == "callsite"
    group = summary["summary"]["make_seven"]
    assert group["total_objects"] >= 3
    assert group["task_state_counts"]["FINISHED"] >= 3
    assert group["ref_type_counts"]["LOCAL_REFERENCE"] >= 3
    assert summary["total_objects"] >= 3


def test_memory_text_groups_by_node_and_owner():
    ref = ray.put(np.ones(3 * MB, dtype=np.uint8))
    report = state.memory_report()
    (node,) = report["nodes"]
    assert node["store"]["used"] >= 3 * MB
    text = format_memory(report)
    assert f"--- Node {node['node_id']} ({node['ip']}) ---" in text
    assert "Object store:" in text and "Spilled:" in text and "Pinned by readers:" in text
    assert "OBJECT_ID" in text and ref.hex() in text
    assert text.rstrip().splitlines()[-1] == summary_line(report["objects"])
    by_owner = format_memory(report, group_by="owner")
    assert f"--- Owner DRIVER pid {os.getpid()} " in by_owner and ref.hex() in by_owner
    stats = format_memory(report, stats_only=True)
    assert "Object store:" in stats and ref.hex() not in stats and "OBJECT_ID" not in stats
    limited = format_memory(report, limit=0)
    assert ref.hex() not in limited and "more row(s) not shown" in limited
    del ref


NODE, OTHER = b"n" * 28, b"o" * 28
SEG = "/dev/shm/shoal-tag-" + ("ab" * 28)


def _fake_summary() -> list[dict]:
    """A memory view as the head sends it: a spilled object, a detached actor's handle
    object, a borrow whose owner did not answer."""
    owned = [
        {"oid": bytes.fromhex("ab" * 28), "name": "(put)", "ready": True, "size": 5 * MB,
         "path": SEG, "node_id": NODE, "local": 1, "submitted": 0, "borrowers": 0,
         "contained": 0, "actor_handle": False},
        {"oid": b"h" * 16 + b"\x00" * 8 + b"ACTR", "name": "", "ready": True, "size": 2,
         "path": None, "node_id": None, "local": 1, "submitted": 0, "borrowers": 0,
         "contained": 0, "actor_handle": False},
    ]
    proc = {"pid": 11, "mode": "driver", "worker_id": b"w" * 28, "actor_id": None,
            "address": "unix:/d.sock", "owned": owned,
            "borrowed": [{"oid": b"x" * 28, "owner": "tcp:10.0.0.9:1", "local": 1}]}
    return [{"node_id": NODE, "ip": "10.0.0.1",
             "store": {"capacity": 100 * MB, "used": 0, "reserved": 0, "spilled": 5 * MB,
                       "num_objects": 1, "num_spilled": 1, "pinned": 0},
             "segments": {SEG: {"size": 5 * MB, "pins": 0, "spilled": True, "replica": False,
                                "freed": False}},
             "processes": [proc]}]


def test_object_rows_of_a_memory_view():
    rows = state.object_rows(_fake_summary())
    assert [r["object_id"] for r in rows] == ["ab" * 28, (b"x" * 28).hex()]
    spilled, unknown = rows
    assert spilled["spilled"] is True and spilled["in_shared_memory"] is True
    assert spilled["store_node_id"] == NODE.hex() and spilled["ip"] == "10.0.0.1"
    assert unknown["reference_type"] == state.LOCAL_REFERENCE and unknown["borrower"]
    assert unknown["object_size"] == -1  # the owner did not answer: not known
    assert unknown["owner_address"] == "tcp:10.0.0.9:1" and unknown["task_status"] == "NIL"
    text = format_memory({"nodes": [{"node_id": NODE.hex(), "ip": "10.0.0.1",
                                     "store": _fake_summary()[0]["store"]}],
                          "objects": rows, "processes": {}})
    assert "Spilled: 5.00MiB in 1 object(s)" in text
    line = next(x for x in text.splitlines() if x.startswith("ab" * 28))
    assert line.rstrip().endswith("spilled")
    assert text.rstrip().endswith("2 objects, 0B in shared memory, 5.00MiB spilled")
