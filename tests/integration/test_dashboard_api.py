"""The dashboard's JSON API, /metrics and the timeline, against a real local cluster."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import gate_actor, shoal_processes, wait_for_condition


@pytest.fixture(scope="module")
def dash():
    import shoal

    ctx = shoal.init(num_cpus=2, dashboard_port=0)
    with open(os.path.join(ctx["session_dir"], "token")) as f:
        token = f.read().strip()
    yield {"url": "http://" + ctx.dashboard_url, "token": token, "ctx": ctx}
    shoal.shutdown()
    wait_for_condition(lambda: not shoal_processes(ctx["session_dir"]), timeout=15)


def get(dash, path, headers=None, method="GET"):
    req = urllib.request.Request(dash["url"] + path, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
            status = r.status
            ctype = r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        body, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
    return status, (json.loads(body) if "json" in ctype else body.decode())


def test_url_is_in_the_context_and_the_address_file(dash):
    host, port = dash["ctx"].dashboard_url.split(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert dash["ctx"]["webui_url"] == dash["ctx"].dashboard_url
    status, body = get(dash, "/api/whoami")
    assert status == 200 and body["loopback"] and not body["authenticated"]


def test_overview_counts_running_then_finished(dash):
    import shoal

    Gate = gate_actor(shoal)

    @shoal.remote
    def held(gate):
        shoal.get(gate.wait.remote())
        return 1

    status, before = get(dash, "/api/cluster")
    assert status == 200 and before["nodes"]["alive"] == 1
    assert before["resources_total"]["CPU"] == 2
    gate = Gate.remote()
    refs = [held.remote(gate) for _ in range(2)]
    wait_for_condition(lambda: get(dash, "/api/cluster")[1]["tasks_running"] >= 2, timeout=20)
    shoal.get(gate.open.remote())
    assert shoal.get(refs) == [1, 1]
    wait_for_condition(lambda: get(dash, "/api/cluster")[1]["tasks"]["FINISHED"]
                       >= before["tasks"]["FINISHED"] + 2, timeout=20)
    _, nodes = get(dash, "/api/nodes")
    node = nodes["nodes"][0]
    assert node["state"] == "ALIVE" and node["machine"]["mem_total"] > 0
    assert node["object_store"]["capacity"] > 0 and node["workers"]


def test_failed_task_carries_its_traceback_and_filters_work(dash):
    import shoal

    @shoal.remote(max_retries=0)
    def explode():
        raise ValueError("boom-api-7")

    with pytest.raises(ValueError):
        shoal.get(explode.remote())
    status, body = get(dash, "/api/tasks?state=failed&name=explode")
    assert status == 200 and body["total"] == 1
    t = body["tasks"][0]
    assert t["error_type"] == "ValueError" and "boom-api-7" in t["error_message"]
    assert "raise ValueError" in t["error_message"] and "explode" in t["error_message"]
    status, one = get(dash, f"/api/tasks/{t['task_id']}")
    assert status == 200 and one["task"]["task_id"] == t["task_id"]
    assert get(dash, "/api/tasks/" + "ab" * 24)[0] == 404
    status, err = get(dash, "/api/tasks/not-hex")
    assert status == 400 and "hexadecimal" in err["error"]
    assert get(dash, "/api/tasks?limit=x")[0] == 400
    # The failed task's worker log can be read by the task's worker id.
    status, log = get(dash, f"/api/logs/read?node_id={t['node_id']}&worker_id={t['worker_id']}")
    assert status == 200 and log["name"].startswith("worker-" + t["worker_id"][:8])


def test_actor_calls_logs_and_kill(dash):
    import shoal

    @shoal.remote
    class Talker:
        def say(self, word):
            print("talker-said", word)
            return word

    a = Talker.remote()
    assert shoal.get([a.say.remote(i) for i in range(3)]) == [0, 1, 2]
    aid = a._actor_id.hex()
    status, body = get(dash, f"/api/actors/{aid}")
    assert status == 200 and body["actor"]["state"] == "ALIVE"
    assert body["actor"]["calls"]["total"] == 3 and body["actor"]["calls"]["FINISHED"] == 3

    def logged():
        _, log = get(dash, f"/api/logs/read?actor_id={aid}")
        return "talker-said 2" in log["data"]

    wait_for_condition(logged, timeout=10)
    kill = f"/api/actors/{aid}/kill"
    assert get(dash, kill, method="POST")[0] == 401  # no token
    bearer = {"Authorization": f"Bearer {dash['token']}"}
    status, _ = get(dash, kill, {**bearer, "Origin": "http://evil.example"}, "POST")
    assert status == 403
    status, _ = get(dash, kill, {**bearer, "Host": "evil.example"}, "POST")
    assert status == 421
    assert get(dash, f"/api/actors/{aid}")[1]["actor"]["state"] == "ALIVE"
    origin = {**bearer, "Origin": dash["url"]}
    status, body = get(dash, kill, origin, "POST")
    assert status == 200 and body["ok"]
    wait_for_condition(lambda: get(dash, f"/api/actors/{aid}")[1]["actor"]["state"] == "DEAD")
    with pytest.raises(shoal.exceptions.RayActorError):
        shoal.get(a.say.remote(4))
    assert get(dash, "/api/actors/" + "cd" * 16 + "/kill", origin, "POST")[0] == 404


def test_logs_are_named_by_ids_never_paths(dash):
    status, body = get(dash, "/api/logs")
    node = body["nodes"][0]
    assert any(e["name"] == "head.log" for e in node["logs"])
    nid = node["node_id"]
    status, err = get(dash, f"/api/logs/read?node_id={nid}&worker_id=../../../etc/passwd")
    assert status == 400
    status, err = get(dash, f"/api/logs/read?node_id={nid}&pid=../x")
    assert status == 400
    status, err = get(dash, f"/api/logs/read?node_id={nid}&pid=1")
    assert status == 404 and "pid 1" in err["error"]
    status, err = get(dash, "/api/logs/read?node_id=" + "ee" * 28)
    assert status == 404 and "not alive" in err["error"]
    status, log = get(dash, f"/api/logs/read?node_id={nid}&tail=5")
    assert status == 200 and log["name"] == "head.log"
    # Following: reading from the answer's offset gives only what came after.
    _, again = get(dash, f"/api/logs/read?node_id={nid}&offset={log['offset']}")
    assert again["offset"] >= log["offset"]


def test_jobs_objects_and_metrics(dash):
    import shoal

    _, jobs = get(dash, "/api/jobs")
    mine = [j for j in jobs["jobs"] if j["driver_info"]["pid"] == str(os.getpid())]
    assert mine and mine[0]["status"] == "RUNNING" and mine[0]["type"] == "DRIVER"
    big = shoal.put(np.zeros(4 << 20, dtype=np.uint8))
    _, objs = get(dash, "/api/objects")
    row = [o for o in objs["objects"] if o["object_id"] == big.hex()]
    assert row and row[0]["object_size"] >= 4 << 20
    assert row[0]["reference_type"] == "LOCAL_REFERENCE"
    status, text = get(dash, "/metrics")
    assert status == 200
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    used = sum(s.value for s in fams["shoal_object_store_used_bytes"].samples)
    assert used >= 4 << 20
    finished = [s.value for s in fams["shoal_tasks"].samples if s.labels["State"] == "FINISHED"]
    assert finished and finished[0] >= 1
    cpus = [s.value for s in fams["shoal_node_resource_total"].samples
            if s.labels["Resource"] == "CPU"]
    assert cpus == [2.0]
    assert "shoal_actors" in fams and "shoal_object_store_spilled_bytes" in fams
    del big


def test_timeline_is_a_chrome_trace(dash, tmp_path):
    import shoal

    @shoal.remote
    def step(i):
        return i

    shoal.get([step.remote(i) for i in range(5)])
    status, events = get(dash, "/api/timeline")
    assert status == 200 and isinstance(events, list)
    spans = [e for e in events if e["ph"] == "X" and e["name"] == "step"]
    assert len(spans) == 5
    for e in spans:
        assert e["dur"] >= 0 and e["ts"] > 0 and isinstance(e["tid"], int)
    path = tmp_path / "trace.json"
    assert shoal.timeline(str(path)) is None
    loaded = json.loads(path.read_text())
    assert len([e for e in loaded if e.get("name") == "step" and e["ph"] == "X"]) == 5
    assert isinstance(shoal.timeline(), list)


def test_security_headers_and_unknown_pages(dash):
    req = urllib.request.Request(dash["url"] + "/")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert get(dash, "/static/../token")[0] == 404
    assert get(dash, "/static/token")[0] == 404
    assert get(dash, "/api/nothing")[0] == 404


def test_cancel_a_task_from_the_dashboard(dash):
    import shoal

    @shoal.remote
    def forever(path):
        import time

        open(path, "w").close()
        while True:  # cancellation interrupts this
            time.sleep(0.05)

    import tempfile

    path = os.path.join(tempfile.mkdtemp(), "started")
    ref = forever.remote(path)
    wait_for_condition(lambda: os.path.exists(path), timeout=20)
    tid = ref.task_id().hex()
    url = f"/api/tasks/{tid}/cancel"
    assert get(dash, url, method="POST")[0] == 401
    auth = {"Authorization": f"Bearer {dash['token']}", "Origin": dash["url"]}
    status, body = get(dash, url, auth, "POST")
    assert status == 200 and body["ok"], body
    with pytest.raises(shoal.exceptions.TaskCancelledError):
        shoal.get(ref, timeout=20)
    wait_for_condition(lambda: get(dash, f"/api/tasks/{tid}")[1]["task"]["state"] == "FAILED")
    status, body = get(dash, url, auth, "POST")
    assert status == 409 and "already ended" in body["error"]
    assert get(dash, "/api/tasks/" + "ab" * 24 + "/cancel", auth, "POST")[0] == 404


def test_task_list_limit_and_total(dash):
    import shoal

    @shoal.remote
    def numbered(i):
        return i

    shoal.get([numbered.remote(i) for i in range(6)])
    _, all_tasks = get(dash, "/api/tasks?limit=100000")
    _, page = get(dash, "/api/tasks?limit=2")
    assert page["total"] == all_tasks["total"] >= 6 and len(page["tasks"]) == 2
    assert page["tasks"] == all_tasks["tasks"][:2]  # the newest two, newest first
    _, finished = get(dash, "/api/tasks?state=finished&limit=3")
    assert len(finished["tasks"]) == 3 and {t["state"] for t in finished["tasks"]} == {"FINISHED"}
    _, named = get(dash, "/api/tasks?name=numbered")
    assert named["total"] == 6


def test_every_script_the_page_loads_is_served(dash):
    import re

    status, html = get(dash, "/")
    assert status == 200
    scripts = re.findall(r'<script src="(/static/[a-z_]+\.js)"', html)
    styles = re.findall(r'<link[^>]+href="(/static/[a-z_]+\.css)"', html)
    assert "/static/app.js" in scripts and len(scripts) >= 2 and styles
    for path in scripts + styles:
        assert get(dash, path)[0] == 200, path


def test_refusals_carry_the_security_headers_too(dash):
    req = urllib.request.Request(dash["url"] + "/api/actors/ab/kill", method="POST")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("a kill without the token was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 401
        assert e.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'self'" in e.headers["Content-Security-Policy"]


def test_application_metrics_from_tasks_actors_and_the_driver(dash):
    import shoal
    from shoal.util.metrics import Counter, Gauge, Histogram

    served = Counter("app_served", "Items served", tag_keys=("kind",))

    @shoal.remote
    def serve(counter, n):
        counter.inc(n, tags={"kind": "task"})
        return n

    @shoal.remote
    class Depth:
        def __init__(self):
            self.g = Gauge("app_queue_depth", "Queue depth")

        def set(self, v):
            self.g.set(v)

    assert sum(shoal.get([serve.remote(served, i) for i in (1, 2, 3)])) == 6
    served.inc(4, tags={"kind": "driver"})
    d = Depth.remote()
    shoal.get(d.set.remote(17))
    h = Histogram("app_latency_s", boundaries=[0.5, 1.0])
    h.observe(0.2)
    h.observe(0.7)
    status, text = get(dash, "/metrics")
    assert status == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("app_served_total", (("kind", "task"),))] == 6  # over every worker
    assert samples[("app_served_total", (("kind", "driver"),))] == 4
    assert samples[("app_queue_depth", ())] == 17
    assert samples[("app_latency_s_bucket", (("le", "0.5"),))] == 1
    assert samples[("app_latency_s_count", ())] == 2


def test_rays_own_paths_answer_in_rays_shapes(dash):
    import shoal

    @shoal.remote
    def ray_shaped(i):
        return i

    shoal.get([ray_shaped.remote(i) for i in range(3)])
    q = "filter_keys=name&filter_predicates=%3D&filter_values=ray_shaped&limit=2"
    status, body = get(dash, "/api/v0/tasks?" + q)
    assert status == 200 and body["result"] is True
    res = body["data"]["result"]
    assert res["num_filtered"] == 3 and len(res["result"]) == 2
    assert {t["name"] for t in res["result"]} == {"ray_shaped"}
    assert "error_message" not in res["result"][0]  # detail adds it
    _, detailed = get(dash, "/api/v0/tasks?" + q + "&detail=true")
    assert "error_message" in detailed["data"]["result"]["result"][0]
    status, nodes = get(dash, "/api/v0/nodes")
    assert nodes["data"]["result"]["result"][0]["state"] == "ALIVE"
    status, bad = get(dash, "/api/v0/tasks?filter_keys=nope&filter_predicates=%3D"
                            "&filter_values=x")
    assert status == 400 and "nope" in bad["msg"]
    assert get(dash, "/api/v0/nothing")[0] == 404
    status, trace = get(dash, "/api/v0/tasks/timeline")
    assert status == 200 and any(e.get("name") == "ray_shaped" for e in trace)
    status, jobs = get(dash, "/api/jobs/")
    assert status == 200 and isinstance(jobs, list) and jobs[0]["type"] == "DRIVER"
    status, one = get(dash, f"/api/jobs/{jobs[0]['job_id']}")
    assert status == 200 and one["job_id"] == jobs[0]["job_id"]
    assert get(dash, "/api/jobs/ffffffff")[0] == 404
