"""``shoal memory``: the objects of the cluster and why each is alive, like ``ray memory``.

It asks the head for its memory view (gathered from every node's daemon, which asks each
process of its node what it owns and borrows) and prints, per node, the object store's use
(in memory, spilled, pinned by readers), then a table of the objects held (``--group-by
node``: by the node of the process holding the ref; ``--group-by owner``: by the process
that owns the object), largest first, then one summary line. ``--stats-only`` prints the
node headers and the summary line only.
"""

from __future__ import annotations

import time

import click

from ..util import state
from .list_cmd import format_table
from .status import format_bytes

_RULE = "=" * 8
_COLUMNS = ("OBJECT_ID", "SIZE", "REFERENCE_TYPE", "CALL_SITE", "PID", "TYPE", "WHERE")


@click.command()
@click.option("--address", default=None, metavar="HOST:PORT",
              help="The head to ask (default: the cluster running on this machine).")
@click.option("--stats-only", is_flag=True,
              help="Only the object store use of each node and the totals, no objects.")
@click.option("--group-by", type=click.Choice(["node", "owner"]), default="node",
              show_default=True,
              help="Group the objects by the node of the process holding the ref, or by "
                   "the process owning the object.")
@click.option("--limit", type=click.IntRange(min=0), default=state.DEFAULT_LIMIT,
              show_default=True, help="At most this many rows per group.")
def memory(address, stats_only, group_by, limit) -> None:
    """Show the objects of the cluster, where they are and what keeps them alive."""
    try:
        report = state.memory_report(address)
    except state.ClusterNotFoundError as e:
        raise click.ClickException(str(e)) from None
    click.echo(format_memory(report, group_by=group_by, limit=limit, stats_only=stats_only))


def format_memory(report: dict, group_by: str = "node", limit: int = state.DEFAULT_LIMIT,
                  stats_only: bool = False) -> str:
    """The ``shoal memory`` text for a :func:`shoal.util.state.memory_report`."""
    rows = report["objects"]
    lines = [f"{_RULE} Object references status: {time.strftime('%Y-%m-%d %H:%M:%S')} "
             f"{_RULE}"]
    if not stats_only:
        lines.append(f"Grouping by {group_by}; sorting by object size; at most {limit} "
                     "rows per group.")
    for node in report["nodes"]:
        lines += ["", *_node_header(node)]
        if not stats_only and group_by == "node":
            lines += ["", *_table([r for r in rows if r["node_id"] == node["node_id"]], limit)]
    if not stats_only and group_by == "owner":
        for address, owner_rows in _by_owner(rows).items():
            lines += ["", _owner_header(address, report["processes"]), "",
                      *_table(owner_rows, limit)]
    lines += ["", f"{_RULE} Summary {_RULE}", summary_line(rows)]
    return "\n".join(lines)


def summary_line(rows: list[dict]) -> str:
    """``N objects, X in shared memory, Y spilled``: each object counted once."""
    seen: dict[str, dict] = {}
    for r in rows:
        seen.setdefault(r["object_id"], r)
    shm = sum(max(r["object_size"], 0) for r in seen.values()
              if r["in_shared_memory"] and not r["spilled"])
    spilled = sum(max(r["object_size"], 0) for r in seen.values() if r["spilled"])
    n = len(seen)
    return (f"{n} object{'' if n == 1 else 's'}, {format_bytes(shm)} in shared memory, "
            f"{format_bytes(spilled)} spilled")


def _node_header(node: dict) -> list[str]:
    s = node["store"]
    cap = s.get("capacity") or 0
    pct = f" ({100 * s['used'] / cap:.1f}%)" if cap else ""
    n = s.get("num_spilled", 0)
    return [
        f"--- Node {node['node_id']} ({node['ip']}) ---",
        f"Object store: {format_bytes(s['used'])} / {format_bytes(cap)} used{pct}, "
        f"{s.get('num_objects', 0) - n} object(s) in memory, "
        f"{format_bytes(s.get('reserved', 0))} reserved",
        f"Spilled: {format_bytes(s.get('spilled', 0))} in {n} object(s)",
        f"Pinned by readers: {format_bytes(s.get('pinned', 0))}",
    ]


def _by_owner(rows: list[dict]) -> dict[str | None, list[dict]]:
    groups: dict[str | None, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["owner_address"], []).append(r)
    return groups


def _owner_header(address: str | None, procs: dict) -> str:
    p = procs.get(address) if address else None
    if p is None:
        if not address:
            return "--- No owner: freed objects still mapped by a reader ---"
        return f"--- Owner at {address} (it did not answer) ---"
    return f"--- Owner {p['type']} pid {p['pid']} on {p['ip']} (node {p['node_id']}) ---"


def _table(rows: list[dict], limit: int) -> list[str]:
    if not rows:
        return ["(no objects)"]
    rows = sorted(rows, key=lambda r: (-(r["object_size"] or 0), r["object_id"],
                                       r["pid"] or 0))
    shown = [dict(zip(_COLUMNS, _cells(r), strict=True)) for r in rows[:limit]]
    out = format_table(shown).splitlines() if shown else []
    if len(rows) > limit:
        out.append(f"... {len(rows) - limit} more row(s) not shown (see --limit)")
    return out


def _cells(r: dict) -> tuple:
    size = "?" if r["object_size"] < 0 else format_bytes(r["object_size"])
    return (r["object_id"], size, r["reference_type"], r["call_site"] or "-",
            "-" if r["pid"] < 0 else r["pid"], r["type"] or "-", _where(r))


def _where(r: dict) -> str:
    if r["task_status"] not in ("FINISHED", "NIL"):
        return "pending"
    if r["in_shared_memory"] is None:
        return "unknown"
    if r["spilled"]:
        return "spilled"
    return "shared memory" if r["in_shared_memory"] else "inline"
