"""``shoal list RESOURCE``: a table (or JSON) of the cluster's nodes, actors, placement
groups, objects or tasks.

The rows come from the state API (``shoal.util.state``), with Ray's field names, so
``--filter`` keys are the same as with ``ray list``. Task records are kept by the process
that submitted each task, so a job's tasks are listed while its driver runs.
"""

from __future__ import annotations

import json

import click

from .._private.state import schema as state_schema
from ..util import state
from .status import format_bytes

_LISTERS = {"nodes": state.list_nodes, "actors": state.list_actors,
            "placement-groups": state.list_placement_groups, "objects": state.list_objects,
            "tasks": state.list_tasks, "jobs": state.list_jobs, "workers": state.list_workers}


@click.command("list")
@click.argument("resource", type=click.Choice(list(_LISTERS)))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("--limit", type=click.IntRange(min=0), default=state.DEFAULT_LIMIT,
              show_default=True, help="At most this many rows.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Keep rows whose KEY equals (KEY=VALUE) or differs from (KEY!=VALUE) "
                   "VALUE; may be repeated.")
@click.option("--detail", is_flag=True, help="Show every field, not only the main ones.")
@click.option("--address", default=None, metavar="HOST:PORT",
              help="The head to ask (default: the cluster running on this machine).")
@click.pass_context
def list_cmd(ctx, resource, fmt, limit, filters, detail, address) -> None:
    """List the cluster's RESOURCE: nodes, actors, placement-groups, objects, tasks, jobs
    or workers."""
    try:
        rows = _LISTERS[resource](filters=[_parse_filter(f) for f in filters], limit=limit,
                                  detail=detail, address=address)
    except state.ClusterNotFoundError as e:
        raise click.ClickException(str(e)) from None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--filter") from None
    if not detail:  # as `ray list`: the columns shown without --detail
        shown = state_schema.columns(resource.replace("-", "_"), False)
        rows = [{k: r.get(k) for k in shown} for r in rows]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif rows:
        click.echo(f"Total: {len(rows)}\n")
        click.echo(format_table(rows))
    else:
        click.echo(f"No {resource} found.")


def _parse_filter(text: str) -> tuple[str, str, str]:
    for op in ("!=", "="):
        key, sep, value = text.partition(op)
        if sep and key.strip():
            return key.strip(), op, value.strip()
    raise click.BadParameter(f"expected KEY=VALUE or KEY!=VALUE, got {text!r}",
                             param_hint="--filter")


def format_table(rows: list[dict]) -> str:
    """Rows as aligned columns under upper-case headers."""
    keys = list(rows[0])
    cells = [[k.upper() for k in keys]] + [[_cell(k, r.get(k)) for k in keys] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keys))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)


def _cell(key: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_amount(k, v)}" for k, v in sorted(value.items()))
    return str(value)


def _amount(name: str, value) -> str:
    if name in ("memory", "object_store_memory"):
        return format_bytes(value)
    return f"{value:g}" if isinstance(value, float) else str(value)
