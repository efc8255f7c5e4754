"""A live cluster's state rows, through shoal's state API and through Ray's paths on the
dashboard (``/api/v0/<resource>``, ``/summarize``, ``/api/version``, ``/api/jobs/``), carry
every column of Ray 2.60's schemas with Ray's types (the list is in
``tests/unit/state/test_state_schema.py``), so that Ray's CLI and SDK can read them."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

from shoal.util import state
from tests.conftest import gate_actor, shoal_processes, wait_for_condition
from tests.unit.state.test_state_schema import RAY_COLUMNS, base_columns, check_row, check_rows

RESOURCES = ("tasks", "actors", "nodes", "workers", "objects", "placement_groups", "jobs")
LISTERS = {"tasks": state.list_tasks, "actors": state.list_actors, "nodes": state.list_nodes,
           "workers": state.list_workers, "objects": state.list_objects,
           "placement_groups": state.list_placement_groups, "jobs": state.list_jobs}


@pytest.fixture(scope="module")
def busy():
    """A cluster with tasks finished, failed and running, actors alive and dead, an actor
    call, a placement group and objects held."""
    import shoal

    ctx = shoal.init(num_cpus=3, dashboard_port=0)
    Gate = gate_actor(shoal)

    @shoal.remote
    def fine(x):
        return x

    @shoal.remote
    def broken():
        raise ValueError("schema-boom")

    @shoal.remote
    class Counter:
        def incr(self):
            return os.getpid()

    gate = Gate.remote()
    held = gate.wait.remote()  # an actor call that stays RUNNING
    shoal.get([fine.remote(i) for i in range(3)])
    with pytest.raises(Exception, match="schema-boom"):
        shoal.get(broken.remote())
    counter = Counter.remote()
    counter_pid = shoal.get(counter.incr.remote())
    dead = Counter.options(name="gone").remote()
    shoal.get(dead.incr.remote())
    shoal.kill(dead)
    pg = shoal.util.placement_group([{"CPU": 1}])
    shoal.get(pg.ready())
    kept = shoal.put(b"x" * 200_000)
    wait_for_condition(lambda: any(a["state"] == "DEAD" for a in state.list_actors()))
    yield {"shoal": shoal, "url": "http://" + ctx.dashboard_url, "counter": counter,
           "counter_pid": counter_pid, "kept": kept}
    shoal.get(gate.open.remote())
    shoal.get(held)
    shoal.util.remove_placement_group(pg)
    shoal.shutdown()
    wait_for_condition(lambda: not shoal_processes(ctx["session_dir"]), timeout=15)


def get(busy, path: str):
    with urllib.request.urlopen(busy["url"] + path, timeout=30) as r:
        assert "json" in r.headers.get("Content-Type", "")
        return json.loads(r.read())


def all_columns(resource: str) -> list[str]:
    return [c for c, *_ in RAY_COLUMNS[resource]]


@pytest.mark.parametrize("resource", RESOURCES)
def test_state_api_rows_have_every_ray_column_with_its_type(busy, resource):
    detailed = LISTERS[resource](limit=10_000, detail=True)
    check_rows(resource, detailed, detail=True)
    short = LISTERS[resource](limit=10_000)
    check_rows(resource, short, detail=False)
    # As Ray's dataclasses: every column, the detail ones None without detail=True.
    base = set(base_columns(resource))
    for row in short:
        assert sorted(row) == sorted(all_columns(resource))
        assert all(row[c] is None for c in row if c not in base)


@pytest.mark.parametrize("resource", RESOURCES)
def test_rays_list_paths_answer_rays_columns_only(busy, resource):
    for detail, want in ((True, all_columns(resource)), (False, base_columns(resource))):
        body = get(busy, f"/api/v0/{resource}?limit=10000&detail={str(detail).lower()}")
        assert body["result"] is True and body["msg"] == ""
        res = body["data"]["result"]
        assert set(res) == {"total", "num_after_truncation", "num_filtered", "result",
                            "partial_failure_warning", "warnings"}
        assert res["total"] == res["num_after_truncation"] >= len(res["result"]) > 0
        for row in res["result"]:
            assert list(row) == want
            check_row(resource, row, detail=detail)


def test_actor_calls_name_their_actors_worker_and_node(busy):
    counter = busy["counter"]
    (actor,) = state.list_actors(filters=[("actor_id", "=", counter._actor_id.hex())],
                                 detail=True)
    calls = state.list_tasks(filters=[("actor_id", "=", actor["actor_id"]),
                                      ("state", "=", "FINISHED")], detail=True)
    assert calls
    for c in calls:
        assert c["type"] == "ACTOR_TASK" and c["node_id"] == actor["node_id"]
        assert c["worker_id"] == actor["worker_id"] and c["worker_pid"] == busy["counter_pid"]
    normal = state.list_tasks(filters=[("name", "=", "fine")], detail=True)
    assert all(t["worker_pid"] and t["node_id"] and t["worker_id"] for t in normal)


def test_workers_list_names_this_driver_with_its_ids(busy):
    (me,) = [w for w in state.list_workers(limit=10_000, detail=True)
             if w["worker_type"] == "DRIVER" and w["pid"] == os.getpid()]
    ctx = busy["shoal"].get_runtime_context()
    assert me["worker_id"] == ctx.get_worker_id() and me["node_id"] == ctx.get_node_id()
    assert me["is_alive"] and me["end_time_ms"] == 0


def test_get_by_id_and_filters_as_ray_sends_them(busy):
    aid = busy["counter"]._actor_id.hex()
    q = f"filter_keys=actor_id&filter_predicates=%3D&filter_values={aid}&detail=true"
    (row,) = get(busy, "/api/v0/actors?" + q)["data"]["result"]["result"]
    assert row["actor_id"] == aid and row["ray_namespace"] and row["num_restarts"] == 0
    # Strings match whatever their case, as in Ray.
    q = "filter_keys=state&filter_predicates=%3D&filter_values=finished&limit=10000"
    found = get(busy, "/api/v0/tasks?" + q)["data"]["result"]["result"]
    assert found and {t["state"] for t in found} == {"FINISHED"}
    with pytest.raises(urllib.error.HTTPError) as e:
        get(busy, "/api/v0/tasks?limit=10001")
    assert e.value.code == 400 and "limit" in json.loads(e.value.read())["msg"]


def test_summaries_in_rays_shapes(busy):
    res = get(busy, "/api/v0/tasks/summarize")["data"]["result"]
    cluster = res["result"]["node_id_to_summary"]["cluster"]
    assert cluster["summary_by"] == "func_name"
    assert cluster["summary"]["fine"] == {"func_or_class_name": "fine", "type": "NORMAL_TASK",
                                          "state_counts": {"FINISHED": 3}}
    assert cluster["total_tasks"] >= 4 and cluster["total_actor_tasks"] >= 3
    actors = get(busy, "/api/v0/actors/summarize")["data"]["result"]
    counts = actors["result"]["node_id_to_summary"]["cluster"]["summary"]["Counter"]
    assert counts["state_counts"] == {"ALIVE": 1, "DEAD": 1}
    objects = get(busy, "/api/v0/objects/summarize")["data"]["result"]
    summary = objects["result"]["node_id_to_summary"]["cluster"]
    assert summary["callsite_enabled"] is True and summary["total_objects"] >= 1
    assert set(state.summarize_tasks()["cluster"]) == set(cluster)


def test_version_in_rays_shape(busy):
    v = get(busy, "/api/version")
    assert v["version"] == "4" and isinstance(v["ray_commit"], str)
    assert tuple(int(x) for x in v["ray_version"].split(".")[:2]) >= (1, 9)
    assert v["session_name"].startswith("session_")
    assert v["shoal_version"] == busy["shoal"].__version__


def test_rays_jobs_paths_give_job_details(busy):
    jobs = get(busy, "/api/jobs/")
    for j in jobs:
        assert list(j) == all_columns("jobs")
        check_row("jobs", j)
    assert get(busy, f"/api/jobs/{jobs[0]['job_id']}") == jobs[0]
