"""Identical actor class bytes are held once by the head, counted by the specs that use them
(issue 13 item 17): the pure blob table, the actor table's use of it, and the SQLite
``blobs`` table it is written to."""

from __future__ import annotations

import asyncio
import sqlite3

import msgpack

from shoal._private.head import actor_table as at
from shoal._private.head.actor_manager import ActorManager
from shoal._private.head.class_blobs import ClassBlobs, blob_key
from shoal._private.head.persistence import HeadStore

K, L = b"K" * 1000, b"L" * 1000


# -- the pure blob table ----------------------------------------------------------------------
def test_identical_bytes_are_one_blob_counted_by_holders():
    b = ClassBlobs()
    k1, s1 = b.hold(bytearray(K))
    k2, s2 = b.hold(bytearray(K))  # a fresh copy, as each creation message decodes one
    assert k1 == k2 == blob_key(K) and s1 is s2 and type(s1) is bytes
    assert len(b) == 1 and b.holders(k1) == 2 and b.total_bytes() == len(K)
    k3, _ = b.hold(L)
    assert len(b) == 2 and k3 != k1
    assert b.take_changes() == ({k1: K, k3: L}, set())  # each new blob to store, once
    b.release(k1)
    assert k1 in b and b.get(k1) is s1  # one holder left
    b.release(k1)
    assert k1 not in b and b.get(k1) is None and b.holders(k1) == 0
    assert b.take_changes() == ({}, {k1})  # to delete
    b.release(k1)  # released too often: nothing
    assert b.take_changes() == ({}, set())


def test_changes_cancel_before_they_are_written():
    b = ClassBlobs()
    k, _ = b.hold(K)
    b.release(k)  # added and gone before it was stored: nothing to store or delete
    assert b.take_changes() == ({}, set())
    b.hold(K)
    b.take_changes()  # stored now
    b.release(k)
    b.hold(K)  # held again before the delete was written: still stored, nothing to do
    assert b.take_changes() == ({}, set()) and b.holders(k) == 1


def test_a_blob_read_back_from_the_store_is_not_stored_again():
    b = ClassBlobs()
    k, _ = b.hold(K, stored=True)
    assert b.take_changes() == ({}, set())
    b.release(k)
    assert b.take_changes() == ({}, {k})


# -- the actor table ----------------------------------------------------------------------
def _with_class(t: at.ActorTable, aid: bytes, cls: bytes) -> at.ActorEntry:
    e = t.register(at.ActorEntry(aid, "Cls", None, "ns", False, b"owner", "unix:/o", 1, 0))
    t.set_spec(aid, {"cls": 0, "args": []}, [bytearray(cls), b"arg"])
    return e


def test_actors_of_one_class_share_one_blob_until_the_last_dies():
    t = at.ActorTable()
    es = [_with_class(t, bytes([i]), K) for i in range(10)]
    assert len(t.blobs) == 1 and t.blobs.holders(blob_key(K)) == 10
    assert all(e.spec_bufs[0] is es[0].spec_bufs[0] and e.class_blob == blob_key(K)
               for e in es)
    assert t.blobs.take_changes() == ({blob_key(K): K}, set())
    for e in es[:9]:
        t.kill(e.actor_id)
        assert e.class_blob is None and e.spec is None
    assert t.blobs.holders(blob_key(K)) == 1 and t.blobs.take_changes() == ({}, set())
    t.kill(es[9].actor_id)
    assert len(t.blobs) == 0 and t.blobs.take_changes() == ({}, {blob_key(K)})
    # every death is to be saved, also those that returned no action naming the entry
    assert [e.actor_id for e in t.take_changed()] == [e.actor_id for e in es]


def test_a_spec_sent_again_releases_the_class_it_replaces():
    t = at.ActorTable()
    _with_class(t, b"a", K)
    t.set_spec(b"a", {"cls": 0, "args": []}, [L])
    assert blob_key(K) not in t.blobs and t.blobs.holders(blob_key(L)) == 1


def test_a_death_without_any_action_is_still_saved():
    t = at.ActorTable()
    t.register(at.ActorEntry(b"a", "Cls", None, "ns", False, b"o", "unix:/o", 1, 0))
    assert t.creation_aborted(b"a", "an argument was lost") == []  # no worker, no waiter
    assert [e.actor_id for e in t.take_changed()] == [b"a"]


