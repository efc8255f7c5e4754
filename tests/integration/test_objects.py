"""The object store: put/get, zero-copy numpy, freeing when references go."""

from __future__ import annotations

import gc
import glob
import os

import numpy as np
import pytest

import shoal as ray
from tests.conftest import shm_entries, wait_for_condition


@pytest.fixture(scope="module", autouse=True)
def cluster(shoal_cluster):
    return shoal_cluster


def _tag():
    rt = ray.api._runtime()
    return rt.session_tag


def test_small_and_large_values_round_trip():
    for value in [None, 1, "text", {"a": [1, 2]}, b"x" * 10, b"y" * 500_000,
                  list(range(100_000))]:
        assert ray.get(ray.put(value)) == value


def test_numpy_get_is_read_only_zero_copy_view_of_shared_memory():
    arr = np.arange(2_000_000, dtype=np.float64)
    ref = ray.put(arr)
    out = ray.get(ref)
    assert np.array_equal(out, arr)
    assert not out.flags.writeable
    assert not out.flags.owndata  # a view of the mapped segment, not a copy
    with pytest.raises(ValueError):
        out[0] = 1.0
    # Two gets map the same shared memory: no private copies.
    again = ray.get(ref)
    assert again.ctypes.data != arr.ctypes.data


def test_dropping_refs_returns_shared_memory_to_baseline():
    tag = _tag()
    wait_for_condition(lambda: shm_entries(tag) == [], timeout=10)
    refs = [ray.put(np.ones(200_000)) for _ in range(20)]
    assert len(shm_entries(tag)) == 20
    values = ray.get(refs)
    del refs
    gc.collect()
    # Mapped views keep nothing alive in the store's accounting: files go once refs go.
    wait_for_condition(lambda: shm_entries(tag) == [], timeout=10)
    assert float(values[3][5]) == 1.0  # views stay valid after the object is freed


def test_large_task_returns_are_freed_when_dropped():
    tag = _tag()

    @ray.remote
    def big(i):
        return np.full(500_000, i, dtype=np.int64)

    refs = [big.remote(i) for i in range(6)]
    assert [int(ray.get(r)[0]) for r in refs] == list(range(6))
    assert len(shm_entries(tag)) == 6
    del refs
    gc.collect()
    wait_for_condition(lambda: shm_entries(tag) == [], timeout=10)


def test_large_argument_by_value_goes_through_store_and_is_freed():
    tag = _tag()

    @ray.remote
    def total(a):
        return float(a.sum())

    assert ray.get(total.remote(np.ones(1_000_000))) == 1_000_000.0
    wait_for_condition(lambda: shm_entries(tag) == [], timeout=10)


def test_put_value_containing_refs_keeps_inner_objects_alive():
    inner = ray.put(np.ones(300_000))
    outer = ray.put([inner, "label"])
    inner_id = inner.binary()
    del inner
    gc.collect()
    got = ray.get(outer)
    assert got[1] == "label" and got[0].binary() == inner_id
    assert ray.get(got[0]).sum() == 300_000


def test_borrowed_ref_kept_by_task_result_stays_alive():
    @ray.remote
    def hold(refs):
        return refs  # hands the nested ref back inside its return value

    inner = ray.put(np.arange(300_000))
    back = hold.remote([inner])
    del inner
    gc.collect()
    again = ray.get(back)[0]
    assert int(ray.get(again)[-1]) == 299_999


def test_get_in_worker_of_object_owned_by_driver():
    big = ray.put(np.arange(1_000_000))

    @ray.remote
    def read(refs):
        return int(ray.get(refs[0])[123])

    assert ray.get(read.remote([big])) == 123


def test_wait_returns_ready_in_input_order_and_timeout():
    import time

    @ray.remote
    def sleep(t):
        time.sleep(t)
        return t

    refs = [sleep.remote(0.0), sleep.remote(5), ray.put(1)]
    ready, not_ready = ray.wait(refs, num_returns=2, timeout=10)
    assert ready == [refs[0], refs[2]] and not_ready == [refs[1]]
    ready, not_ready = ray.wait([refs[1]], timeout=0.1)
    assert ready == [] and not_ready == [refs[1]]
    ray.cancel(refs[1])


def test_wait_on_all_ready_refs_keeps_input_order_and_the_split():
    @ray.remote
    def ident(i):
        return i

    refs = [ident.remote(i) for i in range(10)] + [ray.put(i) for i in range(10, 20)]
    ray.get(refs)
    shuffled = refs[::-1]
    assert ray.wait(shuffled, num_returns=len(shuffled)) == (shuffled, [])
    assert ray.wait(tuple(shuffled), num_returns=3) == (shuffled[:3], shuffled[3:])
    # A ref that is not ready keeps its place among the not ready, the rest ready in order.
    import time

    @ray.remote
    def slow():
        time.sleep(30)

    pending = slow.remote()
    ready, not_ready = ray.wait([*refs[:5], pending, *refs[5:]], num_returns=20, timeout=0.2)
    assert ready == refs and not_ready == [pending]
    ray.cancel(pending)


def test_object_store_files_live_in_dev_shm():
    ref = ray.put(np.ones(500_000))
    # shoal-<tag>-<random>-<object id>: the random part keeps the name unguessable
    found = glob.glob(f"/dev/shm/shoal-{_tag()}-*-{ref.hex()}")
    assert len(found) == 1 and len(os.path.basename(found[0]).split("-")[-2]) == 16
    path = found[0]
    assert os.stat(path).st_mode & 0o777 == 0o600
    del ref
    gc.collect()
    wait_for_condition(lambda: not os.path.exists(path), timeout=10)
