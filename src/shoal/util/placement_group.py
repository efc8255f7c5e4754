"""Placement groups (Ray's ``ray.util.placement_group``): reserve bundles of resources
across nodes, then run tasks and actors inside them."""

from __future__ import annotations

import os

from .._private.node.placement import STRATEGIES
from .._private.runtime.current import current_runtime_or_none, runtime
from .._private.wire.ids import PlacementGroupID


class PlacementGroup:
    """A group of reserved bundles; ``ready()`` gives an ObjectRef that resolves once every
    bundle is reserved, ``wait(timeout)`` blocks for it."""

    def __init__(self, id: PlacementGroupID, bundle_specs: list[dict] | None = None):
        self.id = id
        self.bundle_specs = bundle_specs or []

    @property
    def bundle_count(self) -> int:
        return len(self.bundle_specs)

    def ready(self):
        return runtime().placement_group_ready(self)

    def wait(self, timeout_seconds: float | int = 30) -> bool:
        from ..exceptions import GetTimeoutError

        ref = self.ready()
        if timeout_seconds is not None and timeout_seconds < 0:  # as get(timeout=...) says
            raise ValueError("'timeout' must be a non-negative number or None, got "
                             f"{timeout_seconds}")
        try:
            runtime().get([ref], timeout_seconds)
            return True
        except GetTimeoutError:
            return False

    def __eq__(self, other) -> bool:
        return isinstance(other, PlacementGroup) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"PlacementGroup(id={self.id.hex()}, bundles={self.bundle_specs})"

    def __reduce__(self):
        return (PlacementGroup, (self.id, self.bundle_specs))


def _validate(bundles, strategy: str, lifetime) -> None:
    if not isinstance(bundles, (list, tuple)) or not bundles:
        raise ValueError("The placement group `bundles` argument must be a non-empty list of "
                         f"dicts, got {bundles!r}.")
    for b in bundles:
        if not isinstance(b, dict):
            raise ValueError(f"Each bundle must be a dict of resources, got {b!r}.")
        if not b or all(v == 0 for v in b.values()):
            raise ValueError(f"Bundles cannot be empty or contain only zero resources: {b!r}.")
        for k, v in b.items():
            if not isinstance(k, str) or isinstance(v, bool) or \
                    not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"Bundle resource {k!r} must map to a non-negative number, "
                                 f"got {v!r}.")
    if strategy not in STRATEGIES:
        raise ValueError(f"Invalid placement group strategy {strategy!r}. Supported "
                         f"strategies are: {list(STRATEGIES)}.")
    if lifetime not in (None, "detached"):
        raise ValueError("Placement group `lifetime` argument must be either `None` or "
                         f"'detached', got {lifetime!r}.")


def placement_group(bundles: list[dict], strategy: str = "PACK", name: str = "",
                    lifetime: str | None = None, _soft_target_node_id=None,
                    bundle_label_selector=None) -> PlacementGroup:
    """Reserve ``bundles`` (e.g. ``[{"CPU": 1}] * 2``) with ``strategy`` (PACK, SPREAD,
    STRICT_PACK, STRICT_SPREAD). Returns at once; ``pg.ready()`` resolves once reserved."""
    from .._private.wire.transport import RemoteError

    _validate(bundles, strategy, lifetime)
    rt = runtime()
    pg_id = PlacementGroupID(os.urandom(PlacementGroupID.SIZE))
    body = {"pg": pg_id.binary(), "bundles": [dict(b) for b in bundles], "strategy": strategy,
            "name": name, "namespace": rt.namespace, "job_id": rt.job_id,
            "detached": lifetime == "detached"}
    try:
        rt.call(rt.head_conn.request("create_pg", body))
    except RemoteError as e:
        raise ValueError(e.body.get("error", str(e))) from None
    return PlacementGroup(pg_id, [dict(b) for b in bundles])


def remove_placement_group(placement_group: PlacementGroup) -> None:
    """Release the group's bundles; tasks and actors running in them are stopped."""

    if not isinstance(placement_group, PlacementGroup):
        raise TypeError(f"remove_placement_group expects a PlacementGroup, got "
                        f"{type(placement_group).__name__}")
    rt = runtime()
    rt.call(rt.head_conn.request("remove_pg", {"pg": placement_group.id.binary()}))


def get_placement_group(placement_group_name: str) -> PlacementGroup:
    """The live placement group called ``placement_group_name`` in this namespace."""
    from .._private.wire.transport import RemoteError

    rt = runtime()
    try:
        info = rt.call(rt.head_conn.request(
            "get_pg", {"name": placement_group_name, "namespace": rt.namespace}))[0]
    except RemoteError as e:
        raise ValueError(e.body.get("error", str(e))) from None
    return PlacementGroup(PlacementGroupID(info["placement_group_id"]), info["bundles"])


def placement_group_table(placement_group: PlacementGroup | None = None) -> dict:
    """State of the cluster's placement groups (or of one), keyed by hex id."""

    rt = runtime()
    groups = rt.call(rt.head_conn.request("pg_table", {}))[0]["groups"]
    out = {}
    for g in groups:
        pid = g["placement_group_id"].hex()
        out[pid] = {
            "placement_group_id": pid, "name": g["name"], "state": g["state"],
            "strategy": g["strategy"],
            "bundles": dict(enumerate(g["bundles"])),
            "bundles_to_node_id": {i: n.hex() for i, n in enumerate(g["bundles_to_node_id"])},
            "stats": {},
        }
    if placement_group is not None:
        return out.get(placement_group.id.hex(), {})
    return out


def get_current_placement_group() -> PlacementGroup | None:
    """The placement group the calling task or actor runs in, if any."""
    rt = current_runtime_or_none()
    group = rt.current_group() if rt is not None else None
    if not group:
        return None
    return PlacementGroup(PlacementGroupID(group[0]), group[3])
