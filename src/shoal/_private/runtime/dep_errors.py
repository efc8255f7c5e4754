"""The error of a task whose argument could not be computed, in Ray's shape.

Ray raises ``RayTaskError`` for the dependent task, its text saying that an input argument
could not be computed and quoting the argument's error, and its ``cause`` the original
exception (the user's, or a system error such as ``WorkerCrashedError``), so ``except
ValueError`` around ``get`` of the dependent task still catches a ``ValueError`` raised
upstream, through any number of tasks. The owner builds it when resolving the arguments;
the task is not run.
"""

from __future__ import annotations

import asyncio
import os

from ..wire import serialization
from . import errors as exc_mod
from .error_base import PUBLIC_MODULE
from .ownership import Value

DEPENDENCY_FAILED = "At least one of the input arguments for this task could not be computed:"


def dependency_error(err: BaseException, name: str) -> exc_mod.RayTaskError:
    """The error of task ``name`` whose argument failed with ``err``."""
    if isinstance(err, exc_mod.RayTaskError):
        cause = err._user_cause()
        shown = f"{_module(err)}.RayTaskError: {err}"
    else:
        cause = err
        text = str(err)
        label = f"{_module(err)}.{type(err).__qualname__}"
        shown = f"{label}: {text}" if text else label
    return exc_mod.RayTaskError(name, f"  {DEPENDENCY_FAILED}\n{shown}", cause,
                                pid=os.getpid(), ip="127.0.0.1")


def _module(err: BaseException) -> str:
    """The module the quoted error's class is shown under: Ray's name for shoal's own
    exceptions (``ray.exceptions.RayTaskError: ...``), as a Ray program expects the text."""
    mod = type(err).__module__
    return "ray.exceptions" if mod == PUBLIC_MODULE else mod


async def dependency_error_value(rt, v: Value, name: str) -> Value:
    """The error Value for task ``name`` whose argument holds the error Value ``v``."""
    try:
        if v.path is None:
            err = rt.materialize(v)
        else:  # in shared memory, maybe on another node: read it off the I/O loop
            err = await asyncio.to_thread(rt.materialize, v)
    except Exception:  # noqa: BLE001 - unreadable: pass the argument's error on as it is
        return v
    if not isinstance(err, BaseException):
        return v
    wrapped = dependency_error(err, name)
    ser = serialization.serialize(wrapped, is_error=True)
    return Value(True, bytes(ser.meta), [bytes(b) for b in ser.buffers], size=ser.total_bytes)