def test_recovered_records_hold_their_class_again():
    t = at.ActorTable(max_dead=1)
    k = blob_key(K)

    def row(aid, state, spec=True, key=k):
        return at.ActorEntry(aid, "Cls", f"n{aid.hex()}", "ns", True, b"o", "unix:/o", 1, 0,
                             state=state, spec={"cls": 0} if spec else None,
                             spec_bufs=[K] if spec else [], class_blob=key if spec else None)

    assert t.recovered(row(b"a", at.ALIVE))
    assert t.recovered(row(b"b", at.RESTARTING))
    assert t.blobs.holders(k) == 2 and t.blobs.take_changes() == ({}, set())  # stored
    assert t.take_changed() == [] and t.by_name("n62", "ns") is not None
    old = row(b"c", at.ALIVE, key=None)  # written before the blobs table: bytes inline
    assert t.recovered(old) and t.take_changed() == [old]  # to rewrite in the new form
    assert t.blobs.take_changes() == ({}, set())  # the blob was stored already
    lost = at.ActorEntry(b"d", "Cls", None, "ns", True, b"o", "unix:/o", 1, 0,
                         state=at.RESTARTING, class_blob=k)  # its blob was missing
    assert not t.recovered(lost)
    dead = [row(bytes([i]), at.DEAD, spec=False) for i in range(3)]
    assert all(t.recovered(e) for e in dead)
    assert t.take_evicted() == [b"\x00", b"\x01"] and t.take_changed() == []


# -- the SQLite store -----------------------------------------------------------------------
def _blob_rows(store: HeadStore) -> list:
    return store.db.execute("SELECT hash, length(data) FROM blobs").fetchall()


def test_store_keeps_one_blob_for_many_rows_and_restores_the_class(tmp_path):
    store = HeadStore(str(tmp_path))
    k = blob_key(K)
    rows = [(bytes([i]), {"actor_id": bytes([i]), "spec": {"cls": 0}, "spec_bufs": [K, b"x"],
                          "class_blob": k}) for i in range(20)]
    store.write_actors({k: K}, rows)
    assert _blob_rows(store) == [(k, len(K))]
    sizes = store.db.execute("SELECT max(length(data)) FROM actors").fetchone()[0]
    assert sizes < len(K)  # the rows name the class, they do not hold it
    got = store.actors()
    assert len(got) == 20 and all(r["spec_bufs"] == [K, b"x"] for r in got)
    assert all(r["spec_bufs"][0] is got[0]["spec_bufs"][0] for r in got)  # one copy
    # a blob still named by a row is kept; it goes with the last row naming it
    store.write_actors({}, [], removed={k}, deleted=[bytes([i]) for i in range(19)])
    assert len(_blob_rows(store)) == 1
    store.write_actors({}, [(b"\x13", {"actor_id": b"\x13", "spec": None, "spec_bufs": [],
                                       "class_blob": None})], removed={k})
    assert _blob_rows(store) == []
    store.close()


def test_a_store_of_the_old_form_loads_and_a_missing_blob_is_reported(tmp_path, caplog):
    path = tmp_path / "control_store.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE actors (id BLOB PRIMARY KEY, data BLOB)")
    old.execute("INSERT INTO actors VALUES (?, ?)", (b"a", msgpack.packb(
        {"actor_id": b"a", "spec": {"cls": 0}, "spec_bufs": [K]}, use_bin_type=True)))
    old.commit()
    old.close()
    store = HeadStore(str(tmp_path))
    assert store.actors() == [{"actor_id": b"a", "spec": {"cls": 0}, "spec_bufs": [K]}]
    store.write_actors({}, [(b"b", {"actor_id": b"b", "spec": {"cls": 0}, "spec_bufs": [K],
                                    "class_blob": blob_key(L)})])  # names an absent blob
    store.db.execute("INSERT INTO blobs VALUES (?, ?)", (blob_key(b"orphan"), b"orphan"))
    assert store.drop_unused_blobs() == 1
    got = {r["actor_id"]: r for r in store.actors()}
    assert got[b"b"]["spec"] is None and got[b"b"]["class_blob"] == blob_key(L)
    assert "missing from" in caplog.text
    store.close()


def test_the_manager_writes_one_blob_and_a_restarted_head_restores_it(tmp_path):
    """The manager's save and recovery over a real store, without sockets."""
    store = HeadStore(str(tmp_path))
    mgr = ActorManager(b"t", store=type("Store", (), {"db": store})())
    es = [_with_class(mgr.table, bytes([i]), K) for i in range(30)]
    for e in es:
        e.state = at.ALIVE
    mgr._save(*es)
    assert _blob_rows(store) == [(blob_key(K), len(K))]
    for e in es[:29]:
        mgr._run(mgr.table.kill(e.actor_id))
    assert len(_blob_rows(store)) == 1  # the last live actor still uses it

    async def restart() -> ActorManager:
        again = ActorManager(b"t", store=type("Store", (), {"db": store})())
        again.recover(store.actors())
        return again

    again = asyncio.run(restart())
    live = again.table.actors[es[29].actor_id]
    assert live.state == at.ALIVE and live.spec_bufs == [K, b"arg"]  # the class is back
    assert again.table.blobs.holders(blob_key(K)) == 1
    again._run(again.table.kill(live.actor_id))
    assert _blob_rows(store) == []  # gone with its last actor
    store.close()
