"""The state API's rows: pure conversions of the head's answers into the dicts Ray's state
API returns (field names of ``NodeState``, ``ActorState``, ``TaskState``, ``ObjectState``...),
and the filters and limits applied to them. Shared by :mod:`shoal.util.state`, the command
line and the dashboard; no I/O here."""

from __future__ import annotations

import os

from ..wire.ids import ACTOR_HANDLE_MARK, JobID
from . import schema as schema

# Ray's columns shown without ``detail=True`` (the others are added with it).
_NODE_FIELDS = schema.columns("nodes", False)
_PG_FIELDS = schema.columns("placement_groups", False)
_ACTOR_FIELDS = schema.columns("actors", False)
_OBJECT_FIELDS = schema.columns("objects", False)

# Ray's reason an object is alive (``ReferenceType`` of ``ray memory``).
USED_BY_PENDING_TASK = "USED_BY_PENDING_TASK"
LOCAL_REFERENCE = "LOCAL_REFERENCE"
CAPTURED_IN_OBJECT = "CAPTURED_IN_OBJECT"
BORROWED = "BORROWED"  # shoal's older name; rows now say what Ray says (see object_rows)
PINNED_IN_MEMORY = "PINNED_IN_MEMORY"
UNKNOWN_STATUS = "UNKNOWN_STATUS"


def _job_hex(job) -> str:
    """A job's id as Ray prints it; the nil id when it is not known."""
    return JobID.from_int(job).hex() if isinstance(job, int) else "ff" * 4


def _ms(t) -> int | None:
    return int(t * 1000) if t else None


def _pg_row(g: dict) -> dict:
    pg = _hex(g["placement_group_id"])
    return {
        "placement_group_id": pg, "name": g.get("name") or "",
        "creator_job_id": _job_hex(g.get("job_id")), "state": g["state"],
        "bundles": [{"bundle_id": {"placement_group_id": pg, "bundle_index": i},
                     "unit_resources": b, "label_selector": {},
                     "node_id": _hex(g["bundles_to_node_id"][i])
                     if i < len(g["bundles_to_node_id"]) else None}
                    for i, b in enumerate(g["bundles"])],
        "is_detached": bool(g.get("detached")), "stats": None, "topology_strategy": {},
        "topology_assignments": {},
        "strategy": g["strategy"],  # shoal's: Ray keeps it out of the state row
    }


def _hex(b) -> str | None:
    return b.hex() if isinstance(b, (bytes, bytearray)) else b


def _node_row(n: dict) -> dict:
    nid = _hex(n["node_id"])
    return {
        "node_id": nid, "node_ip": n["ip"], "is_head_node": bool(n["is_head"]),
        "state": "ALIVE" if n["alive"] else "DEAD",
        "state_message": None if n["alive"] else f"the node is dead: {n.get('death') or '?'}",
        "node_name": n["ip"], "resources_total": dict(n["total"]),
        "labels": {"ray.io/node-id": nid}, "start_time_ms": _ms(n.get("start_time")),
        "end_time_ms": 0 if n["alive"] else _ms(n.get("end_time")),
        "resources_available": dict(n["available"]), "address": n["address"],
    }


def _actor_row(a: dict) -> dict:
    aid, namespace = _hex(a["actor_id"]), a.get("namespace", "")
    return {
        "actor_id": aid, "class_name": a["class_name"], "state": a["state"],
        "job_id": _job_hex(a.get("job_id")), "name": a.get("name") or "",
        "node_id": _hex(a.get("node_id")), "pid": a.get("pid") or 0,
        "ray_namespace": namespace, "serialized_runtime_env": "{}",
        "required_resources": None, "death_cause": _death_cause(a, aid),
        "is_detached": bool(a.get("detached")), "placement_group_id": None, "repr_name": "",
        "num_restarts": a.get("num_restarts", 0),
        "num_restarts_due_to_lineage_reconstruction": 0,
        "num_restarts_due_to_node_preemption": 0, "call_site": None, "label_selector": {},
        "fallback_strategy": None,
        # shoal's own
        "namespace": namespace, "max_restarts": a.get("max_restarts"),
        "address": a.get("address"), "worker_id": _hex(a.get("worker_id")),
    }


