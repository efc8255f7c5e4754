"""Ray 2.60's own command line against a shoal head's dashboard: ``ray list``,
``ray summary``, ``ray get`` and ``ray job list`` with ``--address http://...`` parse what
shoal serves (Ray's client validates every row against its schema).

This is the one cross-check that needs Ray: it runs ``/tmp/rayenv/bin/ray`` and is skipped,
saying so, where that is missing (CI has no Ray; ``tests/unit/state/test_state_schema.py`` and
``tests/integration/test_state_schema_live.py`` check the same schema without it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

RAY = "/tmp/rayenv/bin/ray"
pytestmark = pytest.mark.skipif(not os.path.exists(RAY),
                                reason=f"Ray's CLI is not installed at {RAY}")

_DRIVER = """
import sys, shoal
shoal.init()
@shoal.remote
def ray_cli_task(x):
    return x
@shoal.remote
def ray_cli_fails():
    raise ValueError("ray-cli-boom")
@shoal.remote
class RayCliActor:
    def call(self):
        return 1
a = RayCliActor.remote()
shoal.get([ray_cli_task.remote(i) for i in range(3)] + [a.call.remote()])
try:
    shoal.get(ray_cli_fails.remote())
except Exception:
    pass
pg = shoal.util.placement_group([{"CPU": 1}])
shoal.get(pg.ready())
kept = shoal.put(b"x" * 300_000)
print("ready", a._actor_id.hex(), shoal.get_runtime_context().get_node_id(), flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def driver(cli, head):
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli.env)
    try:
        line = proc.stdout.readline().split()
        assert line and line[0] == "ready", proc.stderr.read()
        yield {"actor_id": line[1], "node_id": line[2],
               "url": f"http://127.0.0.1:{head['dashboard_port']}"}
    finally:
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def ray(driver, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "SHOAL_"))}
    r = subprocess.run([RAY, *args, "--address", driver["url"]], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode == 0, f"ray {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def ray_json(driver, *args: str):
    return json.loads(ray(driver, *args, "--format", "json"))


@pytest.mark.parametrize("resource", ["tasks", "actors", "nodes", "workers", "objects",
                                      "placement-groups", "jobs"])
def test_ray_list_parses_every_resource(driver, resource):
    for detail in ((), ("--detail",)):
        rows = ray_json(driver, "list", resource, "--limit", "1000", *detail)
        assert rows, f"ray list {resource} found nothing"


def test_ray_list_shows_the_tasks_and_actor(driver):
    tasks = ray_json(driver, "list", "tasks", "--limit", "1000", "--detail")
    by_name = {}
    for t in tasks:
        by_name.setdefault(t["name"], []).append(t)
    assert len(by_name["ray_cli_task"]) == 3
    (failed,) = by_name["ray_cli_fails"]
    assert failed["state"] == "FAILED" and "ray-cli-boom" in failed["error_message"]
    (call,) = by_name["RayCliActor.call"]
    assert call["type"] == "ACTOR_TASK" and call["actor_id"] == driver["actor_id"]
    assert call["node_id"] == driver["node_id"] and call["worker_pid"] > 0
    actors = ray_json(driver, "list", "actors", "--filter", "class_name=RayCliActor")
    assert [a["actor_id"] for a in actors] == [driver["actor_id"]]
    assert actors[0]["state"] == "ALIVE"


def test_ray_get_an_actor_and_a_node(driver):
    out = ray(driver, "get", "actors", driver["actor_id"])
    assert driver["actor_id"] in out and "RayCliActor" in out and "ray_namespace" in out
    out = ray(driver, "get", "nodes", driver["node_id"])
    assert driver["node_id"] in out and "is_head_node: true" in out


def test_ray_summary_tasks_actors_objects(driver):
    out = ray(driver, "summary", "tasks")
    assert "ray_cli_task" in out and "FINISHED: 3" in out and "FAILED: 1" in out
    out = ray(driver, "summary", "actors")
    assert "RayCliActor" in out and "ALIVE: 1" in out
    out = ray(driver, "summary", "objects")
    assert "LOCAL_REFERENCE" in out


def test_ray_job_list(driver):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "SHOAL_"))}
    r = subprocess.run([RAY, "job", "list", "--address", driver["url"]], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert "JobDetails(type=<JobType.DRIVER" in r.stdout + r.stderr
    assert "status=<JobStatus.RUNNING" in r.stdout + r.stderr
