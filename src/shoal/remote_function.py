"""Remote functions: ``@shoal.remote`` on a function, ``.remote()`` to run it as a task."""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging

from ._private.runtime import options as opt_mod
from ._private.runtime import signature
from ._private.runtime.current import runtime
from ._private.runtime.ownership import Value
from ._private.runtime.submitter import TaskSpec
from ._private.runtime.worker_env import merged_env_vars, process_env
from ._private.wire import serialization
from ._private.wire.config import config
from ._private.wire.ids import IdSource
from .object_ref import ObjectRef
from .util.scheduling_strategies import placement

log = logging.getLogger("shoal")


class RemoteFunction:
    """A function that runs as a task somewhere in the cluster when called with ``.remote``."""

    def __init__(self, function, options: dict):
        if not callable(function):
            raise TypeError(f"@remote expects a function or a class, got {function!r}")
        if inspect.iscoroutinefunction(function):
            raise ValueError(
                "'async def' should not be used for remote tasks. You can wrap the async "
                "function with `asyncio.run(f())`. See more at:"
                "https://docs.ray.io/en/latest/ray-core/actors/async_api.html ")
        self._function = function
        self._is_generator = inspect.isgeneratorfunction(function)
        self._default_options = opt_mod.validate(options, actor=False)
        opt_mod.check_num_returns(self._is_generator, options.get("num_returns"), stacklevel=5)
        # A property of the function, as in Ray: ``.options()`` cannot change it.
        self._max_calls = opt_mod.max_calls(self._default_options)
        self._name = getattr(function, "__name__", None) or "task"
        self._function_name = f"{getattr(function, '__module__', None)}.{self._name}"
        self._pickled: tuple[bytes, bytes] | None = None
        self._args = signature.checker(signature.describe(function))
        functools.update_wrapper(self, function)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Remote functions cannot be called directly. Instead of running "
                        f"'{self._function_name}()', try '{self._function_name}.remote()'.")

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_pickled"] = None
        return state

    def remote(self, *args, **kwargs):
        """Run the function as a task; returns an ObjectRef (or a list for num_returns > 1)."""
        return self._submit(args, kwargs, self._default_options)

    def options(self, **options):
        """A copy of this function with some options changed, for one call or many."""
        merged = {**self._default_options,
                  **opt_mod.validate(options, actor=False, in_options=True)}
        if "num_returns" in options:
            opt_mod.check_num_returns(self._is_generator, options["num_returns"])
        parent = self

        class _Options:
            def remote(self, *args, **kwargs):
                return parent._submit(args, kwargs, merged)

            def bind(self, *args, **kwargs):
                """A DAG node running the function with these options (see shoal.dag)."""
                from .dag.function_node import FunctionNode

                return FunctionNode(parent._function, args, kwargs, dict(merged),
                                    _remote_function=parent)

        return _Options()

    def _remote(self, args=None, kwargs=None, **options):
        """Ray's lower-level submission: arguments as a list and a dict, and the task's
        options in full (``remote()`` passes the decorator's; none are merged in here)."""
        opts = opt_mod.validate(options, actor=False)
        return self._submit(tuple(args or ()), dict(kwargs or {}), opts)

    def bind(self, *args, **kwargs):
        """A DAG node: this function called with these arguments, run by ``execute()``.
        Arguments may be other nodes, also inside lists and dicts (see ``shoal.dag``)."""
        from .dag.function_node import FunctionNode

        return FunctionNode(self._function, args, kwargs, dict(self._default_options),
                            _remote_function=self)

    def _function_bytes(self) -> tuple[bytes, bytes]:
        if self._pickled is None:
            try:
                data = serialization.dumps_function(self._function)
            except Exception as e:
                raise TypeError(serialization.describe_unserializable(
                    self._function, f"the remote function {self._name}", e)) from e
            check_oversized(data, self._function_name, "remote function")
            self._pickled = (hashlib.blake2b(data, digest_size=16).digest(), data)
        return self._pickled

    def _submit(self, args, kwargs, opts):
        if self._args is not None:
            self._args.check(args, kwargs)
        rt = runtime()
        fid, data = self._function_bytes()
        nr = opts.get("num_returns")
        if nr is None:
            nr = "streaming" if self._is_generator else 1
        name = opts.get("name") or self._name
        opt_mod.check_reserved_resources(opts)
        demand, strategy, group = placement(opts, opt_mod.resource_demand(opts), self._name)
        spec_args, deps, hold = _prepare_args(rt, args, kwargs, name)
        task_id = rt.ids.task_id()
        dynamic = nr == "dynamic"
        streaming = dynamic or nr == "streaming"
        return_ids = [] if streaming else \
            [IdSource.return_id(task_id, i + 1) for i in range(nr)]
        for rid in return_ids:
            rt.refs.new_owned(rid, task_id, name)
        refs = [rt.make_ref(rid) for rid in return_ids]
        max_retries = opts.get("max_retries")
        env_spec, env_key = process_env(rt.inherited_runtime_env, opts.get("runtime_env"))
        spec = TaskSpec(
            task_id=task_id, name=name, fid=fid, fn_bytes=data, args=spec_args,
            kw_names=list(kwargs), num_returns="streaming" if streaming else nr,
            return_ids=return_ids,
            resources=demand,
            max_retries=config.default_max_retries if max_retries is None else max_retries,
            retry_exceptions=opts.get("retry_exceptions") or False, hold=hold,
            strategy=strategy, dep_refs={i: spec_args[i] for i in deps}, group=group,
            max_calls=self._max_calls,
            env_vars=merged_env_vars(rt.inherited_env, opts.get("runtime_env")),
            runtime_env=env_spec, env_key=env_key,
        )
        if streaming:
            out = _open_stream(rt, task_id, name, dynamic)
            rt.submit(spec, deps)
            return out
        rt.submit(spec, deps)
        if nr == 0:
            return None
        return refs[0] if nr == 1 else refs


