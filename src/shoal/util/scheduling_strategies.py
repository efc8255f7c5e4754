"""Scheduling strategies, with Ray's names: where tasks and actors may run."""

from __future__ import annotations


class NodeAffinitySchedulingStrategy:
    """Run on the node ``node_id`` (hex, as ``get_runtime_context().get_node_id()`` gives).

    With ``soft=True`` the task runs elsewhere if that node is dead or cannot fit it; with
    ``soft=False`` it fails with TaskUnschedulableError / ActorUnschedulableError instead.
    """

    def __init__(self, node_id: str, soft: bool, _spill_on_unavailable: bool = False,
                 _fail_on_unavailable: bool = False):
        if not isinstance(node_id, str):
            raise TypeError(f"node_id must be a hex string, got {type(node_id).__name__}")
        try:
            bytes.fromhex(node_id)
        except ValueError:
            raise ValueError(f"node_id {node_id!r} is not a hex node id") from None
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


def placement(opts: dict, demand: dict) -> tuple[dict, object, list | None]:
    """``(demand, strategy on the wire, group)`` for a task or actor with ``opts``.

    A placement-group strategy (or the older ``placement_group=`` option) turns the demand
    into the bundle's own resource names, so ordinary scheduling finds the bundle's node.
    ``group`` is None outside a group, else ``[pg id bytes, bundle index, capture child
    tasks, bundle specs]``, which the task's worker keeps as its current group. A task or
    actor that sets no strategy of its own, called from one whose group captures child
    tasks, runs in that group too (any bundle), as in Ray.
    """
    from .._private import placement as pl

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
            raise ValueError(f"placement_group_bundle_index {index} is out of range for a "
                             f"placement group of {pg.bundle_count} bundles")
        if strategy.placement_group_capture_child_tasks is not None:
            capture = strategy.placement_group_capture_child_tasks
        group = [pg.id.binary(), index, bool(capture), list(pg.bundle_specs)]
        return pl.task_demand(pg.id.hex(), index, demand), None, group
    return demand, to_wire(strategy), None


def _captured_by_parent():
    """The strategy a child inherits from a task or actor running in a placement group
    that captures child tasks; None otherwise (and in a driver)."""
    from .._private.runtime_state import current_runtime_or_none

    rt = current_runtime_or_none()
    group = rt.current_group() if rt is not None else None
    if not group or not group[2]:
        return None
    from .._private.ids import PlacementGroupID
    from .placement_group import PlacementGroup

    pg = PlacementGroup(PlacementGroupID(group[0]), group[3])
    return PlacementGroupSchedulingStrategy(pg, -1, True)


def to_wire(strategy) -> object:
    """The form a strategy takes in lease requests (None for the default)."""
    if strategy is None or strategy == "DEFAULT":
        return None
    if strategy == "SPREAD":
        return "SPREAD"
    return strategy._shoal_strategy()
