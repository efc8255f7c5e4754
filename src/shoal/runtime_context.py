"""``get_runtime_context()``: who and where the calling code is (job, node, worker, task)."""

from __future__ import annotations

import re
import warnings

from ._private.runtime.current import runtime
from ._private.wire.ids import ActorID, JobID, NodeID, TaskID, WorkerID

# A bundle's own resource names, as tasks in placement groups ask for them:
# "<name>_group_<index>_<pg hex>" or "<name>_group_<pg hex>" (any bundle).
_BUNDLE_NAME = r"^(.+?)_group_(?:\d+_)?([0-9a-f]{36})$"
_WORKER_ONLY = ("This method is only available when the process is a"
                "                 worker. Current mode: {}")


def _deprecated(use: str) -> None:
    from .util.annotations import RayDeprecationWarning, deprecation_message

    warnings.warn(deprecation_message(use), RayDeprecationWarning, stacklevel=3)


def original_resources(resources: dict) -> tuple[dict, str | None]:
    """What a task or actor asked for, from the resources it holds (bundle names in a
    placement group turned back into plain ones), as floats; and its group's hex id."""
    out: dict = {}
    pg = None
    for name, amount in resources.items():
        m = re.match(_BUNDLE_NAME, name)  # (re caches the compiled pattern)
        if m is not None:
            name, pg = m.group(1), m.group(2)
            if name == "bundle":
                continue  # the marker every task in a group asks for
        if amount:
            out[name] = float(amount)
    return out, pg


def webui_url(session_dir: str) -> str | None:
    """The dashboard's address as the session's address.json names it: ``host:port``,
    without a scheme, as Ray gives it; None without a dashboard."""
    import json
    import os

    try:
        with open(os.path.join(session_dir, "address.json")) as f:
            url = json.load(f).get("webui_url")
        return url.split("://", 1)[-1] if url else None
    except (OSError, ValueError):
        return None


