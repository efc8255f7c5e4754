"""Ray's own HTTP paths on the dashboard, for programs and tools written against Ray's:
the Jobs REST API's listing (``GET /api/jobs/``, ``GET /api/jobs/<id>``; jobs here are
drivers, there is no job submission) and the state API's endpoints
(``GET /api/v0/<resource>`` with ``limit``, ``detail`` and ``filter_keys``/
``filter_predicates``/``filter_values``; ``GET /api/v0/tasks/timeline``), in Ray's answer
shapes. The dashboard's own API (``/api/...``, docs/dashboard.md) is unchanged."""

from __future__ import annotations

from aiohttp import web

from .._private import state_rows as rows

_FIELDS = {"tasks": rows._TASK_FIELDS, "actors": rows._ACTOR_FIELDS,
           "nodes": rows._NODE_FIELDS, "objects": rows._OBJECT_FIELDS,
           "placement_groups": rows._PG_FIELDS, "jobs": rows._JOB_FIELDS,
           "workers": rows._WORKER_FIELDS}


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

    async def state_list(request):
        resource = request.match_info["resource"]
        if resource not in _FIELDS:
            raise web.HTTPNotFound()
        q = request.query
        keys, preds, values = (q.getall(k, []) for k in
                               ("filter_keys", "filter_predicates", "filter_values"))
        if not len(keys) == len(preds) == len(values):
            return json_response({"result": False, "msg": "filter_keys, filter_predicates "
                                  "and filter_values must come in threes", "data": {}}, 400)
        found = await all_rows(resource)
        limit = int(q.get("limit", "100"))
        detail = q.get("detail", "false").lower() in ("1", "true")
        try:
            selected = rows._select(found, list(zip(keys, preds, values, strict=True)),
                                    1 << 30, None if detail else _FIELDS[resource])
        except ValueError as e:
            return json_response({"result": False, "msg": str(e), "data": {}}, 400)
        return json_response({"result": True, "msg": "", "data": {"result": {
            "total": len(found), "num_after_truncation": len(found),
            "num_filtered": len(selected), "result": selected[:limit],
            "partial_failure_warning": "", "warnings": None}}})

    async def timeline(request):
        return json_response(await data.timeline())

    async def jobs(request):
        return json_response(data.jobs())

    async def job(request):
        want = request.match_info["job_id"]
        for j in data.jobs():
            if want in (j["job_id"], j["submission_id"]):
                return json_response(j)
        raise LookupError(f"no job {want} in this cluster")

    router.add_get("/api/v0/tasks/timeline", timeline)
    router.add_get("/api/v0/{resource}", state_list)
    router.add_get("/api/jobs/", jobs)
    router.add_get("/api/jobs/{job_id}", job)
