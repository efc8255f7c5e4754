"""Segments on disk: created exclusively and 0600, written whole, mapped only if ours."""

from __future__ import annotations

import errno
import os
import uuid

import pytest

from shoal._private.wire import segment
from tests.users import NOBODY, as_nobody, needs_root


@pytest.fixture
def shm_path():
    path = f"/dev/shm/shoal-unittest-{os.getpid()}-{uuid.uuid4().hex}"
    yield path
    for p in (path, path + ".target"):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def test_segment_is_0600(shm_path):
    os.umask(old := os.umask(0))  # whatever the umask
    try:
        segment.write_segment(shm_path, b"meta", [b"x" * 100])
    finally:
        os.umask(old)
    assert os.stat(shm_path).st_mode & 0o777 == 0o600


@needs_root
def test_a_segment_planted_by_another_user_is_never_mapped(shm_path):
    # A well-formed segment, 0600, but written by nobody at the name get() would map.
    as_nobody(lambda: segment.write_segment(shm_path, b"evil pickle", []))
    assert os.stat(shm_path).st_uid == NOBODY
    with pytest.raises(segment.UntrustedSegment, match="owner uid 65534"):
        segment.read_segment(shm_path)


def test_a_world_readable_file_is_refused(shm_path):
    segment.write_segment(shm_path, b"meta", [])
    os.chmod(shm_path, 0o644)
    with pytest.raises(segment.UntrustedSegment, match="mode"):
        segment.read_segment(shm_path)


def test_a_planted_symlink_is_neither_followed_nor_written_through(shm_path, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.symlink(victim, shm_path)
    with pytest.raises(FileExistsError):
        segment.write_segment(shm_path, b"meta", [b"y" * 1000])
    with pytest.raises(FileExistsError):
        segment.write_segment(shm_path, b"meta", [], replace=True)
    assert victim.read_bytes() == b"precious"
    with pytest.raises(segment.UntrustedSegment, match="symlink"):
        segment.read_segment(shm_path)


@needs_root
def test_replace_never_removes_another_users_file(shm_path):
    as_nobody(lambda: segment.write_segment(shm_path, b"theirs", []))
    with pytest.raises(FileExistsError):
        segment.write_segment(shm_path, b"mine", [], replace=True)
    assert os.stat(shm_path).st_uid == NOBODY


def test_every_byte_is_written_when_pwrite_writes_less(shm_path, monkeypatch):
    """Linux caps one pwrite at 0x7ffff000 bytes: meta and buffers must be written in a
    loop. Here pwrite is capped at 64 KiB to show it without gigabytes."""
    real = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, off: real(fd, data[:65536], off))
    meta = os.urandom(300_000)
    bufs = [os.urandom(200_001), os.urandom(70_000)]
    segment.write_segment(shm_path, meta, bufs)
    got_meta, got_bufs, _ = segment.read_segment(shm_path)
    assert bytes(got_meta) == meta
    assert [bytes(b) for b in got_bufs] == bufs


def test_a_full_tmpfs_leaves_no_partial_segment(shm_path, monkeypatch):
    def full(fd, data, off):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(OSError) as info:
        segment.write_segment(shm_path, b"m" * 10, [b"z" * 4096])
    assert info.value.errno == errno.ENOSPC
    assert not os.path.exists(shm_path)
