"""Streaming generators: tasks and actor methods that yield."""

from __future__ import annotations

import asyncio
import time

import pytest

import shoal as ray


@pytest.fixture(scope="module", autouse=True)
def cluster(shoal_cluster):
    return shoal_cluster


def test_generator_task_defaults_to_streaming():
    @ray.remote
    def count(n):
        for i in range(n):
            yield i * i

    gen = count.remote(5)
    assert isinstance(gen, ray.ObjectRefGenerator)
    refs = list(gen)
    assert all(isinstance(r, ray.ObjectRef) for r in refs)
    assert ray.get(refs) == [0, 1, 4, 9, 16]


def test_refs_arrive_while_the_task_still_runs():
    @ray.remote(num_returns="streaming")
    def slow(n):
        for i in range(n):
            yield i
            time.sleep(0.5)

    start = time.monotonic()
    gen = slow.remote(4)
    first = next(gen)
    assert ray.get(first) == 0
    assert time.monotonic() - start < 1.5  # long before the 2 s the whole task takes
    assert [ray.get(r) for r in gen] == [1, 2, 3]


def test_exception_in_generator_is_raised_at_its_position():
    @ray.remote
    def fails_after_two():
        yield "a"
        yield "b"
        raise KeyError("third")

    gen = fails_after_two.remote()
    assert ray.get(next(gen)) == "a"
    assert ray.get(next(gen)) == "b"
    with pytest.raises(KeyError):
        ray.get(next(gen))
    with pytest.raises(StopIteration):
        next(gen)


def test_large_items_go_through_the_store():
    import numpy as np

    @ray.remote
    def blocks():
        for i in range(3):
            yield np.full(200_000, i)

    assert [int(ray.get(r)[0]) for r in blocks.remote()] == [0, 1, 2]


def test_actor_method_generators_sync_and_async():
    @ray.remote
    class Source:
        def numbers(self, n):
            yield from range(n)

        async def ticks(self, n):
            for i in range(n):
                await asyncio.sleep(0.01)
                yield f"tick{i}"

    s = Source.remote()
    assert ray.get(list(s.numbers.remote(4))) == [0, 1, 2, 3]
    assert ray.get(list(s.ticks.remote(3))) == ["tick0", "tick1", "tick2"]


def test_async_iteration_of_generator():
    @ray.remote
    def gen3():
        yield from (1, 2, 3)

    async def consume():
        out = []
        async for ref in gen3.remote():
            out.append(await ref)
        return out

    assert asyncio.run(consume()) == [1, 2, 3]


def test_explicit_num_returns_on_generator_function_returns_refs():
    @ray.remote(num_returns=2)
    def two():
        yield 1
        yield 2

    a, b = two.remote()
    assert ray.get([a, b]) == [1, 2]
