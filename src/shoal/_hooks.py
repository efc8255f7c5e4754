"""What shoal's libraries (``shoal.dag``, ``shoal.runtime_env``, and later ones) may use
besides the public API: the few things they need that the public API does not name, or that
they cannot import without closing an import cycle.

- ``validate_runtime_env(env)``: the shape check of a runtime_env dict (``RuntimeEnv``'s).
- ``remote(target)``: ``shoal.remote`` (a DAG node built from a plain function or class).
- ``actor_handle_type()``: the class ``shoal.actor.ActorHandle``.
- ``kept_by_identity()``: the classes whose instances name cluster state (ObjectRef, actor
  handles, ObjectRefGenerator), which a DAG passes through as they are.
- ``local_dashboards()``: the dashboards (and tokens) of the heads running on this machine.
- ``build_package(path, excludes, include_parent_dir)``: a working_dir or py_module zipped
  and named by its content, for upload (``shoal._private.wire.packages``).

The last three are lent by ``shoal.api`` when it is imported (``import shoal`` always
imports it): ``shoal.actor`` and ``shoal.remote_function`` import ``shoal.dag`` for
``.bind()``, so ``shoal.dag`` must not import them, nor ``shoal`` or ``shoal.api``, back.
This module imports no public module, so every public module and library may import it.
"""

from __future__ import annotations

from typing import Any

_lent: dict[str, Any] = {}


def lend(**things: Any) -> None:
    """Called by ``shoal.api`` at import: ``remote``, ``actor_handle``, ``kept_by_identity``."""
    _lent.update(things)


def _get(name: str):
    try:
        return _lent[name]
    except KeyError:
        raise RuntimeError(f"shoal._hooks: {name!r} is not available before shoal.api is "
                           "imported (import shoal first)") from None


def remote(target):
    """``shoal.remote(target)``: a remote function or actor class."""
    return _get("remote")(target)


def actor_handle_type() -> type:
    return _get("actor_handle")


def kept_by_identity() -> tuple[type, ...]:
    return _get("kept_by_identity")


def validate_runtime_env(env) -> None:
    """Check a runtime_env's shape as ``@remote(runtime_env=...)`` does: ValueError or
    TypeError (Ray's messages) if it is not a valid one."""
    from ._private.runtime.options import validate_runtime_env as check

    check(env)


def local_dashboards() -> list[tuple[str, str, str]]:
    """``(dashboard URL, head address, token)`` of each head running on this machine under
    this user's session root, the current cluster's first: how the Jobs SDK and CLI on the
    head find the dashboard and the token without being told."""
    from ._private.launch import local_cluster
    from ._private.wire.session import Session, read_address

    current = local_cluster.current_cluster()
    sessions = [current.path] if current is not None else []
    sessions += [p for p, _info in local_cluster._live_sessions() if p not in sessions]
    out = []
    for path in sessions:
        info = read_address(path) or {}
        if info.get("is_head") and info.get("webui_url"):
            try:
                token = Session(path).read_token().decode()
            except OSError:
                continue
            out.append((info["webui_url"], info.get("head_address", ""), token))
    return out


def build_package(path: str, excludes=None, include_parent_dir: bool = False):
    """``(uri, zip bytes)``: see ``shoal._private.wire.packages.build``."""
    from ._private.wire import packages

    return packages.build(path, excludes, include_parent_dir=include_parent_dir)
