"""Submitted jobs on the head: their records, their entrypoint processes, their logs.

State, all on the head's event loop:

- ``records``: submission id -> :class:`JobInfo`, mirrored as JSON in the head's KV store
  (namespace ``job``, Ray's key), so a restarted head lists them; a job that was not finished
  when its head went down is FAILED when the head comes back (its process died with it).
- ``runs``: submission id -> :class:`Run` for each job not yet finished: the setup task,
  then the entrypoint process, its log, the followers of the log.

A job goes PENDING (runtime environment being prepared) -> RUNNING (the entrypoint runs) ->
SUCCEEDED (exit 0) | FAILED (another exit, a setup error) | STOPPED (``stop``). The
entrypoint is ``/bin/sh -c <entrypoint>`` under a small supervisor process (:mod:`.supervisor`,
in a session of its own): the subreaper of everything the job starts, it ends all of it when
the entrypoint exits, on ``stop`` (SIGTERM, then SIGKILL after ``RAY_JOB_STOP_WAIT_TIME_S``,
3 s) and when the head dies. Their stdout and stderr are one pipe that the head copies to
``logs/job-driver-<id>.log`` and to followers. The entrypoint gets the cluster's address
(``RAY_ADDRESS``/``SHOAL_ADDRESS``), the job's config (Ray's ``RAY_JOB_CONFIG_JSON_ENV_VAR``:
its runtime_env and the submission id, which ``init()`` takes) and
``SHOAL_JOB_SUBMISSION_ID``.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import logging
import os
import signal
import sys
import time

from ..._private.node.runtime_envs import SetupError, prepare
from ...job_submission.models import (
    JOB_CONFIG_ENV,
    KEY_PREFIX,
    KV_NAMESPACE,
    LOG_FILE,
    SUBMISSION_ID_METADATA_KEY,
    JobErrorType,
    JobInfo,
    JobStatus,
    JobSubmitRequest,
    check_submission_id,
    default_message,
    new_submission_id,
)

log = logging.getLogger(__name__)

JOB_ENV = "SHOAL_JOB_SUBMISSION_ID"
STOP_TIMEOUT_S = float(os.environ.get("RAY_JOB_STOP_WAIT_TIME_S", "3"))
SUPERVISOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "supervisor.py")
LOG_TAIL_CHARS = 20_000  # Ray's: the end of the log in a failed job's message


class JobError(ValueError):
    """A request the manager refuses (400 to the client)."""


class Run:
    """A job not finished yet."""

    def __init__(self) -> None:
        self.task: asyncio.Task | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.stop_requested = False
        self.changed = asyncio.Condition()  # new log bytes, or the job's end
        self.done = False


class JobManager:
    def __init__(self, queries, session_dir: str, head_address: str, node_id: str,
                 url: str) -> None:
        self.queries = queries
        self.session_dir = session_dir
        self.head_address = head_address
        self.node_id = node_id
        self.url = url
        self.logs_dir = os.path.join(session_dir, "logs")
        self.records: dict[str, JobInfo] = {}
        self.runs: dict[str, Run] = {}
        self._load()

    # -- records --------------------------------------------------------------------------
    def _load(self) -> None:
        for key in self.queries.kv_keys(KV_NAMESPACE, KEY_PREFIX.encode()):
            sid = key[len(KEY_PREFIX):].decode()
            try:
                info = JobInfo.from_json(json.loads(self.queries.kv_get(KV_NAMESPACE, key)))
            except (ValueError, TypeError, KeyError):
                log.warning("job record %r cannot be read; left out", sid)
                continue
            self.records[sid] = info
            if not info.status.is_terminal():
                self._finish(sid, JobStatus.FAILED, error_type=JobErrorType.JOB_SUPERVISOR_ACTOR_DIED,
                             message="The head restarted while this job was "
                             f"{info.status.value.lower()}: its entrypoint ended with the "
                             "old head.")

    def _save(self, sid: str) -> None:
        self.queries.kv_put(KV_NAMESPACE, (KEY_PREFIX + sid).encode(),
                            json.dumps(self.records[sid].to_json()).encode())

    def _set(self, sid: str, status: JobStatus, **changes) -> None:
        info = self.records[sid]
        if info.status.is_terminal():
            return
        info.status = status
        info.message = changes.pop("message", None)
        for k, v in changes.items():
            setattr(info, k, v)
        if info.message is None:
            info.message = default_message(info)
        self._save(sid)

    def _finish(self, sid: str, status: JobStatus, **changes) -> None:
        self._set(sid, status, end_time=int(time.time() * 1000), **changes)

    def get(self, sid: str) -> JobInfo | None:
        return self.records.get(sid)

    def log_path(self, sid: str) -> str:
        return os.path.join(self.logs_dir, LOG_FILE.format(submission_id=sid))

    # -- submit ---------------------------------------------------------------------------
    def submit(self, req: JobSubmitRequest) -> str:
        sid = req.submission_id or req.job_id or new_submission_id()
        try:
            check_submission_id(sid)
        except ValueError as e:
            raise JobError(str(e)) from None
        if sid in self.records:
            raise JobError(f"Job with submission_id {sid} already exists. Please use a "
                           "different submission_id.")
        if not req.entrypoint.strip():
            raise JobError("entrypoint must not be empty")
        self._check_fits(req.resources())
        self.records[sid] = JobInfo(
            status=JobStatus.PENDING, entrypoint=req.entrypoint,
            start_time=int(time.time() * 1000), metadata=dict(req.metadata or {}),
            runtime_env=dict(req.runtime_env or {}),
            entrypoint_num_cpus=req.entrypoint_num_cpus,
            entrypoint_num_gpus=req.entrypoint_num_gpus,
            entrypoint_memory=req.entrypoint_memory,
            entrypoint_resources=req.entrypoint_resources)
        self._save(sid)
        run = self.runs[sid] = Run()
        run.task = asyncio.get_running_loop().create_task(self._run(sid, req, run))
        return sid

    def _check_fits(self, ask: dict) -> None:
        """The entrypoint runs on the head: an ask the head node can never hold is refused
        now, rather than left PENDING forever."""
        if not ask:
            return
        head = next((n for n in self.queries.node_list() if n.get("is_head")), None)
        total = (head or {}).get("total") or {}
        short = {k: v for k, v in ask.items() if float(total.get(k, 0)) < v}
        if short:
            raise JobError(f"the entrypoint asks for {ask}, more than the head node has "
                           f"({ {k: total.get(k, 0) for k in ask} }): a job's entrypoint runs "
                           "on the head node")

    async def _run(self, sid: str, req: JobSubmitRequest, run: Run) -> None:
        info = self.records[sid]
        try:
            try:
                env, cwd = await prepare(info.runtime_env or {}, self.session_dir)
            except SetupError as e:
                self._finish(sid, JobStatus.FAILED,
                             error_type=JobErrorType.RUNTIME_ENV_SETUP_FAILURE,
                             message=f"runtime_env setup failed: {e}")
                return
            if run.stop_requested:
                self._finish(sid, JobStatus.STOPPED)
                return
            await self._execute(sid, req, run, env, cwd)
        except asyncio.CancelledError:
            self._finish(sid, JobStatus.STOPPED if run.stop_requested else JobStatus.FAILED,
                         message=None if run.stop_requested else "The head shut down.")
            raise
        except Exception as e:  # noqa: BLE001 - recorded on the job, never lost
            log.exception("job %s failed in its supervision", sid)
            self._finish(sid, JobStatus.FAILED,
                         error_type=JobErrorType.JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE,
                         message=f"Unexpected error running the job: {e!r}")
        finally:
            run.done = True
            self.runs.pop(sid, None)
            async with run.changed:
                run.changed.notify_all()

    def _child_env(self, sid: str, info: JobInfo, extra: dict) -> dict:
        env = dict(os.environ)
        for k in [k for k in env if k.startswith(("SHOAL_WORKER", "SHOAL_LEAN"))]:
            del env[k]
        # `python` in an entrypoint is the interpreter that runs the cluster (its venv's).
        bindir = os.path.dirname(sys.executable)
        path = env.get("PATH", "")
        if path.split(os.pathsep)[0] != bindir:
            env["PATH"] = bindir + os.pathsep + path if path else bindir
        env.update(extra)
        config = {"runtime_env": info.runtime_env or {},
                  "metadata": {**(info.metadata or {}), SUBMISSION_ID_METADATA_KEY: sid}}
        env.update({"RAY_ADDRESS": self.head_address, "SHOAL_ADDRESS": self.head_address,
                    JOB_CONFIG_ENV: json.dumps(config), JOB_ENV: sid,
                    "PYTHONUNBUFFERED": env.get("PYTHONUNBUFFERED", "1")})
        return env

    async def _execute(self, sid, req, run: Run, extra_env: dict, cwd: str | None) -> None:
        info = self.records[sid]
        os.makedirs(self.logs_dir, mode=0o700, exist_ok=True)
        fd = os.open(self.log_path(sid), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND,
                     0o600)
        with os.fdopen(fd, "ab", buffering=0) as logf:
            try:
                run.proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-S", "-u", SUPERVISOR, str(os.getpid()),
                    str(STOP_TIMEOUT_S), "/bin/sh", "-c", req.entrypoint,
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT, cwd=cwd or None,
                    env=self._child_env(sid, info, extra_env), start_new_session=True)
            except OSError as e:
                self._finish(sid, JobStatus.FAILED,
                             error_type=JobErrorType.JOB_ENTRYPOINT_COMMAND_START_ERROR,
                             message=f"Failed to start the entrypoint: {e}")
                return
            self._set(sid, JobStatus.RUNNING, driver_agent_http_address=self.url,
                      driver_node_id=self.node_id)
            reader = asyncio.get_running_loop().create_task(self._copy(run, logf))
            rc = await run.proc.wait()  # the supervisor ended what the entrypoint left
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), 5)
        if run.stop_requested:
            self._finish(sid, JobStatus.STOPPED, driver_exit_code=rc)
        elif rc == 0:
            self._finish(sid, JobStatus.SUCCEEDED, driver_exit_code=0)
        else:
            tail = self.logs(sid)[-LOG_TAIL_CHARS:]
            self._finish(sid, JobStatus.FAILED, driver_exit_code=rc,
                         error_type=JobErrorType.JOB_ENTRYPOINT_COMMAND_ERROR,
                         message=f"Job entrypoint command failed with exit code {rc}, last "
                         f"available logs (truncated to {LOG_TAIL_CHARS:,} chars):\n{tail}")

    async def _copy(self, run: Run, logf) -> None:
        stream = run.proc.stdout
        while chunk := await stream.read(65536):
            logf.write(chunk)
            async with run.changed:
                run.changed.notify_all()

    # -- stop, delete, close --------------------------------------------------------------
    def _signal_job(self, sid: str, sig: int) -> None:
        run = self.runs.get(sid)
        if run is not None and run.proc is not None and run.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                run.proc.send_signal(sig)

    def stop(self, sid: str) -> bool:
        """Ask a job to end: True if it was pending or running."""
        run = self.runs.get(sid)
        if run is None or run.stop_requested:
            return run is not None
        run.stop_requested = True
        if run.proc is None:  # still setting up
            run.task.cancel()
            return True
        self._signal_job(sid, signal.SIGTERM)  # the supervisor takes it from there
        return True

    def delete(self, sid: str) -> bool:
        info = self.records.get(sid)
        if info is None:
            return False
        if not info.status.is_terminal():
            raise JobError(f"Attempted to delete job '{sid}', but it is in a non-terminal "
                           f"state {info.status.value}.")
        del self.records[sid]
        self.queries.kv_del(KV_NAMESPACE, (KEY_PREFIX + sid).encode())
        return True

    async def close(self) -> None:
        """The head stops: every unfinished job is stopped (its processes killed)."""
        runs = list(self.runs.items())
        for sid, run in runs:
            run.stop_requested = True
            if run.proc is None:
                run.task.cancel()
            else:
                self._signal_job(sid, signal.SIGTERM)
        for _sid, run in runs:
            with contextlib.suppress(BaseException):
                await run.task

    # -- logs -----------------------------------------------------------------------------
    def logs(self, sid: str) -> str:
        try:
            with open(self.log_path(sid), "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    async def follow(self, sid: str):
        """The job's log as it grows, in chunks, until the job has ended and all is read."""
        pos = 0
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            chunk = self._read_from(sid, pos)
            if not chunk:
                run = self.runs.get(sid)
                if run is None or run.done:
                    if tail := decoder.decode(b"", True):
                        yield tail
                    return
                async with run.changed:  # the writer notifies under it: no wake-up lost
                    if not run.done and self._size(sid) <= pos:
                        await run.changed.wait()
                continue
            pos += len(chunk)
            if text := decoder.decode(chunk):
                yield text

    def _size(self, sid: str) -> int:
        try:
            return os.path.getsize(self.log_path(sid))
        except OSError:
            return 0

    def _read_from(self, sid: str, pos: int) -> bytes:
        try:
            with open(self.log_path(sid), "rb") as f:
                f.seek(pos)
                return f.read(1 << 20)
        except FileNotFoundError:
            return b""
