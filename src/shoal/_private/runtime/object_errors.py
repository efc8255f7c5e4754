"""Errors about objects and memory: lost, freed or unreachable objects, a full store.

Re-exported by :mod:`shoal.exceptions` (and named as living there, so that pickles and
``except shoal.exceptions.ObjectLostError`` work as before); kept apart from
:mod:`.error_base` and :mod:`.system_errors` so that no module grows past what reads well
in one file.
"""

from __future__ import annotations

from typing import Any

from .error_base import RayError, _init_message, _str_with_hint, publish


class ObjectStoreFullError(RayError):
    """An object could not be stored: the object store stayed full after retries."""

    _hint = "The object store is full of objects still in use; free references or enlarge it."
    __init__ = _init_message
    __str__ = _str_with_hint


class OutOfDiskError(RayError):
    """An object could not be stored: the object store and the spill disk are both full."""

    _hint = "The object store is full and the local disk is over its usage limit."
    __init__ = _init_message
    __str__ = _str_with_hint


class OutOfMemoryError(RayError):
    """The node ran low on memory, so the task or actor was killed to free some."""

    _hint = ""
    __init__ = _init_message
    __str__ = _str_with_hint


class NodeDiedError(RayError):
    """The node is dead or cannot be reached."""

    _hint = ""
    __init__ = _init_message
    __str__ = _str_with_hint


class RpcError(RayError):
    """The underlying RPC layer reported an error."""

    def __init__(self, message: str, rpc_code: int | None = None) -> None:
        self.message = message
        self.rpc_code = rpc_code

    def __str__(self) -> str:
        return self.message


class ObjectLostError(RayError):
    """An object's value is gone from distributed memory (e.g. its node failed).

    ``object_ref_hex`` is the object's hex ID; ``owner_address`` the owning
    worker's address and ``call_site`` where the ObjectRef was made, if known.
    """

    _reason = "All copies of the object were lost, most likely because of a node failure."

    def __init__(self, object_ref_hex: str, owner_address: Any = "", call_site: str = "") -> None:
        self.object_ref_hex = object_ref_hex
        self.owner_address = owner_address
        self.call_site = call_site or ""

    def _base_str(self) -> str:
        msg = f"Failed to retrieve object {self.object_ref_hex}."
        return f"{msg} The ObjectRef was created at: {self.call_site}" if self.call_site else msg

    def __str__(self) -> str:
        return f"{self._base_str()}\n\n{self._reason}"


class ObjectFetchTimedOutError(ObjectLostError):
    """Fetching the object timed out because no copy of it could be located."""

    _reason = "Fetching the object timed out: no node holding a copy could be found."


class ReferenceCountingAssertionError(ObjectLostError, AssertionError):
    """The object was deleted although a reference to it still existed (a bug)."""

    _reason = "Reference counting already deleted this object; this should not happen."


class ObjectFreedError(ObjectLostError):
    """The application freed the object explicitly while it was still in use."""

    _reason = "The object was freed explicitly; only free objects that are no longer needed."


class OwnerDiedError(ObjectLostError):
    """The worker owning the object (the one that created its ObjectRef) exited."""

    _reason = (
        "The object's owner (the worker that created the ObjectRef with `.remote()` "
        "or `put()`) has exited; check that worker's logs."
    )


class ObjectReconstructionFailedError(ObjectLostError):
    """The lost object could not be recomputed from its lineage.

    ``reason`` is an optional short code, ``reason_message`` an optional text
    replacing the default explanation.
    """

    _reason = (
        "The object cannot be reconstructed, e.g. because it was created by `put()` "
        "or by an actor, or its ObjectRef was created by another worker."
    )

    def __init__(
        self, object_ref_hex: str, owner_address: Any = "", call_site: str = "", *,
        reason: str | None = None, reason_message: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(object_ref_hex, owner_address, call_site)
        self.reason = reason
        self.reason_message = reason_message

    def __str__(self) -> str:
        tag = f"[{self.reason}] " if self.reason else ""
        return f"{self._base_str()}\n\n{tag}{self.reason_message or self._reason}"


class ObjectReconstructionFailedMaxAttemptsExceededError(ObjectReconstructionFailedError):
    """Reconstruction gave up because the task's retry limit was reached."""

    _reason = (
        "The object cannot be reconstructed: the task's maximum number of retries "
        "was reached. Raise it with `@ray.remote(max_retries=...)`."
    )


class ObjectReconstructionFailedLineageEvictedError(ObjectReconstructionFailedError):
    """Reconstruction is impossible because the lineage was evicted to save memory."""

    _reason = "The object cannot be reconstructed: its lineage was evicted to save memory."


publish(
    ObjectStoreFullError, OutOfDiskError, OutOfMemoryError, NodeDiedError, RpcError,
    ObjectLostError, ObjectFetchTimedOutError, ReferenceCountingAssertionError,
    ObjectFreedError, OwnerDiedError, ObjectReconstructionFailedError,
    ObjectReconstructionFailedMaxAttemptsExceededError,
    ObjectReconstructionFailedLineageEvictedError,
)  # fmt: skip
