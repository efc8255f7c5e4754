"""The head's wire port against unauthenticated and hostile peers, from raw sockets
(issue 13 items 8 and 10)."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import sys
import textwrap

import pytest

from shoal._private.wire import transport
from tests.conftest import cluster_with_fd_limit

DRIVER = textwrap.dedent("""
    import sys, shoal as ray
    ray.init(address=sys.argv[1])
    @ray.remote
    def f(x):
        return x + 1
    print("RESULT", ray.get(f.remote(41)), flush=True)
    ray.shutdown()
""")


@pytest.fixture
def cluster():
    with cluster_with_fd_limit() as c:
        yield c


def _host_port(address: str) -> tuple[str, int]:
    tcp = transport.split_address(address)[0] or address
    host, _, port = tcp.rpartition(":")
    return host.strip("[]"), int(port)


def test_1100_idle_connections_do_not_stop_a_real_driver(cluster):
    host, port = _host_port(cluster.address)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1400:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    idle = []
    try:
        for _ in range(1100):
            s = socket.create_connection((host, port), timeout=10)
            idle.append(s)
        out = subprocess.run([sys.executable, "-c", DRIVER, cluster.address],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "SHOAL_CONNECT_TIMEOUT_S": "20"})
        assert "RESULT 42" in out.stdout, out.stderr[-2000:]
    finally:
        for s in idle:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_transfer_handlers_take_object_ids_not_paths(cluster, tmp_path):
    """An authenticated peer naming a file by path gets nothing; ``free`` deletes nothing."""
    secret = tmp_path / "secret"
    secret.write_text("do not read")
    victim = tmp_path / "victim"
    victim.write_text("do not delete")
    token = cluster.list_all_nodes()[0].session.read_token()

    async def main():
        conn = await transport.connect(cluster.address, token, hello={"role": "tool"},
                                       timeout=10)
        try:
            for body in ({"path": str(secret), "off": 0, "len": 100},
                         {"oid": "../../" + str(secret), "off": 0, "len": 100},
                         {"oid": "ab" * 28, "off": 0, "len": 100}):
                with pytest.raises(transport.RemoteError) as info:
                    await conn.request("read_chunk", body, timeout=10)
                assert "do not read" not in str(info.value.body)
            conn.send("free", {"paths": [str(victim)], "oids": [str(victim)]})
            await conn.request("get_nodes", {}, timeout=10)  # the free has been handled
        finally:
            conn.close()

    asyncio.run(main())
    assert victim.read_text() == "do not delete"


def test_worker_logs_rotate_by_size_and_keep_their_name(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from shoal._private.node import logs, output

    monkeypatch.setenv("SHOAL_LOG_MAX_BYTES", "1000")
    monkeypatch.setenv("SHOAL_LOG_BACKUP_COUNT", "2")
    name = tmp_path / "worker-0123abcd-42.log"
    wp = SimpleNamespace(log_file=open(name, "ab", buffering=0))  # noqa: SIM115
    try:
        for i in range(100):
            output.write_log(wp, f"line {i:04d} ".encode() * 10 + b"\n")
    finally:
        wp.log_file.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [name.name, name.name + ".1", name.name + ".2"]
    assert all(p.stat().st_size < 1000 + 200 for p in tmp_path.iterdir())
    assert b"line 0099" in name.read_bytes()  # the newest lines are in the current file
    assert logs._WORKER_LOG.match(name.name)  # the log readers still find it


def test_daemon_log_is_a_rotating_handler(tmp_path, monkeypatch):
    import logging
    import logging.handlers

    from shoal._private.launch import daemon

    (tmp_path / "logs").mkdir()
    monkeypatch.setenv("SHOAL_LOG_MAX_BYTES", "2000")
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    monkeypatch.setattr(daemon.asyncio, "run", lambda coro: coro.close())
    try:
        daemon.main(["--session-dir", str(tmp_path)])
        handlers = root.handlers[:]
        assert any(isinstance(h, logging.handlers.RotatingFileHandler) for h in handlers)
        for _ in range(200):
            logging.getLogger("shoal.test").warning("x" * 100)
        assert (tmp_path / "logs" / "node.log.1").exists()
        assert (tmp_path / "logs" / "node.log").stat().st_size <= 2000
    finally:
        for h in root.handlers:
            h.close()
        root.handlers = saved
