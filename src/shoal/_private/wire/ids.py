"""Identifiers: fixed-size byte strings with Ray's sizes and a hex form.

Sizes follow Ray so that users who print or store ids see familiar shapes:
JobID 4, ActorID 16, TaskID 24, ObjectID 28 (task id + 4-byte index), NodeID and WorkerID 28.
"""

from __future__ import annotations

import itertools
import os
import struct


class BaseID:
    __slots__ = ("_b",)
    SIZE = 28

    def __init__(self, b: bytes):
        if len(b) != self.SIZE:
            raise ValueError(f"{type(self).__name__} needs {self.SIZE} bytes, got {len(b)}")
        self._b = bytes(b)

    @classmethod
    def size(cls) -> int:
        return cls.SIZE

    @classmethod
    def from_random(cls):
        return cls(os.urandom(cls.SIZE))

    @classmethod
    def from_hex(cls, h: str):
        return cls(bytes.fromhex(h))

    @classmethod
    def nil(cls):
        return cls(b"\xff" * cls.SIZE)

    def is_nil(self) -> bool:
        return self._b == b"\xff" * self.SIZE

    def binary(self) -> bytes:
        return self._b

    def hex(self) -> str:
        return self._b.hex()

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._b == self._b

    def __hash__(self) -> int:
        return hash(self._b)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hex()})"

    def __reduce__(self):
        return (type(self), (self._b,))


class JobID(BaseID):
    __slots__ = ()
    SIZE = 4

    @classmethod
    def from_int(cls, n: int) -> JobID:
        return cls(struct.pack(">I", n))

    def int(self) -> int:
        return struct.unpack(">I", self._b)[0]


class ActorID(BaseID):
    __slots__ = ()
    SIZE = 16


# An actor handle's scope object is the actor's id followed by this mark (28 bytes, an
# object id): the driver's handle owns it, and the state API shows it as the handle.
ACTOR_HANDLE_MARK = b"\x00" * 8 + b"ACTR"


class TaskID(BaseID):
    __slots__ = ()
    SIZE = 24


class ObjectID(BaseID):
    __slots__ = ()
    SIZE = 28

    def task_id(self) -> TaskID:
        return TaskID(self._b[:24])

    def index(self) -> int:
        return struct.unpack(">I", self._b[24:])[0]


class NodeID(BaseID):
    __slots__ = ()
    SIZE = 28


class WorkerID(BaseID):
    __slots__ = ()
    SIZE = 28


class PlacementGroupID(BaseID):
    __slots__ = ()
    SIZE = 18


class IdSource:
    """Cheap unique ids for one process: a random prefix and a counter.

    Task ids are 16 random bytes of this process followed by an 8-byte counter; object ids add
    a 4-byte index (1.. for returns, 0x80000000|n for puts).
    """

    def __init__(self) -> None:
        self._prefix = os.urandom(16)
        self._counter = itertools.count(1)

    def task_id(self) -> bytes:
        return self._prefix + next(self._counter).to_bytes(8, "big")

    @staticmethod
    def return_id(task_id: bytes, index: int) -> bytes:
        return task_id + index.to_bytes(4, "big")

    def put_id(self) -> bytes:
        return self.task_id() + (0x80000000).to_bytes(4, "big")


class ActorClassID(BaseID):
    __slots__ = ()
    SIZE = 28


class FunctionID(BaseID):
    __slots__ = ()
    SIZE = 28


class UniqueID(BaseID):
    __slots__ = ()
    SIZE = 28


class ClusterID(BaseID):
    __slots__ = ()
    SIZE = 28
