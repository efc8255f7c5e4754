"""The one runtime object of this process (driver or worker); public functions look it up."""

from __future__ import annotations

_runtime = None


def set_runtime(rt) -> None:
    global _runtime
    _runtime = rt


def current_runtime_or_none():
    return _runtime
