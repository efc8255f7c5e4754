"""End-to-end tests of the ``shoal`` command line: start, join, status, list, stop.

Every command runs as a subprocess (``python -m shoal.cli ...``) with ``SHOAL_SESSION_ROOT``
pointing at a directory of its own, so the tests never see nor stop another cluster of this
machine, and with ``--port`` set to a free port. That directory is made by ``mkdtemp`` in the
system temp directory rather than under pytest's ``tmp_path``: a session's Unix socket paths
must stay under 108 bytes, which pytest's longer paths could exceed. Each test ends with
``shoal stop --force`` (in the ``cli`` fixture), whatever happened.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import cmdline, wait_for_condition
from tests.e2e.conftest import _free_port


def _join(cli, head, *extra: str, env: dict | None = None):
    return cli.run("start", "--address", head["address"], "--num-cpus", "1", *extra, env=env)


def _active_nodes(cli) -> int:
    r = cli.run("status")
    if r.returncode != 0:
        return -1
    active = r.stdout.split("Active:", 1)[1].split("Dead:", 1)[0]
    return sum(1 for line in active.splitlines() if line.strip().startswith("node_"))


def _daemons(cli) -> list:
    return [p for p in cli.processes() if "shoal._private.launch.daemon" in cmdline(p)]


def _nodes_json(cli, *extra: str) -> list[dict]:
    r = cli.run("list", "nodes", "--format", "json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# -- start --head --------------------------------------------------------------------------
def test_start_head_prints_join_command(cli, head):
    out = head["out"]
    token_file = os.path.join(head["session"], "token")
    assert (f"shoal start --address='127.0.0.1:{head['port']}' --token-file='{token_file}'"
            in out)
    assert head["token"] not in out  # the join command names the file, never the token
    assert "SHOAL_TOKEN" in out
    assert "import shoal; shoal.init()" in out  # no address: the current cluster
    assert "shoal stop" in out and "127.0.0.1" in out
    assert f"http://127.0.0.1:{head['dashboard_port']}" in out  # the port asked for
    with open(os.path.join(head["session"], "dashboard.json")) as f:
        assert json.load(f)["dashboard_port"] == head["dashboard_port"]
    import urllib.request

    url = f"http://127.0.0.1:{head['dashboard_port']}/api/cluster"
    with urllib.request.urlopen(url, timeout=10) as r:
        assert json.load(r)["nodes"]["alive"] >= 1
    # The daemon outlives the command that started it.
    with open(os.path.join(head["session"], "address.json")) as f:
        info = json.load(f)
    assert info["is_head"] and info["head_address"] == head["address"]
    assert any(p.pid == info["pid"] for p in cli.processes())


def test_second_head_on_same_port_fails(cli, head):
    r = cli.run("start", "--head", "--port", str(head["port"]), "--num-cpus", "1")
    assert r.returncode == 1
    assert "in use" in r.stderr and str(head["port"]) in r.stderr
    assert cli.sessions() == [head["session"]]  # the failed attempt left nothing behind
    assert _active_nodes(cli) == 1  # and `address="auto"` still finds the first head


def test_console_script_and_help(cli):
    r = cli.run("--help")
    assert r.returncode == 0
    for cmd in ("start", "stop", "status", "list", "memory"):
        assert cmd in r.stdout
    script = os.path.join(os.path.dirname(sys.executable), "shoal")
    if not os.path.exists(script):
        pytest.skip("the shoal console script is not installed in this environment")
    r = subprocess.run([script, "--version"], capture_output=True, text=True, env=cli.env)
    assert r.returncode == 0 and "shoal" in r.stdout


# -- start --address -----------------------------------------------------------------------
def test_node_joins_and_status_shows_two_nodes(cli, head):
    r = _join(cli, head, "--token", head["token"])
    assert r.returncode == 0, r.stderr
    node_session = [s for s in cli.sessions() if s != head["session"]][0]
    with open(os.path.join(node_session, "address.json")) as f:
        node_id = json.load(f)["node_id"]
    assert node_id in r.stdout and "shoal stop" in r.stdout
    wait_for_condition(lambda: _active_nodes(cli) == 2, timeout=20, msg="(status: 2 nodes)")
    status = cli.run("status").stdout
    assert f"node_{node_id}" in status and "(head)" in status
    assert "0.0/2.0 CPU" in status and "object_store_memory" in status


def test_printed_join_command_works_and_no_argv_holds_the_token(cli, head):
    import re
    import shlex

    line = re.search(r"shoal start --address=\S+ --token-file=\S+", head["out"]).group(0)
    r = cli.run(*shlex.split(line)[1:], "--num-cpus", "1")
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr
    r = cli.run("start", "--address", head["address"], "--num-cpus", "1", "--token-file", "-",
                input=head["token"] + "\n")
    assert r.returncode == 0, r.stderr
    wait_for_condition(lambda: _active_nodes(cli) == 3, timeout=20, msg="(status: 3 nodes)")
    procs = cli.processes()
    assert any("worker_main" in cmdline(p) for p in procs)  # daemons and their workers
    for p in procs:
        with open(f"/proc/{p.pid}/cmdline", "rb") as f:
            assert head["token"].encode() not in f.read(), cmdline(p)


def test_token_in_argv_still_works_with_a_warning(cli, head):
    r = _join(cli, head, "--token", head["token"])
    assert r.returncode == 0, r.stderr
    assert "Warning" in r.stderr and "--token-file" in r.stderr
    assert "Warning" not in _join(cli, head, env={"SHOAL_TOKEN": head["token"]}).stderr


def test_join_token_from_env_or_local_head(cli, head):
    assert _join(cli, head, env={"SHOAL_TOKEN": head["token"]}).returncode == 0
    r = _join(cli, head)  # no token: taken from the head's session on this machine
    assert r.returncode == 0, r.stderr
    wait_for_condition(lambda: _active_nodes(cli) == 3, timeout=20, msg="(status: 3 nodes)")


def test_join_without_token_and_no_local_head_fails(cli):
    r = cli.run("start", "--address", f"127.0.0.1:{_free_port()}")
    assert r.returncode == 1
    assert "token" in r.stderr.lower()


def test_wrong_token_fails_fast(cli, head):
    t0 = time.monotonic()
    r = _join(cli, head, "--token", "0" * 64)
    assert time.monotonic() - t0 < 10
    assert r.returncode == 1
    assert "token" in r.stderr.lower()
    assert cli.sessions() == [head["session"]]  # the failed node left no session behind
    assert len(_daemons(cli)) == 1  # only the head's daemon runs


def test_wrong_port_fails_fast(cli, head):
    t0 = time.monotonic()
    r = cli.run("start", "--address", f"127.0.0.1:{_free_port()}", "--token", head["token"],
                "--num-cpus", "1")
    assert time.monotonic() - t0 < 10
    assert r.returncode == 1
    assert "connect" in r.stderr.lower()


class _NotAHead:
    """A TCP server that is not a shoal head: it closes each connection at once, or holds it
    open without a word (``silent``)."""

    def __init__(self, silent: bool):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.silent = silent
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.silent:
                self.held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self.sock.close()
        for c in self.held:
            c.close()


def test_port_of_another_service_is_not_reported_as_wrong_token(cli):
    other = _NotAHead(silent=False)
    try:
        r = cli.run("start", "--address", f"127.0.0.1:{other.port}", "--num-cpus", "1",
                    env={"SHOAL_TOKEN": "0" * 64})  # no --token: its argv warning names it
    finally:
        other.close()
    assert r.returncode == 1
    assert "token" not in r.stderr.lower(), r.stderr


def test_head_that_never_answers_gives_a_reason(cli):
    other = _NotAHead(silent=True)
    try:
        r = cli.run("start", "--address", f"127.0.0.1:{other.port}", "--token", "0" * 64,
                    "--num-cpus", "1", env={"SHOAL_CONNECT_TIMEOUT_S": "1"})
    finally:
        other.close()
    assert r.returncode == 1 and "connect" in r.stderr
    assert not r.stderr.rstrip().endswith(":"), r.stderr


def test_status_shows_dead_node(cli, head):
    assert _join(cli, head, "--token", head["token"]).returncode == 0
    node_session = [s for s in cli.sessions() if s != head["session"]][0]
    with open(os.path.join(node_session, "address.json")) as f:
        info = json.load(f)
    wait_for_condition(lambda: _active_nodes(cli) == 2, timeout=20, msg="(status: 2 nodes)")
    os.kill(info["pid"], signal.SIGTERM)  # the node's daemon stops; the head sees it go
    wait_for_condition(lambda: _active_nodes(cli) == 1, timeout=20, msg="(node seen dead)")
    status = cli.run("status").stdout
    assert f"node_{info['node_id']}" in status.split("Dead:", 1)[1]
    assert "0.0/1.0 CPU" in status
    (dead,) = _nodes_json(cli, "--filter", "state=DEAD")
    assert dead["node_id"] == info["node_id"]


def test_status_with_address(cli, head):
    r = cli.run("status", "--address", head["address"])  # token from the local session
    assert r.returncode == 0 and "(head)" in r.stdout
    r = cli.run("status", "--address", head["address"], env={"SHOAL_TOKEN": "0" * 64})
    assert r.returncode == 1 and "token" in r.stderr.lower()
    r = cli.run("status", "--address", f"127.0.0.1:{_free_port()}")
    assert r.returncode == 1 and "SHOAL_TOKEN" in r.stderr


# -- drivers, list -------------------------------------------------------------------------
DRIVER = r"""
import shoal
from shoal.util.state import list_actors, list_nodes
shoal.init(address="auto")

