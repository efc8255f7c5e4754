"""The pure parts of a worker's per-call environment (see ``_private/runtime/worker_env.py``)."""

from __future__ import annotations

import os
import sys

import pytest

from shoal._private.runtime import worker_env as we


@pytest.mark.parametrize("res, expected", [
    ({}, 1), ({"CPU": 0.5}, 1), ({"CPU": 1}, 1), ({"CPU": 2.9}, 2), ({"CPU": 8}, 8),
    ({"CPU_group_0_ab": 3, "bundle_group_0_ab": 0.001}, 3),
])
def test_omp_threads_is_the_floor_of_the_cpus_and_at_least_one(res, expected):
    assert we.omp_threads(res) == expected


def test_child_env_vars_override_the_parents_key_by_key():
    parent = {"A": "1", "B": "2"}
    assert we.merged_env_vars(parent, {"env_vars": {"B": "3"}}) == {"A": "1", "B": "3"}
    assert we.merged_env_vars(parent, None) == parent
    assert we.merged_env_vars(None, {"pip": ["x"]}) is None


@pytest.fixture
def fresh_env(monkeypatch):
    monkeypatch.setattr(we.CallEnv, "_omp_ours", None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def test_call_env_sets_and_restores(monkeypatch, fresh_env):
    monkeypatch.setenv("SHOAL_T_OLD", "old")
    monkeypatch.delenv("SHOAL_T_NEW", raising=False)
    env = we.CallEnv()
    env.enter({"SHOAL_T_OLD": "${SHOAL_T_OLD}:more", "SHOAL_T_NEW": "x"}, {"CPU": 2})
    assert os.environ["SHOAL_T_OLD"] == "old:more"
    assert os.environ["SHOAL_T_NEW"] == "x" and os.environ["OMP_NUM_THREADS"] == "2"
    env.leave()
    assert os.environ["SHOAL_T_OLD"] == "old" and "SHOAL_T_NEW" not in os.environ
    # Our OMP_NUM_THREADS stays between tasks, but every task gets its own value.
    env.enter(None, {"CPU": 1})
    assert os.environ["OMP_NUM_THREADS"] == "1"
    env.leave()
    env.enter({"OMP_NUM_THREADS": "6"}, {"CPU": 1})
    assert os.environ["OMP_NUM_THREADS"] == "6"
    env.leave()
    env.enter(None, {"CPU": 3})
    assert os.environ["OMP_NUM_THREADS"] == "3"


def test_call_env_sets_omp_again_after_a_task_changed_it(fresh_env):
    env = we.CallEnv()
    env.enter(None, {"CPU": 2})
    os.environ["OMP_NUM_THREADS"] = "8"  # the task's own doing
    env.leave()
    env.enter(None, {"CPU": 2})
    assert os.environ["OMP_NUM_THREADS"] == "2"


def test_call_env_keeps_an_omp_num_threads_set_by_someone_else(monkeypatch, fresh_env):
    monkeypatch.setenv("OMP_NUM_THREADS", "9")
    env = we.CallEnv()
    env.enter(None, {"CPU": 2})
    assert os.environ["OMP_NUM_THREADS"] == "9"
    env.leave()
    assert os.environ["OMP_NUM_THREADS"] == "9"


def test_code_paths_go_first_and_are_swapped_between_jobs(monkeypatch):
    monkeypatch.setattr(sys, "path", ["/lib"])
    paths = we.CodePaths()
    paths.learn(1, ["/job1/script", "/job1/cwd"])
    paths.learn(2, ["/job2"])
    paths.use(1)
    assert sys.path == ["/job1/cwd", "/job1/script", "/lib"]
    paths.use(2)
    assert sys.path == ["/job2", "/lib"]
    paths.use(3)  # nothing known for it: left as it is
    assert sys.path == ["/job2", "/lib"]


def test_runtime_env_validation_uses_rays_messages():
    assert we.validate_runtime_env({"env_vars": {"A": "1"}}) == {"env_vars": {"A": "1"}}
    with pytest.raises(TypeError, match=r"but the key 1 is of type <class 'int'>"):
        we.validate_runtime_env({"env_vars": {1: "a"}})
