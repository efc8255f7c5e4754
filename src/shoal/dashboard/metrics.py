"""Prometheus metrics (text exposition format 0.0.4) from the dashboard's cluster summary.
Pure: a summary and node rows in, text out."""

from __future__ import annotations

from .._private.runtime import app_metrics
from .._private.runtime.app_metrics import _esc

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Text:
    def __init__(self):
        self.lines: list[str] = []

    def family(self, name: str, help_: str, samples: list[tuple[dict, float]],
               kind: str = "gauge") -> None:
        self.lines.append(f"# HELP {name} {help_}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{lab}}} {float(value)!r}" if lab
                              else f"{name} {float(value)!r}")


def render(summary: dict, nodes: list[dict], actors: list[dict],
           application: list[dict] = ()) -> str:
    """The cluster's metrics, then the application's (``shoal.util.metrics``, merged)."""
    t = _Text()
    t.family("shoal_tasks", "Tasks the owners remember, by state.",
             [({"State": s}, n) for s, n in summary["tasks"].items()])
    t.family("shoal_task_records_dropped", "Task records dropped (oldest first) to stay "
             "within task_events_max, over the live owners and the head's archive.",
             [({}, summary.get("task_records_dropped", 0))])
    states: dict[str, int] = {}
    for a in actors:
        states[a["state"]] = states.get(a["state"], 0) + 1
    for s in ("PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"):
        states.setdefault(s, 0)
    t.family("shoal_actors", "Actors, by state.", [({"State": s}, n) for s, n in states.items()])
    t.family("shoal_nodes", "Nodes, by state.",
             [({"State": "ALIVE"}, summary["nodes"]["alive"]),
              ({"State": "DEAD"}, summary["nodes"]["dead"])])
    t.family("shoal_jobs", "Jobs (drivers), by status.",
             [({"Status": "RUNNING"}, summary["jobs"]["running"]),
              ({"Status": "SUCCEEDED"}, summary["jobs"]["finished"])])
    live = [n for n in nodes if n["state"] == "ALIVE"]

    for name, help_, key, field in _PER_NODE:
        t.family(name, help_, [(_node_labels(n), (n.get(key) or {}).get(field, 0))
                               for n in live])
    t.family("shoal_node_resource_total", "A node's resources.",
             [({**_node_labels(n), "Resource": r}, v) for n in live
              for r, v in n["resources_total"].items() if not r.startswith("node:")])
    t.family("shoal_node_resource_available", "A node's resources not in use.",
             [({**_node_labels(n), "Resource": r}, v) for n in live
              for r, v in n["resources_available"].items() if not r.startswith("node:")])
    t.family("shoal_node_workers", "Worker processes of a node.",
             [(_node_labels(n), len(n.get("workers") or ())) for n in live])
    shoal_names = {line.split()[2] for line in t.lines if line.startswith("# TYPE")}
    t.lines += app_metrics.render([m for m in application if m["name"] not in shoal_names])
    return "\n".join(t.lines) + "\n"


# Per live node: (metric, help, the node row's key, the field under it).
_PER_NODE = (
    ("shoal_object_store_used_bytes", "Bytes of objects in a node's shared memory.",
     "object_store", "used"),
    ("shoal_object_store_capacity_bytes", "A node's object store capacity.",
     "object_store", "capacity"),
    ("shoal_object_store_spilled_bytes", "Bytes of a node's objects spilled to disk.",
     "object_store", "spilled"),
    ("shoal_object_store_num_objects", "Objects in a node's store.",
     "object_store", "num_objects"),
    ("shoal_node_cpu_percent", "CPU use of a node's machine, percent.",
     "machine", "cpu_percent"),
    ("shoal_node_mem_used_bytes", "Memory in use on a node's machine.", "machine", "mem_used"),
    ("shoal_node_mem_total_bytes", "Memory of a node's machine.", "machine", "mem_total"),
    ("shoal_node_disk_used_bytes", "Disk in use where a node keeps its session.",
     "machine", "disk_used"),
    ("shoal_node_disk_total_bytes", "Disk size where a node keeps its session.",
     "machine", "disk_total"),
)


def _node_labels(n: dict) -> dict:
    return {"NodeId": n["node_id"], "NodeAddress": n["node_ip"]}
