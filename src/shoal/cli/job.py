"""``shoal job submit|status|logs|stop|delete|list``: Ray's ``ray job`` commands, over
``shoal.job_submission.JobSubmissionClient``.

``--address`` (or ``RAY_API_SERVER_ADDRESS``/``RAY_ADDRESS``) names the dashboard, e.g.
``http://HEAD:8265``; without it, the head running on this machine. The token comes from
``--headers '{"Authorization": "Bearer ..."}'`` (Ray's way), ``SHOAL_TOKEN``, or on the head
from its session. ``submit`` follows the job's log until it ends unless ``--no-wait``, and
exits 1 if the job failed, as Ray's does.
"""

from __future__ import annotations

import asyncio
import json
import pprint
import shlex

import click


def _client(address, headers, verify):
    from ..exceptions import AuthenticationError
    from ..job_submission import JobSubmissionClient

    try:
        hdrs = json.loads(headers) if headers else None
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint="--headers") from None
    if hdrs is not None and not isinstance(hdrs, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--headers")
    try:
        return JobSubmissionClient(address, headers=hdrs, verify=verify)
    except (ConnectionError, ValueError, RuntimeError, AuthenticationError) as e:
        raise click.ClickException(str(e)) from None


def _calls(fn, *args):
    """Run one SDK call; its errors become the command's message and exit status 1."""
    from ..exceptions import AuthenticationError

    try:
        return fn(*args)
    except (ConnectionError, RuntimeError, AuthenticationError, ValueError, TypeError) as e:
        raise click.ClickException(str(e)) from None


def _verify(value: str):
    low = value.lower()
    return low not in ("false", "0", "no") if low in ("true", "false", "1", "0", "yes", "no") \
        else value


def _common(f):
    f = click.option("--address", default=None, help="The dashboard's address, e.g. "
                     "http://127.0.0.1:8265 (default: this machine's head).")(f)
    f = click.option("--headers", default=None, help="HTTP headers as JSON, e.g. "
                     "'{\"Authorization\": \"Bearer <token>\"}'.")(f)
    f = click.option("--verify", default="true", help="Verify the server's TLS certificate "
                     "(true/false, or a CA bundle's path).")(f)
    return f


def _print_status(client, job_id: str):
    info = _calls(client.get_job_info, job_id)
    status = str(info.status)
    if status == "SUCCEEDED":
        click.echo(f"\n{'-' * (len(job_id) + 16)}\nJob '{job_id}' succeeded\n"
                   f"{'-' * (len(job_id) + 16)}\n")
    elif status == "STOPPED":
        click.echo(f"Job '{job_id}' was stopped")
    elif status == "FAILED":
        click.echo(f"\n{'-' * (len(job_id) + 13)}\nJob '{job_id}' failed\n"
                   f"{'-' * (len(job_id) + 13)}\n", err=True)
        if info.message:
            click.echo(f"Status message: {info.message}")
    else:
        click.echo(f"Status for job '{job_id}': {status}")
        if info.message:
            click.echo(f"Status message: {info.message}")
    return status


def _follow(client, job_id: str) -> None:
    async def tail():
        async for chunk in client.tail_job_logs(job_id):
            click.echo(chunk, nl=False)

    _calls(asyncio.run, tail())


def _json_opt(value, name):
    if value is None:
        return None
    try:
        out = json.loads(value)
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint=name) from None
    if not isinstance(out, dict):
        raise click.BadParameter("must be a JSON object", param_hint=name)
    return out


def _runtime_env(path, as_json, working_dir) -> dict:
    if path and as_json:
        raise click.UsageError("Only one of --runtime-env and --runtime-env-json can be given.")
    env = {}
    if path:
        with open(path) as f:
            text = f.read()
        try:
            env = json.loads(text)
        except ValueError:
            try:
                import yaml
            except ImportError:
                raise click.BadParameter(f"{path} is not JSON, and reading YAML needs PyYAML "
                                         "(pip install pyyaml)",
                                         param_hint="--runtime-env") from None
            env = yaml.safe_load(text)
        if not isinstance(env, dict):
            raise click.BadParameter(f"{path} must hold a mapping", param_hint="--runtime-env")
    elif as_json:
        env = _json_opt(as_json, "--runtime-env-json")
    if working_dir:
        env["working_dir"] = working_dir
    return env


@click.group("job")
def job() -> None:
    """Submit, stop, delete, or list jobs (Ray's `ray job`)."""


