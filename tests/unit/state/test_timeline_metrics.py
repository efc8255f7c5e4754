"""The timeline's Chrome trace and the Prometheus text (pure renderers)."""

import json

from prometheus_client.parser import text_string_to_metric_families

from shoal._private.state import timeline
from shoal.dashboard import metrics

NODE = {"node_id": "aa" * 28, "node_ip": "10.0.0.1", "state": "ALIVE"}


def _task(tid, name, state, start, end, worker="0123abcd", actor=None):
    return {"task_id": tid, "name": name, "state": state, "job_id": "01000000",
            "func_or_class_name": name,
            "actor_id": actor, "node_id": NODE["node_id"], "attempt_number": 0,
            "worker_id": None if actor else worker + "00" * 24, "error_type": None,
            "start_time_ms": start, "end_time_ms": end}


def test_chrome_trace_places_tasks_on_workers_and_actors():
    tasks = [_task("t1", "f", "FINISHED", 1000, 1005),
             _task("t2", "g", "FAILED", 1001, 1002),
             _task("t3", "A.m", "RUNNING", 1003, None, actor="bb" * 16),
             _task("t4", "h", "PENDING_NODE_ASSIGNMENT", None, None)]
    actors = {"bb" * 16: {"pid": 99, "node_id": NODE["node_id"]}}
    events = timeline.chrome_trace(tasks, [NODE], {"0123abcd": 42}, actors)
    json.loads(json.dumps(events))  # plain JSON
    spans = {e["args"]["task_id"]: e for e in events if e["ph"] == "X"}
    assert set(spans) == {"t1", "t2", "t3"}  # a task not started has no span
    assert spans["t1"]["ts"] == 1_000_000 and spans["t1"]["dur"] == 5000
    assert spans["t1"]["pid"] == 1 and spans["t1"]["tid"] == 42
    assert spans["t3"]["tid"] == 99 and spans["t3"]["dur"] == 2000  # running: up to now
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["ph"] == "M"}
    # Named as Ray names them: "Node <ip>" and "worker:<worker id>".
    assert names[(1, 0)] == "Node 10.0.0.1"
    assert names[(1, 42)] == "worker:" + "0123abcd" + "00" * 24
    args = spans["t1"]["args"]
    for key in ("task_id", "job_id", "actor_id", "attempt_number", "func_or_class_name"):
        assert key in args, key
    for e in events:
        assert {"ph", "name", "pid", "tid"} <= set(e)


def test_metrics_text_parses_with_prometheus_client():
    summary = {"tasks": {"RUNNING": 2, "FINISHED": 7, "FAILED": 1},
               "nodes": {"alive": 1, "dead": 1}, "jobs": {"running": 1, "finished": 0}}
    node = {**NODE, "node_ip": 'we"ird\\ip', "resources_total": {"CPU": 2.0, "node:x": 1},
            "resources_available": {"CPU": 0.5},
            "object_store": {"used": 100, "capacity": 1000, "spilled": 50, "num_objects": 3},
            "machine": {"cpu_percent": 12.5, "mem_used": 1, "mem_total": 2, "disk_used": 3,
                        "disk_total": 4}, "workers": [{}, {}]}
    dead = {**NODE, "node_id": "cc" * 28, "state": "DEAD"}
    text = metrics.render(summary, [node, dead], [{"state": "ALIVE"}, {"state": "DEAD"}])
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(f.name, tuple(sorted(s.labels.items()))): s.value
               for f in fams.values() for s in f.samples}
    assert samples[("shoal_tasks", (("State", "RUNNING"),))] == 2
    assert samples[("shoal_actors", (("State", "ALIVE"),))] == 1
    labels = (("NodeAddress", 'we"ird\\ip'), ("NodeId", NODE["node_id"]))
    assert samples[("shoal_object_store_spilled_bytes", labels)] == 50
    assert samples[("shoal_node_resource_total", labels + (("Resource", "CPU"),))] == 2
    assert ("shoal_node_resource_total", labels + (("Resource", "node:x"),)) not in samples
    assert fams["shoal_node_cpu_percent"].type == "gauge"
    # Dead nodes report nothing per node.
    assert not any(dict(k[1]).get("NodeId") == "cc" * 28 for k in samples)
