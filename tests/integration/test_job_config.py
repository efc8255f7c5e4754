"""``init(job_config=JobConfig(...))`` and ``shoal.client()``: what a job's configuration
changes for the driver."""

from __future__ import annotations

import sys

import pytest

import shoal as ray
from shoal.job_config import JobConfig
from tests.conftest import shoal_processes, wait_for_condition


@pytest.fixture
def driver():
    """Starts nothing itself; shuts down whatever cluster the test's init() started."""
    sessions = []
    yield sessions
    if ray.is_initialized():
        sessions.append(ray.get_runtime_context()._rt.session_dir)
    ray.shutdown()
    for s in sessions:
        wait_for_condition(lambda s=s: not shoal_processes(s), timeout=15,
                           msg="(shoal processes left after shutdown)")


def test_job_config_namespace_runtime_env_and_code_path_apply(driver, tmp_path):
    (tmp_path / "jobmod_for_test.py").write_text("VALUE = 42\n")
    env = {"env_vars": {"A": "1"}}
    cfg = JobConfig(ray_namespace="jobns", runtime_env=env, metadata={"team": "x"},
                    code_search_path=[str(tmp_path)])
    ray.init(num_cpus=1, job_config=cfg)
    ctx = ray.get_runtime_context()
    assert ctx.namespace == "jobns"
    assert ctx.runtime_env == env
    assert str(tmp_path) in sys.path
    import jobmod_for_test

    assert jobmod_for_test.VALUE == 42
    assert cfg.metadata == {"team": "x"}

    @ray.remote
    class Named:
        def ns(self):
            return ray.get_runtime_context().namespace

    keep = Named.options(name="in-jobns").remote()
    assert ray.get(ray.get_actor("in-jobns", namespace="jobns").ns.remote()) == "jobns"
    del keep


def test_init_namespace_and_runtime_env_win_over_the_job_config(driver):
    ray.init(num_cpus=1, namespace="mine", runtime_env={"env_vars": {"B": "2"}},
             job_config=JobConfig(ray_namespace="theirs", runtime_env={"env_vars": {}}))
    ctx = ray.get_runtime_context()
    assert ctx.namespace == "mine"
    assert ctx.runtime_env == {"env_vars": {"B": "2"}}


def test_bad_job_settings_are_refused_before_anything_starts(driver):
    with pytest.raises(TypeError, match="must be of type Dict\\[str, str\\]"):
        ray.init(num_cpus=1, runtime_env={"env_vars": {"A": 1}})
    with pytest.raises(TypeError, match="job_config must be a JobConfig"):
        ray.init(num_cpus=1, job_config={"ray_namespace": "x"})
    with pytest.raises(ValueError, match="is not a valid namespace"):
        ray.init(num_cpus=1, namespace="")
    assert not ray.is_initialized()


def test_client_builder_connects_locally(driver):
    with pytest.warns(DeprecationWarning):
        builder = ray.client()
    ctx = builder.namespace("viaclient").connect()
    assert ray.is_initialized() and ray.get_runtime_context().namespace == "viaclient"
    assert ctx.dashboard_url is None or isinstance(ctx.dashboard_url, str)
    driver.append(ray.get_runtime_context()._rt.session_dir)
    ctx.disconnect()
    assert not ray.is_initialized()
    with pytest.raises(ConnectionError, match="Ray Client connections are not supported"):
        ray.client("ray://10.0.0.1:10001", _deprecation_warn_enabled=False).connect()


def test_default_actor_lifetime_detached_applies_to_new_actors(driver):
    ray.init(num_cpus=1, job_config=JobConfig(default_actor_lifetime="detached"))

    @ray.remote
    class Lives:
        def ping(self):
            return "pong"

    Lives.options(name="outlives-handle").remote()  # the handle is dropped at once
    import gc

    gc.collect()
    h = ray.get_actor("outlives-handle")
    assert ray.get(h.ping.remote(), timeout=60) == "pong"
    from shoal.util.state import list_actors

    rows = [a for a in list_actors() if a.name == "outlives-handle"]
    assert rows and rows[0].state == "ALIVE"
    ray.kill(h)
