"""The state API (Ray's ``ray.util.state``): list the nodes, actors, placement groups and
objects of a cluster.

``list_nodes()``, ``list_actors()`` and the others ask the cluster's head (its control store)
and return plain dicts with the field names of Ray's state API, so that scripts written for
Ray work.
In a driver where ``shoal.init()`` has run, the driver's own head connection is used;
elsewhere (the ``shoal`` command line, a plain script) the cluster is found on this machine
through its session directory, which also holds the token needed to connect.

Objects have no cluster-wide table: ``list_objects()`` asks the head for a memory view,
which it gathers from every node's daemon, which asks each process of its node what it owns
and borrows and why each object is alive. Tasks are not offered yet.

This module also holds the lookup of local sessions that the command line shares.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable

import psutil

from .._private import local_cluster, transport
from .._private.config import config
from .._private.ids import JobID
from .._private.session import Session
from ..actor import _HANDLE_MARK

DEFAULT_LIMIT = 100
TOKEN_ENV = "SHOAL_TOKEN"

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


class ClusterNotFoundError(ConnectionError):
    """No running cluster could be found or reached (the message says which and why)."""


# -- local sessions ----------------------------------------------------------------------
def session_dirs() -> list[str]:
    """Every ``session_*`` directory under the session root, newest first."""
    root = config.session_root
    try:
        names = os.listdir(root)
    except OSError:
        return []
    paths = [os.path.join(root, n) for n in names
             if n.startswith("session_") and not n.startswith("session_latest")]
    paths = [p for p in paths if os.path.isdir(p) and not os.path.islink(p)]
    return sorted(paths, key=_mtime, reverse=True)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def read_address(path: str) -> dict | None:
    """The ``address.json`` a session's daemon wrote when it became ready, if any."""
    try:
        with open(os.path.join(path, "address.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def pid_alive(pid) -> bool:
    """Whether the process runs (a zombie, exited but not yet reaped, does not)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def live_sessions() -> list[tuple[str, dict]]:
    """``(session dir, address info)`` of each session whose daemon runs, newest first."""
    out = []
    for path in session_dirs():
        info = read_address(path)
        if info is not None and pid_alive(info.get("pid")):
            out.append((path, info))
    return out


def _latest_live() -> tuple[str, dict] | None:
    """The session ``address="auto"`` would pick: ``session_latest`` first, then the newest."""
    latest = os.path.realpath(os.path.join(config.session_root, "session_latest"))
    info = read_address(latest)
    if info is not None and pid_alive(info.get("pid")):
        return latest, info
    sessions = live_sessions()
    return sessions[0] if sessions else None


def resolve_cluster(address: str | None = None) -> tuple[str, bytes]:
    """``(head address, token)`` of the cluster at ``address`` (HOST:PORT), or of the local
    cluster when ``address`` is None or ``"auto"``.

    The local cluster's token is read from its session. For an explicit address the token
    is ``SHOAL_TOKEN`` if set, else that of a live session of that cluster on this machine.
    """
    env_token = os.environ.get(TOKEN_ENV, "").strip().encode()
    if address in (None, "", "auto"):
        found = _latest_live()
        if found is None:
            raise ClusterNotFoundError(
                "No running shoal cluster was found on this machine "
                f"(looked in {config.session_root}). Start one with `shoal start --head`.")
        path, info = found
        return info["head_address"], Session(path).read_token()
    sess = local_cluster.find_session_for_head(address)
    if sess is not None:
        return address, env_token or sess.read_token()
    if env_token:
        return address, env_token
    raise ClusterNotFoundError(
        f"No token for the cluster at {address}: no node of it runs on this machine. "
        f"Set {TOKEN_ENV} to the token printed by `shoal start --head`.")


# -- asking the head ---------------------------------------------------------------------
def head_request(kind: str, body: dict | None = None, address: str | None = None,
                 timeout: float = 30.0) -> dict:
    """Send one request to the cluster's control store and return the reply's body.

    A driver (``shoal.init()`` done) asks through its own head connection; any other process
    connects to the head for this one request.
    """
    from .. import api

    if address in (None, "auto") and api.is_initialized():
        rt = api._runtime()
        return rt.call(rt.head_conn.request(kind, body or {}, timeout=timeout), timeout + 1)[0]
    head, token = resolve_cluster(address)
    try:
        return asyncio.run(_ask(head, token, kind, body or {}, timeout))
    except transport.AuthError as e:
        raise ClusterNotFoundError(f"The head at {head} refused the token: {e}") from None
    except (OSError, ConnectionError, TimeoutError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else (str(e) or "timed out")
        raise ClusterNotFoundError(f"Could not connect to the head at {head}: {why}") from None


async def _ask(head: str, token: bytes, kind: str, body: dict, timeout: float) -> dict:
    conn = await transport.connect(head, token, None, hello={"role": "tool"},
                                   timeout=min(timeout, config.connect_timeout_s))
    try:
        reply, _ = await conn.request(kind, body, timeout=timeout)
    finally:
        conn.close()
    return reply


def raw_nodes(address: str | None = None) -> list[dict]:
    """The head's node table as it sends it (ids as bytes; ``total``/``available``)."""
    return head_request("get_nodes", address=address)["nodes"]


# -- the state API -----------------------------------------------------------------------
def list_nodes(filters: list[tuple] | None = None, limit: int = DEFAULT_LIMIT,
               detail: bool = False, address: str | None = None, timeout: float = 30.0,
               raise_on_missing_output: bool = True) -> list[dict]:
    """Every node the cluster has known, dead ones included (Ray's ``NodeState`` fields).

    ``filters`` is a list of ``(key, "=" or "!=", value)``; ``limit`` caps the rows;
    ``detail`` adds ``resources_available`` and ``address``. ``raise_on_missing_output`` is
    accepted for Ray's signature: the head always answers in full.
    """
    rows = [_node_row(n) for n in head_request("get_nodes", address=address,
                                               timeout=timeout)["nodes"]]
    return _select(rows, filters, limit, None if detail else _NODE_FIELDS)


def list_actors(filters: list[tuple] | None = None, limit: int = DEFAULT_LIMIT,
                detail: bool = False, address: str | None = None, timeout: float = 30.0,
                raise_on_missing_output: bool = True) -> list[dict]:
    """Every actor of the cluster, dead ones included (Ray's ``ActorState`` fields).

    Arguments as :func:`list_nodes`; ``detail`` adds ``ray_namespace``, ``is_detached``,
    ``death_cause``, ``max_restarts``, ``address`` and ``worker_id``.
    """
    rows = [_actor_row(a) for a in head_request("list_actors", address=address,
                                                timeout=timeout)["actors"]]
    return _select(rows, filters, limit, None if detail else _ACTOR_FIELDS)


def list_placement_groups(filters: list[tuple] | None = None, limit: int = DEFAULT_LIMIT,
                          detail: bool = False, address: str | None = None,
                          timeout: float = 30.0,
                          raise_on_missing_output: bool = True) -> list[dict]:
    """Every placement group of the cluster, removed ones included (Ray's
    ``PlacementGroupState`` fields); ``detail`` adds the bundles and their nodes."""
    rows = [_pg_row(g) for g in head_request("pg_table", address=address,
                                             timeout=timeout)["groups"]]
    return _select(rows, filters, limit, None if detail else _PG_FIELDS)


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


# -- objects -------------------------------------------------------------------------------
def memory_summary(address: str | None = None, timeout: float = 30.0) -> list[dict]:
    """Every live node's memory view as the head gathers it (ids as bytes): its store's
    accounting, its shared-memory segments and what each of its processes owns and borrows."""
    return head_request("memory_summary", address=address, timeout=timeout)["nodes"]


def list_objects(filters: list[tuple] | None = None, limit: int = DEFAULT_LIMIT,
                 detail: bool = False, address: str | None = None, timeout: float = 30.0,
                 raise_on_missing_output: bool = True) -> list[dict]:
    """The objects referenced in the cluster (Ray's ``ObjectState`` fields), one row per
    process and object: an owner's row for each object it owns, a borrower's row for each
    ref it holds of an object owned elsewhere.

    ``reference_type`` says why the object is alive, as ``ray memory`` does:
    ``USED_BY_PENDING_TASK`` (an argument of a task not finished), ``LOCAL_REFERENCE`` (a
    ref held in the process), ``CAPTURED_IN_OBJECT`` (the value of another object holds a
    ref to it), ``BORROWED`` (a borrower's row, or an owner's whose only holders are
    borrowers elsewhere), ``PINNED_IN_MEMORY`` (no ref remains but a value read from the
    store is still in use). Arguments as :func:`list_nodes`; ``detail`` adds ``spilled``,
    ``in_shared_memory``, ``owner_address`` and ``store_node_id``.
    """
    rows = object_rows(memory_summary(address, timeout))
    return _select(rows, filters, limit, None if detail else _OBJECT_FIELDS)


def summarize_objects(address: str | None = None, timeout: float = 30.0,
                      raise_on_missing_output: bool = True) -> dict:
    """The objects grouped by call site, in the shape of Ray's ``summarize_objects``:
    ``{"cluster": {"summary": {call_site: {...}}, "total_objects", "total_size_mb", ...}}``.

    Each object counts once (its size too), however many processes hold a ref to it.
    """
    rows = object_rows(memory_summary(address, timeout))
    groups: dict[str, dict] = {}
    seen: set[str] = set()
    for r in rows:
        g = groups.setdefault(r["call_site"], {
            "total_objects": 0, "total_size_mb": 0.0, "total_num_workers": set(),
            "total_num_nodes": set(), "task_state_counts": {}, "ref_type_counts": {}})
        if r["object_id"] not in seen:
            seen.add(r["object_id"])
            g["total_objects"] += 1
            g["total_size_mb"] += (r["object_size"] or 0) / 2**20
            status = r["task_status"] or "NIL"
            g["task_state_counts"][status] = g["task_state_counts"].get(status, 0) + 1
        if r["pid"] is not None:
            g["total_num_workers"].add(r["pid"])
        g["total_num_nodes"].add(r["node_id"])
        kind = r["reference_type"]
        g["ref_type_counts"][kind] = g["ref_type_counts"].get(kind, 0) + 1
    for g in groups.values():
        g["total_num_workers"] = len(g["total_num_workers"])
        g["total_num_nodes"] = len(g["total_num_nodes"])
    return {"cluster": {
        "summary": groups, "total_objects": len(seen),
        "total_size_mb": sum(g["total_size_mb"] for g in groups.values()),
        "callsite_enabled": True, "summary_by": "callsite"}}


def memory_report(address: str | None = None, timeout: float = 30.0) -> dict:
    """What ``shoal memory`` shows: each node's store (``nodes``), every object row with the
    detail fields (``objects``), and the processes by address (``processes``: pid, type, ip,
    node_id), to name the owner of a row."""
    nodes = memory_summary(address, timeout)
    procs = {p["address"]: {"pid": p["pid"], "type": _process_type(p), "ip": n["ip"],
                            "node_id": _hex(n["node_id"])}
             for n in nodes for p in n["processes"]}
    return {"nodes": [{"node_id": _hex(n["node_id"]), "ip": n["ip"], "store": dict(n["store"])}
                      for n in nodes],
            "objects": object_rows(nodes), "processes": procs}


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


def _select(rows: list[dict], filters, limit: int, fields: Iterable[str] | None) -> list[dict]:
    for key, op, value in _check_filters(filters, rows):
        rows = [r for r in rows if _matches(r.get(key), value) == (op == "=")]
    rows = rows[: max(int(limit), 0)]
    if fields is not None:
        rows = [{k: r[k] for k in fields} for r in rows]
    return rows


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


# -- tasks ---------------------------------------------------------------------------------
_TASK_FIELDS = ("task_id", "attempt_number", "name", "state", "job_id", "actor_id", "type",
                "func_or_class_name", "node_id", "worker_id", "error_type")


def _task_rows(address: str | None, timeout: float) -> list[dict]:
    rows = []
    for node in head_request("list_tasks", address=address, timeout=timeout)["nodes"]:
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


def list_tasks(filters: list[tuple] | None = None, limit: int = DEFAULT_LIMIT,
               detail: bool = False, address: str | None = None, timeout: float = 30.0,
               raise_on_missing_output: bool = True) -> list[dict]:
    """Tasks and actor calls the cluster's owners remember (Ray's ``TaskState`` fields);
    ``detail`` adds error messages, parents and times."""
    return _select(_task_rows(address, timeout), filters, limit,
                   None if detail else _TASK_FIELDS)


def get_task(task_id: str, address: str | None = None, timeout: float = 30.0) -> dict | None:
    """One task's record by hex id (None if no owner remembers it)."""
    for row in _task_rows(address, timeout):
        if row["task_id"] == task_id:
            return row
    return None


def summarize_tasks(address: str | None = None, timeout: float = 30.0) -> dict:
    """Counts of tasks by function name and state, as Ray's ``summarize_tasks``."""
    summary: dict[str, dict] = {}
    for row in _task_rows(address, timeout):
        entry = summary.setdefault(row["func_or_class_name"], {
            "func_or_class_name": row["func_or_class_name"], "type": row["type"],
            "state_counts": {}})
        counts = entry["state_counts"]
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return {"cluster": {"summary": summary, "total_tasks": sum(
        sum(e["state_counts"].values()) for e in summary.values())}}
