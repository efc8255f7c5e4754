"""The Jobs API's records and messages, in Ray 2.60's names and JSON shapes (pure: no I/O).

- :class:`JobStatus`, :class:`JobErrorType`, :class:`JobType`: Ray's enums (``str``
  subclasses, so ``status == "RUNNING"`` holds).
- :class:`JobInfo`: what the head keeps of a submitted job, stored as JSON under Ray's KV key
  (``_ray_internal_job_info_<submission id>``, namespace ``job``); its default messages are
  Ray's.
- :class:`JobDetails` / :class:`DriverInfo`: what ``GET /api/jobs/`` and
  ``GET /api/jobs/<id>`` answer and the SDK returns (Ray's are pydantic models; these are
  dataclasses with the same fields, built with ``JobDetails(**json)`` as Ray's are).
- :class:`JobSubmitRequest` with Ray's checks and error texts, and the small replies.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

KV_NAMESPACE = "job"
KEY_PREFIX = "_ray_internal_job_info_"
LOG_FILE = "job-driver-{submission_id}.log"
SUBMISSION_ID_METADATA_KEY = "job_submission_id"
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # Ray's name for the job's config, as JSON
_ID_CHARS = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ123456789"
_VALID_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


class JobStatus(StrEnum):
    """The status of a submitted job."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    def __str__(self) -> str:
        return self.value

    def is_terminal(self) -> bool:
        """STOPPED, SUCCEEDED and FAILED: no status follows them."""
        return self.value in ("STOPPED", "SUCCEEDED", "FAILED")


class JobErrorType(StrEnum):
    RUNTIME_ENV_SETUP_FAILURE = "RUNTIME_ENV_SETUP_FAILURE"
    JOB_SUPERVISOR_ACTOR_START_TIMEOUT = "JOB_SUPERVISOR_ACTOR_START_TIMEOUT"
    JOB_SUPERVISOR_ACTOR_START_FAILURE = "JOB_SUPERVISOR_ACTOR_START_FAILURE"
    JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE = "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE"
    JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE = "JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE"
    JOB_SUPERVISOR_ACTOR_DIED = "JOB_SUPERVISOR_ACTOR_DIED"
    JOB_ENTRYPOINT_COMMAND_START_ERROR = "JOB_ENTRYPOINT_COMMAND_START_ERROR"
    JOB_ENTRYPOINT_COMMAND_ERROR = "JOB_ENTRYPOINT_COMMAND_ERROR"


class JobType(StrEnum):
    SUBMISSION = "SUBMISSION"
    DRIVER = "DRIVER"


def _resources_asked(info) -> bool:
    return any(((info.entrypoint_num_cpus or 0) > 0, (info.entrypoint_num_gpus or 0) > 0,
                (info.entrypoint_memory or 0) > 0, bool(info.entrypoint_resources)))


@dataclass
class JobInfo:
    """A submitted job as the head records it."""

    status: JobStatus
    entrypoint: str
    message: str | None = None
    error_type: JobErrorType | None = None
    start_time: int | None = None  # ms since the epoch, as Ray's
    end_time: int | None = None
    metadata: dict | None = None
    runtime_env: dict | None = None
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_memory: int | None = None
    entrypoint_resources: dict | None = None
    driver_agent_http_address: str | None = None
    driver_node_id: str | None = None
    driver_exit_code: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.status, str):
            self.status = JobStatus(self.status)
        if isinstance(self.error_type, str):
            self.error_type = JobErrorType(self.error_type)
        if self.message is None:
            self.message = default_message(self)

    def to_json(self) -> dict:
        """Ray's stored form: ``runtime_env`` as a JSON string under ``runtime_env_json``."""
        d = asdict(self)
        d["status"] = str(self.status)
        d["error_type"] = self.error_type.value if self.error_type else None
        env = d.pop("runtime_env")
        if env is not None:
            d["runtime_env_json"] = json.dumps(env)
        return d

    @classmethod
    def from_json(cls, d: dict) -> JobInfo:
        d = dict(d)
        env = d.pop("runtime_env_json", None)
        if env is not None:
            d["runtime_env"] = json.loads(env)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def default_message(info: JobInfo) -> str:
    s = info.status
    if s == JobStatus.PENDING:
        msg = "Job has not started yet."
        if _resources_asked(info):
            msg += (" It may be waiting for resources (CPUs, GPUs, memory, custom resources) "
                    "to become available.")
        if info.runtime_env:
            msg += " It may be waiting for the runtime environment to be set up."
        return msg
    return {JobStatus.RUNNING: "Job is currently running.",
            JobStatus.STOPPED: "Job was intentionally stopped.",
            JobStatus.SUCCEEDED: "Job finished successfully.",
            JobStatus.FAILED: "Job failed."}[s]


@dataclass
class DriverInfo:
    id: str
    node_ip_address: str
    pid: str


