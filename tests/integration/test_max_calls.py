"""``max_calls``: a worker leaves after N calls of a function, and that is not a crash."""

from __future__ import annotations

import collections
import os

import psutil
import pytest

import shoal as ray
from tests.conftest import wait_for_condition


@pytest.fixture(scope="module", autouse=True)
def cluster(shoal_cluster):
    return shoal_cluster


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_worker_exits_after_max_calls_and_later_tasks_get_fresh_workers():
    @ray.remote(max_calls=2)
    def pid():
        return os.getpid()

    pids = [ray.get(pid.remote(), timeout=30) for _ in range(6)]
    counts = collections.Counter(pids)
    assert max(counts.values()) <= 2, pids
    assert len(counts) >= 3, pids
    for p, n in counts.items():
        if n == 2:  # it ran its last call: it has left
            wait_for_condition(lambda p=p: _gone(p), timeout=15, msg=f"(worker {p} stayed)")


def test_max_calls_one_runs_each_task_once_in_its_own_process(tmp_path):
    runs = tmp_path / "runs"

    @ray.remote(max_calls=1, max_retries=0)
    def once(i, path):
        with open(path, "a") as f:
            f.write(f"{i}\n")
        return os.getpid()

    pids = ray.get([once.remote(i, str(runs)) for i in range(5)], timeout=60)
    assert len(set(pids)) == 5
    # Each ran exactly once: the workers' exits were not taken as crashes to retry.
    assert sorted(runs.read_text().split()) == [str(i) for i in range(5)]


def test_leaving_worker_runs_its_exit_handlers(tmp_path):
    marker = tmp_path / "atexit"

    @ray.remote(max_calls=1)
    def register(path):
        import atexit

        atexit.register(lambda: open(path, "w").write("ran"))
        return os.getpid()

    pid = ray.get(register.remote(str(marker)), timeout=30)
    wait_for_condition(lambda: _gone(pid), timeout=15)
    assert marker.read_text() == "ran"


def test_max_calls_counts_calls_per_function():
    @ray.remote(max_calls=1)
    def limited():
        return os.getpid()

    @ray.remote
    def free():
        return os.getpid()

    a = ray.get(limited.remote(), timeout=30)
    b = ray.get(limited.remote(), timeout=30)
    assert a != b
    # Other functions are not limited: a worker that ran them keeps running.
    pid = ray.get(free.remote())
    assert ray.get(free.remote()) and not _gone(pid)


def test_failing_call_counts_and_still_reports_its_error():
    @ray.remote(max_calls=1, max_retries=0)
    def boom():
        raise ValueError(f"boom in {os.getpid()}")

    with pytest.raises(ValueError, match="boom in") as first:
        ray.get(boom.remote(), timeout=30)
    with pytest.raises(ValueError, match="boom in") as second:
        ray.get(boom.remote(), timeout=30)
    assert str(first.value).split()[-1] != str(second.value).split()[-1]


def test_gpu_tasks_get_a_fresh_worker_each_call_by_default():
    @ray.remote(num_gpus=1)
    def on_gpu():
        return os.getpid()

    first = ray.get(on_gpu.remote(), timeout=30)
    second = ray.get(on_gpu.remote(), timeout=30)
    assert first != second
    wait_for_condition(lambda: _gone(first), timeout=15)


def test_streaming_task_with_max_calls_ends_its_worker():
    @ray.remote(max_calls=1)
    def gen():
        yield os.getpid()
        yield os.getpid()

    items = [ray.get(r, timeout=30) for r in gen.remote()]
    assert len(set(items)) == 1
    wait_for_condition(lambda: _gone(items[0]), timeout=15)


def test_max_calls_is_validated_as_ray_does():
    with pytest.raises(ValueError, match="only accepts None, 0 or a positive integer"):
        ray.remote(max_calls=-1)(lambda: 1)
    with pytest.raises(TypeError, match="The type of keyword 'max_calls' must be"):
        ray.remote(max_calls="2")(lambda: 1)
    with pytest.raises(TypeError, match="received type <class 'float'>"):
        ray.remote(max_calls=1.5)(lambda: 1)
    f = ray.remote(max_calls=3)(lambda: 1)
    with pytest.raises(ValueError, match=r"Setting 'max_calls' is not supported in '.options\(\)'"):
        f.options(max_calls=1)
    with pytest.raises(ValueError, match="Invalid option keyword max_calls for actors"):
        @ray.remote(max_calls=2)
        class A:
            pass
