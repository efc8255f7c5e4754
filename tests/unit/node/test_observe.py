"""The node daemon's observe part on its own (node.observe.NodeObserver): the processes it
asks are those that registered and have not gone, and questions it does not answer are left
to the daemon."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from shoal._private.node.observe import NodeObserver
from shoal._private.wire.resources import NodeResources


class FakeConn:
    def __init__(self, owner_id=b""):
        self.state = {"owner_id": owner_id}
        self.closed = False
        self.close_callbacks: list = []
        self.sent: list = []
        self.replies: list = []

    def send(self, kind, body):
        self.sent.append((kind, body))

    def reply(self, req_id, body):
        self.replies.append((req_id, body))

    def reply_error(self, req_id, error):
        self.replies.append((req_id, {"error": error}))

    def close(self):
        self.closed = True
        for cb in self.close_callbacks:
            cb(self)


def _daemon(tmp_path):
    (tmp_path / "logs").mkdir()
    store = SimpleNamespace(state=SimpleNamespace(stats=lambda: {"used": 0}, entries={}))
    worker = SimpleNamespace(pid=11, worker_id=b"w" * 28, job_id=1)
    return SimpleNamespace(node_id=b"n" * 28, ip="10.0.0.1", is_head=True,
                           session_dir=str(tmp_path), res=NodeResources({"CPU": 2}),
                           store=store, procs={worker.worker_id: worker},
                           pending_replies={7: None})


def test_node_info_is_read_from_the_daemon(tmp_path):
    obs = NodeObserver(_daemon(tmp_path))
    info = obs.node_info()
    assert info["node_id"] == b"n" * 28 and info["ip"] == "10.0.0.1" and info["is_head"]
    assert info["total"]["CPU"] == 2 and info["store"] == {"used": 0}
    assert info["workers"] == [{"pid": 11, "worker_id": b"w" * 28, "job_id": 1}]
    assert info["pending_leases"] == 1


def test_an_owner_is_asked_until_it_disconnects(tmp_path):
    obs = NodeObserver(_daemon(tmp_path))
    a, b = FakeConn(b"A"), FakeConn(b"B")
    obs.add_owner(a)
    obs.add_owner(b)
    assert obs.owner_conns == {a, b}
    a.close()
    assert obs.owner_conns == {b}


def test_a_cancellation_goes_to_the_owner_of_the_task(tmp_path):
    obs = NodeObserver(_daemon(tmp_path))
    a, b = FakeConn(b"A"), FakeConn(b"B")
    obs.add_owner(a)
    obs.add_owner(b)
    assert obs.cancel_owned_task({"owner_id": b"B", "task_id": b"t", "force": True}) == \
        {"ok": True}
    assert a.sent == [] and b.sent == [("cancel_owned_task", {"task_id": b"t", "force": True})]
    b.close()
    with pytest.raises(LookupError):
        obs.cancel_owned_task({"owner_id": b"B", "task_id": b"t"})


def test_questions_it_does_not_answer_are_left_to_the_daemon(tmp_path):
    obs = NodeObserver(_daemon(tmp_path))
    conn = FakeConn()
    assert obs.handle(conn, "request_lease", {}, 1) is False
    assert obs.handle(conn, "node_info", {}, 2) is True
    assert conn.replies[0][0] == 2 and conn.replies[0][1]["node_id"] == b"n" * 28
    assert obs.handle(conn, "read_log", {"pid": 999}, 3) is True  # no such log: an error
    assert "error" in conn.replies[1][1]
