"""The public functions of shoal: init/shutdown, get/put/wait, cancel, cluster information.

Each looks up this process's one runtime; in a driver ``init()`` creates it (and, with no
cluster running, starts an embedded local one), in a worker it exists from the start.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from . import _connect, _hooks, exceptions
from ._private.launch import local_cluster
from ._private.runtime import options as opt_mod
from ._private.runtime.core import CoreRuntime
from ._private.runtime.current import current_runtime_or_none, runtime, set_auto_init, set_runtime
from ._private.runtime.generator import ObjectRefGenerator
from ._private.runtime.worker_env import merged_env_vars, process_env, validate_runtime_env
from ._private.wire.version import __version__
from .actor import ActorClass, ActorHandle
from .object_ref import ObjectRef
from .remote_function import RemoteFunction
from .runtime_context import RuntimeContext, webui_url

log = logging.getLogger("shoal")

_lock = threading.RLock()
_local_head: local_cluster.LocalHead | None = None


class ShoalContext(dict):
    """What ``init()`` returns: address information, usable as a context manager."""

    def __init__(self, info: dict):
        super().__init__(info)
        self.address_info = info
        self.dashboard_url = info.get("webui_url")  # None without a dashboard
        self.python_version = ".".join(str(v) for v in os.sys.version_info[:3])
        self.ray_version = __version__
        self.ray_commit = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutdown()

    def disconnect(self):
        shutdown()


def _runtime() -> CoreRuntime:
    """This process's runtime, calling ``init()`` first if there is none (as Ray does)."""
    return runtime()


def is_initialized() -> bool:
    return current_runtime_or_none() is not None


def init(address: str | None = None, *, num_cpus: int | None = None,
         num_gpus: int | None = None, resources: dict | None = None,
         labels: dict | None = None, object_store_memory: int | None = None,
         local_mode: bool = False, ignore_reinit_error: bool = False,
         include_dashboard: bool | None = None, dashboard_host: str = "127.0.0.1",
         dashboard_port: int | None = None, job_config=None, configure_logging: bool = True,
         logging_level: int = logging.INFO, logging_format: str | None = None,
         logging_config=None, log_to_driver: bool | None = None, namespace: str | None = None,
         runtime_env: dict | None = None, storage: str | None = None,
         enable_resource_isolation: bool = False, _temp_dir: str | None = None,
         _system_config: dict | None = None, **kwargs) -> ShoalContext:
    """Connect this process to a cluster, starting a local one if there is none.

    ``address=None`` joins the cluster named by ``SHOAL_ADDRESS`` (or ``RAY_ADDRESS``) if set,
    else the one ``shoal start --head`` started on this machine (the current cluster), and
    otherwise starts a new local cluster that lives as long as this process.
    ``address="auto"`` joins the current cluster, else the newest running one on this
    machine; ``"local"`` always starts a new one. Joining a cluster that runs another shoal
    or Python version raises RuntimeError ("Version mismatch: ...").
    """
    global _local_head
    unknown = {k for k in kwargs if not k.startswith("_")}
    if unknown:
        raise TypeError(f"init() got unexpected keyword argument(s): {sorted(unknown)}")
    with _lock:
        if current_runtime_or_none() is not None:
            if ignore_reinit_error:
                return _context()
            raise RuntimeError("Maybe you called shoal.init twice by accident? This error can "
                               "be suppressed by passing in 'ignore_reinit_error=True' or by "
                               "calling 'shoal.shutdown()' prior to 'shoal.init()'.")
        if job_config is None:
            job_config = _connect.submitted_job_config()  # a submitted job's entrypoint
        namespace, job_env = _connect.apply_job_config(job_config, namespace, runtime_env)
        if resources is not None:
            opt_mod.validate({"resources": resources}, actor=False)
        # The job's env_vars (init's runtime_env or the JobConfig's), inherited by its tasks.
        job_vars = merged_env_vars(None, validate_runtime_env(dict(job_env or {})))
        for name, v in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ValueError(f"{name} must be a non-negative number, got {v!r}")
        if configure_logging:
            _connect.configure_logging(logging_level, logging_format)
        if log_to_driver is not None:
            os.environ["SHOAL_LOG_TO_DRIVER"] = "1" if log_to_driver else "0"
        sess = _connect.find_session(address, _temp_dir)
        if sess is None:
            head = local_cluster.start_head(
                num_cpus=num_cpus, num_gpus=num_gpus, resources=resources,
                object_store_memory=object_store_memory, include_dashboard=include_dashboard,
                dashboard_host=dashboard_host, dashboard_port=dashboard_port)
            sess, node_address = head.session, head.node_address
            info = head.info
            _local_head = head
            if info.get("webui_url"):
                log.info("Started a local shoal instance. View the dashboard at %s",
                         info["webui_url"])
        else:
            if num_cpus is not None or num_gpus is not None or resources is not None:
                raise ValueError("When connecting to an existing cluster, num_cpus, num_gpus "
                                 "and resources must not be provided.")
            info = _connect.joined_session_info(sess)
            node_address = info["node_address"]
        try:
            rt = CoreRuntime(
                mode="driver", session_dir=sess.path, session_tag=sess.tag,
                node_address=node_address, node_id=b"", token=sess.read_token(),
                worker_id=os.urandom(28), namespace=namespace or _connect.anonymous_namespace(),
                node_ip=info.get("node_ip") if "tcp:" in node_address else None,
                head_address=info.get("head_address"),
            )
            rt.inherited_env = job_vars  # the job's env_vars, inherited by its tasks and actors
            rt.inherited_runtime_env = process_env(None, job_env)[0]
            if job_config is not None:
                rt.submission_id = str(job_config.metadata.get("job_submission_id") or "")
            rt.start()
            info = rt.call(rt.node_conn.request("node_info", {}))[0]
            rt.node_id = info["node_id"]
        except BaseException:
            if _local_head is not None:
                _local_head.stop()
                _local_head = None
            raise
        rt.job_config = job_config
        rt.job_runtime_env = job_env
        set_runtime(rt)
        ctx = _context()
        if _local_head is None:
            url = ctx["webui_url"]
            log.info("Connected to shoal cluster.%s",
                     f" View the dashboard at http://{url}" if url else "")
        return ctx


