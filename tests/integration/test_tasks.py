"""Remote functions on a local cluster: results, errors, retries, cancellation, options."""

from __future__ import annotations

import os
import threading
import time

import pytest

import shoal as ray
from shoal import exceptions as ex
from tests.conftest import wait_for_output


@pytest.fixture(scope="module", autouse=True)
def cluster(shoal_cluster):
    return shoal_cluster


def test_multiple_returns_and_options_override():
    @ray.remote(num_returns=3)
    def three():
        return 1, 2, 3

    a, b, c = three.remote()
    assert ray.get([a, b, c]) == [1, 2, 3]
    two = ray.remote(lambda: (7, 8)).options(num_returns=2)
    assert ray.get(list(two.remote())) == [7, 8]


def test_num_returns_zero_returns_none():
    @ray.remote(num_returns=0)
    def nothing():
        return None

    assert nothing.remote() is None


def test_wrong_number_of_returns_is_an_error():
    @ray.remote(num_returns=2)
    def one():
        return [1, 2, 3]

    a, _ = one.remote()
    with pytest.raises(ValueError, match="num_returns=2"):
        ray.get(a)


def test_kwargs_and_defaults():
    @ray.remote
    def f(a, b=10, *, c=100):
        return a + b + c

    assert ray.get(f.remote(1)) == 111
    assert ray.get(f.remote(1, c=1, b=2)) == 4


def test_exception_is_instance_of_cause_with_remote_traceback():
    class MyError(Exception):
        def __init__(self, code, detail):
            super().__init__(code)
            self.code = code
            self.detail = detail

    @ray.remote
    def fail():
        raise MyError(42, "the detail")

    with pytest.raises(MyError) as info:
        ray.get(fail.remote())
    err = info.value
    assert isinstance(err, ex.RayTaskError)
    assert err.code == 42 and err.detail == "the detail"
    assert "fail" in str(err) and "raise MyError" in str(err)


def test_error_propagates_through_dependent_tasks():
    @ray.remote
    def boom():
        raise KeyError("missing")

    @ray.remote
    def plus_one(x):
        return x + 1

    with pytest.raises(KeyError):
        ray.get(plus_one.remote(plus_one.remote(boom.remote())))


def test_nested_tasks_with_get_inside_do_not_deadlock():
    # 2 CPUs, and every parent blocks in get on children: it must release its CPU.
    @ray.remote
    def leaf(i):
        return i

    @ray.remote
    def mid(i):
        return sum(ray.get([leaf.remote(i * 10 + j) for j in range(3)]))

    @ray.remote
    def top():
        return sum(ray.get([mid.remote(i) for i in range(4)]))

    expected = sum(i * 10 + j for i in range(4) for j in range(3))
    assert ray.get(top.remote(), timeout=60) == expected


def test_refs_nested_in_arguments_stay_refs():
    @ray.remote
    def kinds(direct, nested):
        return type(direct).__name__, type(nested[0]).__name__, ray.get(nested[0])

    r = ray.put(5)
    assert ray.get(kinds.remote(r, [r])) == ("int", "ObjectRef", 5)


def test_ref_returned_from_task_is_usable():
    @ray.remote
    def make():
        return ray.put("inner value")

    @ray.remote
    def wrap():
        return [ray.put(i) for i in range(3)]

    inner = ray.get(make.remote())
    assert isinstance(inner, ray.ObjectRef)
    assert ray.get(inner) == "inner value"
    assert ray.get(ray.get(wrap.remote())) == [0, 1, 2]


def test_worker_death_is_retried_then_succeeds(tmp_path):
    marker = tmp_path / "attempts"

    @ray.remote(max_retries=3)
    def flaky(path):
        n = int(open(path).read()) if os.path.exists(path) else 0
        with open(path, "w") as f:
            f.write(str(n + 1))
        if n < 2:
            os._exit(1)
        return n

    assert ray.get(flaky.remote(str(marker)), timeout=60) == 2
    assert marker.read_text() == "3"


def test_worker_death_exhausts_retries():
    @ray.remote(max_retries=1)
    def die():
        os._exit(1)

    with pytest.raises(ex.WorkerCrashedError):
        ray.get(die.remote(), timeout=60)


def test_application_errors_not_retried_by_default(tmp_path):
    marker = tmp_path / "count"

    @ray.remote(max_retries=3)
    def fails(path):
        with open(path, "a") as f:
            f.write("x")
        raise RuntimeError("app error")

    with pytest.raises(RuntimeError):
        ray.get(fails.remote(str(marker)))
    assert marker.read_text() == "x"


def test_retry_exceptions_with_list(tmp_path):
    marker = tmp_path / "count"

    @ray.remote(max_retries=3, retry_exceptions=[ConnectionError])
    def fails_twice(path):
        with open(path, "a") as f:
            f.write("x")
        if len(open(path).read()) < 3:
            raise ConnectionError("transient")
        return "ok"

    assert ray.get(fails_twice.remote(str(marker))) == "ok"
    assert marker.read_text() == "xxx"

    other = tmp_path / "other"

    @ray.remote(max_retries=3, retry_exceptions=[ConnectionError])
    def wrong_kind(path):
        with open(path, "a") as f:
            f.write("x")
        raise ValueError("not retried")

    with pytest.raises(ValueError):
        ray.get(wrong_kind.remote(str(other)))
    assert other.read_text() == "x"


