"""Error types raised by shoal, mirroring Ray's ``ray.exceptions`` module.

Each class keeps the name and base classes of its Ray counterpart, so that
``except ray.exceptions.X`` keeps working for programs that run with
``import shoal as ray``.  Errors cross process boundaries, so every class here
pickles without re-running ``__init__``: it is rebuilt from its class, ``args``
and ``__dict__``, which keeps all fields whatever the constructor signature.
"""

from __future__ import annotations

import copyreg
import logging
import os
import types
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "RayError", "CrossLanguageError", "TaskCancelledError", "RayTaskError",
    "LocalRayletDiedError", "WorkerCrashedError", "RayActorError", "ActorDiedError",
    "ActorUnavailableError", "RaySystemError", "AuthenticationError", "UserCodeException",
    "ObjectStoreFullError", "OutOfDiskError", "OutOfMemoryError", "NodeDiedError", "RpcError",
    "ObjectLostError", "ObjectFetchTimedOutError", "ReferenceCountingAssertionError",
    "ObjectFreedError", "OwnerDiedError", "ObjectReconstructionFailedError",
    "ObjectReconstructionFailedMaxAttemptsExceededError",
    "ObjectReconstructionFailedLineageEvictedError", "GetTimeoutError",
    "PlasmaObjectNotAvailable", "AsyncioActorExit", "RuntimeEnvSetupError",
    "TaskPlacementGroupRemoved", "ActorPlacementGroupRemoved", "PendingCallsLimitExceeded",
    "TaskUnschedulableError", "ActorUnschedulableError", "ObjectRefStreamEndOfStreamError",
    "StreamingGeneratorReplayInconsistentError", "OufOfBandObjectRefSerializationException",
    "RayChannelError", "RayChannelTimeoutError", "RayCgraphCapacityExceeded",
    "RayDirectTransportError", "UnserializableException", "ActorAlreadyExistsError",
    "ActorHandleNotFoundError", "RAY_EXCEPTION_TYPES",
]


def _rebuild_exception(cls: type, args: tuple, state: dict | None) -> BaseException:
    """Recreate an exception from class, ``args`` and ``__dict__``, skipping ``__init__``."""
    try:
        obj = cls.__new__(cls, *args)
    except Exception:
        obj = cls.__new__(cls)
    try:
        obj.args = args
    except Exception:
        pass
    if state:
        obj.__dict__.update(state)
    return obj


class _PortableException:
    """Pickles a foreign exception so that unpickling never calls its ``__init__``.

    Default exception pickling calls ``cls(*args)``, which fails for classes whose
    ``__init__`` takes other arguments than those stored in ``args``.
    """

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __reduce__(self) -> tuple:
        exc = self.exc
        return _rebuild_exception, (type(exc), exc.args, dict(getattr(exc, "__dict__", {})))


def _portable(value: Any, memo: dict[int, _PortableException]) -> Any:
    cls = type(value)
    if (
        isinstance(value, BaseException)
        and cls.__reduce__ is BaseException.__reduce__
        and cls.__reduce_ex__ is BaseException.__reduce_ex__
        and cls.__setstate__ is BaseException.__setstate__
        and cls not in copyreg.dispatch_table
    ):
        return memo.setdefault(id(value), _PortableException(value))
    return value


class RayError(Exception):
    """Base class of every error raised by the framework itself."""

    _default_msg = ""  # shown by str() when the error was created without a message

    def __str__(self) -> str:
        return super().__str__() or self._default_msg

    def __reduce__(self) -> tuple:
        memo: dict[int, _PortableException] = {}
        args = tuple(_portable(a, memo) for a in self.args)
        state = {k: _portable(v, memo) for k, v in self.__dict__.items()}
        return _rebuild_exception, (type(self), args, state)


class CrossLanguageError(RayError):
    """An error raised by a task or actor written in another language (carries a message)."""


class TaskCancelledError(RayError):
    """The task, or a task it depends on, was cancelled (e.g. by ``cancel()``)."""

    def __init__(self, task_id: Any = None, error_message: str | None = None) -> None:
        self.task_id = task_id
        self.error_message = error_message

    def __str__(self) -> str:
        parts = [f"Task: {self.task_id} was cancelled."] if self.task_id is not None else []
        if self.error_message:
            parts.append(self.error_message)
        return " ".join(parts) or "This task or one of its dependencies was cancelled."


