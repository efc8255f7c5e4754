"""The timeline: task records as a Chrome trace (the JSON that chrome://tracing and Perfetto
load), one track per worker, grouped by node. Pure: rows in, events out."""

from __future__ import annotations


def chrome_trace(tasks: list[dict], nodes: list[dict], workers: dict[str, int],
                 actors: dict[str, dict]) -> list[dict]:
    """Events for ``tasks`` (``list_tasks(detail=True)`` rows).

    ``nodes``: ``list_nodes`` rows (to name the processes of the trace); ``workers``: worker
    id (8-hex prefix) to pid; ``actors``: actor id to its ``list_actors`` row (an actor
    call's worker is its actor's). A task that has not started has no event; one still
    running ends at ``now`` (the latest time seen)."""
    node_index = {n["node_id"]: i + 1 for i, n in enumerate(nodes)}
    events: list[dict] = []
    for n in nodes:
        # Named as Ray names them: "Node <ip>", and each worker "worker:<worker id>".
        events.append({"ph": "M", "name": "process_name", "pid": node_index[n["node_id"]],
                       "tid": 0, "args": {"name": f"Node {n['node_ip']}"}})
    times = [t["end_time_ms"] or t["start_time_ms"] for t in tasks if t.get("start_time_ms")]
    now = max(times) if times else 0
    threads: set[tuple[int, int]] = set()
    for t in tasks:
        if not t.get("start_time_ms"):
            continue
        pid, tid, wid = _place(t, node_index, workers, actors)
        if (pid, tid) not in threads:
            threads.add((pid, tid))
            events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                           "args": {"name": f"worker:{wid or tid}", "pid": tid}})
        end = t["end_time_ms"] or now
        events.append({
            "ph": "X", "cat": "task", "name": t["name"], "pid": pid, "tid": tid,
            "ts": t["start_time_ms"] * 1000, "dur": max(0, end - t["start_time_ms"]) * 1000,
            "cname": _COLOURS.get(t["state"], "generic_work"),
            "args": {"task_id": t["task_id"], "job_id": t["job_id"],
                     "actor_id": t.get("actor_id"),
                     "attempt_number": t.get("attempt_number", 0),
                     "func_or_class_name": t.get("func_or_class_name", t["name"]),
                     "state": t["state"], "error_type": t.get("error_type")},
        })
    return events


_COLOURS = {"FINISHED": "good", "FAILED": "terrible", "RUNNING": "rail_animation"}


def _place(t: dict, node_index: dict, workers: dict, actors: dict) -> tuple[int, int, str]:
    """(trace pid: the node's index, trace tid: the worker's pid, the worker's id)."""
    node, wid = t.get("node_id"), t.get("worker_id")
    actor = actors.get(t.get("actor_id") or "")
    if actor is not None:
        node = node or actor.get("node_id")
        return node_index.get(node, 0), actor.get("pid") or 0, actor.get("worker_id") or ""
    return node_index.get(node, 0), workers.get((wid or "")[:8], 0), wid or ""


def from_answers(task_nodes: list[dict], node_table: list[dict], actor_table: list[dict],
                 log_nodes: list[dict]) -> list[dict]:
    """The trace from the head's raw answers (``list_tasks``, ``get_nodes``,
    ``list_actors``, ``list_logs``): shared by the state API and the dashboard."""
    from .rows import _actor_row, _node_row, task_rows

    workers = {e["worker_id"]: e["pid"] for n in log_nodes for e in n["logs"]
               if e["kind"] == "worker"}
    actors = {a["actor_id"]: a for a in map(_actor_row, actor_table)}
    return chrome_trace(task_rows(task_nodes), [_node_row(n) for n in node_table], workers,
                        actors)
