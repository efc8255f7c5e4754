"""``shoal summary tasks``: how many tasks of each function are in each state."""

from __future__ import annotations

import json

import click

from ..util import state


@click.command("summary")
@click.argument("resource", type=click.Choice(["tasks"]))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("--address", default=None, metavar="HOST:PORT",
              help="The head to ask (default: the cluster running on this machine).")
def summary(resource: str, fmt: str, address: str | None) -> None:
    """Summarize the cluster's RESOURCE (tasks: counts by function and state)."""
    try:
        result = state.summarize_tasks(address=address)
    except state.ClusterNotFoundError as e:
        raise click.ClickException(str(e)) from None
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    rows = result["cluster"]["summary"]
    click.echo(f"Total tasks: {result['cluster']['total_tasks']}\n")
    if not rows:
        return
    width = max(len(name) for name in rows)
    click.echo(f"{'FUNC_OR_CLASS_NAME':<{max(width, 18)}}  {'TYPE':<11}  STATE_COUNTS")
    for name, e in sorted(rows.items()):
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(e["state_counts"].items()))
        click.echo(f"{name:<{max(width, 18)}}  {e['type']:<11}  {counts}")
