"""Running pushed tasks in a worker process.

Task pushes arrive on the I/O thread and queue here; the worker's main thread takes them one
at a time, loads the function (sent once per connection, cached by id), materializes the
arguments, runs the function, and stores the returns: small ones inline in the reply, large
ones written once to shared memory. Cancellation interrupts the main thread with SIGINT, so
even ``time.sleep`` is cut short; a forced cancel ends the process.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import signal
import sys
import threading
import traceback

from ..runtime import errors as exc_mod
from ..runtime.ownership import Value
from ..runtime.worker_env import CallEnv
from ..wire import serialization
from ..wire.ids import IdSource
from ..wire.worker_output import set_name

log = logging.getLogger(__name__)


class TaskExecutor:
    def __init__(self, rt):
        self.rt = rt
        self.queue: queue.SimpleQueue = queue.SimpleQueue()  # C: one futex hand-off, no Condition
        self.functions: dict[bytes, object] = {}
        self.current_tid: bytes | None = None
        self.cancelled: set[bytes] = set()  # queued tasks cancelled before they started
        self.queued: set[bytes] = set()  # pushed, not started
        self._cancel_lock = threading.Lock()
        self.calls: dict[bytes, int] = {}  # function id -> calls run (for max_calls)
        self.leaving = False  # a call reached max_calls: this worker takes no more tasks
        self._finishing = None  # the reply still being sent from the I/O loop, if any
        self.env = CallEnv()  # env_vars and OMP_NUM_THREADS around each task
        rt.extra_handlers["push_task"] = self._on_push
        rt.extra_handlers["cancel_task"] = self._on_cancel
        rt.task_executor = self

    # I/O thread ----------------------------------------------------------------------------
    def _on_push(self, conn, body, bufs, req_id):
        with self._cancel_lock:
            if self.leaving:
                self._requeue(conn, req_id)
                return
            self.queued.add(body["tid"])
            self.queue.put((self.execute, (conn, body, bufs, req_id)))

    def _on_cancel(self, conn, body, bufs, req_id):
        tid = body["tid"]
        with self._cancel_lock:
            if tid in self.queued:
                self.cancelled.add(tid)
            if self.current_tid == tid:
                self.cancelled.add(tid)  # for is_canceled(), until the task ends
                if body.get("recursive", True):
                    # Tasks it submits from now on are cancelled as they are submitted;
                    # those submitted so far, once drained from the batch, here.
                    self.rt.cancelling_task = tid
                    self.rt.cancel_children(bool(body.get("force")))
                if body.get("force"):
                    os._exit(1)  # its children's worker leases die with their owner
                os.kill(os.getpid(), signal.SIGINT)

    def is_canceled(self) -> bool:
        """Whether cancel() reached the task running on this thread."""
        ax = getattr(self.rt, "actor_executor", None)
        if ax is not None and self.rt.actor_id is not None:
            return ax.is_canceled()
        tid = getattr(self.rt.current_task, "task_id", None)
        return tid is not None and tid in self.cancelled

    # main thread ---------------------------------------------------------------------------
    def run_forever(self) -> None:
        while True:
            try:
                item = self.queue.get()
                if item is None:
                    return
                fn, args = item
                fn(*args)
            except KeyboardInterrupt:
                continue  # a cancel that arrived just after its task ended

    def _load_function(self, body, bufs):
        fid = body["fid"]
        fn = self.functions.get(fid)
        if fn is None:
            idx = body.get("fn")
            if idx is None:
                raise exc_mod.RaySystemError(f"function {body['name']} was never sent")
            fn = self.functions[fid] = serialization.deserialize(bufs[idx], [])
        return fn

    def set_context(self, body) -> None:
        """Make the runtime context (task id, job, GPUs) describe the task about to run."""
        rt = self.rt
        ctx = rt.current_task
        ctx.task_id, ctx.name, ctx.job_id = body["tid"], body["name"], body["job"]
        ctx.placement_group = body.get("pg")
        rt.job_id = body["job"]
        gpu_ids = body.get("gpu")
        if gpu_ids is None:  # an actor call: the actor's resources and GPUs are its own
            ctx.resources = getattr(rt, "actor_resources", None) or {}
            ctx.gpu_ids = getattr(rt, "actor_gpu_ids", None) or []
            return
        ctx.resources = body.get("res") or {}
        ctx.gpu_ids = gpu_ids
        if gpu_ids:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpu_ids)
        else:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)

    def arguments(self, body, bufs) -> tuple[list, dict]:
        args = [self.rt.materialize(Value.from_wire(d, bufs)) for d in body["args"]]
        kw_names = body["kw"]
        if not kw_names:
            return args, {}
        kwargs = dict(zip(kw_names, args[-len(kw_names):], strict=True))
        return args[: -len(kw_names)], kwargs

    def prepare(self, body, *, actor: bool = False) -> None:
        """Before a task or an actor's creation: the job's code paths on ``sys.path``, the
        call's environment variables (see ``worker_env``)."""
        rt = self.rt
        job = body.get("job")
        if "sp" in body:
            rt.code_paths.learn(job, body["sp"])
        rt.code_paths.use(job)
        env = body.get("env")
        rt.inherited_env = env
        self.env.enter(env, body.get("res") or {})
        if actor:
            self.env = CallEnv()  # the actor keeps what was set for it
        else:
            set_name(body["name"].replace("()", ""))  # its output's prefix, as Ray's

    def execute(self, conn, body, bufs, req_id) -> None:
        tid = body["tid"]
        self.set_context(body)
        exiting = False
        try:
            self.prepare(body)
            with self._cancel_lock:
                self.queued.discard(tid)
                if tid in self.cancelled:
                    raise KeyboardInterrupt
                self.current_tid = tid
            try:
                fn = self.rt.current_task.function = self._load_function(body, bufs)
                try:
                    args, kwargs = self.arguments(body, bufs)
                except exc_mod.ObjectLostError:
                    # An argument died with its node after the owner resolved it: not the
                    # task's error. The owner remakes the argument and runs the task again.
                    self._reply_arg_lost(conn, req_id)
                    return
                exiting = self._count_call(body)
                result = fn(*args, **kwargs)
                del args, kwargs
            finally:
                with self._cancel_lock:
                    self.current_tid = None
            self.deliver(conn, req_id, body, result=result, exiting=exiting)
        except KeyboardInterrupt:
            self.deliver(conn, req_id, body, system=exc_mod.TaskCancelledError(tid.hex()),
                         exiting=exiting)
        except SystemExit as e:
            # As in Ray, sys.exit() ends the worker: the owner sees it die and retries the
            # task within max_retries, then raises WorkerCrashedError.
            log.warning("task %s called sys.exit(%r): the worker exits", body["name"], e.code)
            _exit_now(e.code)
        except exc_mod.RaySystemError as e:
            self.deliver(conn, req_id, body, system=e, exiting=exiting)
        except BaseException as e:  # noqa: BLE001 - the user's error goes back to the caller
            self.deliver(conn, req_id, body, error=e, exiting=exiting)
        finally:
            with self._cancel_lock:
                self.cancelled.discard(tid)
                if self.rt.cancelling_task == tid:
                    self.rt.cancelling_task = None
            self.env.leave()
        if exiting:
            self._leave(conn)

    # -- max_calls --------------------------------------------------------------------------
    def _count_call(self, body) -> bool:
        """Count a call of a function with ``max_calls``; True if it is the last one."""
        limit = body.get("mc")
        if not limit:
            return False
        fid = body["fid"]
        n = self.calls[fid] = self.calls.get(fid, 0) + 1
        return n >= limit

    def _requeue(self, conn, req_id) -> None:
        """Hand a pushed task back unrun: this worker is leaving."""
        self._send_any_thread(conn, "r", req_id, {"r": [], "requeue": True}, [])

    def _leave(self, conn) -> None:
        """End the worker after the call that reached ``max_calls``, as Ray's does: tasks
        pushed behind it go back, the reply reaches the owner, exit handlers run."""
        with self._cancel_lock:
            self.leaving = True
            pending = []
            while True:
                try:
                    pending.append(self.queue.get_nowait())
                except queue.Empty:
                    break
        conns = {conn}
        for item in pending:
            if item is not None and getattr(item[0], "__func__", None) is TaskExecutor.execute:
                other, _body, _bufs, req_id = item[1]
                self._requeue(other, req_id)
                conns.add(other)
        try:
            if self._finishing is not None:
                self._finishing.result(timeout=5)
            self.rt.call(_drain(conns), timeout=6)
        except Exception:  # noqa: BLE001 - leave regardless
            log.debug("could not flush the last replies", exc_info=True)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        try:
            atexit._run_exitfuncs()
        finally:
            os._exit(0)

    _NOTHING = object()

    def deliver(self, conn, req_id, body, *, result=_NOTHING, error=None, system=None,
                exiting: bool = False) -> None:
        """Store a call's outcome and reply to its caller; safe from any thread.
        ``exiting`` tells the caller this worker leaves after the reply (max_calls)."""
        rt = self.rt
        name, nr, tid = body["name"], body["nr"], body["tid"]
        if nr == "streaming":
            self.stream(conn, req_id, body, result, error, system, exiting=exiting)
            return
        app_err = False
        if error is None and system is None:
            try:
                sers = [self._serialize_return(r, name)
                        for r in self._split_returns(result, nr, name)]
            except BaseException as e:  # noqa: BLE001 - a bad return is the task's error
                error = e
        if system is not None:
            sers = [serialization.serialize(system, is_error=True)] * nr
        elif error is not None:
            app_err = True
            sers = [self._error_value(error, name)] * nr
        owner, owner_id = body["owner"], body["owner_id"]
        rid = [IdSource.return_id(tid, i + 1) for i in range(nr)]
        try:
            values = [rt.store_value(s, rid[i], owner_id, replace=True)
                      for i, s in enumerate(sers)]
        except Exception as e:  # e.g. the store is full: the caller gets the error, we live on
            err = serialization.serialize(
                e if isinstance(e, exc_mod.ObjectStoreFullError) else exc_mod.RaySystemError(
                    f"could not store the result of task {name}: {type(e).__name__}: {e}"),
                is_error=True)
            values = [rt.store_value(err, rid[i], owner_id) for i in range(nr)]
        contained = {i: [(r._id, r._owner) for r in s.contained] for i, s in enumerate(sers)
                     if s.contained}
        if contained or rt._saw_foreign_refs:
            keep = [r for ser in sers for r in ser.contained]  # alive until registered
            fut = asyncio.run_coroutine_threadsafe(
                self._finish(conn, req_id, values, contained, owner, app_err, keep, exiting),
                rt.loop)
            if exiting:
                self._finishing = fut
        else:
            self._reply(conn, req_id, values, None, app_err,
                        direct=_running_loop() is not rt.loop, exiting=exiting)

    # -- streaming generators ---------------------------------------------------------------
    def stream(self, conn, req_id, body, gen, error=None, system=None, *,
               exiting: bool = False) -> None:
        """Run a generator, sending each value to the owner as it is yielded."""
        count = 0
        if error is None and system is None:
            try:
                if not hasattr(gen, "__next__"):
                    gen = iter(gen)
                for item in gen:
                    count += 1
                    self.stream_item(conn, body, count, item)
            except BaseException as e:  # noqa: BLE001 - the generator's error is an item
                error = e
        self.stream_end(conn, req_id, body, count, error, system, exiting=exiting)

    def stream_item(self, conn, body, index: int, item) -> None:
        try:
            ser = self._serialize_return(item, body["name"])
        except BaseException as e:  # noqa: BLE001 - an unserializable item is an error item
            ser = self._error_value(e, body["name"])
        rid = IdSource.return_id(body["tid"], index)
        v = self.rt.store_value(ser, rid, body["owner_id"], replace=True)
        out: list = []
        wire = v.to_wire(out)
        self._send_any_thread(conn, "gen_item", 0,
                              {"tid": body["tid"], "i": index, "v": wire}, out)

    def _send_any_thread(self, conn, kind, req_id, body, bufs) -> None:
        if _running_loop() is self.rt.loop:
            if not conn.closed:
                conn._write(kind, req_id, body, bufs)
        else:
            conn.write_from_thread(kind, req_id, body, bufs)

    def stream_end(self, conn, req_id, body, count: int, error=None, system=None, *,
                   exiting: bool = False) -> None:
        """End a stream. A system error (a cancel, ...) is one more item; the generator's
        own exception travels in the reply instead (``stream_err``), so that the owner can
        retry the task (``retry_exceptions``) or make it the next item."""
        extra = {"exiting": True} if exiting else {}
        if error is None and system is None:
            self._send_any_thread(conn, "r", req_id,
                                  {"r": [], "n": count, "app_err": False, **extra}, [])
            return
        ser = (serialization.serialize(system, is_error=True) if system is not None
               else self._error_value(error, body["name"]))
        rid = IdSource.return_id(body["tid"], count + 1)
        v = self.rt.store_value(ser, rid, body["owner_id"], replace=True)
        out: list = []
        wire = v.to_wire(out)
        if error is not None:
            self._send_any_thread(conn, "r", req_id, {"r": [wire], "n": count, "app_err": True,
                                                      "stream_err": True, **extra}, out)
            return
        self._send_any_thread(conn, "gen_item", 0,
                              {"tid": body["tid"], "i": count + 1, "v": wire}, out)
        self._send_any_thread(conn, "r", req_id,
                              {"r": [], "n": count + 1, "app_err": False, **extra}, [])

    async def _finish(self, conn, req_id, values, contained, owner, app_err, keep,
                      exiting=False) -> None:
        rt = self.rt
        # Refs handed back to the caller must be known to their owners before the caller's
        # own hold on the arguments ends; refs we keep must be registered likewise.
        for refs in contained.values():
            for oid, ref_owner in refs:
                if ref_owner == owner:
                    continue
                if ref_owner == rt.address:
                    rt.refs.add_borrower(oid, owner)
                else:
                    try:
                        peer = await rt.peer(ref_owner)
                        await peer.request("add_borrower", {"oid": oid, "borrower": owner})
                    except Exception:  # noqa: BLE001 - owner gone: object gone too
                        pass
        await rt.register_borrows()
        self._reply(conn, req_id, values, contained, app_err, exiting=exiting)
        del keep

    @staticmethod
    def _reply_arg_lost(conn, req_id) -> None:
        conn.write_from_thread("r", req_id, {"r": [], "arg_lost": True}, ())

    @staticmethod
    def _reply(conn, req_id, values, contained, app_err, direct=False, exiting=False) -> None:
        out: list = []
        body = {"r": [v.to_wire(out) for v in values], "app_err": app_err,
                "cont": contained or None}
        if exiting:
            body["exiting"] = True
        if direct:
            conn.write_from_thread("r", req_id, body, out)
        else:
            conn.reply(req_id, body, out)

    @staticmethod
    def _split_returns(result, nr: int, name: str) -> list:
        if nr == 1:
            return [result]
        if nr == 0:
            return []
        try:
            items = list(result)
        except TypeError:
            raise ValueError(f"Task {name} has num_returns={nr} but returned a "
                             f"{type(result).__name__}, which is not iterable.") from None
        if len(items) != nr:
            raise ValueError(f"Task {name} returned {len(items)} objects, but "
                             f"num_returns={nr}.")
        return items

    def _serialize_return(self, value, name: str):
        try:
            return serialization.serialize(value)
        except Exception as e:
            raise TypeError(serialization.describe_unserializable(
                value, f"the return value of task {name}", e)) from e

    def _error_value(self, e: BaseException, name: str):
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        ip = "127.0.0.1"
        err = exc_mod.RayTaskError(name, tb, e, pid=os.getpid(), ip=ip)
        try:
            return serialization.serialize(err, is_error=True)
        except Exception:
            plain = exc_mod.RayTaskError(name, tb, exc_mod.RayError(repr(e)), pid=os.getpid(),
                                         ip=ip)
            return serialization.serialize(plain, is_error=True)


async def _drain(conns) -> None:
    """Wait (boundedly) until what was written to ``conns`` has left for the socket."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    for conn in conns:
        while not conn.closed and conn.transport is not None and loop.time() < deadline and (
                conn._handoff or conn.transport.get_write_buffer_size()):
            await asyncio.sleep(0.002)


def _exit_now(code) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - exiting regardless
            pass
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def _running_loop():
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
