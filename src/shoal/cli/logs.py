"""``shoal logs``: list a cluster's log files, or print (and follow) one, as ``ray logs``.

    shoal logs                          every node's log files
    shoal logs cluster [GLOB]           the same, filtered; a GLOB naming one file prints it
    shoal logs GLOB                     as ``logs cluster GLOB``
    shoal logs actor --id ACTOR_ID      an actor's worker's log
    shoal logs task --id TASK_ID        the log of the worker a task ran on
    shoal logs worker --pid PID         a worker's log
    shoal logs --node-ip IP             a node's own daemon log

Logs are named by ids and file names from the list, never by paths.
"""

from __future__ import annotations

import click

from ..util import state

_KINDS = ("cluster", "actor", "task", "worker")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("what", required=False)
@click.argument("glob", required=False)
@click.option("--id", "id_", default=None, help="With `actor` or `task`: its id.")
@click.option("--node-id", default=None, help="The node (hex id) whose log to read.")
@click.option("--node-ip", default=None, help="The node (IP address) whose log to read.")
@click.option("--pid", type=click.IntRange(min=1), default=None, help="A worker's pid.")
@click.option("--actor-id", default=None, help="An actor's id: its worker's log.")
@click.option("--task-id", default=None, help="A task's id: the log of the worker it ran on.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing lines as they are written.")
@click.option("--tail", type=int, default=1000, show_default=True,
              help="Start with this many last lines (-1: the whole log).")
@click.option("--address", default=None, metavar="HOST:PORT",
              help="The head to ask (default: the cluster running on this machine).")
def logs(what, glob, id_, node_id, node_ip, pid, actor_id, task_id, follow, tail,
         address) -> None:
    """List the cluster's log files, or print one (see the forms above)."""
    filename = None
    if what == "actor":
        actor_id = actor_id or _need(id_, "shoal logs actor --id ACTOR_ID")
    elif what == "task":
        task_id = task_id or _need(id_, "shoal logs task --id TASK_ID")
    elif what == "worker":
        pid = pid or _need(id_ and int(id_), "shoal logs worker --pid PID")
    elif what == "cluster":
        filename = glob
    elif what is not None:
        filename = what
    try:
        if filename is not None and not any((pid, actor_id, task_id)):
            names = _matching(filename, node_id, node_ip, address)
            if len(names) != 1 or names[0][1] != filename:
                _print_list(_group(names), filename)
                return
        elif not any((filename, node_id, node_ip, pid, actor_id, task_id)):
            _print_list(state.list_logs(address=address), None)
            return
        for line in state.get_log(address=address, node_id=node_id, node_ip=node_ip,
                                  filename=filename, actor_id=actor_id, task_id=task_id,
                                  pid=pid, follow=follow, tail=tail):
            click.echo(line)
    except (state.ClusterNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        pass


def _need(value, usage: str):
    if not value:
        raise click.UsageError(f"usage: {usage}")
    return value


def _matching(pattern: str, node_id, node_ip, address) -> list[tuple[str, str, str]]:
    """(node id, file name, kind) of every log whose name matches ``pattern`` (a glob)."""
    found = state.list_logs(address=address, glob_filter=pattern, node_id=node_id,
                            node_ip=node_ip)
    if node_id or node_ip:
        found = {node_id or node_ip: found}
    return [(nid, name, kind) for nid, files in found.items()
            for kind, names in files.items() for name in names]


def _group(names: list[tuple[str, str, str]]) -> dict:
    out: dict[str, dict[str, list[str]]] = {}
    for nid, name, kind in names:
        out.setdefault(nid, {}).setdefault(kind, []).append(name)
    return out


def _print_list(by_node: dict, pattern: str | None) -> None:
    if not by_node and pattern is not None:
        raise click.ClickException(f"no log file matches {pattern!r} "
                                   "(`shoal logs` lists them)")
    for node_id, files in by_node.items():
        click.echo(f"Node {node_id}:")
        for kind, names in files.items():
            if names:
                click.echo(f"  {kind}:")
                for n in names:
                    click.echo(f"    {n}")
