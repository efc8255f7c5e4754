"""Running an actor in a dedicated worker process.

The head sends ``create_actor``; ``__init__`` runs on the main thread. Calls then run in one
of three ways, chosen from the class as Ray does:

* plain: one at a time on the main thread, in the order they arrived (per caller, the order
  they were sent);
* threaded (``max_concurrency > 1`` or concurrency groups): a thread pool per group;
* async (any ``async def`` method): an event loop per concurrency group, each in a thread of
  its own ("AsyncIO Thread: <group>"), at most ``max_concurrency`` (default 1000) calls at
  once per group; a method that blocks its loop holds up only its own group.

Methods are looked up on the class (an instance attribute of the same name does not hide
one), plus Ray's built-ins ``__ray_ready__``, ``__ray_call__`` and ``__ray_terminate__``.

Cancelling a call (``cancel_task`` for one of ours): an async call's asyncio task is
cancelled (``CancelledError`` inside the coroutine); a sync call only has its flag set, which
``get_runtime_context().is_canceled()`` reads; either way the caller gets
``TaskCancelledError``, and a call cancelled before it started never runs.

Leaving on purpose (``exit_actor``, ``__ray_terminate__``, out of scope) tells the head first,
so that it does not restart the actor, then runs atexit handlers and ends the process.
``sys.exit()`` in a method or ``__init__`` ends the process as a crash would (the head is
told why, and restarts the actor if it may).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import inspect
import logging
import os
import sys
import threading
import traceback

from ..runtime import current
from ..runtime import errors as exc_mod
from ..wire import serialization, worker_output
from ..wire.death_causes import USER_EXIT

log = logging.getLogger(__name__)

_BUILTINS = ("__ray_terminate__", "__ray_ready__", "__ray_call__")


class ActorExit(BaseException):
    """Raised by ``exit_actor()`` inside an actor method to leave the actor."""


class ActorExecutor:
    def __init__(self, rt, task_executor):
        self.rt = rt
        self.tx = task_executor
        self.instance = None
        self.mode = "plain"
        self.pools: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
        self.loops: dict[str, asyncio.AbstractEventLoop] = {}  # async mode: one per group
        self.sems: dict[str, asyncio.Semaphore] = {}
        self.method_groups: dict[str, str] = {}
        self.bound: dict[str, object] = {}  # method name -> method bound to the instance
        self.calls: dict[bytes, object] = {}  # unanswered call -> its asyncio task, or None
        self.cancelled: set[bytes] = set()  # unanswered calls asked to stop
        self.exiting = False
        rt.extra_handlers["create_actor"] = self._on_create
        rt.extra_handlers["actor_call"] = self._on_call
        rt.extra_handlers["exit_actor"] = self._on_exit
        rt.extra_handlers["cancel_task"] = self._on_cancel
        rt.actor_executor = self

    # -- creation (I/O thread -> main thread) ---------------------------------------------
    def _on_create(self, conn, body, bufs, req_id):
        self.tx.queue.put((self._create, (conn, body, bufs, req_id)))

    def _create(self, conn, body, bufs, req_id) -> None:
        rt = self.rt
        rt.actor_id = body["aid"]
        rt.actor_name = body.get("name") or ""  # Ray: "" for an actor without a name
        rt.actor_restarted = body.get("incarnation", 0) > 0
        rt.job_id = body.get("job")
        rt.namespace = body.get("namespace", rt.namespace)
        rt.actor_group = body.get("pg")
        gpu_ids = body.get("gpu") or []
        rt.current_task.gpu_ids = rt.actor_gpu_ids = gpu_ids
        rt.current_task.resources = rt.actor_resources = body.get("res") or {}
        # __init__ runs as the actor's creation task (not as whatever task this worker ran
        # before it became the actor's): its id is made from the actor's, as in Ray.
        rt.current_task.task_id = b"\xff" * 8 + body["aid"]
        rt.current_task.name = "__init__"
        rt.current_task.function = None
        if gpu_ids:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpu_ids)
        cls = None
        try:
            self.tx.prepare(body, actor=True)
            cls = serialization.deserialize(bufs[body["cls"]], [])
            worker_output.set_name(cls.__name__)  # until __init__ has run
            rt.actor_class = cls
            args, kwargs = self.tx.arguments(body, bufs)
            rt.actor_handle = current.actor_handle_for_self(body["aid"], body["meta"],
                                                            body["opts"])
            self._setup_concurrency(cls, body["opts"])
            self.instance = cls.__new__(cls)
            init = self.instance.__init__
            if inspect.iscoroutinefunction(init):
                raise TypeError("an actor's __init__ cannot be async")
            init(*args, **kwargs)
            worker_output.set_name(worker_output.actor_name(self.instance))
        except ActorExit:
            self._leave(USER_EXIT)  # exit_actor() in __init__: no reply
        except SystemExit as e:
            self._exit_unexpectedly(e.code)
        except BaseException as e:  # noqa: BLE001 - reported to the head as a creation error
            name = f"{getattr(cls, '__name__', 'Actor')}.__init__"
            tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            err = str(exc_mod.RayTaskError(name, tb, e, pid=os.getpid(), ip="127.0.0.1"))
            rt.loop.call_soon_threadsafe(conn.reply, req_id, {"ok": False, "error": err})
            return
        else:
            rt.loop.call_soon_threadsafe(conn.reply, req_id, {"ok": True, "pid": os.getpid()})

    def _setup_concurrency(self, cls, opts: dict) -> None:
        groups = dict(opts.get("concurrency_groups") or {})
        methods = inspect.getmembers(cls, predicate=inspect.isfunction)
        is_async = any(inspect.iscoroutinefunction(m) or inspect.isasyncgenfunction(m)
                       for _, m in methods)
        for name, m in methods:
            group = getattr(m, "__shoal_method_options__", {}).get("concurrency_group")
            if group:
                self.method_groups[name] = group
        if is_async:
            self.mode = "async"
            groups["_default"] = opts.get("max_concurrency") or 1000
            for group, limit in groups.items():
                self._start_loop(group, limit)
        elif (opts.get("max_concurrency") or 1) > 1 or groups:
            self.mode = "threaded"
            default = opts.get("max_concurrency") or 1
            self.pools = {g: concurrent.futures.ThreadPoolExecutor(n, thread_name_prefix=g)
                          for g, n in groups.items()}
            self.pools["_default"] = concurrent.futures.ThreadPoolExecutor(
                default, thread_name_prefix="actor")

    def _start_loop(self, group: str, limit: int) -> None:
        """An event loop for one concurrency group, in a thread of its own."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(loop)
            self.sems[group] = asyncio.Semaphore(limit)
            ready.set()
            loop.run_forever()

        name = "default" if group == "_default" else group
        threading.Thread(target=run, name=f"AsyncIO Thread: {name}", daemon=True).start()
        ready.wait()
        self.loops[group] = loop

    # -- calls ----------------------------------------------------------------------------
    def _on_call(self, conn, body, bufs, req_id):
        self.calls[body["tid"]] = None
        if self.mode == "plain" or body["name"] == "__ray_terminate__":
            self.tx.queue.put((self._run_sync, (conn, body, bufs, req_id)))
        elif self.mode == "threaded":
            pool = self.pools.get(self._group(body)) or self.pools["_default"]
            pool.submit(self._run_sync, conn, body, bufs, req_id)
        else:
            group = self._group(body)
            loop = self.loops.get(group) or self.loops["_default"]
            asyncio.run_coroutine_threadsafe(
                self._run_async(conn, body, bufs, req_id, group), loop)

    def _group(self, body) -> str:
        return body.get("cg") or self.method_groups.get(body["name"], "_default")

    def _method(self, name: str):
        fn = self.bound.get(name)
        if fn is not None:
            return fn
        if name in _BUILTINS:
            fn = {"__ray_terminate__": self._terminate, "__ray_ready__": self._ready,
                  "__ray_call__": self._ray_call}[name]
        elif self.instance is None:
            raise exc_mod.RaySystemError("actor call before the actor was created")
        else:
            fn = _class_method(self.instance, name)
        self.bound[name] = fn
        return fn

    def _begin(self, conn, body, req_id) -> bool:
        """Set up a call; False (the caller already answered) if the actor is leaving or
        the call was cancelled before it started."""
        if self.exiting:
            self.tx.deliver(conn, req_id, body, system=exc_mod.ActorDiedError(
                "The actor is exiting; this call was not run."))
            return False
        if body["tid"] in self.cancelled:
            self.tx.deliver(conn, req_id, body,
                            system=exc_mod.TaskCancelledError(body["tid"].hex()))
            return False
        self.tx.set_context(body)
        return True

    def _invoke(self, body, bufs):
        args, kwargs = self.tx.arguments(body, bufs)
        return self._method(body["name"])(*args, **kwargs)

    def _done(self, tid: bytes) -> None:
        self.calls.pop(tid, None)
        self.cancelled.discard(tid)

    def _run_sync(self, conn, body, bufs, req_id) -> None:
        tid = body["tid"]
        try:
            if not self._begin(conn, body, req_id):
                return
            try:
                result = self._invoke(body, bufs)
                if inspect.iscoroutine(result):  # an async method called on a sync path
                    result = asyncio.run(result)
            except ActorExit:
                self._leave(USER_EXIT)
                return
            except SystemExit as e:
                self._exit_unexpectedly(e.code)
                return
            except BaseException as e:  # noqa: BLE001 - goes back to the caller
                if tid in self.cancelled:
                    self.tx.deliver(conn, req_id, body,
                                    system=exc_mod.TaskCancelledError(tid.hex()))
                else:
                    self.tx.deliver(conn, req_id, body, error=e)
                return
            if tid in self.cancelled:  # it ran to the end, but the caller gave up on it
                self.tx.deliver(conn, req_id, body,
                                system=exc_mod.TaskCancelledError(tid.hex()))
            else:
                self.tx.deliver(conn, req_id, body, result=result)
        finally:
            self._done(tid)

    async def _run_async(self, conn, body, bufs, req_id, group: str) -> None:
        tid = body["tid"]
        self.calls[tid] = asyncio.current_task()
        try:
            async with self.sems[group]:
                if not self._begin(conn, body, req_id):
                    return
                result = self._invoke(body, bufs)
                if inspect.isasyncgen(result):
                    await self._stream_async(conn, req_id, body, result)
                    return
                if inspect.isawaitable(result):
                    result = await result
            if tid in self.cancelled:  # the coroutine swallowed its CancelledError
                raise asyncio.CancelledError()
        except asyncio.CancelledError as e:
            err = exc_mod.TaskCancelledError(tid.hex()) if tid in self.cancelled else e
            err.__context__ = None if err is e else e
            self.tx.deliver(conn, req_id, body, error=err)
        except (ActorExit, exc_mod.AsyncioActorExit):
            self._leave(USER_EXIT)
        except SystemExit as e:
            self._exit_unexpectedly(e.code)
        except BaseException as e:  # noqa: BLE001 - goes back to the caller
            self.tx.deliver(conn, req_id, body, error=e)
        else:
            self.tx.deliver(conn, req_id, body, result=result)
        finally:
            self._done(tid)

    async def _stream_async(self, conn, req_id, body, agen) -> None:
        count, error = 0, None
        try:
            async for item in agen:
                count += 1
                self.tx.stream_item(conn, body, count, item)
        except (ActorExit, exc_mod.AsyncioActorExit, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - the generator's error is an item
            error = e
            if isinstance(e, asyncio.CancelledError) and body["tid"] in self.cancelled:
                error = exc_mod.TaskCancelledError(body["tid"].hex())
                error.__context__ = e
        self.tx.stream_end(conn, req_id, body, count, error)

    # -- built-in methods -----------------------------------------------------------------
    def _terminate(self):
        raise ActorExit()

    @staticmethod
    def _ready() -> bool:
        return True

    def _ray_call(self, fn, *args, **kwargs):
        """``__ray_call__``: run ``fn(instance, *args, **kwargs)`` inside the actor."""
        return fn(self.instance, *args, **kwargs)

    # -- cancellation (I/O thread) --------------------------------------------------------
    def _on_cancel(self, conn, body, bufs, req_id):
        if self.rt.actor_id is None:  # a task worker: the task executor's business
            self.tx._on_cancel(conn, body, bufs, req_id)
            return
        tid = body["tid"]
        if tid not in self.calls:
            return  # answered already: nothing to do
        self.cancelled.add(tid)
        task = self.calls.get(tid)
        if task is not None:
            task.get_loop().call_soon_threadsafe(task.cancel)

    def is_canceled(self) -> bool:
        if self.mode == "async":
            raise RuntimeError("This method is not supported in an async actor.")
        return getattr(self.rt.current_task, "task_id", None) in self.cancelled

    # -- leaving --------------------------------------------------------------------------
    def _on_exit(self, conn, body, bufs, req_id):
        """The head ends us gracefully (out of scope): after the calls already queued."""
        self.tx.queue.put((self._leave, (body.get("cause") or "terminated",)))

    def _tell_head(self, exit_type: str, detail: str, intended: bool) -> None:
        rt = self.rt
        try:
            rt.call(rt.head_conn.request("actor_exiting", {
                "aid": rt.actor_id, "exit_type": exit_type, "detail": detail,
                "intended": intended}), timeout=5)
        except Exception:  # noqa: BLE001 - the head is gone; exit anyway
            pass

    def _leave(self, detail: str) -> None:
        self.exiting = True
        self._tell_head("INTENDED_USER_EXIT", detail, True)
        try:
            shutdown_hook = getattr(self.instance, "__ray_shutdown__", None)
            if callable(shutdown_hook):
                shutdown_hook()  # Ray's cleanup hook on graceful termination
        except BaseException:  # noqa: BLE001 - cleanup must not keep us alive
            log.exception("__ray_shutdown__ failed")
        _exit(0)

    def _exit_unexpectedly(self, code) -> None:
        """``sys.exit()`` in the actor's code: the process ends as if it had crashed."""
        self.exiting = True
        self._tell_head("SYSTEM_ERROR", f"Worker exits unexpectedly. Worker exits with an "
                                        f"exit code {code}.", False)
        _exit(code if isinstance(code, int) else 0 if code is None else 1)


def _exit(code: int) -> None:
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - nothing more to say
                pass
        os._exit(code)


def _class_method(instance, name: str):
    """``instance.name`` resolved on the class first, as Ray calls actor methods: an
    instance attribute of the same name does not hide a method."""
    cls = type(instance)
    for klass in cls.__mro__:
        raw = klass.__dict__.get(name)
        if raw is not None:
            get = getattr(type(raw), "__get__", None)
            return get(raw, instance, cls) if get is not None else raw
    return getattr(instance, name)
