"""The head's archive of finished drivers' task records: bounded, oldest dropped first."""

from shoal._private.head.control_store import TaskArchive


def _reply(pid, n):
    return {"pid": pid, "mode": "driver", "dropped": 0,
            "tasks": [{"task_id": bytes([pid, i])} for i in range(n)]}


def test_bounded_oldest_dropped_and_counted():
    a = TaskArchive(limit=10)
    a.add(_reply(1, 6))
    a.add(_reply(2, 3))
    assert a.count == 9 and a.dropped == 0
    a.add(_reply(3, 4))  # 13 > 10: three of the oldest owner's records go
    assert a.count == 10 and a.dropped == 3
    assert [len(o["tasks"]) for o in a.processes()] == [3, 3, 4]
    assert a.processes()[0]["tasks"][0]["task_id"] == bytes([1, 3])  # the newest of owner 1
    a.add(_reply(4, 8))  # owners 1 and 2 go whole, owner 3 keeps its newest two
    assert [o["pid"] for o in a.processes()] == [3, 4] and a.count == 10
    assert [len(o["tasks"]) for o in a.processes()] == [2, 8] and a.dropped == 11


def test_one_owner_above_the_limit_keeps_its_newest():
    a = TaskArchive(limit=5)
    a.add(_reply(1, 9))
    assert a.count == 5 and [t["task_id"][1] for t in a.processes()[0]["tasks"]] == [4, 5, 6, 7, 8]


def test_off_and_empty():
    a = TaskArchive(limit=0)
    a.add(_reply(1, 3))
    assert a.processes() == []
    b = TaskArchive(limit=5)
    b.add(_reply(1, 0))
    assert b.processes() == []


def test_select_keeps_the_newest_matching_records_in_order():
    from shoal._private.state.task_records import select

    recs = [{"state": s, "name": n, "i": i} for i, (s, n) in enumerate(
        [("FINISHED", "f"), ("FAILED", "g"), ("FINISHED", "f"), ("RUNNING", "f"),
         ("FINISHED", "g")])]
    assert [r["i"] for r in select(recs, {"limit": 2})] == [3, 4]
    assert [r["i"] for r in select(recs, {"state": "FINISHED", "limit": 2})] == [2, 4]
    assert [r["i"] for r in select(recs, {"name": "f"})] == [0, 2, 3]
    assert [r["i"] for r in select(recs, {"state": "FAILED", "name": "f"})] == []
    assert select(recs, {"limit": 0}) == []
