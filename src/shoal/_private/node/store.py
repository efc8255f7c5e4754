"""A node's object store: reservations, spilling to disk and restoring, pins, freeing.

The rules are in :mod:`store_state` (pure); this module moves the bytes. Spilling copies a
segment to ``<session>/spill/`` in a background thread and then unlinks it from tmpfs;
restoring copies it back. Writers waiting for room are answered in order as space frees,
within ``object_store_full_timeout_s``.

Every file is created exclusively, 0600, never through a symlink (the spill directory we make
is 0700); a restore whose name is taken by a file that is not ours goes to a fresh name. A
copy that fails (a full disk or tmpfs) removes its partial file and leaves the object where
it was, so an acknowledged object is never lost; the writer waiting for room is told
``OutOfDiskError`` with the path and numbers. Stopping removes only the files this store
created.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import glob
import logging
import os
import stat
from collections import OrderedDict, deque

from ..wire import segment as object_store
from ..wire.aio import spawn
from ..wire.config import config
from .store_state import ObjectStoreFull, StoreState

log = logging.getLogger(__name__)

FREED_EARLY_MAX = 10_000  # frees remembered while their seal is on its way


class NodeStore:
    def __init__(self, daemon, capacity: int):
        self.d = daemon
        self.state = StoreState(capacity)
        self.spill_dir = config.spill_dir or os.path.join(daemon.session_dir, "spill")
        self.waiting: deque = deque()  # (size, future) of writers waiting for room
        self._moving: set = set()  # background spills and restores under way
        self.spill_files: set[str] = set()  # spill files this store created and still has
        self.files: dict[str, str] = {}  # path -> the file holding it, when not the path
        self._made_spill_dir = False
        self._disk_errors = 0  # spills that failed for want of disk space
        self._last_disk_error = ""
        # Segments freed before their seal arrived: a worker replies to the owner from its
        # own thread while its seal is still on its way here on another socket, so an owner
        # that drops the value at once can free it first. Their seal then frees them.
        self.freed_early: OrderedDict[str, None] = OrderedDict()

    # -- reservations ---------------------------------------------------------------------
    async def reserve(self, size: int) -> None:
        """Wait until ``size`` bytes are set aside for a new object; raise ObjectStoreFull
        when pinned objects alone leave no room (or room does not come in time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.object_store_full_timeout_s
        disk_errors = self._disk_errors
        while True:
            verdict, detail = self.state.reserve(size)
            if verdict == "ok":
                return
            if self._disk_errors != disk_errors and not self._moving:
                if verdict == "spill":
                    for path in detail:
                        self.state.move_failed(path)
                raise OutOfDisk(self._last_disk_error, size)
            if verdict == "full":
                if not self._moving or loop.time() > deadline:
                    raise detail
            else:
                for path in detail:
                    self._start_move(path)
            fut = loop.create_future()
            self.waiting.append(fut)
            try:
                await asyncio.wait_for(fut, max(0.05, deadline - loop.time()))
            except TimeoutError:
                verdict, detail = self.state.reserve(size)
                if verdict == "ok":
                    return
                if verdict == "spill":
                    for path in detail:
                        self.state.move_failed(path)
                raise ObjectStoreFull(self.state.capacity, self.state.stats()["pinned"],
                                      size, self.state.used) from None

    def _wake(self) -> None:
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_result(None)

    def _start_move(self, path: str) -> None:
        task = spawn(self._move_out(path))
        self._moving.add(task)
        task.add_done_callback(self._moving.discard)

    async def _move_out(self, path: str) -> None:
        e = self.state.entries.get(path)
        if e is None:
            return
        try:
            if e.replica:
                object_store.unlink_segment(path)
                self.d.transfer.forget_local(path)
                self.state.moved_out(path, None)
            else:
                self._ensure_spill_dir()
                name = os.path.basename(path)
                target = await asyncio.get_running_loop().run_in_executor(
                    None, copy_exclusive, self.files.get(path, path), self.spill_dir, name)
                self.spill_files.add(target)
                if path not in self.state.entries:  # freed while we copied
                    self._unlink_spill(target)
                else:
                    self._unlink_file(path)
                    self.state.moved_out(path, target)
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                self._disk_errors += 1
                self._last_disk_error = _disk_message(self.spill_dir, e.size, err)
            log.warning("could not spill %s: %s", path, err)
            self.state.move_failed(path)
        finally:
            self._wake()

    def _ensure_spill_dir(self) -> None:
        """The spill directory: made 0700 by us (and so removed by us when empty at the
        end), or one given by the user (shared, perhaps: we only ever add our own files)."""
        try:
            os.mkdir(self.spill_dir, 0o700)
            self._made_spill_dir = True
        except FileExistsError:
            pass
        st = os.lstat(self.spill_dir)
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, f"the spill directory {self.spill_dir} is not a "
                          "directory (a symlink?)")

    def _unlink_file(self, path: str) -> None:
        """Remove the shm file holding ``path`` (never a file someone else planted)."""
        object_store.unlink_segment(self.files.pop(path, path))

    def _unlink_spill(self, target: str) -> None:
        self.spill_files.discard(target)
        _unlink(target)

    # -- restoring ------------------------------------------------------------------------
    async def restore(self, path: str) -> str:
        """Bring a spilled segment back into memory; returns its (unchanged) path."""
        e = self.state.entries.get(path)
        if e is None:
            raise FileNotFoundError(path)
        if e.spilled is None:
            return path
        size = e.size
        await self.reserve(size)
        # From here the reservation is released on every path, error or cancellation too.
        try:
            e = self.state.entries.get(path)
            if e is None or e.spilled is None:
                self.state.cancel_reservation(size)
                if e is None:
                    raise FileNotFoundError(path)
                return path
            spill = e.spilled
            try:
                file = await asyncio.get_running_loop().run_in_executor(
                    None, copy_exclusive, spill, os.path.dirname(path), os.path.basename(path))
            except BaseException as err:  # the spill file stays: the object is not lost
                self.state.cancel_reservation(size)
                if isinstance(err, OSError) and err.errno == errno.ENOSPC:
                    raise ObjectStoreFull(self.state.capacity, self.state.stats()["pinned"],
                                          size, self.state.used) from err
                raise
        finally:
            self._wake()
        if not self.state.restored(path, size):  # freed (or restored) while we copied
            if path not in self.state.entries:
                object_store.unlink_segment(file)
                raise FileNotFoundError(path)
            if file != self.file_of(path):
                object_store.unlink_segment(file)
            return path
        if file != path:
            self.files[path] = file
        self._unlink_spill(spill)
        return path

    def spill_path_of(self, path: str) -> str | None:
        e = self.state.entries.get(path)
        return e.spilled if e is not None else None

    def file_of(self, path: str) -> str:
        """The file that holds ``path``'s bytes in memory (a restore whose name was taken
        by someone else's file went to a fresh name)."""
        return self.files.get(path, path)

    # -- bookkeeping ----------------------------------------------------------------------
    def seal(self, path: str, size: int, owner: bytes, reserved: bool = True,
             replica: bool = False) -> bool:
        """Record a written segment; False when its owner already freed it (then it is
        gone again at once, its reservation released)."""
        self.state.seal(path, size, owner, reserved=reserved, replica=replica)
        if path in self.freed_early:
            del self.freed_early[path]
            self.free(path)
            return False
        return True

    def free_path(self, path) -> bool:
        """An owner on this node freed the segment ``path``: True if the store holds it (the
        caller frees it); else it is remembered (a bounded number) for its seal to come.
        Only a name the store recorded is ever unlinked."""
        if not isinstance(path, str):
            return False
        if path in self.state.entries:
            return True
        if len(path) <= 4096 and os.path.basename(path).startswith("shoal-"):
            self.freed_early[path] = None
            while len(self.freed_early) > FREED_EARLY_MAX:
                self.freed_early.popitem(last=False)
        return False

    def free(self, path: str) -> None:
        e = self.state.free(path)
        self._unlink_file(path)
        if e is not None and e.spilled:
            self._unlink_spill(e.spilled)
        self._wake()

    def owned_by(self, owner: bytes) -> list[str]:
        return [p for p, e in self.state.entries.items() if e.owner == owner]

    def sweep(self, session_tag: str) -> None:
        for path in list(self.state.entries):
            self.free(path)
        # Segments of this session that were never sealed (a worker died writing): ours only.
        for path in glob.glob(os.path.join(glob.escape(config.shm_dir),
                                           f"shoal-{glob.escape(session_tag)}-*")):
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
                    os.unlink(path)
        # Only the spill files this store created: never the directory's other files (it
        # may be shared with other nodes and clusters, or hold anything of the user's).
        for path in list(self.spill_files):
            self._unlink_spill(path)
        if self._made_spill_dir:
            with contextlib.suppress(OSError):
                os.rmdir(self.spill_dir)  # only if empty

    def handle(self, conn, kind: str, body, req_id: int) -> bool:
        if kind == "reserve":
            spawn(self._answering(conn, req_id, "reserve room",
                                  self._answer_reserve(conn, body, req_id)))
        elif kind == "unreserve":
            self.state.cancel_reservation(body["size"])
            self._wake()
        elif kind == "pin":
            for p in body["paths"]:
                self.state.pin(p)
        elif kind == "unpin":
            for p in body["paths"]:
                self.state.unpin(p)
            self._wake()
        elif kind == "restore":
            spawn(self._answering(conn, req_id, "restore an object",
                                  self._answer_restore(conn, body, req_id)))
        else:
            return False
        return True

    async def _answering(self, conn, req_id, what: str, coro) -> None:
        """Run an answer to a writer or reader; a failure it did not expect still answers
        (with the error), so no caller waits forever for a reply that will not come."""
        try:
            await coro
        except Exception as e:
            log.exception("the object store could not %s", what)
            if not conn.closed:
                conn.reply_error(req_id, f"the object store could not {what}: "
                                 f"{type(e).__name__}: {e}")

    async def _answer_reserve(self, conn, body, req_id) -> None:
        try:
            await self.reserve(body["size"])
        except OutOfDisk as e:
            conn.reply_error(req_id, str(e), store_full=True, out_of_disk=True)
            return
        except ObjectStoreFull as e:
            conn.reply_error(req_id, str(e), store_full=True)
            return
        if conn.closed:  # the writer is gone: give the room back
            self.state.cancel_reservation(body["size"])
            return
        conn.reply(req_id, {"ok": True})

    async def _answer_restore(self, conn, body, req_id) -> None:
        try:
            path = await self.restore(body["path"])
        except FileNotFoundError:
            conn.reply_error(req_id, f"object segment {body['path']} is gone", lost=True)
            return
        except OutOfDisk as e:
            conn.reply_error(req_id, str(e), store_full=True, out_of_disk=True)
            return
        except ObjectStoreFull as e:
            conn.reply_error(req_id, str(e), store_full=True)
            return
        except OSError as e:  # the spill file is unreadable or not ours
            conn.reply_error(req_id, f"object segment {body['path']} could not be restored: "
                             f"{e}", lost=True)
            return
        self.state.pin(path)  # the reader maps it right away; it unpins when done
        conn.reply(req_id, {"path": path, "file": self.file_of(path)})