@job.command(context_settings={"ignore_unknown_options": True})
@_common
@click.option("--job-id", default=None, hidden=True)
@click.option("--submission-id", default=None, help="The job's id (default: raysubmit_...).")
@click.option("--runtime-env", default=None, help="A runtime_env file (JSON, or YAML).")
@click.option("--runtime-env-json", default=None, help="The runtime_env as JSON.")
@click.option("--metadata-json", default=None, help="Metadata to keep with the job, as JSON.")
@click.option("--working-dir", default=None, help="A local directory (or .zip) uploaded and "
              "used as the job's working directory.")
@click.option("--entrypoint-num-cpus", type=float, default=None)
@click.option("--entrypoint-num-gpus", type=float, default=None)
@click.option("--entrypoint-memory", type=int, default=None)
@click.option("--entrypoint-resources", default=None, help="Custom resources, as JSON.")
@click.option("--no-wait", is_flag=True, default=False, help="Do not follow the logs.")
@click.argument("entrypoint", nargs=-1, required=True, type=click.UNPROCESSED)
def submit(address, headers, verify, job_id, submission_id, runtime_env, runtime_env_json,
           metadata_json, working_dir, entrypoint_num_cpus, entrypoint_num_gpus,
           entrypoint_memory, entrypoint_resources, no_wait, entrypoint):
    """Submit a job: `shoal job submit -- python script.py`."""
    client = _client(address, headers, _verify(verify))
    env = _runtime_env(runtime_env, runtime_env_json, working_dir)
    click.echo(f"Job submission server address: {client.get_address()}")
    sid = _calls(lambda: client.submit_job(
        entrypoint=shlex.join(entrypoint), submission_id=submission_id or job_id,
        runtime_env=env, metadata=_json_opt(metadata_json, "--metadata-json"),
        entrypoint_num_cpus=entrypoint_num_cpus, entrypoint_num_gpus=entrypoint_num_gpus,
        entrypoint_memory=entrypoint_memory,
        entrypoint_resources=_json_opt(entrypoint_resources, "--entrypoint-resources")))
    line = "-" * (len(sid) + 30)
    click.echo(f"\n{line}\nJob '{sid}' submitted successfully\n{line}\n")
    click.echo("Next steps")
    click.echo(f"  Query the logs of the job:\n    shoal job logs {sid}")
    click.echo(f"  Query the status of the job:\n    shoal job status {sid}")
    click.echo(f"  Request the job to be stopped:\n    shoal job stop {sid}\n", )
    if no_wait:
        return
    click.echo("Tailing logs until the job exits (disable with --no-wait):")
    _follow(client, sid)
    if _print_status(client, sid) == "FAILED":
        raise SystemExit(1)


@job.command()
@_common
@click.argument("job_id")
def status(address, headers, verify, job_id):
    """The status of a job."""
    _print_status(_client(address, headers, _verify(verify)), job_id)


@job.command()
@_common
@click.option("--no-wait", is_flag=True, default=False, help="Return without waiting.")
@click.argument("job_id")
def stop(address, headers, verify, no_wait, job_id):
    """Stop a job (SIGTERM to its processes, then SIGKILL)."""
    client = _client(address, headers, _verify(verify))
    click.echo(f"Attempting to stop job '{job_id}'")
    _calls(client.stop_job, job_id)
    if no_wait:
        return
    click.echo(f"Waiting for job '{job_id}' to exit (disable with --no-wait):")

    async def until_end():  # the log's websocket closes when the job has ended
        async for _chunk in client.tail_job_logs(job_id):
            pass

    _calls(asyncio.run, until_end())
    _print_status(client, job_id)


@job.command()
@_common
@click.argument("job_id")
def delete(address, headers, verify, job_id):
    """Delete a finished job's record (its log file stays)."""
    client = _client(address, headers, _verify(verify))
    _calls(client.delete_job, job_id)
    click.echo(f"Job '{job_id}' deleted successfully")


@job.command()
@_common
@click.option("-f", "--follow", is_flag=True, default=False, help="Follow the log until the "
              "job ends.")
@click.argument("job_id")
def logs(address, headers, verify, follow, job_id):
    """A job's output."""
    client = _client(address, headers, _verify(verify))
    if follow:
        _follow(client, job_id)
    else:
        click.echo(_calls(client.get_job_logs, job_id), nl=False)


@job.command("list")
@_common
def list_jobs(address, headers, verify):
    """Every job of the cluster."""
    client = _client(address, headers, _verify(verify))
    click.echo(pprint.pformat(_calls(client.list_jobs)))
