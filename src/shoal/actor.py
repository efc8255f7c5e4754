"""Actors: ``@shoal.remote`` on a class; ``.remote()`` starts one in a dedicated worker.

An actor handle names the actor and carries what callers need (its methods' options). The
handle made by ``.remote()`` also holds a reference owned by the creator: when every copy of
the handle is gone, everywhere, a non-detached actor is terminated (after the calls already
made), by the same reference counting that frees objects.
"""

from __future__ import annotations

import hashlib
import inspect
import os

from ._private.runtime import options as opt_mod
from ._private.runtime import signature
from ._private.runtime.actor_submitter import ActorCall
from ._private.runtime.current import current_runtime_or_none, runtime, set_actor_handle_factory
from ._private.runtime.worker_env import merged_env_vars, process_env
from ._private.wire import serialization
from ._private.wire.ids import ACTOR_HANDLE_MARK, ActorID, IdSource
from .remote_function import _open_stream, _prepare_args, check_oversized
from .util.scheduling_strategies import placement

_HANDLE_MARK = ACTOR_HANDLE_MARK  # marks the scope id of an actor handle (state API rows)
# Methods every actor has (Ray's): wait until created, run a function on the instance, leave.


class ActorClassInheritanceException(TypeError):
    """Raised when a class is defined with an actor class as a base, as Ray refuses."""


def _is_method(m) -> bool:
    return inspect.isfunction(m) or inspect.ismethod(m)


def _method_meta(cls) -> dict:
    """Each method's options (``@method``), whether it is a generator, and its signature
    (without ``self``) in the plain form of ``_private.signature``."""
    meta = {}
    for name, fn in inspect.getmembers(cls, predicate=_is_method):
        if name.startswith("__") and name.endswith("__"):
            continue
        opts = dict(getattr(fn, "__shoal_method_options__", {}))
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            opts["generator"] = True
        # classmethods come bound to the class, staticmethods take no self
        takes_self = inspect.isfunction(fn) and \
            not isinstance(inspect.getattr_static(cls, name, None), staticmethod)
        opts["sig"] = signature.describe(fn, drop_first=takes_self)
        meta[name] = opts
    return meta


def _init_signature(cls) -> list | None:
    init = getattr(cls, "__init__", None)
    if not _is_method(init):
        return []  # no __init__ of its own: Ray gives the actor one that takes nothing
    return signature.describe(init, drop_first=True)


