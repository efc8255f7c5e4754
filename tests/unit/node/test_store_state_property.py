"""Property test of the store accounting (issue 13 item 14): random walks of writers,
readers, spills and restores, with failures injected at every step that does I/O (a write
abandoned, a spill that fails, a restore whose copy fails, an object freed mid-restore), as
node/store.py drives the state. After every step the books match the entries; once every
operation in flight has ended and every object is freed, nothing is used, reserved or
spilled, and the whole capacity can be reserved again."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal._private.node.store_state import StoreState

CAP = 1000
OPS = ("write", "write_abandon", "spill_ok", "spill_fail", "restore", "restore_fail",
       "restore_freed", "pin", "unpin", "free", "seal_twice")


def check_books(s: StoreState) -> None:
    mem = sum(e.size for e in s.entries.values() if e.in_memory)
    spilled = sum(e.size for e in s.entries.values() if not e.in_memory)
    assert s.used == mem and s.spilled_bytes == spilled
    assert 0 <= s.reserved and s.used + s.reserved <= s.capacity + max(
        (e.size for e in s.entries.values()), default=0)


class Driver:
    """What node/store.py does with the state, each I/O step succeeding or failing."""

    def __init__(self):
        self.s = StoreState(CAP)
        self.n = 0
        self.pins: list[str] = []
        self.spilling: list[str] = []

    def reserve(self, size: int) -> bool:
        verdict, detail = self.s.reserve(size)
        if verdict == "spill":
            self.spilling += detail
        return verdict == "ok"

    def step(self, op: str, size: int, pick: int) -> None:
        s, paths = self.s, sorted(self.s.entries)
        target = paths[pick % len(paths)] if paths else None
        if op in ("write", "write_abandon", "seal_twice") and self.reserve(size):
            if op == "write_abandon":  # the writer failed or went away before sealing
                s.cancel_reservation(size)
                return
            self.n += 1
            path = f"p{self.n}" if op == "write" or target is None else target
            s.seal(path, size, b"o")  # a second seal of a path still gives its room back
        elif op in ("spill_ok", "spill_fail") and self.spilling:
            path = self.spilling.pop(pick % len(self.spilling))
            if op == "spill_ok":
                s.moved_out(path, f"/spill/{path}")
            else:
                s.move_failed(path)
        elif op.startswith("restore") and target is not None:
            e = s.entries[target]
            if e.spilled is None or not self.reserve(e.size):
                return
            if op == "restore_fail":  # the copy back failed: the room is given back
                s.cancel_reservation(e.size)
            else:
                if op == "restore_freed":
                    s.free(target)
                s.restored(target, e.size)
        elif op == "pin" and target is not None and s.entries[target].in_memory:
            s.pin(target)
            self.pins.append(target)
        elif op == "unpin" and self.pins:
            s.unpin(self.pins.pop(pick % len(self.pins)))
        elif op == "free" and target is not None:
            s.free(target)

    def drain(self) -> None:
        for path in self.spilling:  # spills still under way end (failed)
            self.s.move_failed(path)
        for path in self.pins:
            self.s.unpin(path)
        for path in list(self.s.entries):
            self.s.free(path)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(OPS), st.integers(1, 600), st.integers(0, 50)),
                max_size=80))
def test_store_books_balance_whatever_fails(steps):
    d = Driver()
    for op, size, pick in steps:
        d.step(op, size, pick)
        check_books(d.s)
    d.drain()
    assert (d.s.used, d.s.reserved, d.s.spilled_bytes, len(d.s.entries)) == (0, 0, 0, 0)
    assert d.s.reserve(CAP) == ("ok", None)
