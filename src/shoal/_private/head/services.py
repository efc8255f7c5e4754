"""Services the head runs beside its control store (the dashboard is one), behind an interface.

The head does not import its services. It is given each one as data, a ``"module:factory"``
name (the dashboard's is the ``dashboard_service`` setting), resolves it with importlib when
it starts (:func:`load`), and drives what the factory returns as a :class:`HeadService`:

1. ``bind(host, port, advertise_ip)`` before the head says READY: take the port, so that a
   port that is taken fails the start (:class:`ServiceBindError`) and the URL printed is
   true; it returns that URL;
2. ``await start(head)`` once the head runs: ``head`` (:class:`HeadContext`) holds what a
   service may use of the head, the control store's queries (:class:`HeadQueries`), the
   cluster token and the event loop; a service that cannot start raises, the head logs it
   and runs on without it;
3. ``await stop()`` when the head shuts down.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


class ServiceBindError(OSError):
    """A service could not take its address; the head does not start (``strerror`` says
    why, for the person who started it)."""


class HeadQueries:
    """What a head service may ask of the control store: its tables as plain dicts (the
    state API's rows are built from these), the nodes' answers, and the few actions the
    dashboard offers. Reads and actions run on the head's event loop."""

    def __init__(self, store: Any) -> None:
        self._store = store  # the ControlStore

    def node_list(self) -> list[dict]:
        return self._store.node_list()

    def job_list(self) -> list[dict]:
        return self._store.job_list()

    def actor_list(self) -> list[dict]:
        return [a.public() for a in self._store.actors.table.actors.values()]

    def actor(self, actor_id: bytes) -> dict | None:
        entry = self._store.actors.table.actors.get(actor_id)
        return entry.public() if entry is not None else None

    def kill_actor(self, actor_id: bytes, no_restart: bool, reason: str) -> bool:
        """Kill the actor as ``shoal.kill`` does; False if the head does not know it."""
        actors = self._store.actors
        if actor_id not in actors.table.actors:
            return False
        actors._run(actors.table.kill(actor_id, no_restart, reason))
        return True

    def pg_list(self) -> list[dict]:
        return [g.public() for g in self._store.pgs.groups.values()]

    async def fan_out(self, kind: str, body: dict | None = None) -> list[dict]:
        """Every live node daemon's answer to ``kind``; nodes that cannot answer are left
        out."""
        return await self._store.fan_out(kind, body)

    async def ask_node(self, node_id: bytes, kind: str, body: dict | None = None) -> dict:
        """One node's answer; LookupError if the node is unknown or dead."""
        return await self._store.ask_node(node_id, kind, body)

    async def task_answers(self, query: dict | None = None) -> list[dict]:
        return await self._store.task_answers(query)

    async def task_counts(self) -> dict:
        return await self._store.task_counts()

    # -- the head's key-value store (kept in its SQLite file across restarts) --------------
    def kv_get(self, ns: str, key: bytes) -> bytes | None:
        return self._store.kv_get(ns, key)

    def kv_put(self, ns: str, key: bytes, value: bytes, overwrite: bool = True) -> bool:
        return self._store.kv_put(ns, key, value, overwrite)

    def kv_del(self, ns: str, key: bytes) -> bool:
        return self._store.kv_del(ns, key)

    def kv_keys(self, ns: str, prefix: bytes = b"") -> list[bytes]:
        return sorted(k for n, k in self._store.kv if n == ns and k.startswith(prefix))

    @property
    def db_path(self) -> str:
        """Where the head keeps its tables across restarts ("" if it does not)."""
        return getattr(getattr(self._store, "db", None), "path", "") or ""


@dataclass(frozen=True)
class HeadContext:
    """What a started service gets of the head."""

    queries: HeadQueries
    token: str
    loop: asyncio.AbstractEventLoop
    session_dir: str = ""  # the head's session directory (its logs/ and files)
    head_address: str = ""  # what a driver on this machine passes to init() to join
    node_id: str = ""  # the head node's id, hex
    node_ip: str = "127.0.0.1"


@runtime_checkable
class HeadService(Protocol):
    def bind(self, host: str, port: int | None, advertise_ip: str) -> str:
        """Take the address (``port`` None: the service's default); return its URL."""

    async def start(self, head: HeadContext) -> None:
        """Start answering; raise if the service cannot run."""

    async def stop(self) -> None:
        """Stop answering and let go of the address."""


def load(spec: str) -> HeadService:
    """The service that the factory named by ``spec`` (``"package.module:callable"``) makes."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"a head service is named as 'module:factory', not {spec!r}")
    factory = getattr(importlib.import_module(module), name)
    service = factory()
    if not isinstance(service, HeadService):
        raise TypeError(f"{spec} made {type(service).__name__}, which is not a head service "
                        "(bind, start, stop)")
    return service
