"""Ray 2.60's state schemas (``ray.util.state.common``): every column of ``TaskState``,
``ActorState``, ``NodeState``, ``WorkerState``, ``ObjectState``, ``PlacementGroupState``
and ``JobState`` (Ray's ``JobDetails``), with the types Ray validates them with and whether
each is a *detail* column (returned only with ``detail=True``). Pure data, no I/O.

The rows of :mod:`state_rows` carry every column with a value of its type (``None`` only
where Ray allows it) and may carry more of shoal's own; :func:`shape` cuts a row to Ray's
columns as Ray's state server does (``filter_fields``)."""

from __future__ import annotations

NONE = type(None)
S, N, B, D = str, int, bool, dict  # N: an integer
OS, OI, OB, OD, OL = (str, NONE), (int, NONE), (bool, NONE), (dict, NONE), (list, NONE)

# Ray's enums (``ray._private.custom_types``).
TASK_STATUS = ("NIL", "PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT",
               "PENDING_OBJ_STORE_MEM_AVAIL", "PENDING_ARGS_FETCH", "SUBMITTED_TO_WORKER",
               "PENDING_ACTOR_TASK_ARGS_FETCH", "PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY",
               "RUNNING", "RUNNING_IN_RAY_GET", "RUNNING_IN_RAY_WAIT", "FINISHED", "FAILED",
               "GETTING_AND_PINNING_ARGS")
TASK_TYPE = ("NORMAL_TASK", "ACTOR_CREATION_TASK", "ACTOR_TASK", "DRIVER_TASK")
ACTOR_STATUS = ("DEPENDENCIES_UNREADY", "PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD")
PG_STATUS = ("PENDING", "PREPARED", "CREATED", "REMOVED", "RESCHEDULING")
NODE_STATUS = ("ALIVE", "DEAD")
WORKER_TYPE = ("WORKER", "DRIVER", "SPILL_WORKER", "RESTORE_WORKER")
WORKER_EXIT_TYPE = ("SYSTEM_ERROR", "INTENDED_SYSTEM_EXIT", "USER_ERROR",
                    "INTENDED_USER_EXIT", "NODE_OUT_OF_MEMORY")
REFERENCE_TYPE = ("ACTOR_HANDLE", "PINNED_IN_MEMORY", "LOCAL_REFERENCE",
                  "USED_BY_PENDING_TASK", "CAPTURED_IN_OBJECT", "UNKNOWN_STATUS")
JOB_STATUS = ("PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED")
JOB_TYPE = ("SUBMISSION", "DRIVER")

# A driver's own task id, the parent of the tasks it submits: Ray's ``TaskID.for_driver_task``.
DRIVER_TASK_ID_PREFIX = "ff" * 20

