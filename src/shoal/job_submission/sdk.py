"""``JobSubmissionClient``: Ray's Jobs SDK over the head's REST API (stdlib HTTP; aiohttp for
the log websocket), with Ray's methods, arguments, return values and errors.

Where it finds the cluster (as Ray's): ``address`` if given, overridden by
``RAY_API_SERVER_ADDRESS`` or ``RAY_ADDRESS``; an ``http(s)://`` URL is the dashboard;
``HOST:PORT`` of a head running on this machine, ``"auto"`` or nothing mean that head's
dashboard. The token, which submitting, stopping and deleting need: an ``Authorization``
header in ``headers=`` (Ray's way), else ``SHOAL_TOKEN`` (or Ray's ``RAY_AUTH_TOKEN``), else,
for a head of this machine,
the token in its session (readable by its user only).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

from .. import _hooks
from ..exceptions import AuthenticationError
from .models import (
    JobDetails,
    JobStatus,
    JobSubmitRequest,
)

log = logging.getLogger(__name__)
TOKEN_ENV = "SHOAL_TOKEN"


class _Response:
    def __init__(self, status: int, body: bytes) -> None:
        self.status_code = status
        self.content = body

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self):
        return json.loads(self.content)


def _norm(url: str) -> str:
    return url.rstrip("/").replace("://localhost:", "://127.0.0.1:")


def resolve(address: str | None, headers: dict) -> tuple[str, dict]:
    """``(dashboard URL, headers with the token)`` for ``address``."""
    address = (os.environ.get("RAY_API_SERVER_ADDRESS") or os.environ.get("RAY_ADDRESS")
               or address)
    local = _hooks.local_dashboards()
    url = None
    if address in (None, "", "auto"):
        if not local:
            raise ConnectionError("Could not find a running shoal cluster on this machine; "
                                  "pass the dashboard's address, e.g. "
                                  "JobSubmissionClient('http://HEAD:8265').")
        url = local[0][0]
    elif address.startswith(("http://", "https://")):
        url = address
    elif "://" in address:
        raise ValueError(f"address {address!r}: give the dashboard's http:// URL (ray:// "
                         "client addresses are not used for jobs)")
    else:
        for u, head, _t in local:
            if _norm(head.partition("|")[0].removeprefix("tcp:")) == _norm(address):
                url = u
                break
        url = url or f"http://{address}"
    url = url.rstrip("/")
    headers = dict(headers)
    if not any(k.lower() == "authorization" for k in headers):
        token = (os.environ.get(TOKEN_ENV) or os.environ.get("RAY_AUTH_TOKEN") or "").strip()
        if not token:
            token = next((t for u, _h, t in local if _norm(u) == _norm(url)), "")
        if token:
            headers["Authorization"] = f"Bearer {token}"
    return url, headers


class JobSubmissionClient:
    """Submit and follow jobs on a cluster through its dashboard's HTTP API."""

    def __init__(self, address: str | None = None, create_cluster_if_needed: bool = False,
                 cookies: dict | None = None, metadata: dict | None = None,
                 headers: dict | None = None, verify: str | bool | None = True, **kwargs):
        for name, v in (("cookies", cookies), ("metadata", metadata), ("headers", headers)):
            if v is not None and not isinstance(v, dict):
                raise TypeError(f"{name} must be a dict, got {type(v)}")
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a string, got {type(address)}")
        if not isinstance(create_cluster_if_needed, bool):
            raise TypeError("create_cluster_if_needed must be a bool, got "
                            f"{type(create_cluster_if_needed)}")
        if not isinstance(verify, (str, bool)):
            raise TypeError(f"verify must be a str or bool, got {type(verify)}")
        self._address, self._headers = resolve(address, headers or {})
        self._cookies = dict(cookies or {})
        self._default_metadata = dict(metadata or {})
        self._ssl = _ssl_context(verify) if self._address.startswith("https") else None
        self._server_version = None
        self._check_connection_and_version()

    # -- HTTP -------------------------------------------------------------------------------
    def _do_request(self, method: str, endpoint: str, *, data: bytes | None = None,
                    json_data: Any = None, timeout: float = 60) -> _Response:
        headers = dict(self._headers)
        if self._cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self._cookies.items())
        if json_data is not None:
            data = json.dumps(json_data).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self._address + endpoint, data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._ssl) as r:
                resp = _Response(r.status, r.read())
        except urllib.error.HTTPError as e:
            resp = _Response(e.code, e.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise ConnectionError(f"Failed to connect to Ray at address: {self._address} "
                                  f"({getattr(e, 'reason', e)}).") from None
        if resp.status_code in (401, 403):
            raise AuthenticationError(
                f"Request to {self._address}{endpoint} was refused ({resp.status_code}): "
                f"{_reason(resp)}. Submitting, stopping and deleting jobs need the cluster "
                f"token: pass headers={{'Authorization': 'Bearer <token>'}} or set "
                f"{TOKEN_ENV}.")
        return resp

    def _raise_error(self, r: _Response):
        raise RuntimeError(f"Request failed with status code {r.status_code}: {r.text}.")

    def _check_connection_and_version(self, min_version: str = "1.9",
                                      version_error_message: str | None = None) -> None:
        r = self._do_request("GET", "/api/version")
        if r.status_code == 404:
            raise RuntimeError("Version check returned 404. " + (
                version_error_message or "Is this a shoal or Ray dashboard?"))
        if r.status_code != 200:
            self._raise_error(r)
        self._server_version = r.json().get("ray_version")

    def get_version(self) -> str:
        r = self._do_request("GET", "/api/version")
        if r.status_code != 200:
            self._raise_error(r)
        return r.json().get("version")

    def get_address(self) -> str:
        return self._address

    # -- packages -----------------------------------------------------------------------------
    def _upload(self, path: str, excludes, include_parent_dir: bool) -> str:
        uri, data = _hooks.build_package(path, excludes, include_parent_dir)
        name = uri.partition("://")[2]
        r = self._do_request("GET", f"/api/packages/gcs/{name}")
        if r.status_code == 404:
            r = self._do_request("PUT", f"/api/packages/gcs/{name}", data=data, timeout=600)
            if r.status_code != 200:
                self._raise_error(r)
        elif r.status_code != 200:
            self._raise_error(r)
        return uri

    def _upload_local_paths(self, runtime_env: dict) -> None:
        excludes = runtime_env.get("excludes")
        wd = runtime_env.get("working_dir")
        if isinstance(wd, str) and "://" not in wd:
            runtime_env["working_dir"] = self._upload(wd, excludes, False)
        mods = runtime_env.get("py_modules")
        if mods:
            runtime_env["py_modules"] = [
                self._upload(m, excludes, True) if isinstance(m, str) and "://" not in m
                else m for m in mods]
        runtime_env.pop("excludes", None)

    # -- jobs -----------------------------------------------------------------------------
    def submit_job(self, *, entrypoint: str, job_id: str | None = None,
                   runtime_env: dict | None = None, metadata: dict | None = None,
                   submission_id: str | None = None,
                   entrypoint_num_cpus: float | None = None,
                   entrypoint_num_gpus: float | None = None,
                   entrypoint_memory: int | None = None,
                   entrypoint_resources: dict | None = None,
                   entrypoint_label_selector: dict | None = None) -> str:
        """Submit a job; returns its submission id (``raysubmit_...`` unless given)."""
        if job_id:
            log.warning("job_id kwarg is deprecated. Please use submission_id instead.")
        runtime_env = copy.deepcopy(runtime_env or {})
        if not isinstance(runtime_env, dict):
            raise TypeError(f"runtime_env must be a dict, got {type(runtime_env)}")
        metadata = {**(metadata or {}), **self._default_metadata}
        self._upload_local_paths(runtime_env)
        _hooks.validate_runtime_env(runtime_env)
        req = JobSubmitRequest(
            entrypoint=entrypoint, submission_id=submission_id or job_id,
            runtime_env=runtime_env, metadata=metadata,
            entrypoint_num_cpus=entrypoint_num_cpus, entrypoint_num_gpus=entrypoint_num_gpus,
            entrypoint_memory=entrypoint_memory, entrypoint_resources=entrypoint_resources,
            entrypoint_label_selector=entrypoint_label_selector)
        body = {k: v for k, v in req.__dict__.items() if v is not None}
        r = self._do_request("POST", "/api/jobs/", json_data=body)
        if r.status_code != 200:
            self._raise_error(r)
        return r.json()["submission_id"]

    def stop_job(self, job_id: str) -> bool:
        """Ask the job to stop (SIGTERM, then SIGKILL); True if it was running."""
        r = self._do_request("POST", f"/api/jobs/{job_id}/stop")
        if r.status_code != 200:
            self._raise_error(r)
        return bool(r.json()["stopped"])

    def delete_job(self, job_id: str) -> bool:
        """Forget a finished job (its log file stays)."""
        r = self._do_request("DELETE", f"/api/jobs/{job_id}")
        if r.status_code != 200:
            self._raise_error(r)
        return bool(r.json()["deleted"])

    def get_job_info(self, job_id: str) -> JobDetails:
        r = self._do_request("GET", f"/api/jobs/{job_id}")
        if r.status_code != 200:
            self._raise_error(r)
        return JobDetails(**r.json())

    def list_jobs(self) -> list[JobDetails]:
        r = self._do_request("GET", "/api/jobs/")
        if r.status_code != 200:
            self._raise_error(r)
        return [JobDetails(**j) for j in r.json()]

    def get_job_status(self, job_id: str) -> JobStatus:
        return self.get_job_info(job_id).status

    def get_job_logs(self, job_id: str) -> str:
        r = self._do_request("GET", f"/api/jobs/{job_id}/logs")
        if r.status_code != 200:
            self._raise_error(r)
        return r.json()["logs"]

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        """The job's output as it is written, until the job ends."""
        import aiohttp

        async with aiohttp.ClientSession(cookies=self._cookies, headers=self._headers) as s:
            try:
                ws = await s.ws_connect(f"{self._address}/api/jobs/{job_id}/logs/tail",
                                        ssl=self._ssl if self._ssl is not None else True)
            except aiohttp.WSServerHandshakeError as e:
                raise RuntimeError(f"Request failed with status code {e.status}: cannot "
                                   f"follow the logs of job {job_id}.") from None
            while True:
                msg = await ws.receive()
                if msg.type == aiohttp.WSMsgType.TEXT:
                    yield msg.data
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                  aiohttp.WSMsgType.CLOSING):
                    if ws.close_code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE:
                        raise RuntimeError("WebSocket connection closed unexpectedly with "
                                           f"close code {ws.close_code}")
                    break
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    raise RuntimeError(f"WebSocket error for job {job_id}: {ws.exception()}")


def _reason(r: _Response) -> str:
    try:
        return r.json().get("error", r.text)
    except (ValueError, AttributeError):
        return r.text


def _ssl_context(verify):
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if isinstance(verify, str):
        return ssl.create_default_context(capath=verify) if os.path.isdir(verify) \
            else ssl.create_default_context(cafile=verify)
    return ssl.create_default_context()