@shoal.remote
def plus_one(x):
    return x + 1

@shoal.remote
class Counter:
    def ping(self):
        return "pong"

assert shoal.get(plus_one.remote(1)) == 2
c = Counter.options(name="counter", lifetime="detached").remote()
assert shoal.get(c.ping.remote()) == "pong"
names = [a["name"] for a in list_actors(filters=[("state", "=", "ALIVE")])]
print("ok", len(list_nodes()), names)
"""


def test_driver_runs_task_and_list_actors(cli, head):
    r = cli.python(DRIVER)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok 1 ['counter']"
    out = cli.run("list", "actors", "--format", "json", "--filter", "name=counter")
    assert out.returncode == 0, out.stderr
    (actor,) = json.loads(out.stdout)
    assert actor["class_name"] == "Counter" and actor["state"] == "ALIVE"
    assert actor["pid"] and len(actor["actor_id"]) == 32
    table = cli.run("list", "actors")
    assert "CLASS_NAME" in table.stdout and "Counter" in table.stdout


def test_list_nodes_json(cli, head):
    assert _join(cli, head, "--token", head["token"]).returncode == 0
    wait_for_condition(lambda: len(_nodes_json(cli)) == 2, timeout=20, msg="(2 nodes listed)")
    nodes = _nodes_json(cli)
    assert sorted(n["is_head_node"] for n in nodes) == [False, True]
    assert all(n["state"] == "ALIVE" and n["node_ip"] == "127.0.0.1" for n in nodes)
    assert all(n["resources_total"]["CPU"] == 1 for n in nodes)
    (head_node,) = _nodes_json(cli, "--filter", "is_head_node=true")
    assert head_node["is_head_node"] is True
    assert len(_nodes_json(cli, "--limit", "1")) == 1
    bad = cli.run("list", "nodes", "--filter", "no_such_field=1")
    assert bad.returncode == 2 and "no_such_field" in bad.stderr


PG_DRIVER = r"""
import sys
import shoal
from shoal.util import placement_group
shoal.init(address="auto")
pg = placement_group([{"CPU": 1}], strategy="PACK", name="listed_pg", lifetime="detached")
assert pg.wait(20)
print("READY", flush=True)
"""


def test_list_placement_groups(cli, head):
    out = cli.python(PG_DRIVER)
    assert out.returncode == 0 and "READY" in out.stdout, out.stderr
    r = cli.run("list", "placement-groups", "--format", "json", "--detail")
    assert r.returncode == 0, r.stderr
    (pg,) = [g for g in json.loads(r.stdout) if g["name"] == "listed_pg"]
    assert pg["state"] == "CREATED" and pg["strategy"] == "PACK"
    assert pg["bundles"][0]["unit_resources"] == {"CPU": 1}


TASK_DRIVER = r"""
import sys
import shoal
shoal.init(address="auto")

