"""The memory monitor ends a task that eats the node's memory, and only that task."""

from __future__ import annotations

import os
import time

import psutil
import pytest

import shoal as ray
from shoal import exceptions as ex
from tests.conftest import shoal_processes, wait_for_condition


@pytest.fixture
def tight_cluster():
    """A local cluster whose threshold sits 1.5 GiB above what the machine uses now."""
    vm = psutil.virtual_memory()
    used = vm.total - vm.available
    saved = {k: os.environ.get(k) for k in ("SHOAL_MEMORY_USAGE_THRESHOLD",
                                            "SHOAL_MEMORY_MONITOR_REFRESH_MS")}
    os.environ["SHOAL_MEMORY_USAGE_THRESHOLD"] = str((used + 1.5 * 2**30) / vm.total)
    os.environ["SHOAL_MEMORY_MONITOR_REFRESH_MS"] = "100"
    ctx = ray.init(num_cpus=2)
    try:
        yield ctx
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        wait_for_condition(lambda: not shoal_processes(ctx["session_dir"]), timeout=15)


def test_task_past_the_threshold_fails_with_out_of_memory(tight_cluster):
    @ray.remote(max_retries=0)
    def hog():
        blocks = []
        for _ in range(60):  # up to 6 GiB, 100 MiB at a time, every page touched
            blocks.append(bytearray(100 * 2**20))
            time.sleep(0.05)
        return len(blocks)

    @ray.remote
    def fine(x):
        time.sleep(0.5)
        return x * 2

    other = fine.remote(21)
    with pytest.raises(ex.OutOfMemoryError) as info:
        ray.get(hog.remote(), timeout=120)
    msg = str(info.value)
    assert "hog" in msg and "memory_usage_threshold" in msg
    node_id = ray.get_runtime_context().get_node_id()
    assert node_id[:12] in msg
    assert ray.get(other) == 42  # the other task was not touched
    assert ray.get(fine.remote(1)) == 2  # and the node still runs tasks
