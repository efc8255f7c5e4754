"""Bundle placement (pure): which node gets each bundle, per strategy."""

from __future__ import annotations

import pytest

from shoal._private.node.placement import place, task_demand

A, B, C = b"a" * 28, b"b" * 28, b"c" * 28
TWO = [{"CPU": 1}, {"CPU": 1}]


def nodes(**cpus):
    return {nid: {"CPU": cpus.get(name, 2)} for nid, name in ((A, "a"), (B, "b"), (C, "c"))}


def test_pack_puts_everything_on_one_node_when_it_fits():
    got = place(TWO, "PACK", nodes())
    assert len(set(got)) == 1


def test_pack_falls_back_to_several_nodes():
    got = place(TWO, "PACK", nodes(a=1, b=1, c=0))
    assert sorted(got) == [A, B]


def test_strict_pack_refuses_to_split():
    assert place(TWO, "STRICT_PACK", nodes(a=1, b=1, c=1)) is None


def test_spread_uses_distinct_nodes_then_reuses():
    assert len(set(place(TWO, "SPREAD", nodes()))) == 2
    three = [{"CPU": 1}] * 3
    got = place(three, "SPREAD", nodes(a=2, b=1, c=0))
    assert got is not None and set(got) == {A, B}


def test_strict_spread_needs_one_node_per_bundle():
    assert len(set(place(TWO, "STRICT_SPREAD", nodes()))) == 2
    assert place([{"CPU": 1}] * 4, "STRICT_SPREAD", nodes()) is None


def test_unknown_strategy():
    with pytest.raises(ValueError, match="STRICT_PACK"):
        place(TWO, "TIGHT", nodes())


def test_task_demand_uses_bundle_resource_names():
    d = task_demand("ff00", 1, {"CPU": 1})
    assert d["CPU_group_1_ff00"] == 1 and "bundle_group_1_ff00" in d
    assert "CPU_group_ff00" in task_demand("ff00", -1, {"CPU": 1})
