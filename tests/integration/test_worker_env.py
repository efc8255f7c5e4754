"""What a task or actor finds in its worker: OMP_NUM_THREADS, runtime_env env_vars, and the
driver's directories on sys.path, as Ray sets them."""

from __future__ import annotations

import json
import os

import pytest

import shoal as ray
from tests.conftest import shoal_processes, wait_for_condition
from tests.integration.scripts import run_script


@pytest.fixture(scope="module", autouse=True)
def cluster():
    os.environ.pop("OMP_NUM_THREADS", None)
    ctx = ray.init(num_cpus=4)
    yield
    ray.shutdown()
    wait_for_condition(lambda: not shoal_processes(ctx["session_dir"]), timeout=15)


@ray.remote
def omp():
    return os.environ.get("OMP_NUM_THREADS")


@ray.remote
class OmpActor:
    def __init__(self):
        self.at_init = os.environ.get("OMP_NUM_THREADS")

    def seen(self):
        return self.at_init, os.environ.get("OMP_NUM_THREADS")


@pytest.mark.parametrize("num_cpus, expected", [
    (None, "1"), (0, "1"), (0.5, "1"), (1, "1"), (2, "2"), (2.5, "2"), (4, "4"),
])
def test_task_gets_omp_num_threads_from_its_cpus(num_cpus, expected):
    f = omp if num_cpus is None else omp.options(num_cpus=num_cpus)
    assert ray.get(f.remote(), timeout=30) == expected


def test_omp_num_threads_is_reset_between_tasks_of_different_shapes():
    shapes = [3, 1, 2, 1, 3, 1] * 2
    got = ray.get([omp.options(num_cpus=n).remote() for n in shapes], timeout=60)
    assert got == [str(n) for n in shapes]


@pytest.mark.parametrize("num_cpus, expected", [(None, "1"), (0.5, "1"), (3, "3")])
def test_actor_gets_omp_num_threads_for_its_lifetime(num_cpus, expected):
    cls = OmpActor if num_cpus is None else OmpActor.options(num_cpus=num_cpus)
    a = cls.remote()
    assert ray.get(a.seen.remote(), timeout=30) == (expected, expected)
    ray.kill(a)


def test_driver_is_left_alone():
    ray.get(omp.options(num_cpus=2).remote())
    assert "OMP_NUM_THREADS" not in os.environ


def test_runtime_env_env_vars_reach_the_task_and_win_over_the_default():
    env = {"env_vars": {"OMP_NUM_THREADS": "5", "SHOAL_TEST_VAR": "on"}}

    @ray.remote
    def both():
        return os.environ.get("OMP_NUM_THREADS"), os.environ.get("SHOAL_TEST_VAR")

    assert ray.get(both.options(runtime_env=env).remote()) == ("5", "on")
    # The next tasks on the same workers do not inherit them.
    assert set(ray.get([both.remote() for _ in range(8)])) == {("1", None)}


def test_env_vars_expand_references_and_are_inherited_by_nested_tasks():
    @ray.remote
    def read():
        return os.environ.get("SHOAL_TEST_VAR"), os.environ.get("SHOAL_TEST_PATH")

    @ray.remote
    def parent():
        return ray.get(read.remote()), ray.get(read.options(
            runtime_env={"env_vars": {"SHOAL_TEST_VAR": "child"}}).remote())

    env = {"env_vars": {"SHOAL_TEST_VAR": "parent", "SHOAL_TEST_PATH": "${HOME}/x"}}
    mine, overridden = ray.get(parent.options(runtime_env=env).remote(), timeout=30)
    home = os.environ["HOME"]
    assert mine == ("parent", f"{home}/x")
    assert overridden == ("child", f"{home}/x")


def test_actor_keeps_its_env_vars():
    @ray.remote
    class Env:
        def get(self):
            return os.environ.get("SHOAL_TEST_VAR")

    a = Env.options(runtime_env={"env_vars": {"SHOAL_TEST_VAR": "actor"}}).remote()
    assert ray.get([a.get.remote() for _ in range(3)]) == ["actor"] * 3
    ray.kill(a)


def test_bad_env_vars_are_refused_with_rays_message():
    f = ray.remote(lambda: 1)
    with pytest.raises(TypeError, match=r"runtime_env\['env_vars'\] must be of type "
                                        r"Dict\[str, str\], got <class 'list'>"):
        f.options(runtime_env={"env_vars": ["A=1"]})
    with pytest.raises(TypeError, match="but the value 1 is of type <class 'int'>"):
        f.options(runtime_env={"env_vars": {"A": 1}})
    with pytest.raises(TypeError, match="The type of keyword 'runtime_env' must be"):
        f.options(runtime_env="env")


def test_drivers_own_omp_and_job_env_vars_reach_workers(tmp_path):
    proc = run_script(str(tmp_path / "main.py"), """
        import json, os
        import shoal as ray

        ray.init(num_cpus=2, runtime_env={"env_vars": {"JOB_VAR": "job"}})

        @ray.remote(num_cpus=2)
        def probe():
            return os.environ.get("OMP_NUM_THREADS"), os.environ.get("JOB_VAR")

        @ray.remote
        class A:
            def probe(self):
                return os.environ.get("OMP_NUM_THREADS"), os.environ.get("JOB_VAR")

        print(json.dumps([ray.get(probe.remote()), ray.get(A.remote().probe.remote())]))
    """, env={"OMP_NUM_THREADS": "7"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [["7", "job"], ["7", "job"]]


def test_modules_next_to_the_driver_script_import_in_tasks_and_actors(tmp_path):
    project = tmp_path / "project"
    elsewhere = tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "sibling.py").write_text(
        "def double(x):\n    return 2 * x\n\n"
        "class Point:\n    def __init__(self, x):\n        self.x = x\n")
    (elsewhere / "from_cwd.py").write_text("VALUE = 'cwd'\n")
    proc = run_script(str(project / "main.py"), """
        import json
        import shoal as ray
        import sibling

        ray.init(num_cpus=2)

        @ray.remote
        def uses_import():
            import from_cwd
            import sibling as s
            return s.double(21), from_cwd.VALUE

        @ray.remote
        class Holder:
            def __init__(self, p):
                self.p = p  # an instance of a class from the sibling module

            def x(self):
                import sibling as s
                return s.double(self.p.x)

        remote_double = ray.remote(sibling.double)  # pickled by reference to its module

        @ray.remote
        def nested():
            return ray.get(remote_double.remote(50))  # submitted by a worker

        h = Holder.remote(sibling.Point(5))
        print(json.dumps([ray.get(uses_import.remote()), ray.get(remote_double.remote(4)),
                          ray.get(h.x.remote()), ray.get(nested.remote())]))
    """, cwd=str(elsewhere))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [[42, "cwd"], 8, 10, 100]
