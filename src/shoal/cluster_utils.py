"""``Cluster``: several real node daemons on one machine, for tests and experiments.

Each node is a separate daemon process with its own worker pool, shared-memory store and
session directory; they talk over TCP on loopback like the nodes of a real cluster. The
processes are tied to this Python process (they exit when it does) and ``shutdown()``
stops them all.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from ._private.launch.local_cluster import _read_ready, daemon_env
from ._private.wire import transport
from ._private.wire.config import config
from ._private.wire.session import Session


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Node:
    """One node daemon of a Cluster."""

    def __init__(self, proc: subprocess.Popen, session: Session, info: dict, args: dict):
        self.proc = proc
        self.session = session
        self.info = info
        self.args = args

    @property
    def node_id(self) -> str:
        return self.info["node_id"]

    @property
    def address(self) -> str:
        return self.info["node_address"]

    @property
    def node_ip_address(self) -> str:
        return self.info.get("node_ip", "127.0.0.1")

    @property
    def unique_id(self) -> str:
        return self.node_id

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def __repr__(self) -> str:
        return f"Node({self.node_id[:12]}, pid={self.proc.pid})"


class Cluster:
    """A cluster of node daemons on this machine (Ray's ``ray.cluster_utils.Cluster``).

    ``Cluster(initialize_head=True, head_node_args={"num_cpus": 2})``, ``add_node(**args)``,
    ``remove_node(node)``, ``wait_for_nodes()``, ``address``, ``connect()``, ``shutdown()``.
    """

    def __init__(self, initialize_head: bool = False, connect: bool = False,
                 head_node_args: dict | None = None, shutdown_at_exit: bool = True):
        self.head_node: Node | None = None
        self.worker_nodes: set[Node] = set()
        self._token: str | None = None
        self._address: str | None = None
        self.connected = False
        if connect and not initialize_head:
            raise RuntimeError("Cannot connect to uninitialized cluster.")
        if initialize_head:
            self.add_node(**(head_node_args or {}))
            if connect:
                self.connect()

    # -- nodes ----------------------------------------------------------------------------
    @property
    def address(self) -> str | None:
        """The head's ``HOST:PORT``; None until the head node is added (as in Ray)."""
        return self._address

    @property
    def gcs_address(self) -> str | None:
        """Ray's other name for :attr:`address`."""
        return self._address

    def list_all_nodes(self) -> list[Node]:
        nodes = [self.head_node] if self.head_node is not None else []
        return nodes + sorted(self.worker_nodes, key=lambda n: n.proc.pid)

    def add_node(self, wait: bool = True, **node_args) -> Node:
        """Start a node daemon (the head first) with ``num_cpus``, ``num_gpus``,
        ``resources``, ``object_store_memory``... as in ``shoal start``."""
        is_head = self.head_node is None
        ip = node_args.pop("node_ip_address", "127.0.0.1")
        sess = Session.create(latest=is_head)
        if is_head:
            self._token = sess.read_token()
        else:
            with open(os.path.join(sess.path, "token"), "w") as f:
                f.write(self._token.decode() if isinstance(self._token, bytes) else self._token)
        cmd = [sys.executable, "-m", "shoal._private.launch.daemon", "--session-dir", sess.path,
               "--ip", ip, "--watch-stdin",
               "--num-cpus", str(node_args.pop("num_cpus", 1))]
        if node_args.get("num_gpus"):
            cmd += ["--num-gpus", str(node_args.pop("num_gpus"))]
        node_args.pop("num_gpus", None)
        resources = dict(node_args.pop("resources", None) or {})
        if resources:
            cmd += ["--resources", json.dumps(resources)]
        if node_args.get("object_store_memory"):
            cmd += ["--object-store-memory", str(node_args.pop("object_store_memory"))]
        node_args.pop("object_store_memory", None)
        if node_args:
            raise ValueError(f"unknown node argument(s): {sorted(node_args)}")
        if is_head:
            cmd += ["--head", "--port", str(_free_port(ip))]
        else:
            cmd += ["--port", "0", "--head-address", self._address]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                start_new_session=True, close_fds=True,
                                env=daemon_env())
        try:
            info = _read_ready(proc, config.start_timeout_s)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        node = Node(proc, sess, info, {"ip": ip})
        if is_head:
            self.head_node = node
            self._address = info["head_address"]
        else:
            self.worker_nodes.add(node)
        if wait:
            self.wait_for_nodes()
        return node

    def remove_node(self, node: Node, allow_graceful: bool = True) -> None:
        """Stop a node's daemon (gracefully, or with SIGKILL) and wait for it to exit."""
        if allow_graceful:
            try:
                node.proc.stdin.close()
            except OSError:
                pass
            try:
                node.proc.wait(10)
            except subprocess.TimeoutExpired:
                node.kill()
        else:
            node.kill()
        node.proc.wait(10)
        _close(node)
        if node is self.head_node:
            self.head_node = None
        else:
            self.worker_nodes.discard(node)

    def _alive_node_ids(self) -> set[str]:
        async def ask():
            conn = await transport.connect(self.address, self._token_bytes(), None,
                                           hello={"role": "tool"}, timeout=5)
            try:
                body, _ = await conn.request("get_nodes", {}, timeout=5)
            finally:
                conn.close()
            return {n["node_id"].hex() for n in body["nodes"] if n["alive"]}

        return asyncio.run(ask())

    def _token_bytes(self) -> bytes:
        t = self._token
        return t if isinstance(t, bytes) else t.encode()

    def wait_for_nodes(self, timeout: float = 30) -> None:
        """Wait until the head lists exactly the nodes this Cluster has running."""
        want = {n.node_id for n in self.list_all_nodes() if n.alive()}
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._alive_node_ids() == want:
                    return
            except (OSError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for nodes {sorted(want)} to be alive")
            time.sleep(0.05)

    # -- drivers --------------------------------------------------------------------------
    def connect(self, namespace: str | None = None, **kwargs):
        """Make this process a driver of the cluster (through the head node)."""
        import shoal

        if self.head_node is None:
            raise RuntimeError("Cannot connect to uninitialized cluster: add the head node "
                               "first (Cluster(initialize_head=True) or add_node()).")
        ctx = shoal.init(address=self.head_node.session.path, namespace=namespace, **kwargs)
        self.connected = True
        return ctx

    def shutdown(self) -> None:
        import shoal

        if self.connected:
            shoal.shutdown()
            self.connected = False
        for node in list(self.worker_nodes):
            self.remove_node(node)
        if self.head_node is not None:
            self.remove_node(self.head_node)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()


def _close(node: Node) -> None:
    """After a node's daemon exited: its pipes, and the memory a dead machine would take
    with it (nodes of one Cluster share this machine's /dev/shm)."""
    for f in (node.proc.stdin, node.proc.stdout):
        try:
            if f is not None:
                f.close()
        except OSError:
            pass
    for path in glob.glob(os.path.join(config.shm_dir, f"shoal-{node.session.tag}-*")):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    shutil.rmtree(os.path.join(node.session.path, "spill"), ignore_errors=True)
