"""The state API (Ray's ``ray.util.state``): list the nodes, actors, placement groups and
objects of a cluster.

``list_nodes()``, ``list_actors()`` and the others ask the cluster's head (its control store)
and return plain dicts with the field names of Ray's state API, so that scripts written for
Ray work.
In a driver where ``shoal.init()`` has run, the driver's own head connection is used;
elsewhere (the ``shoal`` command line, a plain script) the cluster is found on this machine
through its session directory, which also holds the token needed to connect.

``list_logs()`` and ``get_log()`` (Ray's) read every node's log files, named by node, worker
pid, actor id, task id or a file name from the list: whole, from their tail, or followed.

Objects have no cluster-wide table: ``list_objects()`` asks the head for a memory view,
which it gathers from every node's daemon, which asks each process of its node what it owns
and borrows and why each object is alive. Tasks are not offered yet.

This module also holds the lookup of local sessions that the command line shares.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import psutil

from .._private.launch import local_cluster
from .._private.node import logs as node_logs
from .._private.runtime.current import current_runtime_or_none
from .._private.state import timeline
from .._private.state.rows import (  # noqa: F401 - reference types re-exported
    _ACTOR_FIELDS,
    _JOB_FIELDS,
    _NODE_FIELDS,
    _OBJECT_FIELDS,
    _PG_FIELDS,
    _TASK_FIELDS,
    _WORKER_FIELDS,
    BORROWED,
    CAPTURED_IN_OBJECT,
    LOCAL_REFERENCE,
    PINNED_IN_MEMORY,
    UNKNOWN_STATUS,
    USED_BY_PENDING_TASK,
    StateRow,
    _actor_row,
    _hex,
    _node_row,
    _pg_row,
    _process_type,
    _select,
    actor_summary,
    job_row,
    object_rows,
    object_summary,
    task_rows,
    task_summary,
    worker_rows,
)
from .._private.wire import transport
from .._private.wire.config import config
from .._private.wire.session import Session, check_private, read_address  # noqa: F401

DEFAULT_LIMIT = 100
TOKEN_ENV = "SHOAL_TOKEN"



class ClusterNotFoundError(ConnectionError):
    """No running cluster could be found or reached (the message says which and why)."""


# -- local sessions ----------------------------------------------------------------------
def session_dirs() -> list[str]:
    """Every ``session_*`` directory under the session root, newest first: only those this
    user owns and nobody else may write (another user's planted session is skipped). A root
    that another user owns or may write raises :class:`UnsafeSessionError`."""
    root = config.session_root
    try:
        check_private(root, "session root")
        names = os.listdir(root)
    except (FileNotFoundError, NotADirectoryError):
        return []
    paths = [os.path.join(root, n) for n in names
             if n.startswith("session_") and not n.startswith("session_latest")]
    return sorted((p for p in paths if _private_dir(p)), key=_mtime, reverse=True)


def _private_dir(path: str) -> bool:
    try:
        check_private(path, "session directory")
        return not os.path.islink(path)
    except OSError:  # UnsafeSessionError too: not ours, so not listed
        return False


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


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
    """The session ``address="auto"`` would pick: the current cluster (``shoal start
    --head``'s), else ``session_latest``, else the newest live one."""
    current = local_cluster.current_cluster()
    if current is not None and (info := read_address(current.path)) is not None:
        return current.path, info
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
    rt = current_runtime_or_none()
    if address in (None, "auto") and rt is not None:
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
def list_nodes(address: str | None = None, filters: list[tuple] | None = None,
               limit: int = DEFAULT_LIMIT, timeout: float = 30.0, detail: bool = False,
               raise_on_missing_output: bool = True, _explain: bool = False) -> list[StateRow]:
    """Every node the cluster has known, dead ones included (Ray's ``NodeState`` fields).

    ``filters`` is a list of ``(key, "=" or "!=", value)``; ``limit`` caps the rows;
    ``detail`` adds ``resources_available`` and ``address``. ``raise_on_missing_output`` is
    accepted for Ray's signature: the head always answers in full.
    """
    rows = [_node_row(n) for n in head_request("get_nodes", address=address,
                                               timeout=timeout)["nodes"]]
    return _select(rows, filters, limit, "nodes", detail)


def list_actors(address: str | None = None, filters: list[tuple] | None = None,
                limit: int = DEFAULT_LIMIT, timeout: float = 30.0, detail: bool = False,
                raise_on_missing_output: bool = True, _explain: bool = False) -> list[StateRow]:
    """Every actor of the cluster, dead ones included (Ray's ``ActorState`` fields).

    Arguments as :func:`list_nodes`; ``detail`` adds ``ray_namespace``, ``is_detached``,
    ``death_cause``, ``max_restarts``, ``address`` and ``worker_id``.
    """
    rows = [_actor_row(a) for a in head_request("list_actors", address=address,
                                                timeout=timeout)["actors"]]
    return _select(rows, filters, limit, "actors", detail)


def list_placement_groups(address: str | None = None, filters: list[tuple] | None = None,
                          limit: int = DEFAULT_LIMIT, timeout: float = 30.0,
                          detail: bool = False, raise_on_missing_output: bool = True,
                          _explain: bool = False) -> list[StateRow]:
    """Every placement group of the cluster, removed ones included (Ray's
    ``PlacementGroupState`` fields); ``detail`` adds the bundles and their nodes."""
    rows = [_pg_row(g) for g in head_request("pg_table", address=address,
                                             timeout=timeout)["groups"]]
    return _select(rows, filters, limit, "placement_groups", detail)


# -- objects -------------------------------------------------------------------------------
def memory_summary(address: str | None = None, timeout: float = 30.0) -> list[dict]:
    """Every live node's memory view as the head gathers it (ids as bytes): its store's
    accounting, its shared-memory segments and what each of its processes owns and borrows."""
    return head_request("memory_summary", address=address, timeout=timeout)["nodes"]


def list_objects(address: str | None = None, filters: list[tuple] | None = None,
                 limit: int = DEFAULT_LIMIT, timeout: float = 30.0, detail: bool = False,
                 raise_on_missing_output: bool = True, _explain: bool = False) -> list[StateRow]:
    """The objects referenced in the cluster (Ray's ``ObjectState`` fields), one row per
    process and object: an owner's row for each object it owns, a borrower's row for each
    ref it holds of an object owned elsewhere.

    ``reference_type`` says why the object is alive, as ``ray memory`` does:
    ``USED_BY_PENDING_TASK`` (an argument of a task not finished), ``LOCAL_REFERENCE`` (a
    ref held in the process), ``CAPTURED_IN_OBJECT`` (the value of another object holds a
    ref to it; a borrower's row too), ``PINNED_IN_MEMORY`` (no ref remains but a value
    read from the store is still in use), ``UNKNOWN_STATUS`` (an owner's row whose only
    holders are borrowers elsewhere). Arguments as :func:`list_nodes`; ``detail`` adds
    shoal's ``node_id``, ``borrower``, ``actor_id``, ``spilled``, ``in_shared_memory``,
    ``owner_address`` and ``store_node_id``.
    """
    rows = object_rows(memory_summary(address, timeout))
    return _select(rows, filters, limit, "objects", detail)


def summarize_objects(address: str | None = None, timeout: float = 30.0,
                      raise_on_missing_output: bool = True, _explain: bool = False) -> dict:
    """The objects grouped by call site, in the shape of Ray's ``summarize_objects``:
    ``{"cluster": {"summary": {call_site: {...}}, "total_objects", "total_size_mb", ...}}``.

    Each object counts once (its size too), however many processes hold a ref to it.
    """
    return {"cluster": object_summary(object_rows(memory_summary(address, timeout)))}


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



# -- tasks ---------------------------------------------------------------------------------



def _task_rows(address: str | None, timeout: float) -> list[dict]:
    return task_rows(head_request("list_tasks", address=address, timeout=timeout)["nodes"])


def list_tasks(address: str | None = None, filters: list[tuple] | None = None,
               limit: int = DEFAULT_LIMIT, timeout: float = 30.0, detail: bool = False,
               raise_on_missing_output: bool = True, _explain: bool = False) -> list[StateRow]:
    """Tasks and actor calls the cluster's owners remember (Ray's ``TaskState`` fields);
    ``detail`` adds error messages, parents and times."""
    return _select(_task_rows(address, timeout), filters, limit, "tasks", detail)


def get_task(id, address: str | None = None, timeout: float = 30.0,
             _explain: bool = False) -> StateRow | None:
    """One task's record (every field) by hex id or by an ObjectRef it returns; None if no
    owner remembers it. A retried task has one record, of its latest attempt."""
    task_id = id if isinstance(id, str) else id.task_id().hex()
    for row in _task_rows(address, timeout):
        if row["task_id"] == task_id:
            return StateRow(row)
    return None


def get_actor(id: str, address: str | None = None, timeout: float = 30.0,
              _explain: bool = False) -> StateRow | None:
    """One actor (every field) by hex id, or None."""
    return _get_one(list_actors, "actor_id", id, address, timeout)


def get_node(id: str, address: str | None = None, timeout: float = 30.0,
             _explain: bool = False) -> StateRow | None:
    """One node (every field) by hex id, or None."""
    return _get_one(list_nodes, "node_id", id, address, timeout)


def get_placement_group(id: str, address: str | None = None, timeout: float = 30.0,
                        _explain: bool = False) -> StateRow | None:
    """One placement group (every field) by hex id, or None."""
    return _get_one(list_placement_groups, "placement_group_id", id, address, timeout)


def get_objects(id: str, address: str | None = None, timeout: float = 30.0,
                _explain: bool = False) -> list[StateRow]:
    """Every row of one object (one per process that references it)."""
    return list_objects(address=address, filters=[("object_id", "=", id)], limit=1 << 30,
                        timeout=timeout, detail=True)


def get_job(id: str, address: str | None = None, timeout: float = 30.0,
            _explain: bool = False) -> StateRow | None:
    """One job (every field) by its hex job id, or None."""
    return _get_one(list_jobs, "job_id", id, address, timeout)


def _get_one(lister, key: str, id: str, address, timeout) -> StateRow | None:
    rows = lister(address=address, filters=[(key, "=", id)], limit=1, timeout=timeout,
                  detail=True)
    return rows[0] if rows else None


def summarize_actors(address: str | None = None, timeout: float = 30.0,
                     raise_on_missing_output: bool = True, _explain: bool = False) -> dict:
    """Counts of actors by class and state, as Ray's ``summarize_actors``."""
    return {"cluster": actor_summary(list_actors(address=address, limit=1 << 30,
                                                 timeout=timeout))}


def summarize_tasks(address: str | None = None, timeout: float = 30.0,
                    raise_on_missing_output: bool = True, _explain: bool = False) -> dict:
    """Counts of tasks by name and state, as Ray's ``summarize_tasks`` (``summary_by``
    ``func_name``), with the totals of tasks, actor calls and actor creations."""
    return {"cluster": task_summary(_task_rows(address, timeout))}


# -- workers -------------------------------------------------------------------------------
def list_workers(address: str | None = None, filters: list[tuple] | None = None,
                 limit: int = DEFAULT_LIMIT, timeout: float = 30.0, detail: bool = False,
                 raise_on_missing_output: bool = True,
                 _explain: bool = False) -> list[StateRow]:
    """Worker processes (live and exited, on live nodes) and drivers (Ray's ``WorkerState``
    fields); ``detail`` adds ``log_file`` (a worker's) and ``job_id`` (a driver's)."""

    def ask(kind: str, key: str) -> list:
        return head_request(kind, address=address, timeout=timeout)[key]

    owners = head_request("list_tasks", {"limit": 0}, address=address,
                          timeout=timeout)["nodes"]
    rows = worker_rows(ask("nodes_info", "nodes"), ask("list_logs", "nodes"),
                       ask("list_jobs", "jobs"), owners)
    return _select(rows, filters, limit, "workers", detail)


def get_worker(id: str, address: str | None = None, timeout: float = 30.0,
               _explain: bool = False) -> StateRow | None:
    """One worker (every field) by hex id, or None."""
    return _get_one(list_workers, "worker_id", id, address, timeout)


# -- jobs ----------------------------------------------------------------------------------
def list_jobs(address: str | None = None, filters: list[tuple] | None = None,
              limit: int = DEFAULT_LIMIT, timeout: float = 30.0, detail: bool = False,
              raise_on_missing_output: bool = True, _explain: bool = False) -> list[StateRow]:
    """Every job (driver) the cluster has known (Ray's ``JobDetails`` fields)."""
    rows = [job_row(j) for j in head_request("list_jobs", address=address,
                                             timeout=timeout)["jobs"]]
    return _select(rows, filters, limit, "jobs", detail)


# -- timeline --------------------------------------------------------------------------------
def timeline_events(address: str | None = None, timeout: float = 30.0) -> list[dict]:
    """Every remembered task as Chrome trace events (see :mod:`shoal._private.state.timeline`)."""

    def ask(kind: str, key: str) -> list:
        return head_request(kind, address=address, timeout=timeout)[key]

    return timeline.from_answers(ask("list_tasks", "nodes"), ask("get_nodes", "nodes"),
                                 ask("list_actors", "actors"), ask("list_logs", "nodes"))

# -- logs ----------------------------------------------------------------------------------
def list_logs(address: str | None = None, node_id: str | None = None,
              node_ip: str | None = None, glob_filter: str | None = None,
              timeout: float = 30.0) -> dict:
    """Each node's log files, as Ray's ``list_logs``: ``{node_id: {"worker_out": [...],
    "node": [...]}}`` (one node's dict alone when ``node_id`` or ``node_ip`` names it)."""
    import fnmatch

    out = {}
    for n in head_request("list_logs", address=address, timeout=timeout)["nodes"]:
        nid = _hex(n["node_id"])
        if (node_id and nid != node_id) or (node_ip and n["ip"] != node_ip):
            continue
        files: dict[str, list[str]] = {"worker_out": [], "node": []}
        for e in n["logs"]:
            if glob_filter is None or fnmatch.fnmatch(e["name"], glob_filter):
                files["worker_out" if e["kind"] == "worker" else "node"].append(e["name"])
        out[nid] = files
    if node_id or node_ip:
        return next(iter(out.values()), {})
    return out


def log_source(*, node_id: str | None = None, node_ip: str | None = None,
               filename: str | None = None, actor_id: str | None = None,
               task_id: str | None = None, pid: int | None = None,
               address: str | None = None, timeout: float = 30.0) -> dict:
    """Which node and which of its logs the arguments name: ``{"node_id": bytes, and one of
    "worker_id" (hex), "pid" or "node"}``. Raises ValueError naming what is missing."""
    if actor_id:
        rows = [a for a in list_actors(detail=True, address=address, timeout=timeout,
                                       limit=1 << 30) if a["actor_id"] == actor_id]
        if not rows or not rows[0]["node_id"]:
            raise ValueError(f"no actor {actor_id!r} with a worker in this cluster")
        return {"node_id": bytes.fromhex(rows[0]["node_id"]), "pid": rows[0]["pid"]}
    if task_id:
        t = get_task(task_id, address=address, timeout=timeout)
        if t is None:
            raise ValueError(f"no task {task_id!r} is remembered by this cluster")
        if t["actor_id"]:
            return log_source(actor_id=t["actor_id"], address=address, timeout=timeout)
        if not t["worker_id"] or not t["node_id"]:
            raise ValueError(f"task {task_id} has not been given a worker yet")
        return {"node_id": bytes.fromhex(t["node_id"]), "worker_id": t["worker_id"]}
    nodes = list_nodes(address=address, timeout=timeout, limit=1 << 30)
    if node_ip and not node_id:
        node_id = next((n["node_id"] for n in nodes if n["node_ip"] == node_ip
                        and n["state"] == "ALIVE"), None)
        if node_id is None:
            raise ValueError(f"no live node at {node_ip}")
    if not node_id:
        if len([n for n in nodes if n["state"] == "ALIVE"]) != 1:
            raise ValueError("name the node (node_id or node_ip): the cluster has several")
        node_id = next(n["node_id"] for n in nodes if n["state"] == "ALIVE")
    src: dict = {"node_id": bytes.fromhex(node_id)}
    if pid is not None:
        src["pid"] = int(pid)
    elif filename:
        worker = node_logs.worker_log(filename)
        if worker is None and filename not in node_logs.DAEMON_LOGS:
            raise ValueError(f"{filename!r} is not a log name that list_logs() shows")
        if worker is None:
            src["node"] = True
        else:
            src["worker_id"], src["pid"] = worker
    else:
        src["node"] = True
    return src


def read_log(source: dict, offset: int | None = None, tail: int | None = None,
             address: str | None = None, timeout: float = 30.0) -> dict:
    """One read of the log ``source`` names (see :func:`log_source`): ``{"data", "offset",
    "size", "name"}``; pass the answer's ``offset`` back to read what was written since."""
    body = dict(source)
    if offset is not None:
        body["offset"] = offset
    if tail is not None:
        body["tail"] = tail
    try:
        return head_request("read_log", body, address=address, timeout=timeout)
    except transport.RemoteError as e:
        raise ValueError(str(e)) from None


def get_log(address: str | None = None, node_id: str | None = None,
            node_ip: str | None = None, filename: str | None = None,
            actor_id: str | None = None, task_id: str | None = None,
            pid: int | None = None, follow: bool = False, tail: int = -1,
            timeout: float = 30.0, suffix: str = "out", encoding: str | None = "utf-8",
            errors: str | None = "strict", submission_id: str | None = None,
            attempt_number: int = 0, _interval: float | None = None) -> Iterator[str]:
    """The lines of a worker's, actor's, task's or node's log (Ray's ``get_log``): all of
    it (``tail=-1``) or its last ``tail`` lines; with ``follow`` it keeps yielding lines as
    they are written, until the caller stops iterating. A worker's stdout and stderr share
    one file, so ``suffix`` is accepted and does not choose between them."""
    src = log_source(node_id=node_id, node_ip=node_ip, filename=filename, actor_id=actor_id,
                     task_id=task_id, pid=pid, address=address, timeout=timeout)
    if tail is None or tail < 0:
        got = read_log(src, offset=0, address=address, timeout=timeout)
    else:
        got = read_log(src, tail=tail, address=address, timeout=timeout)
    pending = ""
    while True:
        lines = (pending + got["data"]).split("\n")
        pending = lines.pop()
        yield from lines
        if got["offset"] >= got["size"]:
            if not follow:
                if pending:
                    yield pending
                return
            time.sleep(0.5)  # nothing new yet: poll, as tail -f does
        got = read_log(src, offset=got["offset"], address=address, timeout=timeout)
