"""The dashboard's routes: pages, the JSON API under ``/api/``, and ``/metrics``."""

from __future__ import annotations

import hmac
import os
import re

from aiohttp import web

from .. import __version__
from .._private.wire.transport import RemoteError
from . import auth, metrics, ray_paths
from .data import ClusterData
from .responses import _HEADERS, _TYPES, STATIC, dumps

_HEX = re.compile(r"^[0-9a-f]+$")
_PAGES = {"index.html", "login.html", "style.css", "ui.js", "pages_cluster.js",
          "pages_work.js", "pages_logs.js", "app.js"}


def build_app(queries, policy: auth.Policy, job_manager=None) -> web.Application:
    """The application; ``job_manager`` (a :class:`.jobs.manager.JobManager`) serves the
    Jobs API."""
    data = ClusterData(queries)

    @web.middleware
    async def guard(request: web.Request, handler):
        headers = {k.lower(): v for k, v in request.headers.items()}
        d = policy.check(request.method, request.path, headers, dict(request.cookies))
        if d.ok:
            resp = await _answer(handler, request)
        elif d.login:
            resp = _redirect("/login")
        else:
            resp = _json({"error": d.reason}, status=d.status)
        for k, v in _HEADERS.items():
            resp.headers.setdefault(k, v)
        return resp

    async def page(request):
        return _static("index.html")

    async def static(request):
        return _static(request.match_info["name"])

    async def login_page(request):
        resp = _static("login.html")
        if request.query.get("failed"):
            # The login page runs no script (app.js needs the token): mark a refused token
            # here, for its style sheet to show the message.
            resp.body = resp.body.replace(b"<body", b'<body data-failed="1"', 1)
        return resp

    async def login(request):
        form = await request.post()
        token = str(form.get("token", "")).strip()
        if not hmac.compare_digest(token.encode(), policy.token.encode()):
            return _redirect("/login?failed=1")
        resp = _redirect("/")
        resp.set_cookie(auth.COOKIE, auth.cookie_value(policy.token), httponly=True,
                        samesite="Strict", path="/")
        return resp

    async def logout(request):
        resp = _redirect("/login")
        resp.del_cookie(auth.COOKIE, path="/")
        return resp

    async def whoami(request):
        headers = {k.lower(): v for k, v in request.headers.items()}
        ok, _ = policy.token_ok(headers, dict(request.cookies))
        return _json({"authenticated": ok, "loopback": policy.loopback,
                      "version": __version__})

    async def cluster(request):
        return _json(await data.summary())

    async def nodes(request):
        return _json({"nodes": await data.nodes()})

    async def tasks(request):
        q = request.query
        limit = _int(q.get("limit", "1000"), "limit")
        state = q["state"].upper() if q.get("state") else None
        if not any(q.get(k) for k in ("name", "job_id", "actor_id", "node_id")):
            # The common case (all tasks, or one state): owners send only their newest
            # ``limit``, and the total comes from their counts.
            rows, total = await data.newest_tasks(limit, state)
            return _json({"total": total, "tasks": rows})
        rows = await data.tasks()
        for key in ("state", "name", "job_id", "actor_id", "node_id"):
            if q.get(key):
                want = state if key == "state" else q[key]
                rows = [r for r in rows if (r.get(key) or "") == want]
        rows.reverse()  # newest first
        return _json({"total": len(rows), "tasks": rows[:limit]})

    async def task(request):
        tid = _hex_id(request.match_info["task_id"], "task_id")
        for r in await data.tasks():
            if r["task_id"] == tid:
                return _json({"task": r})
        raise LookupError(f"no task {tid} is remembered by this cluster")

    async def actors(request):
        rows = await data.actors_with_calls()
        state = request.query.get("state")
        if state:
            rows = [r for r in rows if r["state"] == state.upper()]
        return _json({"actors": rows})

    async def actor(request):
        aid = _hex_id(request.match_info["actor_id"], "actor_id")
        for r in await data.actors_with_calls():
            if r["actor_id"] == aid:
                return _json({"actor": r})
        raise LookupError(f"no actor {aid} in this cluster")

    async def kill_actor(request):
        aid = _hex_id(request.match_info["actor_id"], "actor_id")
        raw = bytes.fromhex(aid)
        if queries.actor(raw) is None:
            raise LookupError(f"no actor {aid} in this cluster")
        no_restart = request.query.get("no_restart", "true").lower() != "false"
        queries.kill_actor(raw, no_restart, "The actor was killed from the dashboard.")
        return _json({"ok": True, "actor_id": aid})

    async def cancel_task(request):
        tid = _hex_id(request.match_info["task_id"], "task_id")
        force = request.query.get("force", "false").lower() == "true"
        try:
            await data.cancel_task(tid, force)
        except ValueError as e:
            return _json({"error": str(e)}, status=409)
        return _json({"ok": True, "task_id": tid})

    async def objects(request):
        return _json(await data.objects())

    async def jobs(request):
        from .jobs.routes import all_jobs

        return _json({"jobs": all_jobs(job_manager, data)})

    async def pgs(request):
        return _json({"placement_groups": data.placement_groups()})

    async def logs(request):
        return _json({"nodes": await data.logs()})

    async def read_log(request):
        q = request.query
        body: dict = {}
        if not q.get("actor_id"):
            node_id = bytes.fromhex(_hex_id(q.get("node_id", ""), "node_id"))
        if q.get("actor_id"):
            aid = bytes.fromhex(_hex_id(q["actor_id"], "actor_id"))
            entry = queries.actor(aid)
            if entry is None or entry["pid"] is None:
                raise LookupError(f"no actor {aid.hex()} with a worker")
            node_id, body["pid"] = entry["node_id"], entry["pid"]
        elif q.get("worker_id"):
            body["worker_id"] = _hex_id(q["worker_id"], "worker_id")
        elif q.get("pid"):
            body["pid"] = _int(q["pid"], "pid")
        else:
            body["node"] = True
        if q.get("offset"):
            body["offset"] = _int(q["offset"], "offset")
        if q.get("tail"):
            body["tail"] = _int(q["tail"], "tail")
        return _json(await data.read_log(node_id, body))

    async def timeline(request):
        resp = _json(await data.timeline())
        if request.query.get("download"):
            resp.headers["Content-Disposition"] = 'attachment; filename="timeline.json"'
        return resp

    async def prometheus(request):
        nodes = await data.nodes()
        text = metrics.render(await data.summary(nodes), nodes, data.actors(),
                              await data.app_metrics())
        return web.Response(text=text, headers={"Content-Type": metrics.CONTENT_TYPE})

    app = web.Application(middlewares=[guard], client_max_size=1 << 16)
    r = app.router
    r.add_get("/", page)
    r.add_get("/static/{name}", static)
    r.add_get("/login", login_page)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/metrics", prometheus)
    r.add_get("/api/whoami", whoami)
    r.add_get("/api/cluster", cluster)
    r.add_get("/api/nodes", nodes)
    r.add_get("/api/tasks", tasks)
    r.add_get("/api/tasks/{task_id}", task)
    r.add_post("/api/tasks/{task_id}/cancel", cancel_task)
    r.add_get("/api/actors", actors)
    r.add_get("/api/actors/{actor_id}", actor)
    r.add_post("/api/actors/{actor_id}/kill", kill_actor)
    r.add_get("/api/objects", objects)
    r.add_get("/api/jobs", jobs)
    r.add_get("/api/placement_groups", pgs)
    r.add_get("/api/logs", logs)
    r.add_get("/api/logs/read", read_log)
    r.add_get("/api/timeline", timeline)
    ray_paths.add_routes(r, data, _json)
    if job_manager is not None:
        from .jobs.routes import add_routes as add_job_routes

        add_job_routes(r, job_manager, data)
    return app


