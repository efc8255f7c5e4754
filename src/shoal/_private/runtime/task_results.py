"""The task side of the core runtime: submitting tasks and actor calls, and their results.

A part of :class:`core.CoreRuntime` (``rt.tasks``): queues submissions from user threads in
batches, resolves ObjectRef arguments, hands ready tasks to the submitters, and records what
comes back (returns, streamed items, errors, retries, cancellation).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging

from ..wire import serialization
from ..wire.aio import spawn
from ..wire.ids import IdSource
from ..wire.transport import ConnectionLost, RemoteError
from . import errors as exc_mod
from .generator import DynamicCollector
from .object_ref import ObjectRef
from .ownership import Value
from .submitter import TaskSpec

log = logging.getLogger(__name__)


class Tasks:
    """Tasks and actor calls submitted here, and what becomes of them. The runtime calls its
    ``submit``, ``submit_actor_call``, ``task_finished``... (bound as its own)."""

    def __init__(self, rt, refs, values, lineage):
        # The runtime, for what changes after construction or is set from outside: job_id
        # (by start in a driver, by the executor in a worker), node_id, head_conn,
        # cancelling_task (by the worker's executor); and its peer(), make_ref(),
        # free_on_node(), _apply().
        self.rt = rt
        self.refs = refs  # the runtime's ownership.RefTable
        self.values = values  # values.Values: arguments' values, results recorded
        self.lineage = lineage  # lineage.Lineage: lost arguments, returns that can be remade
        self._set_one = values.set_one
        # The runtime's, fixed for its life (read here without going through it):
        self.loop = rt.loop
        self.address = rt.address
        self.task_events = rt.task_events
        self.current_task = rt.current_task
        self.code_paths = rt.code_paths
        self.submitter = rt.submitter
        self.actor_submitter = rt.actor_submitter
        # (submit function, spec, deps) from user threads, run on the loop in one batch
        self._submissions: collections.deque = collections.deque()
        self._submit_scheduled = False  # a drain of _submissions is scheduled on the loop
        self.resolving: dict[bytes, TaskSpec] = {}  # tasks waiting for their arguments
        self.generators: dict = {}  # task id -> ObjectRefGenerator of a streaming task

    # -- tasks ----------------------------------------------------------------------------
    def submit(self, spec: TaskSpec, deps: list) -> None:
        """Queue a task from a user thread; it runs once its ObjectRef arguments are ready.

        Submissions made while the I/O loop is busy are handed over in one batch, with one
        wake-up of the loop rather than one per task.
        """
        self.task_events.submitted(spec.task_id, spec.name, job_id=self.rt.job_id,
                                   waits_for_args=bool(deps),
                                   parent=getattr(self.current_task, "task_id", None))
        if not deps and not self._submissions and self.rt.cancelling_task is None \
                and self.submitter.try_direct(spec):
            return  # pushed from this thread to a leased worker with room
        self._submissions.append((self._submit, spec, deps))
        if not self._submit_scheduled:
            self._submit_scheduled = True
            self.loop.call_soon_threadsafe(self._drain_submissions)
        if self.rt.cancelling_task is not None:  # submitted by a task being cancelled
            self.loop.call_soon_threadsafe(self.cancel_local, spec.task_id, False, True)

    def _drain_submissions(self) -> None:
        self._submit_scheduled = False
        q = self._submissions
        while q:
            fn, spec, deps = q.popleft()
            fn(spec, deps)

    def create_actor(self, spec: dict, cls_bytes: bytes, args: list, deps: list) -> None:
        """Send an actor's creation spec to the head once its ObjectRef arguments are ready."""
        self.loop.call_soon_threadsafe(
            lambda: spawn(self._create_actor(spec, cls_bytes, args, deps)))

    async def _create_actor(self, spec, cls_bytes, args, deps) -> None:
        if deps:
            try:
                values = await self.values.gather_values([args[i] for i in deps])
            except exc_mod.RayError as e:
                self._abort_actor(spec, f"an argument of its constructor was lost: {e}")
                return
            for i, v in zip(deps, values, strict=True):
                if v.is_error:  # an argument's task failed: the actor cannot be made
                    try:
                        err = await asyncio.to_thread(self.values.materialize, v)
                    except Exception as e:  # noqa: BLE001 - describe what we can
                        err = e
                    from .dep_errors import dependency_error

                    err = dependency_error(err, f"{spec.get('class_name', 'Actor')}.__init__")
                    self._abort_actor(spec, "The actor died because of an error raised in its "
                                            f"creation task, {err}")
                    return
                args[i] = v
        bufs: list = [cls_bytes]
        spec["cls"] = 0
        spec["job"] = self.rt.job_id
        paths = self.code_paths.by_job.get(self.rt.job_id)
        if paths:  # the job's driver directories, needed to load the class
            spec["sp"] = paths
        spec["args"] = [v.to_wire(bufs) for v in args]
        if self.rt.head_conn is not None and not self.rt.head_conn.closed:
            self.rt.head_conn.send("create_actor", spec, bufs)

    def _abort_actor(self, spec: dict, why: str) -> None:
        log.warning("actor %s cannot be created: %s", spec["aid"].hex(), why)
        if self.rt.head_conn is not None and not self.rt.head_conn.closed:
            self.rt.head_conn.send("actor_creation_failed", {"aid": spec["aid"], "error": why})

    def submit_actor_call(self, call, deps: list) -> None:
        """Queue an actor call from a user thread (in order with the caller's other calls)."""
        self.task_events.submitted(call.task_id, call.display_name or call.name,
                                   job_id=self.rt.job_id, actor_id=call.actor_id, waits_for_args=bool(deps),
                                   parent=getattr(self.current_task, "task_id", None))
        if deps or not self.actor_submitter.try_direct(call):
            if deps:
                with self.actor_submitter.queue(call.actor_id).lock:
                    self.actor_submitter.queue(call.actor_id).in_transit += 1
            self._submissions.append((self.actor_submitter.submit, call, deps))
            if not self._submit_scheduled:
                self._submit_scheduled = True
                self.loop.call_soon_threadsafe(self._drain_submissions)
        if self.rt.cancelling_task is not None:  # submitted by a task being cancelled
            self.loop.call_soon_threadsafe(self.cancel_local, call.task_id, False, True)

    def _submit(self, spec: TaskSpec, deps: list) -> None:
        if not deps:
            self.submitter.enqueue(spec)
            return
        self.resolving[spec.task_id] = spec
        spawn(self._resolve_and_enqueue(spec, deps))

    def resubmit(self, spec) -> None:
        """Submit ``spec`` again from its argument refs (lost ones are remade first)."""
        spec.args = list(spec.args)
        for i, ref in spec.dep_refs.items():
            spec.args[i] = ref
        spec.hold = list(spec.dep_refs.values())
        for ref in spec.hold:
            self.refs.add_submitted(ref._id)
        self._submit(spec, sorted(spec.dep_refs))

    async def _resolve_and_enqueue(self, spec: TaskSpec, deps: list) -> None:
        try:
            while True:
                values = await self.values.gather_values([spec.args[i] for i in deps])
                lost = [i for i, v in zip(deps, values, strict=True) if self.lineage.is_lost(v)]
                if not lost:
                    break
                foreign = [i for i in lost if spec.args[i]._owner != self.address]
                if foreign:  # borrowed from an owner that must remake it: not us
                    raise exc_mod.ObjectLostError(
                        spec.args[foreign[0]]._id.hex(), spec.args[foreign[0]]._owner,
                        "an argument's only copy was on a node that died")
                # ours, and found lost only now: resolving again remakes it
        except exc_mod.RayError as e:  # an argument is gone (lost, owner died): Ray's wrapper
            from .dep_errors import dependency_error

            if not spec.cancelled:
                self.fail_task(spec, dependency_error(e, spec.name))
            return
        finally:
            self.resolving.pop(spec.task_id, None)
        if spec.cancelled:
            return  # failed when it was cancelled
        for i, v in zip(deps, values, strict=True):
            if v.is_error:
                self.task_events.finished(spec.task_id, error_type="RayTaskError")
                from .dep_errors import dependency_error_value

                v = await dependency_error_value(self.rt, v, spec.name)
                self.set_returns(spec, [v] if spec.num_returns == "streaming"
                                 else [v] * spec.num_returns)
                return
            spec.args[i] = v
        self.task_events.ready(spec.task_id)
        self.submitter.enqueue(spec)

    def gen_item(self, body: dict, bufs: list) -> None:
        self._stream_item(body["tid"], body["i"], Value.from_wire(body["v"], bufs))

    def _stream_item(self, tid: bytes, index: int, v: Value) -> None:
        gen = self.generators.get(tid)
        if gen is None:  # nobody iterates any more
            if v.path is not None:
                self.rt.free_on_node(v.node_id, [v.path])
            return
        rid = IdSource.return_id(tid, index)
        self.refs.new_owned(rid, tid)
        ref = self.rt.make_ref(rid)
        self._set_one(rid, v, None)
        gen._add(index, ref)

    def task_finished(self, spec: TaskSpec, body: dict, bufs: list) -> bool:
        """A worker replied. Returns True if the task should run again (retry_exceptions)."""
        if body.get("arg_lost") and isinstance(spec, TaskSpec):
            spec.arg_losses += 1
            if spec.arg_losses > 50:
                self.fail_task(spec, exc_mod.ObjectLostError(
                    spec.task_id.hex(), self.address,
                    f"the arguments of task {spec.name} kept being lost"))
            else:  # give the head a moment to announce the dead node, then re-resolve
                self.release_hold(spec)
                self.loop.call_later(0.2, self.resubmit, spec)
            return False
        if spec.num_returns == "streaming":
            n = body.get("n", 0)
            if body.get("stream_err"):  # the generator raised: retry, or its last item
                v = Value.from_wire(body["r"][0], bufs)
                if isinstance(spec, TaskSpec) and self._should_retry_exception(spec, v):
                    return True  # items seen already are dropped by index on the rerun
                n += 1
                self._stream_item(spec.task_id, n, v)
            gen = self.generators.pop(spec.task_id, None)
            if gen is not None:
                gen._finish(n)
            self.release_hold(spec)
            return False
        values = [Value.from_wire(d, bufs) for d in body["r"]]
        if body.get("app_err") and values and self._should_retry_exception(spec, values[0]):
            return True
        self._record_outcome(spec.task_id, values, body.get("app_err"))
        contained = body.get("cont") or {}
        for i, v in enumerate(values):
            inner = [ObjectRef(oid, owner, self.rt) for oid, owner in contained.get(i, ())]
            for r in inner:
                if r._owner != self.address:
                    self.refs.mark_registered(r._id)
            self._set_one(spec.return_ids[i], v, inner)
        self.release_hold(spec)
        if isinstance(spec, TaskSpec):
            self.lineage.keep(spec)
        return False

    def _should_retry_exception(self, spec: TaskSpec, v: Value) -> bool:
        allow = spec.retry_exceptions
        if not allow or spec.cancelled:
            return False
        if spec.max_retries >= 0 and spec.attempt > spec.max_retries:
            return False
        if allow is True:
            return True
        if v.path is not None and v.node_id not in (None, self.rt.node_id):
            return True  # a remote error value: fetching it here would block the I/O loop
        try:
            err = self.values.materialize(v)
        except Exception:
            return False
        cause = getattr(err, "cause", err)
        return isinstance(cause, tuple(allow))

    def release_hold(self, spec) -> None:
        """A task or call is done: the refs it kept alive as arguments let go."""
        for r in spec.hold:
            self.rt._apply(self.refs.remove_submitted(r._id))
        spec.hold = []

    def _record_outcome(self, task_id: bytes, values: list, app_err) -> None:
        err = None
        if values and values[0].is_error:
            err_v = values[0]
            if err_v.path is None:  # small: read the error for the task's record
                try:
                    err = self.values.materialize(err_v)
                except Exception:  # noqa: BLE001 - the record is best effort
                    err = None
            if err is None:
                self.task_events.finished(task_id, error_type="RayTaskError")
                return
        self.task_events.finished(task_id, error=err)

    def fail_task(self, spec: TaskSpec, error: BaseException) -> None:
        self.task_events.finished(spec.task_id, error=error)
        ser = serialization.serialize(error, is_error=True)
        v = Value(True, bytes(ser.meta), [bytes(b) for b in ser.buffers], size=ser.total_bytes)
        self.set_returns(spec, [v] * (1 if spec.num_returns == "streaming"
                                      else spec.num_returns))

    def set_returns(self, spec: TaskSpec, values: list) -> None:
        if spec.num_returns == "streaming":  # the error ends the stream as its next item
            gen = self.generators.pop(spec.task_id, None)
            if isinstance(gen, DynamicCollector):  # num_returns="dynamic": its ref fails
                gen._fail(values[0])
            elif gen is not None:
                index = max(gen._refs, default=gen._next - 1) + 1
                rid = IdSource.return_id(spec.task_id, index)
                self.refs.new_owned(rid, spec.task_id)
                ref = self.rt.make_ref(rid)
                self._set_one(rid, values[0], None)
                gen._add(index, ref)
                gen._finish(index)
            self.release_hold(spec)
            return
        for oid, v in zip(spec.return_ids, values, strict=True):
            self._set_one(oid, v, None)
        self.release_hold(spec)

    def cancel(self, task_id: bytes, owner: str, force: bool, recursive: bool) -> None:
        """``cancel()`` from a user thread: here if we own the task, else by its owner."""
        if owner != self.address:
            self.loop.call_soon_threadsafe(
                lambda: spawn(self._cancel_remote(owner, task_id, force, recursive)))
            return
        fut = concurrent.futures.Future()

        def run():
            try:
                fut.set_result(self.cancel_local(task_id, force, recursive))
            except BaseException as e:  # noqa: BLE001 - raised in the caller
                fut.set_exception(e)

        self.loop.call_soon_threadsafe(run)
        if fut.result(timeout=30) == "actor":
            raise ValueError("force=True is not supported for actor tasks.")

    async def _cancel_remote(self, owner: str, task_id: bytes, force: bool,
                             recursive: bool) -> None:
        try:
            (await self.rt.peer(owner)).send("cancel_owned_task", {
                "task_id": task_id, "force": force, "recursive": recursive})
        except (ConnectionLost, OSError, RemoteError):
            pass  # the owner is gone, and its task with it

    def cancel_children(self, force: bool) -> None:
        """Cancel every task this process submitted that has not finished (the children
        of a task being cancelled recursively); ``force`` is ignored for actor calls."""
        self._drain_submissions()  # tasks just submitted are still in the batch
        ids = self.submitter.unfinished_ids() | set(self.resolving)
        for tid in ids:
            self.cancel_local(tid, force, True)
        for tid in self.actor_submitter.unfinished():
            self.cancel_local(tid, False, True)

    def cancel_local(self, task_id: bytes, force: bool, recursive: bool = True) -> str | None:
        """On the loop: cancel a task or actor call of ours. Returns ``"actor"`` when
        ``force`` is asked of an actor call (refused), else None."""
        spec = self.submitter.cancel_queued(task_id)
        if spec is not None:
            spec.cancelled = True
            self.fail_task(spec, exc_mod.TaskCancelledError(task_id.hex()))
            return None
        spec = self.submitter.running_task(task_id)
        if spec is not None:
            spec.cancelled = True
            lw = spec.worker
            if lw is not None and not lw.conn.closed:
                lw.conn.send("cancel_task", {"tid": task_id, "force": force,
                                             "recursive": recursive})
            return None
        spec = self.resolving.pop(task_id, None)
        if spec is not None:  # still waiting for its arguments: it will never run
            spec.cancelled = True
            self.fail_task(spec, exc_mod.TaskCancelledError(task_id.hex()))
            return None
        if force and self.actor_submitter.find(task_id) is not None:
            return "actor"
        self.actor_submitter.cancel(task_id, recursive)
        return None