class ActorClass:
    """The remote version of a class: ``.remote(...)`` creates an actor."""

    def __init__(self, cls, options: dict, attrs: dict | None = None):
        if attrs is not None and isinstance(cls, str):  # ``class Sub(SomeActorClass)``
            base = next((b for b in options if isinstance(b, ActorClass)), None)
            raise ActorClassInheritanceException(
                f"Attempted to define subclass '{cls}' of actor class "
                f"'{getattr(base, '_name', '?')}'. Inheriting from actor classes is not "
                "currently supported. You can instead inherit from a non-actor base class "
                "and make the derived class an actor class (with @ray.remote).")
        self._cls = cls
        self._default_options = opt_mod.validate(options, actor=True)
        self._name = cls.__name__
        self._meta = _method_meta(cls)
        self._init_args = signature.checker(_init_signature(cls))
        self._pickled: bytes | None = None
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__module__ = cls.__module__
        self.__doc__ = cls.__doc__

    @classmethod
    def _from_class(cls, target, options):
        return cls(target, options)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actors cannot be instantiated directly. Instead of '{self._name}()', "
                        f"use '{self._name}.remote()'.")

    def __getattr__(self, name: str):
        """The class's own attributes (constants, static and class methods) through the
        actor class, as in Ray, where the actor class derives from the user's class: inside
        an actor, ``MyActor.X`` and ``MyActor.helper()`` reach the user class."""
        cls = self.__dict__.get("_cls")
        if cls is None or name.startswith("__"):
            raise AttributeError(name)
        try:
            return getattr(cls, name)
        except AttributeError:
            raise AttributeError(f"'ActorClass({self._name})' object has no attribute "
                                 f"'{name}'") from None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_pickled"] = None
        return state

    def remote(self, *args, **kwargs) -> ActorHandle:
        """Create an actor running this class; returns its handle at once."""
        return self._create(args, kwargs, self._default_options)

    def options(self, **options):
        """A copy of this actor class with some options changed."""
        merged = {**self._default_options, **opt_mod.validate(options, actor=True)}
        parent = self

        class _Options:
            def remote(self, *args, **kwargs):
                return parent._create(args, kwargs, merged)

            def bind(self, *args, **kwargs):
                """A DAG node creating the actor with these options (see shoal.dag)."""
                from .dag.class_node import ClassNode

                return ClassNode(parent._cls, args, kwargs, dict(merged), _actor_class=parent)

        return _Options()

    def _remote(self, args=None, kwargs=None, **options) -> ActorHandle:
        """Ray's lower-level creation: arguments as a list and a dict, and the actor's
        options in full (``remote()`` passes the decorator's; none are merged in here)."""
        opts = opt_mod.validate(options, actor=True)
        return self._create(tuple(args or ()), dict(kwargs or {}), opts)

    def bind(self, *args, **kwargs):
        """A DAG node: this actor created with these arguments when the DAG is executed;
        bind its methods on the node (``node.method.bind(...)``, see ``shoal.dag``)."""
        from .dag.class_node import ClassNode

        return ClassNode(self._cls, args, kwargs, dict(self._default_options),
                         _actor_class=self)

    def _class_bytes(self) -> bytes:
        if self._pickled is None:
            try:
                data = serialization.dumps_function(self._cls)
            except Exception as e:
                raise TypeError(serialization.describe_unserializable(
                    self._cls, f"the actor class {self._name}", e)) from e
            check_oversized(data, self._name, "actor")
            self._pickled = data
        return self._pickled

    def _create(self, args, kwargs, opts) -> ActorHandle:
        from . import exceptions

        if self._init_args is not None:
            self._init_args.check(args, kwargs)
        opt_mod.check_reserved_resources(opts)
        default = opt_mod.actor_is_default(opts)  # holds no CPU, needs one to be placed
        resources, strategy, in_group = placement(
            opts, opt_mod.resource_demand(opts, default_cpus=0 if default else 1),
            self._name, actor=True)
        place = {**resources, "CPU": 1} if default and not in_group else None
        rt = runtime()
        data = self._class_bytes()
        spec_args, deps, hold = _prepare_args(rt, args, kwargs, f"{self._name}.__init__")
        for r in hold:  # creation arguments are kept by the actor's scope object instead
            rt.refs.remove_submitted(r._id)
        namespace = opts.get("namespace") or rt.namespace
        name = opts.get("name")
        lifetime = opts.get("lifetime")
        if lifetime is None:  # the job's default (JobConfig(default_actor_lifetime=...))
            lifetime = getattr(getattr(rt, "job_config", None), "_default_actor_lifetime", None)
        detached = lifetime == "detached"
        aid = os.urandom(16)
        public_opts = {
            "max_restarts": opts.get("max_restarts") or 0,
            "max_task_retries": opts.get("max_task_retries") or 0,
            "max_concurrency": opts.get("max_concurrency"),
            "concurrency_groups": opts.get("concurrency_groups"),
            "max_pending_calls": opts.get("max_pending_calls") or -1,
        }
        try:
            reply = rt.call(rt.head_conn.request("register_actor", {
                "aid": aid, "class_name": self._name, "name": name, "namespace": namespace,
                "detached": detached, "get_if_exists": bool(opts.get("get_if_exists")),
                "owner_id": rt.worker_id, "owner_address": rt.address, "job_id": rt.job_id,
                "methods": self._meta, "opts": public_opts,
            }))[0]
        except Exception as e:
            body = getattr(e, "body", {})
            if body.get("name_taken"):
                raise exceptions.ActorAlreadyExistsError(body["error"]) from None
            raise
        if reply["existing"]:
            meta = reply["meta"]
            return ActorHandle(reply["actor_id"], meta["class_name"], meta["methods"],
                               meta["opts"], None)
        # The handle's scope object: owned here, freed when no copy of the handle remains.
        scope_id = aid + _HANDLE_MARK
        entry = rt.refs.new_owned(scope_id)
        entry.actor_id = None if detached else aid
        from ._private.runtime.ownership import Value

        # The creation arguments live as long as the actor may need them (restarts).
        rt.refs.set_value(scope_id, Value(False, b"N.", [], size=2), hold)
        scope = rt.make_ref(scope_id)
        fid = hashlib.blake2b(data, digest_size=16).digest()
        spec = {
            "aid": aid, "fid": fid, "resources": resources, "place": place,
            "class_name": self._name,
            "kw": list(kwargs), "meta": self._meta, "opts": public_opts, "res": resources,
            "owner": rt.address, "owner_id": rt.worker_id,
            "strategy": strategy, "pg": in_group,
        }
        env_vars = merged_env_vars(rt.inherited_env, opts.get("runtime_env"))
        if env_vars:
            spec["env"] = env_vars
        env_spec, env_key = process_env(rt.inherited_runtime_env, opts.get("runtime_env"))
        if env_key:
            spec["env_key"], spec["runtime_env"] = env_key, env_spec
        rt.create_actor(spec, data, spec_args, deps)
        return ActorHandle(aid, self._name, self._meta, public_opts, scope)