def _dumps(obj: Any) -> bytes:
    try:
        import cloudpickle as pickler
    except ImportError:  # pragma: no cover - cloudpickle is a declared dependency
        import pickle as pickler
    return pickler.dumps(obj)


# Traceback frames of the framework's own machinery are hidden from users.
_INTERNAL_FRAME_MARKERS = ("shoal/_private/", "shoal\\_private\\")
_FIELD_DESCRIPTORS = (types.MemberDescriptorType, types.GetSetDescriptorType)
# Cause class -> its dual class, or the reason why one cannot be built.
_DUAL_CLASSES: dict[type, type | str] = {}


class RayTaskError(RayError):
    """A remote task or actor method raised an exception while running.

    The error is stored as the task's result; ``get`` raises
    :meth:`as_instanceof_cause`, which is also an instance of the original
    exception's class, so ``except ValueError`` still matches.

    Attributes:
        function_name: Name of the task or method that failed.
        traceback_str: Formatted traceback captured in the worker.
        cause: The exception raised by user code (replaced by a plain
            :class:`RayError` if it cannot be serialized).
    """

    def __init__(
        self, function_name: str, traceback_str: str, cause: BaseException | None,
        proctitle: str | None = None, pid: int | None = None, ip: str | None = None,
        actor_repr: str | None = None, actor_id: str | None = None,
    ) -> None:  # fmt: skip
        self.function_name = function_name
        self.traceback_str = traceback_str or ""
        self.proctitle = proctitle or f"ray::{function_name}"
        self.pid = pid if pid is not None else os.getpid()
        self.ip = ip
        self.actor_repr = actor_repr
        self.actor_id = self._actor_id = actor_id
        self.cause = cause
        if cause is not None:
            try:
                _dumps(cause)
            except Exception as e:
                name = f"{type(cause).__module__}.{type(cause).__qualname__}"
                logger.warning("The cause of a RayTaskError (%s) isn't serializable: %s", name, e)
                self.cause = RayError(
                    f"Exception {name} isn't serializable: {e}\n"
                    f"Original exception:\n{self.traceback_str}"
                )
        self.args = (
            function_name, traceback_str, self.cause, proctitle, pid, ip, actor_repr, actor_id
        )

    def _user_cause(self) -> Any:
        cause = self.cause
        while isinstance(cause, RayTaskError):  # a task re-raised another task's error
            cause = cause.cause
        return cause

    def make_dual_exception_instance(self) -> RayTaskError:
        """Return an error that is an instance of RayTaskError *and* of the cause's class.

        Raises TypeError if the cause's class cannot be subclassed.
        """
        user = self._user_cause()
        if not isinstance(user, BaseException):
            raise TypeError(f"the cause {user!r} is not an exception")
        dual_cls = _dual_class(type(user))
        try:
            try:
                obj = dual_cls.__new__(dual_cls, *user.args)
            except Exception:
                obj = dual_cls.__new__(dual_cls)
        except Exception as e:
            raise TypeError(f"cannot instantiate {dual_cls.__name__}: {e}") from None
        obj.__dict__.update(self.__dict__)
        obj.__dict__.update(getattr(user, "__dict__", {}))  # the user's own fields win
        obj.__dict__.update(cause=self.cause, _ray_task_error=self)
        for klass in type(user).__mro__[:-2]:  # C-level fields and slots, e.g. OSError.errno
            for name, attr in vars(klass).items():
                if not name.startswith("__") and isinstance(attr, _FIELD_DESCRIPTORS):
                    try:
                        setattr(obj, name, getattr(user, name))
                    except Exception:
                        pass
        return obj

    def as_instanceof_cause(self) -> RayTaskError:
        """Return an error matching ``except <cause class>``, or ``self`` if impossible.

        The result subclasses both RayTaskError and the cause's class, carries the
        cause's attributes, and its ``str()`` shows the remote traceback.
        """
        user = self._user_cause()
        if not isinstance(user, BaseException) or isinstance(self, type(user)):
            return self
        try:
            return self.make_dual_exception_instance()
        except Exception as e:
            logger.warning(
                "Exception type %s can't be combined with RayTaskError, so it is raised as a "
                "plain RayTaskError; `.cause` holds the original error (%s).",
                type(user).__qualname__, e,
            )  # fmt: skip
            return self

    def __str__(self) -> str:
        title = self.proctitle
        if self.function_name and self.function_name not in title:
            title = f"{title} {self.function_name}"
        details = [f"pid={self.pid}"] if self.pid is not None else []
        if self.ip:
            details.append(f"ip={self.ip}")
        if self.actor_repr:
            details += [f"actor_id={self._actor_id}", f"repr={self.actor_repr}"]
        out = [f"{title}() ({', '.join(details)})" if details else f"{title}()"]
        lines = self.traceback_str.lstrip("\n").rstrip().splitlines()
        if lines and lines[0].startswith("Traceback "):
            lines = lines[1:]  # replaced by the header line above
        hiding = False
        for line in lines:
            if line.startswith("  File ") and any(m in line for m in _INTERNAL_FRAME_MARKERS):
                hiding = True
            elif not (hiding and line.startswith("    ")):
                hiding = False
                out.append(line)
        if not lines and self.cause is not None:
            out.append(f"{type(self.cause).__name__}: {self.cause}")
        return "\n".join(out)


