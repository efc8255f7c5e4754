"""The head's actor state machine: restarts, deaths and the causes they report."""

from __future__ import annotations

from shoal._private.head import actor_table as at
from shoal._private.wire import death_causes as causes

GRANT = {"worker_id": b"w1", "lease_id": 1, "address": "unix:/x", "pid": 10,
         "node_id": b"n1", "ip": "10.0.0.5"}


def _alive(table: at.ActorTable, max_restarts: int = 0, aid: bytes = b"a1") -> at.ActorEntry:
    e = table.register(at.ActorEntry(aid, "Cls", None, "ns", False, b"owner",
                                     "tcp:10.0.0.9:5|unix:/o", 1, max_restarts))
    table.set_spec(aid, {}, [])
    table.leased(aid, dict(GRANT))
    table.created(aid, b"w1")
    assert e.state == at.ALIVE
    return e


def _answers(table, aid, after, restarting=False) -> list:
    got: list = []
    for a in table.wait_for(aid, after, got.append, restarting=restarting):
        for w in a.waiters:
            w(a.entry)
    return got


def _run_notifies(actions) -> None:
    for a in actions:
        if isinstance(a, at.Notify):
            for w in a.waiters:
                w(a.entry)


def test_crash_with_restarts_left_restarts_and_tells_waiters_that_asked():
    t = at.ActorTable()
    e = _alive(t, max_restarts=1)
    seen, plain = [], []
    t.wait_for(b"a1", 0, seen.append, restarting=True)
    t.wait_for(b"a1", 0, plain.append)
    _run_notifies(t.worker_died(b"a1", b"w1", "full cause", "short cause"))
    assert e.state == at.RESTARTING and e.incarnation == 1
    assert [x.state for x in seen] == [at.RESTARTING] and plain == []
    assert e.public()["restart_cause"] == "short cause"
    assert e.public()["ip"] == "10.0.0.5"
    assert _answers(t, b"a1", 0, restarting=True)[0].state == at.RESTARTING
    assert _answers(t, b"a1", 0) == []  # waits for the new incarnation


def test_crash_without_restarts_is_dead_with_the_cause():
    t = at.ActorTable()
    e = _alive(t)
    t.worker_died(b"a1", b"w1", causes.worker_died_cause("SYSTEM_ERROR", causes.CRASHED), causes.CRASHED)
    assert e.state == at.DEAD
    assert e.death_cause.startswith("The actor is dead because its worker process has died. "
                                    "Worker exit type: SYSTEM_ERROR Worker exit detail: ")


def test_intended_exit_is_final_with_its_cause():
    t = at.ActorTable()
    e = _alive(t, max_restarts=5)
    t.exiting(b"a1", "INTENDED_USER_EXIT", causes.USER_EXIT, intended=True)
    t.worker_died(b"a1", b"w1", "crash")
    assert e.state == at.DEAD
    assert "INTENDED_USER_EXIT" in e.death_cause and "exit_actor() is called" in e.death_cause


def test_unintended_exit_restarts_and_reports_what_the_worker_said():
    t = at.ActorTable()
    e = _alive(t, max_restarts=1)
    t.exiting(b"a1", "SYSTEM_ERROR", "Worker exits with an exit code 3.", intended=False)
    t.worker_died(b"a1", b"w1", "crash", "crash")
    assert e.state == at.RESTARTING
    assert e.last_exit == "Worker exits with an exit code 3."
    assert e.exit_detail == ""  # the next death has its own cause


def test_kill_with_restart_and_none_left_says_it_was_killed():
    t = at.ActorTable()
    e = _alive(t)
    assert any(isinstance(a, at.Kill) for a in t.kill(b"a1", no_restart=False))
    t.worker_died(b"a1", b"w1", "crash")
    assert e.state == at.DEAD
    assert "INTENDED_SYSTEM_EXIT" in e.death_cause and "`ray.kill`" in e.death_cause


