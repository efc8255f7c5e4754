"""Resource arithmetic: fractional amounts held exactly, and GPU instance ids.

Amounts are kept as integers in units of 1/10000 (Ray's precision), so that 0.1 + 0.2 CPUs
add up exactly and a node is never left with 1e-17 of a CPU.
"""

from __future__ import annotations

from collections.abc import Mapping

UNIT = 10000


def to_units(amount: float) -> int:
    return round(amount * UNIT)


def from_units(units: int) -> float:
    v = units / UNIT
    return int(v) if v == int(v) else v


class ResourceSet:
    """An immutable-by-convention mapping of resource name to amount (in units)."""

    __slots__ = ("_u",)

    def __init__(self, amounts: Mapping[str, float] | None = None, *, units=None):
        if units is not None:
            self._u = {k: v for k, v in units.items() if v}
        else:
            self._u = {}
            for k, v in (amounts or {}).items():
                if v is None:
                    continue
                if v < 0:
                    raise ValueError(f"resource {k!r} cannot be negative: {v}")
                u = to_units(v)
                if u:
                    self._u[k] = u

    def units(self) -> dict[str, int]:
        return self._u

    def to_dict(self) -> dict[str, float]:
        return {k: from_units(v) for k, v in self._u.items()}

    def get(self, name: str) -> float:
        return from_units(self._u.get(name, 0))

    def fits_in(self, other: ResourceSet) -> bool:
        o = other._u
        return all(o.get(k, 0) >= v for k, v in self._u.items())

    def __add__(self, other: ResourceSet) -> ResourceSet:
        u = dict(self._u)
        for k, v in other._u.items():
            u[k] = u.get(k, 0) + v
        return ResourceSet(units=u)

    def __sub__(self, other: ResourceSet) -> ResourceSet:
        u = dict(self._u)
        for k, v in other._u.items():
            u[k] = u.get(k, 0) - v
        return ResourceSet(units=u)

    def is_empty(self) -> bool:
        return not self._u

    def key(self) -> tuple:
        return tuple(sorted(self._u.items()))

    def __eq__(self, other) -> bool:
        return isinstance(other, ResourceSet) and self._u == other._u

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        return f"ResourceSet({self.to_dict()})"


class NodeResources:
    """What one node has in total and what is free now, with GPUs tracked per device.

    A whole-GPU demand takes that many fully free devices; a fractional one shares a device
    with others (packing onto the fullest device it fits), as Ray does.
    """

    def __init__(self, total: Mapping[str, float]):
        self.total = ResourceSet(total)
        self.available = ResourceSet(total)
        n_gpus = int(self.total.get("GPU"))
        self._gpu_free: list[int] = [UNIT] * n_gpus  # free units per device

    def can_ever_fit(self, demand: ResourceSet) -> bool:
        return demand.fits_in(self.total)

    def can_fit(self, demand: ResourceSet) -> bool:
        return demand.fits_in(self.available) and self._pick_gpus(demand) is not None

    def _pick_gpus(self, demand: ResourceSet) -> list[int] | None:
        units = demand.units().get("GPU", 0)
        if not units or not self._gpu_free:
            return []
        if units >= UNIT:
            whole = [i for i, free in enumerate(self._gpu_free) if free == UNIT]
            n = units // UNIT
            return whole[:n] if len(whole) >= n else None
        fits = [i for i, free in enumerate(self._gpu_free) if free >= units]
        if not fits:
            return None
        return [min(fits, key=lambda i: (self._gpu_free[i], i))]

    def acquire(self, demand: ResourceSet) -> list[int]:
        """Take ``demand`` from the free pool; return the GPU device ids it was given."""
        ids = self._pick_gpus(demand) if demand.fits_in(self.available) else None
        if ids is None:
            raise ValueError(f"{demand} does not fit in {self.available}")
        self.available = self.available - demand
        units = demand.units().get("GPU", 0)
        for i in ids:
            self._gpu_free[i] -= UNIT if units >= UNIT else units
        return ids

    def release(self, demand: ResourceSet, gpu_ids: list[int]) -> None:
        self.available = self.available + demand
        units = demand.units().get("GPU", 0)
        for i in gpu_ids:
            if i < len(self._gpu_free):
                self._gpu_free[i] = min(UNIT, self._gpu_free[i] + (UNIT if units >= UNIT
                                                                    else units))

    def add_capacity(self, extra: ResourceSet) -> None:
        """New resources appear on the node (a placement-group bundle's own names)."""
        self.total = self.total + extra
        self.available = self.available + extra

    def remove_capacity(self, gone: ResourceSet) -> None:
        self.total = self.total - gone
        self.available = self.available - gone

    def force_acquire(self, demand: ResourceSet) -> None:
        """Take resources back even if that oversubscribes (a blocked worker resuming)."""
        self.available = self.available - demand

    def force_release(self, demand: ResourceSet) -> None:
        self.available = self.available + demand
