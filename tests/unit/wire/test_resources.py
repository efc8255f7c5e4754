"""Unit tests for shoal._private.wire.resources: exact fractional amounts and GPU ids."""

from __future__ import annotations

import pytest

from shoal._private.wire.resources import NodeResources, ResourceSet


def rs(**amounts) -> ResourceSet:
    return ResourceSet(amounts)


# --------------------------------------------------------------------------- ResourceSet


def test_point_one_plus_point_two_cpus_is_exactly_point_three():
    total = rs(CPU=0.1) + rs(CPU=0.2)
    assert 0.1 + 0.2 != 0.3  # the float trap the unit arithmetic avoids
    assert total == rs(CPU=0.3)
    assert total.get("CPU") == 0.3
    assert total.to_dict() == {"CPU": 0.3}


def test_ten_tenths_make_one_whole_cpu_reported_as_int():
    total = ResourceSet()
    for _ in range(10):
        total = total + rs(CPU=0.1)
    assert total == rs(CPU=1)
    assert total.get("CPU") == 1
    assert isinstance(total.get("CPU"), int)
    assert total.to_dict() == {"CPU": 1}


def test_subtracting_fractions_back_to_zero_leaves_nothing():
    left = rs(CPU=1, GPU=0.5)
    for _ in range(10):
        left = left - rs(CPU=0.1)
    left = left - rs(GPU=0.25) - rs(GPU=0.25)
    assert left.is_empty()
    assert left.to_dict() == {}
    assert left.get("CPU") == 0
    assert left == ResourceSet()


def test_zero_and_none_amounts_are_dropped():
    r = ResourceSet({"CPU": 0, "GPU": None, "memory": 2})
    assert r.to_dict() == {"memory": 2}
    assert ResourceSet({"CPU": 0}).is_empty()
    assert ResourceSet({"CPU": 0}) == ResourceSet()


@pytest.mark.parametrize("amount", [-1, -0.5, -0.0001])
def test_negative_amounts_are_rejected(amount):
    with pytest.raises(ValueError, match="CPU"):
        ResourceSet({"CPU": amount})


def test_fits_in_compares_every_named_resource():
    node = rs(CPU=4, GPU=1, memory=100)
    assert rs(CPU=4).fits_in(node)
    assert rs(CPU=0.5, GPU=1).fits_in(node)
    assert ResourceSet().fits_in(node)
    assert not rs(CPU=4.0001).fits_in(node)
    assert not rs(CPU=1, GPU=2).fits_in(node)
    # A resource the node does not have at all never fits.
    assert not rs(TPU=1).fits_in(node)
    assert not rs(CPU=1, custom=0.1).fits_in(node)


def test_fits_in_is_exact_for_accumulated_fractions():
    used = rs(CPU=0.1) + rs(CPU=0.2)
    assert rs(CPU=0.7).fits_in(rs(CPU=1) - used)
    assert not rs(CPU=0.7001).fits_in(rs(CPU=1) - used)


def test_equal_sets_hash_equally_and_key_is_order_independent():
    a = ResourceSet({"CPU": 1, "GPU": 0.5})
    b = ResourceSet({"GPU": 0.5, "CPU": 1.0})
    assert a == b
    assert hash(a) == hash(b)
    assert a.key() == b.key()
    assert {a: "x"}[b] == "x"
    assert a != rs(CPU=1)
    assert a != {"CPU": 1, "GPU": 0.5}


def test_arithmetic_does_not_mutate_operands():
    a, b = rs(CPU=1), rs(CPU=0.5, GPU=1)
    _ = a + b
    _ = a - b
    assert a == rs(CPU=1)
    assert b == rs(CPU=0.5, GPU=1)


# --------------------------------------------------------------------------- NodeResources


def test_acquire_and_release_restore_availability_exactly():
    node = NodeResources({"CPU": 1})
    demands = [rs(CPU=0.1)] * 3 + [rs(CPU=0.2)] + [rs(CPU=0.5)]
    for d in demands:
        node.acquire(d)
    assert node.available.is_empty()
    assert not node.can_fit(rs(CPU=0.0001))
    for d in demands:
        node.release(d, [])
    assert node.available == node.total == rs(CPU=1)


def test_acquire_that_does_not_fit_raises_and_changes_nothing():
    node = NodeResources({"CPU": 2})
    node.acquire(rs(CPU=1.5))
    with pytest.raises(ValueError):
        node.acquire(rs(CPU=1))
    assert node.available == rs(CPU=0.5)


def test_can_ever_fit_uses_total_and_can_fit_uses_available():
    node = NodeResources({"CPU": 2, "GPU": 1})
    node.acquire(rs(CPU=2))
    assert node.can_ever_fit(rs(CPU=2, GPU=1))
    assert not node.can_fit(rs(CPU=1))
    assert not node.can_ever_fit(rs(CPU=3))
    assert not node.can_ever_fit(rs(TPU=1))


def test_whole_gpus_get_distinct_ids_and_are_returned_on_release():
    node = NodeResources({"CPU": 8, "GPU": 4})
    a = node.acquire(rs(GPU=1))
    b = node.acquire(rs(GPU=2))
    c = node.acquire(rs(GPU=1))
    assert len(a) == 1 and len(b) == 2 and len(c) == 1
    assert sorted(a + b + c) == [0, 1, 2, 3]
    assert not node.can_fit(rs(GPU=1))

    node.release(rs(GPU=2), b)
    again = node.acquire(rs(GPU=2))
    assert sorted(again) == sorted(b)


def test_cpu_only_demand_gets_no_gpu_ids():
    node = NodeResources({"CPU": 2, "GPU": 2})
    assert node.acquire(rs(CPU=1)) == []
    assert node.available == rs(CPU=1, GPU=2)


def test_fractional_gpu_reports_a_device_id():
    node = NodeResources({"GPU": 1})
    ids = node.acquire(rs(GPU=0.5))
    assert ids == [0]
    assert node.available == rs(GPU=0.5)


def test_force_acquire_may_oversubscribe_and_force_release_restores():
    node = NodeResources({"CPU": 1})
    node.acquire(rs(CPU=1))
    node.force_acquire(rs(CPU=1))
    assert node.available.get("CPU") == -1
    assert not node.can_fit(rs(CPU=0.1))
    node.force_release(rs(CPU=1))
    node.release(rs(CPU=1), [])
    assert node.available == node.total


def test_whole_gpu_gets_an_id_after_a_fractional_gpu_was_released():
    node = NodeResources({"GPU": 1})
    ids = node.acquire(rs(GPU=0.5))
    node.release(rs(GPU=0.5), ids)
    assert node.available == node.total
    assert node.acquire(rs(GPU=1)) == [0]


def test_whole_gpu_gets_an_id_while_fractional_gpus_are_in_use():
    node = NodeResources({"GPU": 2})
    a = node.acquire(rs(GPU=0.5))
    b = node.acquire(rs(GPU=0.5))
    assert node.can_fit(rs(GPU=1))
    whole = node.acquire(rs(GPU=1))
    assert len(whole) == 1
    # The whole GPU must not be a device that a fractional lease is using.
    assert not set(whole) & set(a + b)
