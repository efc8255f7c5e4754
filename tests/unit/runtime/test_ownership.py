"""Unit tests for shoal._private.runtime.ownership: owner-side reference counting and Value wire form."""

from __future__ import annotations

import itertools

import msgpack

from shoal._private.runtime.ownership import PENDING, READY, Free, RefTable, ReleaseBorrow, Value

ME = "unix:/tmp/me.sock"
OTHER = "unix:/tmp/other.sock"
OID = b"o" * 28


def frees(actions) -> list[bytes]:
    return [a.oid for a in actions if isinstance(a, Free)]


# --------------------------------------------------------------------------- owned objects


def test_owned_object_is_freed_when_its_last_local_ref_goes():
    t = RefTable(ME)
    t.new_owned(OID)
    t.add_local(OID, ME)
    t.add_local(OID, ME)
    assert t.remove_local(OID) == []
    assert OID in t.owned
    actions = t.remove_local(OID)
    assert frees(actions) == [OID]
    assert actions[0].entry.freed
    assert OID not in t.owned


def _events():
    """Every way a count can be dropped: 2 local refs, 2 submitted tasks, 2 borrowers."""
    return [
        ("local", None), ("local", None),
        ("submitted", None), ("submitted", None),
        ("borrower", "b1"), ("borrower", "b2"),
    ]


def _drop(t: RefTable, kind: str, arg):
    if kind == "local":
        return t.remove_local(OID)
    if kind == "submitted":
        return t.remove_submitted(OID)
    return t.remove_borrower(OID, arg)


def test_owned_object_is_freed_exactly_when_every_count_reaches_zero():
    orders = sorted(set(itertools.permutations(_events())))
    assert len(orders) == 180  # 6! / (2! * 2!): every distinct drop order
    for order in orders:
        t = RefTable(ME)
        t.new_owned(OID)
        for _ in range(2):
            t.add_local(OID, ME)
            t.add_submitted(OID)
        assert t.add_borrower(OID, "b1")
        assert t.add_borrower(OID, "b2")

        for i, (kind, arg) in enumerate(order):
            actions = _drop(t, kind, arg)
            if i < len(order) - 1:
                assert actions == [], f"freed early after {order[: i + 1]}"
                assert OID in t.owned
            else:
                assert frees(actions) == [OID], f"not freed after {order}"
        assert OID not in t.owned
        # Stray late decrements after the free neither raise nor free twice.
        assert t.remove_local(OID) == []
        assert t.remove_submitted(OID) == []
        assert t.remove_borrower(OID, "b1") == []


def test_duplicate_borrower_registration_counts_once():
    t = RefTable(ME)
    t.new_owned(OID)
    t.add_local(OID, ME)
    assert t.add_borrower(OID, "b1")
    assert t.add_borrower(OID, "b1")
    assert t.remove_local(OID) == []
    assert frees(t.remove_borrower(OID, "b1")) == [OID]


def test_removing_an_unknown_borrower_does_not_free_a_referenced_object():
    t = RefTable(ME)
    t.new_owned(OID)
    t.add_local(OID, ME)
    assert t.remove_borrower(OID, "never-registered") == []
    assert OID in t.owned


def test_add_borrower_fails_for_unknown_or_freed_object():
    t = RefTable(ME)
    assert t.add_borrower(OID, "b1") is False
    t.new_owned(OID)
    t.add_local(OID, ME)
    t.remove_local(OID)
    assert t.add_borrower(OID, "b1") is False
    assert OID not in t.owned


def test_new_owned_is_idempotent_and_keeps_counts():
    t = RefTable(ME)
    e1 = t.new_owned(OID, task_id=b"t1")
    t.add_local(OID, ME)
    e2 = t.new_owned(OID, task_id=b"t2")
    assert e1 is e2
    assert e2.local == 1
    assert e2.task_id == b"t1"
    assert e2.state == PENDING


def test_borrowers_gone_frees_only_what_that_borrower_kept_alive():
    t = RefTable(ME)
    only_b1, shared, also_local, untouched = (bytes([i]) * 28 for i in range(4))
    for oid in (only_b1, shared, also_local, untouched):
        t.new_owned(oid)
    t.add_borrower(only_b1, "b1")
    t.add_borrower(shared, "b1")
    t.add_borrower(shared, "b2")
    t.add_borrower(also_local, "b1")
    t.add_local(also_local, ME)
    t.add_local(untouched, ME)

    actions = t.borrowers_gone("b1")
    assert frees(actions) == [only_b1]
    assert set(t.owned) == {shared, also_local, untouched}
    assert t.owned[shared].borrowers == {"b2"}
    assert t.borrowers_gone("b1") == []
    assert frees(t.borrowers_gone("b2")) == [shared]


# --------------------------------------------------------------------------- values


