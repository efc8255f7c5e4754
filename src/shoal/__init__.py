"""shoal: distributed computing for Python with Ray's programming model.

``import shoal as ray`` and a Ray Core program runs unchanged: remote functions, actors, a
shared-memory object store, on one machine or many.
"""

__version__ = "0.1.0"

from . import exceptions  # noqa: E402
from ._private.generator import ObjectRefGenerator  # noqa: E402
from .actor import ActorClass, ActorHandle  # noqa: E402
from .api import (  # noqa: E402
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
from .object_ref import ObjectRef  # noqa: E402

__all__ = [
    "ActorClass", "ActorHandle", "ObjectRef", "ObjectRefGenerator", "available_resources", "get_actor", "kill", "cancel", "cluster_resources", "exceptions", "get",
    "get_gpu_ids", "get_runtime_context", "init", "is_initialized", "method", "nodes", "put",
    "remote", "shutdown", "timeline", "wait", "__version__",
]
