"""``shoal logs``, ``shoal timeline``, ``shoal list jobs`` and the task counts of
``shoal status``, against a head started by ``shoal start --head`` and a driver that keeps
running (task records live with the driver that submitted the tasks)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from tests.conftest import wait_for_condition

DRIVER = r"""
import json, sys, shoal
shoal.init(address="auto")

@shoal.remote
def shout(i):
    print("shout-line", i, flush=True)
    return i

@shoal.remote(max_retries=0)
def fails():
    raise KeyError("missing-key-5")

@shoal.remote
class Echo:
    def say(self, w):
        print("echo-line", w, flush=True)
        return w

assert shoal.get([shout.remote(i) for i in range(3)]) == [0, 1, 2]
try:
    shoal.get(fails.remote())
except KeyError:
    pass
e = Echo.remote()
shoal.get(e.say.remote("hello"))
from shoal.util import state
rows = state.list_tasks(detail=True, filters=[("name", "=", "shout")])
print(json.dumps({"task_id": rows[0]["task_id"], "actor_id": e._actor_id.hex()}), flush=True)
# Keep the job (and its task records) until the test is done; each line read is said by
# the actor (so that a test can watch it appear in the actor's log).
for line in sys.stdin:
    shoal.get(e.say.remote(line.strip()))
