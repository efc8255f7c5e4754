"""The head's dashboard port against idle and slow connections, from raw sockets (issue 13
item 8): they must not take the head's file descriptors from its real clients."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import cluster_with_fd_limit, wait_for_condition
from tests.integration.test_security_wire import DRIVER


@pytest.fixture
def head():
    with cluster_with_fd_limit() as c:
        yield c


def _get(url: str, timeout: float = 10) -> dict:
    with urllib.request.urlopen(url + "/api/cluster", timeout=timeout) as r:
        return json.load(r)


def _answers(url: str) -> bool:
    try:
        return _get(url, timeout=2)["nodes"]["alive"] == 1
    except OSError:
        return False


def test_1100_idle_connections_to_the_dashboard_do_not_stop_it_or_the_wire(head):
    url = head.head_node.info["webui_url"]  # http://host:port
    host, port = url.removeprefix("http://").rsplit(":", 1)
    wait_for_condition(lambda: _answers(url), timeout=15)  # it starts after READY
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1400:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    idle = []
    try:
        for _ in range(1100):
            idle.append(socket.create_connection((host, int(port)), timeout=10))
        assert _get(url, timeout=20)["nodes"]["alive"] == 1
        out = subprocess.run([sys.executable, "-c", DRIVER, head.address],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "SHOAL_CONNECT_TIMEOUT_S": "20"})
        assert "RESULT 42" in out.stdout, out.stderr[-2000:]
    finally:
        for s in idle:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
