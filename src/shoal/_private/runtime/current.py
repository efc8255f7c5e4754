"""The one runtime object of this process (driver or worker); public functions look it up.

``runtime()`` is "this process's runtime, starting one if there is none yet": in a worker it
exists from the start; in a driver the first call before ``init()`` runs the auto-init hook,
which ``shoal.api`` registers when it is imported (``import shoal`` always imports it), so
that a ``.remote()`` before ``init()`` starts a local cluster, as in Ray. The hook lives here,
below every public module, so that they need not import ``shoal.api`` (which imports them).
"""

from __future__ import annotations

from collections.abc import Callable

_runtime = None
_auto_init: Callable[[], object] | None = None


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


def set_auto_init(hook: Callable[[], object] | None) -> None:
    """Register what ``runtime()`` calls when there is no runtime (``shoal.api.init``)."""
    global _auto_init
    _auto_init = hook


def runtime():
    """This process's runtime, started by the auto-init hook (``init()``) if there is none."""
    rt = _runtime
    if rt is None:
        if _auto_init is None:
            raise RuntimeError("shoal is not initialized: call shoal.init() first")
        _auto_init()
        rt = _runtime
    return rt
