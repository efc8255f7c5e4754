"""``shoal.client()`` (Ray's deprecated ``ray.client()``): a builder that ends in ``init``.

``client()`` and ``client("local")`` connect to (or start) a cluster on this machine, as
``init()`` does; ``.namespace(...)`` and ``.env(...)`` set the job's namespace and
runtime_env first. Ray Client servers (``ray://`` addresses) are not supported, and
``connect()`` says so.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from .job_config import JobConfig


class ClientBuilder:
    """Collects a job's settings, then ``connect()`` starts the driver."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._job_config = JobConfig()

    def env(self, env: dict[str, Any]) -> ClientBuilder:
        self._job_config.set_runtime_env(env, validate=True)
        return self

    def namespace(self, namespace: str) -> ClientBuilder:
        self._job_config.set_ray_namespace(namespace)
        return self

    def connect(self):
        """Connect this process as a driver; returns what ``init()`` returns (a context
        manager with ``dashboard_url``, ``python_version``, ``disconnect()``)."""
        from .api import init

        address = self.address
        if address not in (None, "local", "auto") and not address.startswith("local"):
            raise ConnectionError(
                f"{address!r}: Ray Client connections are not supported by shoal; run the "
                "driver on a node of the cluster and use init(address='auto').")
        return init(address=address, job_config=self._job_config)


def client(address: str | None = None, _deprecation_warn_enabled: bool = True) -> ClientBuilder:
    """A ClientBuilder for ``address`` (None: the local cluster, or ``RAY_ADDRESS``)."""
    if _deprecation_warn_enabled:
        warnings.warn("ray.client() is deprecated in Ray; use ray.init() instead.",
                      DeprecationWarning, stacklevel=2)
    if address is None:
        address = os.environ.get("SHOAL_ADDRESS") or os.environ.get("RAY_ADDRESS") or None
    return ClientBuilder(address)
