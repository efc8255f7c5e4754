"""A driver's or worker's connection to a head on another node, surviving head restarts.

It looks like a Connection (``request``, ``send``, ``closed``) to the code that uses it.
When the head goes away it reconnects in the background for
``head_reconnect_timeout_s``; requests made meanwhile wait for it instead of failing, and
on reconnecting the process reattaches its job and its actors' ownership and subscribes
to node events again.
"""

from __future__ import annotations

import asyncio
import logging

from ..wire.aio import spawn
from ..wire.config import config
from ..wire.transport import ConnectionLost, connect

log = logging.getLogger(__name__)


class HeadChannel:
    def __init__(self, rt, address: str, conn):
        self.rt = rt
        self.address = address
        self.conn = conn
        self.gave_up = False
        self.close_callbacks: list = []  # called only if the head never comes back
        self._back = asyncio.Event()
        self._back.set()
        conn.close_callbacks.append(self._lost)

    @property
    def closed(self) -> bool:
        return self.gave_up

    def _lost(self, _conn) -> None:
        if self.rt.shutting_down or self.gave_up:
            return
        self._back.clear()
        spawn(self._reconnect())

    async def _reconnect(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.head_reconnect_timeout_s
        hello = {"role": self.rt.mode, "address": self.rt.address}
        while loop.time() < deadline and not self.rt.shutting_down:
            try:
                conn = await connect(self.address, self.rt.token, self.rt._handle,
                                     hello=hello, timeout=2)
                await conn.request("reattach", {"job_id": self.rt.job_id,
                                                "driver": self.rt.mode == "driver",
                                                "owner_id": self.rt.worker_id})
                await conn.request("subscribe", {})
            except (OSError, ConnectionError, TimeoutError):
                await asyncio.sleep(0.5)
                continue
            self.conn = conn
            conn.close_callbacks.append(self._lost)
            self._back.set()
            log.warning("reconnected to the head at %s", self.address)
            return
        self.gave_up = True
        self._back.set()
        for cb in self.close_callbacks:
            cb(self)

    async def _ready(self):
        await asyncio.wait_for(self._back.wait(), config.head_reconnect_timeout_s + 5)
        if self.gave_up:
            raise ConnectionLost(f"the head at {self.address} is gone")
        return self.conn

    async def request(self, kind: str, body=None, bufs=(), timeout: float | None = None):
        while True:
            conn = await self._ready()
            try:
                return await conn.request(kind, body, bufs, timeout=timeout)
            except ConnectionLost:
                if self.gave_up:
                    raise
                await asyncio.sleep(0.05)  # the head went away mid-request: ask again

    def send(self, kind: str, body=None, bufs=()) -> None:
        if self._back.is_set() and not self.conn.closed:
            self.conn.send(kind, body, bufs)

    def close(self) -> None:
        self.gave_up = True
        self.conn.close()
