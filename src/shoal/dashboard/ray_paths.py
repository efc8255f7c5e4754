"""Ray's own HTTP paths on the dashboard, for Ray's CLI and SDK and programs written against
them (``ray list``/``ray get``/``ray summary --address http://...``, ``JobSubmissionClient``):
the Jobs REST API's ``GET /api/version`` (the jobs themselves are :mod:`.jobs.routes`') and
the state API's endpoints (``GET /api/v0/<resource>`` with ``limit``,
``detail`` and ``filter_keys``/``filter_predicates``/``filter_values``;
``GET /api/v0/<resource>/summarize``; ``GET /api/v0/tasks/timeline``), in Ray's answer
shapes and with Ray's columns (``_private/state_schema``). The dashboard's own API
(``/api/...``, docs/dashboard.md) is unchanged."""

from __future__ import annotations

import os

from aiohttp import web

from .. import __version__
from .._private.state import rows as rows
from .._private.state import schema as schema

# The Ray release whose interfaces shoal answers for (``/api/version``'s ``ray_version``:
# Ray's clients refuse a cluster older than the release they need).
RAY_VERSION = "2.60.0"
JOBS_API_VERSION = "4"  # Ray's CURRENT_VERSION of the Jobs REST API
MAX_LIMIT = 10_000  # Ray's RAY_MAX_LIMIT_FROM_API_SERVER

_SUMMARIES = {"tasks": rows.task_summary, "actors": rows.actor_summary,
              "objects": rows.object_summary}


def add_routes(router, data, json_response) -> None:
    async def all_rows(resource: str) -> list[dict]:
        if resource == "tasks":
            return await data.tasks()
        if resource == "actors":
            return data.actors()
        if resource == "nodes":
            return await data.nodes()
        if resource == "objects":
            return (await data.objects())["objects"]
        if resource == "placement_groups":
            return data.placement_groups()
        if resource == "jobs":
            return data.jobs()
        return await data.workers()

    def reply(result, status: int = 200, msg: str = ""):
        # Ray's rest_response: {"result": ok, "msg": ..., "data": {"result": ...}}
        return json_response({"result": status == 200, "msg": msg,
                              "data": {"result": result} if result is not None else {}},
                             status)

    def filters(q) -> list[tuple]:
        keys, preds, values = (q.getall(k, []) for k in
                               ("filter_keys", "filter_predicates", "filter_values"))
        if not len(keys) == len(preds) == len(values):
            raise ValueError("filter_keys, filter_predicates and filter_values must come "
                             "in threes")
        return [(k.lower(), p, v) for k, p, v in zip(keys, preds, values, strict=True)]

    async def state_list(request):
        resource = request.match_info["resource"]
        if resource not in schema.SCHEMAS:
            raise web.HTTPNotFound()
        q = request.query
        try:
            raw = q.get("limit", "100")
            try:
                limit = int(raw)
            except ValueError:
                raise ValueError(f"limit must be an integer, got {raw!r}") from None
            if limit > MAX_LIMIT:
                raise ValueError(f"Given limit {limit} exceeds the supported limit "
                                 f"{MAX_LIMIT}. Use a lower limit.")
            wanted = filters(q)
            found = await all_rows(resource)
            selected = rows._select(found, wanted, 1 << 30)
        except ValueError as e:
            return reply(None, 400, str(e))
        detail = q.get("detail", "false").lower() in ("1", "true")
        return reply({
            "total": len(found), "num_after_truncation": len(found),
            "num_filtered": len(selected),
            "result": [schema.shape(r, resource, detail) for r in selected[:max(limit, 0)]],
            "partial_failure_warning": "", "warnings": None})

    async def summarize(request):
        resource = request.match_info["resource"]
        if resource not in _SUMMARIES:
            raise web.HTTPNotFound()
        try:
            found = rows._select(await all_rows(resource), filters(request.query), 1 << 30)
        except ValueError as e:
            return reply(None, 400, str(e))
        return reply({"total": len(found), "num_after_truncation": len(found),
                      "num_filtered": len(found),
                      "result": {"node_id_to_summary": {"cluster": _SUMMARIES[resource](
                          found)}},
                      "partial_failure_warning": "", "warnings": None})

    async def timeline(request):
        return json_response(await data.timeline())

    async def version(request):
        session = data.queries.db_path
        return json_response({"version": JOBS_API_VERSION, "ray_version": RAY_VERSION,
                              "ray_commit": "", "session_name": _session_name(session),
                              "shoal_version": __version__})

    router.add_get("/api/version", version)
    router.add_get("/api/v0/tasks/timeline", timeline)
    router.add_get("/api/v0/{resource}/summarize", summarize)
    router.add_get("/api/v0/{resource}", state_list)


def _session_name(path: str) -> str:
    """``session_<time>_<pid>_<tag>`` of the head, as Ray's session names."""
    while path and not os.path.basename(path).startswith("session_"):
        parent = os.path.dirname(path)
        if parent == path:
            return ""
        path = parent
    return os.path.basename(path)
