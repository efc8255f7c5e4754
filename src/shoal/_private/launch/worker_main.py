"""Process entry of a worker: ``python -m shoal._private.launch.worker_main --node-address ...``.

The I/O loop runs in a background thread; the main thread runs tasks (so that a cancel can
interrupt it with SIGINT and user code sees an ordinary main thread). A worker exits when its
node daemon goes away: it never outlives its node.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL us if the node daemon (our parent) dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() == 1:
        os._exit(1)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="shoal-worker")
    p.add_argument("--node-address", required=True)
    p.add_argument("--worker-id", required=True)
    p.add_argument("--node-id", required=True)
    p.add_argument("--session-tag", required=True)
    p.add_argument("--zygote", type=int, default=None,
                   help="serve as the node's worker fork server on this socket fd")
    args = p.parse_args(argv)
    _die_with_parent()
    if args.zygote is not None:
        from . import zygote

        zygote.serve(args.zygote, main)
        return
    session_dir = os.environ["SHOAL_SESSION_DIR"]
    from ..wire import worker_output

    worker_output.install()  # before logging takes a reference to sys.stderr
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")

    from ..runtime.core import CoreRuntime
    from ..runtime.current import set_runtime
    from ..wire.session import Session
    from ..worker.actor_executor import ActorExecutor
    from ..worker.executor import TaskExecutor

    token = Session.open(session_dir).read_token()
    rt = CoreRuntime(
        mode="worker", session_dir=session_dir, session_tag=args.session_tag,
        node_address=args.node_address, node_id=bytes.fromhex(args.node_id), token=token,
        worker_id=bytes.fromhex(args.worker_id),
        node_ip=os.environ.get("SHOAL_NODE_IP") or None,
        head_address=os.environ.get("SHOAL_HEAD_ADDRESS") or None,
    )
    rt.on_node_lost = lambda: os._exit(0)
    executor = TaskExecutor(rt)
    ActorExecutor(rt, executor)
    set_runtime(rt)
    rt.start()
    rt.call(rt.node_conn.request("register_worker", {
        "worker_id": rt.worker_id, "address": rt.address, "pid": os.getpid(),
    }))
    executor.run_forever()


if __name__ == "__main__":
    main()
