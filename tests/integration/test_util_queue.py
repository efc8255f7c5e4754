"""shoal.util.queue.Queue: FIFO across tasks and actors, blocking, timeouts, batches, shutdown."""

from __future__ import annotations

import asyncio
import queue as stdlib_queue

import pytest

import shoal as ray
from shoal import exceptions as ex
from shoal.util import list_named_actors
from shoal.util.queue import Empty, Full, Queue


@pytest.fixture(scope="module", autouse=True)
def cluster(shoal_cluster):
    return shoal_cluster


@ray.remote
def produce(q, items):
    for item in items:
        q.put(item)
    return len(items)


@ray.remote
class Consumer:
    def take(self, q, n, timeout):
        return [q.get(timeout=timeout) for _ in range(n)]

    def give(self, q, items):
        for item in items:
            q.put(item, timeout=10)
        return len(items)


def test_exceptions_are_stdlib_queue_exceptions():
    assert issubclass(Empty, stdlib_queue.Empty)
    assert issubclass(Full, stdlib_queue.Full)


def test_fifo_and_size():
    q = Queue()
    assert q.empty()
    assert not q.full()  # unbounded
    assert q.qsize() == q.size() == len(q) == 0
    for i in range(5):
        q.put(i)
    q.put({"nested": [1, 2]})
    assert q.qsize() == 6
    assert not q.empty()
    assert [q.get() for _ in range(5)] == list(range(5))
    assert q.get_nowait() == {"nested": [1, 2]}
    assert q.empty()


def test_bounded_queue_full():
    q = Queue(maxsize=2)
    q.put("a")
    q.put_nowait("b")
    assert q.full()
    assert q.qsize() == 2
    with pytest.raises(Full):
        q.put("c", block=False)
    with pytest.raises(Full):
        q.put_nowait("c")
    with pytest.raises(Full):
        q.put("c", timeout=0.1)
    assert q.qsize() == 2
    assert q.get() == "a"
    assert not q.full()
    q.put("c", timeout=1)
    assert [q.get(), q.get()] == ["b", "c"]


def test_get_from_empty_queue():
    q = Queue()
    with pytest.raises(Empty):
        q.get(block=False)
    with pytest.raises(Empty):
        q.get_nowait()
    with pytest.raises(Empty):
        q.get(timeout=0.1)
    with pytest.raises(stdlib_queue.Empty):
        q.get(timeout=0)


def test_negative_timeout_is_refused():
    q = Queue(maxsize=1)
    with pytest.raises(ValueError):
        q.get(timeout=-1)
    with pytest.raises(ValueError):
        q.put(1, timeout=-1)


def test_task_producer_actor_consumer():
    q = Queue()
    consumer = Consumer.remote()
    taken = consumer.take.remote(q, 20, 10)  # waits in the queue actor for the items
    assert ray.get(produce.remote(q, list(range(20))), timeout=20) == 20
    assert ray.get(taken, timeout=20) == list(range(20))
    assert q.empty()


def test_actor_producer_blocks_on_full_queue():
    q = Queue(maxsize=1)
    producer = Consumer.remote()
    done = producer.give.remote(q, ["x", "y", "z"])
    got = [q.get(timeout=10) for _ in range(3)]
    assert got == ["x", "y", "z"]
    assert ray.get(done, timeout=10) == 3


def test_blocking_get_in_actor_times_out():
    q = Queue()
    consumer = Consumer.remote()
    with pytest.raises(Empty):
        ray.get(consumer.take.remote(q, 1, 0.1), timeout=10)


def test_many_waiting_getters_are_all_served():
    q = Queue()
    consumers = [Consumer.remote() for _ in range(3)]
    refs = [c.take.remote(q, 2, 10) for c in consumers]
    q.put_nowait_batch(range(6))
    results = ray.get(refs, timeout=20)
    assert sorted(x for r in results for x in r) == list(range(6))
    assert all(r == sorted(r) for r in results)  # each getter sees FIFO order


def test_batches():
    q = Queue(maxsize=4)
    q.put_nowait_batch([1, 2, 3])
    assert q.qsize() == 3
    with pytest.raises(Full):
        q.put_nowait_batch([4, 5])  # does not fit: nothing is added
    assert q.qsize() == 3
    with pytest.raises(Empty):
        q.get_nowait_batch(4)  # not enough: nothing is taken
    assert q.qsize() == 3
    assert q.get_nowait_batch(0) == []
    assert q.get_nowait_batch(2) == [1, 2]
    # Any iterable, generators included (Ray sends the iterable as is and cannot pickle one).
    q.put_nowait_batch(x for x in (4, 5, 6))
    assert q.full()
    assert q.get_nowait_batch(4) == [3, 4, 5, 6]
    with pytest.raises(TypeError):
        q.put_nowait_batch(7)
    with pytest.raises(TypeError):
        q.get_nowait_batch("2")
    with pytest.raises(ValueError):
        q.get_nowait_batch(-1)

    unbounded = Queue()
    unbounded.put_nowait_batch(range(100))
    assert unbounded.get_nowait_batch(100) == list(range(100))


def test_async_put_and_get():
    q = Queue(maxsize=1)

    async def main():
        await q.put_async(1)
        with pytest.raises(Full):
            await q.put_async(2, block=False)
        with pytest.raises(Full):
            await q.put_async(2, timeout=0.1)
        first = await q.get_async()
        with pytest.raises(Empty):
            await q.get_async(block=False)
        with pytest.raises(Empty):
            await q.get_async(timeout=0.1)
        waiter = asyncio.ensure_future(q.get_async(timeout=10))
        await q.put_async(3)
        return first, await waiter

    assert asyncio.run(main()) == (1, 3)


def test_actor_options_and_named_queue():
    q = Queue(actor_options={"name": "util-queue-test", "num_cpus": 0})
    assert "util-queue-test" in list_named_actors()
    entries = list_named_actors(all_namespaces=True)
    assert any(e["name"] == "util-queue-test" for e in entries)
    q.put(1)
    again = ray.get_actor("util-queue-test")
    assert ray.get(again.qsize.remote()) == 1
    q.shutdown()


def test_shutdown():
    q = Queue()
    q.put(1)
    handle = q.actor
    q.shutdown()
    assert q.actor is None
    with pytest.raises(ex.RayActorError):
        ray.get(handle.qsize.remote(), timeout=10)
    q.shutdown()  # a second time does nothing


def test_forced_shutdown_while_a_getter_waits():
    q = Queue()
    handle = q.actor
    consumer = Consumer.remote()
    waiting = consumer.take.remote(q, 1, None)
    assert q.empty()  # the queue actor is up, the getter is waiting on it
    q.shutdown(force=True, grace_period_s=1)
    assert q.actor is None
    with pytest.raises(ex.RayActorError):
        ray.get(handle.qsize.remote(), timeout=10)
    with pytest.raises(ex.RayActorError):
        ray.get(waiting, timeout=10)
