"""Validation of ``@remote`` / ``.options()`` keywords, with Ray's names and defaults.

Bad options fail when the decorator or ``.options()`` is applied, naming the option.
"""

from __future__ import annotations

import numbers

_UNSET = object()

COMMON = {
    "num_cpus", "num_gpus", "resources", "memory", "object_store_memory", "accelerator_type",
    "name", "scheduling_strategy", "runtime_env", "placement_group",
    "placement_group_bundle_index", "placement_group_capture_child_tasks", "label_selector",
    "_metadata", "enable_task_events", "_labels",
}
TASK_ONLY = {"num_returns", "max_calls", "max_retries", "retry_exceptions", "_generator_backpressure_num_objects"}
ACTOR_ONLY = {
    "max_restarts", "max_task_retries", "max_pending_calls", "max_concurrency", "namespace",
    "lifetime", "get_if_exists", "concurrency_groups", "allow_out_of_order_execution",
}
TASK_OPTIONS = COMMON | TASK_ONLY
ACTOR_OPTIONS = COMMON | ACTOR_ONLY


def _nonneg_number(name, v, kind):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or v < 0:
        raise ValueError(f"The keyword '{name}' only accepts None, 0 or a positive number "
                         f"for {kind}, got {v!r}.")


def validate(opts: dict, *, actor: bool, in_options: bool = False) -> dict:
    """Check ``@remote`` (or, with ``in_options``, ``.options()``) keywords; returns a copy."""
    kind = "actors" if actor else "remote functions"
    valid = ACTOR_OPTIONS if actor else TASK_OPTIONS
    for k, v in opts.items():
        if k not in valid:
            raise ValueError(f"Invalid option keyword {k} for {kind}. Valid ones are "
                             f"{sorted(x for x in valid if not x.startswith('_'))}.")
        if v is None:
            continue
        if k in ("num_cpus", "num_gpus", "memory", "object_store_memory"):
            _nonneg_number(k, v, kind)
            if k == "num_gpus" and v > 1 and v != int(v):
                raise ValueError(f"num_gpus above 1 must be a whole number, got {v}.")
        elif k == "resources":
            if not isinstance(v, dict):
                raise TypeError(f"The keyword 'resources' must be a dict, got {type(v).__name__}.")
            for rk, rv in v.items():
                if rk in ("CPU", "GPU"):
                    raise ValueError("Use the 'num_cpus' and 'num_gpus' keywords instead of "
                                     f"'{rk}' in the 'resources' keyword.")
                _nonneg_number(f"resources[{rk!r}]", rv, kind)
        elif k == "num_returns":
            if v in ("streaming", "dynamic"):
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"The keyword 'num_returns' only accepts 0, a positive integer "
                                 f"or 'streaming', got {v!r}.")
        elif k in ("max_retries", "max_restarts", "max_task_retries"):
            if isinstance(v, bool) or not isinstance(v, int) or v < -1:
                raise ValueError(f"The keyword '{k}' only accepts -1 (infinite), 0 or a positive "
                                 f"integer, got {v!r}.")
        elif k == "retry_exceptions":
            ok = isinstance(v, bool) or (
                isinstance(v, (list, tuple))
                and all(isinstance(c, type) and issubclass(c, BaseException) for c in v))
            if not ok:
                raise TypeError("The keyword 'retry_exceptions' only accepts a bool or a list "
                                f"of exception classes, got {v!r}.")
        elif k == "max_concurrency":
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"max_concurrency must be an integer >= 1, got {v!r}.")
        elif k == "max_pending_calls":
            if isinstance(v, bool) or not isinstance(v, int) or (v < 1 and v != -1):
                raise ValueError(f"max_pending_calls must be -1 or an integer >= 1, got {v!r}.")
        elif k == "lifetime":
            if v not in ("detached", "non_detached"):
                raise ValueError("actor `lifetime` argument must be one of 'detached', "
                                 f"'non_detached' and 'None', got {v!r}.")
        elif k == "name":
            if not isinstance(v, str):
                raise TypeError(f"The keyword 'name' must be a string, got {type(v).__name__}.")
            if actor and v == "":
                raise ValueError("Actor name cannot be an empty string.")
        elif k == "scheduling_strategy":
            _validate_strategy(v)
        elif k == "max_calls":
            _validate_max_calls(v)
        elif k == "runtime_env":
            from .worker_env import validate_runtime_env

            validate_runtime_env(v)
    if in_options and "max_calls" in opts:
        raise ValueError("Setting 'max_calls' is not supported in '.options()'.")
    return dict(opts)


def _validate_max_calls(v) -> None:
    if not isinstance(v, int):  # Ray's check: a bool passes as an int
        raise TypeError("The type of keyword 'max_calls' must be (<class 'int'>, <class "
                        f"'NoneType'>), but received type {type(v)}")
    if v < 0:
        raise ValueError("The keyword 'max_calls' only accepts None, 0 or a positive integer.")


def max_calls(opts: dict) -> int:
    """How many calls of a function a worker runs before it exits (0: no limit). As in Ray,
    a function that needs GPUs gets 1 unless it says otherwise."""
    n = opts.get("max_calls")
    if n is None:
        return 1 if (opts.get("num_gpus") or 0) > 0 else 0
    return int(n)


def _validate_strategy(v) -> None:
    if isinstance(v, str):
        if v not in ("DEFAULT", "SPREAD"):
            raise ValueError(f"Invalid scheduling_strategy {v!r}: use 'DEFAULT', 'SPREAD' or a "
                             "scheduling strategy object.")
        return
    if not hasattr(v, "_shoal_strategy"):
        raise ValueError(f"Invalid scheduling_strategy {v!r}.")


def resource_demand(opts: dict, *, default_cpus: float = 1) -> dict:
    """The resource shape a task or actor asks for."""
    cpus = opts.get("num_cpus")
    demand = {"CPU": default_cpus if cpus is None else cpus}
    if opts.get("num_gpus"):
        demand["GPU"] = opts["num_gpus"]
    if opts.get("memory"):
        demand["memory"] = opts["memory"]
    for k, v in (opts.get("resources") or {}).items():
        demand[k] = v
    return {k: v for k, v in demand.items() if v}
