"""Log files named by ids: lookup never takes a path from the client; tail and follow."""

import os

import pytest

from shoal._private.node import logs as node_logs


@pytest.fixture
def logs(tmp_path):
    (tmp_path / "worker-0123abcd-4242.log").write_bytes(b"".join(
        f"line {i}\n".encode() for i in range(10)))
    (tmp_path / "worker-ffffeeee-77.log").write_bytes(b"other\n")
    (tmp_path / "node.log").write_bytes(b"daemon\n")
    (tmp_path / "secret.txt").write_bytes(b"not a log\n")
    return str(tmp_path)


def test_list_names_only_logs(logs):
    entries = node_logs.list_logs(logs, live_pids={77})
    names = [e["name"] for e in entries]
    assert "secret.txt" not in names and "node.log" in names
    w = {e["pid"]: e for e in entries if e["kind"] == "worker"}
    assert w[77]["alive"] and not w[4242]["alive"] and w[4242]["worker_id"] == "0123abcd"


def test_find_by_worker_id_pid_or_node(logs):
    assert node_logs.find_log(logs, worker_id="0123abcd" + "00" * 24).endswith("-4242.log")
    assert node_logs.find_log(logs, pid=77).endswith("worker-ffffeeee-77.log")
    assert node_logs.find_log(logs, node=True).endswith("node.log")
    with pytest.raises(node_logs.LogNotFound):
        node_logs.find_log(logs, pid=5)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "0123abcd/../x", "zz" * 8, "0123"])
def test_paths_and_bad_ids_are_refused(logs, bad):
    with pytest.raises(ValueError, match="hexadecimal"):
        node_logs.find_log(logs, worker_id=bad)
    with pytest.raises(ValueError, match="positive integer"):
        node_logs.find_log(logs, pid="../x")


def test_tail_and_follow(logs):
    path = node_logs.find_log(logs, pid=4242)
    got = node_logs.read_log(path, tail=3)
    assert got["data"] == "line 7\nline 8\nline 9\n" and got["offset"] == got["size"]
    with open(path, "ab") as f:
        f.write(b"new line\n")
    more = node_logs.read_log(path, offset=got["offset"])
    assert more["data"] == "new line\n"
    assert node_logs.read_log(path, tail=0)["data"] == ""
    assert node_logs.read_log(path, tail=100)["data"].startswith("line 0\n")
    part = node_logs.read_log(path, offset=0, limit=7)
    assert part["data"] == "line 0\n" and part["offset"] == 7
    assert os.path.getsize(path) == more["size"]
