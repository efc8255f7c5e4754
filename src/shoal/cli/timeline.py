"""``shoal timeline``: write the cluster's task timeline as a Chrome trace file."""

from __future__ import annotations

import json
import os
import tempfile
import time

import click

from ..util import state


@click.command()
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False),
              help="Where to write the trace (default: a new file in the temp directory).")
@click.option("--address", default=None, metavar="HOST:PORT",
              help="The head to ask (default: the cluster running on this machine).")
def timeline(output, address) -> None:
    """Write every task the cluster remembers as a Chrome trace (JSON); open it in
    chrome://tracing or https://ui.perfetto.dev."""
    try:
        events = state.timeline_events(address=address)
    except state.ClusterNotFoundError as e:
        raise click.ClickException(str(e)) from None
    if output is None:
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        output = os.path.join(tempfile.gettempdir(), f"shoal-timeline-{stamp}.json")
    with open(output, "w") as f:
        json.dump(events, f)
    spans = sum(1 for e in events if e.get("ph") == "X")
    click.echo(f"Trace file written to {output} ({spans} tasks). Open it in chrome://tracing "
               "or https://ui.perfetto.dev.")
