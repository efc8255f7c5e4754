"""The shared-memory segment of one object: how it is laid out, written once, and mapped.

Each large object is one file in tmpfs (``/dev/shm``), written once and then only mapped
read-only. Layout::

    magic "SHL1" | flags u32 | meta_len u64 | nbufs u32 | pad u32
    nbufs x (offset u64, length u64)
    meta (pickle stream) | buffers, each aligned to 64 bytes

A reader maps the file and hands the buffers to pickle as read-only memoryviews, so a numpy
array comes back as a view of shared memory with no copy. Unlinking a file while a view is
mapped is safe: the memory is returned when the last view goes away.
"""

from __future__ import annotations

import mmap
import os
import struct
import weakref

_HEAD = struct.Struct("<4sIQII")
_ENTRY = struct.Struct("<QQ")
MAGIC = b"SHL1"
FLAG_ERROR = 1
ALIGN = 64


def _align(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


def segment_size(meta_len: int, buf_lens: list[int]) -> int:
    off = _align(_HEAD.size + _ENTRY.size * len(buf_lens) + meta_len)
    for ln in buf_lens:
        off = _align(off + ln)
    return off


def write_segment(path: str, meta: bytes, buffers: list, flags: int = 0,
                  replace: bool = False) -> int:
    """Create ``path`` holding the object and return its size in bytes.

    Writes go through ``pwrite`` into tmpfs: one kernel copy, no page faults in this process.
    """
    views = [memoryview(b).cast("B") for b in buffers]
    header_len = _HEAD.size + _ENTRY.size * len(views)
    entries = []
    off = _align(header_len + len(meta))
    for v in views:
        entries.append((off, v.nbytes))
        off = _align(off + v.nbytes)
    total = max(off, 1)
    head = _HEAD.pack(MAGIC, flags, len(meta), len(views), 0) + b"".join(
        _ENTRY.pack(o, n) for o, n in entries
    )
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    except FileExistsError:
        if not replace:
            raise
        os.unlink(path)  # left by an earlier attempt of the same task: never published
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, total)
        os.pwrite(fd, head + meta, 0)
        for (o, n), v in zip(entries, views, strict=True):
            written = 0
            while written < n:
                written += os.pwrite(fd, v[written:], o + written)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    os.close(fd)
    return total


def read_segment(path: str, on_release=None) -> tuple[memoryview, list[memoryview], int]:
    """Map ``path`` read-only; return ``(meta, buffers, flags)`` as zero-copy views.

    ``on_release()`` is called once the mapping is gone (every view of it collected).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        mm = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    if on_release is not None:
        weakref.finalize(mm, on_release)
    view = memoryview(mm)
    magic, flags, meta_len, nbufs, _ = _HEAD.unpack_from(view, 0)
    if magic != MAGIC:
        raise ValueError(f"{path} is not a shoal object segment")
    pos = _HEAD.size
    bufs = []
    for _ in range(nbufs):
        o, n = _ENTRY.unpack_from(view, pos)
        pos += _ENTRY.size
        bufs.append(view[o : o + n])
    meta = view[pos : pos + meta_len]
    return meta, bufs, flags


def unlink_segment(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
