"""``RuntimeEnv`` and ``RuntimeEnvConfig`` (Ray's ``ray.runtime_env``): a runtime
environment as a dict, validated for shape. shoal keeps runtime environments (the driver's
runtime context shows the job's) but builds none: workers run in the cluster's own
environment."""

from __future__ import annotations

import json
from typing import Any

from .._hooks import validate_runtime_env

_FIELDS = ("py_modules", "py_executable", "working_dir", "pip", "conda", "container",
           "env_vars", "worker_process_setup_hook", "nsight", "rocprof_sys", "config",
           "image_uri", "uv")


class RuntimeEnvConfig(dict):
    """Options of how a runtime environment is set up."""

    def __init__(self, setup_timeout_seconds: int = 600, eager_install: bool = True,
                 log_files: list[str] | None = None):
        if not isinstance(setup_timeout_seconds, int) or isinstance(setup_timeout_seconds,
                                                                    bool):
            raise TypeError("setup_timeout_seconds must be of type int, got: "
                            f"{type(setup_timeout_seconds)}")
        if setup_timeout_seconds <= 0 and setup_timeout_seconds != -1:
            raise ValueError("setup_timeout_seconds must be greater than zero or equals to "
                             f"-1, got: {setup_timeout_seconds}")
        if not isinstance(eager_install, bool):
            raise TypeError(f"eager_install must be a boolean. got {type(eager_install)}")
        super().__init__(setup_timeout_seconds=setup_timeout_seconds,
                         eager_install=eager_install, log_files=list(log_files or []))


class RuntimeEnv(dict):
    """A runtime environment: ``RuntimeEnv(env_vars={...}, pip=[...], ...)``."""

    known_fields = set(_FIELDS)

    def __init__(self, *, _validate: bool = True, **fields: Any):
        super().__init__({k: v for k, v in fields.items() if v is not None})
        if _validate:
            validate_runtime_env(dict(self))

    def env_vars(self) -> dict:
        return dict(self.get("env_vars") or {})

    def working_dir(self) -> str:
        return self.get("working_dir", "")

    def py_modules(self) -> list:
        return list(self.get("py_modules") or [])

    def has_working_dir(self) -> bool:
        return self.get("working_dir") is not None

    def has_pip(self) -> bool:
        return self.get("pip") is not None

    def has_conda(self) -> bool:
        return self.get("conda") is not None

    def has_uv(self) -> bool:
        return self.get("uv") is not None

    def to_dict(self) -> dict:
        return dict(self)

    def serialize(self) -> str:
        return json.dumps(dict(self), sort_keys=True)

    @classmethod
    def deserialize(cls, serialized: str) -> RuntimeEnv:
        return cls(_validate=False, **json.loads(serialized))


__all__ = ["RuntimeEnv", "RuntimeEnvConfig"]
