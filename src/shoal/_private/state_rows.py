"""The state API's rows: pure conversions of the head's answers into the dicts Ray's state
API returns (field names of ``NodeState``, ``ActorState``, ``TaskState``, ``ObjectState``...),
and the filters and limits applied to them. Shared by :mod:`shoal.util.state`, the command
line and the dashboard; no I/O here."""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..actor import _HANDLE_MARK
from .ids import JobID

# Fields shown without ``detail=True`` (the others are added with it).
_NODE_FIELDS = ("node_id", "node_ip", "is_head_node", "state", "node_name", "resources_total")
_PG_FIELDS = ("placement_group_id", "name", "state", "strategy", "creator_job_id")
_ACTOR_FIELDS = ("actor_id", "class_name", "state", "job_id", "name", "node_id", "pid",
                 "namespace", "num_restarts")
_OBJECT_FIELDS = ("object_id", "object_size", "reference_type", "call_site", "type", "pid",
                  "ip", "node_id", "task_status")

# Ray's reason an object is alive (``ReferenceType`` of ``ray memory``).
USED_BY_PENDING_TASK = "USED_BY_PENDING_TASK"
LOCAL_REFERENCE = "LOCAL_REFERENCE"
CAPTURED_IN_OBJECT = "CAPTURED_IN_OBJECT"
BORROWED = "BORROWED"
PINNED_IN_MEMORY = "PINNED_IN_MEMORY"
UNKNOWN_STATUS = "UNKNOWN_STATUS"


def _pg_row(g: dict) -> dict:
    job = g.get("job_id")
    return {
        "placement_group_id": _hex(g["placement_group_id"]), "name": g.get("name") or "",
        "state": g["state"], "strategy": g["strategy"],
        "creator_job_id": JobID.from_int(job).hex() if isinstance(job, int) else None,
        "is_detached": bool(g.get("detached")),
        "bundles": [{"bundle_id": i, "unit_resources": b,
                     "node_id": _hex(g["bundles_to_node_id"][i])
                     if i < len(g["bundles_to_node_id"]) else None}
                    for i, b in enumerate(g["bundles"])],
    }


def _hex(b) -> str | None:
    return b.hex() if isinstance(b, (bytes, bytearray)) else b


def _node_row(n: dict) -> dict:
    return {
        "node_id": _hex(n["node_id"]), "node_ip": n["ip"], "is_head_node": bool(n["is_head"]),
        "state": "ALIVE" if n["alive"] else "DEAD", "node_name": n["ip"],
        "resources_total": dict(n["total"]), "resources_available": dict(n["available"]),
        "address": n["address"],
    }


def _actor_row(a: dict) -> dict:
    job = a.get("job_id")
    return {
        "actor_id": _hex(a["actor_id"]), "class_name": a["class_name"], "state": a["state"],
        "job_id": JobID.from_int(job).hex() if isinstance(job, int) else None,
        "name": a.get("name") or "", "node_id": _hex(a.get("node_id")), "pid": a.get("pid"),
        "namespace": a.get("namespace", ""), "ray_namespace": a.get("namespace", ""),
        "num_restarts": a.get("num_restarts", 0), "max_restarts": a.get("max_restarts"),
        "is_detached": bool(a.get("detached")), "death_cause": a.get("death_cause") or None,
        "address": a.get("address"), "worker_id": _hex(a.get("worker_id")),
    }