_UNKNOWN = object()
# Methods every actor has, as in Ray: ``__ray_ready__()`` answers True once the actor is up,
# ``__ray_call__(fn, *args, **kwargs)`` runs ``fn(instance, *args, **kwargs)`` in it.
_BUILTIN_METHODS = {
    "__ray_terminate__": {"sig": []},
    "__ray_ready__": {"sig": []},
    "__ray_call__": {"sig": [["fn", 1, False], ["args", 2, False], ["kwargs", 4, False]]},
}


class ActorMethod:
    def __init__(self, handle: ActorHandle, name: str, opts: dict):
        self._handle = handle
        self._name = name
        self._opts = opts

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Instead of running "
                        f"'object.{self._name}()', try 'object.{self._name}.remote()'.")

    def remote(self, *args, **kwargs):
        return self._handle._call(self._name, args, kwargs, self._opts)

    def options(self, **options):
        valid = {"num_returns", "concurrency_group", "name", "max_task_retries",
                 "retry_exceptions", "enable_task_events", "_generator_backpressure_num_objects",
                 "tensor_transport"}
        if "_num_objects_per_yield" in options:
            raise ValueError("_num_objects_per_yield cannot be overridden per actor method "
                             "call. Use @ray.method(_num_objects_per_yield=...) instead.")
        for k in options:
            if k not in valid:
                raise ValueError(f"Invalid option keyword {k} for actor methods. Valid ones "
                                 f"are {sorted(v for v in valid if not v.startswith('_'))}.")
        if "num_returns" in options:
            opt_mod.check_num_returns(bool(self._opts.get("generator")), options["num_returns"])
        merged = {**self._opts, **options}
        method = self

        class _Options:
            def remote(self, *args, **kwargs):
                return method._handle._call(method._name, args, kwargs, merged)

            def bind(self, *args, **kwargs):
                """A DAG node calling the method with these options (see shoal.dag)."""
                return method._bind(args, kwargs, options)

        return _Options()

    def bind(self, *args, **kwargs):
        """A DAG node: this method called on this actor when the DAG is executed (a tuple
        of nodes, one per value, for a method with several return values)."""
        return self._bind(args, kwargs, {})

    def _bind(self, args, kwargs, options):
        from .dag.class_node import _bind_on_handle

        num_returns = self._opts.get("num_returns")
        if num_returns is None:
            num_returns = "streaming" if self._opts.get("generator") else 1
        return _bind_on_handle(self._handle, self._name, num_returns, args, kwargs, options)


