"""What ``init()`` does before it connects: take the JobConfig apart, configure the
``shoal`` logger, and find the cluster to join (or decide to start an embedded one)."""

from __future__ import annotations

import logging
import os

from ._private.launch import local_cluster
from ._private.wire.config import config
from ._private.wire.session import Session, read_address

log = logging.getLogger("shoal")


def apply_job_config(job_config, namespace, runtime_env) -> tuple[str | None, dict]:
    """What ``init(job_config=...)`` takes from a JobConfig: the namespace (unless ``init``
    names one), the runtime_env (``init``'s wins; validated and kept for the runtime
    context), and ``code_search_path`` (put on ``sys.path``)."""
    import sys

    from .job_config import JobConfig

    if namespace is not None:
        if not isinstance(namespace, str):
            raise TypeError("namespace must be None or a string.")
        if namespace == "":
            raise ValueError('"" is not a valid namespace. Pass None to not specify a '
                             "namespace.")
    if job_config is None:
        job_config = JobConfig()
    elif not isinstance(job_config, JobConfig):
        raise TypeError(f"job_config must be a JobConfig, got {type(job_config).__name__}")
    if runtime_env:
        job_config.set_runtime_env(runtime_env)
    env = job_config._validate_runtime_env()
    for path in job_config.code_search_path:
        if os.path.isdir(path) and path not in sys.path:
            sys.path.insert(0, path)
    if namespace is None:
        namespace = job_config.ray_namespace
    return namespace, env


JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # Ray's: set by the head for a job's entrypoint


def submitted_job_config():
    """The JobConfig a submitted job's entrypoint gets from the head (its runtime_env and
    metadata, the submission id among them), as Ray's drivers do; None elsewhere."""
    raw = os.environ.get(JOB_CONFIG_ENV)
    if not raw:
        return None
    import json

    from .job_config import JobConfig

    try:
        d = json.loads(raw)
    except ValueError:
        log.warning("%s is not JSON; ignored", JOB_CONFIG_ENV)
        return None
    return JobConfig.from_json(d) if isinstance(d, dict) else None


def configure_logging(level, fmt: str | None) -> None:
    """As Ray does for ``ray``: the ``shoal`` logger at ``level``, to stderr unless the
    application has configured logging itself (then its handlers get the records)."""
    log.setLevel(level)
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(
            fmt or "%(asctime)s\t%(levelname)s %(filename)s:%(lineno)s -- %(message)s"))
        log.addHandler(handler)


def anonymous_namespace() -> str:
    import uuid

    return str(uuid.uuid4())


def find_session(address: str | None, temp_dir: str | None = None) -> Session | None:
    """The session of the cluster ``init(address)`` joins; None to start an embedded one.

    As Ray: ``None`` and ``"auto"`` take ``SHOAL_ADDRESS`` (or ``RAY_ADDRESS``) if set, then
    the current cluster that ``shoal start --head`` recorded under the session root (or
    ``temp_dir``); ``None`` falls back to an embedded cluster, ``"auto"`` to the newest
    live session of this machine. ``"local"`` always starts an embedded cluster.
    """
    if address in (None, "auto"):
        address = os.environ.get("SHOAL_ADDRESS") or os.environ.get("RAY_ADDRESS") or address
    if address in (None, "auto"):
        sess = local_cluster.current_cluster(temp_dir)
        if sess is not None or address is None:
            return sess
    if address == "local":
        return None
    if address == "auto":
        sess = local_cluster.find_local_session()
        if sess is None:
            raise ConnectionError(
                "Could not find any running shoal instance. Please specify the one to connect "
                "to by setting `address` or start a cluster with `shoal start --head`.")
        return sess
    if os.path.isdir(address):
        return Session.open(address)
    if address.startswith(("ray://", "shoal://")):
        raise ConnectionError(f"{address!r}: client connections (ray://) are not supported; "
                              "run the driver on a node of the cluster and use "
                              "init(address='auto') or init('HOST:PORT').")
    if ":" not in address:
        raise ValueError(f"address {address!r} must be 'auto', 'local', 'HOST:PORT' or a "
                         "session directory")
    sess = local_cluster.find_session_for_head(address)
    if sess is None:
        raise ConnectionError(
            f"Could not connect to the shoal cluster at {address!r}: no node of that cluster "
            f"runs on this machine. Start one with `shoal start --address={address}` (or "
            "`shoal start --head` to start a cluster here).")
    return sess


def joined_session_info(sess: Session) -> dict:
    """The address.json of a running cluster's session, after checking that the cluster runs
    this process's shoal and Python versions; its shared-memory directory becomes ours."""
    info = read_address(sess.path)
    if info is None:
        raise ConnectionError(f"the shoal session {sess.path} has no running node (no "
                              "address.json of this user's in it)")
    local_cluster.check_version(info, f"node {info.get('node_ip') or '127.0.0.1'}")
    shm = info.get("shm_dir")
    if shm and shm != config.shm_dir:  # `shoal start --plasma-directory`
        os.environ["SHOAL_SHM_DIR"] = shm
    log.info("Connecting to existing shoal cluster at address: %s...",
             info.get("head_address") or info.get("node_address"))
    return info
