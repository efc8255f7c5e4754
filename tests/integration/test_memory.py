"""Object memory: nothing leaks under load, spilling past capacity, pins, borrowed refs."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest

import shoal as ray
from shoal import exceptions as ex
from tests.conftest import shm_entries, shoal_processes, wait_for_condition

CAPACITY = 256 * 1024 * 1024
MB = 1024 * 1024


@pytest.fixture(scope="module")
def cluster():
    ctx = ray.init(num_cpus=2, object_store_memory=CAPACITY)
    yield ctx
    ray.shutdown()
    wait_for_condition(lambda: not shoal_processes(ctx["session_dir"]), timeout=15)


def _rt():
    return ray.api._runtime()


def store_stats() -> dict:
    rt = _rt()
    return rt.call(rt.node_conn.request("node_info", {}))[0]["store"]


def spill_files() -> list[str]:
    d = os.path.join(_rt().session_dir, "spill")
    return os.listdir(d) if os.path.isdir(d) else []


def at_baseline():
    gc.collect()
    s = store_stats()
    return s["used"] == 0 and s["num_objects"] == 0 and shm_entries(_rt().session_tag) == []


def test_capacity_is_reported(cluster):
    assert ray.cluster_resources()["object_store_memory"] == CAPACITY
    assert store_stats()["capacity"] == CAPACITY


def test_5000_puts_dropped_one_by_one_leave_nothing(cluster):
    wait_for_condition(at_baseline, timeout=10)
    for i in range(5000):
        ref = ray.put(np.full(MB, i % 256, dtype=np.uint8))
        del ref
    wait_for_condition(at_baseline, timeout=20, msg="(store bytes or /dev/shm not at baseline)")


def test_200_tasks_returning_5mb_leave_nothing(cluster):
    @ray.remote
    def five_mb(i):
        return np.full(5 * MB, i % 256, dtype=np.uint8)

    wait_for_condition(at_baseline, timeout=10)
    for batch in range(4):
        refs = [five_mb.remote(batch * 50 + i) for i in range(50)]
        assert all(int(ray.get(r)[0]) == (batch * 50 + i) % 256 for i, r in enumerate(refs))
        del refs
    wait_for_condition(at_baseline, timeout=20)


def test_three_times_capacity_spills_restores_and_frees_spill_files(cluster):
    wait_for_condition(at_baseline, timeout=10)
    n, size = 48, 16 * MB  # 768 MB of live objects in a 256 MB store
    refs = [ray.put(np.full(size, i, dtype=np.uint8)) for i in range(n)]
    stats = store_stats()
    assert stats["spilled"] > 0 and stats["used"] <= CAPACITY
    assert len(spill_files()) >= n - CAPACITY // size
    for i, r in enumerate(refs):  # every one reads back intact, restored on demand
        arr = ray.get(r)
        assert arr.shape == (size,) and int(arr[0]) == i and int(arr[-1]) == i
        del arr
    del refs, r  # the loop variable holds the last ref too
    wait_for_condition(at_baseline, timeout=20)
    wait_for_condition(lambda: spill_files() == [], timeout=10, msg="(spill files left)")


def test_spilled_object_is_restored_for_a_task(cluster):
    first = ray.put(np.arange(4 * MB, dtype=np.int64))  # 32 MB
    fillers = [ray.put(np.zeros(32 * MB, dtype=np.uint8)) for _ in range(10)]
    assert store_stats()["spilled"] > 0

    @ray.remote
    def total(a):
        return int(a[-1])

    assert ray.get(total.remote(first)) == 4 * MB - 1
    del first, fillers


def test_pinned_objects_alone_past_capacity_raise_store_full(cluster):
    wait_for_condition(at_baseline, timeout=10)
    held = [ray.get(ray.put(np.ones(60 * MB, dtype=np.uint8))) for _ in range(4)]  # pinned
    with pytest.raises(ex.ObjectStoreFullError) as info:
        ray.put(np.ones(60 * MB, dtype=np.uint8))
    msg = str(info.value)
    import re

    requested = int(re.search(r"(\d+) bytes requested", msg).group(1))
    pinned = int(re.search(r"(\d+) bytes pinned", msg).group(1))
    assert f"capacity {CAPACITY}" in msg
    assert 60 * MB <= requested < 61 * MB and pinned >= 4 * 60 * MB
    del held
    gc.collect()
    ref = ray.put(np.ones(60 * MB, dtype=np.uint8))  # room again once views are gone
    del ref


def test_borrowed_ref_kept_by_actor_lives_until_actor_drops_it(cluster):
    @ray.remote
    class Keeper:
        def keep(self, boxed):
            self.kept = boxed[0]

        def read(self):
            return int(ray.get(self.kept)[7])

        def drop(self):
            del self.kept

    k = Keeper.remote()
    ref = ray.put(np.arange(MB, dtype=np.int64))
    oid = ref.binary()
    ray.get(k.keep.remote([ref]))
    del ref
    gc.collect()
    owned = _rt().refs.owned
    assert ray.get(k.read.remote()) == 7  # still alive: the actor borrows it
    assert oid in owned and owned[oid].borrowers
    ray.get(k.drop.remote())
    wait_for_condition(lambda: oid not in owned, timeout=10, msg="(object not freed)")


def test_a_free_that_overtakes_its_seal_leaves_nothing(cluster):
    # A worker's reply goes to its owner from the worker's thread while the seal is still
    # queued for the node: the owner can free the value before the node has recorded it.
    from shoal._private.wire import segment

    wait_for_condition(at_baseline, timeout=10)
    rt = _rt()
    path = os.path.join("/dev/shm", f"shoal-{rt.session_tag}-{os.urandom(8).hex()}-{'ab' * 14}")
    size = segment.write_segment(path, b"meta", [b"x" * 4096])
    body = {"path": path, "size": size, "owner": rt.worker_id, "reserved": False}
    rt.loop.call_soon_threadsafe(rt.node_send, "free", {"paths": [path]})
    rt.loop.call_soon_threadsafe(rt.node_send, "seal", body)
    wait_for_condition(at_baseline, timeout=10, msg="(the early-freed segment stayed)")
    assert not os.path.exists(path)


def test_a_seal_of_a_file_outside_the_session_is_ignored(cluster, tmp_path):
    rt = _rt()
    victim = tmp_path / f"shoal-{rt.session_tag}-victim"
    victim.write_bytes(b"x" * 100)
    body = {"path": str(victim), "size": 100, "owner": rt.worker_id, "reserved": False}
    rt.loop.call_soon_threadsafe(rt.node_send, "seal", body)
    rt.loop.call_soon_threadsafe(rt.node_send, "free", {"paths": [str(victim)]})
    assert store_stats()["num_objects"] == 0  # a request after both: they were handled
    assert victim.read_bytes() == b"x" * 100
