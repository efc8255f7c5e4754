"""Binding ``.remote()`` arguments to the signature of the function or method, as Ray does.

A wrong call fails at submission with the ``TypeError`` Python itself would give
(``missing a required argument: 'x'``, ``too many positional arguments``, ...), not later
in a worker. Signatures travel in a plain form (``[name, kind, has_default]`` per
parameter) so that actor handles received from other processes, or from the head through
``get_actor``, check calls the same way. An :class:`ArgChecker` is built once per function
or method and answers the common case (positional arguments only, a count in range)
without calling ``inspect``.
"""

from __future__ import annotations

import inspect
from typing import Any

_P = inspect.Parameter
_NO_DEFAULT = _P.empty


def describe(func, *, drop_first: bool = False) -> list | None:
    """The plain form of ``func``'s parameters, or None if it has no readable signature.

    ``drop_first`` leaves out ``self`` of an instance method; a method without any
    parameter to drop is refused as Ray refuses it.
    """
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    if drop_first:
        if not params:
            raise ValueError("Methods must take a 'self' argument, but the method "
                             f"'{getattr(func, '__name__', func)}' does not have one.")
        params = params[1:]
    return [[p.name, int(p.kind), p.default is not _NO_DEFAULT] for p in params]


class ArgChecker:
    """Checks ``(args, kwargs)`` against one signature; raises TypeError if they don't fit."""

    __slots__ = ("_sig", "_min", "_max", "_names", "_keywords", "_required", "_any_kw",
                 "_pos_only")

    def __init__(self, desc: list):
        params = [_P(name, inspect._ParameterKind(kind), default=None if has else _NO_DEFAULT)
                  for name, kind, has in desc]
        self._sig = inspect.Signature(params)
        positional = [p for p in params if p.kind in (_P.POSITIONAL_ONLY,
                                                       _P.POSITIONAL_OR_KEYWORD)]
        required_kw = any(p.kind == _P.KEYWORD_ONLY and p.default is _NO_DEFAULT
                          for p in params)
        # Calls with positional arguments only, between _min and _max of them, fit.
        self._min = sum(p.default is _NO_DEFAULT for p in positional)
        self._max = len(positional)
        if any(p.kind == _P.VAR_POSITIONAL for p in params):
            self._max = 1 << 62
        if required_kw:
            self._min = self._max + 1  # no positional-only call fits: always bind
        # For calls with keywords: positional names in order, names a keyword may take,
        # and the required ones.
        self._names = [p.name for p in positional]
        self._keywords = frozenset(p.name for p in params if p.kind in (
            _P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY))
        # (how many positional arguments cover it, its keyword name or None if none)
        self._required = [(i, p.name if p.kind != _P.POSITIONAL_ONLY else None)
                          for i, p in enumerate(positional) if p.default is _NO_DEFAULT]
        self._required += [(1 << 62, p.name) for p in params
                           if p.kind == _P.KEYWORD_ONLY and p.default is _NO_DEFAULT]
        self._any_kw = any(p.kind == _P.VAR_KEYWORD for p in params)
        self._pos_only = frozenset(p.name for p in params if p.kind == _P.POSITIONAL_ONLY)

    def check(self, args: tuple | list, kwargs: dict[str, Any]) -> None:
        n = len(args)
        if not kwargs:
            if self._min <= n <= self._max:
                return
        elif n <= self._max and self._fits_keywords(n, kwargs):
            return
        try:
            self._sig.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(str(e)) from None


    def _fits_keywords(self, n: int, kwargs: dict) -> bool:
        """True if ``n`` positional arguments and ``kwargs`` surely bind (else let
        ``inspect`` decide and word the error)."""
        taken = self._names[:n]
        for k in kwargs:
            if k in taken or k in self._pos_only or \
                    (k not in self._keywords and not self._any_kw):
                return False
        for i, name in self._required:  # name None: positional-only
            if i >= n and (name is None or name not in kwargs):
                return False
        return True


def checker(desc: list | None) -> ArgChecker | None:
    return None if desc is None else ArgChecker(desc)