"""


@pytest.fixture
def job(cli, head):
    proc = subprocess.Popen([sys.executable, "-c", DRIVER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli.env)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        while not line.startswith("{"):
            line = proc.stdout.readline()
        yield {**json.loads(line), "stdin": proc.stdin}
    finally:
        proc.stdin.close()
        proc.wait(30)


def test_logs_by_task_actor_pid_and_name(cli, head, job):
    r = cli.run("logs")
    assert r.returncode == 0, r.stderr
    assert "head.log" in r.stdout and "worker-" in r.stdout
    r = cli.run("logs", "--task-id", job["task_id"])
    assert r.returncode == 0 and "shout-line 0" in r.stdout, r.stderr
    r = cli.run("logs", "--actor-id", job["actor_id"])
    assert r.returncode == 0 and "echo-line hello" in r.stdout, r.stderr
    name = next(line.strip() for line in cli.run("logs").stdout.splitlines()
                if line.strip().startswith("worker-"))
    pid = int(name.rsplit("-", 1)[1].split(".")[0])
    by_name = cli.run("logs", name)
    by_pid = cli.run("logs", "--pid", str(pid))
    assert by_name.returncode == 0 and by_name.stdout == by_pid.stdout
    r = cli.run("logs", "--node-ip", "127.0.0.1", "--tail", "1")
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 1
    bad = cli.run("logs", "../../etc/passwd")
    assert bad.returncode == 1 and "no log file matches" in bad.stderr
    missing = cli.run("logs", "--task-id", "ab" * 24)
    assert missing.returncode == 1 and "no task" in missing.stderr
    # Ray's forms: `logs actor --id`, `logs task --id`, `logs worker --pid`, `logs cluster`.
    r = cli.run("logs", "actor", "--id", job["actor_id"])
    assert r.returncode == 0 and "echo-line hello" in r.stdout, r.stderr
    r = cli.run("logs", "task", "--id", job["task_id"])
    assert r.returncode == 0 and "shout-line 0" in r.stdout, r.stderr
    assert cli.run("logs", "worker", "--pid", str(pid)).stdout == by_pid.stdout
    listed = cli.run("logs", "cluster", "worker-*")
    assert listed.returncode == 0 and name in listed.stdout and "head.log" not in listed.stdout
    assert cli.run("logs", "cluster", name).stdout == by_name.stdout
    usage = cli.run("logs", "actor")
    assert usage.returncode == 2 and "--id" in usage.stderr


def test_logs_follow_prints_new_lines(cli, head, job):
    follower = subprocess.Popen([sys.executable, "-m", "shoal.cli", "logs", "--actor-id",
                                 job["actor_id"], "--follow", "--tail", "1"],
                                stdout=subprocess.PIPE, text=True, env=cli.env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(follower.stdout), daemon=True)
    reader.start()
    try:
        # The last line already written comes first: the follower is reading.
        wait_for_condition(lambda: any("echo-line hello" in x for x in lines), timeout=20)
        job["stdin"].write("followed-line\n")
        job["stdin"].flush()
        wait_for_condition(lambda: any("echo-line followed-line" in x for x in lines),
                           timeout=20)
    finally:
        follower.terminate()
        follower.wait(10)
        reader.join(10)


def test_timeline_list_jobs_and_status_counts(cli, head, job, tmp_path):
    out = tmp_path / "trace.json"
    r = cli.run("timeline", "-o", str(out))
    assert r.returncode == 0 and str(out) in r.stdout, r.stderr
    events = json.loads(out.read_text())
    names = [e["name"] for e in events if e["ph"] == "X"]
    assert names.count("shout") == 3 and "fails" in names and "Echo.say" in names
    r = cli.run("list", "workers", "--format", "json")
    workers = json.loads(r.stdout)
    assert any(w["worker_type"] == "WORKER" and w["is_alive"] for w in workers)
    assert any(w["worker_type"] == "DRIVER" and w["is_alive"] for w in workers)
    r = cli.run("list", "jobs", "--format", "json")
    jobs = json.loads(r.stdout)
    assert any(j["status"] == "RUNNING" and j["type"] == "DRIVER" for j in jobs)
    r = cli.run("status")
    assert r.returncode == 0
    tasks = r.stdout.split("Tasks", 1)[1]
    assert " 0 running" in tasks and "0 pending" in tasks and "1 failed" in tasks


@pytest.fixture
def lan_head(cli):
    """A head whose dashboard is bound to a non-loopback address of this machine."""
    from tests.e2e.conftest import _free_port, lan_ip

    ip = lan_ip()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    ips = [ip]
    port, dport = _free_port(), _free_port()
    r = cli.run("start", "--head", "--port", str(port), "--num-cpus", "1",
                "--dashboard-host", ips[0], "--dashboard-port", str(dport))
    assert r.returncode == 0, r.stderr
    url = f"http://{ips[0]}:{dport}"
    assert url in r.stdout
    (session,) = cli.sessions()
    with open(f"{session}/token") as f:
        token = f.read().strip()
    return {"ip": ips[0], "port": dport, "url": url, "token": token}


def test_non_loopback_dashboard_requires_the_token(lan_head):
    url, token = lan_head["url"], lan_head["token"]

    def status(path, headers=None):
        req = urllib.request.Request(url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    assert status("/api/cluster") == 401
    assert status("/metrics") == 401
    assert status("/api/cluster", {"Authorization": "Bearer wrong"}) == 401
    assert status("/api/cluster", {"Authorization": f"Bearer {token}"}) == 200
    assert status("/metrics", {"Authorization": f"Bearer {token}"}) == 200
    assert status("/login") == 200


def test_a_finished_jobs_tasks_stay_listed(cli, head, tmp_path):
    code = ("import shoal; shoal.init(address='auto')\n"
            "@shoal.remote\ndef gone(i):\n    return i\n"
            "assert shoal.get([gone.remote(i) for i in range(4)]) == [0, 1, 2, 3]\n")
    r = cli.python(code)
    assert r.returncode == 0, r.stderr
    r = cli.run("list", "tasks", "--format", "json", "--filter", "name=gone")
    rows = json.loads(r.stdout)
    assert len(rows) == 4 and {t["state"] for t in rows} == {"FINISHED"}
    out = tmp_path / "trace.json"
    assert cli.run("timeline", "-o", str(out)).returncode == 0
    assert [e["name"] for e in json.loads(out.read_text()) if e["ph"] == "X"].count("gone") == 4
    jobs = json.loads(cli.run("list", "jobs", "--format", "json").stdout)
    assert [j["status"] for j in jobs] == ["SUCCEEDED"]


def test_login_sets_a_cookie_that_opens_a_non_loopback_dashboard(lan_head):
    import http.client

    ip, dport, token = lan_head["ip"], lan_head["port"], lan_head["token"]
    origin = lan_head["url"]

    def request(method, path, body=None, headers=None):
        c = http.client.HTTPConnection(ip, dport, timeout=10)
        try:
            c.request(method, path, body=body, headers=headers or {})
            resp = c.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            c.close()

    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": origin}
    status, headers, _ = request("GET", "/")
    assert status == 302 and headers["Location"] == "/login"
    status, headers, _ = request("POST", "/login", "token=wrong", form)
    assert status == 302 and "failed" in headers["Location"] and "Set-Cookie" not in headers
    status, headers, _ = request("POST", "/login", f"token={token}",
                                 {**form, "Origin": "http://evil.example"})
    assert status == 403  # login CSRF from another site
    status, headers, _ = request("POST", "/login", f"token={token}", form)
    assert status == 302 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    assert token not in cookie  # the cookie is derived from the token, not the token
    status, _, body = request("GET", "/api/cluster", headers={"Cookie": cookie})
    assert status == 200 and json.loads(body)["nodes"]["alive"] == 1
    status, _, _ = request("GET", "/", headers={"Cookie": cookie})
    assert status == 200
    # A state change with the cookie but from another origin is refused.
    status, _, _ = request("POST", "/api/actors/" + "ab" * 16 + "/kill",
                           headers={"Cookie": cookie, "Origin": "http://evil.example"})
    assert status == 403


def test_summary_actors_and_objects(cli, head, job):
    r = cli.run("summary", "actors")
    assert r.returncode == 0, r.stderr
    assert "Total actors: 1" in r.stdout and "Echo" in r.stdout and "ALIVE: 1" in r.stdout
    r = cli.run("summary", "objects")
    assert r.returncode == 0 and "Total objects:" in r.stdout, r.stderr
    data = json.loads(cli.run("summary", "actors", "--format", "json").stdout)
    assert data["cluster"]["summary"]["Echo"]["state_counts"] == {"ALIVE": 1}