def test_get_timeout():
    @ray.remote
    def slow():
        time.sleep(3)

    ref = slow.remote()
    t = time.monotonic()
    with pytest.raises(ex.GetTimeoutError):
        ray.get(ref, timeout=0.2)
    assert time.monotonic() - t < 2
    assert issubclass(ex.GetTimeoutError, TimeoutError)
    ray.cancel(ref)


def test_cancel_running_task():
    @ray.remote
    def forever():
        time.sleep(60)

    ref = forever.remote()
    ray.wait([ref], timeout=0.3)
    ray.cancel(ref)
    with pytest.raises(ex.TaskCancelledError):
        ray.get(ref, timeout=20)


def test_cancel_queued_task_never_runs(tmp_path):
    @ray.remote
    def block():
        time.sleep(1)

    @ray.remote
    def touch(path):
        open(path, "w").close()

    blockers = [block.remote() for _ in range(2)]
    path = str(tmp_path / "ran")
    ref = touch.remote(path)
    ray.cancel(ref)
    with pytest.raises(ex.TaskCancelledError):
        ray.get(ref, timeout=20)
    ray.get(blockers)
    assert not os.path.exists(path)


def test_force_cancel_kills_worker():
    @ray.remote
    def stubborn():
        while True:
            try:
                time.sleep(60)
            except KeyboardInterrupt:
                continue

    ref = stubborn.remote()
    ray.wait([ref], timeout=0.3)
    ray.cancel(ref, force=True)
    with pytest.raises(ex.TaskCancelledError):
        ray.get(ref, timeout=20)


def test_gpu_ids_and_cuda_visible_devices():
    @ray.remote(num_gpus=1)
    def gpu_task():
        return ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")

    @ray.remote
    def cpu_task():
        return ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")

    assert ray.get(gpu_task.remote()) == ([0], "0")
    assert ray.get(cpu_task.remote()) == ([], None)


def test_custom_resources_limit_concurrency(tmp_path):
    @ray.remote(resources={"custom": 2}, num_cpus=0)
    def exclusive(i):
        t = time.monotonic()
        time.sleep(0.2)
        return t, time.monotonic()

    spans = sorted(ray.get([exclusive.remote(i) for i in range(3)]))
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end - 0.01  # never two at once: each takes both units


def test_resources_reported():
    total = ray.cluster_resources()
    assert total["CPU"] == 2 and total["GPU"] == 1 and total["custom"] == 2
    assert total["object_store_memory"] > 0 and total["memory"] > 0

    def settled():
        avail = ray.available_resources()
        return avail.get("CPU") == 2

    from tests.conftest import wait_for_condition

    wait_for_condition(settled, timeout=10)
    nodes = ray.nodes()
    assert len(nodes) == 1 and nodes[0]["Alive"] and nodes[0]["Resources"]["CPU"] == 2


def test_runtime_context_ids():
    @ray.remote
    def ids():
        ctx = ray.get_runtime_context()
        return ctx.get_job_id(), ctx.get_node_id(), ctx.get_worker_id(), ctx.get_task_id()

    ctx = ray.get_runtime_context()
    job, node, worker, task = ray.get(ids.remote())
    assert job == ctx.get_job_id() and node == ctx.get_node_id()
    assert worker != ctx.get_worker_id() and len(worker) == 56
    assert task is not None and ctx.get_task_id() is None


def test_worker_output_reaches_driver(capfd):
    @ray.remote
    def speak(token):
        print("hello from task", token)
        return os.getpid()

    pid = ray.get(speak.remote("tok-123"))
    wait_for_output(capfd, f"(speak pid={pid}) hello from task tok-123")


def test_object_ref_is_awaitable_and_has_future():
    import asyncio

    @ray.remote
    def f(x):
        return x * 2

    assert f.remote(21).future().result(timeout=10) == 42

    async def main():
        return await f.remote(5)

    assert asyncio.run(main()) == 10
    r = f.remote(1)
    assert r == r and hash(r) == hash(r) and len(r.hex()) == 56


def test_many_threads_submitting():
    @ray.remote
    def f(x):
        return x

    out = {}

    def run(k):
        out[k] = ray.get([f.remote(k * 100 + i) for i in range(50)])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(out[k] == [k * 100 + i for i in range(50)] for k in range(4))


# -- bad input ---------------------------------------------------------------------------

def test_calling_remote_function_directly_says_use_remote():
    @ray.remote
    def f():
        return 1

    with pytest.raises(TypeError, match=r"f\.remote\(\)"):
        f()