class OutOfDisk(Exception):
    """No room in the store, and spilling to make some failed: the spill disk is full."""

    def __init__(self, detail: str, requested: int):
        super().__init__(f"{detail} {requested} bytes were requested of a full object store.")


def _disk_message(directory: str, size: int, err: OSError) -> str:
    try:
        st = os.statvfs(directory)
        free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    except OSError:
        free = total = -1
    return (f"Out of disk: spilling a {size}-byte object to {directory} failed ({err}); "
            f"{free} bytes free of {total}.")


def copy_exclusive(src: str, directory: str, name: str) -> str:
    """Copy the file ``src`` to a new file in ``directory`` (created exclusively, 0600, never
    through a symlink), named ``name`` or, if that is taken, ``name`` with a random suffix.
    Loops until every byte is copied; on any failure the partial copy is removed and the
    source is untouched. Returns the new file's path."""
    sfd, st = object_store.open_trusted(src)
    try:
        for attempt in range(8):
            dst = os.path.join(directory, name if attempt == 0
                               else f"{name}.{os.urandom(6).hex()}")
            try:
                dfd = object_store.create_exclusive(dst)
            except FileExistsError:
                continue
            try:
                _copy_fd(sfd, dfd, st.st_size)
            except BaseException:
                os.close(dfd)
                _unlink(dst)
                raise
            os.close(dfd)
            return dst
        raise FileExistsError(errno.EEXIST, f"no free name for {name} in {directory}")
    finally:
        os.close(sfd)


def _copy_fd(sfd: int, dfd: int, size: int) -> None:
    done = 0
    while done < size:
        n = os.sendfile(dfd, sfd, done, min(size - done, 1 << 30))
        if n == 0:
            raise OSError(errno.EIO, f"short copy: {done} of {size} bytes")
        done += n


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
