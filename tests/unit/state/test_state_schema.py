"""The state API's rows carry every column of Ray 2.60's state schemas with Ray's types
(``ray.util.state.common``: TaskState, ActorState, NodeState, WorkerState, ObjectState,
PlacementGroupState, and JobDetails for jobs), so Ray's own CLI and SDK accept them.

``RAY_COLUMNS`` is written out here from Ray's schema, independently of
``shoal._private.state.schema``, so that CI (which has no Ray) checks the schema; the
integration and e2e tests reuse ``check_row``."""

from __future__ import annotations

from shoal._private.state import rows as rows
from shoal._private.state import schema as state_schema

# resource -> [(column, type, detail)]; "?" marks Ray's Optional.
RAY_COLUMNS = {
    "tasks": [
        ("task_id", "str", 0), ("attempt_number", "int", 0), ("name", "str", 0),
        ("state", "str", 0), ("job_id", "str", 0), ("actor_id", "str?", 0),
        ("type", "str", 0), ("func_or_class_name", "str", 0), ("parent_task_id", "str", 0),
        ("node_id", "str?", 0), ("worker_id", "str?", 0), ("worker_pid", "int?", 0),
        ("error_type", "str?", 0), ("language", "str?", 1), ("required_resources", "dict?", 1),
        ("runtime_env_info", "dict?", 1), ("placement_group_id", "str?", 1),
        ("events", "list?", 1), ("profiling_data", "dict?", 1),
        ("creation_time_ms", "int?", 1), ("start_time_ms", "int?", 1),
        ("end_time_ms", "int?", 1), ("task_log_info", "dict?", 1),
        ("error_message", "str?", 1), ("is_debugger_paused", "bool?", 1),
        ("call_site", "str?", 1), ("label_selector", "dict?", 1),
        ("fallback_strategy", "dict?", 1)],
    "actors": [
        ("actor_id", "str", 0), ("class_name", "str", 0), ("state", "str", 0),
        ("job_id", "str", 0), ("name", "str?", 0), ("node_id", "str?", 0),
        ("pid", "int?", 0), ("ray_namespace", "str?", 0),
        ("serialized_runtime_env", "str?", 1), ("required_resources", "dict?", 1),
        ("death_cause", "dict?", 1), ("is_detached", "bool?", 1),
        ("placement_group_id", "str?", 1), ("repr_name", "str?", 1),
        ("num_restarts", "int", 1), ("num_restarts_due_to_lineage_reconstruction", "int", 1),
        ("num_restarts_due_to_node_preemption", "int", 1), ("call_site", "str?", 1),
        ("label_selector", "dict?", 1), ("fallback_strategy", "dict?", 1)],
    "placement_groups": [
        ("placement_group_id", "str", 0), ("name", "str", 0), ("creator_job_id", "str", 0),
        ("state", "str", 0), ("bundles", "list?", 1), ("is_detached", "bool?", 1),
        ("stats", "dict?", 1), ("topology_strategy", "dict?", 1),
        ("topology_assignments", "dict?", 1)],
    "nodes": [
        ("node_id", "str", 0), ("node_ip", "str", 0), ("is_head_node", "bool", 0),
        ("state", "str", 0), ("state_message", "str?", 0), ("node_name", "str", 0),
        ("resources_total", "dict", 0), ("labels", "dict", 0), ("start_time_ms", "int?", 1),
        ("end_time_ms", "int?", 1)],
    "workers": [
        ("worker_id", "str", 0), ("is_alive", "bool", 0), ("worker_type", "str", 0),
        ("exit_type", "str?", 0), ("node_id", "str", 0), ("ip", "str", 0), ("pid", "int", 0),
        ("exit_detail", "str?", 1), ("worker_launch_time_ms", "int?", 1),
        ("worker_launched_time_ms", "int?", 1), ("start_time_ms", "int?", 1),
        ("end_time_ms", "int?", 1), ("debugger_port", "int?", 1),
        ("num_paused_threads", "int?", 1)],
    "objects": [
        ("object_id", "str", 0), ("object_size", "int", 0), ("task_status", "str", 0),
        ("attempt_number", "int", 0), ("reference_type", "str", 0), ("call_site", "str", 0),
        ("type", "str", 0), ("pid", "int", 0), ("ip", "str", 0)],
    # Ray's JobDetails; the short listing is JobState.list_columns(detail=False).
    "jobs": [
        ("type", "str", 1), ("job_id", "str?", 0), ("submission_id", "str?", 0),
        ("driver_info", "dict?", 0), ("status", "str", 0), ("entrypoint", "str", 0),
        ("message", "str?", 0), ("error_type", "str?", 0), ("start_time", "int?", 1),
        ("end_time", "int?", 1), ("metadata", "dict?", 1), ("runtime_env", "dict?", 1),
        ("driver_agent_http_address", "str?", 1), ("driver_node_id", "str?", 1),
        ("driver_exit_code", "int?", 1)],
}
JOB_SHORT = ["job_id", "submission_id", "entrypoint", "type", "status", "message",
             "error_type", "driver_info"]
