"""``shoal logs``: list a cluster's log files, or print (and follow) one, named by node,
worker pid, actor id, task id or a file name from the list (as ``ray logs``)."""

from __future__ import annotations

import click

from ..util import state


@click.command()
@click.argument("filename", required=False)
@click.option("--node-id", default=None, help="The node (hex id) whose log to read.")
@click.option("--node-ip", default=None, help="The node (IP address) whose log to read.")
@click.option("--pid", type=click.IntRange(min=1), default=None, help="A worker's pid.")
@click.option("--actor-id", default=None, help="An actor's id: its worker's log.")
@click.option("--task-id", default=None, help="A task's id: the log of the worker it ran on.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing lines as they are written.")
@click.option("--tail", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Start with this many last lines.")
@click.option("--address", default=None, metavar="HOST:PORT",
              help="The head to ask (default: the cluster running on this machine).")
def logs(filename, node_id, node_ip, pid, actor_id, task_id, follow, tail, address) -> None:
    """Without arguments, list the log files of every node; otherwise print one log.

    FILENAME is a name that the list shows (worker-<id>-<pid>.log, node.log, head.log);
    the node's own log is printed when only --node-id or --node-ip is given.
    """
    try:
        if not any((filename, node_id, node_ip, pid, actor_id, task_id)):
            _print_list(state.list_logs(address=address))
            return
        for line in state.get_log(address=address, node_id=node_id, node_ip=node_ip,
                                  filename=filename, actor_id=actor_id, task_id=task_id,
                                  pid=pid, follow=follow, tail=tail):
            click.echo(line)
    except state.ClusterNotFoundError as e:
        raise click.ClickException(str(e)) from None
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        pass


def _print_list(by_node: dict) -> None:
    for node_id, files in by_node.items():
        click.echo(f"Node {node_id}:")
        for kind, names in files.items():
            if names:
                click.echo(f"  {kind}:")
                for n in names:
                    click.echo(f"    {n}")
