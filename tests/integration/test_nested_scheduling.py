"""Tasks that block in ``get`` on other tasks, on a one-CPU node: Ray's "tree of tasks" and
nested patterns must finish (a blocked task lends its CPU and its place among the workers),
and ``get`` of a list raises a failure without waiting for the rest."""

from __future__ import annotations

import os
import random

import pytest

import shoal as ray
from tests.conftest import gate_actor, shoal_processes, wait_for_condition


@pytest.fixture(scope="module")
def one_cpu():
    ctx = ray.init(num_cpus=1, num_gpus=1)
    yield ray
    ray.shutdown()
    wait_for_condition(lambda: not shoal_processes(ctx["session_dir"]), timeout=15)


@ray.remote
def factorial(n):
    return 1 if n <= 1 else n * ray.get(factorial.remote(n - 1))


def test_recursion_that_gets_its_child_at_every_level_finishes(one_cpu):
    # Eight levels, each blocked in get on the next: more than the node's worker cap.
    assert ray.get(factorial.remote(8), timeout=60) == 40320


@ray.remote
def leaf(i):
    return i


@ray.remote
def middle(i):
    return ray.get(leaf.remote(i))


@ray.remote
def top(i):
    return ray.get(middle.remote(i))


def test_many_chains_of_blocking_tasks_all_finish(one_cpu):
    # 300 f -> g -> h chains queued at once: the CPU a blocked f lends goes to the g it
    # waits for, not to the next f (which would block in turn until no worker is left).
    assert ray.get([top.remote(i) for i in range(300)], timeout=120) == list(range(300))


@ray.remote
def quick_sort(collection):
    if len(collection) <= 100:
        return sorted(collection)
    pivot = collection[0]
    lesser = quick_sort.remote([x for x in collection[1:] if x < pivot])
    greater = quick_sort.remote([x for x in collection[1:] if x >= pivot])
    return ray.get(lesser) + [pivot] + ray.get(greater)


def test_recursive_quicksort_tree_of_tasks(one_cpu):
    data = random.Random(3).sample(range(100000), 3000)
    assert ray.get(quick_sort.remote(data), timeout=120) == sorted(data)


@ray.remote
class Counter:
    def __init__(self):
        self.n = 0

    def inc(self):
        self.n += 1
        return self.n


@ray.remote
def calls_actor(c):
    return ray.get(c.inc.remote())


@ray.remote
def gets_a_task_that_calls_an_actor(c):
    return ray.get(calls_actor.remote(c))


def test_task_getting_a_nested_task_that_calls_an_actor(one_cpu):
    c = Counter.remote()
    assert ray.get(gets_a_task_that_calls_an_actor.remote(c), timeout=30) == 1
    assert sorted(ray.get([gets_a_task_that_calls_an_actor.remote(c) for _ in range(5)],
                          timeout=30)) == [2, 3, 4, 5, 6]


@ray.remote(max_concurrency=3)
class Threaded:
    def __init__(self):
        self.n = 0

    def inc(self):
        self.n += 1
        return 1


@ray.remote
def many_blocking_calls(a, n):
    return sum(ray.get(a.inc.remote()) for _ in range(n))


def test_many_tasks_making_blocking_calls_to_a_threaded_actor(one_cpu):
    a = Threaded.remote()
    assert ray.get([many_blocking_calls.remote(a, 50) for _ in range(10)],
                   timeout=120) == [50] * 10


@ray.remote
def pid_of():
    return os.getpid()


def test_gpu_and_cpu_tasks_never_share_a_worker_process(one_cpu):
    gpu_pids = set(ray.get([pid_of.options(num_gpus=1).remote() for _ in range(4)]))
    cpu_pids = set(ray.get([pid_of.remote() for _ in range(20)]))
    assert gpu_pids and cpu_pids and not gpu_pids & cpu_pids
    assert not set(ray.get([pid_of.options(num_gpus=1).remote() for _ in range(4)])) & cpu_pids


@ray.remote(max_retries=0)
def fails():
    raise ValueError("the first failure")


@ray.remote
def waits_on(gate):
    ray.get(gate.wait.remote())
    return "late"


def test_get_of_a_list_raises_a_failure_without_waiting_for_the_rest(one_cpu):
    gate = gate_actor(ray).remote()
    pending = waits_on.remote(gate)
    bad = fails.remote()
    with pytest.raises(ValueError, match="the first failure"):
        ray.get([pending, bad], timeout=30)
    with pytest.raises(ValueError, match="the first failure"):
        ray.get([bad, pending], timeout=30)  # already failed: at once, in either order
    ray.get(gate.open.remote())
    assert ray.get(pending, timeout=30) == "late"


@ray.remote
def get_list_in_a_task(gate):
    pending = waits_on.remote(gate)
    bad = fails.remote()
    try:
        ray.get([pending, bad])
    except ValueError as e:
        return "raised: " + str(e).splitlines()[-1]
    return "returned"


def test_get_of_a_list_in_a_task_raises_the_failure_too(one_cpu):
    gate = gate_actor(ray).remote()
    try:
        outcome = ray.get(get_list_in_a_task.remote(gate), timeout=30)
        assert outcome.startswith("raised") and "the first failure" in outcome
    finally:
        ray.get(gate.open.remote())
