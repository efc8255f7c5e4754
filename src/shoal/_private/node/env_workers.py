"""Workers in runtime environments of their own (working_dir, py_modules, pip, uv), for the
node daemon: each environment's spec by its key, its preparation before a worker of it
starts (:mod:`.runtime_envs`), and the failures that answer its waiting lease requests with
``RuntimeEnvSetupError`` instead of retrying forever.

Such a worker is started by exec (never forked from the zygote: another interpreter, cwd
and paths), with ``SHOAL_RUNTIME_ENV`` (the spec, JSON) in its environment, which the tasks
it runs pass on to their children. The scheduler keeps workers of different environments
apart (``scheduler.Worker.env``).
"""

from __future__ import annotations

import json
import logging
import os
import sys

from . import runtime_envs

log = logging.getLogger(__name__)

ENV_START_ATTEMPTS = 3  # workers dying before they register, in a row, fail the environment
RUNTIME_ENV_VAR = "SHOAL_RUNTIME_ENV"


class EnvWorkers:
    def __init__(self, daemon) -> None:
        self.daemon = daemon
        self.specs: dict[str, dict] = {}  # env key -> its spec
        self.start_failures: dict[str, int] = {}  # env key -> workers dead before ready

    def learn(self, env_key: str, spec: dict | None) -> None:
        self.specs.setdefault(env_key, dict(spec or {}))

    async def prepare(self, worker_id: bytes, env_key: str):
        """``(python, extra env, cwd)`` for a worker in ``env_key``; None if the environment
        cannot be set up (its waiting requests are answered with the error)."""
        spec = self.specs.get(env_key) or {}
        try:
            extra, cwd = await runtime_envs.prepare(spec, self.daemon.session_dir)
        except runtime_envs.SetupError as e:
            log.warning("runtime environment %s could not be set up: %s", env_key, e)
            self.fail(env_key, str(e))
            self.daemon._apply(self.daemon.sched.worker_died(worker_id)[0])
            return None
        venv = extra.get("VIRTUAL_ENV")
        python = os.path.join(venv, "bin", "python") if venv else sys.executable
        extra[RUNTIME_ENV_VAR] = json.dumps(spec)
        return python, extra, cwd

    def fail(self, env_key: str, message: str) -> None:
        d = self.daemon
        for req in d.sched.env_failed(env_key):
            conn, req_id, fut = d.pending_replies.pop(req.lease_id, (None, 0, None))
            d._answer(conn, req_id, fut, error=message, setup=True)

    def started(self, env_key: str) -> None:
        self.start_failures.pop(env_key, None)

    def worker_failed(self, env_key: str, log_path: str) -> None:
        """A worker of ``env_key`` died before it registered: after ``ENV_START_ATTEMPTS``
        in a row, the environment's waiting requests fail with what the last one wrote."""
        n = self.start_failures[env_key] = self.start_failures.get(env_key, 0) + 1
        if n < ENV_START_ATTEMPTS:
            return
        self.start_failures.pop(env_key, None)
        try:
            with open(log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(log_path) - 4000))
                tail = f.read().decode(errors="replace")
        except OSError:
            tail = ""
        self.fail(env_key, f"workers in this runtime environment exit before they start "
                           f"({ENV_START_ATTEMPTS} in a row); the last one wrote:\n{tail}")
