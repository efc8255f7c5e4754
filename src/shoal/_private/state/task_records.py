"""Task records as owners keep them and the head passes them on: their states (Ray's) and
the query that picks some of them. Pure, so that the owner (runtime.task_events) and the
head (which may not import the runtime) apply the same query.
"""

from __future__ import annotations

PENDING_ARGS, PENDING_NODE, RUNNING, FINISHED, FAILED = (
    "PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "RUNNING", "FINISHED", "FAILED")


def select(records, query: dict) -> list[dict]:
    """The newest ``query["limit"]`` records (all without a limit) whose ``state`` and
    ``name`` equal the query's (when given), oldest first. Owners apply it before sending
    records, so a page showing the last hundred tasks does not ship ten thousand."""
    state, name, limit = query.get("state"), query.get("name"), query.get("limit")
    out: list[dict] = []
    if limit is not None and limit <= 0:
        return out
    for r in reversed(records if isinstance(records, list) else list(records)):
        if (state is None or r["state"] == state) and (name is None or r["name"] == name):
            out.append(r)
            if limit is not None and len(out) >= limit:
                break
    out.reverse()
    return out
