"""The one runtime object of this process (driver or worker); public functions look it up."""

from __future__ import annotations

_runtime = None


def set_runtime(rt) -> None:
    global _runtime
    _runtime = rt


def current_runtime_or_none():
    return _runtime


# The handle an actor's own code gets (``get_runtime_context().current_actor``) is a public
# class the runtime may not import: shoal.actor registers its maker here when imported
# (``import shoal`` always imports it, in drivers and workers alike).
_actor_handle_factory = None


def set_actor_handle_factory(factory) -> None:
    """``factory(actor_id, methods, opts)`` makes an actor's handle to itself."""
    global _actor_handle_factory
    _actor_handle_factory = factory


def actor_handle_for_self(actor_id: bytes, methods: dict, opts: dict):
    if _actor_handle_factory is None:
        raise RuntimeError("no actor handle factory: shoal.actor has not been imported")
    return _actor_handle_factory(actor_id, methods, opts)
