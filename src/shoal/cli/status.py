"""``shoal status``: the cluster's nodes and its resource usage, like ``ray status``.

It asks the head for its node table (live and dead nodes, each with its total and available
resources) and prints the nodes, then per resource the amount in use over the total of the
live nodes. The per-node ``node:<ip>`` marker resources are left out, as Ray does.
"""

from __future__ import annotations

import time

import click

from ..util import state

_RULE = "-" * 60
_BYTES = ("memory", "object_store_memory")


@click.command()
@click.option("--address", default=None, metavar="HOST:PORT",
              help="The head to ask (default: the cluster running on this machine). Its "
                   "token comes from a local session of that cluster or from SHOAL_TOKEN.")
def status(address: str | None) -> None:
    """Show the nodes of the cluster and the resources in use."""
    try:
        nodes = state.raw_nodes(address)
        counts = state.head_request("task_counts", address=address)["counts"]
    except state.ClusterNotFoundError as e:
        raise click.ClickException(str(e)) from None
    click.echo(format_status(nodes, counts))


def format_status(nodes: list[dict], task_counts: dict | None = None) -> str:
    """The report for the head's node table (``get_nodes`` entries) and, if given, the
    cluster's task records counted by state."""
    alive = [n for n in nodes if n["alive"]]
    dead = [n for n in nodes if not n["alive"]]
    lines = [f"======== Cluster status: {time.strftime('%Y-%m-%d %H:%M:%S')} ========",
             "Node status", _RULE, "Active:"]
    lines += [_node_line(n) for n in alive] or [" (no active nodes)"]
    lines += ["Dead:"]
    lines += [_node_line(n) for n in dead] or [" (no dead nodes)"]
    lines += ["", "Resources", _RULE, "Usage:"]
    lines += [f" {line}" for line in _usage(alive)] or [" (no resources)"]
    if task_counts is not None:
        lines += ["", "Tasks", _RULE, *_task_lines(task_counts)]
    return "\n".join(lines)


def _task_lines(counts: dict[str, int]) -> list[str]:
    args = counts.get("PENDING_ARGS_AVAIL", 0)
    node = counts.get("PENDING_NODE_ASSIGNMENT", 0)
    return [f" {counts.get('RUNNING', 0)} running",
            f" {args + node} pending ({args} waiting for arguments, {node} for a worker)",
            f" {counts.get('FINISHED', 0)} finished, {counts.get('FAILED', 0)} failed"]


def _node_line(n: dict) -> str:
    head = " (head)" if n.get("is_head") else ""
    return f" node_{n['node_id'].hex()} {n['ip']}{head}"


def _usage(alive: list[dict]) -> list[str]:
    total: dict[str, float] = {}
    avail: dict[str, float] = {}
    for n in alive:
        for k, v in n["total"].items():
            total[k] = total.get(k, 0.0) + v
        for k, v in n["available"].items():
            avail[k] = avail.get(k, 0.0) + v
    names = [k for k in total if not k.startswith("node:")]
    order = ["CPU", "GPU"] + sorted(k for k in names if k not in ("CPU", "GPU", *_BYTES))
    order += list(_BYTES)
    out = []
    for k in order:
        if k not in total:
            continue
        used = max(total[k] - avail.get(k, 0.0), 0.0)
        if k in _BYTES:
            out.append(f"{format_bytes(used)}/{format_bytes(total[k])} {k}")
        else:
            out.append(f"{used:.1f}/{total[k]:.1f} {k}")
    return out


def format_bytes(n: float) -> str:
    """``0B``, ``512.00KiB``, ``1.50GiB``: Ray's way of printing memory amounts."""
    if n < 1:
        return "0B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f}B" if unit == "B" else f"{n:.2f}{unit}"
        n /= 1024
    return f"{n:.2f}TiB"
