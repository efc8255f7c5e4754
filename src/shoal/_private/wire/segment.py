"""The shared-memory segment of one object: how it is laid out, written once, and mapped.

Each large object is one file in tmpfs (``/dev/shm``), written once and then only mapped
read-only. Layout::

    magic "SHL1" | flags u32 | meta_len u64 | nbufs u32 | pad u32
    nbufs x (offset u64, length u64)
    meta (pickle stream) | buffers, each aligned to 64 bytes

A reader maps the file and hands the buffers to pickle as read-only memoryviews, so a numpy
array comes back as a view of shared memory with no copy. Unlinking a file while a view is
mapped is safe: the memory is returned when the last view goes away.

Every segment is created exclusively (``O_CREAT|O_EXCL|O_NOFOLLOW``, mode 0600): a name
someone else planted, or a symlink, makes the create fail and is never written through. A
reader maps only a regular file owned by its own user with no access for group or others
(checked with ``fstat`` on the descriptor it opened with ``O_NOFOLLOW``): anything else is
refused with :class:`UntrustedSegment` before a byte of it is unpickled.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
import struct
import weakref

_HEAD = struct.Struct("<4sIQII")
_ENTRY = struct.Struct("<QQ")
MAGIC = b"SHL1"
FLAG_ERROR = 1
ALIGN = 64
FILE_MODE = 0o600
# One write(2)/pwrite(2) moves at most 0x7ffff000 bytes on Linux; write in pieces well below.
_WRITE_CHUNK = 1 << 30
_CREATE = os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class UntrustedSegment(OSError):
    """A file at a segment's name that this user's store did not create: never mapped."""


def create_exclusive(path: str, flags: int = _CREATE) -> int:
    """Create ``path`` (mode 0600) and return its descriptor; never opens an existing file
    or follows a symlink (``FileExistsError`` / ``OSError(ELOOP)`` instead)."""
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask
    except BaseException:
        os.close(fd)
        raise
    return fd


def pwrite_all(fd: int, data, offset: int) -> None:
    """Write all of ``data`` at ``offset``: one pwrite is capped at 0x7ffff000 bytes."""
    view = memoryview(data).cast("B")
    n = view.nbytes
    done = 0
    while done < n:
        wrote = os.pwrite(fd, view[done : done + _WRITE_CHUNK], offset + done)
        if wrote <= 0:
            raise OSError(f"pwrite wrote {wrote} bytes")
        done += wrote


def check_trusted(fd: int, path: str) -> os.stat_result:
    """``fstat`` of an open segment or spill file: a regular file owned by this user, mode
    0600 or stricter. Raises :class:`UntrustedSegment` otherwise."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise UntrustedSegment(
            f"refusing {path}: not a segment this user's object store created (owner uid "
            f"{st.st_uid}, this user {os.geteuid()}, mode {stat.filemode(st.st_mode)})")
    return st


def open_trusted(path: str) -> tuple[int, os.stat_result]:
    """Open ``path`` read-only without following a symlink, and check it (see above)."""
    try:
        fd = os.open(path, _OPEN)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        raise UntrustedSegment(f"refusing {path}: a symlink, not a segment") from None
    try:
        return fd, check_trusted(fd, path)
    except BaseException:
        os.close(fd)
        raise


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
        fd = create_exclusive(path)
    except FileExistsError:
        if not replace:
            raise
        # Left by an earlier attempt of the same task (never published) -- but only if it is
        # ours: a file another user planted is left alone and the create fails.
        try:
            old, _ = open_trusted(path)
        except UntrustedSegment:
            raise FileExistsError(f"{path} exists and is not this store's") from None
        os.close(old)
        os.unlink(path)
        fd = create_exclusive(path)
    try:
        os.ftruncate(fd, total)
        pwrite_all(fd, head, 0)
        pwrite_all(fd, meta, len(head))
        for (o, _n), v in zip(entries, views, strict=True):
            pwrite_all(fd, v, o)
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
    Raises :class:`UntrustedSegment` for a file this user's store did not create.
    """
    fd, st = open_trusted(path)
    try:
        size = st.st_size
        if size < _HEAD.size:
            raise UntrustedSegment(f"{path} is too short to be a shoal object segment")
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
    if pos + _ENTRY.size * nbufs + meta_len > size:
        raise ValueError(f"{path}: a corrupt shoal object segment header")
    bufs = []
    for _ in range(nbufs):
        o, n = _ENTRY.unpack_from(view, pos)
        pos += _ENTRY.size
        if o + n > size:
            raise ValueError(f"{path}: a corrupt shoal object segment header")
        bufs.append(view[o : o + n])
    meta = view[pos : pos + meta_len]
    return meta, bufs, flags


def unlink_segment(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
