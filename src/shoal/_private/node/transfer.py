"""Moving objects between nodes: a node daemon pulls a segment from the daemon that holds it.

Bulk path (objects of 256 KiB and more): the puller opens dedicated connections, one per
range of the object (up to four for large ones); the holder answers each with ``sendfile``
straight from its tmpfs segment, and the puller receives with ``recv_into`` straight into a
mapping of the new local segment. No byte is copied by Python on either side.
Small objects go as chunks in ordinary replies. The new local segment is sealed as a
*replica*; the holder remembers which nodes took replicas, so that freeing the primary copy
frees them too.

Peers name an object by its id (hex), never by a path: the holder finds the segment in its
store's own record, so ``read_chunk``, ``stream_object`` and ``free`` cannot reach any other
file.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import re
import socket

from ..wire import auth, segment, transport
from ..wire.aio import spawn
from ..wire.config import config
from ..wire.transport import Connection
from .store_state import oid_of

log = logging.getLogger(__name__)

BULK_MIN = 256 * 1024
STREAM_MIN = 32 * 1024 * 1024  # ranges at least this big get a stream of their own
MAX_STREAMS = 4


class ObjectTransfer:
    def __init__(self, daemon):
        self.d = daemon
        self.replicas: dict[str, set[tuple[bytes, str]]] = {}  # primary path -> (node, path)
        self.pulled: dict[str, str] = {}  # remote path -> local replica path
        self.inflight: dict[str, asyncio.Future] = {}

    # -- serving ----------------------------------------------------------------------------
    def local_path(self, oid) -> str | None:
        """This node's segment of object ``oid`` (hex) if its store holds one, else None."""
        if not isinstance(oid, str) or not _OID.fullmatch(oid):
            return None
        path = self.d.store.state.by_oid.get(oid)
        return path if path is not None and path in self.d.store.state.entries else None

    def _open_range(self, conn: Connection, body, req_id: int):
        """The open segment (or spill file) and range a request names, or None (answered)."""
        oid = body.get("oid") if isinstance(body, dict) else None
        path = self.local_path(oid)
        off, n = (body.get("off"), body.get("len")) if isinstance(body, dict) else (None, None)
        if path is None:
            conn.reply_error(req_id, f"object {oid!r} is not held here", lost=True)
            return None
        if type(off) is not int or type(n) is not int or off < 0 or n < 0:
            conn.reply_error(req_id, "bad range")
            return None
        try:  # where its bytes are now: in memory, or in its spill file
            f = open(self.d.store.spill_path_of(path) or self.d.store.file_of(path), "rb")  # noqa: SIM115
        except FileNotFoundError:
            conn.reply_error(req_id, f"object {oid} is gone", lost=True)
            return None
        return f, off, n

    def read_chunk(self, conn: Connection, body: dict, req_id: int) -> None:
        opened = self._open_range(conn, body, req_id)
        if opened is None:
            return
        f, off, n = opened
        with f:
            data = os.pread(f.fileno(), min(n, BULK_MIN), off)
        conn.reply(req_id, {"n": len(data)}, [data])

    def free(self, body) -> None:
        """Free the segments of the objects named (ids only; unknown ones are ignored)."""
        if not isinstance(body, dict):
            return
        for oid in body.get("oids", ()):  # replicas, freed by the daemon holding the primary
            path = self.local_path(oid)
            if path is not None:
                self.d._free(path)
        # Owners name their segments by the exact path the writer told them: only a path the
        # store recorded is freed; one whose seal has not arrived yet is freed by its seal.
        for p in body.get("paths", ()):
            if self.d.store.free_path(p):
                self.d._free(p)

    async def stream(self, conn: Connection, body: dict, req_id: int) -> None:
        """Send a range of a segment as raw bytes after the reply, then close (bulk path)."""
        opened = self._open_range(conn, body, req_id)
        if opened is None:
            conn.close()
            return
        f, off, n = opened
        body = {"off": off, "len": n}
        try:
            conn.reply(req_id, {"n": body["len"]})
            await asyncio.get_running_loop().sendfile(conn.transport, f, body["off"],
                                                      body["len"])
        finally:
            f.close()
            conn.close()

    def add_replica(self, body: dict) -> None:
        self.replicas.setdefault(body["path"], set()).add((body["node_id"], body["replica"]))

    def primary_freed(self, path: str) -> None:
        """The primary copy at ``path`` was freed: free the replicas other nodes took."""
        for node_id, replica in self.replicas.pop(path, ()):
            node = self.d.view.nodes.get(node_id)
            if node is not None and node.alive:
                spawn(self.d.send_to_node(node.address, "free", {"oids": [oid_of(replica)]}))

    # -- pulling ----------------------------------------------------------------------------
    async def pull(self, body: dict) -> str:
        """Make a local replica of a segment held by another node; returns its path."""
        src = body["path"]
        local = self.pulled.get(src)
        if local is not None and os.path.exists(local):
            return local
        waiting = self.inflight.get(src)
        if waiting is not None:
            return await asyncio.shield(waiting)
        fut = asyncio.get_running_loop().create_future()
        self.inflight[src] = fut
        try:
            local = await self._fetch(body)
            fut.set_result(local)
            return local
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()
            raise
        finally:
            del self.inflight[src]

    async def _fetch(self, body: dict) -> str:
        node = self.d.view.nodes.get(body["node_id"])
        if node is None or not node.alive:
            raise LookupError(f"the node holding {body['path']} is not alive")
        conn = await self.d.peer(node.address)
        size = body["size"]
        await self.d.store.reserve(size)  # room for the replica, spilling if needed
        oid = oid_of(body["path"])
        try:
            local, fd = _create_replica(self.d.session_tag, oid)
        except BaseException:
            self.d.store.state.cancel_reservation(size)
            raise
        try:
            os.ftruncate(fd, size)
            if size >= BULK_MIN:
                await self._bulk(node.address, oid, size, fd)
            else:
                reply, bufs = await conn.request("read_chunk", {"oid": oid, "off": 0,
                                                                "len": size})
                segment.pwrite_all(fd, bufs[0], 0)
        except BaseException:
            os.close(fd)
            self.d.store.state.cancel_reservation(size)
            try:
                os.unlink(local)
            except OSError:
                pass
            raise
        os.close(fd)
        self.d.store.seal(local, size, body.get("owner") or b"", reserved=True, replica=True)
        self.pulled[body["path"]] = local
        conn.send("add_replica", {"path": body["path"], "node_id": self.d.node_id,
                                  "replica": local})
        return local

    async def _bulk(self, address: str, oid: str, size: int, fd: int) -> None:
        streams = max(1, min(MAX_STREAMS, size // STREAM_MIN))
        step = -(-size // streams)
        step = -(-step // mmap.ALLOCATIONGRANULARITY) * mmap.ALLOCATIONGRANULARITY
        loop = asyncio.get_running_loop()
        ranges = [(off, min(step, size - off)) for off in range(0, size, step)]
        await asyncio.gather(*(
            loop.run_in_executor(None, _receive_range, address, self.d.token, oid, off, n, fd)
            for off, n in ranges))

    def forget_local(self, path: str) -> None:
        for src, local in list(self.pulled.items()):
            if local == path:
                del self.pulled[src]


def _create_replica(session_tag: str, oid: str) -> tuple[str, int]:
    """A new local segment for a replica, under a fresh unguessable name, created exclusively
    (0600, never through a planted symlink or into a planted file)."""
    for _ in range(8):
        local = os.path.join(config.shm_dir,
                             f"shoal-{session_tag}-{os.urandom(8).hex()}-{oid}")
        try:
            return local, segment.create_exclusive(local)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free segment name for a replica of {oid} in {config.shm_dir}")



_OID = re.compile(r"[0-9a-f]{8,128}")



def _receive_range(address: str, token: bytes, oid: str, off: int, n: int, fd: int) -> None:
    """Blocking (run in a thread): one stream of the bulk path, into a mapping of ``fd``."""
    kind, where = transport._route(address)
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(where)
    else:
        host, _, port = where.rpartition(":")
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ctx = auth.client_ssl_context()
        if ctx is not None:
            sock = ctx.wrap_socket(sock)
    sock.settimeout(60)
    try:
        transport.handshake_blocking(sock, token, {"role": "pull"})
        sock.sendall(b"".join(transport._frame("stream_object", 3,
                                               {"oid": oid, "off": off, "len": n}, ())))
        kind, body, _ = transport.read_frame_blocking(sock, config.max_handshake_frame_bytes)
        if kind != "r":
            raise LookupError(body.get("error", "stream refused"))
        mm = mmap.mmap(fd, n, offset=off)
        try:
            view = memoryview(mm)
            got = 0
            while got < n:
                r = sock.recv_into(view[got:], min(n - got, 1 << 22))
                if r == 0:
                    raise ConnectionError("the object's holder closed the stream early")
                got += r
            view.release()
        finally:
            mm.close()
    finally:
        sock.close()
