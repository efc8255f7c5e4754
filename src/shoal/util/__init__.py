"""Utilities on top of shoal's core API, as ``ray.util``: ``ActorPool``, ``list_named_actors``.

The distributed queue is in ``shoal.util.queue``.
"""

from __future__ import annotations

from .actor_pool import ActorPool

__all__ = ["ActorPool", "list_named_actors"]


def list_named_actors(all_namespaces: bool = False) -> list:
    """The named actors of this job's namespace (their names), or with ``all_namespaces``
    those of every namespace, as ``{"name": ..., "namespace": ...}`` dicts."""
    from ..api import _list_named_actors

    return _list_named_actors(all_namespaces)
