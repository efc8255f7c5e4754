"""Placement groups, pure parts: where bundles go, and the resource names they create.

A bundle reserved on a node becomes resources of its own there: ``CPU_group_<i>_<pg>`` for
bundle *i* and ``CPU_group_<pg>`` for "any bundle of the group" (Ray's naming). A task in a
placement group asks for those names instead of plain ``CPU``, so ordinary scheduling puts
it where its bundle is.
"""

from __future__ import annotations

from ..wire.resources import ResourceSet

STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


def bundle_resources(pg_hex: str, index: int, bundle: dict) -> dict:
    """The resources a reserved bundle adds to its node."""
    out = {}
    for name, amount in bundle.items():
        out[f"{name}_group_{index}_{pg_hex}"] = amount
        out[f"{name}_group_{pg_hex}"] = amount
    out[f"bundle_group_{index}_{pg_hex}"] = 1000
    out[f"bundle_group_{pg_hex}"] = 1000
    return out


def task_demand(pg_hex: str, index: int, demand: dict) -> dict:
    """What a task of ``demand`` asks for when it runs in bundle ``index`` (-1: any)."""
    suffix = f"{index}_{pg_hex}" if index >= 0 else pg_hex
    out = {f"{name}_group_{suffix}": amount for name, amount in demand.items()}
    out[f"bundle_group_{suffix}"] = 0.001  # even a 0-CPU task must land on a bundle
    return out


def place(bundles: list[dict], strategy: str, nodes: dict[bytes, dict]) -> list[bytes] | None:
    """Choose a node for each bundle, or None if the strategy cannot be met right now.

    ``nodes`` maps node id to its free resources. PACK prefers one node, then fills nodes
    greedily; SPREAD prefers distinct nodes but may reuse; the STRICT forms accept only
    one node (STRICT_PACK) or all distinct nodes (STRICT_SPREAD).
    """
    free = {nid: ResourceSet(avail) for nid, avail in nodes.items()}
    wants = [ResourceSet(b) for b in bundles]
    order = sorted(free, key=lambda n: (-_cpu(free[n]), n))
    if strategy in ("PACK", "STRICT_PACK"):
        total = ResourceSet()
        for w in wants:
            total = total + w
        for nid in order:
            if total.fits_in(free[nid]):
                return [nid] * len(wants)
        if strategy == "STRICT_PACK":
            return None
        return _greedy(wants, free, order, distinct=False)
    if strategy == "STRICT_SPREAD":
        return _greedy(wants, free, order, distinct=True)
    if strategy == "SPREAD":
        got = _greedy(wants, free, order, distinct=True)
        return got if got is not None else _greedy(wants, free, order, distinct=False,
                                                   prefer_unused=True)
    raise ValueError(f"unknown placement strategy {strategy!r}; use one of {STRATEGIES}")


def _cpu(rs: ResourceSet) -> float:
    return rs.get("CPU")


def _greedy(wants, free, order, *, distinct: bool, prefer_unused: bool = False):
    left = dict(free)
    used: list[bytes] = []
    for w in wants:
        candidates = [n for n in order if w.fits_in(left[n]) and not (distinct and n in used)]
        if prefer_unused:
            candidates.sort(key=lambda n: (n in used, -_cpu(left[n]), n))
        if not candidates:
            return None
        pick = candidates[0]
        left[pick] = left[pick] - w
        used.append(pick)
    return used