def test_unknown_option_fails_at_decoration():
    with pytest.raises(ValueError, match="num_cpu"):
        @ray.remote(num_cpu=1)
        def f():
            pass

    @ray.remote
    def g():
        pass

    with pytest.raises(ValueError, match="max_retries"):
        g.options(max_retries=-5)
    with pytest.raises(ValueError, match="num_gpus"):
        g.options(resources={"GPU": 1})
    with pytest.raises(ValueError, match="num_cpus"):
        g.options(num_cpus=-1)


def test_unserializable_argument_names_the_field():
    class Holder:
        def __init__(self):
            self.lock = threading.Lock()

    @ray.remote
    def f(x):
        return x

    with pytest.raises(TypeError) as info:
        f.remote(Holder())
    msg = str(info.value)
    assert ".lock" in msg and "lock" in msg.lower() and "argument" in msg


def test_unserializable_return_value_is_reported():
    @ray.remote
    def f():
        return threading.Lock()

    with pytest.raises(TypeError, match="return value"):
        ray.get(f.remote())


def test_get_on_non_ref_says_so():
    with pytest.raises(TypeError, match="ObjectRef"):
        ray.get(5)
    with pytest.raises(TypeError, match="ObjectRef"):
        ray.get([ray.put(1), "x"])


def test_wait_validates_input():
    r = ray.put(1)
    with pytest.raises(ValueError):
        ray.wait([r, r])
    with pytest.raises(ValueError):
        ray.wait([r], num_returns=2)
    with pytest.raises(TypeError):
        ray.wait(r)


def test_init_twice_raises_unless_ignored():
    with pytest.raises(RuntimeError, match="ignore_reinit_error"):
        ray.init()
    ray.init(ignore_reinit_error=True)
    assert ray.is_initialized()


def test_worker_stderr_reaches_driver_stderr(capfd):
    import sys as _sys

    @ray.remote
    def warn():
        print("to stderr", file=_sys.stderr)
        return os.getpid()

    pid = ray.get(warn.remote())
    wait_for_output(capfd, f"(warn pid={pid}) to stderr", stream="err")


def test_failing_task_with_zero_returns_does_not_stall_later_tasks():
    @ray.remote(num_returns=0, retry_exceptions=True, max_retries=1)
    def fail_quietly():
        raise RuntimeError("nobody is listening")

    @ray.remote
    def after():
        return "still running"

    fail_quietly.remote()
    assert ray.get(after.remote(), timeout=20) == "still running"


def test_retry_of_task_with_large_exception_reports_the_exception(tmp_path):
    class BigError(Exception):
        def __init__(self, blob):
            super().__init__("big")
            self.blob = blob

    marker = tmp_path / "n"

    @ray.remote(max_retries=2, retry_exceptions=True)
    def big_fail(path):
        with open(path, "a") as f:
            f.write("x")
        raise BigError(b"z" * 300_000)  # larger than the inline limit: stored in shm

    with pytest.raises(BigError) as info:
        ray.get(big_fail.remote(str(marker)), timeout=30)
    assert len(info.value.blob) == 300_000
    assert marker.read_text() == "xxx"


def test_output_of_nested_tasks_reaches_driver(capfd):
    @ray.remote
    def inner():
        print("from the inner task")
        return os.getpid()

    @ray.remote
    def outer():
        return ray.get(inner.remote())

    pid = ray.get(outer.remote())
    wait_for_output(capfd, f"(inner pid={pid}) from the inner task")


def test_cancel_is_recursive_by_default(tmp_path):
    from tests.conftest import wait_for_condition

    started = tmp_path / "child started"

    @ray.remote
    def child(path):
        open(path, "w").close()
        time.sleep(60)

    @ray.remote
    def parent(path):
        ray.get(child.remote(path))

    wait_for_condition(lambda: ray.available_resources().get("CPU") == 2, timeout=20)
    ref = parent.remote(str(started))
    # The child is running (the parent blocks in get, lending it its CPU): not just the
    # parent, which would also leave one CPU in use before it submits the child.
    wait_for_condition(started.exists, timeout=20)
    ray.cancel(ref)
    with pytest.raises(ex.TaskCancelledError):
        ray.get(ref, timeout=20)
    # the child was cancelled too: both CPUs are free again long before its 60 s sleep
    wait_for_condition(lambda: ray.available_resources().get("CPU") == 2, timeout=15)


def test_tasks_submitted_while_their_parent_is_being_cancelled_are_cancelled(tmp_path):
    from tests.conftest import wait_for_condition

    started = tmp_path / "submitting"

    @ray.remote
    def child():
        time.sleep(60)

    @ray.remote
    def parent(path):
        refs = [child.remote()]
        open(path, "w").close()
        while True:  # submits until interrupted: a cancel lands in mid-submission
            refs.append(child.remote())

    wait_for_condition(lambda: ray.available_resources().get("CPU") == 2, timeout=20)
    ref = parent.remote(str(started))
    wait_for_condition(started.exists, timeout=20)
    ray.cancel(ref)
    with pytest.raises(ex.TaskCancelledError):
        ray.get(ref, timeout=20)
    # no child escaped the cancel: nothing keeps a CPU for its 60 s sleep
    wait_for_condition(lambda: ray.available_resources().get("CPU") == 2, timeout=15)
