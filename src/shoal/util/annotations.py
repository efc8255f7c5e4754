"""API stability annotations, with Ray's names (``ray.util.annotations``).

Libraries written for Ray mark their functions with these; here they only record the mark
(``PublicAPI``, ``DeveloperAPI``, ``Deprecated``), and ``Deprecated(warning=True)`` warns
with :class:`RayDeprecationWarning` on use, as Ray does.
"""

from __future__ import annotations

import functools
import inspect
import warnings

from .._private.runtime.deprecation import RayDeprecationWarning

_DEPRECATED = (
    "This API is deprecated and may be removed in future Ray releases. You could suppress "
    'this warning by setting env variable PYTHONWARNINGS="ignore::DeprecationWarning"'
)


def deprecation_message(extra: str | None = None) -> str:
    return _DEPRECATED + (f"\n{extra}" if extra else "")


def _mark(obj, kind: str, stability: str | None = None):
    try:
        obj._annotated = obj.__name__
        obj._annotated_type = kind
        if stability is not None:
            obj._annotated_stability = stability
    except (AttributeError, TypeError):
        pass
    return obj


def PublicAPI(*args, **kwargs):  # noqa: N802 - Ray's name
    """``@PublicAPI`` or ``@PublicAPI(stability="beta")``: a stable public API."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return _mark(args[0], "PublicAPI", "stable")
    stability = kwargs.pop("stability", "stable")
    kwargs.pop("api_group", None)
    if args or kwargs:
        raise ValueError(f"Unknown arguments to PublicAPI: {args} {sorted(kwargs)}")
    if stability not in ("stable", "beta", "alpha"):
        raise ValueError(f"stability must be 'stable', 'beta' or 'alpha', got {stability!r}")
    return lambda obj: _mark(obj, "PublicAPI", stability)


def DeveloperAPI(*args, **kwargs):  # noqa: N802 - Ray's name
    """``@DeveloperAPI``: an API for advanced users, which may change across releases."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return _mark(args[0], "DeveloperAPI")
    return lambda obj: _mark(obj, "DeveloperAPI")


def Deprecated(*args, **kwargs):  # noqa: N802 - Ray's name
    """``@Deprecated`` or ``@Deprecated(message=..., warning=True)``."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return Deprecated()(args[0])
    message = deprecation_message(kwargs.pop("message", None))
    warning = kwargs.pop("warning", False)
    if args or kwargs:
        raise ValueError(f"Unknown kwargs: {kwargs.keys()}")

    def inner(obj):
        _mark(obj, "Deprecated")
        if not warning:
            return obj
        if inspect.isclass(obj):
            init = obj.__init__

            @functools.wraps(init)
            def patched(*a, **kw):
                warnings.warn(message, RayDeprecationWarning, stacklevel=2)
                return init(*a, **kw)

            obj.__init__ = patched
            return obj

        @functools.wraps(obj)
        def wrapper(*a, **kw):
            warnings.warn(message, RayDeprecationWarning, stacklevel=2)
            return obj(*a, **kw)

        return wrapper

    return inner


__all__ = ["Deprecated", "DeveloperAPI", "PublicAPI", "RayDeprecationWarning"]
