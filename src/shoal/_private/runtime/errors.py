"""Every error class the framework raises, in one namespace (``from . import errors``).

The classes are defined in :mod:`.error_base`, :mod:`.object_errors` and
:mod:`.system_errors`; this module gathers them for the runtime and the workers, and
:mod:`shoal.exceptions` (Ray's ``ray.exceptions``) re-exports the same objects.
"""

from __future__ import annotations

from .error_base import (  # noqa: F401 - gathered here
    CrossLanguageError,
    RayError,
    RayTaskError,
    TaskCancelledError,
)
from .object_errors import (  # noqa: F401
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
from .system_errors import (  # noqa: F401
    ActorAlreadyExistsError,
    ActorDiedError,
    ActorHandleNotFoundError,
    ActorPlacementGroupRemoved,
    ActorUnavailableError,
    ActorUnschedulableError,
    AsyncioActorExit,
    AuthenticationError,
    GetTimeoutError,
    LocalRayletDiedError,
    ObjectRefStreamEndOfStreamError,
    OufOfBandObjectRefSerializationException,
    PendingCallsLimitExceeded,
    PlasmaObjectNotAvailable,
    RayActorError,
    RayCgraphCapacityExceeded,
    RayChannelError,
    RayChannelTimeoutError,
    RayDirectTransportError,
    RaySystemError,
    RuntimeEnvSetupError,
    StreamingGeneratorReplayInconsistentError,
    TaskPlacementGroupRemoved,
    TaskUnschedulableError,
    UnserializableException,
    UserCodeException,
    WorkerCrashedError,
)

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