def _death_cause(a: dict, aid: str) -> dict | None:
    """Why a dead actor died, in the shape of Ray's ``ActorDeathCause``."""
    cause = a.get("death_cause")
    if a["state"] != "DEAD" and not cause:
        return None
    return {"actor_died_error_context": {
        "error_message": cause or "The actor is dead.", "actor_id": aid,
        "class_name": a["class_name"], "name": a.get("name") or "",
        "ray_namespace": a.get("namespace", ""), "pid": a.get("pid") or 0,
        "never_started": not a.get("pid")}}


def object_rows(nodes: list[dict]) -> list[dict]:
    """The rows of :func:`list_objects` (every field) for a ``memory_summary`` answer.

    Actors' handle objects (internal: they scope an actor's lifetime) are left out. A
    borrower's row takes the object's size, call site and location from its owner's entry,
    when the owner answered; as in Ray its ``reference_type`` is ``LOCAL_REFERENCE`` (the
    borrower holds refs), and shoal's ``borrower`` field says it is a borrower's. An
    owner's row whose only holders are borrowers elsewhere is ``UNKNOWN_STATUS``. A segment
    no ref reaches any more but still mapped by a reader gets a row of its own
    (``PINNED_IN_MEMORY``, pid -1: who maps it is not known). Sizes not known are -1.
    """
    segments = {n["node_id"]: n.get("segments") or {} for n in nodes}
    owned = {(p["address"], o["oid"]): o
             for n in nodes for p in n["processes"] for o in p["owned"]}
    rows = []
    for n in nodes:
        for p in n["processes"]:
            for o in p["owned"]:
                if not _is_handle(o["oid"], o):
                    seg = _segment(o, segments)
                    rows.append(_object_row(n, p, o, seg, _owner_reference(o, seg),
                                            p["address"]))
            for b in p["borrowed"]:
                o = owned.get((b["owner"], b["oid"]))
                if not _is_handle(b["oid"], o):
                    rows.append(_object_row(n, p, o or {"oid": b["oid"]},
                                            _segment(o, segments), LOCAL_REFERENCE,
                                            b["owner"], borrower=True))
        for path, seg in sorted((n.get("segments") or {}).items()):
            if seg["freed"] and seg["pins"] > 0 and not seg["replica"]:
                rows.append(_pinned_row(n, path, seg))
    return rows


def _is_handle(oid: bytes, entry: dict | None) -> bool:
    # A detached actor's handle object is not marked (its scope is not the handle's).
    return bool(entry and entry.get("actor_handle")) or oid.endswith(ACTOR_HANDLE_MARK)


def _segment(o: dict | None, segments: dict) -> dict | None:
    if not o or not o.get("path"):
        return None
    return segments.get(o.get("node_id"), {}).get(o["path"])


def _owner_reference(o: dict, seg: dict | None) -> str:
    # ``local`` is the owner's own Python references (task holds, lineage and references
    # kept by other objects are counted apart by the runtime).
    if o["submitted"] > 0:
        return USED_BY_PENDING_TASK
    if o["local"] > 0:
        return LOCAL_REFERENCE
    if o["contained"] > 0:
        return CAPTURED_IN_OBJECT
    if seg is not None and seg["pins"] > 0:
        return PINNED_IN_MEMORY
    return UNKNOWN_STATUS


def _process_type(p: dict) -> str:
    if p.get("actor_id"):
        return "ACTOR"
    return "DRIVER" if p["mode"] == "driver" else "WORKER"


PENDING_OBJECT = "SUBMITTED_TO_WORKER"  # its task has not finished (Ray's TaskStatus)


def _task_status(o: dict) -> str:
    if "ready" not in o:
        return "NIL"  # not the owner's row, and the owner did not answer
    return "FINISHED" if o["ready"] else PENDING_OBJECT


