"""The head's actor class blobs: each distinct pickled class held once, by its sha256.

Every creation spec carries its class's pickled bytes; 100 actors of a class whose pickle is
1 MiB would cost 100 MiB in the head's memory and as much again in its SQLite file. The actor
table holds a class here for each spec that uses it and releases it when the spec goes (the
actor died: its spec is dropped). The blob lives while some spec uses it.

The changes since the last :meth:`ClassBlobs.take_changes` say what the durable copy must do:
store the blobs that were new, delete those no spec uses any more. Pure: no I/O here.
"""

from __future__ import annotations

import hashlib


def blob_key(data) -> bytes:
    """The name of a blob: the sha256 of its bytes."""
    return hashlib.sha256(data).digest()


class ClassBlobs:
    def __init__(self) -> None:
        self._blobs: dict[bytes, list] = {}  # key -> [bytes, number of holders]
        self._added: dict[bytes, bytes] = {}  # held for the first time, not stored yet
        self._removed: set[bytes] = set()  # no holder left, maybe still stored

    def hold(self, data, stored: bool = False) -> tuple[bytes, bytes]:
        """One more holder of ``data``: its key and the one shared copy of its bytes.
        ``stored``: the durable copy has it already (read back from it)."""
        key = blob_key(data)
        held = self._blobs.get(key)
        if held is None:
            held = self._blobs[key] = [bytes(data), 0]
            if key in self._removed:  # released but not yet deleted: still stored
                self._removed.discard(key)
            elif not stored:
                self._added[key] = held[0]
        held[1] += 1
        return key, held[0]

    def release(self, key: bytes) -> None:
        """One holder of ``key`` fewer; the blob goes with its last holder."""
        held = self._blobs.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] <= 0:
            del self._blobs[key]
            if self._added.pop(key, None) is None:  # never stored: nothing to delete
                self._removed.add(key)

    def get(self, key: bytes) -> bytes | None:
        held = self._blobs.get(key)
        return held[0] if held is not None else None

    def holders(self, key: bytes) -> int:
        held = self._blobs.get(key)
        return held[1] if held is not None else 0

    def take_changes(self) -> tuple[dict[bytes, bytes], set[bytes]]:
        """``(added, removed)`` since the last call: blobs to store, keys to delete."""
        out = self._added, self._removed
        self._added, self._removed = {}, set()
        return out

    def __len__(self) -> int:
        return len(self._blobs)

    def __contains__(self, key: bytes) -> bool:
        return key in self._blobs

    def total_bytes(self) -> int:
        return sum(len(b) for b, _ in self._blobs.values())
