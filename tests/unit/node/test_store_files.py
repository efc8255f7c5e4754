"""The node store's files: spill/restore modes, planted names, a full disk, stopping."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import uuid

import pytest

from shoal._private.node import store as store_mod
from shoal._private.node.store import NodeStore, OutOfDisk
from shoal._private.wire import segment
from tests.users import NOBODY, as_nobody


class _Transfer:
    def forget_local(self, path):
        pass


class _Daemon:
    def __init__(self, session_dir):
        self.session_dir = session_dir
        self.transfer = _Transfer()


@pytest.fixture
def made(tmp_path, monkeypatch):
    """A store of 1 MiB and a way to write sealed segments into /dev/shm."""
    monkeypatch.setenv("SHOAL_OBJECT_STORE_FULL_TIMEOUT_S", "2")
    paths = []
    tag = f"unittest{uuid.uuid4().hex[:8]}"

    def make(store, size=300_000):
        path = f"/dev/shm/shoal-{tag}-{uuid.uuid4().hex}"
        paths.append(path)
        data = os.urandom(size - 4096)
        store.state.reserve(segment.segment_size(4, [len(data)]))
        n = segment.write_segment(path, b"meta", [data])
        store.seal(path, n, b"owner")
        return path

    yield make, tag
    for p in paths:
        for f in (p, *[os.path.join("/dev/shm", n) for n in os.listdir("/dev/shm")
                       if n.startswith(os.path.basename(p) + ".")]):
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass



async def _spill_all(store):
    for p in [p for p, e in store.state.entries.items() if e.in_memory]:
        store.state.entries[p].moving = True
        await store._move_out(p)


def test_spill_files_are_0600_in_a_0700_dir_and_restore_is_0600(tmp_path, made):
    make, _ = made
    store = NodeStore(_Daemon(str(tmp_path)), 1 << 20)
    path = make(store)
    asyncio.run(_spill_all(store))
    spill = store.spill_path_of(path)
    assert stat.S_IMODE(os.stat(store.spill_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(spill).st_mode) == 0o600
    assert asyncio.run(store.restore(path)) == path
    assert stat.S_IMODE(os.stat(store.file_of(path)).st_mode) == 0o600
    assert not os.path.exists(spill)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as nobody")
def test_a_file_planted_at_a_spilled_name_is_not_read_and_restore_goes_elsewhere(
        tmp_path, made):
    make, _ = made
    store = NodeStore(_Daemon(str(tmp_path)), 1 << 20)
    path = make(store)
    meta, bufs, _ = segment.read_segment(path)
    want = bytes(bufs[0])
    del meta, bufs
    asyncio.run(_spill_all(store))
    assert not os.path.exists(path)
    # Another user plants a well-formed segment at the freed name.
    as_nobody(lambda: segment.write_segment(path, b"evil", [b"evil"]))
    with pytest.raises(segment.UntrustedSegment):
        segment.read_segment(path)
    assert asyncio.run(store.restore(path)) == path
    file = store.file_of(path)
    assert file != path
    _, bufs, _ = segment.read_segment(file)
    assert bytes(bufs[0]) == want
    store.free(path)
    assert not os.path.exists(file)
    assert os.stat(path).st_uid == NOBODY  # theirs, left alone


def test_stopping_removes_only_this_stores_spill_files(tmp_path, made, monkeypatch):
    make, tag = made
    shared = tmp_path / "shared-spill"
    shared.mkdir()
    monkeypatch.setenv("SHOAL_SPILL_DIR", str(shared))
    (shared / "notes.txt").write_text("the user's")
    other = NodeStore(_Daemon(str(tmp_path / "b")), 1 << 20)  # another node, same session
    ours = NodeStore(_Daemon(str(tmp_path / "a")), 1 << 20)
    theirs_path = make(other)
    make(ours)
    asyncio.run(_spill_all(other))
    asyncio.run(_spill_all(ours))
    theirs = other.spill_path_of(theirs_path)
    ours.sweep(tag)
    assert sorted(os.listdir(shared)) == sorted(["notes.txt", os.path.basename(theirs)])
    other.sweep(tag)
    assert os.listdir(shared) == ["notes.txt"]


def test_default_spill_dir_is_removed_only_when_empty(tmp_path, made):
    make, tag = made
    store = NodeStore(_Daemon(str(tmp_path)), 1 << 20)
    make(store)
    asyncio.run(_spill_all(store))
    (tmp_path / "spill" / "keep").write_text("x")
    store.sweep(tag)
    assert os.listdir(tmp_path / "spill") == ["keep"]


def test_a_full_spill_disk_names_the_error_removes_partials_and_loses_nothing(
        tmp_path, made, monkeypatch):
    make, _ = made
    store = NodeStore(_Daemon(str(tmp_path)), 1 << 20)
    paths = [make(store) for _ in range(3)]
    real = store_mod._copy_fd

    def full_disk(sfd, dfd, size):
        os.write(dfd, b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(store_mod, "_copy_fd", full_disk)

    async def put_more():
        await store.reserve(600_000)
    with pytest.raises(OutOfDisk, match="spill") as info:
        asyncio.run(put_more())
    assert store.spill_dir in str(info.value) and "bytes free" in str(info.value)
    assert os.listdir(store.spill_dir) == []  # partial spill files removed
    for p in paths:  # every acknowledged object is still in memory, readable
        assert store.state.entries[p].in_memory and not store.state.entries[p].moving
        segment.read_segment(p)
    assert store.state.reserved == 0
    monkeypatch.setattr(store_mod, "_copy_fd", real)
    asyncio.run(put_more())  # room again once the disk has some


def test_a_full_shm_on_restore_keeps_the_spill_file_and_the_reservation_is_released(
        tmp_path, made, monkeypatch):
    make, _ = made
    store = NodeStore(_Daemon(str(tmp_path)), 1 << 20)
    path = make(store)
    asyncio.run(_spill_all(store))
    spill = store.spill_path_of(path)

    def full_shm(sfd, dfd, size):
        os.write(dfd, b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(store_mod, "_copy_fd", full_shm)
    with pytest.raises(store_mod.ObjectStoreFull):
        asyncio.run(store.restore(path))
    assert not os.path.exists(path) and os.path.exists(spill)
    assert store.state.reserved == 0
    monkeypatch.undo()
    assert asyncio.run(store.restore(path)) == path
    segment.read_segment(path)


def test_a_segment_freed_before_its_seal_arrives_is_freed_by_the_seal(tmp_path, made):
    # A worker replies to the owner from its thread while its seal is still on the way on
    # another socket: the owner's free can reach the node first.
    make, tag = made
    store = NodeStore(_Daemon(str(tmp_path)), 4 << 20)
    path = f"/dev/shm/shoal-{tag}-{uuid.uuid4().hex}"
    n = segment.write_segment(path, b"meta", [b"x" * 1000])
    store.state.reserve(n)
    assert store.free_path(path) is False  # not held yet: remembered
    assert store.seal(path, n, b"owner") is False
    s = store.state.stats()
    assert (s["used"], s["reserved"], s["num_objects"]) == (0, 0, 0)
    assert not os.path.exists(path)
    # A segment sealed first is freed by the caller as always, and nothing is remembered.
    held = make(store)
    assert store.free_path(held) is True and held not in store.freed_early


def test_frees_of_unknown_names_are_bounded_and_never_unlink(tmp_path, monkeypatch):
    store = NodeStore(_Daemon(str(tmp_path)), 1 << 20)
    monkeypatch.setattr(store_mod, "FREED_EARLY_MAX", 5)
    victim = tmp_path / "shoal-victim"
    victim.write_text("keep")
    for i in range(20):
        assert store.free_path(f"/dev/shm/shoal-x-{i}") is False
    assert store.free_path(str(victim)) is False
    assert store.free_path(["not", "a", "path"]) is False
    assert len(store.freed_early) == 5
    assert victim.read_text() == "keep"


class _Conn:
    closed = False

    def __init__(self):
        self.replies, self.errors = [], []

    def reply(self, req_id, body):
        self.replies.append((req_id, body))

    def reply_error(self, req_id, message, **flags):
        self.errors.append((req_id, message, flags))


def test_a_reserve_or_restore_that_fails_unexpectedly_still_answers(tmp_path, monkeypatch):
    # A writer blocks on its reserve and a reader on its restore: a bug (or a malformed
    # request) in answering them must come back as an error, never as a reply that is
    # never sent.
    store = NodeStore(_Daemon(str(tmp_path)), 1 << 20)

    async def broken(size):
        raise TypeError("a bug in the store")

    monkeypatch.setattr(store, "reserve", broken)

    async def run():
        conn = _Conn()
        assert store.handle(conn, "reserve", {"size": 10}, 7)
        assert store.handle(conn, "restore", {"pathx": "missing key"}, 8)
        async def answered():
            while len(conn.errors) < 2:
                await asyncio.sleep(0)  # yield to the answering tasks

        await asyncio.wait_for(answered(), 5)
        return conn

    conn = asyncio.run(run())
    assert conn.replies == []
    errors = {req_id: message for req_id, message, _ in conn.errors}
    assert "reserve room" in errors[7] and "a bug in the store" in errors[7]
    assert "restore an object" in errors[8] and "KeyError" in errors[8]
