"""``init()`` with no address joins the cluster ``shoal start --head`` started on this
machine (Ray's ``ray_current_cluster``), and falls back to an embedded cluster; the record is
private, only trusted while its head runs, and removed by ``shoal stop``; a driver refuses a
cluster of another version; ``shoal start`` takes the flags Ray's scripts pass.

Every command runs in a private session root (the ``cli`` fixture of ``conftest.py``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile

import psutil
import pytest

from tests.conftest import wait_for_condition
from tests.e2e.conftest import _free_port

# A driver that says which session it joined and whether it started a cluster of its own.
_WHICH = """
import json, shoal
from shoal import api
ctx = shoal.init()
print(json.dumps({"session": ctx["session_dir"], "embedded": api._local_head is not None,
                  "nodes": len(shoal.nodes())}))
shoal.shutdown()
"""


def _which(cli) -> dict:
    r = cli.python(_WHICH)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _record(cli) -> str:
    return os.path.join(cli.root, "current_cluster")


def _address_json(session: str) -> dict:
    with open(os.path.join(session, "address.json")) as f:
        return json.load(f)


# -- the current cluster ----------------------------------------------------------------------
def test_init_without_address_joins_the_head_shoal_start_started(cli, head):
    joined = _which(cli)
    assert joined == {"session": head["session"], "embedded": False, "nodes": 1}


def test_current_cluster_record_is_private_and_names_the_head(cli, head):
    st = os.stat(_record(cli))
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid()
    with open(_record(cli)) as f:
        rec = json.load(f)
    assert rec["session_dir"] == head["session"]
    assert rec["head_address"] == head["address"]
    assert rec["pid"] == _address_json(head["session"])["pid"]


def test_init_with_num_cpus_refuses_the_current_cluster(cli, head):
    r = cli.python("import shoal; shoal.init(num_cpus=1)")
    assert r.returncode != 0
    assert "When connecting to an existing cluster" in r.stderr


def test_shoal_stop_removes_the_record_and_init_starts_its_own(cli, head):
    r = cli.run("stop")
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(_record(cli))
    own = _which(cli)
    assert own["embedded"] and own["session"] != head["session"]


def test_record_of_a_killed_head_is_not_trusted(cli, head):
    pid = _address_json(head["session"])["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for_condition(lambda: not psutil.pid_exists(pid)
                       or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, timeout=10)
    assert os.path.exists(_record(cli))  # left behind, as a crash would
    own = _which(cli)
    assert own["embedded"] and own["session"] != head["session"]


def test_record_writable_by_others_is_not_trusted(cli, head):
    os.chmod(_record(cli), 0o666)
    own = _which(cli)
    assert own["embedded"] and own["session"] != head["session"]


def test_record_naming_a_session_that_is_not_a_head_is_not_trusted(cli, head):
    # A record pointing at another running daemon's session (here: a joined node's).
    r = cli.run("start", "--address", head["address"], "--num-cpus", "1")
    assert r.returncode == 0, r.stderr
    (node,) = [s for s in cli.sessions() if s != head["session"]]
    with open(_record(cli)) as f:
        rec = json.load(f)
    rec.update(session_dir=node, pid=_address_json(node)["pid"])
    os.unlink(_record(cli))
    fd = os.open(_record(cli), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(rec, f)
    own = _which(cli)
    assert own["embedded"] and own["session"] not in (head["session"], node)


def test_embedded_cluster_is_not_recorded(cli):
    code = ("import os, shoal\nfrom shoal._private.launch import local_cluster\nshoal.init()\n"
            "print(os.path.exists(local_cluster.current_cluster_path()))\nshoal.shutdown()\n")
    r = cli.python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "False"


def test_restarted_head_is_the_current_cluster_again(cli, head):
    pid = _address_json(head["session"])["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for_condition(lambda: not psutil.pid_exists(pid)
                       or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, timeout=10)
    r = cli.run("start", "--head", "--port", str(head["port"]), "--num-cpus", "1",
                "--session-dir", head["session"])
    assert r.returncode == 0, r.stderr
    assert _which(cli)["session"] == head["session"]


# -- versions ---------------------------------------------------------------------------------
def test_head_records_its_versions(cli, head):
    import shoal

    info = _address_json(head["session"])
    assert info["shoal_version"] == shoal.__version__
    assert info["python_version"] == ".".join(map(str, sys.version_info[:3]))


@pytest.mark.parametrize("field", ["shoal_version", "python_version"])
def test_driver_refuses_a_cluster_of_another_version(cli, head, field):
    path = os.path.join(head["session"], "address.json")
    info = _address_json(head["session"])
    info[field] = "0.0.1" if field == "shoal_version" else "2.7.18"
    with open(path, "w") as f:
        json.dump(info, f)
    r = cli.python("import shoal; shoal.init()")
    assert r.returncode != 0
    assert "RuntimeError: Version mismatch: The cluster was started with:" in r.stderr
    assert info[field] in r.stderr and "This process on node 127.0.0.1" in r.stderr
    r = cli.python(f"import shoal; shoal.init(address={head['address']!r})")
    assert r.returncode != 0 and "Version mismatch" in r.stderr


# -- shoal start's flags ----------------------------------------------------------------------
def test_second_head_on_the_port_says_a_cluster_runs_there(cli, head):
    r = cli.run("start", "--head", "--port", str(head["port"]), "--num-cpus", "1",
                "--dashboard-port", str(_free_port()))
    assert r.returncode == 1
    assert f"already running at {head['address']}" in r.stderr
    assert "--port" in r.stderr and "shoal stop" in r.stderr
    assert cli.sessions() == [head["session"]]


def test_head_on_a_port_taken_by_another_program_names_it(cli):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = cli.run("start", "--head", "--port", str(port), "--num-cpus", "1",
                    "--dashboard-port", str(_free_port()))
    assert r.returncode == 1
    assert f"127.0.0.1:{port}" in r.stderr and "in use" in r.stderr
    assert "shoal stop" in r.stderr


def test_max_worker_port_needs_min_worker_port(cli):
    r = cli.run("start", "--head", "--max-worker-port", "20000")
    assert r.returncode == 2 and "--min-worker-port" in r.stderr


_SPILL = """
import json, os, sys, numpy as np, shoal
shoal.init()
refs = [shoal.put(np.full(12 * 2**20, i, dtype=np.uint8)) for i in range(5)]
print(json.dumps([sorted(os.listdir(sys.argv[1])), sorted(os.listdir(sys.argv[2]))]))
assert [int(shoal.get(r)[0]) for r in refs] == list(range(5))
print("ok")
shoal.shutdown()
"""


def test_start_takes_rays_flags_and_uses_the_directory_ones(cli):
    root = os.path.join(cli.root, "t")  # --temp-dir: short, for the sockets' paths
    spill = tempfile.mkdtemp(prefix="shoal-spill-")
    shm = tempfile.mkdtemp(prefix="shoal-e2e-", dir="/dev/shm")
    keep = os.path.join(spill, "not-shoals")
    open(keep, "w").close()
    env = {"SHOAL_SESSION_ROOT": root}
    try:
        r = cli.run("start", "--head", "--port", str(_free_port()), "--num-cpus", "1",
                    "--dashboard-port", str(_free_port()), "--object-store-memory",
                    str(40 * 2**20), "--disable-usage-stats", "--temp-dir", root,
                    "--min-worker-port", "10002", "--max-worker-port", "19999",
                    "--ray-client-server-port", "10001", "--metrics-export-port", "8080",
                    "--log-style", "record", "--log-color", "false",
                    "--object-spilling-directory", spill, "--plasma-directory", shm)
        assert r.returncode == 0, r.stderr
        assert f"SHOAL_SESSION_ROOT={root}" in r.stdout
        assert cli.sessions() == []  # the session went under --temp-dir
        (session,) = [os.path.join(root, n) for n in os.listdir(root)
                      if n.startswith("session_2")]
        assert _address_json(session)["shm_dir"] == shm
        r = cli.run("status", env=env)
        assert r.returncode == 0, r.stderr
        run = subprocess.run([sys.executable, "-c", _SPILL, shm, spill], capture_output=True,
                             text=True, timeout=120, env={**cli.env, **env})
        assert run.returncode == 0, run.stderr
        shm_files, spill_files = json.loads(run.stdout.splitlines()[0])
        tag = session.rsplit("_", 1)[-1]
        assert shm_files and all(f.startswith(f"shoal-{tag}-") for f in shm_files)
        assert any(f.startswith(f"shoal-{tag}-") for f in spill_files)  # spilled there
    finally:
        stopped = cli.run("stop", env=env)
        shutil.rmtree(shm, ignore_errors=True)
    assert stopped.returncode == 0, stopped.stderr
    assert os.listdir(spill) == ["not-shoals"]  # only shoal's own spill files went
    shutil.rmtree(spill, ignore_errors=True)