def _object_row(node: dict, proc: dict, o: dict, seg: dict | None, reference: str,
                owner_address: str, borrower: bool = False) -> dict:
    known = "ready" in o  # False for a borrowed object whose owner did not answer
    return {
        "object_id": o["oid"].hex(), "object_size": o["size"] if known else -1,
        "task_status": _task_status(o), "attempt_number": 1, "reference_type": reference,
        "call_site": o.get("name") or "",
        "type": "DRIVER" if proc["mode"] == "driver" else "WORKER", "pid": proc["pid"],
        "ip": node["ip"],
        # shoal's own
        "node_id": _hex(node["node_id"]), "borrower": borrower,
        "actor_id": _hex(proc.get("actor_id")), "spilled": bool(seg and seg["spilled"]),
        "in_shared_memory": bool(o.get("path")) if known else None,
        "owner_address": owner_address, "store_node_id": _hex(o.get("node_id")),
    }


def _pinned_row(node: dict, path: str, seg: dict) -> dict:
    # Mapped by a reader of this node that is not known: pid -1, as Ray's -1 for unknowns.
    return {
        "object_id": os.path.basename(path).rsplit("-", 1)[-1], "object_size": seg["size"],
        "task_status": "FINISHED", "attempt_number": 1, "reference_type": PINNED_IN_MEMORY,
        "call_site": "", "type": "WORKER", "pid": -1, "ip": node["ip"],
        "node_id": _hex(node["node_id"]), "borrower": False, "actor_id": None,
        "spilled": bool(seg["spilled"]), "in_shared_memory": True, "owner_address": None,
        "store_node_id": _hex(node["node_id"]),
    }


# -- summaries (Ray's TaskSummaries, ActorSummaries, ObjectSummaries) ------------------------
def task_summary(rows: list[dict]) -> dict:
    """Tasks by name (``name``, else ``func_or_class_name``) and state, with Ray's totals:
    normal tasks, actor tasks and actor creations."""
    summary: dict[str, dict] = {}
    totals = {"NORMAL_TASK": 0, "ACTOR_TASK": 0, "ACTOR_CREATION_TASK": 0}
    for r in rows:
        key = r.get("name") or r["func_or_class_name"]
        entry = summary.setdefault(key, {"func_or_class_name": key, "type": r["type"],
                                         "state_counts": {}})
        entry["state_counts"][r["state"]] = entry["state_counts"].get(r["state"], 0) + 1
        if r["type"] in totals:
            totals[r["type"]] += 1
    return {"summary": summary, "total_tasks": totals["NORMAL_TASK"],
            "total_actor_tasks": totals["ACTOR_TASK"],
            "total_actor_scheduled": totals["ACTOR_CREATION_TASK"], "summary_by": "func_name"}


def actor_summary(rows: list[dict]) -> dict:
    summary: dict[str, dict] = {}
    for r in rows:
        entry = summary.setdefault(r["class_name"], {"class_name": r["class_name"],
                                                      "state_counts": {}})
        entry["state_counts"][r["state"]] = entry["state_counts"].get(r["state"], 0) + 1
    return {"summary": summary, "total_actors": len(rows), "summary_by": "class"}


def object_summary(rows: list[dict]) -> dict:
    """Objects by call site; each object counts once (its size too), however many
    processes hold a ref to it."""
    groups: dict[str, dict] = {}
    seen: set[str] = set()
    for r in rows:
        g = groups.setdefault(r["call_site"], {
            "total_objects": 0, "total_size_mb": 0.0, "total_num_workers": set(),
            "total_num_nodes": set(), "task_state_counts": {},
            "task_attempt_number_counts": {}, "ref_type_counts": {}})
        if r["object_id"] not in seen:
            seen.add(r["object_id"])
            g["total_objects"] += 1
            if r["object_size"] >= 0:
                g["total_size_mb"] += r["object_size"] / 2**20
            _count(g["task_state_counts"], r["task_status"])
            _count(g["task_attempt_number_counts"], str(r["attempt_number"]))
        if r["pid"] >= 0:
            g["total_num_workers"].add((r["ip"], r["pid"]))
        g["total_num_nodes"].add(r["ip"])
        _count(g["ref_type_counts"], r["reference_type"])
    for g in groups.values():
        g["total_num_workers"] = len(g["total_num_workers"])
        g["total_num_nodes"] = len(g["total_num_nodes"])
    return {"summary": groups, "total_objects": len(seen),
            "total_size_mb": sum(g["total_size_mb"] for g in groups.values()),
            "callsite_enabled": True, "summary_by": "callsite"}


def _count(counts: dict, key) -> None:
    counts[key] = counts.get(key, 0) + 1