@shoal.remote
def cli_square(x):
    return x * x

@shoal.remote
def cli_fail():
    raise KeyError("boom")

shoal.get([cli_square.remote(i) for i in range(3)])
try:
    shoal.get(cli_fail.remote())
except KeyError:
    pass
print("READY", flush=True)
sys.stdin.readline()  # task records live with their owner: stay until the test is done
"""


def test_list_and_summarize_tasks(cli, head):
    driver = subprocess.Popen([sys.executable, "-c", TASK_DRIVER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=cli.env)
    try:
        assert driver.stdout.readline().strip() == "READY"
        r = cli.run("list", "tasks", "--format", "json", "--detail")
        assert r.returncode == 0, r.stderr
        rows = json.loads(r.stdout)
        squares = [t for t in rows if t["name"] == "cli_square"]
        assert len(squares) == 3 and all(t["state"] == "FINISHED" for t in squares)
        (failed,) = [t for t in rows if t["name"] == "cli_fail"]
        assert failed["state"] == "FAILED" and failed["error_type"] == "KeyError"
        s = cli.run("summary", "tasks")
        assert s.returncode == 0, s.stderr
        assert "cli_square" in s.stdout and "FINISHED: 3" in s.stdout
        assert "cli_fail" in s.stdout and "FAILED: 1" in s.stdout
    finally:
        driver.stdin.close()
        driver.wait(30)


OBJECT_HOLDER = r"""
import sys
import numpy as np
import shoal
shoal.init(address="auto")

