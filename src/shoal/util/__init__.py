"""Utilities on top of shoal's core API, as ``ray.util``: ``ActorPool``, placement groups,
``list_named_actors``. The distributed queue is in ``shoal.util.queue``, scheduling
strategies in ``shoal.util.scheduling_strategies``, the state API in ``shoal.util.state``.
"""

from __future__ import annotations

from .._private.runtime.current import current_runtime_or_none, runtime
from .actor_pool import ActorPool
from .placement_group import (
    PlacementGroup,
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)

__all__ = [
    "ActorPool", "PlacementGroup", "get_current_placement_group", "get_node_ip_address",
    "get_placement_group",
    "list_named_actors", "placement_group", "placement_group_table", "remove_placement_group",
]


def get_node_ip_address() -> str:
    """The IP address of the node this process runs on."""
    rt = current_runtime_or_none()
    return (getattr(rt, "node_ip", None) if rt is not None else None) or "127.0.0.1"


def list_named_actors(all_namespaces: bool = False) -> list:
    """The named actors of this job's namespace (their names), or with ``all_namespaces``
    those of every namespace, as ``{"name": ..., "namespace": ...}`` dicts."""
    rt = runtime()
    ns = None if all_namespaces else rt.namespace
    actors = rt.call(rt.head_conn.request("list_named_actors", {"namespace": ns}))[0]["actors"]
    if all_namespaces:
        return [{"name": a["name"], "namespace": a["namespace"]} for a in actors]
    return [a["name"] for a in actors]