class StateRow(dict):
    """A row of the state API: a dict (``row["state"]``, JSON as is) whose fields are also
    attributes (``row.state``), as Ray's state dataclasses allow both."""

    __slots__ = ()

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def asdict(self) -> dict:
        return dict(self)


def _select(rows: list[dict], filters, limit: int, resource: str | None = None,
            detail: bool = True) -> list[dict]:
    """The rows matching ``filters``, at most ``limit``; without ``detail`` each row has
    Ray's columns only, the detail ones None, as Ray's Python state API returns them."""
    for key, op, value in _check_filters(filters, rows):
        rows = [r for r in rows if _matches(r.get(key), value) == (op == "=")]
    rows = rows[: max(int(limit), 0)]
    if resource is not None and not detail:
        return [StateRow(schema.with_detail_none(r, resource)) for r in rows]
    return [StateRow(r) for r in rows]


def _check_filters(filters, rows: list[dict]) -> list[tuple[str, str, str]]:
    out = []
    for f in filters or ():
        if not isinstance(f, (tuple, list)) or len(f) != 3:
            raise ValueError(f"a filter is (key, '=' or '!=', value), got {f!r}")
        key, op, value = f
        if op not in ("=", "!="):
            raise ValueError(f"unsupported filter predicate {op!r}: use '=' or '!='")
        if rows and key not in rows[0]:
            raise ValueError(f"cannot filter on {key!r}; the fields are: "
                             f"{', '.join(sorted(rows[0]))}")
        out.append((key, op, value))
    return out


def _matches(field, value) -> bool:
    """Compare a field with a filter value given as text (from the command line) or typed."""
    if isinstance(field, bool):
        return str(value).strip().lower() in (("true", "1", "yes") if field else
                                              ("false", "0", "no"))
    if isinstance(field, (int, float)) and not isinstance(value, (int, float)):
        try:
            return float(value) == field
        except ValueError:
            return False
    if isinstance(field, str) and isinstance(value, str):
        return field.lower() == value.lower()  # as Ray: strings match case-insensitively
    return field == value



_TASK_FIELDS = schema.columns("tasks", False)


def task_rows(nodes: list[dict]) -> list[dict]:
    """The rows of ``list_tasks`` (every field) for a ``list_tasks`` answer of the head."""
    rows = [_task_row(t, proc) for node in nodes for proc in node["processes"]
            for t in proc["tasks"]]
    rows.sort(key=lambda r: r["creation_time_ms"])
    return rows


def _task_row(t: dict, proc: dict) -> dict:
    job = _job_hex(t.get("job_id"))
    failed = t["state"] == "FAILED"
    return {
        "task_id": _hex(t["task_id"]), "attempt_number": max(0, t["attempt"] - 1),
        "name": t["name"], "state": t["state"], "job_id": job,
        "actor_id": _hex(t.get("actor_id")),
        "type": "ACTOR_TASK" if t.get("actor_id") else "NORMAL_TASK",
        "func_or_class_name": t["name"],
        "parent_task_id": _hex(t.get("parent")) or schema.DRIVER_TASK_ID_PREFIX + job,
        "node_id": _hex(t.get("node_id")), "worker_id": _hex(t.get("worker_id")),
        "worker_pid": t.get("worker_pid"), "error_type": t.get("error_type"),
        "language": "PYTHON", "required_resources": None, "runtime_env_info": None,
        "placement_group_id": None, "events": _task_events(t), "profiling_data": None,
        "creation_time_ms": int(t["submitted"] * 1000), "start_time_ms": _ms(t.get("start")),
        "end_time_ms": _ms(t.get("end")), "task_log_info": None,
        "error_message": t.get("error") if failed else None, "is_debugger_paused": None,
        "call_site": None, "label_selector": {}, "fallback_strategy": None,
        "owner_pid": proc["pid"],  # shoal's own: the process that submitted it
    }


def _task_events(t: dict) -> list[dict]:
    """The task's state changes that its owner saw, as Ray's ``events``."""
    created = t["submitted"] * 1000
    out = [{"state": "PENDING_ARGS_AVAIL", "created_ms": created}]
    if t["state"] != "PENDING_ARGS_AVAIL":
        out.append({"state": "PENDING_NODE_ASSIGNMENT", "created_ms": created})
    if t.get("start"):
        out.append({"state": "RUNNING", "created_ms": t["start"] * 1000})
    if t.get("end") and t["state"] in ("FINISHED", "FAILED"):
        out.append({"state": t["state"], "created_ms": t["end"] * 1000})
    return out


