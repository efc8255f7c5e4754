"""Moving objects between nodes: a node daemon pulls a segment from the daemon that holds it.

The puller asks for chunks (several in flight at once) and writes each with ``pwrite`` into a
new local segment, which it then seals as a *replica*. The holder remembers which nodes took
replicas, so that freeing the primary copy frees them too.
"""

from __future__ import annotations

import asyncio
import logging
import os

from .aio import spawn
from .config import config
from .transport import Connection

log = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024
IN_FLIGHT = 4


class ObjectTransfer:
    def __init__(self, daemon):
        self.d = daemon
        self.replicas: dict[str, set[tuple[bytes, str]]] = {}  # primary path -> (node, path)
        self.pulled: dict[str, str] = {}  # remote path -> local replica path
        self.inflight: dict[str, asyncio.Future] = {}

    # -- serving ----------------------------------------------------------------------------
    def read_chunk(self, conn: Connection, body: dict, req_id: int) -> None:
        try:
            fd = os.open(body["path"], os.O_RDONLY)
        except FileNotFoundError:
            conn.reply_error(req_id, f"object segment {body['path']} is gone", lost=True)
            return
        try:
            data = os.pread(fd, body["len"], body["off"])
        finally:
            os.close(fd)
        conn.reply(req_id, {"n": len(data)}, [data])

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
        name = os.path.basename(body["path"]).rsplit("-", 1)[-1]
        local = os.path.join(config.shm_dir, f"shoal-{self.d.session_tag}-{name}")
        fd = os.open(local, os.O_CREAT | os.O_TRUNC | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, size)
            offsets = list(range(0, size, CHUNK))
            sem = asyncio.Semaphore(IN_FLIGHT)

            async def one(off: int) -> None:
                async with sem:
                    reply, bufs = await conn.request(
                        "read_chunk", {"path": body["path"], "off": off,
                                       "len": min(CHUNK, size - off)})
                os.pwrite(fd, bufs[0], off)

            await asyncio.gather(*(one(o) for o in offsets))
        except BaseException:
            os.close(fd)
            try:
                os.unlink(local)
            except OSError:
                pass
            raise
        os.close(fd)
        self.d.objects[local] = (size, body.get("owner") or b"")
        self.d.store_bytes += size
        self.pulled[body["path"]] = local
        conn.send("add_replica", {"path": body["path"], "node_id": self.d.node_id,
                                  "replica": local})
        return local

    def forget_local(self, path: str) -> None:
        for src, local in list(self.pulled.items()):
            if local == path:
                del self.pulled[src]