# (name, type(s), detail) in Ray's order.
TASK = (
    ("task_id", S, False), ("attempt_number", N, False), ("name", S, False),
    ("state", S, False), ("job_id", S, False), ("actor_id", OS, False), ("type", S, False),
    ("func_or_class_name", S, False), ("parent_task_id", S, False), ("node_id", OS, False),
    ("worker_id", OS, False), ("worker_pid", OI, False), ("error_type", OS, False),
    ("language", OS, True), ("required_resources", OD, True), ("runtime_env_info", OD, True),
    ("placement_group_id", OS, True), ("events", OL, True), ("profiling_data", OD, True),
    ("creation_time_ms", OI, True), ("start_time_ms", OI, True), ("end_time_ms", OI, True),
    ("task_log_info", OD, True), ("error_message", OS, True),
    ("is_debugger_paused", OB, True), ("call_site", OS, True), ("label_selector", OD, True),
    ("fallback_strategy", OD, True),
)
ACTOR = (
    ("actor_id", S, False), ("class_name", S, False), ("state", S, False),
    ("job_id", S, False), ("name", OS, False), ("node_id", OS, False), ("pid", OI, False),
    ("ray_namespace", OS, False), ("serialized_runtime_env", OS, True),
    ("required_resources", OD, True), ("death_cause", OD, True), ("is_detached", OB, True),
    ("placement_group_id", OS, True), ("repr_name", OS, True), ("num_restarts", N, True),
    ("num_restarts_due_to_lineage_reconstruction", N, True),
    ("num_restarts_due_to_node_preemption", N, True), ("call_site", OS, True),
    ("label_selector", OD, True), ("fallback_strategy", OD, True),
)
PLACEMENT_GROUP = (
    ("placement_group_id", S, False), ("name", S, False), ("creator_job_id", S, False),
    ("state", S, False), ("bundles", OL, True), ("is_detached", OB, True),
    ("stats", OD, True), ("topology_strategy", OD, True), ("topology_assignments", OD, True),
)
NODE = (
    ("node_id", S, False), ("node_ip", S, False), ("is_head_node", B, False),
    ("state", S, False), ("state_message", OS, False), ("node_name", S, False),
    ("resources_total", D, False), ("labels", D, False), ("start_time_ms", OI, True),
    ("end_time_ms", OI, True),
)
WORKER = (
    ("worker_id", S, False), ("is_alive", B, False), ("worker_type", S, False),
    ("exit_type", OS, False), ("node_id", S, False), ("ip", S, False), ("pid", N, False),
    ("exit_detail", OS, True), ("worker_launch_time_ms", OI, True),
    ("worker_launched_time_ms", OI, True), ("start_time_ms", OI, True),
    ("end_time_ms", OI, True), ("debugger_port", OI, True), ("num_paused_threads", OI, True),
)
OBJECT = (
    ("object_id", S, False), ("object_size", N, False), ("task_status", S, False),
    ("attempt_number", N, False), ("reference_type", S, False), ("call_site", S, False),
    ("type", S, False), ("pid", N, False), ("ip", S, False),
)
# JobState: Ray's JobDetails; its short listing is JobState.list_columns(detail=False).
JOB = (
    ("type", S, True), ("job_id", OS, False), ("submission_id", OS, False),
    ("driver_info", OD, False), ("status", S, False), ("entrypoint", S, False),
    ("message", OS, False), ("error_type", OS, False), ("start_time", OI, True),
    ("end_time", OI, True), ("metadata", OD, True), ("runtime_env", OD, True),
    ("driver_agent_http_address", OS, True), ("driver_node_id", OS, True),
    ("driver_exit_code", OI, True),
)
_JOB_SHORT = ("job_id", "submission_id", "entrypoint", "type", "status", "message",
              "error_type", "driver_info")

SCHEMAS = {"tasks": TASK, "actors": ACTOR, "placement_groups": PLACEMENT_GROUP,
           "nodes": NODE, "workers": WORKER, "objects": OBJECT, "jobs": JOB}

# The values a column may take, where Ray's type is one of its enums.
ENUMS = {("tasks", "state"): TASK_STATUS, ("tasks", "type"): TASK_TYPE,
         ("actors", "state"): ACTOR_STATUS, ("placement_groups", "state"): PG_STATUS,
         ("nodes", "state"): NODE_STATUS, ("workers", "worker_type"): WORKER_TYPE,
         ("workers", "exit_type"): WORKER_EXIT_TYPE, ("objects", "task_status"): TASK_STATUS,
         ("objects", "reference_type"): REFERENCE_TYPE, ("objects", "type"): WORKER_TYPE,
         ("jobs", "status"): JOB_STATUS, ("jobs", "type"): JOB_TYPE}


def columns(resource: str, detail: bool = True) -> tuple[str, ...]:
    """Ray's columns of ``resource`` (``StateSchema.list_columns``): all of them, or those
    shown without ``detail``."""
    if resource == "jobs" and not detail:
        return _JOB_SHORT
    return tuple(name for name, _t, is_detail in SCHEMAS[resource] if detail or not is_detail)


def shape(row: dict, resource: str, detail: bool) -> dict:
    """``row`` cut to Ray's columns, in Ray's order (a missing one is None), as Ray's state
    server answers (``filter_fields``)."""
    return {name: row.get(name) for name in columns(resource, detail)}


def with_detail_none(row: dict, resource: str) -> dict:
    """What Ray's Python state API returns without ``detail``: every column, the detail
    ones None (the dataclass's defaults)."""
    base = set(columns(resource, False))
    return {name: row.get(name) if name in base else None for name in columns(resource)}


def type_errors(row: dict, resource: str) -> list[str]:
    """Every way ``row`` breaks Ray's schema of ``resource`` (missing column, wrong type,
    value outside an enum); empty when Ray's client would accept it."""
    out = []
    for name, types, _detail in SCHEMAS[resource]:
        if name not in row:
            out.append(f"{name}: missing")
            continue
        value = row[name]
        types = types if isinstance(types, tuple) else (types,)
        if isinstance(value, bool) and bool not in types:
            out.append(f"{name}: {value!r} is a bool, not {types}")
        elif not isinstance(value, types):
            out.append(f"{name}: {value!r} is not {types}")
        elif value is not None and (resource, name) in ENUMS \
                and value not in ENUMS[(resource, name)]:
            out.append(f"{name}: {value!r} is not one of Ray's values")
    return out