class ActorHandle:
    """A handle to an actor: call its methods with ``handle.method.remote(...)``."""

    def __init__(self, actor_id: bytes, class_name: str, methods: dict, opts: dict, scope):
        self._actor_id_b = actor_id
        self._class_name = class_name
        self._methods = methods
        self._opts = opts
        self._scope = scope  # ObjectRef keeping the actor in scope, or None
        self._checkers: dict = {}  # method name -> ArgChecker (or None), built on first call

    @classmethod
    def _for_self(cls, actor_id: bytes, methods: dict, opts: dict) -> ActorHandle:
        return cls(actor_id, "", methods, opts, None)

    @property
    def _actor_id(self) -> ActorID:
        return ActorID(self._actor_id_b)

    def __getattr__(self, name: str):
        if name in _BUILTIN_METHODS:
            return ActorMethod(self, name, _BUILTIN_METHODS[name])
        if name.startswith("__"):
            raise AttributeError(name)
        methods = self.__dict__.get("_methods")
        if methods is None or name not in methods:
            raise AttributeError(f"'ActorHandle' object has no attribute '{name}': actor class "
                                 f"{self.__dict__.get('_class_name')!r} has no method "
                                 f"'{name}'")
        return ActorMethod(self, name, methods[name])

    def __reduce__(self):
        return (ActorHandle, (self._actor_id_b, self._class_name, self._methods, self._opts,
                              self._scope))

    def __repr__(self) -> str:
        return f"Actor({self._class_name}, {self._actor_id_b.hex()})"

    def __eq__(self, other) -> bool:
        return isinstance(other, ActorHandle) and other._actor_id_b == self._actor_id_b

    def __hash__(self) -> int:
        return hash(self._actor_id_b)

    def _call(self, method: str, args, kwargs, opts: dict):
        from . import exceptions

        checker = self._checkers.get(method, _UNKNOWN)
        if checker is _UNKNOWN:
            checker = self._checkers[method] = signature.checker(opts.get("sig"))
        if checker is not None:
            checker.check(args, kwargs)
        rt = runtime()
        nr = opts.get("num_returns")
        if nr is None:
            nr = "streaming" if opts.get("generator") else 1
        dynamic = nr == "dynamic"
        streaming = dynamic or nr == "streaming"
        q = rt.actor_submitter.queue(self._actor_id_b)
        limit = self._opts.get("max_pending_calls", -1)
        with q.lock:
            if limit and limit > 0 and q.made - q.finished >= limit:
                raise exceptions.PendingCallsLimitExceeded(
                    f"The actor {self._actor_id_b.hex()} has {q.made - q.finished} pending "
                    "calls, the "
                    f"limit set by max_pending_calls={limit}.")
            q.made += 1
        spec_args, deps, hold = _prepare_args(rt, args, kwargs, method)
        if self._scope is not None:
            hold.append(self._scope)
            rt.refs.add_submitted(self._scope._id)
        task_id = rt.ids.task_id()
        return_ids = [] if streaming else \
            [IdSource.return_id(task_id, i + 1) for i in range(nr)]
        for rid in return_ids:
            rt.refs.new_owned(rid, task_id, f"{self._class_name}.{method}")
        refs = [rt.make_ref(rid) for rid in return_ids]
        retries = opts.get("max_task_retries", self._opts.get("max_task_retries", 0))
        call = ActorCall(task_id, self._actor_id_b, method, spec_args, list(kwargs),
                         "streaming" if streaming else nr,
                         return_ids, retries if retries is not None else 0,
                         group=opts.get("concurrency_group"), hold=hold,
                         display_name=f"{self._class_name}.{method}")
        if streaming:
            out = _open_stream(rt, task_id, f"{self._class_name}.{method}", dynamic)
            rt.submit_actor_call(call, deps)
            return out
        rt.submit_actor_call(call, deps)
        if nr == 0:
            return None
        return refs[0] if nr == 1 else refs


def exit_actor() -> None:
    """Leave the current actor on purpose: no restart; its caller sees the actor's death."""
    from ._private.worker.actor_executor import ActorExit

    rt = current_runtime_or_none()
    if rt is None or getattr(rt, "actor_id", None) is None:
        raise TypeError("exit_actor API is called on a non-actor worker.")
    raise ActorExit()


# An actor's handle to itself is made by the worker, which may not import this module.
set_actor_handle_factory(ActorHandle._for_self)