def _context() -> ShoalContext:
    rt = current_runtime_or_none()
    return ShoalContext({
        "node_ip_address": "127.0.0.1", "session_dir": rt.session_dir,
        "address": rt.node_address, "node_id": rt.node_id.hex(),
        "webui_url": webui_url(rt.session_dir),  # host:port, without a scheme, as Ray
    })


def timeline(filename: str | None = None) -> list[dict] | None:
    """Every task the cluster's owners remember, as Chrome trace events (load the file in
    chrome://tracing or https://ui.perfetto.dev). With ``filename`` the events are written
    there as JSON and nothing is returned; otherwise they are returned."""
    import json

    from .util import state

    events = state.timeline_events()
    if filename is None:
        return events
    with open(filename, "w") as f:
        json.dump(events, f)
    return None


def shutdown(_exiting_interpreter: bool = False) -> None:
    """Disconnect; if this driver started the cluster, stop it and every process it started."""
    global _local_head
    with _lock:
        rt = current_runtime_or_none()
        set_runtime(None)
        if rt is not None:
            # The embedded head stops with this driver: nobody would see its task records.
            rt.archive_tasks_on_exit = _local_head is None
            rt.shutdown()
        if _local_head is not None:
            _local_head.stop()
            _local_head = None


atexit.register(shutdown, True)


class _InvalidObjectRefs(ValueError, TypeError):
    """``get`` of something that is neither an ObjectRef nor a list of them: a ValueError as
    in Ray (and a TypeError, as it is one)."""


def _check_get_refs(refs) -> None:
    if all(type(r) is ObjectRef for r in refs):
        return
    for r in refs:
        if not isinstance(r, ObjectRef):
            raise TypeError(f"Attempting to call `get` on the value {r!r}, which is not an "
                            "ray.ObjectRef.")


def get(object_refs, *, timeout: float | None = None, progress: bool | str = False) -> Any:
    """Wait for and return the value(s) of one ObjectRef or a list of them.

    Raises the task's exception (as an instance of the original class and of RayTaskError),
    or ``GetTimeoutError`` if ``timeout`` seconds pass first. ``progress`` (a shoal
    extension, off by default) shows a bar of the objects ready so far while a list is
    waited for: tqdm's if it is installed; a string is the bar's label. An
    ObjectRefGenerator is returned as it is, as Ray does.
    """
    if isinstance(object_refs, ObjectRefGenerator):
        return object_refs
    rt = _runtime()
    if timeout is not None and timeout < 0:
        raise ValueError(f"'timeout' must be a non-negative number or None, got {timeout}")
    if isinstance(object_refs, ObjectRef):
        return rt.get([object_refs], timeout)[0]
    if isinstance(object_refs, (list, tuple)):
        refs = list(object_refs)
        _check_get_refs(refs)
        if progress and refs:
            from ._private.runtime.progress import wait_all

            start = time.monotonic()
            wait_all(refs, timeout, progress if isinstance(progress, str) else "shoal.get",
                     wait)
            if timeout is not None:
                timeout = max(0.0, timeout - (time.monotonic() - start))
        return rt.get(refs, timeout)
    raise _InvalidObjectRefs(
        f"Invalid type of object refs, {type(object_refs)}, is given. 'object_refs' must "
        "either be an ObjectRef or a list of ObjectRefs. ")


