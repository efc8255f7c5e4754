"""The head's services interface: the head resolves a service from its name and drives it
through bind/start/stop, without importing it."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

import pytest

from shoal._private.head import services
from shoal._private.wire.config import config


class _Service:
    def bind(self, host, port, advertise_ip):
        return f"http://{advertise_ip}:1"

    async def start(self, head):
        pass

    async def stop(self):
        pass


def make_service():
    return _Service()


def make_nothing():
    return object()


def test_load_resolves_module_and_factory():
    svc = services.load(f"{__name__}:make_service")
    assert isinstance(svc, _Service) and isinstance(svc, services.HeadService)


@pytest.mark.parametrize("spec", ["no_colon", ":f", "mod:"])
def test_load_wants_module_colon_factory(spec):
    with pytest.raises(ValueError, match="module:factory"):
        services.load(spec)


def test_load_refuses_what_is_not_a_service():
    with pytest.raises(TypeError, match="not a head service"):
        services.load(f"{__name__}:make_nothing")


def test_the_default_dashboard_is_a_head_service_that_binds_before_start():
    svc = services.load(config.dashboard_service)
    assert isinstance(svc, services.HeadService)
    url = svc.bind("127.0.0.1", 0, "127.0.0.1")
    try:
        port = svc.sock.getsockname()[1]
        assert url == f"http://127.0.0.1:{port}"
        with pytest.raises(services.ServiceBindError) as info:  # an explicit taken port
            services.load(config.dashboard_service).bind("127.0.0.1", port, "127.0.0.1")
        assert f"127.0.0.1:{port}" in info.value.strerror
    finally:
        svc.sock.close()


def test_queries_give_the_tables_as_dicts():
    class Entry:
        def __init__(self, d):
            self.d = d

        def public(self):
            return dict(self.d)

    killed = []
    table = SimpleNamespace(actors={b"a": Entry({"actor_id": b"a", "pid": 7})},
                            kill=lambda aid, no_restart, why: [(aid, no_restart, why)])
    store = SimpleNamespace(
        actors=SimpleNamespace(table=table, _run=killed.extend),
        pgs=SimpleNamespace(groups={b"g": Entry({"placement_group_id": b"g"})}),
        node_list=lambda: [{"node_id": b"n"}], job_list=lambda: [],
        db=SimpleNamespace(path="/s/head.db"))
    q = services.HeadQueries(store)
    assert q.actor_list() == [{"actor_id": b"a", "pid": 7}]
    assert q.actor(b"a")["pid"] == 7 and q.actor(b"b") is None
    assert q.pg_list() == [{"placement_group_id": b"g"}]
    assert q.node_list() == [{"node_id": b"n"}] and q.job_list() == []
    assert q.db_path == "/s/head.db"
    assert services.HeadQueries(SimpleNamespace(db=None)).db_path == ""
    assert q.kill_actor(b"a", True, "why") and killed == [(b"a", True, "why")]
    assert not q.kill_actor(b"b", True, "why")


def test_dashboard_service_closes_its_port_when_it_cannot_start():
    from shoal.dashboard.server import DashboardService

    class Loop:
        async def run_in_executor(self, _pool, _fn):
            raise ImportError("no aiohttp")

    svc = DashboardService()
    svc.bind("127.0.0.1", 0, "127.0.0.1")
    with pytest.raises(ImportError):
        asyncio.run(svc.start(services.HeadContext(services.HeadQueries(None), "t", Loop())))
    assert svc.sock.fileno() == -1
    assert isinstance(svc.sock, socket.socket)
