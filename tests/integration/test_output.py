"""Workers' output at the driver, as Ray prints it: ``(task_name pid=N)`` / ``(Actor pid=N)``
prefixes, stdout and stderr kept apart, and nothing lost when the driver exits at once."""

from __future__ import annotations

import re

from tests.integration.scripts import plain, run_script


def test_task_output_is_prefixed_with_the_task_name(tmp_path):
    proc = run_script(str(tmp_path / "main.py"), """
        import sys
        import shoal as ray

        @ray.remote
        def foo():
            print("foo stdout")
            print("foo stderr", file=sys.stderr)

        @ray.remote
        def bar():
            print("bar stdout")
            print("bar stderr", file=sys.stderr)

        ray.init(num_cpus=2)
        ray.get([foo.remote(), bar.remote(), foo.options(name="renamed").remote()])
    """)
    assert proc.returncode == 0, proc.stderr
    out, err = plain(proc.stdout), plain(proc.stderr)
    assert re.search(r"^\(foo pid=\d+\) foo stdout$", out, re.M), out
    assert re.search(r"^\(bar pid=\d+\) bar stdout$", out, re.M), out
    assert re.search(r"^\(renamed pid=\d+\) foo stdout$", out, re.M), out
    assert re.search(r"^\(foo pid=\d+\) foo stderr$", err, re.M), err
    assert re.search(r"^\(bar pid=\d+\) bar stderr$", err, re.M), err
    assert "stderr" not in out and "stdout" not in err


def test_actor_output_is_prefixed_with_its_class_then_its_repr(tmp_path):
    proc = run_script(str(tmp_path / "main.py"), """
        import sys
        import shoal as ray

        @ray.remote
        class Actor1:
            def f(self):
                print("hi stdout")
                print("hi stderr", file=sys.stderr)

        @ray.remote
        class Actor2:
            def __init__(self, index):
                print("init stdout")
                print("init stderr", file=sys.stderr)
                self.index = index

            def f(self):
                print("bye stdout")
                print("bye stderr", file=sys.stderr)

            def __repr__(self):
                return f"Actor2(index={self.index})"

        ray.init(num_cpus=2)
        ray.get([Actor1.remote().f.remote(), Actor2.remote(1).f.remote()])
    """)
    assert proc.returncode == 0, proc.stderr
    out, err = plain(proc.stdout), plain(proc.stderr)
    assert re.search(r"^\(Actor1 pid=\d+\) hi stdout$", out, re.M), out
    assert re.search(r"^\(Actor1 pid=\d+\) hi stderr$", err, re.M), err
    # __init__ speaks under the class name; the repr is used once __init__ has run.
    assert re.search(r"^\(Actor2 pid=\d+\) init stdout$", out, re.M), out
    assert re.search(r"^\(Actor2 pid=\d+\) init stderr$", err, re.M), err
    assert re.search(r"^\(Actor2\(index=1\) pid=\d+\) bye stdout$", out, re.M), out
    assert re.search(r"^\(Actor2\(index=1\) pid=\d+\) bye stderr$", err, re.M), err


def test_prefix_is_cyan_unless_ray_color_prefix_is_0(tmp_path):
    code = """
        import shoal as ray

        @ray.remote
        def hello():
            print("hello")

        ray.init(num_cpus=1)
        ray.get(hello.remote())
    """
    colored = run_script(str(tmp_path / "main.py"), code)
    assert re.search(r"\x1b\[36m\(hello pid=\d+\)\x1b\[0m hello", colored.stdout), colored.stdout
    bare = run_script(str(tmp_path / "main.py"), code, env={"RAY_COLOR_PREFIX": "0"})
    assert re.search(r"^\(hello pid=\d+\) hello$", bare.stdout, re.M), bare.stdout
    assert "\x1b[" not in bare.stdout


def test_task_output_is_printed_before_the_driver_exits(tmp_path):
    proc = run_script(str(tmp_path / "main.py"), """
        import shoal as ray

        ray.init(num_cpus=1)

        @ray.remote
        def chatty():
            for i in range(3000):
                print(f"line {i}")
            return "done"

        print(ray.get(chatty.remote()))
    """, env={"RAY_COLOR_PREFIX": "0"})
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if " line " in ln]
    assert len(lines) == 3000, proc.stdout[-500:]
    assert lines[-1].endswith(") line 2999")


def test_actor_output_is_printed_before_the_driver_exits(tmp_path):
    proc = run_script(str(tmp_path / "main.py"), """
        import shoal as ray

        ray.init(num_cpus=1)

        @ray.remote
        class Talker:
            def __init__(self):
                for i in range(1500):
                    print(f"init {i}")

            def talk(self):
                for i in range(1500):
                    print(f"talk {i}")
                return "done"

        t = Talker.remote()
        print(ray.get(t.talk.remote()))
    """, env={"RAY_COLOR_PREFIX": "0"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert len(re.findall(r"^\(Talker pid=\d+\) init \d+$", out, re.M)) == 1500, out[-300:]
    assert len(re.findall(r"^\(Talker pid=\d+\) talk \d+$", out, re.M)) == 1500, out[-300:]


def test_log_files_keep_only_what_the_worker_wrote(tmp_path):
    proc = run_script(str(tmp_path / "main.py"), """
        import os
        import shoal as ray
        from shoal.util import state

        ray.init(num_cpus=1)

        @ray.remote
        def a():
            print("from a")
            return os.getpid()

        @ray.remote
        def b():
            print("from b")
            return os.getpid()

        pids = {ray.get(a.remote()), ray.get(b.remote())}
        text = "".join(line for pid in pids for line in state.get_log(pid=pid))
        assert "from a" in text and "from b" in text, text
        assert "\\x1e" not in text and "shoal-name" not in text, repr(text)
        print("LOG OK")
    """)
    assert proc.returncode == 0, proc.stderr
    assert "LOG OK" in proc.stdout


def test_output_from_another_node_is_printed_before_the_driver_exits(tmp_path):
    from shoal.cluster_utils import Cluster
    from tests.conftest import shoal_processes, wait_for_condition

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1, resources={"side": 1})
    sessions = [n.session.path for n in c.list_all_nodes()]
    try:
        proc = run_script(str(tmp_path / "main.py"), f"""
            import sys

            import shoal as ray

            ray.init(address={c.head_node.session.path!r})

            @ray.remote(resources={{"side": 1}})
            def far():
                for i in range(3000):
                    print(f"far {{i}}")
                return "done"

            # One write: a print() is two (the text, then the newline), and the lines
            # still arriving from the far node may land between them.
            sys.stdout.write(ray.get(far.remote()) + "\\n")
        """, env={"RAY_COLOR_PREFIX": "0"})
    finally:
        c.shutdown()
        for s in sessions:
            wait_for_condition(lambda s=s: not shoal_processes(s), timeout=15)
    assert proc.returncode == 0, proc.stderr
    assert len(re.findall(r"^\(far pid=\d+\) far \d+$", proc.stdout, re.M)) == 3000, \
        proc.stdout[-300:]