class _DualTaskError(RayTaskError):
    """Behaviour shared by the dynamic ``RayTaskError(<Cause>)`` classes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # instances are assembled by RayTaskError.make_dual_exception_instance

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes missing on the instance (e.g. the cause's slots).
        cause = self.__dict__.get("cause")
        if cause is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(cause, name)

    def __str__(self) -> str:
        inner = self.__dict__.get("_ray_task_error")
        return str(inner) if inner is not None else BaseException.__str__(self)

    def __reduce__(self) -> tuple:
        inner = self.__dict__.get("_ray_task_error")
        return (_restore_dual, (inner,)) if inner is not None else super().__reduce__()


def _restore_dual(task_error: RayTaskError) -> RayTaskError:
    return task_error.as_instanceof_cause()


def _dual_class(cause_cls: type) -> type:
    """Return the cached class ``RayTaskError(<cause_cls>)``; TypeError if impossible."""
    dual = _DUAL_CLASSES.get(cause_cls)
    if dual is None:
        name = f"RayTaskError({cause_cls.__name__})"

        def body(ns: dict[str, Any]) -> None:
            ns.update(__module__=__name__, __qualname__=name, _ray_dual_of=cause_cls)

        try:
            dual = types.new_class(name, (_DualTaskError, cause_cls), exec_body=body)
        except Exception as e:  # layout/MRO conflict, metaclass or __init_subclass__ refusal
            dual = f"{type(e).__name__}: {e}"
        _DUAL_CLASSES[cause_cls] = dual
    if isinstance(dual, str):
        raise TypeError(f"{cause_cls.__qualname__} cannot be subclassed ({dual})")
    return dual


class LocalRayletDiedError(RayError):
    """The node-local scheduler process (the "raylet") serving this task died."""

    _default_msg = "The local raylet of this task died; see the node's logs for details."


class WorkerCrashedError(RayError):
    """The worker process died unexpectedly while it was running the task."""

    _default_msg = "The worker died unexpectedly while running this task; see the worker logs."


class RayActorError(RayError):
    """An actor could not finish a method call.

    Raised as :class:`ActorDiedError` (the actor is dead) or
    :class:`ActorUnavailableError` (it may come back). ``actor_id`` is the
    actor's hex ID when known, ``error_msg`` the full message.
    """

    BASE_ERROR_MSG = "The actor experienced an error before finishing this task."

    def __init__(
        self, actor_id: str | None = None, error_msg: str = BASE_ERROR_MSG,
        actor_init_failed: bool = False, preempted: bool = False,
    ) -> None:  # fmt: skip
        self.actor_id = actor_id
        self.error_msg = error_msg
        self._actor_init_failed = actor_init_failed
        self._preempted = preempted

    def __str__(self) -> str:
        return self.error_msg

    @property
    def actor_init_failed(self) -> bool:
        """True if the actor's ``__init__`` raised."""
        return self._actor_init_failed

    @property
    def preempted(self) -> bool:
        """True if the actor died because its node was preempted."""
        return self._preempted

    @staticmethod
    def from_task_error(task_error: RayTaskError) -> ActorDiedError:
        return ActorDiedError(task_error)