def put(value: Any, *, _owner=None) -> ObjectRef:
    """Store ``value`` in the object store and return a reference to it."""
    return _runtime().put(value)


def wait(ray_waitables: Sequence, *, num_returns: int = 1, timeout: float | None = None,
         fetch_local: bool = True) -> tuple[list, list]:
    """Return ``(ready, not_ready)`` once ``num_returns`` of the ObjectRefs (or
    ObjectRefGenerators: ready when their next item is, or they have ended) are ready, or
    ``timeout`` passes."""
    rt = _runtime()
    if type(num_returns) is int and (timeout is None or timeout >= 0):
        split = rt.values.all_ready_split(ray_waitables, num_returns)
        if split is not None:  # all owned and ready: none of the checks below can fail
            return split
    if isinstance(ray_waitables, (ObjectRef, ObjectRefGenerator)):
        raise TypeError("wait() expected a list of ray.ObjectRef or ray.ObjectRefGenerator, "
                        "got a single ray.ObjectRef or ray.ObjectRefGenerator "
                        f"{ray_waitables}")
    if not isinstance(ray_waitables, (list, tuple)):
        raise TypeError("wait() expected a list of ray.ObjectRef or ray.ObjectRefGenerator, "
                        f"got {type(ray_waitables)}")
    if timeout is not None and timeout < 0:
        raise ValueError(f"The 'timeout' argument must be nonnegative. Received {timeout}")
    items = list(ray_waitables)
    gens = False
    for r in items:
        if type(r) is ObjectRef:
            continue
        if isinstance(r, ObjectRefGenerator):
            gens = True
        elif not isinstance(r, ObjectRef):
            raise TypeError("wait() expected a list of ray.ObjectRef or "
                            f"ray.ObjectRefGenerator, got list containing {type(r)}")
    if not items:
        return [], []
    if len(set(items)) != len(items):
        raise ValueError("Wait requires a list of unique ray_waitables.")
    if isinstance(num_returns, bool) or not isinstance(num_returns, int) or num_returns <= 0:
        raise ValueError(f"Invalid number of objects to return {num_returns}.")
    if num_returns > len(items):
        raise ValueError("num_returns cannot be greater than the number of ray_waitables "
                         "provided to ray.wait.")
    if gens:
        from ._private.runtime.wait_mixed import wait_mixed

        return wait_mixed(rt, items, num_returns, timeout)
    return rt.wait(items, num_returns, timeout)


def cancel(object_ref, *, force: bool = False, recursive: bool = True) -> None:
    """Cancel the task that makes ``object_ref`` (an ObjectRef or ObjectRefGenerator).

    A task not started yet never runs; a running task gets a KeyboardInterrupt
    (``force=True``: its worker exits). An actor call not started yet never runs; a running
    one is cancelled as an asyncio task in an async actor, or has its flag set
    (``get_runtime_context().is_canceled()``) in a sync one; ``force=True`` is refused for
    actor calls (ValueError). ``get`` then raises TaskCancelledError. With ``recursive``, the
    tasks the cancelled task submitted are cancelled too. A ref owned elsewhere is cancelled
    by its owner. A finished task is left alone."""
    rt = _runtime()
    if isinstance(object_ref, ObjectRefGenerator):
        rt.cancel(object_ref._task_id, rt.address, force, recursive)
        return
    if not isinstance(object_ref, ObjectRef):
        raise TypeError("ray.cancel() only supported for object refs. For actors, try "
                        f"ray.kill(). Got: {type(object_ref)}.")
    rt.cancel(object_ref._id[:24], object_ref._owner, force, recursive)


def get_gpu_ids() -> list:
    rt = _runtime()
    ids = getattr(rt.current_task, "gpu_ids", None)
    if ids is None:
        env = os.environ.get("CUDA_VISIBLE_DEVICES")
        return [int(x) for x in env.split(",") if x.strip().isdigit()] if env else []
    return list(ids)


def _nodes_raw() -> list[dict]:
    rt = _runtime()
    return rt.call(rt.head_conn.request("get_nodes", {}))[0]["nodes"]


def nodes() -> list[dict]:
    """Every node the cluster has known, Ray-style dicts (``Alive``, ``NodeID``, ...)."""
    out = []
    for n in _nodes_raw():
        out.append({
            "NodeID": n["node_id"].hex(), "Alive": n["alive"], "alive": n["alive"],
            "NodeManagerAddress": n["ip"], "NodeManagerHostname": os.uname().nodename,
            "NodeName": n["ip"], "NodeManagerPort": 0, "ObjectManagerPort": 0,
            "ObjectStoreSocketName": n["address"], "RayletSocketName": n["address"],
            "MetricsExportPort": 0, "Resources": dict(n["total"]) if n["alive"] else {},
            "Labels": {}, "IsHeadNode": n.get("is_head", False),
        })
    return out