# -- jobs ------------------------------------------------------------------------------------
_JOB_FIELDS = schema.columns("jobs", False)


def job_row(j: dict) -> dict:
    """A driver of the head's table as Ray's ``JobDetails`` (``SUBMISSION`` when a submitted
    job's entrypoint started it: the Jobs API then describes that job from its own record)."""
    running = j.get("end_time") is None
    job = JobID.from_int(j["job_id"]).hex()
    sid = j.get("submission_id") or None
    return {
        "type": "SUBMISSION" if sid else "DRIVER", "job_id": job, "submission_id": sid,
        "driver_info": {"id": job, "node_ip_address": j.get("driver_ip") or "127.0.0.1",
                        "pid": str(j.get("driver_pid", ""))},
        "status": "RUNNING" if running else "SUCCEEDED", "entrypoint": j.get("entrypoint", ""),
        "message": None, "error_type": None, "start_time": int(j["start_time"] * 1000),
        "end_time": None if running else int(j["end_time"] * 1000), "metadata": {},
        "runtime_env": {}, "driver_agent_http_address": None, "driver_node_id": None,
        "driver_exit_code": None,
        "namespace": j.get("namespace", ""),  # shoal's own
    }


# -- workers ---------------------------------------------------------------------------------
_WORKER_FIELDS = schema.columns("workers", False)


def worker_rows(nodes_info: list[dict], log_nodes: list[dict], jobs: list[dict],
                owners: list[dict] | None = None) -> list[dict]:
    """Ray's ``WorkerState`` rows: every worker process that ever ran on a live node (its
    log file is the record; a live one is also in its node's ``node_info``) and every
    driver of the job table. A dead worker's id is known by its first 8 hex digits only.
    ``owners`` (a ``list_tasks`` answer: each process's pid, worker id and mode, by node)
    names the drivers' worker ids and nodes; a driver not found there keeps its node by
    its IP and an empty worker id."""
    live = {(_hex(n["node_id"]), w["pid"]): w for n in nodes_info for w in n["workers"]}
    ips = {_hex(n["node_id"]): n["ip"] for n in nodes_info}
    rows = []
    for n in log_nodes:
        nid = _hex(n["node_id"])
        for e in n["logs"]:
            if e["kind"] != "worker":
                continue
            w = live.get((nid, e["pid"]))
            rows.append(_worker_row(_hex(w["worker_id"]) if w else e["worker_id"],
                                    w is not None, "WORKER", nid, ips.get(nid, n["ip"]),
                                    e["pid"], log_file=e["name"]))
    drivers = {(p["pid"], ips.get(_hex(n.get("node_id")))): (p, _hex(n.get("node_id")))
               for n in owners or () for p in n["processes"] if p.get("mode") == "driver"}
    by_ip = {ip: nid for nid, ip in ips.items()}
    for j in jobs:
        ip = j.get("driver_ip") or "127.0.0.1"
        proc, nid = drivers.get((j.get("driver_pid"), ip), (None, by_ip.get(ip)))
        rows.append(_worker_row(_hex(proc["worker_id"]) if proc else "",
                                j.get("end_time") is None, "DRIVER", nid or "", ip,
                                j.get("driver_pid") or 0, job_id=_job_hex(j["job_id"]),
                                start=j.get("start_time"), end=j.get("end_time")))
    return rows


def _worker_row(worker_id: str, alive: bool, kind: str, node_id: str, ip: str, pid: int,
                start=None, end=None, **own) -> dict:
    return {"worker_id": worker_id, "is_alive": alive, "worker_type": kind,
            "exit_type": None, "node_id": node_id, "ip": ip, "pid": pid,
            "exit_detail": None, "worker_launch_time_ms": None,
            "worker_launched_time_ms": None, "start_time_ms": _ms(start),
            "end_time_ms": _ms(end) if end else (0 if alive else None),
            "debugger_port": None, "num_paused_threads": None, **own}