class BadRequest(ValueError):
    pass


async def _answer(handler, request) -> web.StreamResponse:
    """The handler's answer, or a JSON error naming what went wrong."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        return _json({"error": e.reason}, status=e.status)
    except BadRequest as e:
        return _json({"error": str(e)}, status=400)
    except LookupError as e:
        return _json({"error": str(e).strip("'\"")}, status=404)
    except RemoteError as e:
        return _json({"error": str(e)}, status=404)


def _json(obj, status: int = 200) -> web.Response:
    return web.Response(text=dumps(obj), status=status, content_type="application/json")


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


def _static(name: str) -> web.Response:
    if name not in _PAGES:
        raise web.HTTPNotFound()
    with open(os.path.join(STATIC, name), "rb") as f:
        body = f.read()
    return web.Response(body=body, content_type=_TYPES[os.path.splitext(name)[1]])


MAX_ID_HEX = 64  # the longest id shoal makes is 28 bytes; leave room, refuse the absurd


def _hex_id(value: str, what: str) -> str:
    v = (value or "").lower()
    if len(v) > MAX_ID_HEX:
        raise BadRequest(f"{what} must be an id of at most {MAX_ID_HEX} hexadecimal digits, "
                         f"got {len(v)} characters")
    if not _HEX.match(v) or len(v) % 2:
        raise BadRequest(f"{what} must be an id in hexadecimal, got {value!r}")
    return v


def _int(value: str, what: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"{what} must be an integer, got {value!r}") from None
    if n < 0:
        raise BadRequest(f"{what} must not be negative, got {n}")
    return n
