"""Where a lease should run, across the nodes of a cluster: a pure policy with no I/O.

Each node daemon keeps a :class:`ClusterView` (every node's total and available resources,
as the head last broadcast them) and asks :func:`choose` where a lease request goes:
``LOCAL`` (queue it here), another node's id (spill back: the owner asks that node), or
``INFEASIBLE`` (no live node could ever fit it: warn and wait for one that can).

Strategies follow Ray: ``DEFAULT`` (hybrid: stay local while it fits now, else the least
loaded node where it fits now, else wait where it can ever fit, preferring here), ``SPREAD``
(rotate over the nodes where it fits, least loaded first) and node affinity
(``{"node_id": .., "soft": bool}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..wire.resources import ResourceSet

LOCAL = "local"
INFEASIBLE = "infeasible"


class Unschedulable(Exception):
    """A hard constraint names a node that is gone: the task can never run."""


@dataclass
class NodeState:
    node_id: bytes
    address: str
    total: ResourceSet
    available: ResourceSet
    alive: bool = True

    def load(self) -> float:
        """Fraction of the node's CPUs (or, without CPUs, of anything) in use."""
        t, a = self.total.units(), self.available.units()
        key = "CPU" if t.get("CPU") else next(iter(t), None)
        if key is None or not t.get(key):
            return 0.0
        return 1.0 - a.get(key, 0) / t[key]


@dataclass
class ClusterView:
    self_id: bytes
    nodes: dict[bytes, NodeState] = field(default_factory=dict)
    _spread_next: int = 0

    def update(self, node_id: bytes, address: str, total: dict, available: dict,
               alive: bool) -> None:
        self.nodes[node_id] = NodeState(node_id, address, ResourceSet(total),
                                        ResourceSet(available), alive)

    def alive(self) -> list[NodeState]:
        return [n for n in self.nodes.values() if n.alive]


def choose(view: ClusterView, demand: ResourceSet, strategy=None, *,
           local_fits_now: bool, spilled: bool = False) -> bytes | str:
    """Decide where a lease for ``demand`` should go (see the module's docstring).

    ``local_fits_now`` is the local scheduler's own answer (fresher than the view);
    ``spilled`` marks a request another node already sent here, which then stays here if it
    can ever fit, so that requests do not bounce between nodes.
    """
    me = view.nodes.get(view.self_id)
    local_feasible = me is not None and demand.fits_in(me.total)
    if isinstance(strategy, dict) and strategy.get("node_id") is not None:
        target = view.nodes.get(strategy["node_id"])
        if target is not None and target.alive and demand.fits_in(target.total):
            return LOCAL if target.node_id == view.self_id else target.node_id
        if not strategy.get("soft"):
            raise Unschedulable(
                f"node {strategy['node_id'].hex()} is not alive or cannot fit {demand}")
        strategy = "DEFAULT"
    if spilled and local_feasible:
        return LOCAL
    others = [n for n in view.alive() if n.node_id != view.self_id]
    fit_now = [n for n in others if demand.fits_in(n.available)]
    if strategy == "SPREAD":
        candidates = ([me] if me is not None and local_fits_now else []) + fit_now
        if not candidates:  # all busy: still rotate over every node that can ever fit it
            candidates = [n for n in view.alive() if demand.fits_in(n.total)]
        if candidates:
            candidates.sort(key=lambda n: n.node_id)
            pick = candidates[view._spread_next % len(candidates)]
            view._spread_next += 1
            return LOCAL if pick.node_id == view.self_id else pick.node_id
    elif local_fits_now:
        return LOCAL
    if fit_now:
        return min(fit_now, key=lambda n: (n.load(), n.node_id)).node_id
    if local_feasible:
        return LOCAL
    feasible = [n for n in others if demand.fits_in(n.total)]
    if feasible:
        return min(feasible, key=lambda n: (n.load(), n.node_id)).node_id
    return INFEASIBLE
