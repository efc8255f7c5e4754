"""Calling actors: one ordered queue per actor in each calling process.

Calls are sent straight to the actor's worker, in the order they were made: a call whose
ObjectRef arguments are not ready yet holds back the ones behind it. The head says where the
actor lives (and waits while it restarts). When the connection to the actor drops, calls in
flight go back to the front of the queue, in order, and are sent to the next incarnation if
``max_task_retries`` allows (each resend counts); the others wait for the head's verdict and
fail with ``ActorUnavailableError`` if the actor is restarting, ``ActorDiedError`` (with Ray's
death context) if it is dead for good. Once it is dead every call fails promptly.
Everything here runs on the runtime's event loop thread, except ``try_direct``.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field

from ..wire.aio import spawn
from ..wire.transport import ConnectionLost, RemoteError

log = logging.getLogger(__name__)


@dataclass
class ActorCall:
    task_id: bytes
    actor_id: bytes
    name: str
    args: list
    kw_names: list
    num_returns: int
    return_ids: list
    max_retries: int  # the actor's max_task_retries
    group: str | None = None
    hold: list = field(default_factory=list)
    retry_exceptions: object = False
    cancelled: bool = False
    attempt: int = 0
    resolved: bool = False
    conn: object = None  # where it was sent
    display_name: str = ""  # "Class.method", for task records


class ActorQueue:
    def __init__(self, actor_id: bytes):
        self.actor_id = actor_id
        self.pending: deque[ActorCall] = deque()
        self.inflight: dict[bytes, ActorCall] = {}
        self.conn = None
        self.incarnation = -1
        self.connecting = False
        self.lost: list[ActorCall] = []  # died in flight, no retry left: await the verdict
        self.dead: BaseException | None = None
        # Calls made (by callers, under ``lock``) and finished (by the loop alone, so with no
        # lock: the reply path never waits for a caller holding it): their difference is
        # what max_pending_calls counts.
        self.made = 0
        self.finished = 0
        self.in_transit = 0  # calls handed to the loop and not yet queued here
        self.lock = threading.RLock()
        self.where: tuple = (None, None, None)  # the actor's worker id, node id, pid


class ActorSubmitter:
    def __init__(self, rt):
        self.rt = rt
        self.queues: dict[bytes, ActorQueue] = {}
        self._lock = threading.Lock()

    def queue(self, actor_id: bytes) -> ActorQueue:
        q = self.queues.get(actor_id)
        if q is None:
            with self._lock:
                q = self.queues.setdefault(actor_id, ActorQueue(actor_id))
        return q

    # -- submission ----------------------------------------------------------------------
    def try_direct(self, call: ActorCall) -> bool:
        """From the caller's thread: send now if the actor is connected and nothing of
        ours is queued ahead of this call; otherwise count it in transit and say no."""
        q = self.queue(call.actor_id)
        with q.lock:
            conn = q.conn
            if conn is None or conn.closed or q.pending or q.in_transit or q.connecting \
                    or q.dead is not None:
                q.in_transit += 1
                return False
            body, bufs = self._body(call)
            call.attempt += 1
            call.resolved = True  # no arguments to wait for, should it be sent again
            self.rt.task_events.running(call.task_id, call.attempt, *q.where)
            call.conn = conn
            q.inflight[call.task_id] = call
            conn.request_from_thread("actor_call", body, bufs,
                                     lambda f: self._on_reply(q, call, f))
        return True

    def submit(self, call: ActorCall, deps: list) -> None:
        """On the loop: queue a call that could not be sent directly."""
        q = self.queue(call.actor_id)
        with q.lock:
            q.in_transit -= 1
        if q.dead is not None:
            self._fail(q, call, q.dead)
            return
        q.pending.append(call)
        if deps:
            spawn(self._resolve(q, call, deps))
        else:
            call.resolved = True
            self._pump(q)

    async def _resolve(self, q: ActorQueue, call: ActorCall, deps: list) -> None:
        from . import errors as exc_mod

        try:
            values = await self.rt._gather_values([call.args[i] for i in deps])
        except exc_mod.RayError as e:
            if call.cancelled:
                return  # failed already, when it was cancelled
            from .dep_errors import dependency_error

            if call in q.pending:
                q.pending.remove(call)
            self._fail(q, call, dependency_error(e, call.display_name or call.name))
            self._pump(q)
            return
        if call.cancelled:
            return
        for i, v in zip(deps, values, strict=True):
            if v.is_error:
                if call in q.pending:
                    q.pending.remove(call)
                self._finish_count(q)
                self._pump(q)  # later calls need not wait for the error to be made
                from .dep_errors import dependency_error_value

                v = await dependency_error_value(self.rt, v, call.display_name or call.name)
                self.rt._set_returns(call, [v] if call.num_returns == "streaming"
                                     else [v] * call.num_returns)
                return
            call.args[i] = v
        call.resolved = True
        self._pump(q)

    def _pump(self, q: ActorQueue) -> None:
        if q.dead is not None:
            self._fail_lost(q, q.dead)
            while q.pending:
                self._fail(q, q.pending.popleft(), q.dead)
            return
        if q.conn is None or q.conn.closed:
            if (q.pending or q.lost) and not q.connecting:
                q.connecting = True
                spawn(self._connect(q))
            return
        with q.lock:
            while q.pending and q.pending[0].resolved and q.conn is not None:
                self._send(q, q.pending.popleft())

    async def _connect(self, q: ActorQueue) -> None:
        from . import errors as exc_mod

        try:
            while True:
                # Calls that died with the last incarnation hear of a restart at once.
                info, _ = await self.rt.head_conn.request(
                    "get_actor_info", {"aid": q.actor_id, "after": q.incarnation,
                                       "restarting": bool(q.lost)})
                if info["state"] == "DEAD":
                    q.dead = death_error(info, q.actor_id)
                    break
                if q.lost:
                    why = info.get("restart_cause")
                    self._fail_lost(q, exc_mod.ActorUnavailableError(
                        "The actor is temporarily unavailable" + (f": {why}" if why else ""),
                        q.actor_id))
                if info["state"] == "ALIVE":
                    try:
                        q.conn = await self.rt.peer(info["address"])
                    except (ConnectionLost, OSError):
                        # Died just after the head said where: wait for what comes next.
                        q.incarnation = info["incarnation"]
                        continue
                    q.where = (info.get("worker_id"), info.get("node_id"),
                               info.get("pid"))
                    q.incarnation = info["incarnation"]
                    break
        except (ConnectionLost, RemoteError, OSError) as e:
            if self.rt.shutting_down:
                return
            q.dead = exc_mod.ActorUnavailableError(
                f"could not reach the control store to find the actor: {e}", q.actor_id)
        finally:
            q.connecting = False
        self._pump(q)

    def _body(self, call: ActorCall) -> tuple[dict, list]:
        rt = self.rt
        bufs: list = []
        body = {
            "tid": call.task_id, "aid": call.actor_id, "name": call.name,
            "args": [v.to_wire(bufs) for v in call.args], "kw": call.kw_names,
            "nr": call.num_returns, "job": rt.job_id, "owner": rt.address,
            "owner_id": rt.worker_id,
        }
        if call.group:
            body["cg"] = call.group
        return body, bufs

    def _send(self, q: ActorQueue, call: ActorCall) -> None:
        body, bufs = self._body(call)
        call.attempt += 1
        self.rt.task_events.running(call.task_id, call.attempt, *q.where)
        call.conn = q.conn
        q.inflight[call.task_id] = call
        try:
            q.conn.request_cb("actor_call", body, bufs, lambda f: self._on_reply(q, call, f))
        except ConnectionLost:
            del q.inflight[call.task_id]
            call.attempt -= 1
            q.pending.appendleft(call)
            self.peer_lost(q.conn)
            return

    def _on_reply(self, q: ActorQueue, call: ActorCall, fut) -> None:
        if fut.exception() is not None:
            if isinstance(fut.exception(), ConnectionLost):
                return  # peer_lost has already retried or failed it
            from . import errors as exc_mod

            q.inflight.pop(call.task_id, None)
            self._fail(q, call, exc_mod.RaySystemError(f"actor call failed: {fut.exception()}"))
            return
        if q.inflight.pop(call.task_id, None) is None:
            return
        body, bufs = fut.result()
        self.rt.task_finished(call, body, bufs)
        self._finish_count(q)

    # -- failures -------------------------------------------------------------------------
    def peer_lost(self, conn) -> None:
        """The connection to an actor dropped: its process died (or is being restarted)."""
        for q in list(self.queues.values()):
            if q.conn is conn:
                with q.lock:
                    self._requeue_lost(q, conn)
                self._pump(q)

    def _requeue_lost(self, q: ActorQueue, conn) -> None:
        """Calls in flight on ``conn`` go back to the front of the queue, in order, if
        max_task_retries allows (a cancelled call is never retried); the others wait for
        the head to say whether the actor restarts or is dead."""
        q.conn = None
        retry = []
        for call in list(q.inflight.values()):
            if call.conn is not conn:
                continue
            del q.inflight[call.task_id]
            if not call.cancelled and (call.max_retries < 0 or
                                       call.attempt <= call.max_retries):
                retry.append(call)
            else:
                q.lost.append(call)
        q.pending.extendleft(reversed(retry))

    def _fail_lost(self, q: ActorQueue, err: BaseException) -> None:
        lost, q.lost = q.lost, []
        for call in lost:
            self._fail(q, call, err)

    # -- cancellation ---------------------------------------------------------------------
    def find(self, task_id: bytes) -> tuple[ActorQueue, ActorCall, str] | None:
        """The unfinished call with this task id: its queue, the call, and where it is
        (``"pending"``: not sent yet, ``"inflight"``, ``"lost"``)."""
        for q in list(self.queues.values()):
            call = q.inflight.get(task_id)
            if call is not None:
                return q, call, "inflight"
            for call in q.pending:
                if call.task_id == task_id:
                    return q, call, "pending"
            for call in q.lost:
                if call.task_id == task_id:
                    return q, call, "lost"
        return None

    def unfinished(self) -> list[bytes]:
        """Task ids of every call not answered yet (a recursive cancel's children)."""
        ids: list[bytes] = []
        for q in list(self.queues.values()):
            ids += list(q.inflight)
            ids += [c.task_id for c in q.pending]
        return ids

    def cancel(self, task_id: bytes, recursive: bool) -> bool:
        """Cancel a call of ours: one not sent yet fails now with TaskCancelledError; one
        sent is asked to stop (the actor answers TaskCancelledError). False if unknown."""
        from . import errors as exc_mod

        found = self.find(task_id)
        if found is None:
            return False
        q, call, where = found
        call.cancelled = True
        if where == "pending":
            q.pending.remove(call)
            self._fail(q, call, exc_mod.TaskCancelledError(
                None, f"The task {task_id.hex()} is canceled from an actor "
                      f"{q.actor_id.hex()} before it executes."))
            self._pump(q)
        elif where == "inflight" and call.conn is not None and not call.conn.closed:
            call.conn.send("cancel_task", {"tid": task_id, "force": False,
                                           "recursive": recursive})
        return True

    def _fail(self, q: ActorQueue, call: ActorCall, err: BaseException) -> None:
        self._finish_count(q)
        self.rt.fail_task(call, err)

    @staticmethod
    def _finish_count(q: ActorQueue) -> None:
        q.finished += 1  # on the loop only


def death_error(info: dict, actor_id: bytes) -> BaseException:
    """``ActorDiedError`` for a dead actor, from the head's info: Ray's message (the death
    context: class, id, pid, name, namespace, IP, and why), or its creation task's error."""
    from . import errors as exc_mod

    cause = info.get("death_cause") or ""
    if info.get("init_failed"):
        err = exc_mod.ActorDiedError(cause, actor_id=actor_id.hex())
        err._actor_init_failed = True
        return err
    return exc_mod.ActorDiedError({
        "class_name": info.get("class_name"), "actor_id": actor_id.hex(),
        "pid": info.get("pid"), "name": info.get("name"),
        "ray_namespace": info.get("namespace"), "node_ip_address": info.get("ip"),
        "error_message": cause, "never_started": info.get("never_started"),
    }, actor_id=actor_id.hex())
