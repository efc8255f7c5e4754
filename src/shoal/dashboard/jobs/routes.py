"""The Jobs REST API in Ray's paths and answer shapes (``ray job ...``, Ray's and shoal's
``JobSubmissionClient``), over :class:`JobManager`:

| route | answer |
|---|---|
| ``POST /api/jobs/`` | ``{"job_id", "submission_id"}``; 400 with the reason for a bad request |
| ``GET /api/jobs/`` | every submitted job, then every driver not started by one (``JobDetails``) |
| ``GET /api/jobs/{id}`` | one job by submission id or driver job id; 404 |
| ``POST /api/jobs/{id}/stop`` | ``{"stopped": bool}`` |
| ``DELETE /api/jobs/{id}`` | ``{"deleted": bool}``; 400 while it runs |
| ``GET /api/jobs/{id}/logs`` | ``{"logs": str}`` |
| ``GET /api/jobs/{id}/logs/tail`` | a websocket: the log in text messages, closed at the job's end |
| ``GET|PUT /api/packages/gcs/{name}`` | 200 if a package is there / store one (working_dir uploads) |

Errors are plain text with a status, as Ray's server answers (its SDK shows the text). Every
route but the GETs needs the cluster token (:mod:`shoal.dashboard.auth`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

from aiohttp import web

from ..._private.node.runtime_envs import packages_dir
from ..._private.state import schema
from ..._private.wire import packages
from ...job_submission.models import JobSubmitRequest, details_json
from .manager import JobError, JobManager


def _drivers(data) -> list[dict]:
    return [schema.shape(j, "jobs", True) for j in data.jobs()]


def all_jobs(manager: JobManager | None, data) -> list[dict]:
    """Every submitted job (with its driver's ids once it started one), then every driver
    not started by a submission: ``GET /api/jobs/``'s answer, and the dashboard's page."""
    drivers = _drivers(data)
    if manager is None:
        return drivers
    subs = {j["submission_id"]: j for j in drivers if j.get("submission_id")}
    out = [details_json(sid, info, subs.get(sid)) for sid, info in manager.records.items()]
    return out + [j for j in drivers if j.get("submission_id") not in manager.records]


def add_routes(router, manager: JobManager, data) -> None:
    def text(msg: str, status: int) -> web.Response:
        return web.Response(text=msg, status=status)

    def as_json(obj, status: int = 200) -> web.Response:
        return web.Response(text=json.dumps(obj), status=status, content_type="application/json")

    def find(want: str):
        """(submission id, None) or (None, a driver's row); (None, None) if unknown."""
        if want in manager.records:
            return want, None
        for j in _drivers(data):
            if want == j["job_id"]:
                if j.get("submission_id") in manager.records:
                    return j["submission_id"], None
                return None, j
        return None, None

    def by_submission() -> dict:
        return {j["submission_id"]: j for j in _drivers(data) if j.get("submission_id")}

    async def submit(request):
        try:
            body = await request.json()
        except ValueError as e:
            return text(f"the request body is not JSON: {e}", 400)
        if not isinstance(body, dict):
            return text("the request body must be a JSON object", 400)
        try:
            req = JobSubmitRequest(**body)
            sid = manager.submit(req)
        except (TypeError, ValueError) as e:  # JobError is a ValueError
            return text(str(e), 400)
        return as_json({"job_id": sid, "submission_id": sid})

    async def list_jobs(request):
        return as_json(all_jobs(manager, data))

    async def get_job(request):
        sid, driver = find(request.match_info["job_id"])
        if sid is not None:
            return as_json(details_json(sid, manager.records[sid], by_submission().get(sid)))
        if driver is not None:
            return as_json(driver)
        return text(f"Job {request.match_info['job_id']} does not exist", 404)

    def submission_or_error(request):
        want = request.match_info["job_id"]
        sid, driver = find(want)
        if sid is None:
            if driver is not None:
                return None, text("Can only operate on submission type jobs", 400)
            return None, text(f"Job {want} does not exist", 404)
        return sid, None

    async def stop(request):
        sid, err = submission_or_error(request)
        return err or as_json({"stopped": manager.stop(sid)})

    async def delete(request):
        sid, err = submission_or_error(request)
        if err:
            return err
        try:
            return as_json({"deleted": manager.delete(sid)})
        except JobError as e:
            return text(str(e), 400)

    async def logs(request):
        sid, err = submission_or_error(request)
        return err or as_json({"logs": manager.logs(sid)})

    async def tail(request):
        sid, err = submission_or_error(request)
        if err:
            return err
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        async for chunk in manager.follow(sid):
            if ws.closed:
                break
            await ws.send_str(chunk)
        await ws.close()
        return ws

    def package_path(request) -> str | None:
        if request.match_info["protocol"] != packages.PROTOCOL:
            return None
        name = request.match_info["name"]
        if not packages.NAME_RE.match(name):
            return None
        return os.path.join(packages_dir(manager.session_dir), name)

    async def get_package(request):
        path = package_path(request)
        if path is None or not os.path.exists(path):
            return text(f"Package {request.match_info['protocol']}://"
                        f"{request.match_info['name']} does not exist", 404)
        return web.Response()

    async def put_package(request):
        path = package_path(request)
        if path is None:
            return text("a package is named gcs://_ray_pkg_<hash>.zip", 400)
        if os.path.exists(path):
            return web.Response()
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=os.path.dirname(path))
        try:
            size = 0
            with os.fdopen(fd, "wb") as f:
                async for chunk in request.content.iter_chunked(1 << 20):
                    size += len(chunk)
                    if size > packages.MAX_PACKAGE_BYTES:
                        return text(f"the package is larger than the limit of "
                                    f"{packages.MAX_PACKAGE_BYTES >> 20} MiB", 413)
                    f.write(chunk)
            os.replace(tmp, path)
            tmp = None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return web.Response()

    router.add_post("/api/jobs/", submit)
    router.add_get("/api/jobs/", list_jobs)
    router.add_get("/api/jobs/{job_id}", get_job)
    router.add_post("/api/jobs/{job_id}/stop", stop)
    router.add_delete("/api/jobs/{job_id}", delete)
    router.add_get("/api/jobs/{job_id}/logs", logs)
    router.add_get("/api/jobs/{job_id}/logs/tail", tail)
    router.add_get("/api/packages/{protocol}/{name}", get_package)
    router.add_put("/api/packages/{protocol}/{name}", put_package)
