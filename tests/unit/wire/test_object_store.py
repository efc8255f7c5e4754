"""Unit tests for shoal._private.wire.segment: one object per tmpfs file, mapped zero-copy."""

from __future__ import annotations

import errno
import os
import uuid

import numpy as np
import pytest

from shoal._private.wire import segment as object_store
from shoal._private.wire import serialization as ser


@pytest.fixture
def seg_path(tmp_path):
    """A fresh segment path on tmpfs when available (as in production), else in tmp_path."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        path = f"/dev/shm/shoal-unittest-{os.getpid()}-{uuid.uuid4().hex}"
    else:
        path = str(tmp_path / "segment")
    yield path
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _addr(view: memoryview) -> int:
    return np.frombuffer(view, dtype=np.uint8).ctypes.data


def test_meta_and_several_buffers_round_trip(seg_path):
    meta = b"pickle-stream\x00\x01"
    bufs = [b"a" * 7, bytearray(b"\xff" * 4096), memoryview(b"tail"), b""]
    size = object_store.write_segment(seg_path, meta, bufs, flags=object_store.FLAG_ERROR)
    assert size == os.path.getsize(seg_path)
    assert size == object_store.segment_size(len(meta), [len(b) for b in bufs])

    got_meta, got_bufs, flags = object_store.read_segment(seg_path)
    assert bytes(got_meta) == meta
    assert [bytes(b) for b in got_bufs] == [bytes(b) for b in bufs]
    assert flags == object_store.FLAG_ERROR
    assert all(b.readonly for b in [got_meta, *got_bufs])


def test_segment_without_buffers(seg_path):
    object_store.write_segment(seg_path, b"just meta", [])
    meta, bufs, flags = object_store.read_segment(seg_path)
    assert (bytes(meta), bufs, flags) == (b"just meta", [], 0)


def test_buffers_are_64_byte_aligned_in_memory(seg_path):
    bufs = [b"x" * n for n in (1, 63, 64, 65, 1000)]
    object_store.write_segment(seg_path, b"m" * 13, bufs)
    _, got, _ = object_store.read_segment(seg_path)
    assert [len(b) for b in got] == [len(b) for b in bufs]
    for b in got:
        assert _addr(b) % 64 == 0


def test_multidimensional_buffer_is_written_as_raw_bytes(seg_path):
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    object_store.write_segment(seg_path, b"m", [memoryview(arr)])
    _, [buf], _ = object_store.read_segment(seg_path)
    assert buf.nbytes == arr.nbytes
    np.testing.assert_array_equal(np.frombuffer(buf, dtype=np.float32).reshape(2, 3, 4), arr)


def test_numpy_array_reads_back_read_only_and_without_a_copy(seg_path):
    arr = np.arange(256 * 1024, dtype=np.float64).reshape(512, 512)
    s = ser.serialize(arr)
    object_store.write_segment(seg_path, s.meta, s.buffers)

    meta, bufs, _ = object_store.read_segment(seg_path)
    back = ser.deserialize(meta, bufs)
    np.testing.assert_array_equal(back, arr)
    assert not back.flags.writeable
    with pytest.raises(ValueError):
        back[0, 0] = 1.0
    # The array's data is the mapped buffer itself.
    assert back.ctypes.data == _addr(bufs[0])
    assert back.ctypes.data % 64 == 0


def test_existing_path_is_refused_and_left_intact(seg_path):
    object_store.write_segment(seg_path, b"first", [b"1" * 100])
    with pytest.raises(FileExistsError):
        object_store.write_segment(seg_path, b"second", [b"2" * 10])
    meta, bufs, _ = object_store.read_segment(seg_path)
    assert bytes(meta) == b"first"
    assert bytes(bufs[0]) == b"1" * 100


def test_unlink_while_a_view_is_alive_keeps_the_view_readable(seg_path):
    arr = np.arange(100_000, dtype=np.int64)
    s = ser.serialize(arr)
    object_store.write_segment(seg_path, s.meta, s.buffers)
    meta, bufs, _ = object_store.read_segment(seg_path)
    back = ser.deserialize(meta, bufs)
    del meta, bufs

    assert object_store.unlink_segment(seg_path) is True
    assert not os.path.exists(seg_path)
    assert object_store.unlink_segment(seg_path) is False
    assert int(back.sum()) == int(arr.sum())
    assert back[-1] == 99_999
    with pytest.raises(FileNotFoundError):
        object_store.read_segment(seg_path)


def test_a_file_that_is_not_a_segment_is_rejected(seg_path):
    with open(seg_path, "wb") as f:
        f.write(b"NOPE" + b"\x00" * 60)
    os.chmod(seg_path, 0o600)  # past the owner/mode check: the magic is what is tested
    with pytest.raises(ValueError, match="not a shoal object segment"):
        object_store.read_segment(seg_path)


def test_buffer_that_is_not_bytes_like_is_refused_before_creating_the_file(seg_path):
    with pytest.raises(TypeError):
        object_store.write_segment(seg_path, b"m", [object()])
    assert not os.path.exists(seg_path)


def test_write_failing_midway_removes_the_partial_file(seg_path, monkeypatch):
    real_pwrite = os.pwrite
    calls = []

    def pwrite_then_full(fd, data, offset):
        calls.append(offset)
        if len(calls) == 2:  # header went through; the first buffer hits a full tmpfs
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(object_store.os, "pwrite", pwrite_then_full)
    with pytest.raises(OSError, match="No space"):
        object_store.write_segment(seg_path, b"m", [b"x" * 1000])
    assert len(calls) == 2
    assert not os.path.exists(seg_path)
