"""Remote functions: ``@shoal.remote`` on a function, ``.remote()`` to run it as a task."""

from __future__ import annotations

import functools
import hashlib
import inspect

from ._private import options as opt_mod
from ._private import serialization
from ._private.config import config
from ._private.ids import IdSource
from ._private.ownership import Value
from ._private.submitter import TaskSpec
from .object_ref import ObjectRef
from .util.scheduling_strategies import placement


class RemoteFunction:
    """A function that runs as a task somewhere in the cluster when called with ``.remote``."""

    def __init__(self, function, options: dict):
        if not callable(function):
            raise TypeError(f"@remote expects a function or a class, got {function!r}")
        self._function = function
        self._default_options = opt_mod.validate(options, actor=False)
        self._name = getattr(function, "__name__", None) or "task"
        self._pickled: tuple[bytes, bytes] | None = None
        self._is_generator = inspect.isgeneratorfunction(function)
        functools.update_wrapper(self, function)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Remote functions cannot be called directly. Instead of running "
                        f"'{self._name}()', try '{self._name}.remote()'.")

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_pickled"] = None
        return state

    def remote(self, *args, **kwargs):
        """Run the function as a task; returns an ObjectRef (or a list for num_returns > 1)."""
        return self._remote(args, kwargs, self._default_options)

    def options(self, **options):
        """A copy of this function with some options changed, for one call or many."""
        merged = {**self._default_options, **opt_mod.validate(options, actor=False)}
        parent = self

        class _Options:
            def remote(self, *args, **kwargs):
                return parent._remote(args, kwargs, merged)

            def bind(self, *args, **kwargs):
                """A DAG node running the function with these options (see shoal.dag)."""
                from .dag.function_node import FunctionNode

                return FunctionNode(parent._function, args, kwargs, dict(merged),
                                    _remote_function=parent)

        return _Options()

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
            self._pickled = (hashlib.blake2b(data, digest_size=16).digest(), data)
        return self._pickled

    def _remote(self, args, kwargs, opts):
        from .api import _runtime

        rt = _runtime()
        fid, data = self._function_bytes()
        nr = opts.get("num_returns")
        if nr is None:
            nr = "streaming" if self._is_generator else 1
        if nr == "dynamic":
            raise NotImplementedError("num_returns='dynamic' (deprecated in Ray) is not "
                                      "supported; use num_returns='streaming'")
        name = opts.get("name") or self._name
        demand, strategy, _ = placement(opts, opt_mod.resource_demand(opts))
        spec_args, deps, hold = _prepare_args(rt, args, kwargs, name)
        task_id = rt.ids.task_id()
        streaming = nr == "streaming"
        return_ids = [] if streaming else \
            [IdSource.return_id(task_id, i + 1) for i in range(nr)]
        for rid in return_ids:
            rt.refs.new_owned(rid, task_id, name)
        refs = [rt.make_ref(rid) for rid in return_ids]
        max_retries = opts.get("max_retries")
        spec = TaskSpec(
            task_id=task_id, name=name, fid=fid, fn_bytes=data, args=spec_args,
            kw_names=list(kwargs), num_returns=nr, return_ids=return_ids,
            resources=demand,
            max_retries=config.default_max_retries if max_retries is None else max_retries,
            retry_exceptions=opts.get("retry_exceptions") or False, hold=hold,
            strategy=strategy, dep_refs={i: spec_args[i] for i in deps},
        )
        if streaming:
            from ._private.generator import ObjectRefGenerator

            gen = rt.generators[task_id] = ObjectRefGenerator(rt, task_id)
            rt.submit(spec, deps)
            return gen
        rt.submit(spec, deps)
        if nr == 0:
            return None
        return refs[0] if nr == 1 else refs


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
