"""How a node daemon talks to the control store: in the same process, or over a connection."""

from __future__ import annotations


class LocalHeadLink:
    """The head's own node daemon: the control store lives in the same process."""

    def __init__(self, store, daemon):
        self.store = store
        self.daemon = daemon

    async def register_node(self, body: dict) -> None:
        self.store.register_node(body, None, local=self.daemon)

    def update_resources(self, body: dict) -> None:
        self.store.update_resources(body)

    def send(self, kind: str, body: dict) -> None:
        self.store.local_message(kind, body)


class RemoteHeadLink:
    """A node daemon on another node (or another daemon on this machine): a connection."""

    def __init__(self, conn):
        self.conn = conn

    async def register_node(self, body: dict) -> None:
        await self.conn.request("register_node", body)

    def update_resources(self, body: dict) -> None:
        if not self.conn.closed:
            self.conn.send("node_resources", body)

    def send(self, kind: str, body: dict) -> None:
        if not self.conn.closed:
            self.conn.send(kind, body)


class RemoteNodeLink:
    """The head's handle on a remote node daemon (for actor leases), over its connection."""

    def __init__(self, conn, node_id: bytes):
        self.conn = conn
        self.node_id = node_id

    async def lease_worker(self, body: dict) -> dict:
        reply, _ = await self.conn.request("request_lease", body)
        return reply

    def return_lease(self, body: dict) -> None:
        if not self.conn.closed:
            self.conn.send("return_lease", body)

    async def ask(self, kind: str, body: dict | None = None) -> dict:
        """A question of the node's (node_info, list_tasks, memory_summary, list_logs,
        read_log); a RemoteError carries the node's reason when it cannot answer."""
        return (await self.conn.request(kind, body or {}, timeout=10))[0]

    async def reserve_bundle(self, body: dict) -> dict:
        return (await self.conn.request("reserve_bundle", body))[0]

    async def release_bundle(self, body: dict) -> dict:
        return (await self.conn.request("release_bundle", body))[0]

    def kill_worker(self, worker_id: bytes) -> None:
        if not self.conn.closed:
            self.conn.send("kill_worker", {"worker_id": worker_id})

    def set_worker_job(self, worker_id: bytes, job_id) -> None:
        if not self.conn.closed:
            self.conn.send("set_worker_job", {"worker_id": worker_id, "job_id": job_id})