def test_kill_owner_death_and_out_of_scope_causes():
    t = at.ActorTable()
    killed = _alive(t, aid=b"k")
    t.kill(b"k")
    assert killed.death_cause == causes.KILLED
    orphan = _alive(t, aid=b"o")
    t.owner_died(b"owner")
    assert orphan.death_cause.startswith("The actor is dead because its owner has died. "
                                         f"Owner Id: {b'owner'.hex()} Owner Ip address: "
                                         "10.0.0.9 ")
    gone = _alive(t, aid=b"s")
    t.out_of_scope(b"s")
    assert gone.death_cause == causes.OUT_OF_SCOPE


def test_death_before_creation_is_never_started():
    t = at.ActorTable()
    e = t.register(at.ActorEntry(b"p", "Cls", None, "ns", False, b"owner", "", 1, 0))
    t.kill(b"p")
    assert e.state == at.DEAD and e.public()["never_started"] is True


def test_creation_failure_is_init_failed():
    t = at.ActorTable()
    e = t.register(at.ActorEntry(b"c", "Cls", None, "ns", False, b"owner", "", 1, 3))
    t.set_spec(b"c", {}, [])
    t.leased(b"c", dict(GRANT))
    t.creation_failed(b"c", b"w1", "ray::Cls.__init__() ... ValueError: bad")
    assert e.state == at.DEAD and e.init_failed
    assert e.death_cause == ("The actor died because of an error raised in its creation "
                             "task, ray::Cls.__init__() ... ValueError: bad")


# -- dead actors' records (issue 13 item 17) -------------------------------------------------
def _with_class(table: at.ActorTable, aid: bytes, cls: bytes, name: str | None = None):
    e = table.register(at.ActorEntry(aid, "Cls", name, "ns", False, b"owner", "unix:/o", 1, 0))
    table.set_spec(aid, {"cls": 0, "args": []}, [bytearray(cls)])
    return e


def test_dead_actors_drop_their_spec_and_are_bounded():
    t = at.ActorTable(max_dead=3)
    entries = [_with_class(t, bytes([i]), b"C" * 1000, name=f"n{i}") for i in range(5)]
    for e in entries:
        t.kill(e.actor_id)
        assert e.spec is None and e.spec_bufs == []
    assert list(t.actors) == [b"\x02", b"\x03", b"\x04"]  # the three most recent deaths
    assert t.take_evicted() == [b"\x00", b"\x01"] and t.take_evicted() == []
    assert ("ns", "n0") not in t.names
    assert all(t.actors[a].state == at.DEAD for a in t.actors)
    assert len(t.blobs) == 0  # no spec holds the class bytes any more


def test_identical_class_bytes_are_shared():
    t = at.ActorTable()
    a, b = _with_class(t, b"a", b"K" * 100), _with_class(t, b"b", b"K" * 100)
    assert a.spec_bufs[0] is b.spec_bufs[0]
    c = _with_class(t, b"c", b"L" * 100)
    assert c.spec_bufs[0] is not a.spec_bufs[0] and len(t.blobs) == 2
    t.kill(b"a")
    assert len(t.blobs) == 2  # b still uses it
    t.kill(b"b")
    assert len(t.blobs) == 1


def test_a_kill_before_the_node_relinks_reaches_it_when_it_does():
    # Just after a head restart the actors' nodes have not linked to the new head yet: a
    # ray.kill then must not be lost (the old instance would run on, answering calls).
    from shoal._private.head.actor_manager import ActorManager

    returned = []

    class Link:
        def return_lease(self, body):
            returned.append(body)

    mgr = ActorManager(b"t")
    mgr.leases[b"w1"] = (b"node-1", 7)
    mgr._release(b"w1")
    assert returned == []  # no link yet
    mgr.node_links[b"node-1"] = Link()
    mgr.node_linked(b"node-1")
    assert returned == [{"lease_id": 7, "kill": True}]
    mgr.node_linked(b"node-1")  # once only
    assert len(returned) == 1