@dataclass
class JobDetails:
    """A job as ``GET /api/jobs/<id>`` describes it (submitted or a plain driver)."""

    type: JobType
    status: JobStatus
    entrypoint: str
    job_id: str | None = None
    submission_id: str | None = None
    driver_info: DriverInfo | None = None
    message: str | None = None
    error_type: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    metadata: dict | None = None
    runtime_env: dict | None = None
    driver_agent_http_address: str | None = None
    driver_node_id: str | None = None
    driver_exit_code: int | None = None
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_memory: int | None = None
    entrypoint_resources: dict | None = None

    def __init__(self, **fields: Any) -> None:
        # Ray's pydantic model ignores fields it does not know (a newer server's, or
        # shoal's own such as ``namespace``); so does this one.
        for f in dataclasses.fields(self):
            if f.name in fields:
                v = fields[f.name]
            elif f.default is not dataclasses.MISSING:
                v = f.default
            else:
                raise TypeError(f"JobDetails() missing required field {f.name!r}")
            setattr(self, f.name, v)
        self.type = JobType(self.type)
        self.status = JobStatus(self.status)
        if isinstance(self.driver_info, dict):
            self.driver_info = DriverInfo(**{k: self.driver_info[k] for k in
                                             ("id", "node_ip_address", "pid")})

    def dict(self) -> dict:
        """As pydantic's ``.dict()``: the fields as plain values."""
        d = asdict(self)
        d["type"], d["status"] = self.type.value, self.status.value
        return d


def details_json(submission_id: str, info: JobInfo, driver: dict | None) -> dict:
    """A submitted job's ``JobDetails`` JSON; ``driver`` is the head's row of the driver the
    entrypoint started (its ``job_id`` and ``driver_info``), if it started one."""
    d = info.to_json()
    d.pop("runtime_env_json", None)
    d.update(type="SUBMISSION", submission_id=submission_id, runtime_env=info.runtime_env,
             job_id=driver["job_id"] if driver else None,
             driver_info=driver["driver_info"] if driver else None)
    return d


def new_submission_id() -> str:
    """Ray's form: ``raysubmit_`` and 16 random characters."""
    return "raysubmit_" + "".join(secrets.choice(_ID_CHARS) for _ in range(16))


def check_submission_id(sid: str) -> None:
    """A submission id names a log file and a URL path segment: a short plain name."""
    if not _VALID_ID.match(sid) or sid in (".", ".."):
        raise ValueError(f"submission_id {sid!r} must be 1 to 128 letters, digits, '_', '-' "
                         "or '.'")


@dataclass
class JobSubmitRequest:
    """``POST /api/jobs/``'s body, with Ray's checks (TypeError, as Ray's)."""

    entrypoint: str
    submission_id: str | None = None
    job_id: str | None = None
    runtime_env: dict | None = None
    metadata: dict | None = None
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_memory: int | None = None
    entrypoint_resources: dict | None = None
    entrypoint_label_selector: dict | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.entrypoint, str):
            raise TypeError(f"entrypoint must be a string, got {type(self.entrypoint)}")
        for name in ("submission_id", "job_id"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise TypeError(f"{name} must be a string if provided, got {type(v)}")
        _str_dict(self.runtime_env, "runtime_env", values=False)
        _str_dict(self.metadata, "metadata", values=True)
        _str_dict(self.entrypoint_label_selector, "entrypoint_label_selector", values=True)
        for name in ("entrypoint_num_cpus", "entrypoint_num_gpus"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise TypeError(f"{name} must be a number, got {type(v)}")
        m = self.entrypoint_memory
        if m is not None and (isinstance(m, bool) or not isinstance(m, int)):
            raise TypeError(f"entrypoint_memory must be an integer, got {type(m)}")
        r = self.entrypoint_resources
        if r is not None:
            if not isinstance(r, dict):
                raise TypeError(f"entrypoint_resources must be a dict, got {type(r)}")
            for k, v in r.items():
                if not isinstance(k, str):
                    raise TypeError(f"entrypoint_resources keys must be strings, got {type(k)}")
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise TypeError("entrypoint_resources values must be numbers, got "
                                    f"{type(v)}")
        for name in ("entrypoint_num_cpus", "entrypoint_num_gpus", "entrypoint_memory"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValueError(f"{name} must be non-negative, got {v}")
        if r and any(v < 0 for v in r.values()):
            raise ValueError(f"entrypoint_resources must be non-negative, got {r}")

    def resources(self) -> dict:
        """The entrypoint's resource ask in the cluster's names (CPU, GPU, memory, ...)."""
        ask = dict(self.entrypoint_resources or {})
        for key, v in (("CPU", self.entrypoint_num_cpus), ("GPU", self.entrypoint_num_gpus),
                       ("memory", self.entrypoint_memory)):
            if v:
                ask[key] = v
        return {k: v for k, v in ask.items() if v}


def _str_dict(d, name: str, *, values: bool) -> None:
    if d is None:
        return
    if not isinstance(d, dict):
        raise TypeError(f"{name} must be a dict, got {type(d)}")
    for k, v in d.items():
        if not isinstance(k, str):
            raise TypeError(f"{name} keys must be strings, got {type(k)}")
        if values and not isinstance(v, str):
            raise TypeError(f"{name} values must be strings, got {type(v)}")


@dataclass
class JobSubmitResponse:
    job_id: str
    submission_id: str


@dataclass
class JobStopResponse:
    stopped: bool


@dataclass
class JobDeleteResponse:
    deleted: bool


@dataclass
class JobLogsResponse:
    logs: str


@dataclass
class VersionResponse:
    version: str
    ray_version: str
    ray_commit: str
    session_name: str