ENUMS = {
    ("tasks", "state"): {"NIL", "PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT",
                         "PENDING_OBJ_STORE_MEM_AVAIL", "PENDING_ARGS_FETCH",
                         "SUBMITTED_TO_WORKER", "PENDING_ACTOR_TASK_ARGS_FETCH",
                         "PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY", "RUNNING",
                         "RUNNING_IN_RAY_GET", "RUNNING_IN_RAY_WAIT", "FINISHED", "FAILED",
                         "GETTING_AND_PINNING_ARGS"},
    ("tasks", "type"): {"NORMAL_TASK", "ACTOR_CREATION_TASK", "ACTOR_TASK", "DRIVER_TASK"},
    ("actors", "state"): {"DEPENDENCIES_UNREADY", "PENDING_CREATION", "ALIVE", "RESTARTING",
                          "DEAD"},
    ("placement_groups", "state"): {"PENDING", "PREPARED", "CREATED", "REMOVED",
                                    "RESCHEDULING"},
    ("nodes", "state"): {"ALIVE", "DEAD"},
    ("workers", "worker_type"): {"WORKER", "DRIVER", "SPILL_WORKER", "RESTORE_WORKER"},
    ("objects", "type"): {"WORKER", "DRIVER", "SPILL_WORKER", "RESTORE_WORKER"},
    ("objects", "reference_type"): {"ACTOR_HANDLE", "PINNED_IN_MEMORY", "LOCAL_REFERENCE",
                                    "USED_BY_PENDING_TASK", "CAPTURED_IN_OBJECT",
                                    "UNKNOWN_STATUS"},
    ("jobs", "status"): {"PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"},
    ("jobs", "type"): {"SUBMISSION", "DRIVER"},
}
ENUMS[("objects", "task_status")] = ENUMS[("tasks", "state")]
_TYPES = {"str": str, "int": int, "bool": bool, "dict": dict, "list": list}


def base_columns(resource: str) -> list[str]:
    if resource == "jobs":
        return JOB_SHORT
    return [c for c, _t, detail in RAY_COLUMNS[resource] if not detail]


def check_row(resource: str, row: dict, detail: bool = True) -> None:
    """``row`` has every Ray column of ``resource`` (all of them with ``detail``, else at
    least the base ones) with a value of Ray's type, enum columns within Ray's values."""
    for name, kind, is_detail in RAY_COLUMNS[resource]:
        if is_detail and not detail and name not in base_columns(resource):
            continue
        assert name in row, f"{resource}: no {name!r} in {row}"
        value = row[name]
        if kind.endswith("?") and value is None:
            continue
        want = _TYPES[kind.rstrip("?")]
        ok = isinstance(value, want) and (want is bool or not isinstance(value, bool))
        assert ok, f"{resource}.{name}: {value!r} is not {kind}"
        allowed = ENUMS.get((resource, name))
        assert allowed is None or value in allowed, f"{resource}.{name}: {value!r}"


def check_rows(resource: str, found: list[dict], detail: bool = True) -> None:
    assert found, f"no {resource} rows to check"
    for r in found:
        check_row(resource, r, detail)


# -- the schema module matches Ray's ----------------------------------------------------------
def test_schema_module_lists_rays_columns_in_rays_order():
    for resource, cols in RAY_COLUMNS.items():
        got = [(name, bool(detail)) for name, _t, detail in state_schema.SCHEMAS[resource]]
        assert got == [(c, bool(d)) for c, _t, d in cols], resource
        assert list(state_schema.columns(resource, False)) == base_columns(resource)


def test_shape_is_rays_columns_only():
    row = {"task_id": "ab", "owner_pid": 7}
    shaped = state_schema.shape(row, "tasks", detail=False)
    assert list(shaped) == base_columns("tasks")
    assert shaped["task_id"] == "ab" and shaped["worker_pid"] is None
    assert list(state_schema.shape(row, "tasks", True)) == [c for c, *_ in RAY_COLUMNS["tasks"]]


