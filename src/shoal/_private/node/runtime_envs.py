"""Runtime environments built on a node: packages unpacked, virtual environments made.

``await prepare(runtime_env, session_dir)`` returns ``(env vars, cwd)`` for a process that
runs in that environment:

- ``env_vars``: as given.
- ``working_dir``: a package URI (``gcs://_ray_pkg_<hash>.zip``, uploaded to the head's
  ``packages/`` directory) unpacked once into ``runtime_resources/working_dir_files/<name>``,
  or a directory of this machine; it becomes the cwd and the head of ``PYTHONPATH``.
- ``py_modules``: package URIs or directories, each put on ``PYTHONPATH``.
- ``pip`` (a list, a requirements file's path, or ``{"packages": ...}``) and ``uv``: one
  virtual environment per distinct spec under ``runtime_resources/pip/<hash>``, built once
  (concurrent asks for the same spec share the build), seeing the packages of the
  interpreter that runs shoal (a ``.pth`` file) with its own installed first; ``PATH`` and
  ``VIRTUAL_ENV`` name it, so ``python`` in a job's entrypoint is its interpreter. A failed
  install raises :class:`SetupError` with the end of pip's output and leaves nothing half
  built; ``config.setup_timeout_seconds`` bounds it.
- ``conda``, ``container``, ``image_uri``: SetupError (not built).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import sys
import sysconfig

from ..wire import packages

DEFAULT_SETUP_TIMEOUT_S = 600
_building: dict[str, asyncio.Future] = {}


class SetupError(RuntimeError):
    """A runtime environment could not be set up; the message says why."""


def packages_dir(session_dir: str) -> str:
    return os.path.join(session_dir, "packages")


def resources_dir(session_dir: str) -> str:
    return os.path.join(session_dir, "runtime_resources")


async def prepare(runtime_env: dict, session_dir: str) -> tuple[dict, str | None]:
    env = {str(k): str(v) for k, v in (runtime_env.get("env_vars") or {}).items()}
    for key in ("conda", "container", "image_uri"):
        if runtime_env.get(key):
            raise SetupError(f"runtime_env[{key!r}] is not supported by shoal (use pip or uv)")
    paths, cwd = [], None
    wd = runtime_env.get("working_dir")
    if wd:
        cwd = _local(wd, session_dir, "working_dir_files")
        paths.append(cwd)
    for mod in runtime_env.get("py_modules") or []:
        where = _local(mod, session_dir, "py_modules_files")
        paths.append(where)
    spec = _pip_spec(runtime_env)
    if spec is not None:
        timeout = (runtime_env.get("config") or {}).get("setup_timeout_seconds",
                                                        DEFAULT_SETUP_TIMEOUT_S)
        venv = await _venv(spec, session_dir, None if timeout == -1 else timeout)
        env["VIRTUAL_ENV"] = venv
        env["PATH"] = os.path.join(venv, "bin") + os.pathsep + os.environ.get("PATH", "")
    if paths:
        old = os.environ.get("PYTHONPATH")
        env["PYTHONPATH"] = os.pathsep.join(paths + ([old] if old else []))
    return env, cwd


def _local(value, session_dir: str, kind: str) -> str:
    if not isinstance(value, str):
        raise SetupError(f"{kind.split('_')[0]}: expected a path or URI, got {value!r}")
    if packages.is_uri(value):
        try:
            _, name = packages.split_uri(value)
        except ValueError as e:
            raise SetupError(str(e)) from None
        data = os.path.join(packages_dir(session_dir), name)
        if not os.path.exists(data):
            raise SetupError(f"package {value} was not uploaded to this cluster")
        target = os.path.join(resources_dir(session_dir), kind, name.removesuffix(".zip"))
        try:
            return packages.unpack(data, target)
        except (OSError, ValueError) as e:
            raise SetupError(f"cannot unpack {value}: {e}") from None
    path = os.path.abspath(os.path.expanduser(value))
    if kind == "py_modules_files" and (os.path.isdir(path) or path.endswith(".zip")):
        # A package directory of this machine: importable by its own name, without its
        # siblings (as an uploaded one is), so packed under its name and unpacked here.
        try:
            uri, data = packages.build(path, include_parent_dir=os.path.isdir(path))
        except (OSError, ValueError) as e:
            raise SetupError(f"py_modules: {e}") from None
        name = packages.split_uri(uri)[1]
        target = os.path.join(resources_dir(session_dir), kind, name.removesuffix(".zip"))
        if not os.path.isdir(target):
            os.makedirs(packages_dir(session_dir), mode=0o700, exist_ok=True)
            zpath = os.path.join(packages_dir(session_dir), name)
            tmp = f"{zpath}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, zpath)
            packages.unpack(zpath, target)
        return target
    if not os.path.isdir(path):
        raise SetupError(f"{path} is not a directory of this node")
    return path


def _pip_spec(runtime_env: dict) -> dict | None:
    for tool in ("pip", "uv"):
        spec = runtime_env.get(tool)
        if not spec:
            continue
        if isinstance(spec, str):  # a requirements file
            try:
                with open(os.path.expanduser(spec)) as f:
                    pkgs = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
            except OSError as e:
                raise SetupError(f"cannot read the requirements file {spec}: {e.strerror}") \
                    from None
        elif isinstance(spec, dict):
            pkgs = list(spec.get("packages") or [])
        else:
            pkgs = list(spec)
        if not all(isinstance(p, str) for p in pkgs):
            raise SetupError(f"runtime_env[{tool!r}] must list requirement strings, got {spec!r}")
        return {"tool": tool, "packages": pkgs}
    return None


async def _venv(spec: dict, session_dir: str, timeout: float | None) -> str:
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]
    target = os.path.join(resources_dir(session_dir), "pip", key)
    if os.path.exists(os.path.join(target, ".ready")):
        return target
    fut = _building.get(target)
    if fut is None:
        fut = _building[target] = asyncio.ensure_future(_build(spec, target))
        fut.add_done_callback(lambda _f: _building.pop(target, None))
    try:
        return await asyncio.wait_for(asyncio.shield(fut), timeout)
    except TimeoutError:
        fut.cancel()
        raise SetupError(f"setting up the environment {spec} took longer than "
                         f"setup_timeout_seconds={timeout}") from None


async def _run(*cmd: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(errors="replace")


async def _build(spec: dict, target: str) -> str:
    parent = os.path.dirname(target)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    tmp = target + f".building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        rc, out = await _run(sys.executable, "-m", "venv", "--without-pip", tmp)
        if rc != 0:
            raise SetupError(f"cannot create a virtual environment: {out[-4000:]}")
        py = os.path.join(tmp, "bin", "python")
        site = (await _run(py, "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"))[1].strip()
        # The new environment sees shoal's own packages after its own: added as site
        # directories, so that their own .pth files (an editable install's) count too.
        ours = list(dict.fromkeys((sysconfig.get_paths()["purelib"],
                                   sysconfig.get_paths()["platlib"])))
        with open(os.path.join(site, "_shoal_base.pth"), "x") as f:
            f.write("import site; " + "; ".join(f"site.addsitedir({p!r})" for p in ours)
                    + "\n")
        if spec["packages"]:
            uv = shutil.which("uv") if spec["tool"] == "uv" else None
            cmd = ([uv, "pip", "install", "--python", py] if uv else
                   [sys.executable, "-m", "pip", "--python", py, "install",
                    "--disable-pip-version-check", "--no-input"])
            rc, out = await _run(*cmd, *spec["packages"])
            if rc != 0:
                raise SetupError(f"{spec['tool']} install {' '.join(spec['packages'])} failed "
                                 f"(exit {rc}):\n{out[-8000:]}")
        open(os.path.join(tmp, ".ready"), "x").close()
        os.rename(tmp, target)
        return target
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