def _open_stream(rt, task_id: bytes, name: str, dynamic: bool):
    """What ``.remote()`` of a generator returns: an ObjectRefGenerator (streaming), or for
    ``num_returns="dynamic"`` one ObjectRef whose value will be a DynamicObjectRefGenerator."""
    from ._private.runtime.generator import DynamicCollector, ObjectRefGenerator

    if not dynamic:
        gen = rt.generators[task_id] = ObjectRefGenerator(rt, task_id)
        return gen
    outer = IdSource.return_id(task_id, 0)
    rt.refs.new_owned(outer, task_id, name)
    ref = rt.make_ref(outer)
    rt.generators[task_id] = DynamicCollector(rt, outer)
    return ref


# Ray's limits on a pickled function or class (FUNCTION_SIZE_ERROR_THRESHOLD can be set in
# the environment, as in Ray).
FUNCTION_SIZE_WARN_THRESHOLD = 10**7


def check_oversized(pickled: bytes, name: str, kind: str) -> None:
    """Warn about a large pickled function or class; refuse one over Ray's limit."""
    import os

    size = len(pickled)
    if size <= FUNCTION_SIZE_WARN_THRESHOLD:
        return
    limit = int(os.environ.get("FUNCTION_SIZE_ERROR_THRESHOLD", 10**8))
    mib = size // (1024 * 1024)
    if size < limit:
        log.warning("Warning: The %s %s is very large (%d MiB). Check that its definition is "
                    "not implicitly capturing a large array or other object in scope. Tip: "
                    "use ray.put() to put large objects in the Ray object store.",
                    kind, name, mib)
        return
    raise ValueError(
        f"The {kind} {name} is too large ({mib} MiB > FUNCTION_SIZE_ERROR_THRESHOLD="
        f"{limit // (1024 * 1024)} MiB). Check that its definition is not implicitly "
        "capturing a large array or other object in scope. Tip: use ray.put() to put large "
        "objects in the Ray object store.")


def _prepare_args(rt, args, kwargs, name):
    """Serialize arguments: ObjectRefs become dependencies, large values go to the store."""
    values = list(args) + list(kwargs.values())
    spec_args: list = []
    deps: list = []
    hold: list = []
    for i, a in enumerate(values):
        if isinstance(a, ObjectRef):
            a = ObjectRef(a._id, a._owner, rt)  # the task's own reference, not the caller's
            spec_args.append(a)
            deps.append(i)
            hold.append(a)
            rt.refs.add_submitted(a._id)
            continue
        try:
            ser = serialization.serialize(a)
        except Exception as e:
            raise TypeError(serialization.describe_unserializable(
                a, f"the argument {_arg_label(i, args, kwargs)} of task {name}:", e)) from e
        for r in ser.contained:
            hold.append(ObjectRef(r._id, r._owner, rt))
            rt.refs.add_submitted(r._id)
        if ser.total_bytes > rt.max_inline:
            ref = rt.put_serialized(ser)
            spec_args.append(ref)
            deps.append(i)
            hold.append(ref)
            rt.refs.add_submitted(ref._id)
        else:
            spec_args.append(Value(False, bytes(ser.meta), [bytes(b) for b in ser.buffers],
                                   size=ser.total_bytes))
    return spec_args, deps, hold


def _arg_label(i, args, kwargs) -> str:
    if i < len(args):
        return f"#{i}"
    return repr(list(kwargs)[i - len(args)])
