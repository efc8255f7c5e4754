"""shoal: distributed computing for Python with Ray's programming model.

``import shoal as ray`` and a Ray Core program runs unchanged: remote functions, actors, a
shared-memory object store, on one machine or many.

Every name of Ray's top level exists here. Ray's libraries (``ray.data``, ``ray.serve``,
...) are not part of shoal: their names resolve only if such a module is installed as
``shoal.<name>``, and otherwise raise an AttributeError that says so.
"""

# ruff: noqa: F401 - every name imported here is re-exported (Ray's top level)
import os as _os

from ._private.wire.version import __commit__, __version__


def _load_api() -> None:
    """The public names (Ray's top level): imported with the package, except in a node
    daemon (``SHOAL_LEAN_INIT=1``), which needs none of them and starts ~0.1 s sooner
    without; there they load on first use."""
    global _api_loaded
    _api_loaded = True
    from . import exceptions
    from ._private.runtime.generator import DynamicObjectRefGenerator, ObjectRefGenerator
    from ._private.wire.ids import (
        ActorClassID,
        ActorID,
        ClusterID,
        FunctionID,
        JobID,
        NodeID,
        PlacementGroupID,
        TaskID,
        UniqueID,
        WorkerID,
    )
    from .actor import ActorClass, ActorHandle
    from .api import (
        available_resources,
        cancel,
        cluster_resources,
        get,
        get_actor,
        get_gpu_ids,
        get_runtime_context,
        init,
        is_initialized,
        kill,
        method,
        nodes,
        put,
        remote,
        shutdown,
        timeline,
        wait,
    )
    from .object_ref import ObjectRef

    ObjectID = ObjectRef  # Ray's legacy name  # noqa: F841 - exported by globals()
    globals().update({k: v for k, v in locals().items() if not k.startswith("_")})


_api_loaded = False
if _os.environ.get("SHOAL_LEAN_INIT") != "1":
    _load_api()

# Ray's worker modes (here, not in .surface, so that importing shoal does not load it).
SCRIPT_MODE = 0  # a driver, as Ray numbers the modes
WORKER_MODE = 1  # a worker process
SPILL_WORKER_MODE = 2
RESTORE_WORKER_MODE = 3

# The public functions that start a local cluster when none is connected, as in Ray.
AUTO_INIT_APIS = {"cancel", "get", "get_actor", "get_gpu_ids", "get_runtime_context", "kill",
                  "put", "wait"}
NON_AUTO_INIT_APIS = {"ClientBuilder", "Language", "SCRIPT_MODE", "WORKER_MODE", "__version__",
                      "_config", "available_resources", "client", "cluster_resources", "init",
                      "is_initialized", "java_actor_class", "java_function", "method", "nodes",
                      "remote", "shutdown", "timeline", "LoggingConfig"}
_SURFACE = ("Language", "LoggingConfig", "java_actor_class", "java_function")

# Ray's libraries and lazily imported modules: resolved on first use, if present.
_LAZY = ("data", "workflow", "autoscaler", "internal", "widgets", "serve", "train", "tune",
         "rllib", "air", "dag", "experimental", "llm", "client_builder", "job_config",
         "runtime_env", "cloudpickle", "cluster_utils")


def __getattr__(name: str):
    import importlib

    if not _api_loaded:
        _load_api()
        if name in globals():
            return globals()[name]

    if name == "client":
        from .client_builder import client

        return client
    if name == "ClientBuilder":
        from .client_builder import ClientBuilder

        return ClientBuilder
    if name in _SURFACE:
        from . import surface

        return getattr(surface, name)
    if name == "_config":
        from ._private.wire.config import config

        return config
    if name in _LAZY:
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(
                f"module 'shoal' has no attribute {name!r}: Ray's {name!r} library is not "
                "part of shoal") from None
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SURFACE) | {
        "client", "ClientBuilder", "_config", "cloudpickle", "job_config", "client_builder",
        "cluster_utils", "runtime_env"})


__all__ = [
    "ActorClass", "ActorClassID", "ActorHandle", "ActorID", "ClientBuilder", "ClusterID",
    "DynamicObjectRefGenerator", "FunctionID", "JobID", "Language", "LoggingConfig",
    "NodeID", "ObjectID", "ObjectRef", "ObjectRefGenerator", "PlacementGroupID",
    "SCRIPT_MODE", "TaskID", "UniqueID", "WORKER_MODE", "WorkerID", "__version__",
    "_config", "actor", "available_resources", "cancel", "client", "cluster_resources",
    "exceptions", "get", "get_actor", "get_gpu_ids", "get_runtime_context", "init",
    "is_initialized", "java_actor_class", "java_function", "kill", "method", "nodes", "put",
    "remote", "shutdown", "timeline", "util", "wait",
]
