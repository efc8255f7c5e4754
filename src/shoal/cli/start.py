"""``shoal start``: start a cluster's head (``--head``) or join a cluster (``--address``).

The node daemon (``python -m shoal._private.launch.daemon``) is started detached, in its own session,
so it outlives this command; its stderr goes to ``logs/daemon.err`` in its session directory.
The command waits for the daemon's ``READY`` line, or reports its ``FAILED`` reason and exits
with code 1. ``--block`` keeps the command in the foreground until the daemon exits.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import click

from .._private.launch import local_cluster
from .._private.launch.local_cluster import _read_ready, find_session_for_head
from .._private.wire.config import config, default_session_root
from .._private.wire.session import Session
from ..util import state

DEFAULT_PORT = 6379


@click.command()
@click.option("--head", is_flag=True, help="Start the head node of a new cluster.")
@click.option("--address", default=None, metavar="HOST:PORT",
              help="Join the cluster whose head listens at HOST:PORT.")
@click.option("--token", envvar=state.TOKEN_ENV, default=None,
              help="The cluster token (better: SHOAL_TOKEN or --token-file, since any local "
                   "user can read a command line).")
@click.option("--token-file", default=None, metavar="PATH",
              help="Read the cluster token from this file (the head's <session>/token), or "
                   "from standard input if PATH is '-'.")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help=f"Head: the port nodes join (default {DEFAULT_PORT}). "
                   "Other nodes: the port this node listens on (default: any free port).")
@click.option("--node-ip-address", default=None,
              help="The IP other nodes reach this node at (head default 127.0.0.1; "
                   "joining node default: the local IP that routes to the head).")
@click.option("--num-cpus", type=click.IntRange(min=0), default=None,
              help="CPUs of this node (default: all of this machine's).")
@click.option("--num-gpus", type=click.IntRange(min=0), default=None, help="GPUs of this node.")
@click.option("--resources", default=None, metavar="JSON",
              help='Custom resources, e.g. \'{"custom": 2}\'.')
@click.option("--memory", type=click.IntRange(min=0), default=None,
              help="Bytes of memory for tasks and actors (default: most of what is free).")
@click.option("--object-store-memory", type=click.IntRange(min=0), default=None,
              help="Bytes of the shared-memory object store (default: 30% of free memory).")
@click.option("--dashboard-host", default=None,
              help="Head: the address the dashboard listens on (default 127.0.0.1; any other "
                   "address requires the cluster token to see it).")
@click.option("--dashboard-port", type=click.IntRange(0, 65535), default=None,
              help="Head: the dashboard's port (default 8265, or a free one if it is taken).")
@click.option("--include-dashboard", type=bool, default=None,
              help="Head: serve the dashboard (default true).")
@click.option("--session-dir", default=None, type=click.Path(file_okay=False),
              help="Head: restart a head on this existing session (after it was killed); "
                   "it takes back its actors, placement groups and jobs, and its nodes and "
                   "drivers reconnect.")
@click.option("--block", is_flag=True,
              help="Stay in the foreground until the daemon exits; Ctrl-C stops it.")
@click.option("--temp-dir", default=None, type=click.Path(file_okay=False),
              help="The root of this node's session directories (instead of "
                   "SHOAL_SESSION_ROOT, default /tmp/shoal); the head's current-cluster "
                   "record goes there too, so drivers and `shoal stop` need "
                   "SHOAL_SESSION_ROOT set to it.")
@click.option("--object-spilling-directory", default=None, type=click.Path(file_okay=False),
              help="Where this node spills objects when its store is full (default: the "
                   "session's spill/ directory).")
@click.option("--plasma-directory", default=None,
              type=click.Path(exists=True, file_okay=False, writable=True),
              help="The directory (a tmpfs, default /dev/shm) holding this node's "
                   "shared-memory objects.")
@click.option("--disable-usage-stats", is_flag=True,
              help="Accepted for Ray's scripts; ignored: shoal collects no usage statistics.")
@click.option("--min-worker-port", type=click.IntRange(0, 65535), default=None,
              help="Accepted for Ray's scripts; ignored: workers listen on Unix sockets and "
                   "any free TCP port.")
@click.option("--max-worker-port", type=click.IntRange(0, 65535), default=None,
              help="Accepted for Ray's scripts; ignored (see --min-worker-port).")
@click.option("--ray-client-server-port", type=click.IntRange(0, 65535), default=None,
              help="Accepted for Ray's scripts; ignored: there is no Ray client server "
                   "(drivers run on a node of the cluster).")
@click.option("--metrics-export-port", type=click.IntRange(0, 65535), default=None,
              help="Accepted for Ray's scripts; ignored: metrics are served at the "
                   "dashboard's /metrics.")
@click.option("--log-style", type=click.Choice(["auto", "record", "pretty"]), default=None,
              help="Accepted for Ray's scripts; ignored: the output is plain text.")
@click.option("--log-color", type=click.Choice(["auto", "false", "true"]), default=None,
              help="Accepted for Ray's scripts; ignored: the output has no colours.")
def start(head, address, token, token_file, port, node_ip_address, num_cpus, num_gpus, resources, memory,
          object_store_memory, dashboard_host, dashboard_port, include_dashboard, session_dir,
          block, temp_dir, object_spilling_directory, plasma_directory, **ignored):
    """Start shoal on this machine: a new cluster's head, or a node joining a cluster.

    Ray's flags --disable-usage-stats, --min-worker-port, --max-worker-port,
    --ray-client-server-port, --metrics-export-port, --log-style and --log-color are
    accepted and ignored (see each one's help).
    """
    if head == bool(address):
        raise click.UsageError("Pass either --head (start a cluster) or --address HOST:PORT "
                               "(join one).")
    if ignored.get("max_worker_port") is not None and ignored.get("min_worker_port") is None:
        raise click.UsageError("If --max-worker-port is set, --min-worker-port must also "
                               "be set.")
    _use_directories(temp_dir, object_spilling_directory, plasma_directory)
    node_args = _node_args(num_cpus, num_gpus, _parse_resources(resources), memory,
                           object_store_memory)
    if head:
        ip = node_ip_address or "127.0.0.1"
        port = DEFAULT_PORT if port is None else port
        dashboard = {"dashboard_host": dashboard_host, "dashboard_port": dashboard_port,
                     "include_dashboard": include_dashboard}
        if session_dir is None:
            _refuse_running_head(ip, port)
        proc, sess, info = _start_head(ip, port, node_args, dashboard, session_dir)
        _record_current(sess, info)
        _print_head_started(info, os.path.join(sess.path, "token"))
    else:
        host, head_port = _split_address(address)
        token = _given_token(token, token_file) or _local_head_token(address)
        ip = node_ip_address or _route_ip(host, head_port)
        proc, sess, info = _join(address, token, ip, port or 0, node_args)
        _print_node_joined(info, address)
    if block:
        try:
            _block(proc)
        finally:
            if head:
                local_cluster.clear_current_cluster(session_path=sess.path)


def _use_directories(temp_dir, spill_dir, shm_dir) -> None:
    """Ray's directory flags as shoal's settings, for this command and the daemon it
    starts (which inherits the environment)."""
    if temp_dir:
        temp_dir = os.path.abspath(temp_dir)
        try:
            os.makedirs(temp_dir, exist_ok=True)
        except OSError as e:
            raise click.BadParameter(f"cannot create {temp_dir}: {e.strerror}",
                                     param_hint="--temp-dir") from None
        os.environ["SHOAL_SESSION_ROOT"] = temp_dir
    if spill_dir:
        os.environ["SHOAL_SPILL_DIR"] = os.path.abspath(spill_dir)
    if shm_dir:
        os.environ["SHOAL_SHM_DIR"] = os.path.abspath(shm_dir)


def _refuse_running_head(ip: str, port: int) -> None:
    """As Ray: a head of this machine already listening at ``ip:port`` fails the start,
    saying so (a port taken by anything else fails in the daemon, naming the port)."""
    if port == 0:
        return
    sess = find_session_for_head(f"{ip}:{port}")
    if sess is not None and (state.read_address(sess.path) or {}).get("is_head"):
        raise click.ClickException(
            f"shoal is trying to start at {ip}:{port}, but is already running at "
            f"{ip}:{port} (port {port} is in use by the head of {sess.path}). Please specify "
            "a different port using the `--port` flag of `shoal start`, or stop the running "
            "cluster with `shoal stop`.")


def _record_current(sess: Session, info: dict) -> None:
    """Make this head the machine's current cluster, as ``ray start --head`` does."""
    previous = local_cluster.current_cluster()
    if previous is not None and previous.path != sess.path:
        old = (state.read_address(previous.path) or {}).get("head_address")
        click.echo(f"Overwriting previous shoal address ({old}). Running shoal.init() on "
                   f"this node will now connect to the new instance at "
                   f"{info['head_address']}. To override this behavior, pass "
                   f"address={old!r} to shoal.init().")
    try:
        local_cluster.record_current_cluster(sess.path, info)
    except OSError as e:
        click.echo(f"Could not record the current cluster in {config.session_root}: "
                   f"{e.strerror}; pass its address to shoal.init().", err=True)


# -- arguments ---------------------------------------------------------------------------
def _parse_resources(raw: str | None) -> dict:
    if not raw:
        return {}
    try:
        res = json.loads(raw)
    except ValueError as e:
        raise click.BadParameter(f"not valid JSON: {e}", param_hint="--resources") from None
    if not isinstance(res, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
            and v >= 0 for k, v in res.items()):
        raise click.BadParameter('expected a JSON object of non-negative numbers, e.g. '
                                 '\'{"custom": 2}\'', param_hint="--resources")
    if "CPU" in res or "GPU" in res:
        raise click.BadParameter("use --num-cpus and --num-gpus for CPU and GPU",
                                 param_hint="--resources")
    return res


def _node_args(num_cpus, num_gpus, resources, memory, object_store_memory) -> list[str]:
    args = ["--num-cpus", str((os.cpu_count() or 1) if num_cpus is None else num_cpus)]
    if num_gpus:
        args += ["--num-gpus", str(num_gpus)]
    if resources:
        args += ["--resources", json.dumps(resources)]
    if memory:
        args += ["--memory", str(memory)]
    if object_store_memory:
        args += ["--object-store-memory", str(object_store_memory)]
    return args


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {address!r}", param_hint="--address")
    return host.strip("[]"), int(port)


def _given_token(token: str | None, token_file: str | None) -> str | None:
    """The token from --token-file (a file, or '-' for stdin), SHOAL_TOKEN or --token; a
    token on the command line works but warns: /proc/<pid>/cmdline is world-readable."""
    if token_file is not None:
        try:
            if token_file == "-":
                token = sys.stdin.readline()
            else:
                with open(token_file) as f:
                    token = f.read()
        except OSError as e:
            raise click.BadParameter(f"cannot read {token_file}: {e.strerror}",
                                     param_hint="--token-file") from None
        token = token.strip()
        if not token:
            raise click.BadParameter(f"{token_file} holds no token", param_hint="--token-file")
        return token
    ctx = click.get_current_context()
    if token and ctx.get_parameter_source("token") == click.core.ParameterSource.COMMANDLINE:
        click.echo("Warning: --token puts the cluster token in this command's argv, which "
                   "every local user can read; use --token-file or SHOAL_TOKEN instead.",
                   err=True)
    return token


def _local_head_token(address: str) -> str:
    """The token of a head running on this machine at ``address``, for joining it."""
    sess = find_session_for_head(address)  # the head's own session comes first
    if sess is not None and (state.read_address(sess.path) or {}).get("is_head"):
        return sess.read_token().decode()
    raise click.ClickException(
        f"A cluster token is needed to join {address}: pass --token-file with a copy of "
        "the head's token file (or set SHOAL_TOKEN) that `shoal start --head` named.")


def _route_ip(host: str, port: int) -> str:
    """This machine's IP on the route to the head (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, port))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


# -- starting the daemon -----------------------------------------------------------------
def _start_head(ip: str, port: int, node_args: list[str], dashboard: dict,
                session_dir: str | None = None):
    latest = os.path.join(config.session_root, "session_latest")
    previous = os.readlink(latest) if os.path.islink(latest) else None
    if session_dir is not None:
        if local_cluster._alive(session_dir):
            raise click.ClickException(f"the head of {session_dir} is still running")
        try:
            sess = Session.open(session_dir)
        except FileNotFoundError as e:
            raise click.ClickException(str(e)) from None
    else:
        sess = Session.create(latest=True)
    dashboard = _dashboard_settings(sess.path, dashboard)
    cmd = ["--head", "--port", str(port), "--ip", ip, *node_args]
    if dashboard["include_dashboard"] is not None:
        cmd += ["--include-dashboard", str(bool(dashboard["include_dashboard"])).lower()]
    cmd += ["--dashboard-host", dashboard["dashboard_host"] or "127.0.0.1"]
    if dashboard["dashboard_port"] is not None:
        cmd += ["--dashboard-port", str(dashboard["dashboard_port"])]
    try:
        proc, info = _spawn(sess, cmd, "could not start the shoal head",
                            keep_session=session_dir is not None)
    except click.ClickException:
        _restore_latest(latest, sess.path, previous)
        raise
    return proc, sess, info


def _dashboard_settings(session_path: str, given: dict) -> dict:
    """The dashboard options: those given, else those a restarted head's session kept."""
    path = os.path.join(session_path, "dashboard.json")
    try:
        with open(path) as f:
            kept = json.load(f)
    except (OSError, ValueError):
        kept = {}
    settings = {k: given[k] if given.get(k) is not None else kept.get(k) for k in given}
    with open(path, "w") as f:
        json.dump(settings, f)
    return settings


def _join(address: str, token: str, ip: str, port: int, node_args: list[str]):
    sess = Session.create(latest=False)
    with open(os.path.join(sess.path, "token"), "w") as f:  # the file is already 0600
        f.write(token.strip())
    cmd = ["--port", str(port), "--head-address", address, "--ip", ip, *node_args]
    proc, info = _spawn(sess, cmd, f"could not join the cluster at {address}")
    return proc, sess, info


def _spawn(sess: Session, args: list[str], what: str, keep_session: bool = False):
    """Start the daemon detached and wait for READY; on failure remove the session directory
    (unless the failure was unexpected: its logs are kept) and raise ClickException."""
    cmd = [sys.executable, "-m", "shoal._private.launch.daemon", "--session-dir", sess.path, *args]
    err_log = os.path.join(sess.path, "logs", "daemon.err")
    with open(err_log, "ab") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, start_new_session=True, close_fds=True,
                                env=local_cluster.daemon_env())
    try:
        info = _read_ready(proc, config.start_timeout_s)
    except (RuntimeError, TimeoutError) as e:
        proc.kill()
        proc.wait()
        reason = str(e)
        if "FAILED " in reason:
            reason = reason.split("FAILED ", 1)[1]
        if "FAILED " in str(e) and sess.path not in reason and not keep_session:
            shutil.rmtree(sess.path, ignore_errors=True)
        else:
            reason += f" (the daemon's log: {err_log})"
        raise click.ClickException(f"{what}: {reason}") from None
    finally:
        proc.stdout.close()
    return proc, info


