"""Objects on disk and in shm against another local user, and values past 2 GiB.

The other user is ``nobody`` (CI runs as root: a forked child drops to it).
"""

from __future__ import annotations

import gc
import glob
import os
import pickle
import stat

import numpy as np
import pytest

import shoal as ray
from shoal._private.wire import segment
from tests.conftest import shoal_processes, wait_for_condition
from tests.users import as_nobody, needs_root

MB = 1024 * 1024



def _rt():
    return ray.api._runtime()


def _store() -> dict:
    rt = _rt()
    return rt.call(rt.node_conn.request("node_info", {}))[0]["store"]


def _segment_of(ref) -> str:
    (path,) = [p for p in glob.glob(f"/dev/shm/shoal-{_rt().session_tag}-*{ref.hex()}")
               if os.stat(p).st_uid == os.geteuid()]  # ours, not one planted
    return path


@pytest.fixture
def cluster():
    ctx = ray.init(num_cpus=1, object_store_memory=96 * MB)
    yield ctx
    ray.shutdown()
    wait_for_condition(lambda: not shoal_processes(ctx["session_dir"]), timeout=15)


class _Evil:
    def __reduce__(self):
        return (open, (_Evil.marker, "w"))


@needs_root
def test_a_pickle_planted_at_a_spilled_objects_name_is_never_run(cluster, tmp_path):
    first = ray.put(np.arange(4 * MB, dtype=np.int64))  # 32 MiB
    path = _segment_of(first)
    fillers = [ray.put(np.zeros(32 * MB, dtype=np.uint8)) for _ in range(4)]
    wait_for_condition(lambda: not os.path.exists(path), timeout=10, msg="(not spilled)")
    _Evil.marker = str(tmp_path / "pwned")
    os.chmod(tmp_path, 0o777)
    evil = pickle.dumps(_Evil())
    as_nobody(lambda: segment.write_segment(path, evil, []))
    try:
        got = ray.get(first)
        assert int(got[-1]) == 4 * MB - 1  # restored from the spill file, not theirs
        assert not os.path.exists(_Evil.marker)

        @ray.remote
        def last(a):
            return int(a[-1])
        assert ray.get(last.remote(first)) == 4 * MB - 1  # a worker reads it right too
        assert not os.path.exists(_Evil.marker)
    finally:
        os.unlink(path)
    spill_dir = os.path.join(cluster["session_dir"], "spill")
    assert stat.S_IMODE(os.stat(spill_dir).st_mode) == 0o700
    assert all(stat.S_IMODE(os.stat(os.path.join(spill_dir, f)).st_mode) == 0o600
               for f in os.listdir(spill_dir))
    del got, first, fillers


@needs_root
def test_a_put_is_not_broken_by_names_another_user_created(cluster):
    # Whatever names another user pre-creates from what it can see, put() succeeds.
    seen = ray.put(np.zeros(MB))
    oid = seen.hex()  # 16 bytes of this process, a counter of 8, the put index of 4
    counter = int(oid[32:48], 16)
    planted = [f"/dev/shm/shoal-{_rt().session_tag}-{oid[:32]}{i:016x}{oid[48:]}"
               for i in range(counter + 1, counter + 64)]
    as_nobody(lambda: [open(p, "w").close() for p in planted])
    try:
        refs = [ray.put(np.ones(MB)) for _ in range(8)]  # 64 MiB: all in memory
        assert all(float(ray.get(r)[0]) == 1.0 for r in refs)
        assert all(_segment_of(r) not in planted for r in refs)
    finally:
        for p in planted:
            os.unlink(p)


BIG = 0x7FFFF000 + 24 * MB  # past what one write(2) moves on Linux


def _big(seed: int) -> bytes:
    return bytes([seed]) * 4096 * (BIG // 4096)


@pytest.mark.skipif(os.statvfs("/dev/shm").f_bavail * os.statvfs("/dev/shm").f_frsize
                    < 6 * BIG, reason="/dev/shm too small for two >2 GiB objects")
def test_values_past_2_gib_through_put_argument_return_and_spill(monkeypatch):
    """Values whose pickle stream passes 0x7ffff000 bytes (``bytes`` travel in the stream,
    not out of band) were written truncated. ~2.05 GiB each; two at a time in a store of
    1.5 of them, so each in turn is spilled and restored."""
    # Spilling 2 GiB to a busy disk can take longer than the default 10 s wait for room.
    monkeypatch.setenv("SHOAL_OBJECT_STORE_FULL_TIMEOUT_S", "300")
    ctx = ray.init(num_cpus=1, object_store_memory=int(BIG * 1.5))
    try:
        value = _big(7)
        ref = ray.put(value)
        got = ray.get(ref)
        assert len(got) == BIG and got == value
        del got, value

        @ray.remote
        def check(b):
            return len(b), b[:1], b[-1:]

        @ray.remote
        def make(seed):
            return _big(seed)

        assert ray.get(check.remote(ref)) == (BIG, b"\x07", b"\x07")
        made = make.remote(9)  # a return: the put one is spilled for it
        assert ray.get(check.remote(made)) == (BIG, b"\x09", b"\x09")
        assert _store()["spilled"] >= BIG
        got = ray.get(ref)  # restored, the return spilled in turn
        assert len(got) == BIG and got[:1] == b"\x07" and got[-1:] == b"\x07"
        del got
        got = ray.get(made)
        assert len(got) == BIG and got[-1:] == b"\x09"
        del got, ref, made
        gc.collect()
    finally:
        ray.shutdown()
        wait_for_condition(lambda: not shoal_processes(ctx["session_dir"]), timeout=30)
