"""Process entry of a node daemon, and of the head (control store + node daemon in one).

Run as ``python -m shoal._private.daemon --session-dir D [--head] ...``. When it is ready it
prints one line ``READY {json}`` on stdout. With ``--watch-stdin`` (the embedded cluster that
``init()`` starts) it shuts down when its stdin closes, i.e. when the driver that started it
exits for any reason, so a crashed driver leaves no process behind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from . import session as session_mod
from .aio import spawn
from .config import config
from .head import ControlStore
from .node import NodeDaemon
from .transport import serve_unix

log = logging.getLogger("shoal.daemon")


class LocalHeadLink:
    """The node daemon's view of a control store living in the same process."""

    def __init__(self, store: ControlStore):
        self.store = store

    async def register_node(self, body: dict) -> None:
        self.store.register_node(body, None)

    def update_resources(self, body: dict) -> None:
        self.store.update_resources(body)


def default_memory(memory: float, store: float) -> dict:
    """Ray's defaults: the store takes 30% of free memory (at most /dev/shm's size), tasks
    may use what is left."""
    import psutil

    avail = psutil.virtual_memory().available
    if not store:
        try:
            st = os.statvfs(config.shm_dir)
            shm = st.f_bavail * st.f_frsize
        except OSError:
            shm = avail
        store = min(avail * 0.3, shm * 0.95)
    if not memory:
        memory = max(avail - store, 0) * 0.7
    return {"memory": float(int(memory)), "object_store_memory": float(int(store))}


async def run(args) -> None:
    sess = session_mod.Session.open(args.session_dir)
    token = sess.read_token()
    total = {"CPU": float(args.num_cpus)}
    total.update(default_memory(args.memory, args.object_store_memory))
    if args.num_gpus:
        total["GPU"] = float(args.num_gpus)
    total.update(json.loads(args.resources or "{}"))
    total = {k: v for k, v in total.items() if v}
    node_id = bytes.fromhex(args.node_id) if args.node_id else os.urandom(28)
    total[f"node:{args.ip}"] = 1.0
    if args.head:
        total["node:__internal_head__"] = 1.0

    store = ControlStore(token) if args.head else None
    node_addr = "unix:" + sess.socket_path("node")
    daemon = NodeDaemon(
        node_id=node_id, session_dir=sess.path, session_tag=sess.tag, address=node_addr,
        ip=args.ip, total=total, head=LocalHeadLink(store), token=token, is_head=args.head,
    )

    def handler(conn, kind, body, bufs, req_id):
        if store is not None and store.handle(conn, kind, body, bufs, req_id):
            return
        if daemon.handle(conn, kind, body, bufs, req_id):
            return
        conn.reply_error(req_id, f"unknown message {kind!r}")

    if store is not None:
        store.actors.node_links[node_id] = daemon
    server = await serve_unix(sess.socket_path("node"), handler, token)
    prestart = config.prestart_workers
    await daemon.start(int(args.num_cpus) if prestart < 0 else prestart)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.watch_stdin:
        spawn(_watch_stdin(stop))
    sess.write_address({"node_address": node_addr, "head_address": node_addr,
                        "pid": os.getpid(), "node_id": node_id.hex()})
    print("READY " + json.dumps({"node_address": node_addr, "node_id": node_id.hex(),
                                 "pid": os.getpid()}), flush=True)
    await stop.wait()
    server.close()
    await daemon.stop()
    sess.cleanup_sockets()


async def _watch_stdin(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass
    stop.set()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="shoal-daemon")
    p.add_argument("--session-dir", required=True)
    p.add_argument("--head", action="store_true")
    p.add_argument("--num-cpus", type=float, default=os.cpu_count() or 1)
    p.add_argument("--num-gpus", type=float, default=0)
    p.add_argument("--memory", type=float, default=0)
    p.add_argument("--object-store-memory", type=float, default=0)
    p.add_argument("--resources", default="{}")
    p.add_argument("--node-id", default="")
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--watch-stdin", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(
        filename=os.path.join(args.session_dir, "logs", "head.log" if args.head else "node.log"),
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(run(args))
    except Exception:
        log.exception("daemon failed")
        print("FAILED see logs in " + args.session_dir, flush=True)
        raise


if __name__ == "__main__":
    main()
