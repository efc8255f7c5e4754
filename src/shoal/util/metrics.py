"""Application metrics, as Ray's ``ray.util.metrics``: ``Counter``, ``Gauge`` and
``Histogram`` recorded anywhere (driver, task, actor) and exported with the cluster's own
metrics at the dashboard's ``/metrics``.

Each process keeps what its code records (``_private/app_metrics``); a scrape gathers every
live process's values. Counters and histograms of the same name and tags add up across
processes; a gauge shows the value set last. Values recorded by a process that has exited
are gone with it.
"""

from __future__ import annotations

import re
import warnings

from .._private.runtime.app_metrics import REGISTRY

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

__all__ = ["Counter", "Gauge", "Histogram", "Metric"]


class Metric:
    """What the three kinds share: a name, a description, tag keys and default tags."""

    _kind = ""

    def __init__(self, name: str, description: str = "", tag_keys: tuple | None = None):
        if not isinstance(name, str) or not name:
            raise ValueError("Empty name is not allowed. Please provide a metric name.")
        tag_keys = tuple() if tag_keys is None else tag_keys
        if not isinstance(tag_keys, tuple):
            raise TypeError(f"tag_keys should be a tuple type, got: {type(tag_keys)}")
        for key in tag_keys:
            if not isinstance(key, str):
                raise TypeError(f"Tag keys must be str, got {type(key)}.")
        self._name = name
        self._description = description
        self._tag_keys = tag_keys
        self._default_tags: dict[str, str] = {}
        # Like Ray: a name Prometheus cannot take is discarded with a warning, not an error.
        self._discard = not _NAME.match(name)
        if self._discard:
            warnings.warn(f"Invalid metric name: {name}. Metric will be discarded and data "
                          "will not be collected or published. Metric names can only "
                          "contain letters, numbers, _, and :, and cannot start with a "
                          "number.", UserWarning, stacklevel=3)
        self._declare()

    def _declare(self) -> None:
        if not self._discard:
            REGISTRY.declare(self._kind, self._name, self._description,
                             getattr(self, "boundaries", None))

    def set_default_tags(self, default_tags: dict) -> Metric:
        """Tags used by every record that does not give them; returns the metric."""
        for key, value in default_tags.items():
            if key not in self._tag_keys:
                raise ValueError(f"Unrecognized tag key {key}.")
            if not isinstance(value, str):
                raise TypeError(f"Tag values must be str, got {type(value)}.")
        self._default_tags = dict(default_tags)
        return self

    def _tags(self, tags: dict | None) -> tuple:
        final = dict(self._default_tags)
        for key, value in (tags or {}).items():
            if not isinstance(value, str):
                raise TypeError(f"Tag values must be str, got {type(value)}.")
            final[key] = value
        missing = [k for k in self._tag_keys if k not in final]
        if missing:
            raise ValueError(f"Missing value for tag key(s): {','.join(missing)}.")
        unknown = [k for k in final if k not in self._tag_keys]
        if unknown:
            raise ValueError(f"Unrecognized tag key(s): {','.join(unknown)}.")
        return tuple(sorted(final.items()))

    def _record(self, value: float, tags: dict | None) -> None:
        key = self._tags(tags)
        if not self._discard:
            REGISTRY.record(self._name, key, float(value))

    @property
    def info(self) -> dict:
        return {"name": self._name, "description": self._description,
                "tag_keys": self._tag_keys, "default_tags": self._default_tags}

    def __reduce__(self):
        # A metric passed to a task or an actor records in that process.
        return _rebuild, (type(self), self._args(), self._default_tags)

    def _args(self) -> tuple:
        return self._name, self._description, self._tag_keys


def _rebuild(cls, args, default_tags):
    m = cls(*args)
    m._default_tags = dict(default_tags)
    return m


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"value must be int or float, got {type(value)}.")
    return value


class Counter(Metric):
    """A count that only goes up (requests served, bytes read...)."""

    _kind = "counter"

    def inc(self, value: int | float = 1.0, tags: dict | None = None) -> None:
        if _number(value) <= 0:
            raise ValueError(f"value must be >0, got {value}")
        self._record(value, tags)


class Gauge(Metric):
    """A value that goes up and down (queue length, memory in use...)."""

    _kind = "gauge"

    def set(self, value: int | float | None, tags: dict | None = None) -> None:
        if value is None:
            return
        self._record(_number(value), tags)


class Histogram(Metric):
    """A distribution of observed values in buckets bounded by ``boundaries``."""

    _kind = "histogram"

    def __init__(self, name: str, description: str = "", boundaries: list | None = None,
                 tag_keys: tuple | None = None):
        if not boundaries:
            raise ValueError("boundaries argument should be provided when using the "
                             'Histogram class. e.g., Histogram("name", boundaries=[1.0, 2.0])')
        for i, b in enumerate(boundaries):
            if _number(b) <= 0:
                raise ValueError(f"Invalid `boundaries` argument at index {i}, {boundaries}. "
                                 "Use positive values for the arguments.")
        self.boundaries = sorted(float(b) for b in boundaries)
        super().__init__(name, description, tag_keys)

    def observe(self, value: int | float, tags: dict | None = None) -> None:
        self._record(_number(value), tags)

    @property
    def info(self) -> dict:
        return {**super().info, "boundaries": self.boundaries}

    def _args(self) -> tuple:
        return self._name, self._description, self.boundaries, self._tag_keys
