"""The environment a task or actor sees in a pooled worker, as Ray sets it.

Ray starts a worker per runtime environment; shoal's workers are shared by tasks of every
shape, so what Ray fixes at process start is set around each call instead:

* ``runtime_env["env_vars"]`` (the job's, merged key by key with the task's or actor's),
  with ``${NAME}`` in a value replaced by the variable's current value;
* ``OMP_NUM_THREADS``, when nobody set it (not the node's environment, not ``env_vars``): the
  task's CPUs rounded down, at least 1 (an actor without ``num_cpus`` gets 1);
* the driver's script directory and working directory at the front of ``sys.path``, so
  modules next to the driver's script import in tasks and actors.

A normal task's variables are put back after it; an actor keeps its own. Libraries that read
a variable at import time (numpy's OpenMP) see the value of the first task that imports them.
"""

from __future__ import annotations

import math
import os
import re
import sys

OMP = "OMP_NUM_THREADS"
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def omp_threads(resources: dict) -> int:
    """OMP_NUM_THREADS for a call holding ``resources`` (bundle names included)."""
    cpus = resources.get("CPU")
    if cpus is None:
        cpus = next((v for k, v in resources.items() if k.startswith("CPU_group_")), None)
    if cpus is None:
        return 1
    return max(math.floor(cpus), 1)


def validate_runtime_env(runtime_env) -> dict | None:
    """Check a ``runtime_env`` option (Ray's errors for ``env_vars``); returns it as a dict."""
    if runtime_env is None:
        return None
    if not isinstance(runtime_env, dict):
        raise TypeError("runtime_env must be a dict or None, got "
                        f"{type(runtime_env).__name__}.")
    env_vars = runtime_env.get("env_vars")
    if env_vars is None:
        return dict(runtime_env)
    if not isinstance(env_vars, dict):
        raise TypeError(f"runtime_env['env_vars'] must be of type Dict[str, str], got "
                        f"{type(env_vars)}")
    for key, val in env_vars.items():
        if not isinstance(key, str):
            raise TypeError("runtime_env['env_vars'] must be of type Dict[str, str], but the "
                            f"key {key} is of type {type(key)}")
        if not isinstance(val, str):
            raise TypeError("runtime_env['env_vars'] must be of type Dict[str, str], but the "
                            f"value {val} is of type {type(val)}")
    return dict(runtime_env)


# What needs a worker process of its own (env_vars are set per call in a pooled worker).
PROCESS_FIELDS = ("working_dir", "py_modules", "pip", "uv", "config")


def process_env(inherited: dict | None, runtime_env: dict | None) -> tuple[dict | None, str]:
    """``(spec, key)`` of the worker environment a task or actor needs: its runtime_env's
    working_dir, py_modules, pip and uv (the parent's where it names none, field by field,
    as Ray merges them), local paths made absolute; ``key`` names it ("" for the node's
    own environment, which needs no worker of its own)."""
    import hashlib
    import json

    spec = dict(inherited or {})
    own = {k: v for k, v in (runtime_env or {}).items() if k in PROCESS_FIELDS and v}
    spec.update(own)
    spec = {k: v for k, v in spec.items() if k in PROCESS_FIELDS and v}
    if not any(k in spec for k in ("working_dir", "py_modules", "pip", "uv")):
        return None, ""
    wd = spec.get("working_dir")
    if isinstance(wd, str) and "://" not in wd:
        spec["working_dir"] = os.path.abspath(os.path.expanduser(wd))
    if spec.get("py_modules"):
        spec["py_modules"] = [os.path.abspath(os.path.expanduser(m))
                              if isinstance(m, str) and "://" not in m else m
                              for m in spec["py_modules"]]
    key = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
    return spec, key[:24]


def merged_env_vars(inherited: dict | None, runtime_env: dict | None) -> dict | None:
    """The variables a child task or actor gets: its parent's, overridden by its own."""
    own = (runtime_env or {}).get("env_vars") or {}
    if not own:
        return inherited or None
    return {**(inherited or {}), **own}


class CallEnv:
    """Sets a call's variables and puts a normal task's ``env_vars`` back afterwards.

    ``OMP_NUM_THREADS`` set here is not removed after each task (Ray removes it): the next
    call finds it ours and sets its own value, so a task sees exactly what Ray's would, and
    the common case costs a lookup instead of a ``putenv``/``unsetenv`` pair per task.
    """

    _omp_ours: str | None = None  # the value this process put there and still owns

    def __init__(self) -> None:
        self._saved: dict[str, str | None] | None = None

    def enter(self, env_vars: dict | None, resources: dict) -> None:
        environ = os.environ
        saved: dict[str, str | None] | None = None
        if env_vars:
            saved = {}
            for key, value in env_vars.items():
                saved[key] = environ.get(key)
                environ[key] = _REF.sub(lambda m: environ.get(m.group(1), ""), value)
            if OMP in env_vars:  # the user's value wins; ours comes back after the task
                self._saved = saved
                return
        self._saved = saved
        ours = CallEnv._omp_ours
        if ours is None and OMP in environ:
            return  # set by the node's environment: left alone, as Ray does
        want = str(omp_threads(resources))
        if ours is None or environ.get(OMP) != want:
            environ[OMP] = want
            CallEnv._omp_ours = want

    def leave(self) -> None:
        saved, self._saved = self._saved, None
        if not saved:
            return
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class CodePaths:
    """The job's driver directories at the front of ``sys.path``; a worker that moves on to
    another job's tasks swaps them for that job's."""

    def __init__(self) -> None:
        self.by_job: dict[int, list[str]] = {}
        self.job: int | None = None
        self._added: list[str] = []

    def learn(self, job: int, paths: list[str] | None) -> None:
        if paths is not None:
            self.by_job[job] = list(paths)

    def use(self, job: int) -> None:
        if job == self.job:
            return
        paths = self.by_job.get(job)
        if paths is None:
            return  # not told yet (a job without paths): keep what is there
        for p in self._added:
            try:
                sys.path.remove(p)
            except ValueError:
                pass
        self._added = []
        for p in paths:  # as Ray: each inserted at the front, so the last listed comes first
            sys.path.insert(0, p)
            self._added.append(p)
        self.job = job


def driver_code_paths() -> list[str]:
    """What Ray adds to its workers' ``sys.path`` for a driver: the script's directory (if
    the driver's ``sys.path`` has it, so not for ``python -m`` or a shell) and the current
    directory."""
    paths = []
    main = sys.modules.get("__main__")
    if getattr(main, "__file__", None) and sys.argv and sys.argv[0]:
        script_dir = os.path.dirname(os.path.realpath(sys.argv[0]))
        if script_dir in sys.path:
            paths.append(script_dir)
    paths.append(os.path.abspath(os.path.curdir))
    return paths