def _field(ctx: Any, key: str) -> Any:
    return ctx.get(key) if isinstance(ctx, Mapping) else getattr(ctx, key, None)


class ActorDiedError(RayActorError):
    """The actor is dead, so the call failed (or was sent to a dead actor).

    ``cause`` is ``None`` (reason unknown), a message string, the
    :class:`RayTaskError` raised by the actor's ``__init__``, or a death context
    (mapping or object) with fields among ``class_name``, ``actor_id``, ``pid``,
    ``name``, ``ray_namespace``, ``node_ip_address``, ``error_message``,
    ``never_started`` and ``preempted``.
    """

    BASE_ERROR_MSG = "The actor died unexpectedly before finishing this task."

    def __init__(
        self, cause: Any = None, *, actor_id: str | None = None, preempted: bool = False
    ) -> None:
        error_msg, init_failed = self.BASE_ERROR_MSG, False
        if isinstance(cause, RayTaskError):
            init_failed = True
            actor_id = actor_id or cause._actor_id
            error_msg = f"The actor died because of an error raised in its creation task, {cause}"
        elif isinstance(cause, str):
            error_msg = cause
        elif cause is not None:
            ctx_id = _field(cause, "actor_id")
            actor_id = actor_id or (ctx_id.hex() if isinstance(ctx_id, bytes) else ctx_id)
            lines = [self.BASE_ERROR_MSG]
            for key, label in (("class_name", "class_name"), ("actor_id", "actor_id"),
                               ("pid", "pid"), ("name", "name"), ("ray_namespace", "namespace"),
                               ("node_ip_address", "ip")):  # fmt: skip
                value = actor_id if key == "actor_id" else _field(cause, key)
                if value:
                    lines.append(f"\t{label}: {value}")
            if _field(cause, "error_message"):
                lines.append(str(_field(cause, "error_message")))
            if _field(cause, "never_started"):
                lines.append("The actor never ran - it was cancelled before it started running.")
            preempted = preempted or bool(_field(cause, "preempted"))
            error_msg = "\n".join(lines)
        super().__init__(actor_id, error_msg, init_failed, preempted)


class ActorUnavailableError(RayActorError):
    """The actor is unreachable for now (e.g. restarting); the call may or may not have run."""

    def __init__(self, error_message: str, actor_id: bytes | str | None = None) -> None:
        if isinstance(actor_id, bytes):
            actor_id = actor_id.hex()
        super().__init__(
            actor_id,
            f"The actor {actor_id} is unavailable: {error_message}. "
            "The task may or may not have been executed on the actor.",
        )


class RaySystemError(RayError):
    """The framework hit an internal system error (e.g. a daemon was killed)."""

    def __init__(self, client_exc: Any, traceback_str: str | None = None) -> None:
        self.client_exc = client_exc
        self.traceback_str = traceback_str

    def __str__(self) -> str:
        msg = f"System error: {self.client_exc}"
        return f"{msg}\ntraceback: {self.traceback_str}" if self.traceback_str else msg


