"""Application metrics (``shoal.util.metrics``): each process keeps the values its code
records; the dashboard's ``/metrics`` asks every process for a snapshot and merges them.

Pure: a registry, its snapshot, the merge across processes and the Prometheus text. Counters
and histograms add up across processes (the same name and tags); a gauge's value is the one
set last, wherever it was set.
"""

from __future__ import annotations

import threading
import time


class Registry:
    """This process's recorded values, by metric name and tag values."""

    def __init__(self):
        self.lock = threading.Lock()
        self.metrics: dict[str, dict] = {}  # name -> {kind, description, boundaries, series}

    def declare(self, kind: str, name: str, description: str, boundaries=None) -> None:
        with self.lock:
            m = self.metrics.get(name)
            if m is None or m["kind"] != kind:
                self.metrics[name] = {"kind": kind, "description": description,
                                      "boundaries": list(boundaries or ()), "series": {}}

    def record(self, name: str, tags: tuple, value: float) -> None:
        """``tags``: sorted ``(key, value)`` pairs."""
        with self.lock:
            m = self.metrics[name]
            s = m["series"]
            if m["kind"] == "counter":
                s[tags] = s.get(tags, 0.0) + value
            elif m["kind"] == "gauge":
                s[tags] = (value, time.time())
            else:
                h = s.get(tags)
                if h is None:
                    h = s[tags] = {"buckets": [0] * (len(m["boundaries"]) + 1), "sum": 0.0,
                                   "count": 0}
                i = next((k for k, b in enumerate(m["boundaries"]) if value <= b),
                         len(m["boundaries"]))
                h["buckets"][i] += 1
                h["sum"] += value
                h["count"] += 1

    def snapshot(self) -> list[dict]:
        """Plain data (msgpack-able) of every metric recorded so far."""
        out = []
        with self.lock:
            for name, m in self.metrics.items():
                series = []
                for tags, v in m["series"].items():
                    entry: dict = {"tags": [list(t) for t in tags]}
                    if m["kind"] == "gauge":
                        entry["value"], entry["time"] = v
                    elif m["kind"] == "counter":
                        entry["value"] = v
                    else:
                        entry.update(buckets=list(v["buckets"]), sum=v["sum"],
                                     count=v["count"])
                    series.append(entry)
                out.append({"name": name, "kind": m["kind"], "description": m["description"],
                            "boundaries": m["boundaries"], "series": series})
        return out


REGISTRY = Registry()


def merge(snapshots: list[list[dict]]) -> list[dict]:
    """One snapshot from many processes' (the first declaration of a name decides its kind;
    a process that declared it otherwise is left out for that name)."""
    merged: dict[str, dict] = {}
    for snap in snapshots:
        for m in snap:
            into = merged.setdefault(m["name"], {**m, "series": {}})
            if into["kind"] != m["kind"] or into["boundaries"] != m["boundaries"]:
                continue
            for e in m["series"]:
                key = tuple(tuple(t) for t in e["tags"])
                have = into["series"].get(key)
                if have is None:
                    into["series"][key] = dict(e)
                elif m["kind"] == "counter":
                    have["value"] += e["value"]
                elif m["kind"] == "gauge":
                    if e["time"] >= have["time"]:
                        have.update(value=e["value"], time=e["time"])
                else:
                    have["buckets"] = [a + b for a, b in zip(have["buckets"], e["buckets"],
                                                             strict=True)]
                    have["sum"] += e["sum"]
                    have["count"] += e["count"]
    for m in merged.values():
        m["series"] = [{**e, "tags": [list(t) for t in k]} for k, e in m["series"].items()]
    return list(merged.values())


def render(metrics: list[dict]) -> list[str]:
    """Prometheus text lines for merged application metrics."""
    lines: list[str] = []
    for m in sorted(metrics, key=lambda m: m["name"]):
        name, kind = m["name"], m["kind"]
        lines.append(f"# HELP {name} {_help(m['description'] or name)}")
        lines.append(f"# TYPE {name} {kind}")
        for e in m["series"]:
            tags = [(k, v) for k, v in e["tags"]]
            if kind == "counter":
                lines.append(_sample(name, tags, e["value"]))
            elif kind == "gauge":
                lines.append(_sample(name, tags, e["value"]))
            else:
                running = 0
                for b, n in zip(m["boundaries"] + [float("inf")], e["buckets"], strict=True):
                    running += n
                    le = "+Inf" if b == float("inf") else repr(float(b))
                    lines.append(_sample(name + "_bucket", tags + [("le", le)], running))
                lines.append(_sample(name + "_sum", tags, e["sum"]))
                lines.append(_sample(name + "_count", tags, e["count"]))
    return lines


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _sample(name: str, tags: list, value) -> str:
    if not tags:
        return f"{name} {float(value)!r}"
    lab = ",".join(f'{k}="{_esc(v)}"' for k, v in tags)
    return f"{name}{{{lab}}} {float(value)!r}"


def _esc(v) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
