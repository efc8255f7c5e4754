"""Validation of ``@remote`` / ``.options()`` keywords, with Ray's names and defaults.

Bad options fail when the decorator or ``.options()`` is applied, naming the option.
"""

from __future__ import annotations

import numbers
import warnings

from .deprecation import RayDeprecationWarning

_UNSET = object()

COMMON = {
    "num_cpus", "num_gpus", "resources", "memory", "object_store_memory", "accelerator_type",
    "name", "scheduling_strategy", "runtime_env", "placement_group",
    "placement_group_bundle_index", "placement_group_capture_child_tasks", "label_selector",
    "_metadata", "enable_task_events", "_labels", "fallback_strategy",
}
TASK_ONLY = {"num_returns", "max_calls", "max_retries", "retry_exceptions",
             "_generator_backpressure_num_objects", "_num_objects_per_yield"}
ACTOR_ONLY = {
    "max_restarts", "max_task_retries", "max_pending_calls", "max_concurrency", "namespace",
    "lifetime", "get_if_exists", "concurrency_groups", "allow_out_of_order_execution",
    "enable_tensor_transport", "_actor_generator_backpressure_num_objects",
}
# Ray's list in its message for a misused @remote, in Ray's order.
_REMOTE_ARGS = [
    "max_calls", "max_retries", "num_cpus", "num_returns", "object_store_memory",
    "retry_exceptions", "_generator_backpressure_num_objects", "_num_objects_per_yield",
    "concurrency_groups", "enable_tensor_transport", "lifetime", "max_concurrency",
    "max_restarts", "max_task_retries", "max_pending_calls", "namespace", "get_if_exists",
    "allow_out_of_order_execution", "_actor_generator_backpressure_num_objects",
    "label_selector", "fallback_strategy", "accelerator_type", "memory", "name", "num_gpus",
    "placement_group", "placement_group_bundle_index", "placement_group_capture_child_tasks",
    "resources", "runtime_env", "scheduling_strategy", "enable_task_events", "_labels",
]
REMOTE_ARGS_ERROR = (
    "The @ray.remote decorator must be applied either with no arguments and no "
    "parentheses, for example '@ray.remote', or it must be applied using some of "
    f"the arguments in the list {_REMOTE_ARGS}, for example "
    "'@ray.remote(num_returns=2, resources={\"CustomResource\": 1})'."
)
DYNAMIC_NUM_RETURNS_WARNING = (
    "num_returns='dynamic' is deprecated and will be removed in a future "
    "Ray release. Use num_returns='streaming' instead."
)
# Ray reserves this resource name for placement-group bundles.
BUNDLE_RESOURCE = "bundle"
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
            from .worker_env import validate_runtime_env as validate_env_vars

            validate_runtime_env(v)
            validate_env_vars(v)
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


def validate_runtime_env(env) -> None:
    """Ray's checks of a runtime_env's shape (shoal keeps it but builds no environment)."""
    if env is None:
        return
    if not isinstance(env, dict):
        raise TypeError("The type of keyword 'runtime_env' must be (<class 'dict'>, <class "
                        f"'NoneType'>), but received type {type(env)}")
    env_vars = env.get("env_vars")
    if env_vars is not None:
        if not isinstance(env_vars, dict):
            raise TypeError("runtime_env['env_vars'] must be of type Dict[str, str], got "
                            f"{type(env_vars)}")
        for key, val in env_vars.items():
            if not isinstance(key, str):
                raise TypeError("runtime_env['env_vars'] must be of type Dict[str, str], but "
                                f"the key {key} is of type {type(key)}")
            if not isinstance(val, str):
                raise TypeError("runtime_env['env_vars'] must be of type Dict[str, str], but "
                                f"the value {val} is of type {type(val)}")
    for key in ("working_dir", "py_executable"):
        if env.get(key) is not None and not isinstance(env[key], str):
            raise TypeError(f"`{key}` must be a string, got {type(env[key])}.")
    if sum(env.get(k) is not None for k in ("pip", "uv", "conda")) > 1:
        raise ValueError("The 'pip' field, 'uv' field, and 'conda' field of runtime_env cannot "
                         "be specified at the same time.\n"
                         f"specified pip field: {env.get('pip')}\n"
                         f"specified conda field: {env.get('conda')}\n"
                         f"specified uv field: {env.get('uv')}")


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


def check_reserved_resources(opts: dict) -> None:
    """Refuse resource names Ray keeps for itself (checked at ``.remote()``, as Ray does)."""
    res = opts.get("resources")
    if res and BUNDLE_RESOURCE in res:
        raise ValueError(f"The resource should not include `{BUNDLE_RESOURCE}` which is "
                         f"reserved for Ray. resources: {res}")


def check_num_returns(is_generator: bool, num_returns, stacklevel: int = 3) -> None:
    """Ray's checks of an explicit ``num_returns``: 'dynamic' is deprecated (a warning),
    'streaming' and 'dynamic' need a generator function."""
    if num_returns is None:
        return
    if num_returns == "dynamic":
        warnings.warn(DYNAMIC_NUM_RETURNS_WARNING, RayDeprecationWarning,
                      stacklevel=stacklevel)
    if num_returns in ("streaming", "dynamic") and not is_generator:
        raise ValueError(f"num_returns='{num_returns}' can only be used with generator "
                         "functions (functions that use 'yield'). The decorated function is "
                         "not a generator function.")


def actor_is_default(opts: dict) -> bool:
    """Ray's "simple" actor: no resources asked for (memory aside). It holds no CPU while
    it lives but needs one to be placed; an actor asking for any resource holds one CPU
    unless it says otherwise."""
    return opts.get("num_cpus") is None and opts.get("num_gpus") is None and \
        not opts.get("resources") and opts.get("accelerator_type") is None


def ray_request(opts: dict, actor: bool) -> tuple[dict, dict | None]:
    """The resource request as Ray shows it in messages (custom resources first, then CPU,
    GPU, memory), and for a default actor what it needs to be placed."""
    out = dict(opts.get("resources") or {})
    cpus = opts.get("num_cpus")
    default_actor = actor and actor_is_default(opts)
    out["CPU"] = cpus if cpus is not None else (0 if default_actor else 1)
    for key in ("num_gpus", "memory", "object_store_memory"):
        if opts.get(key) is not None:
            out["GPU" if key == "num_gpus" else key] = opts[key]
    placing = {**out, "CPU": out["CPU"] + 1} if default_actor else None
    return out, placing
