"""The error describer of a value that fails to serialize must itself not fail: a
recursion-deep argument made it raise RecursionError (issue 13 item 18)."""

from __future__ import annotations

import threading

from shoal._private.wire import serialization


def _deep(n: int) -> list:
    root = cur = []
    for _ in range(n):
        nxt = [threading.Lock()] if _ == n - 1 else []
        cur.append(nxt)
        cur = nxt
    return root


def test_recursion_deep_value_is_described():
    value = _deep(100_000)
    error = RecursionError("maximum recursion depth exceeded while pickling an object")
    msg = serialization.describe_unserializable(value, "the argument", error)
    assert msg.startswith("Could not serialize the argument [[[[")
    assert len(msg) < 1000


def test_broken_repr_is_described():
    class Bad:
        def __repr__(self):
            raise RuntimeError("no repr")

        def __reduce__(self):
            raise TypeError("cannot pickle Bad")

    msg = serialization.describe_unserializable(Bad(), "the value", TypeError("x"))
    assert "Bad" in msg and msg.endswith("TypeError: x.")
