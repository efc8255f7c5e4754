"""Process entry of a node daemon, and of the head (control store + node daemon in one).

Run as ``python -m shoal._private.launch.daemon --session-dir D [--head] ...``. When it is ready it
prints one line ``READY {json}`` on stdout. With ``--watch-stdin`` (the embedded cluster that
``init()`` starts) it shuts down when its stdin closes, i.e. when the driver that started it
exits for any reason, so a crashed driver leaves no process behind.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import logging.handlers
import os
import signal
import sys

from ..head import services
from ..head.control_store import ControlStore
from ..node.daemon import NodeDaemon
from ..node.head_link import LocalHeadLink, RemoteHeadLink
from ..wire import session as session_mod
from ..wire import transport
from ..wire.aio import spawn
from ..wire.config import config
from ..wire.transport import AuthError, connect, serve_tcp, serve_unix
from . import local_cluster

log = logging.getLogger("shoal.daemon")


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


class StartError(Exception):
    """The daemon cannot start; the message says why, for the person who started it."""


async def _join_head(head_address: str, token: bytes, handler, hello: dict):
    try:
        return await connect(head_address, token, handler, hello=hello,
                             timeout=config.connect_timeout_s)
    except AuthError:
        raise StartError(f"the head at {head_address} refused this node: wrong cluster token "
                         "(pass the token printed by `shoal start --head`)") from None
    except TimeoutError:
        raise StartError(f"could not connect to the head at {head_address}: no answer within "
                         f"{config.connect_timeout_s:g} s") from None
    except (OSError, ConnectionError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise StartError(f"could not connect to the head at {head_address}: "
                         f"{reason or type(e).__name__}") from None


async def _rejoin(head_address, token, handler, node_addr, daemon, stop) -> None:
    """The head went away: keep running and try to rejoin it (a restarted head) for
    ``head_reconnect_timeout_s``; shut down if it does not come back."""
    log.warning("lost the head at %s; trying to rejoin for %.0f s", head_address,
                config.head_reconnect_timeout_s)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.head_reconnect_timeout_s
    while loop.time() < deadline and not stop.is_set():
        try:
            conn = await connect(head_address, token, handler,
                                 hello={"role": "node", "address": node_addr}, timeout=2)
        except (OSError, ConnectionError, TimeoutError):
            await asyncio.sleep(0.5)
            continue
        daemon.head = RemoteHeadLink(conn)
        try:
            await daemon.head.register_node(daemon.registration())
        except (OSError, ConnectionError):
            conn.close()
            continue
        conn.close_callbacks.append(daemon.head_lost_callback)
        log.warning("rejoined the head at %s", head_address)
        return
    log.error("the head did not come back within %.0f s: shutting down",
              config.head_reconnect_timeout_s)
    stop.set()


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
    transport.LOCAL_IP["ip"] = args.ip
    cluster = args.port is not None or bool(args.head_address)

    # The dashboard's port first: a port that is taken fails the start before anything runs.
    dashboard, dashboard_url = _bind_dashboard(args) if args.head else (None, None)
    store = ControlStore(token, sess.path) if args.head else None
    head_conn = None
    daemon_ref: list = []

    def handler(conn, kind, body, bufs, req_id):
        if store is not None and store.handle(conn, kind, body, bufs, req_id):
            return None
        if daemon_ref and daemon_ref[0].handle(conn, kind, body, bufs, req_id):
            return None
        conn.reply_error(req_id, f"unknown message {kind!r}")
        return None

    unix_path = sess.socket_path("node")
    servers = [await serve_unix(unix_path, handler, token)]
    tcp = None
    if cluster:
        try:
            srv = await serve_tcp(args.ip, args.port or 0, handler, token)
        except OSError as e:
            why = e.strerror or str(e)
            if e.errno == errno.EADDRINUSE:
                why += (" (is a shoal cluster already running there? `shoal stop` stops "
                        "this machine's; or pass another --port)")
            raise StartError(f"cannot listen on {args.ip}:{args.port}: {why}") from None
        servers.append(srv)
        tcp = f"{args.ip}:{srv.sockets[0].getsockname()[1]}"
    node_addr = transport.join_address(tcp, unix_path)
    if args.head_address:
        head_conn = await _join_head(args.head_address, token, handler,
                                     {"role": "node", "address": node_addr})
        head = RemoteHeadLink(head_conn)
        head_address = args.head_address
    else:
        head = None
        head_address = tcp or node_addr
    daemon = NodeDaemon(
        node_id=node_id, session_dir=sess.path, session_tag=sess.tag, address=node_addr,
        ip=args.ip, total=total, head=head, token=token, is_head=args.head,
    )
    daemon_ref.append(daemon)
    if head is None:
        daemon.head = LocalHeadLink(store, daemon)
    if cluster:
        daemon.worker_env = {"SHOAL_NODE_IP": args.ip, "SHOAL_HEAD_ADDRESS": head_address}
    prestart = config.prestart_workers
    await daemon.start(int(args.num_cpus) if prestart < 0 else prestart)
    if store is not None and store.recovered:
        store.recover()  # a head restarted on its session: take back what it knew

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.watch_stdin:
        spawn(_watch_stdin(stop))
    if head_conn is not None:
        def head_lost(_c):
            if not stop.is_set():
                spawn(_rejoin(args.head_address, token, handler, node_addr, daemon, stop))

        head_conn.close_callbacks.append(head_lost)
        daemon.head_lost_callback = head_lost
        spawn(daemon.heartbeat(config.heartbeat_interval_s))
    if store is not None and cluster:
        spawn(store.monitor(config.node_dead_timeout_s, config.heartbeat_interval_s / 2))
    info = {"node_address": node_addr, "head_address": head_address, "pid": os.getpid(),
            "node_id": node_id.hex(), "node_ip": args.ip, "is_head": args.head,
            "webui_url": dashboard_url,
            "shm_dir": config.shm_dir, **local_cluster.version_info()}
    sess.write_address(info)
    print("READY " + json.dumps(info), flush=True)
    serving = False
    if dashboard is not None:
        head = services.HeadContext(services.HeadQueries(store), token.decode(), loop,
                                    session_dir=sess.path, head_address=head_address,
                                    node_id=node_id.hex(), node_ip=args.ip)
        serving = await _start_dashboard(dashboard, head)
    await stop.wait()
    if serving:
        await dashboard.stop()
    for srv in servers:
        srv.close()
    await daemon.stop()
    sess.cleanup_sockets()


def _bind_dashboard(args):
    """The dashboard (a head service, named by the ``dashboard_service`` setting) with its
    port taken, and its URL; (None, None) without a dashboard."""
    include = config.include_dashboard if args.include_dashboard is None \
        else args.include_dashboard == "true"
    if not include:
        return None, None
    try:
        service = services.load(config.dashboard_service)
    except (ImportError, AttributeError, ValueError, TypeError) as e:
        raise StartError(f"cannot load the dashboard {config.dashboard_service!r}: {e} (or "
                         "pass --include-dashboard false)") from None
    try:
        return service, service.bind(args.dashboard_host, args.dashboard_port, args.ip)
    except services.ServiceBindError as e:
        raise StartError(f"{e.strerror} (pass another --dashboard-port, or "
                         "--include-dashboard false)") from None


async def _start_dashboard(service, head) -> bool:
    """Start answering on the dashboard's port; the head runs on without it if it cannot
    (aiohttp missing, say), and says so in its log."""
    try:
        await service.start(head)
        return True
    except Exception:
        log.exception("the dashboard could not start")
        return False


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
    p.add_argument("--port", type=int, default=None,
                   help="listen on TCP at this port (0: any); enables cluster mode")
    p.add_argument("--include-dashboard", choices=("true", "false"), default=None)
    p.add_argument("--dashboard-host", default="127.0.0.1")
    p.add_argument("--dashboard-port", type=int, default=None,
                   help="the dashboard's port (default 8265, or any free port if taken)")
    p.add_argument("--head-address", default="",
                   help="HOST:PORT of the head to join (a non-head node)")
    args = p.parse_args(argv)
    # Rotated by size (node.log.1, ...): a peer that makes the daemon log cannot fill the disk.
    handler = logging.handlers.RotatingFileHandler(
        os.path.join(args.session_dir, "logs", "head.log" if args.head else "node.log"),
        maxBytes=max(0, config.log_max_bytes), backupCount=max(0, config.log_backup_count))
    logging.basicConfig(handlers=[handler], level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run(args))
    except StartError as e:
        log.error("cannot start: %s", e)
        print(f"FAILED {e}", flush=True)
        sys.exit(1)
    except Exception as e:
        log.exception("daemon failed")
        print(f"FAILED {type(e).__name__}: {e} (see the logs in {args.session_dir})", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
