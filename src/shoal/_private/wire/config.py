"""Every tunable of shoal in one table.

Each setting has a default, an environment variable (``SHOAL_<NAME>``) that overrides it, and
one line saying what it is for. Code reads settings through :data:`config`, never through
``os.environ`` directly, so the table is the whole truth.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    doc: str

    @property
    def env(self) -> str:
        return "SHOAL_" + self.name.upper()


def default_session_root() -> str:
    """This user's own root: ``/tmp/shoal`` for root, ``/tmp/shoal-<uid>`` for another user
    (so no user can pre-create another's; see wire/session.py)."""
    uid = os.geteuid()
    return "/tmp/shoal" if uid == 0 else f"/tmp/shoal-{uid}"


SETTINGS: tuple[Setting, ...] = (
    Setting("session_root", default_session_root(),
            "directory holding one session_* directory per cluster (this user's own: "
            "/tmp/shoal for root, /tmp/shoal-<uid> for others)"),
    Setting("control_store_on_corrupt", "refuse", "a head whose SQLite store fails its "
            "integrity check: 'refuse' to start, naming the file, or 'reset': keep the "
            "damaged files aside and start a fresh store"),
    Setting("dead_actors_max", 10000, "dead actors whose records the head keeps for the "
            "state API, oldest dropped first (Ray's maximum_gcs_destroyed_actor_cached_count)"),
    Setting("max_inline_bytes", 100 * 1024, "objects up to this size travel inline, larger go to shared memory"),
    Setting("shm_dir", "/dev/shm", "tmpfs directory where the shared-memory object store keeps its segments"),
    Setting("prestart_workers", -1, "workers started with a node daemon; -1 means one per CPU"),
    Setting("max_workers_per_cpu", 4, "cap on worker processes per CPU (blocked workers may exceed one per CPU)"),
    Setting("worker_fork_server", True, "fork new workers from a preloaded process (the "
            "node's zygote) rather than start an interpreter each; falls back to exec"),
    Setting("fork_server_start_timeout_s", 10.0, "seconds the first workers wait for the "
            "fork server to be ready before they start by exec"),
    Setting("idle_worker_keep", -1, "idle workers kept alive beyond which extras exit; -1 means one per CPU"),
    Setting("start_timeout_s", 30.0, "seconds to wait for a daemon to come up before failing"),
    Setting("connect_timeout_s", 10.0, "seconds to wait when connecting to a daemon or peer"),
    Setting("default_max_retries", 3, "retries of a task whose worker dies (Ray's default)"),
    Setting("log_to_driver", True, "forward workers' stdout/stderr to the driver, prefixed with (pid=..)"),
    Setting("worker_lease_pipeline", 1, "tasks pushed ahead to one leased worker before earlier ones finish"),
    Setting("heartbeat_interval_s", 1.0, "seconds between a node's heartbeats to the head"),
    Setting("node_dead_timeout_s", 10.0, "a node silent for this long is marked dead"),
    Setting("memory_usage_threshold", 0.95, "fraction of the machine's memory in use above "
            "which the memory monitor ends a task's worker (Ray's memory_usage_threshold)"),
    Setting("memory_monitor_refresh_ms", 250, "how often the memory monitor looks; 0 "
            "turns it off"),
    Setting("task_events_max", 10000, "tasks each owner remembers for the state API "
            "(oldest dropped first); 0 turns task records off"),
    Setting("head_reconnect_timeout_s", 60.0, "how long nodes, drivers and workers keep "
            "trying to reach a head that went away before giving up"),
    Setting("spill_dir", "", "where objects are spilled when the store is full (default: "
            "<session>/spill)"),
    Setting("object_store_full_timeout_s", 10.0, "how long a put or task return waits for "
            "room (while objects are spilled) before ObjectStoreFullError"),
    Setting("include_dashboard", True, "serve the dashboard from the head (init() and "
            "`shoal start --head` can also say)"),
    Setting("dashboard_port", 8265, "the dashboard's port when none is given (taken: any "
            "free port, printed)"),
    Setting("dashboard_allowed_hosts", "", "extra Host names (comma-separated host:port) "
            "the dashboard answers to, e.g. behind a proxy"),
    Setting("dashboard_header_timeout_s", 10.0, "seconds a dashboard connection has to "
            "send its first request head before it is dropped"),
    Setting("dashboard_max_header_bytes", 16 * 1024, "largest first request head the "
            "dashboard reads (a longer one is answered 431)"),
    Setting("dashboard_max_open_per_source", 32, "dashboard connections one source address "
            "may have open at once; past it a request without the cluster token gets 503"),
    Setting("dashboard_keepalive_timeout_s", 15.0, "seconds an idle keep-alive dashboard "
            "connection is kept"),
    Setting("max_frame_bytes", 512 * 1024 * 1024, "largest frame an authenticated peer may "
            "send; a bigger one ends the connection before it is buffered"),
    Setting("max_handshake_frame_bytes", 8 * 1024, "largest frame accepted before a peer "
            "has authenticated (hello and its proof are a few hundred bytes)"),
    Setting("handshake_timeout_s", 5.0, "seconds a peer has to complete the handshake "
            "before its connection is dropped"),
    Setting("max_pending_connections", 256, "connections still in their handshake a "
            "process keeps at once; past it the oldest of the busiest source is dropped"),
    Setting("max_pending_per_source", 64, "connections in their handshake kept at once "
            "from one source address (the oldest is dropped to make room)"),
    Setting("tls_cert", "", "PEM certificate this process presents on TCP connections "
            "between nodes; with tls_key, turns TLS on (every node needs the same settings)"),
    Setting("tls_key", "", "PEM private key of tls_cert"),
    Setting("tls_ca", "", "PEM CA bundle the peers' certificates must chain to (default: "
            "tls_cert itself, for a self-signed cluster certificate)"),
    Setting("log_max_bytes", 100 * 1024 * 1024, "size at which a daemon's or worker's log "
            "file is rotated (to <name>.1, ...); 0 never rotates"),
    Setting("log_backup_count", 3, "rotated log files kept per log"),
    Setting("dashboard_service", "shoal.dashboard.server:DashboardService", "the dashboard "
            "the head runs, as module:factory of a head service (_private/head/services.py)"),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _coerce(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


class Config:
    """Read-only view of the settings with environment overrides applied."""

    def __getattr__(self, name: str) -> Any:
        try:
            setting = _BY_NAME[name]
        except KeyError:
            raise AttributeError(f"unknown shoal setting {name!r}") from None
        raw = os.environ.get(setting.env)
        if raw is None:
            return setting.default
        return _coerce(raw, setting.default)


config = Config()