# -- rows from the head's answers --------------------------------------------------------------
NODE = b"\x01" * 28
WORKER = b"\x02" * 28


def _task(state: str, **kw) -> dict:
    t = {"task_id": b"\x03" * 24, "name": "f", "job_id": 1, "actor_id": None, "state": state,
         "attempt": 1, "submitted": 100.0, "start": 100.5, "end": None, "node_id": NODE,
         "worker_id": WORKER, "worker_pid": 42, "error_type": None, "error": None,
         "parent": None}
    t.update(kw)
    return t


def test_task_rows_have_rays_types():
    tasks = [_task("PENDING_ARGS_AVAIL", attempt=0, start=None, node_id=None, worker_id=None,
                   worker_pid=None),
             _task("RUNNING", actor_id=b"\x04" * 16, parent=b"\x05" * 24),
             _task("FINISHED", end=101.0),
             _task("FAILED", end=101.0, error_type="ValueError", error="boom"),
             _task("FINISHED", job_id=None, end=101.0)]
    found = rows.task_rows([{"node_id": NODE, "processes": [
        {"pid": 9, "mode": "driver", "worker_id": WORKER, "tasks": tasks}]}])
    check_rows("tasks", found)
    pending, actor_call, done, failed, _ = found
    assert pending["parent_task_id"] == "ff" * 20 + "00000001"  # the driver's task
    assert actor_call["type"] == "ACTOR_TASK" and actor_call["worker_pid"] == 42
    assert actor_call["parent_task_id"] == "05" * 24
    assert [e["state"] for e in failed["events"]] == [
        "PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "RUNNING", "FAILED"]
    assert failed["error_message"] == "boom" and done["end_time_ms"] == 101000


def test_actor_node_pg_job_rows_have_rays_types():
    alive = {"actor_id": b"\x06" * 16, "class_name": "A", "name": "", "namespace": "ns",
             "state": "ALIVE", "address": "unix:/a", "incarnation": 0, "num_restarts": 0,
             "death_cause": "", "pid": 5, "node_id": NODE, "job_id": 1, "detached": False,
             "worker_id": WORKER, "max_restarts": 0}
    dead = {**alive, "state": "DEAD", "death_cause": "killed by ray.kill", "name": "x"}
    pending = {**alive, "state": "PENDING_CREATION", "pid": None, "node_id": None,
               "job_id": None}
    actors = [rows._actor_row(a) for a in (alive, dead, pending)]
    check_rows("actors", actors)
    assert actors[0]["death_cause"] is None
    ctx = actors[1]["death_cause"]["actor_died_error_context"]
    assert ctx["error_message"] == "killed by ray.kill" and ctx["name"] == "x"
    entry = {"node_id": NODE, "address": "unix:/n", "ip": "10.0.0.1", "total": {"CPU": 2.0},
             "available": {"CPU": 1.0}, "alive": True, "is_head": True, "start_time": 50.0,
             "end_time": None, "death": None}
    gone = {**entry, "alive": False, "end_time": 60.0, "death": "its connection closed"}
    nodes = [rows._node_row(n) for n in (entry, gone)]
    check_rows("nodes", nodes)
    assert nodes[0]["labels"] == {"ray.io/node-id": NODE.hex()}
    assert nodes[1]["end_time_ms"] == 60000 and "connection closed" in nodes[1]["state_message"]
    pg = {"placement_group_id": b"\x07" * 18, "name": "", "state": "CREATED", "strategy": "PACK",
          "bundles": [{"CPU": 1.0}, {"CPU": 1.0}], "bundles_to_node_id": [NODE],
          "namespace": "ns", "job_id": None, "detached": False}
    (g,) = [rows._pg_row(pg)]
    check_row("placement_groups", g)
    assert g["creator_job_id"] == "ffffffff" and g["bundles"][1]["node_id"] is None
    jobs = [rows.job_row({"job_id": 1, "driver_pid": 3, "namespace": "ns", "start_time": 1.0,
                          "end_time": e, "entrypoint": "python x.py", "driver_ip": "10.0.0.1"})
            for e in (None, 2.0)]
    check_rows("jobs", jobs)
    assert [j["status"] for j in jobs] == ["RUNNING", "SUCCEEDED"]
    assert jobs[0]["driver_info"] == {"id": jobs[0]["job_id"], "node_ip_address": "10.0.0.1",
                                      "pid": "3"}


def test_worker_rows_have_rays_types_and_drivers_their_ids():
    info = [{"node_id": NODE, "ip": "10.0.0.1", "workers": [
        {"pid": 11, "worker_id": WORKER, "job_id": 1}]}]
    logs = [{"node_id": NODE, "ip": "10.0.0.1", "logs": [
        {"kind": "worker", "name": "worker-02020202-11.log", "worker_id": "02020202",
         "pid": 11, "size": 1, "alive": True},
        {"kind": "worker", "name": "worker-0a0a0a0a-12.log", "worker_id": "0a0a0a0a",
         "pid": 12, "size": 1, "alive": False},
        {"kind": "node", "name": "head.log", "worker_id": None, "pid": None, "size": 1,
         "alive": True}]}]
    jobs = [{"job_id": 1, "driver_pid": 3, "start_time": 1.0, "end_time": None,
             "driver_ip": "10.0.0.1"},
            {"job_id": 2, "driver_pid": 4, "start_time": 1.0, "end_time": 2.0,
             "driver_ip": "10.0.0.1"}]
    owners = [{"node_id": NODE, "processes": [
        {"pid": 3, "mode": "driver", "worker_id": b"\x08" * 28, "tasks": []}]}]
    found = rows.worker_rows(info, logs, jobs, owners)
    check_rows("workers", found)
    live, dead, driver, finished = found
    assert live["is_alive"] and live["worker_id"] == WORKER.hex() and not dead["is_alive"]
    assert driver["worker_type"] == "DRIVER" and driver["worker_id"] == (b"\x08" * 28).hex()
    assert driver["node_id"] == NODE.hex() and driver["end_time_ms"] == 0
    assert finished["node_id"] == NODE.hex() and finished["end_time_ms"] == 2000


def test_object_rows_have_rays_types_even_when_unknown():
    owned = [{"oid": b"\x09" * 28, "name": "(put)", "ready": True, "size": 10, "path": None,
              "node_id": None, "local": 1, "submitted": 0, "borrowers": 0, "contained": 0},
             {"oid": b"\x0a" * 28, "name": "f", "ready": False, "size": 0, "path": None,
              "node_id": None, "local": 1, "submitted": 0, "borrowers": 0, "contained": 0}]
    proc = {"pid": 11, "mode": "worker", "worker_id": WORKER, "actor_id": None,
            "address": "unix:/w", "owned": owned,
            "borrowed": [{"oid": b"\x0b" * 28, "owner": "tcp:10.0.0.9:1", "local": 1}]}
    seg = "/dev/shm/shoal-tag-" + "0c" * 28
    found = rows.object_rows([{"node_id": NODE, "ip": "10.0.0.1", "store": {},
                               "segments": {seg: {"size": 5, "pins": 1, "spilled": False,
                                                  "replica": False, "freed": True}},
                               "processes": [proc]}])
    check_rows("objects", found)
    put, pending, borrowed, pinned = found
    assert put["task_status"] == "FINISHED" and put["type"] == "WORKER"
    assert pending["task_status"] not in ("FINISHED", "NIL")
    assert borrowed["object_size"] == -1 and borrowed["task_status"] == "NIL"
    assert pinned["reference_type"] == "PINNED_IN_MEMORY" and pinned["pid"] == -1


def test_summaries_have_rays_shapes():
    tasks = rows.task_rows([{"node_id": NODE, "processes": [{"pid": 9, "tasks": [
        _task("FINISHED"), _task("FAILED"), _task("RUNNING", actor_id=b"\x04" * 16,
                                                  name="A.m")]}]}])
    s = rows.task_summary(tasks)
    assert s["summary"]["f"] == {"func_or_class_name": "f", "type": "NORMAL_TASK",
                                 "state_counts": {"FINISHED": 1, "FAILED": 1}}
    assert (s["total_tasks"], s["total_actor_tasks"], s["total_actor_scheduled"],
            s["summary_by"]) == (2, 1, 0, "func_name")
    a = rows.actor_summary([{"class_name": "A", "state": "ALIVE"}])
    assert a == {"summary": {"A": {"class_name": "A", "state_counts": {"ALIVE": 1}}},
                 "total_actors": 1, "summary_by": "class"}
    o = rows.object_summary([{"object_id": "x", "object_size": 2**20, "task_status": "NIL",
                              "attempt_number": 1, "reference_type": "LOCAL_REFERENCE",
                              "call_site": "(put)", "pid": 3, "ip": "10.0.0.1"}])
    assert set(o) == {"summary", "total_objects", "total_size_mb", "callsite_enabled",
                      "summary_by"}
    assert o["summary"]["(put)"]["task_attempt_number_counts"] == {"1": 1}
    assert o["total_size_mb"] == 1.0
