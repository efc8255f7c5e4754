"""Moving objects between nodes: a node daemon pulls a segment from the daemon that holds it.

Bulk path (objects of 256 KiB and more): the puller opens dedicated connections, one per
range of the object (up to four for large ones); the holder answers each with ``sendfile``
straight from its tmpfs segment, and the puller receives with ``recv_into`` straight into a
mapping of the new local segment. No byte is copied by Python on either side.
Small objects go as chunks in ordinary replies. The new local segment is sealed as a
*replica*; the holder remembers which nodes took replicas, so that freeing the primary copy
frees them too.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import socket
import struct

from ..wire import segment, transport
from ..wire.aio import spawn
from ..wire.config import config
from ..wire.transport import Connection

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
    def _source(self, path: str) -> str:
        """Where a segment's bytes are now: in memory, or in its spill file."""
        return self.d.store.spill_path_of(path) or self.d.store.file_of(path)

    def read_chunk(self, conn: Connection, body: dict, req_id: int) -> None:
        try:
            fd = os.open(self._source(body["path"]), os.O_RDONLY)
        except FileNotFoundError:
            conn.reply_error(req_id, f"object segment {body['path']} is gone", lost=True)
            return
        try:
            data = os.pread(fd, body["len"], body["off"])
        finally:
            os.close(fd)
        conn.reply(req_id, {"n": len(data)}, [data])

    async def stream(self, conn: Connection, body: dict, req_id: int) -> None:
        """Send a range of a segment as raw bytes after the reply, then close (bulk path)."""
        try:
            f = open(self._source(body["path"]), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            conn.reply_error(req_id, f"object segment {body['path']} is gone", lost=True)
            conn.close()
            return
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
                spawn(self.d.send_to_node(node.address, "free", {"paths": [replica]}))

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
        oid = os.path.basename(body["path"]).rsplit("-", 1)[-1]
        try:
            local, fd = _create_replica(self.d.session_tag, oid)
        except BaseException:
            self.d.store.state.cancel_reservation(size)
            raise
        try:
            os.ftruncate(fd, size)
            if size >= BULK_MIN:
                await self._bulk(node.address, body["path"], size, fd)
            else:
                reply, bufs = await conn.request("read_chunk", {"path": body["path"],
                                                                "off": 0, "len": size})
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

    async def _bulk(self, address: str, path: str, size: int, fd: int) -> None:
        streams = max(1, min(MAX_STREAMS, size // STREAM_MIN))
        step = -(-size // streams)
        step = -(-step // mmap.ALLOCATIONGRANULARITY) * mmap.ALLOCATIONGRANULARITY
        loop = asyncio.get_running_loop()
        ranges = [(off, min(step, size - off)) for off in range(0, size, step)]
        await asyncio.gather(*(
            loop.run_in_executor(None, _receive_range, address, self.d.token, path, off, n, fd)
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


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        r = sock.recv_into(view[got:], n - got)
        if r == 0:
            raise ConnectionError("the object's holder closed the stream early")
        got += r
    return bytes(buf)


def _read_frame(sock: socket.socket):
    flen, hlen = struct.unpack(">II", _recv_exact(sock, 8))
    kind, req_id, body, lens = transport._unpack(_recv_exact(sock, hlen))
    for ln in lens:
        _recv_exact(sock, ln)
    return kind, body


def _receive_range(address: str, token: bytes, path: str, off: int, n: int, fd: int) -> None:
    """Blocking (run in a thread): one stream of the bulk path, into a mapping of ``fd``."""
    kind, where = transport._route(address)
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(where)
    else:
        host, _, port = where.rpartition(":")
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(60)
    try:
        sock.sendall(b"".join(transport._frame("hello", 1, {"token": token, "role": "pull"},
                                               ())))
        if _read_frame(sock)[0] != "r":
            raise ConnectionError("the object's holder refused the stream")
        sock.sendall(b"".join(transport._frame("stream_object", 2,
                                               {"path": path, "off": off, "len": n}, ())))
        kind, body = _read_frame(sock)
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
