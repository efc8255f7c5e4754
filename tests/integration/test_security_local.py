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
