"""Running an actor in a dedicated worker process.

The head sends ``create_actor``; ``__init__`` runs on the main thread. Calls then run in one
of three ways, chosen from the class as Ray does:

* plain: one at a time on the main thread, in the order they arrived (per caller, the order
  they were sent);
* threaded (``max_concurrency > 1`` or concurrency groups): a thread pool per group;
* async (any ``async def`` method): coroutines on one event loop thread, at most
  ``max_concurrency`` (default 1000) at once per group.

Leaving on purpose (``exit_actor``, ``__ray_terminate__``, out of scope) tells the head first,
so that it does not restart the actor, then runs atexit handlers and ends the process.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import inspect
import logging
import os
import threading
import traceback

from .. import exceptions as exc_mod
from . import serialization

log = logging.getLogger(__name__)


def _ready() -> bool:
    return True


class ActorExit(BaseException):
    """Raised by ``exit_actor()`` inside an actor method to leave the actor."""


class ActorExecutor:
    def __init__(self, rt, task_executor):
        self.rt = rt
        self.tx = task_executor
        self.instance = None
        self.mode = "plain"
        self.pools: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
        self.sems: dict[str, asyncio.Semaphore] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.method_groups: dict[str, str] = {}
        self.exiting = False
        rt.extra_handlers["create_actor"] = self._on_create
        rt.extra_handlers["actor_call"] = self._on_call
        rt.extra_handlers["exit_actor"] = self._on_exit

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
        try:
            cls = serialization.deserialize(bufs[body["cls"]], [])
            rt.actor_class = cls
            args, kwargs = self.tx.arguments(body, bufs)
            from ..actor import ActorHandle

            rt.actor_handle = ActorHandle._for_self(body["aid"], body["meta"], body["opts"])
            self._setup_concurrency(cls, body["opts"])
            self.instance = cls.__new__(cls)
            init = self.instance.__init__
            if inspect.iscoroutinefunction(init):
                raise TypeError("an actor's __init__ cannot be async")
            init(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - reported to the head as a creation error
            tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            rt.loop.call_soon_threadsafe(conn.reply, req_id, {"ok": False, "error": tb})
            return
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
            default = opts.get("max_concurrency") or 1000
            self.loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run():
                asyncio.set_event_loop(self.loop)
                self.sems = {g: asyncio.Semaphore(n) for g, n in groups.items()}
                self.sems["_default"] = asyncio.Semaphore(default)
                ready.set()
                self.loop.run_forever()

            threading.Thread(target=run, name="actor-asyncio", daemon=True).start()
            ready.wait()
        elif (opts.get("max_concurrency") or 1) > 1 or groups:
            self.mode = "threaded"
            default = opts.get("max_concurrency") or 1
            self.pools = {g: concurrent.futures.ThreadPoolExecutor(n, thread_name_prefix=g)
                          for g, n in groups.items()}
            self.pools["_default"] = concurrent.futures.ThreadPoolExecutor(
                default, thread_name_prefix="actor")

    # -- calls ----------------------------------------------------------------------------
    def _on_call(self, conn, body, bufs, req_id):
        if self.mode == "plain" or body["name"] == "__ray_terminate__":
            self.tx.queue.put((self._run_sync, (conn, body, bufs, req_id)))
        elif self.mode == "threaded":
            pool = self.pools.get(self._group(body)) or self.pools["_default"]
            pool.submit(self._run_sync, conn, body, bufs, req_id)
        else:
            asyncio.run_coroutine_threadsafe(self._run_async(conn, body, bufs, req_id),
                                             self.loop)

    def _group(self, body) -> str:
        return body.get("cg") or self.method_groups.get(body["name"], "_default")

    def _method(self, body):
        name = body["name"]
        if name == "__ray_terminate__":
            return self._terminate
        if self.instance is None:
            raise exc_mod.RaySystemError("actor call before the actor was created")
        if name == "__ray_ready__":
            return _ready
        if name == "__ray_call__":
            instance = self.instance
            return lambda fn, *args, **kwargs: fn(instance, *args, **kwargs)
        return getattr(self.instance, name)

    def _begin(self, conn, body, req_id) -> bool:
        """Set up a call; False (the caller already answered) if the actor is leaving."""
        if self.exiting:
            self.tx.deliver(conn, req_id, body, system=exc_mod.ActorDiedError(
                "The actor is exiting; this call was not run."))
            return False
        self.tx.set_context(body)
        return True

    def _invoke(self, body, bufs):
        args, kwargs = self.tx.arguments(body, bufs)
        return self._method(body)(*args, **kwargs)

    def _run_sync(self, conn, body, bufs, req_id) -> None:
        if not self._begin(conn, body, req_id):
            return
        try:
            result = self._invoke(body, bufs)
            if inspect.iscoroutine(result):  # an async method called on a sync path
                result = asyncio.run(result)
        except ActorExit:
            self._leave("exit_actor() was called in the actor.")
            return
        except BaseException as e:  # noqa: BLE001 - goes back to the caller
            self.tx.deliver(conn, req_id, body, error=e)
            return
        self.tx.deliver(conn, req_id, body, result=result)

    async def _run_async(self, conn, body, bufs, req_id) -> None:
        sem = self.sems.get(self._group(body)) or self.sems["_default"]
        async with sem:
            if not self._begin(conn, body, req_id):
                return
            try:
                result = self._invoke(body, bufs)
                if inspect.isasyncgen(result):
                    await self._stream_async(conn, req_id, body, result)
                    return
                if inspect.isawaitable(result):
                    result = await result
            except (ActorExit, exc_mod.AsyncioActorExit):
                self._leave("exit_actor() was called in the actor.")
                return
            except BaseException as e:  # noqa: BLE001 - goes back to the caller
                self.tx.deliver(conn, req_id, body, error=e)
                return
            self.tx.deliver(conn, req_id, body, result=result)

    async def _stream_async(self, conn, req_id, body, agen) -> None:
        count, error = 0, None
        try:
            async for item in agen:
                count += 1
                self.tx.stream_item(conn, body, count, item)
        except (ActorExit, exc_mod.AsyncioActorExit):
            raise
        except BaseException as e:  # noqa: BLE001 - the generator's error is an item
            error = e
        self.tx.stream_end(conn, req_id, body, count, error)

    def _terminate(self):
        raise ActorExit()

    # -- leaving --------------------------------------------------------------------------
    def _on_exit(self, conn, body, bufs, req_id):
        """The head ends us gracefully (out of scope): after the calls already queued."""
        self.tx.queue.put((self._leave, (body.get("cause") or "terminated",)))

    def _leave(self, cause: str) -> None:
        self.exiting = True
        rt = self.rt
        try:
            rt.call(rt.head_conn.request("actor_exiting", {"aid": rt.actor_id, "cause": cause}),
                    timeout=5)
        except Exception:  # noqa: BLE001 - the head is gone; exit anyway
            pass
        try:
            shutdown_hook = getattr(self.instance, "__ray_shutdown__", None)
            if callable(shutdown_hook):
                shutdown_hook()  # Ray's cleanup hook on graceful termination
        except BaseException:  # noqa: BLE001 - cleanup must not keep us alive
            log.exception("__ray_shutdown__ failed")
        try:
            atexit._run_exitfuncs()
        finally:
            os._exit(0)
