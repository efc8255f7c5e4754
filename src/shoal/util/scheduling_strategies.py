"""Scheduling strategies, with Ray's names: where tasks and actors may run."""

from __future__ import annotations


class NodeAffinitySchedulingStrategy:
    """Run on the node ``node_id`` (a hex string, as ``get_runtime_context().get_node_id()``
    gives, or a ``NodeID``).

    With ``soft=True`` the task runs elsewhere if that node is dead or cannot fit it; with
    ``soft=False`` it fails with TaskUnschedulableError / ActorUnschedulableError instead.
    """

    def __init__(self, node_id, soft: bool, _spill_on_unavailable: bool = False,
                 _fail_on_unavailable: bool = False):
        if hasattr(node_id, "hex") and not isinstance(node_id, (str, bytes)):
            node_id = node_id.hex()  # a NodeID, as Ray takes too
        if not isinstance(node_id, str):
            raise TypeError(f"node_id must be a hex string or a NodeID, got "
                            f"{type(node_id).__name__}")
        try:
            bytes.fromhex(node_id)
        except ValueError:
            raise ValueError(
                f"Invalid node_id '{node_id}'. Node ID must be a valid hex string. To get a "
                "list of all nodes and their IDs in your cluster, use ray.nodes().") from None
        self.node_id = node_id
        self.soft = soft
        self._spill_on_unavailable = _spill_on_unavailable
        self._fail_on_unavailable = _fail_on_unavailable

    def _shoal_strategy(self) -> dict:
        return {"node_id": bytes.fromhex(self.node_id), "soft": bool(self.soft)}

    def __repr__(self) -> str:
        return f"NodeAffinitySchedulingStrategy(node_id={self.node_id!r}, soft={self.soft})"


class PlacementGroupSchedulingStrategy:
    """Run in a bundle of a placement group (see shoal.util.placement_group)."""

    def __init__(self, placement_group, placement_group_bundle_index: int = -1,
                 placement_group_capture_child_tasks: bool | None = None):
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks

    def _shoal_strategy(self) -> dict:
        return {"pg": self.placement_group.id.binary(),
                "bundle": self.placement_group_bundle_index}


def placement(opts: dict, demand: dict, who: str = "",
              actor: bool = False) -> tuple[dict, object, list | None]:
    """``(demand, strategy on the wire, group)`` for a task or actor with ``opts``.

    A placement-group strategy (or the older ``placement_group=`` option) turns the demand
    into the bundle's own resource names, so ordinary scheduling finds the bundle's node.
    As in Ray, a demand that fits no bundle of the group fails here, naming ``who``.
    ``group`` is None outside a group, else ``[pg id bytes, bundle index, capture child
    tasks, bundle specs]``, which the task's worker keeps as its current group. A task or
    actor that sets no strategy of its own, called from one whose group captures child
    tasks, runs in that group too (any bundle), as in Ray.
    """
    from .._private.node import placement as pl

    strategy = opts.get("scheduling_strategy")
    capture = opts.get("placement_group_capture_child_tasks")
    if strategy is None and opts.get("placement_group") not in (None, "default"):
        strategy = PlacementGroupSchedulingStrategy(
            opts["placement_group"], opts.get("placement_group_bundle_index", -1), capture)
    if strategy is None and "placement_group" not in opts:
        strategy = _captured_by_parent()
    if isinstance(strategy, PlacementGroupSchedulingStrategy):
        pg = strategy.placement_group
        index = strategy.placement_group_bundle_index
        if index is None:
            index = -1
        if index >= pg.bundle_count > 0 or index < -1:
            raise ValueError(f"placement group bundle index {index} is invalid. Valid "
                             f"placement group indexes: 0-{pg.bundle_count}")
        check_fits_group(pg, opts, who, actor)
        if strategy.placement_group_capture_child_tasks is not None:
            capture = strategy.placement_group_capture_child_tasks
        group = [pg.id.binary(), index, bool(capture), list(pg.bundle_specs)]
        return pl.task_demand(pg.id.hex(), index, demand), None, group
    return demand, to_wire(strategy), None


def _captured_by_parent():
    """The strategy a child inherits from a task or actor running in a placement group
    that captures child tasks; None otherwise (and in a driver)."""
    from .._private.runtime.current import current_runtime_or_none

    rt = current_runtime_or_none()
    group = rt.current_group() if rt is not None else None
    if not group or not group[2]:
        return None
    from .._private.wire.ids import PlacementGroupID
    from .placement_group import PlacementGroup

    pg = PlacementGroup(PlacementGroupID(group[0]), group[3])
    return PlacementGroupSchedulingStrategy(pg, -1, True)


def _fits_some_bundle(request: dict, bundles: list[dict]) -> bool:
    return any(all(b.get(k, 0) >= v for k, v in request.items() if k != "bundle")
               for b in bundles)


def check_fits_group(pg, opts: dict, who: str, actor: bool) -> None:
    """Ray's check at submission: the request must fit at least one bundle of ``pg`` (and
    a default actor's one CPU for placement too)."""
    from .._private.runtime.options import ray_request

    request, placement_demand = ray_request(opts, actor)
    bundles = [{k: float(v) for k, v in b.items()} for b in pg.bundle_specs]
    if not bundles:
        return  # a group known only by id: the head decides
    if not _fits_some_bundle(request, bundles):
        raise ValueError(f"Cannot schedule {who} with the placement group because the "
                         f"resource request {request} cannot fit into any bundles for the "
                         f"placement group, {bundles}.")
    if placement_demand and not _fits_some_bundle(placement_demand, bundles):
        raise ValueError(f"Cannot schedule {who} with the placement group because the actor "
                         f"requires {placement_demand.get('CPU', 0)} CPU for creation, but it "
                         f"cannot fit into any bundles for the placement group, {bundles}. "
                         "Consider creating a placement group with CPU resources.")


def to_wire(strategy) -> object:
    """The form a strategy takes in lease requests (None for the default)."""
    if strategy is None or strategy == "DEFAULT":
        return None
    if strategy == "SPREAD":
        return "SPREAD"
    return strategy._shoal_strategy()
