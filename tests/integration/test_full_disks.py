"""A full spill disk and a full shared memory, through a running cluster (each on a small
tmpfs of its own): the condition is named, no acknowledged object is lost, no partial file
is left. Needs root to mount the small file systems (CI runs as root)."""

from __future__ import annotations

import gc
import os
import subprocess
import tempfile

import numpy as np
import pytest

import shoal as ray
from shoal import exceptions as ex
from tests.conftest import shoal_processes, wait_for_condition
from tests.users import needs_root

MB = 1024 * 1024


@pytest.fixture
def small_tmpfs():
    made = []

    def mount(size_mb: int) -> str:
        path = tempfile.mkdtemp(prefix="shoal-tinyfs-")
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs",
                        path], check=True, timeout=30)
        made.append(path)
        return path

    yield mount
    for path in made:
        subprocess.run(["umount", path], check=False, timeout=30)
        os.rmdir(path)


def _start(**kw):
    ctx = ray.init(num_cpus=1, **kw)
    return ctx


def _stop(ctx):
    ray.shutdown()
    wait_for_condition(lambda: not shoal_processes(ctx["session_dir"]), timeout=15)


@needs_root
def test_a_full_spill_disk_is_named_and_loses_no_acknowledged_object(small_tmpfs, monkeypatch):
    spill = small_tmpfs(40)  # room for two 16 MiB objects, not three
    monkeypatch.setenv("SHOAL_SPILL_DIR", spill)
    monkeypatch.setenv("SHOAL_OBJECT_STORE_FULL_TIMEOUT_S", "3")
    ctx = _start(object_store_memory=56 * MB)  # three 16 MiB objects in memory
    try:
        kept = []
        with pytest.raises(ex.OutOfDiskError) as info:
            for i in range(20):
                kept.append(ray.put(np.full(16 * MB, i, dtype=np.uint8)))
        msg = str(info.value)
        assert spill in msg and "bytes free of" in msg, msg
        assert 4 <= len(kept) < 20
        # Every spill file is a whole object: no partial copy was left behind.
        files = os.listdir(os.path.join(spill))
        sizes = {os.path.getsize(os.path.join(spill, f)) for f in files}
        assert len(files) >= 1 and len(sizes) == 1 and sizes.pop() > 16 * MB, files
        # Every acknowledged object is still there: make room, then read each back.
        first_in_memory = kept.pop()
        del first_in_memory
        gc.collect()
        for i, ref in reversed(list(enumerate(kept))):
            arr = ray.get(ref, timeout=60)
            assert int(arr[0]) == i and int(arr[-1]) == i
            del arr, ref
            kept.pop()
        del kept
    finally:
        _stop(ctx)
    assert os.listdir(spill) == []


@needs_root
def test_a_full_shared_memory_raises_store_full_with_the_numbers(small_tmpfs, monkeypatch):
    shm = small_tmpfs(24)  # smaller than the store the node is told it has
    monkeypatch.setenv("SHOAL_SHM_DIR", shm)
    ctx = _start(object_store_memory=128 * MB)
    try:
        small = ray.put(np.arange(MB // 8, dtype=np.int64))  # 1 MiB fits
        with pytest.raises(ex.ObjectStoreFullError) as info:
            ray.put(np.zeros(32 * MB, dtype=np.uint8))
        msg = str(info.value)
        assert shm in msg and "bytes needed" in msg, msg
        assert int(ray.get(small)[-1]) == MB // 8 - 1  # what was stored is intact
        # The failed write left no partial segment behind.
        assert len(os.listdir(shm)) == 1
        del small
    finally:
        _stop(ctx)
