"""Errors of workers, actors, the system and scheduling (everything but objects'), raised
by the runtime and the workers and re-exported by :mod:`shoal.exceptions`.

Kept apart from :mod:`.error_base` (the base classes and ``RayTaskError``) and
:mod:`.object_errors` so that no module grows past what reads well in one file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .error_base import RayError, RayTaskError, publish


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

publish(
    LocalRayletDiedError, WorkerCrashedError, RayActorError, ActorDiedError,
    ActorUnavailableError, RaySystemError, AuthenticationError, UserCodeException,
    GetTimeoutError, PlasmaObjectNotAvailable, AsyncioActorExit, RuntimeEnvSetupError,
    TaskPlacementGroupRemoved, ActorPlacementGroupRemoved, PendingCallsLimitExceeded,
    TaskUnschedulableError, ActorUnschedulableError, ObjectRefStreamEndOfStreamError,
    StreamingGeneratorReplayInconsistentError, OufOfBandObjectRefSerializationException,
    RayChannelError, RayChannelTimeoutError, RayCgraphCapacityExceeded,
    RayDirectTransportError, UnserializableException, ActorAlreadyExistsError,
    ActorHandleNotFoundError,
)  # fmt: skip
