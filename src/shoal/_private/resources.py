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
    """What one node has in total and what is free now, with GPU ids handed out by index."""

    def __init__(self, total: Mapping[str, float]):
        self.total = ResourceSet(total)
        self.available = ResourceSet(total)
        n_gpus = int(self.total.get("GPU"))
        self._free_gpus: list[int] = list(range(n_gpus))

    def can_ever_fit(self, demand: ResourceSet) -> bool:
        return demand.fits_in(self.total)

    def can_fit(self, demand: ResourceSet) -> bool:
        return demand.fits_in(self.available)

    def acquire(self, demand: ResourceSet) -> list[int]:
        """Take ``demand`` from the free pool; return the GPU ids given (whole GPUs only)."""
        if not self.can_fit(demand):
            raise ValueError(f"{demand} does not fit in {self.available}")
        self.available = self.available - demand
        gpus = demand.get("GPU")
        n = int(gpus) if gpus >= 1 else (1 if gpus > 0 else 0)
        taken, self._free_gpus = self._free_gpus[:n], self._free_gpus[n:]
        if gpus and gpus < 1 and not taken:
            # A fractional GPU shares a device with others: report the first id.
            taken = [0]
        return taken

    def release(self, demand: ResourceSet, gpu_ids: list[int]) -> None:
        self.available = self.available + demand
        if demand.get("GPU") >= 1:
            self._free_gpus = sorted(set(self._free_gpus) | set(gpu_ids))

    def force_acquire(self, demand: ResourceSet) -> None:
        """Take resources back even if that oversubscribes (a blocked worker resuming)."""
        self.available = self.available - demand

    def force_release(self, demand: ResourceSet) -> None:
        self.available = self.available + demand
