"""Fixtures of the end-to-end tests: a private session root for ``shoal`` commands, and a
head started with ``shoal start --head`` in it.

Every command runs as a subprocess (``python -m shoal.cli ...``) with ``SHOAL_SESSION_ROOT``
pointing at a directory of its own, so the tests never see nor stop another cluster of this
machine. That directory is made by ``mkdtemp`` in the system temp directory rather than under
pytest's ``tmp_path``: a session's Unix socket paths must stay under 108 bytes.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import psutil
import pytest

from tests.conftest import shm_entries, shoal_processes, wait_for_condition


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cli:
    """Runs ``shoal`` commands against one private session root."""

    def __init__(self, root: str):
        self.root = root
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("SHOAL_TOKEN", "SHOAL_ADDRESS", "RAY_ADDRESS")}
        self.env["SHOAL_SESSION_ROOT"] = root

    def run(self, *args: str, timeout: float = 60, env: dict | None = None,
            input: str | None = None):
        return subprocess.run([sys.executable, "-m", "shoal.cli", *args], capture_output=True,
                              text=True, timeout=timeout, env={**self.env, **(env or {})},
                              input=input)

    def python(self, code: str, timeout: float = 60):
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout, env=self.env)

    def sessions(self) -> list[str]:
        return sorted(os.path.join(self.root, n) for n in os.listdir(self.root)
                      if n.startswith("session_2"))

    def processes(self) -> list:
        return [p for s in self.sessions() for p in shoal_processes(s)]

    def shm(self) -> list[str]:
        return [f for s in self.sessions() for f in shm_entries(s.rsplit("_", 1)[-1])]


@pytest.fixture
def cli():
    root = tempfile.mkdtemp(prefix="shoal-e2e-")
    c = Cli(root)
    try:
        yield c
    finally:
        c.run("stop", "--force")
        wait_for_condition(lambda: not c.processes(), timeout=15,
                           msg="(shoal processes left after `shoal stop --force`)")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def head(cli):
    """A head started with ``shoal start --head``: its port, address, token and output."""
    port, dport = _free_port(), _free_port()
    r = cli.run("start", "--head", "--port", str(port), "--num-cpus", "1",
                "--dashboard-port", str(dport))
    assert r.returncode == 0, r.stderr
    (session,) = cli.sessions()
    with open(os.path.join(session, "token")) as f:
        token = f.read().strip()
    return {"port": port, "address": f"127.0.0.1:{port}", "token": token, "out": r.stdout,
            "session": session, "dashboard_port": dport}


def lan_ip() -> str | None:
    """An IPv4 address of this machine other than loopback, that a socket can bind."""
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family != socket.AF_INET:
                continue
            ip = ipaddress.ip_address(a.address)
            if ip.is_loopback or ip.is_link_local:
                continue
            with socket.socket() as s:
                try:
                    s.bind((a.address, 0))
                except OSError:
                    continue
            return a.address
    return None