def object_rows(nodes: list[dict]) -> list[dict]:
    """The rows of :func:`list_objects` (every field) for a ``memory_summary`` answer.

    Actors' handle objects (internal: they scope an actor's lifetime) are left out. A
    borrower's row takes the object's size, call site and location from its owner's entry,
    when the owner answered. A segment no ref reaches any more but still mapped by a reader
    gets a row of its own (``PINNED_IN_MEMORY``, no process: who maps it is not known).
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
                                            _segment(o, segments), BORROWED, b["owner"]))
        for path, seg in sorted((n.get("segments") or {}).items()):
            if seg["freed"] and seg["pins"] > 0 and not seg["replica"]:
                rows.append(_pinned_row(n, path, seg))
    return rows


def _is_handle(oid: bytes, entry: dict | None) -> bool:
    # A detached actor's handle object is not marked (its scope is not the handle's).
    return bool(entry and entry.get("actor_handle")) or oid.endswith(_HANDLE_MARK)


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
    if o["borrowers"] > 0:
        return BORROWED
    if seg is not None and seg["pins"] > 0:
        return PINNED_IN_MEMORY
    return UNKNOWN_STATUS


def _process_type(p: dict) -> str:
    if p.get("actor_id"):
        return "ACTOR"
    return "DRIVER" if p["mode"] == "driver" else "WORKER"


def _task_status(o: dict) -> str | None:
    if "ready" not in o:
        return None
    return "FINISHED" if o["ready"] else "PENDING"


def _object_row(node: dict, proc: dict, o: dict, seg: dict | None, reference: str,
                owner_address: str) -> dict:
    known = "ready" in o  # False for a borrowed object whose owner did not answer
    return {
        "object_id": o["oid"].hex(), "object_size": o["size"] if known else None,
        "reference_type": reference, "call_site": o.get("name") or "",
        "type": _process_type(proc), "pid": proc["pid"], "ip": node["ip"],
        "node_id": _hex(node["node_id"]), "task_status": _task_status(o),
        "spilled": bool(seg and seg["spilled"]),
        "in_shared_memory": bool(o.get("path")) if known else None,
        "owner_address": owner_address, "store_node_id": _hex(o.get("node_id")),
    }


def _pinned_row(node: dict, path: str, seg: dict) -> dict:
    return {
        "object_id": os.path.basename(path).rsplit("-", 1)[-1], "object_size": seg["size"],
        "reference_type": PINNED_IN_MEMORY, "call_site": "", "type": None, "pid": None,
        "ip": node["ip"], "node_id": _hex(node["node_id"]), "task_status": "FINISHED",
        "spilled": bool(seg["spilled"]), "in_shared_memory": True, "owner_address": None,
        "store_node_id": _hex(node["node_id"]),
    }


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


def _select(rows: list[dict], filters, limit: int, fields: Iterable[str] | None) -> list[dict]:
    for key, op, value in _check_filters(filters, rows):
        rows = [r for r in rows if _matches(r.get(key), value) == (op == "=")]
    rows = rows[: max(int(limit), 0)]
    if fields is not None:
        return [StateRow((k, r[k]) for k in fields) for r in rows]
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
        return field == value or (field.isupper() and field == value.upper())
    return field == value



_TASK_FIELDS = ("task_id", "attempt_number", "name", "state", "job_id", "actor_id", "type",
                "func_or_class_name", "node_id", "worker_id", "error_type")


def task_rows(nodes: list[dict]) -> list[dict]:
    """The rows of ``list_tasks`` (every field) for a ``list_tasks`` answer of the head."""
    rows = []
    for node in nodes:
        for proc in node["processes"]:
            for t in proc["tasks"]:
                job = t.get("job_id")
                rows.append({
                    "task_id": _hex(t["task_id"]), "attempt_number": max(0, t["attempt"] - 1),
                    "name": t["name"], "state": t["state"],
                    "job_id": JobID.from_int(job).hex() if isinstance(job, int) else None,
                    "actor_id": _hex(t.get("actor_id")),
                    "type": "ACTOR_TASK" if t.get("actor_id") else "NORMAL_TASK",
                    "func_or_class_name": t["name"], "node_id": _hex(t.get("node_id")),
                    "worker_id": _hex(t.get("worker_id")), "error_type": t.get("error_type"),
                    "error_message": t.get("error"), "parent_task_id": _hex(t.get("parent")),
                    "creation_time_ms": int(t["submitted"] * 1000),
                    "start_time_ms": int(t["start"] * 1000) if t.get("start") else None,
                    "end_time_ms": int(t["end"] * 1000) if t.get("end") else None,
                    "owner_pid": proc["pid"],
                })
    rows.sort(key=lambda r: r["creation_time_ms"])
    return rows



# -- jobs ------------------------------------------------------------------------------------
_JOB_FIELDS = ("job_id", "submission_id", "type", "status", "entrypoint", "start_time",
               "end_time", "driver_info")


def job_row(j: dict) -> dict:
    """A job of the head's table as Ray's ``JobDetails`` (drivers only: there is no job
    submission server, so ``type`` is always ``DRIVER``)."""
    running = j.get("end_time") is None
    return {
        "job_id": JobID.from_int(j["job_id"]).hex(), "submission_id": None, "type": "DRIVER",
        "status": "RUNNING" if running else "SUCCEEDED", "entrypoint": j.get("entrypoint", ""),
        "start_time": int(j["start_time"] * 1000),
        "end_time": None if running else int(j["end_time"] * 1000),
        "driver_info": {"id": JobID.from_int(j["job_id"]).hex(),
                        "node_ip_address": j.get("driver_ip") or "127.0.0.1",
                        "pid": str(j.get("driver_pid", ""))},
        "namespace": j.get("namespace", ""), "message": "", "metadata": {},
        "runtime_env": {},
    }


# -- workers ---------------------------------------------------------------------------------
_WORKER_FIELDS = ("worker_id", "is_alive", "worker_type", "exit_type", "node_id", "ip", "pid")


def worker_rows(nodes_info: list[dict], log_nodes: list[dict], jobs: list[dict]) -> list[dict]:
    """Ray's ``WorkerState`` rows: every worker process that ever ran on a live node (its
    log file is the record; a live one is also in its node's ``node_info``) and every
    driver of the job table. A dead worker's id is known by its first 8 hex digits only."""
    live = {(_hex(n["node_id"]), w["pid"]): w for n in nodes_info for w in n["workers"]}
    ips = {_hex(n["node_id"]): n["ip"] for n in nodes_info}
    rows = []
    for n in log_nodes:
        nid = _hex(n["node_id"])
        for e in n["logs"]:
            if e["kind"] != "worker":
                continue
            w = live.get((nid, e["pid"]))
            rows.append({"worker_id": _hex(w["worker_id"]) if w else e["worker_id"],
                         "is_alive": w is not None, "worker_type": "WORKER",
                         "exit_type": None, "node_id": nid, "ip": ips.get(nid, n["ip"]),
                         "pid": e["pid"], "log_file": e["name"]})
    for j in jobs:
        rows.append({"worker_id": None, "is_alive": j.get("end_time") is None,
                     "worker_type": "DRIVER", "exit_type": None, "node_id": None,
                     "ip": j.get("driver_ip") or "127.0.0.1", "pid": j.get("driver_pid"),
                     "job_id": JobID.from_int(j["job_id"]).hex()})
    return rows