def _restore_latest(link: str, failed: str, previous: str | None) -> None:
    """Point ``session_latest`` back where it was if it names a session that failed."""
    if os.path.realpath(link) != os.path.realpath(failed):
        return
    try:
        os.unlink(link)
        if previous is not None:
            os.symlink(previous, link)
    except OSError:
        pass


def _block(proc: subprocess.Popen) -> None:
    """Wait for the daemon; Ctrl-C or SIGTERM stops it gracefully, and exits 0."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    click.echo("--block: running in the foreground; Ctrl-C stops this node.")
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        click.echo("Stopped the shoal daemon.")
        return
    raise click.ClickException(f"the shoal daemon exited (code {code}).")


def _raise_interrupt(_sig, _frame):
    raise KeyboardInterrupt


# -- messages ----------------------------------------------------------------------------
def _print_head_started(info: dict, token_path: str) -> None:
    address = info["head_address"]
    click.echo(f"Local node IP: {info['node_ip']}\n")
    click.echo("--------------------")
    click.echo("shoal runtime started.")
    click.echo("--------------------\n")
    click.echo("Next steps")
    click.echo("  To add another node to this shoal cluster, copy the token file")
    click.echo(f"    {token_path}")
    click.echo("  to that node (readable only by you, mode 0600), and run")
    click.echo(f"    shoal start --address='{address}' --token-file='{token_path}'")
    click.echo("  (--token-file=- reads the token from standard input; it may instead be "
               f"given in the environment variable {state.TOKEN_ENV}. Never pass it in a "
               "command line: every local user can read those.)\n")
    if info.get("webui_url"):
        click.echo("  The dashboard (the cluster token, in that file, is also its password):")
        click.echo(f"    {info['webui_url']}\n")
    click.echo("  To connect to this shoal cluster from Python on this machine:")
    click.echo("    import shoal; shoal.init()")
    if os.environ.get("SHOAL_SESSION_ROOT") and config.session_root != default_session_root():
        click.echo(f"  with SHOAL_SESSION_ROOT={config.session_root} in its environment")
    click.echo("")
    click.echo("  To terminate the shoal runtime, run")
    click.echo("    shoal stop")


def _print_node_joined(info: dict, address: str) -> None:
    click.echo(f"Local node IP: {info['node_ip']}\n")
    click.echo("--------------------")
    click.echo(f"shoal runtime started: this node joined the cluster at {address}.")
    click.echo(f"  node id: {info['node_id']}")
    click.echo("--------------------\n")
    click.echo("To terminate the shoal runtime on this machine, run")
    click.echo("  shoal stop")
