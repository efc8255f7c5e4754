"""Error types raised by shoal, mirroring Ray's ``ray.exceptions`` module.

Each class keeps the name and base classes of its Ray counterpart, so that
``except ray.exceptions.X`` keeps working for programs that run with
``import shoal as ray``. The classes are defined in ``shoal._private.runtime`` (so that the
runtime raises them without importing this public module) and re-exported here as the very
same objects; each names this module as its ``__module__``, so reprs, tracebacks and
pickles read ``shoal.exceptions.X`` as before.
"""

from __future__ import annotations

from ._private.runtime.errors import (
    RAY_EXCEPTION_TYPES,
    ActorAlreadyExistsError,
    ActorDiedError,
    ActorHandleNotFoundError,
    ActorPlacementGroupRemoved,
    ActorUnavailableError,
    ActorUnschedulableError,
    AsyncioActorExit,
    AuthenticationError,
    CrossLanguageError,
    GetTimeoutError,
    LocalRayletDiedError,
    NodeDiedError,
    ObjectFetchTimedOutError,
    ObjectFreedError,
    ObjectLostError,
    ObjectReconstructionFailedError,
    ObjectReconstructionFailedLineageEvictedError,
    ObjectReconstructionFailedMaxAttemptsExceededError,
    ObjectRefStreamEndOfStreamError,
    ObjectStoreFullError,
    OufOfBandObjectRefSerializationException,
    OutOfDiskError,
    OutOfMemoryError,
    OwnerDiedError,
    PendingCallsLimitExceeded,
    PlasmaObjectNotAvailable,
    RayActorError,
    RayCgraphCapacityExceeded,
    RayChannelError,
    RayChannelTimeoutError,
    RayDirectTransportError,
    RayError,
    RaySystemError,
    RayTaskError,
    ReferenceCountingAssertionError,
    RpcError,
    RuntimeEnvSetupError,
    StreamingGeneratorReplayInconsistentError,
    TaskCancelledError,
    TaskPlacementGroupRemoved,
    TaskUnschedulableError,
    UnserializableException,
    UserCodeException,
    WorkerCrashedError,
)

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
