"""The ``shoal`` command line, modelled on Ray's: ``start``, ``stop``, ``status``, ``list``,
``summary``, ``memory``, ``logs``, ``timeline``, ``job``.

``shoal start --head`` starts a cluster's head on this machine, ``shoal start --address``
joins this machine to a cluster, ``shoal stop`` stops every shoal process of this machine,
``shoal status``, ``shoal list`` and ``shoal memory`` show what a running cluster holds.
Each command lives in its own module; this one only gathers them under the ``main`` group
(the console script).
"""

from __future__ import annotations

import click

from .._private.wire.version import __version__
from .job import job
from .list_cmd import list_cmd
from .logs import logs
from .memory import memory
from .start import start
from .status import status
from .stop import stop
from .summary import summary
from .timeline import timeline


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shoal")
def main() -> None:
    """Start, stop and inspect shoal clusters (as Ray's `ray` command does)."""


main.add_command(start)
main.add_command(stop)
main.add_command(summary)
main.add_command(status)
main.add_command(list_cmd)
main.add_command(memory)
main.add_command(logs)
main.add_command(timeline)
main.add_command(job)

__all__ = ["main"]
