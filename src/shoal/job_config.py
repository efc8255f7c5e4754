"""``JobConfig`` (Ray's ``ray.job_config.JobConfig``): settings of a driver's job, given to
``init(job_config=...)``.

What maps onto shoal is applied: ``ray_namespace`` (unless ``init`` names one itself),
``runtime_env`` (validated, stored and shown by the runtime context; shoal does not build
environments), ``metadata`` (kept with the job) and ``code_search_path`` (its directories
are put on the driver's ``sys.path``). ``jvm_options`` are accepted for compatibility: shoal
runs no Java workers.
"""

from __future__ import annotations

from typing import Any


class JobConfig:
    """The configuration of one job (one driver's run)."""

    def __init__(self, jvm_options: list[str] | None = None,
                 code_search_path: list[str] | None = None, runtime_env: dict | None = None,
                 _client_job: bool = False, metadata: dict | None = None,
                 ray_namespace: str | None = None,
                 default_actor_lifetime: str = "non_detached",
                 _disable_job_level_lineage_reconstruction: bool = False,
                 _py_driver_sys_path: list[str] | None = None):
        self.jvm_options = jvm_options or []
        paths = code_search_path or []
        if not isinstance(paths, (list, tuple)):
            raise TypeError(f"The type of code search path is incorrect: "
                            f"{type(code_search_path)}")
        self.code_search_path = paths
        self._client_job = _client_job
        self.metadata = metadata or {}
        self.ray_namespace = ray_namespace
        self.set_runtime_env(runtime_env)
        self.set_default_actor_lifetime(default_actor_lifetime)
        self._disable_job_level_lineage_reconstruction = \
            _disable_job_level_lineage_reconstruction
        self._py_driver_sys_path = _py_driver_sys_path or []
        self.py_logging_config = None

    def set_metadata(self, key: str, value: str) -> None:
        self.metadata[key] = value

    def set_runtime_env(self, runtime_env: dict | None, validate: bool = False) -> None:
        self.runtime_env = runtime_env if runtime_env is not None else {}
        if validate:
            self.runtime_env = self._validate_runtime_env()

    def _validate_runtime_env(self) -> dict:
        env = self.runtime_env
        if not isinstance(env, dict):
            raise TypeError(f"runtime_env must be a dict, got {type(env).__name__}")
        from ._private.runtime.options import validate_runtime_env

        validate_runtime_env(env)
        return dict(env)

    def set_py_logging_config(self, logging_config=None) -> None:
        self.py_logging_config = logging_config

    def set_ray_namespace(self, ray_namespace: str) -> None:
        self.ray_namespace = ray_namespace

    def set_default_actor_lifetime(self, default_actor_lifetime: str) -> None:
        if default_actor_lifetime not in ("detached", "non_detached"):
            raise ValueError("Default actor lifetime must be one of `detached`, "
                             "`non_detached`")
        self._default_actor_lifetime = default_actor_lifetime

    @classmethod
    def from_json(cls, job_config_json: dict[str, Any]) -> JobConfig:
        return cls(
            jvm_options=job_config_json.get("jvm_options"),
            code_search_path=job_config_json.get("code_search_path"),
            runtime_env=job_config_json.get("runtime_env"),
            metadata=job_config_json.get("metadata"),
            ray_namespace=job_config_json.get("ray_namespace"),
            _disable_job_level_lineage_reconstruction=job_config_json.get(
                "disable_job_level_lineage_reconstruction", False),
            _client_job=job_config_json.get("client_job", False),
            _py_driver_sys_path=job_config_json.get("py_driver_sys_path"),
        )
