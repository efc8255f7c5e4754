"""``get_runtime_context()``: who and where the calling code is (job, node, worker, task)."""

from __future__ import annotations

from ._private.ids import JobID, NodeID, TaskID, WorkerID


class RuntimeContext:
    """A view of the current process's runtime; values are read when asked for."""

    def __init__(self, rt):
        self._rt = rt

    def _task(self):
        return self._rt.current_task

    def get_job_id(self) -> str:
        return JobID.from_int(self._rt.job_id or 0).hex()

    @property
    def job_id(self) -> JobID:
        return JobID.from_int(self._rt.job_id or 0)

    def get_node_id(self) -> str:
        return self._rt.node_id.hex()

    @property
    def node_id(self) -> NodeID:
        return NodeID(self._rt.node_id)

    def get_worker_id(self) -> str:
        return self._rt.worker_id.hex()

    @property
    def worker_id(self) -> WorkerID:
        return WorkerID(self._rt.worker_id)

    def get_task_id(self) -> str | None:
        tid = getattr(self._task(), "task_id", None)
        return tid.hex() if tid else None

    @property
    def task_id(self) -> TaskID | None:
        tid = getattr(self._task(), "task_id", None)
        return TaskID(tid) if tid else None

    def get_task_name(self) -> str | None:
        return getattr(self._task(), "name", None)

    def get_actor_id(self) -> str | None:
        aid = getattr(self._rt, "actor_id", None)
        return aid.hex() if aid else None

    def get_actor_name(self) -> str | None:
        return getattr(self._rt, "actor_name", None)

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

    @property
    def was_current_actor_reconstructed(self) -> bool:
        return bool(getattr(self._rt, "actor_restarted", False))

    def get_assigned_resources(self) -> dict:
        return dict(getattr(self._task(), "resources", None) or {})

    def get_accelerator_ids(self) -> dict:
        return {"GPU": [str(g) for g in getattr(self._task(), "gpu_ids", None) or []]}

    @property
    def gcs_address(self) -> str:
        return self._rt.node_address

    def get_runtime_env_string(self) -> str:
        return "{}"

    @property
    def runtime_env(self) -> dict:
        return {}

    def get(self) -> dict:
        return {"job_id": self.job_id, "node_id": self.node_id, "namespace": self.namespace,
                "task_id": self.task_id}

    def is_canceled(self) -> bool:
        """Whether ``cancel()`` has been called on the task (or sync actor call) running
        here: a sync actor method can poll it to stop early. RuntimeError in a driver and
        in an async actor, as in Ray."""
        tx = getattr(self._rt, "task_executor", None)
        if self._rt.mode != "worker" or tx is None:
            raise RuntimeError("This method is only available when the process is a worker. "
                               "Current mode: 0")
        return tx.is_canceled()

    def should_capture_child_tasks_in_placement_group(self) -> bool:
        return False
