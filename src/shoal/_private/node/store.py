"""A node's object store: reservations, spilling to disk and restoring, pins, freeing.

The rules are in :mod:`store_state` (pure); this module moves the bytes. Spilling copies a
segment to ``<session>/spill/`` in a background thread and then unlinks it from tmpfs;
restoring copies it back. Writers waiting for room are answered in order as space frees,
within ``object_store_full_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import shutil
from collections import deque

from ..wire import segment as object_store
from ..wire.aio import spawn
from ..wire.config import config
from .store_state import ObjectStoreFull, StoreState

log = logging.getLogger(__name__)


class NodeStore:
    def __init__(self, daemon, capacity: int):
        self.d = daemon
        self.state = StoreState(capacity)
        self.spill_dir = config.spill_dir or os.path.join(daemon.session_dir, "spill")
        self.waiting: deque = deque()  # (size, future) of writers waiting for room
        self._moving: set = set()  # background spills and restores under way

    # -- reservations ---------------------------------------------------------------------
    async def reserve(self, size: int) -> None:
        """Wait until ``size`` bytes are set aside for a new object; raise ObjectStoreFull
        when pinned objects alone leave no room (or room does not come in time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.object_store_full_timeout_s
        while True:
            verdict, detail = self.state.reserve(size)
            if verdict == "ok":
                return
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
                os.makedirs(self.spill_dir, exist_ok=True)
                target = os.path.join(self.spill_dir, os.path.basename(path))
                await asyncio.get_running_loop().run_in_executor(
                    None, shutil.copyfile, path, target)
                if path not in self.state.entries:  # freed while we copied
                    _unlink(target)
                else:
                    object_store.unlink_segment(path)
                    self.state.moved_out(path, target)
        except OSError as err:
            log.warning("could not spill %s: %s", path, err)
            self.state.move_failed(path)
        finally:
            self._wake()

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
                await asyncio.get_running_loop().run_in_executor(
                    None, shutil.copyfile, spill, path)
            except BaseException:
                _unlink(path)  # a partial copy is no segment
                self.state.cancel_reservation(size)
                raise
        finally:
            self._wake()
        if not self.state.restored(path, size):  # freed (or restored) while we copied
            if path not in self.state.entries:
                object_store.unlink_segment(path)
            return path
        _unlink(spill)
        return path

    def spill_path_of(self, path: str) -> str | None:
        e = self.state.entries.get(path)
        return e.spilled if e is not None else None

    # -- bookkeeping ----------------------------------------------------------------------
    def seal(self, path: str, size: int, owner: bytes, reserved: bool = True,
             replica: bool = False) -> None:
        self.state.seal(path, size, owner, reserved=reserved, replica=replica)

    def free(self, path: str) -> None:
        e = self.state.free(path)
        object_store.unlink_segment(path)
        if e is not None and e.spilled:
            _unlink(e.spilled)
        self._wake()

    def owned_by(self, owner: bytes) -> list[str]:
        return [p for p, e in self.state.entries.items() if e.owner == owner]

    def sweep(self, session_tag: str) -> None:
        for path in list(self.state.entries):
            self.free(path)
        for path in glob.glob(os.path.join(config.shm_dir, f"shoal-{session_tag}-*")):
            object_store.unlink_segment(path)
        if config.spill_dir:  # a directory given by the user: only this session's files
            for path in glob.glob(os.path.join(glob.escape(self.spill_dir),
                                               f"shoal-{glob.escape(session_tag)}-*")):
                with contextlib.suppress(OSError):
                    os.unlink(path)
        else:
            shutil.rmtree(self.spill_dir, ignore_errors=True)

    def handle(self, conn, kind: str, body, req_id: int) -> bool:
        if kind == "reserve":
            spawn(self._answer_reserve(conn, body, req_id))
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
            spawn(self._answer_restore(conn, body, req_id))
        else:
            return False
        return True

    async def _answer_reserve(self, conn, body, req_id) -> None:
        try:
            await self.reserve(body["size"])
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
        except OSError as e:  # the spill file could not be read back: say so, hold no room
            conn.reply_error(req_id, f"could not restore {body['path']}: {e}", lost=True)
            return
        except ObjectStoreFull as e:
            conn.reply_error(req_id, str(e), store_full=True)
            return
        self.state.pin(path)  # the reader maps it right away; it unpins when done
        conn.reply(req_id, {"path": path})


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