class AuthenticationError(RayError):
    """A request was rejected because the client's token is missing or wrong."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.__suppress_context__ = True
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message}. Make sure this client uses the same token as the cluster."


class UserCodeException(RayError):
    """Wraps an exception raised by user code; retry policies look at its cause."""


def _init_message(self: Any, message: str = "") -> None:
    self.message = message
    BaseException.__init__(self, message)


def _str_with_hint(self: Any) -> str:
    return "\n".join(part for part in (self.message, self._hint) if part)


from ._private.runtime.object_errors import (  # noqa: E402 - needs RayError above
    NodeDiedError,
    ObjectFetchTimedOutError,
    ObjectFreedError,
    ObjectLostError,
    ObjectReconstructionFailedError,
    ObjectReconstructionFailedLineageEvictedError,
    ObjectReconstructionFailedMaxAttemptsExceededError,
    ObjectStoreFullError,
    OutOfDiskError,
    OutOfMemoryError,
    OwnerDiedError,
    ReferenceCountingAssertionError,
    RpcError,
)


class GetTimeoutError(RayError, TimeoutError):
    """A ``get`` (or similar blocking call) did not finish within its timeout."""


class PlasmaObjectNotAvailable(RayError):
    """The object did not become available in the object store before the timeout."""


class AsyncioActorExit(RayError):
    """Raised inside an async actor to make it exit on purpose (``exit_actor()``)."""


class RuntimeEnvSetupError(RayError):
    """The task's or actor's runtime environment could not be set up."""

    def __init__(self, error_message: str | None = None) -> None:
        self.error_message = error_message

    def __str__(self) -> str:
        msg = "Failed to set up the runtime environment."
        return f"{msg}\n{self.error_message}" if self.error_message else msg


class TaskPlacementGroupRemoved(RayError):
    """The placement group the task was scheduled into has been removed."""

    _default_msg = "The placement group of this task has been removed."


class ActorPlacementGroupRemoved(RayError):
    """The placement group the actor was scheduled into has been removed."""

    _default_msg = "The placement group of this actor has been removed."


class PendingCallsLimitExceeded(RayError):
    """Too many calls are queued on an actor handle (its ``max_pending_calls``)."""


class TaskUnschedulableError(RayError):
    """The task can never be scheduled (e.g. its node-affinity target is dead)."""

    _what = "task"

    def __init__(self, error_message: str) -> None:
        self.error_message = error_message

    def __str__(self) -> str:
        return f"The {self._what} is not schedulable: {self.error_message}"


class ActorUnschedulableError(RayError):
    """The actor can never be scheduled (e.g. its node-affinity target is dead)."""

    _what = "actor"
    __init__ = TaskUnschedulableError.__init__
    __str__ = TaskUnschedulableError.__str__


class ObjectRefStreamEndOfStreamError(RayError):
    """A streaming generator has no more ObjectRefs to hand out."""


class StreamingGeneratorReplayInconsistentError(RaySystemError):
    """A retried streaming generator yielded a different number of items than before."""


class OufOfBandObjectRefSerializationException(RayError):
    """An ObjectRef was serialized out of band (e.g. pickled by hand); Ray's own spelling."""


class RayChannelError(RaySystemError):
    """A system error in the experimental channel layer (compiled graphs)."""


class RayChannelTimeoutError(RayChannelError, TimeoutError):
    """A channel operation of a compiled graph timed out."""


class RayCgraphCapacityExceeded(RaySystemError):
    """A compiled graph channel's buffer is full."""


class RayDirectTransportError(RaySystemError):
    """A direct (out-of-object-store) transfer between workers failed."""


class UnserializableException(RayError):
    """A serialized exception could not be deserialized; its captured text is shown instead."""

    def __init__(self, original_stack_trace: str) -> None:
        self._original_stack_trace = original_stack_trace

    def __str__(self) -> str:
        return f"Failed to deserialize exception. Original exception:\n{self._original_stack_trace}"


class ActorAlreadyExistsError(ValueError, RayError):
    """A named actor with this name already exists (also a ValueError, as in Ray)."""

    def __init__(self, error_message: str) -> None:
        BaseException.__init__(self, error_message)
        self.error_message = error_message

    def __str__(self) -> str:
        return self.error_message


class ActorHandleNotFoundError(ValueError, RayError):
    """The actor handle is unknown, e.g. it belongs to a previous session."""

    __init__ = ActorAlreadyExistsError.__init__
    __str__ = ActorAlreadyExistsError.__str__


RAY_EXCEPTION_TYPES: list[type[BaseException]] = [
    PlasmaObjectNotAvailable, RayError, RayTaskError, WorkerCrashedError, RayActorError,
    ObjectStoreFullError, ObjectLostError, ObjectFetchTimedOutError,
    ReferenceCountingAssertionError, ObjectReconstructionFailedError,
    ObjectReconstructionFailedMaxAttemptsExceededError,
    ObjectReconstructionFailedLineageEvictedError, OwnerDiedError, GetTimeoutError,
    AsyncioActorExit, RuntimeEnvSetupError, TaskPlacementGroupRemoved,
    ActorPlacementGroupRemoved, PendingCallsLimitExceeded, LocalRayletDiedError,
    TaskUnschedulableError, ActorDiedError, ActorUnschedulableError, ActorUnavailableError,
    RayChannelError, RayChannelTimeoutError, OufOfBandObjectRefSerializationException,
    RayCgraphCapacityExceeded, UnserializableException, ActorAlreadyExistsError,
    ActorHandleNotFoundError, AuthenticationError,
]  # fmt: skip