@shoal.remote
def make_list():
    return [1, 2, 3]

big = shoal.put(np.zeros(3 * 1024 * 1024, dtype=np.uint8))
small = shoal.put("small")
made = make_list.remote()
assert shoal.get(made) == [1, 2, 3]
print("READY", big.hex(), small.hex(), made.hex(), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def object_holder(cli, head):
    """A driver holding a 3 MiB put, a small put and a task's return, until killed."""
    proc = subprocess.Popen([sys.executable, "-c", OBJECT_HOLDER], env=cli.env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        line = proc.stdout.readline().split()
        assert line and line[0] == "READY", "the driver did not start"
        yield {"pid": proc.pid, "big": line[1], "small": line[2], "made": line[3]}
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()


def test_memory_shows_node_and_driver_objects(cli, head, object_holder):
    r = cli.run("memory")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    (node,) = _nodes_json(cli)
    assert f"--- Node {node['node_id']} (127.0.0.1) ---" in out
    assert "Object store: 3.00MiB / " in out and "Spilled: 0B in 0 object(s)" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line[:1].isalnum()}
    big = rows[object_holder["big"]]
    assert "3.00MiB" in big and "LOCAL_REFERENCE" in big and "(put)" in big
    assert str(object_holder["pid"]) in big and "DRIVER" in big and "shared memory" in big
    assert "make_list" in rows[object_holder["made"]]
    assert "inline" in rows[object_holder["small"]]
    assert out.rstrip().splitlines()[-1].startswith("3 objects, 3.00MiB in shared memory")
    stats = cli.run("memory", "--stats-only")
    assert stats.returncode == 0 and "Object store:" in stats.stdout
    assert object_holder["big"] not in stats.stdout
    owners = cli.run("memory", "--group-by", "owner", "--limit", "1")
    assert owners.returncode == 0, owners.stderr
    assert f"--- Owner DRIVER pid {object_holder['pid']} on 127.0.0.1" in owners.stdout
    assert object_holder["big"] in owners.stdout  # the largest comes first
    assert object_holder["small"] not in owners.stdout
    assert "2 more row(s) not shown" in owners.stdout


def test_list_objects(cli, head, object_holder):
    r = cli.run("list", "objects", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = {row["object_id"]: row for row in json.loads(r.stdout)}
    assert set(rows) == {object_holder["big"], object_holder["small"], object_holder["made"]}
    big = rows[object_holder["big"]]
    assert big["object_size"] >= 3 * 1024 * 1024 and big["reference_type"] == "LOCAL_REFERENCE"
    assert big["pid"] == object_holder["pid"] and big["type"] == "DRIVER"
    assert rows[object_holder["made"]]["call_site"] == "make_list"
    r = cli.run("list", "objects", "--format", "json", "--detail", "--filter",
                "in_shared_memory=true")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert row["object_id"] == object_holder["big"] and row["spilled"] is False
    table = cli.run("list", "objects", "--filter", "call_site=make_list")
    assert table.returncode == 0, table.stderr
    assert "REFERENCE_TYPE" in table.stdout and object_holder["made"] in table.stdout
    assert object_holder["big"] not in table.stdout
    assert len(json.loads(cli.run("list", "objects", "--format", "json", "--limit",
                                  "1").stdout)) == 1


def test_memory_without_objects(cli, head):
    r = cli.run("memory")
    assert r.returncode == 0, r.stderr
    assert "(no objects)" in r.stdout and r.stdout.rstrip().endswith(
        "0 objects, 0B in shared memory, 0B spilled")
    assert cli.run("list", "objects").stdout.strip() == "No objects found."


def test_status_without_cluster_fails(cli):
    r = cli.run("status")
    assert r.returncode == 1 and "shoal start --head" in r.stderr


# -- stop ----------------------------------------------------------------------------------
HOLDER = r"""
import sys
import numpy as np
import shoal
shoal.init(address="auto")
ref = shoal.put(np.zeros(2_000_000))
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("force", [False, True], ids=["graceful", "force"])
def test_stop_leaves_no_process_and_no_shared_memory(cli, head, force):
    assert _join(cli, head, "--token", head["token"]).returncode == 0
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], env=cli.env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "ready"
        assert cli.shm(), "the driver's put should have made a shared-memory segment"
        assert len(_daemons(cli)) == 2
        r = cli.run("stop", *(["--force"] if force else []))
        assert r.returncode == 0, r.stderr
        stopped = int(r.stdout.split("Stopped ", 1)[1].split()[0])
        assert stopped >= 2
        assert not cli.processes()
        assert not cli.shm()
    finally:
        holder.kill()
        holder.wait()
    assert cli.run("stop").stdout.strip() == "Did not find any active shoal processes."


def test_block_stops_daemon_on_ctrl_c(cli):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "shoal.cli", "start", "--head", "--block",
                             "--port", str(port), "--num-cpus", "1"], env=cli.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_condition(lambda: _active_nodes(cli) == 1, timeout=30, msg="(head up)")
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, proc.stderr.read()
        wait_for_condition(lambda: not cli.processes(), timeout=15, msg="(daemon stopped)")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_head_restarted_on_its_session_keeps_detached_actors(cli):
    port = _free_port()
    r = cli.run("start", "--head", "--port", str(port), "--num-cpus", "1")
    assert r.returncode == 0, r.stderr
    (session,) = cli.sessions()
    out = cli.python("import shoal\n"
                     "shoal.init(address='auto', namespace='cli')\n"
                     "@shoal.remote\n"
                     "class Keep:\n"
                     "    def ping(self):\n"
                     "        return 'pong'\n"
                     "k = Keep.options(name='kept', lifetime='detached').remote()\n"
                     "print(shoal.get(k.ping.remote()))\n")
    assert out.stdout.strip() == "pong", out.stderr
    with open(os.path.join(session, "address.json")) as f:
        os.kill(json.load(f)["pid"], signal.SIGKILL)
    wait_for_condition(lambda: not any("daemon" in cmdline(p)
                                       for p in cli.processes()), timeout=15)
    again = cli.run("start", "--head", "--port", str(port), "--session-dir", session)
    assert again.returncode == 0, again.stderr
    out = cli.python("import shoal\n"
                     "shoal.init(address='auto', namespace='cli')\n"
                     "import time\n"
                     "import shoal.util.state as st\n"
                     "for _ in range(100):\n"
                     "    got = [(a['state'], (a['death_cause'] or {}).get(\n"
                     "            'actor_died_error_context', {}).get('error_message'))\n"
                     "           for a in st.list_actors(detail=True) if a['name'] == 'kept']\n"
                     "    if got and got[0][0] == 'DEAD':\n"
                     "        break\n"
                     "    time.sleep(0.05)\n"
                     "print(got)\n")
    assert out.returncode == 0, out.stderr
    # The restarted head knows the actor from its SQLite file; its worker died with the
    # head's own node, so on reconnecting to it the head finds it gone and buries it.
    assert "[('DEAD', \"The actor is dead because its worker process has died. Worker exit " \
           "type: SYSTEM_ERROR Worker exit detail: The actor's worker died while the head " \
           "was away.\")]" in out.stdout
