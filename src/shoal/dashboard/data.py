"""The dashboard's view of the cluster, gathered in the head's process from its control
store and, for what lives on the nodes (machine use, task records, objects, logs), from
every node daemon. Answers are the state API's rows (``_private/state_rows``)."""

from __future__ import annotations

import time

from .._private.runtime import app_metrics
from .._private.state import rows as rows
from .._private.state import timeline
from .._private.state.task_records import FAILED, FINISHED, PENDING_ARGS, PENDING_NODE, RUNNING

TASK_STATES = (PENDING_ARGS, PENDING_NODE, RUNNING, FINISHED, FAILED)


class ClusterData:
    def __init__(self, queries):
        self.queries = queries  # the control store's queries (head.services.HeadQueries)

    # -- nodes ----------------------------------------------------------------------------
    async def nodes(self) -> list[dict]:
        """Every node (dead ones too), with machine and store use for the live ones."""
        info = {i["node_id"]: i for i in await self.queries.fan_out("node_info")}
        out = []
        for n in self.queries.node_list():
            row = rows._node_row(n)
            live = info.get(n["node_id"])
            row["machine"] = live["machine"] if live else None
            row["object_store"] = live["store"] if live else None
            row["workers"] = [{"pid": w["pid"], "worker_id": w["worker_id"].hex()}
                              for w in live["workers"]] if live else []
            row["pending_leases"] = live["pending_leases"] if live else 0
            out.append(row)
        return out

    # -- tasks, actors, jobs, objects -----------------------------------------------------
    async def tasks(self) -> list[dict]:
        return rows.task_rows(await self.queries.task_answers())

    async def newest_tasks(self, limit: int, state: str | None) -> tuple[list[dict], int]:
        """The newest ``limit`` tasks (of ``state`` if given), newest first, and how many
        there are in all; each owner sends only its newest ``limit``."""
        query = {"limit": limit, "state": state}
        found = rows.task_rows(await self.queries.task_answers(query))
        counts = (await self.queries.task_counts())["counts"]
        total = counts.get(state, 0) if state else sum(counts.values())
        return found[::-1][:limit], total

    async def cancel_task(self, task_id: str, force: bool) -> None:
        """Ask the owner of a task that has not ended to cancel it (as ``shoal.cancel``)."""
        raw = bytes.fromhex(task_id)
        for node in await self.queries.fan_out("list_tasks"):
            for proc in node["processes"]:
                for t in proc["tasks"]:
                    if t["task_id"] != raw:
                        continue
                    if t["state"] in (FINISHED, FAILED):
                        raise ValueError(f"task {task_id} has already ended ({t['state']})")
                    await self.queries.ask_node(node["node_id"], "cancel_owned_task", {
                        "owner_id": proc["worker_id"], "task_id": raw, "force": force})
                    return
        raise LookupError(f"no running or pending task {task_id} in this cluster")

    def actors(self) -> list[dict]:
        return [rows._actor_row(a) for a in self.queries.actor_list()]

    async def workers(self) -> list[dict]:
        return rows.worker_rows(await self.queries.fan_out("node_info"),
                                await self.queries.fan_out("list_logs"), self.queries.job_list(),
                                await self.queries.task_answers({"limit": 0}))

    def jobs(self) -> list[dict]:
        return [rows.job_row(j) for j in self.queries.job_list()]

    def placement_groups(self) -> list[dict]:
        return [rows._pg_row(g) for g in self.queries.pg_list()]

    async def objects(self) -> dict:
        nodes = await self.queries.fan_out("memory_summary")
        return {"nodes": [{"node_id": n["node_id"].hex(), "ip": n["ip"],
                           "store": dict(n["store"])} for n in nodes],
                "objects": rows.object_rows(nodes)}

    async def timeline(self) -> list[dict]:
        s = self.queries
        return timeline.from_answers(
            await s.task_answers(), s.node_list(),
            s.actor_list(),
            await s.fan_out("list_logs"))

    # -- logs -----------------------------------------------------------------------------
    async def logs(self) -> list[dict]:
        return [{"node_id": n["node_id"].hex(), "ip": n["ip"], "logs": n["logs"]}
                for n in await self.queries.fan_out("list_logs")]

    async def read_log(self, node_id: bytes, body: dict) -> dict:
        return await self.queries.ask_node(node_id, "read_log", body)

    async def app_metrics(self) -> list[dict]:
        """``shoal.util.metrics`` values of every live process, merged."""
        snaps = [p["metrics"] for n in await self.queries.fan_out("app_metrics")
                 for p in n["processes"]]
        return app_metrics.merge(snaps)

    # -- the overview ---------------------------------------------------------------------
    async def actors_with_calls(self) -> list[dict]:
        """The actors, each with its calls by state (``calls``: ``total`` and per state)."""
        calls = (await self.queries.task_counts())["actor_calls"]
        out = self.actors()
        for a in out:
            by_state = calls.get(bytes.fromhex(a["actor_id"]), {})
            a["calls"] = {"total": sum(by_state.values()), **by_state}
        return out

    async def summary(self, nodes: list[dict] | None = None) -> dict:
        """What the overview shows, in one answer: cluster totals, task counts by state,
        actors by state, jobs, and each live node's use (``nodes``: already gathered)."""
        if nodes is None:
            nodes = await self.nodes()
        counts = dict.fromkeys(TASK_STATES, 0)
        task_counts = await self.queries.task_counts()
        counts.update(task_counts["counts"])
        actors: dict[str, int] = {}
        for a in self.actors():
            actors[a["state"]] = actors.get(a["state"], 0) + 1
        total: dict[str, float] = {}
        avail: dict[str, float] = {}
        store = {"capacity": 0, "used": 0, "spilled": 0, "num_objects": 0}
        for n in nodes:
            if n["state"] != "ALIVE":
                continue
            for k, v in n["resources_total"].items():
                total[k] = total.get(k, 0) + v
            for k, v in n["resources_available"].items():
                avail[k] = avail.get(k, 0) + v
            for k in store:
                store[k] += (n["object_store"] or {}).get(k, 0)
        jobs = self.jobs()
        return {
            "time": time.time(),
            "nodes": {"alive": sum(n["state"] == "ALIVE" for n in nodes),
                      "dead": sum(n["state"] != "ALIVE" for n in nodes)},
            "resources_total": _plain(total), "resources_available": _plain(avail),
            "object_store": store, "tasks": counts,
            "tasks_pending": counts[PENDING_ARGS] + counts[PENDING_NODE],
            "tasks_running": counts[RUNNING], "actors": actors,
            "task_records_dropped": task_counts["dropped"],
            "jobs": {"running": sum(j["status"] == "RUNNING" for j in jobs),
                     "finished": sum(j["status"] != "RUNNING" for j in jobs)},
            "node_list": [{k: n[k] for k in ("node_id", "node_ip", "state", "is_head_node",
                                             "machine", "object_store", "resources_total",
                                             "resources_available")} for n in nodes],
        }


def _plain(res: dict) -> dict:
    """Resources without the per-node and placement-group entries."""
    return {k: v for k, v in res.items() if not k.startswith("node:") and "_group_" not in k}

