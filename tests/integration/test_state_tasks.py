"""Task records through the state API: states, errors, actor calls, summaries."""

from __future__ import annotations

import threading
import time

import pytest

import shoal as ray
from shoal.util import state
from tests.conftest import wait_for_condition


@pytest.fixture(scope="module", autouse=True)
def cluster(shoal_cluster):
    return shoal_cluster


def _named(name):
    return [t for t in state.list_tasks(limit=10_000, detail=True) if t["name"] == name]


def test_finished_and_failed_tasks_are_listed_with_errors():
    @ray.remote
    def st_ok(x):
        return x

    @ray.remote
    def st_bad():
        raise ZeroDivisionError("nope")

    ray.get([st_ok.remote(i) for i in range(4)])
    with pytest.raises(ZeroDivisionError):
        ray.get(st_bad.remote())
    oks = _named("st_ok")
    assert len(oks) == 4 and {t["state"] for t in oks} == {"FINISHED"}
    assert all(t["node_id"] == ray.get_runtime_context().get_node_id() for t in oks)
    (bad,) = _named("st_bad")
    assert bad["state"] == "FAILED" and bad["error_type"] == "ZeroDivisionError"
    assert "nope" in bad["error_message"]
    assert state.get_task(bad["task_id"])["state"] == "FAILED"
    only_failed = state.list_tasks(filters=[("state", "=", "FAILED")], limit=10_000)
    assert all(t["state"] == "FAILED" for t in only_failed) and only_failed


def test_running_task_and_nested_parent():
    gate = threading.Event()

    @ray.remote
    def st_child():
        time.sleep(30)

    @ray.remote
    def st_parent():
        return ray.get(st_child.remote())

    ref = st_parent.remote()
    wait_for_condition(lambda: [t["state"] for t in _named("st_parent")] == ["RUNNING"])
    # the child's record is kept by the parent's worker, its owner
    wait_for_condition(lambda: len(_named("st_child")) == 1, timeout=10)
    (child,) = _named("st_child")
    (parent,) = _named("st_parent")
    assert child["parent_task_id"] == parent["task_id"]
    ray.cancel(ref)
    gate.set()


def test_actor_calls_are_actor_tasks_and_summary_counts():
    @ray.remote
    class StActor:
        def hello(self):
            return "hi"

    a = StActor.remote()
    ray.get([a.hello.remote() for _ in range(3)])
    calls = _named("StActor.hello")
    assert len(calls) == 3 and {t["type"] for t in calls} == {"ACTOR_TASK"}
    assert {t["actor_id"] for t in calls} == {a._actor_id.hex()}
    summary = state.summarize_tasks()["cluster"]["summary"]
    assert summary["StActor.hello"]["state_counts"]["FINISHED"] == 3
