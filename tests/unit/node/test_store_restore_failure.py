"""A restore whose copy back fails for real (the spill file is gone, or unreadable) gives
back its reservation and leaves no partial segment (issue 13 item 14): before, three failed
restores left the store "full" of "pinned" bytes until the daemon restarted."""

from __future__ import annotations

import asyncio
import os
import types

import pytest

from shoal._private.node.store import NodeStore
from shoal._private.node.store_state import ObjectStoreFull

SIZE = 400


def _store(tmp_path, monkeypatch) -> NodeStore:
    monkeypatch.setenv("SHOAL_OBJECT_STORE_FULL_TIMEOUT_S", "2")
    monkeypatch.setenv("SHOAL_SPILL_DIR", str(tmp_path / "spill"))
    daemon = types.SimpleNamespace(session_dir=str(tmp_path),
                                   transfer=types.SimpleNamespace(forget_local=lambda p: None))
    return NodeStore(daemon, 1000)


async def _spilled(store: NodeStore, tmp_path, n: int) -> list[str]:
    paths = []
    for i in range(n):
        await store.reserve(SIZE)
        path = str(tmp_path / f"seg{i}")
        with open(path, "wb") as f:
            f.write(b"x" * SIZE)
        os.chmod(path, 0o600)  # as the store's own segments are
        store.seal(path, SIZE, b"owner")
        paths.append(path)
    while store._moving:  # the spills the later reservations started
        await asyncio.gather(*list(store._moving))
    return [p for p in paths if store.spill_path_of(p)]


def test_failed_restores_release_their_reservation(tmp_path, monkeypatch):
    async def main():
        store = _store(tmp_path, monkeypatch)
        spilled = await _spilled(store, tmp_path, 5)
        assert len(spilled) >= 3
        for path in spilled[:3]:
            os.unlink(store.spill_path_of(path))  # the spill file is lost: the copy fails
            with pytest.raises(OSError):
                await store.restore(path)
            assert not os.path.exists(path)  # no partial segment left behind
            assert store.state.reserved == 0
        # The room is there: a writer of nearly the whole capacity gets it (by spilling).
        for path in list(store.state.entries):
            store.free(path)
        await store.reserve(1000)
        assert store.state.reserved == 1000

    asyncio.run(main())


def test_restore_of_an_object_freed_meanwhile_holds_no_room(tmp_path, monkeypatch):
    async def main():
        store = _store(tmp_path, monkeypatch)
        path = (await _spilled(store, tmp_path, 4))[0]
        real_copy = NodeStore.restore.__globals__["copy_exclusive"]

        def copy_then_free(src, directory, name):
            file = real_copy(src, directory, name)
            if os.path.join(directory, name) == path:  # the restore's copy, not a spill's
                asyncio.run_coroutine_threadsafe(_free(store, path), loop).result()
            return file

        loop = asyncio.get_running_loop()
        monkeypatch.setattr("shoal._private.node.store.copy_exclusive", copy_then_free)
        with pytest.raises(FileNotFoundError):  # the object is gone: a reader is told so
            await store.restore(path)
        assert path not in store.state.entries and not os.path.exists(path)
        assert store.state.reserved == 0 and store.state.spilled_bytes == sum(
            e.size for e in store.state.entries.values() if e.spilled)

    asyncio.run(main())


async def _free(store: NodeStore, path: str) -> None:
    store.free(path)


def test_full_store_still_says_full(tmp_path, monkeypatch):
    async def main():
        store = _store(tmp_path, monkeypatch)
        with pytest.raises(ObjectStoreFull):
            await store.reserve(1001)
        assert store.state.reserved == 0

    asyncio.run(main())
