"""runtime_env for tasks and actors beyond env_vars: working_dir, py_modules and pip give a
task or actor a worker of its own environment (never shared with another environment's),
children inherit it, and an environment that cannot be set up raises RuntimeEnvSetupError
with the reason, leaving the node healthy."""

from __future__ import annotations

import os
import sys

import pytest

import shoal as ray
from shoal.exceptions import ActorDiedError, RuntimeEnvSetupError
from tests.conftest import shoal_processes, wait_for_condition


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ctx = ray.init(num_cpus=2)
    yield ctx
    ray.shutdown()
    wait_for_condition(lambda: not shoal_processes(ctx["session_dir"]), timeout=15)


@pytest.fixture
def project(tmp_path):
    d = tmp_path / "proj"
    d.mkdir()
    (d / "projmod.py").write_text("WHERE = 'from the working_dir'\n")
    (d / "data.txt").write_text("payload\n")
    return d


def _importable(name: str) -> bool:
    try:
        __import__(name)
        return True
    except ImportError:
        return False


@ray.remote
def uses_projmod():
    import projmod

    with open("data.txt") as f:
        return projmod.WHERE, f.read().strip(), os.getpid()


@ray.remote
def can_import(name: str):
    return _importable(name), sys.prefix, os.getpid()


@ray.remote
def parent():
    return ray.get(uses_projmod.remote())[:2]


def test_working_dir_is_the_cwd_and_on_the_path_and_not_shared(project):
    where, data, pid = ray.get(uses_projmod.options(
        runtime_env={"working_dir": str(project)}).remote())
    assert (where, data) == ("from the working_dir", "payload")
    ok, _prefix, plain_pid = ray.get(can_import.remote("projmod"))
    assert ok is False and plain_pid != pid  # the plain task ran in another worker
    # A child of a task inherits its parent's working_dir.
    assert ray.get(parent.options(runtime_env={"working_dir": str(project)}).remote()) == \
        ("from the working_dir", "payload")


def test_py_modules(tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("NAME = 'mypkg here'\n")
    ok, _p, _pid = ray.get(can_import.options(
        runtime_env={"py_modules": [str(pkg)]}).remote("mypkg"))
    assert ok is True


def test_two_pip_specs_get_their_own_packages():
    assert not _importable("appdirs") and not _importable("aenum")
    a = can_import.options(runtime_env={"pip": ["appdirs"]})
    b = can_import.options(runtime_env={"pip": ["aenum"]})
    (a_has, a_prefix, _), (a_not, _, _) = ray.get([a.remote("appdirs"), a.remote("aenum")],
                                                  timeout=300)
    (b_has, b_prefix, _), (b_not, _, _) = ray.get([b.remote("aenum"), b.remote("appdirs")],
                                                  timeout=300)
    assert (a_has, a_not, b_has, b_not) == (True, False, True, False)
    assert a_prefix != b_prefix and "runtime_resources/pip" in a_prefix
    assert ray.get(can_import.remote("appdirs"))[0] is False


def test_a_bad_requirement_raises_runtime_env_setup_error_with_pips_message():
    bad = can_import.options(runtime_env={"pip": ["no-such-package-shoal-test==0.0.1"]})
    with pytest.raises(RuntimeEnvSetupError) as e:
        ray.get(bad.remote("x"), timeout=300)
    assert "no-such-package-shoal-test" in str(e.value)
    assert "No matching distribution" in str(e.value) or "ERROR" in str(e.value)
    assert ray.get(can_import.remote("json"))[0] is True  # the node is fine


def test_workers_that_cannot_start_in_an_env_fail_it_instead_of_looping(tmp_path):
    fake = tmp_path / "shoal"  # a py_module shadowing shoal itself: no worker can start
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('shadowed shoal')\n")
    with pytest.raises(RuntimeEnvSetupError, match="exit before they start"):
        ray.get(can_import.options(runtime_env={"py_modules": [str(fake)]}).remote("x"),
                timeout=120)
    assert ray.get(can_import.remote("json"))[0] is True


@ray.remote
class InEnv:
    def where(self):
        import projmod

        return projmod.WHERE

    def child(self):
        return ray.get(uses_projmod.remote())[0]


def test_actors_get_their_env_and_a_failed_one_dies_saying_why(project):
    a = InEnv.options(runtime_env={"working_dir": str(project)}).remote()
    assert ray.get(a.where.remote()) == "from the working_dir"
    assert ray.get(a.child.remote()) == "from the working_dir"
    b = InEnv.options(runtime_env={"pip": ["no-such-package-shoal-test==0.0.2"]}).remote()
    with pytest.raises(ActorDiedError, match="RuntimeEnvSetupError"):
        ray.get(b.where.remote(), timeout=300)
    ray.kill(a)
