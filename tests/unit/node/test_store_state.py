"""The object store's accounting (pure): reservations, spilling choices, pins, freeing."""

from __future__ import annotations

import pytest

from shoal._private.node.store_state import ObjectStoreFull, StoreState


def filled(capacity=100, sizes=(30, 30, 30)) -> StoreState:
    s = StoreState(capacity)
    for i, size in enumerate(sizes):
        assert s.reserve(size) == ("ok", None)
        s.seal(f"p{i}", size, b"owner")
    return s


def test_reserve_within_capacity_and_seal():
    s = filled()
    assert s.used == 90 and s.reserved == 0
    assert s.reserve(10) == ("ok", None)
    assert s.reserved == 10


def test_full_store_names_oldest_unpinned_objects_to_move():
    s = filled()
    s.touch("p0")  # p0 used most recently: p1 goes first
    verdict, paths = s.reserve(45)  # 10 free: two 30-byte objects must go
    assert verdict == "spill" and paths == ["p1", "p2"]
    assert all(s.entries[p].moving for p in paths)


def test_replicas_are_moved_before_primaries():
    s = StoreState(100)
    for name, replica in (("primary", False), ("replica", True)):
        s.reserve(50)
        s.seal(name, 50, b"o", replica=replica)
    assert s.reserve(10) == ("spill", ["replica"])


def test_pinned_objects_are_never_moved():
    s = filled()
    s.pin("p0")
    s.pin("p1")
    verdict, paths = s.reserve(35)
    assert verdict == "spill" and paths == ["p2"]


def test_full_only_when_pinned_objects_leave_no_room():
    s = filled()
    for p in ("p0", "p1", "p2"):
        s.pin(p)
    verdict, err = s.reserve(20)
    assert verdict == "full" and isinstance(err, ObjectStoreFull)
    assert (err.capacity, err.pinned, err.requested) == (100, 90, 20)
    assert "100" in str(err) and "90" in str(err) and "20" in str(err)


def test_object_larger_than_capacity_is_full():
    verdict, err = StoreState(100).reserve(101)
    assert verdict == "full" and err.requested == 101


def test_spill_restore_and_free_keep_the_books():
    s = filled()
    verdict, paths = s.reserve(45)
    assert paths == ["p0", "p1"]
    for p in paths:
        s.moved_out(p, f"/spill/{p}")
    assert s.used == 30 and s.spilled_bytes == 60
    assert s.reserve(40) == ("ok", None)
    s.seal("new", 40, b"o")
    e = s.free("p1")
    assert e.spilled == "/spill/p1" and s.spilled_bytes == 30
    assert s.reserve(30) == ("ok", None)  # a restore reserves its room first
    assert s.restored("p0", 30)
    assert s.entries["p0"].in_memory and s.spilled_bytes == 0 and s.used == 100
    assert s.reserved == 0
    for p in list(s.entries):
        s.free(p)
    assert s.used == 0 and s.spilled_bytes == 0 and s.stats()["num_objects"] == 0


def test_dropped_replica_leaves_the_table():
    s = StoreState(100)
    s.reserve(60)
    s.seal("r", 60, b"o", replica=True)
    verdict, paths = s.reserve(60)
    s.moved_out("r", None)
    assert "r" not in s.entries and s.used == 0


def test_unpin_makes_object_movable_again():
    s = filled(sizes=(90,))
    s.pin("p0")
    assert s.reserve(20)[0] == "full"
    s.unpin("p0")
    assert s.reserve(20) == ("spill", ["p0"])


@pytest.mark.parametrize("size", [0, 1])
def test_tiny_reservations(size):
    assert StoreState(1).reserve(size) == ("ok", None)


def test_freed_object_still_mapped_stays_counted_until_unpinned():
    s = filled(sizes=(60,))
    s.pin("p0")
    e = s.free("p0")
    assert e is not None and s.used == 60  # a reader still maps it
    assert s.reserve(50)[0] == "full"  # and it cannot be spilled: it is gone
    s.unpin("p0")
    assert s.used == 0 and "p0" not in s.entries
    assert s.reserve(50) == ("ok", None)
