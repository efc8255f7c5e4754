"""Starting (or not) the dashboard with a cluster: include_dashboard, taken ports."""

from __future__ import annotations

import json
import os
import socket
import urllib.request

import pytest

import shoal
from tests.conftest import shoal_processes, wait_for_condition


def _listener() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def _stop(session_dir: str) -> None:
    shoal.shutdown()
    wait_for_condition(lambda: not shoal_processes(session_dir), timeout=15)


def test_include_dashboard_false_serves_nothing():
    ctx = shoal.init(num_cpus=1, include_dashboard=False)
    try:
        assert ctx.dashboard_url is None and ctx["webui_url"] is None
        with open(os.path.join(ctx["session_dir"], "address.json")) as f:
            assert json.load(f)["webui_url"] is None
    finally:
        _stop(ctx["session_dir"])


def test_default_port_taken_falls_back_to_a_free_one(monkeypatch):
    taken = _listener()
    port = taken.getsockname()[1]
    monkeypatch.setenv("SHOAL_DASHBOARD_PORT", str(port))
    ctx = shoal.init(num_cpus=1)
    try:
        host, got = ctx.dashboard_url.split(":")
        assert int(got) != port
        with urllib.request.urlopen(f"http://{ctx.dashboard_url}/api/cluster", timeout=10) as r:
            assert json.load(r)["nodes"]["alive"] == 1
    finally:
        taken.close()
        _stop(ctx["session_dir"])


def test_an_explicit_port_taken_is_an_error_that_names_it():
    taken = _listener()
    port = taken.getsockname()[1]
    before = {p.pid for p in shoal_processes()}
    try:
        with pytest.raises(RuntimeError, match=f"dashboard at 127.0.0.1:{port}.*in use"):
            shoal.init(num_cpus=1, dashboard_port=port)
    finally:
        taken.close()
    assert not shoal.is_initialized()
    wait_for_condition(lambda: {p.pid for p in shoal_processes()} <= before, timeout=15)


def test_dropped_task_records_are_counted(monkeypatch):
    from prometheus_client.parser import text_string_to_metric_families

    monkeypatch.setenv("SHOAL_TASK_EVENTS_MAX", "5")
    ctx = shoal.init(num_cpus=1, dashboard_port=0)
    try:
        @shoal.remote
        def one(i):
            return i

        assert shoal.get([one.remote(i) for i in range(8)]) == list(range(8))
        base = f"http://{ctx.dashboard_url}"
        with urllib.request.urlopen(base + "/api/cluster", timeout=10) as r:
            overview = json.load(r)
        assert overview["tasks"]["FINISHED"] == 5 and overview["task_records_dropped"] == 3
        with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
            fams = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
        assert fams["shoal_task_records_dropped"].samples[0].value == 3
    finally:
        _stop(ctx["session_dir"])
