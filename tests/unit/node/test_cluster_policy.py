"""The cluster placement policy (pure): hybrid, SPREAD, node affinity, infeasibility."""

from __future__ import annotations

import pytest

from shoal._private.node.cluster_policy import (
    INFEASIBLE,
    LOCAL,
    ClusterView,
    Unschedulable,
    choose,
)
from shoal._private.wire.resources import ResourceSet

A, B, C = b"a" * 28, b"b" * 28, b"c" * 28


def view(**free) -> ClusterView:
    """Nodes a (self), b, c with 2 CPUs each; ``free`` gives each one's free CPUs."""
    v = ClusterView(A)
    for nid, name in ((A, "a"), (B, "b"), (C, "c")):
        v.update(nid, f"addr-{name}", {"CPU": 2}, {"CPU": free.get(name, 2)}, True)
    return v


def cpu(n=1) -> ResourceSet:
    return ResourceSet({"CPU": n})


def test_default_stays_local_while_it_fits():
    assert choose(view(), cpu(), local_fits_now=True) == LOCAL


def test_default_spills_to_least_loaded_node_that_fits_now():
    v = view(a=0, b=1, c=2)
    assert choose(v, cpu(), local_fits_now=False) == C


def test_default_queues_locally_when_everything_is_busy():
    assert choose(view(a=0, b=0, c=0), cpu(), local_fits_now=False) == LOCAL


def test_spilled_request_stays_where_it_was_sent():
    assert choose(view(a=0), cpu(), local_fits_now=False, spilled=True) == LOCAL


def test_infeasible_locally_goes_to_a_node_that_can_ever_fit():
    v = view()
    v.update(B, "addr-b", {"CPU": 2, "GPU": 1}, {"CPU": 2, "GPU": 0}, True)
    demand = ResourceSet({"GPU": 1})
    assert choose(v, demand, local_fits_now=False) == B


def test_infeasible_everywhere():
    assert choose(view(), ResourceSet({"TPU": 1}), local_fits_now=False) == INFEASIBLE


def test_dead_nodes_are_never_chosen():
    v = view(a=0)
    v.update(B, "addr-b", {"CPU": 2}, {"CPU": 2}, False)
    v.update(C, "addr-c", {"CPU": 2}, {"CPU": 2}, False)
    assert choose(v, cpu(), local_fits_now=False) == LOCAL


def test_spread_rotates_over_nodes():
    v = view()
    picks = {choose(v, cpu(), "SPREAD", local_fits_now=True) for _ in range(3)}
    assert picks == {LOCAL, B, C}


def test_spread_rotates_even_when_all_are_busy():
    v = view(a=0, b=0, c=0)
    picks = {choose(v, cpu(), "SPREAD", local_fits_now=False) for _ in range(3)}
    assert picks == {LOCAL, B, C}


def test_node_affinity_hard_and_soft():
    v = view()
    assert choose(v, cpu(), {"node_id": B, "soft": False}, local_fits_now=True) == B
    assert choose(v, cpu(), {"node_id": A, "soft": False}, local_fits_now=False) == LOCAL
    gone = b"z" * 28
    with pytest.raises(Unschedulable):
        choose(v, cpu(), {"node_id": gone, "soft": False}, local_fits_now=True)
    assert choose(v, cpu(), {"node_id": gone, "soft": True}, local_fits_now=True) == LOCAL
