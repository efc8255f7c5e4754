"""What an owner remembers of the tasks it submitted: state, place, times, error.

Bounded (``task_events_max`` tasks; the oldest are dropped first and counted), kept by the
owner itself and gathered on demand by the state API through the nodes and the head, so
no central table sits on the task path. States are Ray's: PENDING_ARGS_AVAIL,
PENDING_NODE_ASSIGNMENT, RUNNING, FINISHED, FAILED.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from ..state.task_records import FAILED, FINISHED, PENDING_ARGS, PENDING_NODE, RUNNING, select
from ..wire.config import config


class TaskEvents:
    def __init__(self, limit: int | None = None):
        self.limit = config.task_events_max if limit is None else limit
        self.tasks: OrderedDict[bytes, dict] = OrderedDict()
        self.dropped = 0
        self.lock = threading.Lock()

    def submitted(self, task_id: bytes, name: str, *, job_id, actor_id=None,
                  waits_for_args: bool = False, parent=None) -> None:
        if self.limit <= 0:
            return
        rec = {"task_id": task_id, "name": name, "job_id": job_id, "actor_id": actor_id,
               "state": PENDING_ARGS if waits_for_args else PENDING_NODE,
               "attempt": 0, "submitted": time.time(), "start": None, "end": None,
               "node_id": None, "worker_id": None, "worker_pid": None, "error_type": None,
               "error": None, "parent": parent}
        with self.lock:
            self.tasks[task_id] = rec
            while len(self.tasks) > self.limit:
                self.tasks.popitem(last=False)
                self.dropped += 1

    def running(self, task_id: bytes, attempt: int, worker_id=None, node_id=None,
                pid=None) -> None:
        rec = self.tasks.get(task_id)
        if rec is not None:
            rec["state"], rec["attempt"], rec["start"] = RUNNING, attempt, time.time()
            rec["worker_id"], rec["node_id"], rec["worker_pid"] = worker_id, node_id, pid

    def ready(self, task_id: bytes) -> None:
        rec = self.tasks.get(task_id)
        if rec is not None and rec["state"] == PENDING_ARGS:
            rec["state"] = PENDING_NODE

    def finished(self, task_id: bytes, error: BaseException | None = None,
                 error_type: str | None = None) -> None:
        rec = self.tasks.get(task_id)
        if rec is None:
            return
        rec["end"] = time.time()
        if error is None and error_type is None:
            rec["state"] = FINISHED
            return
        rec["state"] = FAILED
        if error is not None:
            cause = getattr(error, "cause", None)
            rec["error_type"] = type(cause if cause is not None else error).__name__
            rec["error"] = str(error)
        else:
            rec["error_type"] = error_type

    def rows(self, query: dict | None = None) -> tuple[list[dict], int]:
        """Copies of the records, oldest first; ``query`` (see :func:`select`) keeps the
        newest ``limit`` that match."""
        with self.lock:
            if not query:
                return [dict(r) for r in self.tasks.values()], self.dropped
            return [dict(r) for r in select(self.tasks.values(), query)], self.dropped

    def counts(self) -> tuple[dict[str, int], dict[bytes, dict[str, int]]]:
        """Records by state, and actor calls by actor and state: what an overview and the
        actors page need, without shipping the records."""
        states: dict[str, int] = {}
        actors: dict[bytes, dict[str, int]] = {}
        with self.lock:
            for r in self.tasks.values():
                states[r["state"]] = states.get(r["state"], 0) + 1
                if r["actor_id"] is not None:
                    calls = actors.setdefault(r["actor_id"], {})
                    calls[r["state"]] = calls.get(r["state"], 0) + 1
        return states, actors