def test_set_value_marks_ready_and_hands_back_waiters_once():
    t = RefTable(ME)
    entry = t.new_owned(OID)
    t.add_local(OID, ME)
    calls = []
    entry.waiters.append(calls.append)
    v = Value(meta=b"m")
    waiters = t.set_value(OID, v)
    assert waiters == [calls.append]
    assert entry.state == READY
    assert entry.value is v
    assert entry.waiters == []
    assert t.set_value(OID, Value(meta=b"again")) == []


def test_set_value_after_free_returns_none():
    t = RefTable(ME)
    t.new_owned(OID)
    t.add_local(OID, ME)
    t.remove_local(OID)
    assert t.set_value(OID, Value(meta=b"late")) is None
    assert t.set_value(b"x" * 28, Value(meta=b"unknown")) is None
    assert OID not in t.owned


def test_contained_refs_are_kept_by_the_entry_and_handed_over_on_free():
    t = RefTable(ME)
    t.new_owned(OID)
    t.add_local(OID, ME)
    inner = [object(), object()]
    t.set_value(OID, Value(meta=b"m"), contains=inner)
    assert t.owned[OID].contains == inner
    [free] = t.remove_local(OID)
    # The runtime drops the inner refs when it processes the Free.
    assert free.entry.contains == inner
    assert free.entry.value.meta == b"m"


# --------------------------------------------------------------------------- borrowed refs


def test_borrowed_ref_registered_with_owner_is_released_on_last_local_drop():
    t = RefTable(ME)
    t.add_local(OID, OTHER)
    t.add_local(OID, OTHER)
    assert t.unregistered_borrows() == [(OID, OTHER)]
    t.mark_registered(OID)
    assert t.unregistered_borrows() == []
    assert t.remove_local(OID) == []
    assert t.remove_local(OID) == [ReleaseBorrow(OID, OTHER)]
    assert OID not in t.borrowed
    assert t.remove_local(OID) == []  # nothing to release twice


def test_unregistered_borrowed_ref_is_dropped_silently():
    t = RefTable(ME)
    t.add_local(OID, OTHER)
    assert t.remove_local(OID) == []
    assert OID not in t.borrowed
    assert t.unregistered_borrows() == []


def test_borrowed_refs_never_produce_free_actions_and_owned_refs_never_release():
    t = RefTable(ME)
    mine = b"m" * 28
    t.new_owned(mine)
    t.add_local(mine, ME)
    t.add_local(OID, OTHER)
    t.mark_registered(OID)
    assert t.stats() == {"owned": 1, "borrowed": 1}
    assert all(isinstance(a, ReleaseBorrow) for a in t.remove_local(OID))
    assert all(isinstance(a, Free) for a in t.remove_local(mine))
    assert t.stats() == {"owned": 0, "borrowed": 0}


def test_reborrowing_after_release_needs_a_new_registration():
    t = RefTable(ME)
    t.add_local(OID, OTHER)
    t.mark_registered(OID)
    t.remove_local(OID)
    t.add_local(OID, OTHER)
    assert t.unregistered_borrows() == [(OID, OTHER)]
    assert t.remove_local(OID) == []


def test_add_local_for_an_owned_object_already_freed_is_ignored():
    t = RefTable(ME)
    t.add_local(OID, ME)  # never created here (or already freed): no entry appears
    assert t.owned == {} and t.borrowed == {}
    assert t.remove_local(OID) == []


# --------------------------------------------------------------------------- Value wire form


def _through_msgpack(obj):
    return msgpack.unpackb(msgpack.packb(obj, use_bin_type=True), raw=False,
                           strict_map_key=False)


def test_inline_values_round_trip_through_a_shared_buffer_list():
    a = Value(meta=b"meta-a", bufs=[b"x" * 10, b"y" * 3], size=19)
    b = Value(is_error=True, meta=b"meta-b", bufs=[], size=6)
    c = Value(meta=b"meta-c", bufs=[bytearray(b"zz")], size=8)
    out: list = [b"unrelated leading buffer"]
    wire = [_through_msgpack(v.to_wire(out)) for v in (a, b, c)]
    assert len(out) == 1 + 3 + 1 + 2

    back = [Value.from_wire(d, out) for d in wire]
    for orig, got in zip((a, b, c), back, strict=True):
        assert got.is_error == orig.is_error
        assert got.meta == orig.meta
        assert [bytes(x) for x in got.bufs] == [bytes(x) for x in orig.bufs]
        assert got.size == orig.size
        assert not got.in_shm
        assert got.path is None


def test_shm_value_round_trip_carries_location_not_bytes():
    v = Value(is_error=True, path="/dev/shm/shoal-x-abc", node_id=b"n" * 28, size=1 << 20)
    out: list = []
    d = _through_msgpack(v.to_wire(out))
    assert out == []  # nothing inline
    got = Value.from_wire(d, out)
    assert got.in_shm
    assert (got.is_error, got.path, got.node_id, got.size) == (
        True, "/dev/shm/shoal-x-abc", b"n" * 28, 1 << 20)
    assert got.meta is None and got.bufs == []