def _sum(key: str) -> dict:
    total: dict = {}
    for n in _nodes_raw():
        if not n["alive"]:
            continue
        for k, v in n[key].items():
            total[k] = total.get(k, 0) + v
    return {k: (int(v) if float(v).is_integer() else v) if not isinstance(v, int) else v
            for k, v in total.items() if v}


def cluster_resources() -> dict:
    """Total resources of the live nodes."""
    return {k: float(v) for k, v in _sum("total").items()}


def available_resources() -> dict:
    """Resources not in use right now on the live nodes."""
    return {k: float(v) for k, v in _sum("available").items()}


def get_runtime_context() -> RuntimeContext:
    return RuntimeContext(_runtime())


def remote(*args, **kwargs):
    """Make a function a remote function, or a class an actor class.

    ``@remote`` or ``@remote(num_cpus=..., ...)``.
    """
    def make(target, options):
        if inspect.isclass(target):
            return ActorClass._from_class(target, options)
        if not callable(target):
            raise TypeError("The @remote decorator must be applied to either a function or a "
                            "class.")
        return RemoteFunction(target, options)

    if len(args) == 1 and not kwargs and callable(args[0]):
        return make(args[0], {})
    if args or not kwargs:  # Ray asserts this: @remote() and @remote(x) are refused
        raise AssertionError(opt_mod.REMOTE_ARGS_ERROR)
    return lambda target: make(target, kwargs)


_METHOD_OPTIONS = ["num_returns", "concurrency_group", "max_task_retries", "retry_exceptions",
                   "_generator_backpressure_num_objects", "_num_objects_per_yield",
                   "enable_task_events", "tensor_transport"]


def method(*args, **kwargs):
    """Options for an actor method: ``@shoal.method(num_returns=2)`` (or bare ``@method``)."""

    def deco(m):
        if "num_returns" in kwargs:
            opt_mod.check_num_returns(
                inspect.isgeneratorfunction(m) or inspect.isasyncgenfunction(m),
                kwargs["num_returns"])
        m.__shoal_method_options__ = dict(kwargs)
        return m

    if len(args) == 1 and callable(args[0]) and not kwargs:
        return deco(args[0])
    if args:
        raise AssertionError(
            "The @ray.method decorator must be applied using no arguments or at least one of "
            f"the arguments in the list {_METHOD_OPTIONS}, for example "
            "'@ray.method(num_returns=2)'.")
    for k in kwargs:
        if k not in _METHOD_OPTIONS:
            raise AssertionError(f"Unexpected keyword argument to @ray.method: '{k}'. The "
                                 f"supported keyword arguments are {_METHOD_OPTIONS}")
    return deco


def get_actor(name: str, namespace: str | None = None):
    """A handle to the live actor called ``name`` in ``namespace`` (default: this job's)."""
    if not isinstance(name, str) or not name:
        raise ValueError("Please supply a non-empty value to get_actor")
    if namespace is not None and not isinstance(namespace, str):
        raise TypeError(f"namespace must be None or a string, got {type(namespace).__name__}")
    rt = _runtime()
    ns = namespace if namespace is not None else rt.namespace
    from ._private.wire.transport import RemoteError

    try:
        info = rt.call(rt.head_conn.request("get_named_actor", {"name": name, "namespace": ns}))[0]
    except RemoteError as e:
        raise ValueError(e.body.get("error", str(e))) from None
    meta = info["meta"]
    return ActorHandle(info["actor_id"], meta["class_name"], meta["methods"], meta["opts"], None)


def kill(actor, *, no_restart: bool = True) -> None:
    """End an actor now: running calls fail; with ``no_restart=False`` it may restart."""
    if not isinstance(actor, ActorHandle):
        raise ValueError("ray.kill() only supported for actors. For tasks, try ray.cancel(). "
                         f"Got: {type(actor)}.")
    rt = _runtime()
    rt.call(rt.head_conn.request("kill_actor", {"aid": actor._actor_id_b,
                                                "no_restart": no_restart}))


# What the modules below lend from here (see shoal._hooks and _private/runtime/current.py):
# ``init`` to start a runtime on first use, ``remote`` and the handle types to shoal.dag.
set_auto_init(init)
_hooks.lend(remote=remote, actor_handle=ActorHandle,
            kept_by_identity=(ObjectRef, ActorHandle, ObjectRefGenerator))

__all__ = [
    "get_actor", "kill",
    "init", "shutdown", "is_initialized", "get", "put", "wait", "cancel", "get_gpu_ids",
    "nodes", "cluster_resources", "available_resources", "get_runtime_context", "remote",
    "method", "ShoalContext", "exceptions",
]