class RuntimeContext:
    """A view of the current process's runtime; values are read when asked for."""

    def __init__(self, rt):
        self._rt = rt

    def _task(self):
        return self._rt.current_task

    def _is_worker(self) -> bool:
        return self._rt.mode == "worker"

    def _mode(self) -> int:
        return 1 if self._is_worker() else 0  # Ray's WORKER_MODE / SCRIPT_MODE

    def _task_id(self) -> TaskID | None:
        tid = getattr(self._task(), "task_id", None)
        return TaskID(tid) if tid else None

    def _actor_id(self) -> ActorID | None:
        aid = getattr(self._rt, "actor_id", None)
        return ActorID(aid) if aid else None

    def get(self) -> dict:
        """The ids of the current job, node and (in a worker) task and actor, as id
        objects. Deprecated in Ray: use the ``get_*_id()`` methods."""
        _deprecated("Use get_xxx_id() methods to get relevant ids instead")
        out = {"job_id": JobID.from_int(self._rt.job_id or 0),
               "node_id": NodeID(self._rt.node_id), "namespace": self.namespace}
        if self._is_worker():
            if self._task_id() is not None:
                out["task_id"] = self._task_id()
            if self._actor_id() is not None:
                out["actor_id"] = self._actor_id()
        return out

    def get_job_id(self) -> str:
        return JobID.from_int(self._rt.job_id or 0).hex()

    @property
    def job_id(self) -> JobID:
        _deprecated("Use get_job_id() instead")
        return JobID.from_int(self._rt.job_id or 0)

    def get_node_id(self) -> str:
        return self._rt.node_id.hex()

    @property
    def node_id(self) -> NodeID:
        _deprecated("Use get_node_id() instead")
        return NodeID(self._rt.node_id)

    def get_worker_id(self) -> str:
        return self._rt.worker_id.hex()

    @property
    def worker_id(self) -> WorkerID:
        return WorkerID(self._rt.worker_id)

    def get_task_id(self) -> str | None:
        tid = self._task_id()
        return tid.hex() if tid is not None else None

    @property
    def task_id(self) -> TaskID | None:
        _deprecated("Use get_task_id() instead")
        assert self._is_worker(), _WORKER_ONLY.format(self._mode())
        return self._task_id()

    def get_task_name(self) -> str | None:
        """The task's name (its ``name`` option, else the function's name; in an actor
        ``Class.method``); None in a driver."""
        if not self._is_worker():
            return None
        name = getattr(self._task(), "name", None)
        cls = getattr(self._rt, "actor_class", None)
        if name is not None and cls is not None and "." not in name:
            return f"{cls.__name__}.{name}"
        return name

    def get_task_function_name(self) -> str | None:
        """``module.function`` of the running task (``module.Class.method`` in an actor);
        None in a driver."""
        if not self._is_worker():
            return None
        cls = getattr(self._rt, "actor_class", None)
        if cls is not None:
            name = getattr(self._task(), "name", None)
            return f"{cls.__module__}.{cls.__name__}.{name}" if name else None
        fn = getattr(self._task(), "function", None)
        if fn is None:
            return None
        return f"{getattr(fn, '__module__', None)}.{getattr(fn, '__name__', fn)}"

    def get_actor_id(self) -> str | None:
        aid = self._actor_id()
        return aid.hex() if aid is not None else None

    @property
    def actor_id(self) -> ActorID | None:
        _deprecated("Use get_actor_id() instead")
        assert self._is_worker(), _WORKER_ONLY.format(self._mode())
        return self._actor_id()

    def get_actor_name(self) -> str | None:
        """The actor's name ("" for an actor without one); None outside an actor."""
        if self._actor_id() is None:
            return None
        return getattr(self._rt, "actor_name", None) or ""

    def get_dashboard_url(self) -> str:
        """The dashboard's ``host:port``, or "" without a dashboard."""
        return webui_url(self._rt.session_dir) or ""

    @property
    def current_actor(self):
        handle = getattr(self._rt, "actor_handle", None)
        if handle is None:
            raise RuntimeError("This method is only available in an actor.")
        return handle

    @property
    def namespace(self) -> str:
        return self._rt.namespace

    def get_namespace(self) -> str:
        return self._rt.namespace

    def get_session_name(self) -> str:
        import os

        return os.path.basename(self._rt.session_dir.rstrip("/"))

    def get_temp_dir(self) -> str:
        import os

        return os.path.dirname(self._rt.session_dir.rstrip("/"))

    @property
    def was_current_actor_reconstructed(self) -> bool:
        return bool(getattr(self._rt, "actor_restarted", False))

    def _held(self) -> dict:
        return getattr(self._task(), "resources", None) or \
            (getattr(self._rt, "actor_resources", None) or {})

    def get_assigned_resources(self) -> dict:
        """The resources this task or actor holds, e.g. ``{'CPU': 1.0}`` (in a placement
        group too: the bundle's resource names are given back under their own)."""
        assert self._is_worker(), _WORKER_ONLY.format(self._mode())
        return original_resources(self._held())[0]

    def get_placement_group_id(self) -> str | None:
        """The hex id of the placement group this task or actor runs in, or None."""
        if not self._is_worker():
            return None
        group = self._rt.current_group()
        if group:
            return group[0].hex()
        return original_resources(self._held())[1]

    @property
    def current_placement_group_id(self):
        from ._private.wire.ids import PlacementGroupID

        _deprecated("Use get_placement_group_id() instead")
        pg = self.get_placement_group_id()
        return PlacementGroupID.from_hex(pg) if pg else PlacementGroupID.nil()

    def get_accelerator_ids(self) -> dict:
        return {"GPU": [str(g) for g in getattr(self._task(), "gpu_ids", None) or []]}

    def get_resource_ids(self) -> dict:
        _deprecated("Use get_accelerator_ids() instead")
        return self.get_accelerator_ids()

    def get_node_labels(self) -> dict:
        return {}

    @property
    def gcs_address(self) -> str:
        return self._rt.node_address

    def get_runtime_env_string(self) -> str:
        import json

        return json.dumps(getattr(self._rt, "job_runtime_env", None) or {})

    @property
    def runtime_env(self):
        """The job's runtime environment (a RuntimeEnv, which is a dict)."""
        from .runtime_env import RuntimeEnv

        return RuntimeEnv(_validate=False, **(getattr(self._rt, "job_runtime_env", None) or {}))

    def is_canceled(self) -> bool:
        """Whether ``cancel()`` has been called on the task (or sync actor call) running
        here: a sync actor method can poll it to stop early. RuntimeError in a driver and
        in an async actor, as in Ray."""
        tx = getattr(self._rt, "task_executor", None)
        if self._rt.mode != "worker" or tx is None:
            raise RuntimeError("This method is only available when the process is a worker. "
                               "Current mode: 0")
        return tx.is_canceled()

    @property
    def should_capture_child_tasks_in_placement_group(self) -> bool:
        group = self._rt.current_group() if self._is_worker() else None
        return bool(group and group[2])


def get_runtime_context() -> RuntimeContext:
    """The runtime context of this process (``ray.runtime_context.get_runtime_context``)."""
    return RuntimeContext(runtime())
