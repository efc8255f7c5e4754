"""``shoal summary tasks|actors|objects``: counts by function, class or call site, as
``ray summary`` prints them."""

from __future__ import annotations

import json

import click

from ..util import state

_SUMMARIES = {"tasks": state.summarize_tasks, "actors": state.summarize_actors,
              "objects": state.summarize_objects}


@click.command("summary")
@click.argument("resource", type=click.Choice(list(_SUMMARIES)))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("--address", default=None, metavar="HOST:PORT",
              help="The head to ask (default: the cluster running on this machine).")
def summary(resource: str, fmt: str, address: str | None) -> None:
    """Summarize the cluster's RESOURCE: tasks (by function and state), actors (by class
    and state) or objects (by call site)."""
    try:
        result = _SUMMARIES[resource](address=address)
    except state.ClusterNotFoundError as e:
        raise click.ClickException(str(e)) from None
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    cluster = result["cluster"]
    rows = cluster["summary"]
    if resource == "objects":
        click.echo(f"Total objects: {cluster['total_objects']} "
                   f"({cluster['total_size_mb']:.2f} MiB)\n")
        header, cells = "CALL_SITE", [
            (site or "(unknown)", f"{g['total_objects']} objects, {g['total_size_mb']:.2f} MiB",
             _counts(g["ref_type_counts"])) for site, g in sorted(rows.items())]
    else:
        click.echo(f"Total {resource}: {cluster['total_' + resource]}\n")
        key = "type" if resource == "tasks" else None
        header = "FUNC_OR_CLASS_NAME" if resource == "tasks" else "CLASS_NAME"
        cells = [(name, e[key] if key else "", _counts(e["state_counts"]))
                 for name, e in sorted(rows.items())]
    if not cells:
        return
    w0 = max(len(header), *(len(c[0]) for c in cells))
    w1 = max(4, *(len(c[1]) for c in cells))
    second = "TYPE" if resource == "tasks" else ("SIZE" if resource == "objects" else "")
    last = "REFERENCE_TYPES" if resource == "objects" else "STATE_COUNTS"
    click.echo(f"{header:<{w0}}  {second:<{w1}}  {last}".rstrip())
    for name, mid, counts in cells:
        click.echo(f"{name:<{w0}}  {mid:<{w1}}  {counts}")


def _counts(counts: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
