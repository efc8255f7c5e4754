"""Issue 13, local items: a session root, session directory or socket directory that another
local user planted (or may write) is refused; the token never sits in a shoal process's argv;
worker process trees do not outlive ``shutdown()``.

The second user is ``nobody``, reached with ``runuser`` (the tests run as root in CI); without
root or ``runuser`` those tests skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from shoal._private.wire.session import Session, UnsafeSessionError

NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None,
                                reason="needs root and runuser to act as a second user")


def as_nobody(*cmd: str) -> None:
    subprocess.run(["runuser", "-u", "nobody", "--", *cmd], check=True, timeout=30)


@pytest.fixture
def tmp_root():
    path = tempfile.mkdtemp(prefix="shoal-sec-")
    os.rmdir(path)  # the name only: each test says who creates it
    yield path
    shutil.rmtree(path, ignore_errors=True)


@NEEDS_ROOT
def test_root_created_by_another_user_is_refused(tmp_root, monkeypatch):
    as_nobody("mkdir", "-m", "0755", tmp_root)
    monkeypatch.setenv("SHOAL_SESSION_ROOT", tmp_root)
    with pytest.raises(UnsafeSessionError, match="owned by uid") as e:
        Session.create()
    assert tmp_root in str(e.value)
    assert os.listdir(tmp_root) == []  # nothing of ours was put in their directory


@NEEDS_ROOT
def test_init_auto_refuses_a_planted_session(tmp_root, monkeypatch):
    # The other user makes a root with a session_latest pointing at their own session.
    as_nobody("mkdir", "-m", "0755", tmp_root)
    fake = os.path.join(tmp_root, "session_2026-01-01_00-00-00_1_deadbeef")
    as_nobody("mkdir", "-m", "0755", fake, os.path.join(fake, "sockets"))
    as_nobody("sh", "-c", f"echo '{{\"pid\": 1, \"head_address\": \"127.0.0.1:1\"}}' "
                          f"> {fake}/address.json && echo 00 > {fake}/token")
    as_nobody("ln", "-s", fake, os.path.join(tmp_root, "session_latest"))
    monkeypatch.setenv("SHOAL_SESSION_ROOT", tmp_root)
    code = ("import shoal\n"
            "try:\n"
            "    shoal.init(address='auto')\n"
            "except Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ))
    assert "UnsafeSessionError" in r.stdout and "owned by uid" in r.stdout, r.stdout + r.stderr
    assert tmp_root in r.stdout


def test_group_writable_root_is_refused(tmp_root, monkeypatch):
    os.mkdir(tmp_root, 0o700)
    os.chmod(tmp_root, 0o775)
    monkeypatch.setenv("SHOAL_SESSION_ROOT", tmp_root)
    with pytest.raises(UnsafeSessionError, match="group or others write"):
        Session.create()


def test_writable_session_or_socket_dir_is_refused(tmp_root, monkeypatch):
    monkeypatch.setenv("SHOAL_SESSION_ROOT", tmp_root)
    sess = Session.create(latest=False)
    assert Session.open(sess.path).read_token()  # a private session opens
    assert os.stat(tmp_root).st_mode & 0o777 == 0o700
    os.chmod(os.path.join(sess.path, "sockets"), 0o777)
    with pytest.raises(UnsafeSessionError, match="socket directory"):
        Session.open(sess.path)
    os.chmod(os.path.join(sess.path, "sockets"), 0o700)
    os.chmod(sess.path, 0o757)
    with pytest.raises(UnsafeSessionError, match="session directory"):
        sess.read_token()


@NEEDS_ROOT
def test_default_root_is_per_user():
    from shoal._private.wire.config import default_session_root

    assert default_session_root() == "/tmp/shoal"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child becomes nobody
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            os.write(w, default_session_root().encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        got = f.read()
    os.waitpid(pid, 0)
    assert got == "/tmp/shoal-65534"


# -- item 17: dead actors' records are bounded and hold no spec ------------------------------
def test_dead_actors_are_bounded_in_memory_and_sqlite(tmp_root, monkeypatch):
    import glob
    import sqlite3

    import shoal
    from shoal.util import state
    from tests.conftest import wait_for_condition

    monkeypatch.setenv("SHOAL_SESSION_ROOT", tmp_root)
    monkeypatch.setenv("SHOAL_DEAD_ACTORS_MAX", "5")
    shoal.init(num_cpus=2)
    try:
        big = b"x" * (1 << 20)

        @shoal.remote
        class Holder:
            data = big  # 1 MiB of class bytes in every creation spec

            def ping(self):
                return len(self.data)

        for _ in range(12):
            h = Holder.remote()
            assert shoal.get(h.ping.remote()) == 1 << 20
            shoal.kill(h)
        keep = Holder.remote()
        assert shoal.get(keep.ping.remote()) == 1 << 20

        def dead() -> list:
            return [a for a in state.list_actors() if a["state"] == "DEAD"]

        wait_for_condition(lambda: len(dead()) == 5, timeout=30, msg="(5 dead kept)")
        db = glob.glob(os.path.join(tmp_root, "session_*", "control_store.sqlite3"))[0]
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT length(data) FROM actors").fetchall()
        finally:
            con.close()
        assert len(rows) == 6  # five dead and the live one
        assert sorted(n for (n,) in rows)[:5][-1] < 64 * 1024  # the dead hold no spec
    finally:
        shoal.shutdown()


# -- item 18: bad query values answer 400, never 500 -------------------------------------------
def test_bad_dashboard_queries_answer_400(tmp_root, monkeypatch):
    import urllib.error
    import urllib.request

    import shoal

    monkeypatch.setenv("SHOAL_SESSION_ROOT", tmp_root)
    ctx = shoal.init(num_cpus=1, dashboard_port=0)
    try:
        node = shoal.get_runtime_context().get_node_id()
        for path in ("/api/v0/tasks?limit=abc", "/api/v0/actors?limit=1e3",
                     "/api/tasks?limit=abc",
                     f"/api/logs/read?node_id={node}&worker_id={'ab' * 2000}",
                     f"/api/logs/read?node_id={'cd' * 2000}"):
            req = urllib.request.Request("http://" + ctx.dashboard_url + path)
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=30)
            body = e.value.read()
            assert e.value.code == 400, (path, e.value.code, body[:300])
            assert b"limit must be an integer" in body or b"_id must be" in body, body[:300]
    finally:
        shoal.shutdown()


# -- item 18: a task's setsid child does not outlive its worker or shutdown() -------------------
def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_setsid_children_of_tasks_die_with_the_cluster(tmp_root, monkeypatch):
    import shoal
    from tests.conftest import wait_for_condition

    monkeypatch.setenv("SHOAL_SESSION_ROOT", tmp_root)
    shoal.init(num_cpus=1)
    try:
        @shoal.remote
        def fork_away(exit_worker: bool):
            p = subprocess.Popen(["sleep", "300"], start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if exit_worker:  # the worker dies; the child is orphaned
                import threading

                threading.Timer(0.2, os._exit, (0,)).start()
            return p.pid

        orphaned = shoal.get(fork_away.options(max_retries=0).remote(True))
        wait_for_condition(lambda: _gone(orphaned), timeout=20, msg="(child of a dead worker)")
        survivor = shoal.get(fork_away.remote(False))
        assert not _gone(survivor)
    finally:
        shoal.shutdown()
    wait_for_condition(lambda: _gone(survivor), timeout=20, msg="(child after shutdown)")


@NEEDS_ROOT
def test_session_listing_skips_sessions_and_address_files_of_another_user(tmp_root, monkeypatch):
    # `shoal stop` and `shoal status` list the sessions of the root and act on what their
    # address.json says (a pid to stop, a shm dir to clean): only this user's count.
    from shoal.util import state

    monkeypatch.setenv("SHOAL_SESSION_ROOT", tmp_root)
    mine = Session.create(latest=False)
    mine.write_address({"pid": os.getpid(), "shm_dir": "/dev/shm"})
    assert os.stat(os.path.join(mine.path, "address.json")).st_mode & 0o777 == 0o600
    theirs = os.path.join(tmp_root, "session_2026-01-01_00-00-00_1_deadbeef")
    os.mkdir(theirs, 0o755)
    os.chown(theirs, 65534, 65534)  # as if planted while the root was open to them
    os.chmod(tmp_root, 0o711)  # they may pass through (not write): still a private root
    as_nobody("sh", "-c", f"echo '{{\"pid\": 1, \"shm_dir\": \"/etc\"}}' > {theirs}/address.json")
    assert state.session_dirs() == [mine.path]
    assert state.read_address(mine.path)["pid"] == os.getpid()
    assert state.read_address(theirs) is None  # not this user's file
    os.symlink(os.path.join(mine.path, "address.json"), os.path.join(theirs, "link"))
    os.chown(os.path.join(theirs, "link"), 65534, 65534, follow_symlinks=False)
    assert state.read_address(theirs) is None


@NEEDS_ROOT
def test_shoal_stop_refuses_a_root_another_user_owns(tmp_root):
    as_nobody("mkdir", "-m", "0755", tmp_root)
    env = dict(os.environ, SHOAL_SESSION_ROOT=tmp_root)
    r = subprocess.run([sys.executable, "-m", "shoal.cli", "stop"], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode != 0 and "owned by uid" in r.stderr, r.stdout + r.stderr
