"""The Jobs API end to end: a head started with ``shoal start --head``, jobs submitted from
the command line (``shoal job ...``) and from ``JobSubmissionClient``, over real HTTP.

Waiting is never by sleeping: a job's end is when its log's websocket closes
(``tail_job_logs``); a job that must stay running blocks on a FIFO the test opens."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import psutil
import pytest

from shoal.exceptions import AuthenticationError
from shoal.job_submission import JobStatus, JobSubmissionClient
from tests.conftest import wait_for_condition

PY = sys.executable


def _client(head) -> JobSubmissionClient:
    return JobSubmissionClient(f"http://127.0.0.1:{head['dashboard_port']}",
                               headers={"Authorization": f"Bearer {head['token']}"})


def _tail(client, sid: str, until: str | None = None) -> str:
    """The job's log as followed: to its end, or until ``until`` has appeared."""
    async def go():
        out = ""
        async for chunk in client.tail_job_logs(sid):
            out += chunk
            if until is not None and until in out:
                break
        return out

    return asyncio.run(go())


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


SCRIPT = """
import os, sys
import shoal
shoal.init()

@shoal.remote
def double(x):
    return 2 * x

@shoal.remote
def greeting():
    return os.environ.get("JOB_GREETING")

import helper
print("result", shoal.get([double.remote(i) for i in range(4)]), helper.VALUE,
      os.environ["JOB_GREETING"], flush=True)
print("task sees", shoal.get(greeting.remote()), flush=True)
print("job", shoal.get_runtime_context().get_job_id(), "cwd", os.path.basename(os.getcwd()))
sys.exit(int(os.environ.get("EXIT_CODE", "0")))
"""


@pytest.fixture
def workdir(tmp_path):
    d = tmp_path / "proj"
    d.mkdir()
    (d / "main.py").write_text(SCRIPT)
    (d / "helper.py").write_text("VALUE = 'from-helper'\n")
    (d / "big.log").write_text("x" * 1000)
    return d


def test_cli_submit_with_a_working_dir_follows_the_log_and_links_the_driver(cli, head, workdir):
    env_json = json.dumps({"env_vars": {"JOB_GREETING": "hello"}, "excludes": ["*.log"]})
    r = cli.run("job", "submit", "--address", f"http://127.0.0.1:{head['dashboard_port']}",
                "--working-dir", str(workdir), "--runtime-env-json", env_json,
                "--submission-id", "cli-job-1", "--", "python", "main.py", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Job 'cli-job-1' submitted successfully" in r.stdout
    assert "result [0, 2, 4, 6] from-helper hello" in r.stdout
    assert "task sees hello" in r.stdout  # the job's env_vars reach its tasks
    assert "Job 'cli-job-1' succeeded" in r.stdout
    client = _client(head)
    info = client.get_job_info("cli-job-1")
    assert info.status == JobStatus.SUCCEEDED and info.driver_exit_code == 0
    assert info.type.value == "SUBMISSION" and info.entrypoint == "python main.py"
    # The driver the entrypoint started is this job's: its job id finds the same record.
    assert info.job_id and info.driver_info.id == info.job_id
    assert f"job {info.job_id}" in client.get_job_logs("cli-job-1")
    assert client.get_job_info(info.job_id).submission_id == "cli-job-1"
    # The working_dir went up as a package, with the excluded file left out.
    uri = info.runtime_env["working_dir"]
    assert uri.startswith("gcs://_ray_pkg_")
    unpacked = os.path.join(head["session"], "runtime_resources", "working_dir_files",
                            uri.split("://")[1].removesuffix(".zip"))
    assert sorted(os.listdir(unpacked)) == ["helper.py", "main.py"]
    # Listed once (as a submission), not again as a plain driver.
    r = cli.run("job", "list")
    assert r.returncode == 0 and r.stdout.count("cli-job-1") == 1, r.stdout + r.stderr
    # The dashboard's own jobs page lists it beside the drivers.
    with urllib.request.urlopen(f"http://127.0.0.1:{head['dashboard_port']}/api/jobs",
                                timeout=30) as resp:
        page = json.load(resp)["jobs"]
    assert [(j["submission_id"], j["status"]) for j in page if j["type"] == "SUBMISSION"] \
        == [("cli-job-1", "SUCCEEDED")]
    r = cli.run("job", "status", "cli-job-1")
    assert "succeeded" in r.stdout, r.stdout + r.stderr
    r = cli.run("job", "logs", "cli-job-1")
    assert "result [0, 2, 4, 6]" in r.stdout


def test_a_failing_job_is_failed_with_its_exit_code_and_log_tail(cli, head, workdir):
    r = cli.run("job", "submit", "--working-dir", str(workdir), "--runtime-env-json",
                json.dumps({"env_vars": {"JOB_GREETING": "x", "EXIT_CODE": "3"}}),
                "--", "python", "main.py", timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    sid = r.stdout.split("Job '")[1].split("'")[0]
    info = _client(head).get_job_info(sid)
    assert info.status == JobStatus.FAILED and info.driver_exit_code == 3
    assert info.error_type == "JOB_ENTRYPOINT_COMMAND_ERROR"
    assert "exit code 3" in info.message and "result [0, 2, 4, 6]" in info.message
    # A command that does not exist fails the same way (the shell's 127).
    sid = _client(head).submit_job(entrypoint="no-such-command-anywhere")
    _tail(_client(head), sid)
    assert _client(head).get_job_info(sid).driver_exit_code == 127


def test_stop_ends_the_job_and_every_process_it_started(cli, head, tmp_path):
    pids = tmp_path / "pids"
    code = ("import os, subprocess, sys, time\n"
            "kids = [subprocess.Popen(['sleep', '300']),\n"
            "        subprocess.Popen(['sleep', '300'], start_new_session=True)]\n"
            f"open({str(pids)!r}, 'w').write(' '.join(str(p) for p in\n"
            "    [os.getpid()] + [k.pid for k in kids]))\n"
            "print('started', flush=True)\n"
            "[k.wait() for k in kids]\n")
    script = tmp_path / "spawner.py"
    script.write_text(code)
    client = _client(head)
    sid = client.submit_job(entrypoint=f"{PY} {script}")
    assert "started" in _tail(client, sid, until="started")
    procs = [int(p) for p in pids.read_text().split()]
    assert all(_alive(p) for p in procs)
    assert client.get_job_status(sid) == JobStatus.RUNNING
    assert client.stop_job(sid) is True
    _tail(client, sid)  # returns when the job has ended
    info = client.get_job_info(sid)
    assert info.status == JobStatus.STOPPED and info.message == "Job was intentionally stopped."
    wait_for_condition(lambda: not any(_alive(p) for p in procs), timeout=15,
                       msg="(a stopped job's processes are still running)")
    assert client.stop_job(sid) is False  # already over
    # A finished job can be deleted, a running one cannot.
    blocker = client.submit_job(entrypoint=f"{PY} -c \"print('up', flush=True); "
                                "import time; time.sleep(300)\"")
    _tail(client, blocker, until="up")
    with pytest.raises(RuntimeError, match="non-terminal"):
        client.delete_job(blocker)
    client.stop_job(blocker)
    _tail(client, blocker)
    assert client.delete_job(blocker) is True
    with pytest.raises(RuntimeError, match="404"):
        client.get_job_info(blocker)
    assert [j.submission_id for j in client.list_jobs() if j.type.value == "SUBMISSION"] \
        == [sid]


def test_the_token_is_required_to_submit_stop_and_delete(cli, head):
    url = f"http://127.0.0.1:{head['dashboard_port']}"
    body = json.dumps({"entrypoint": "echo hacked"}).encode()
    for method, path, data in (("POST", "/api/jobs/", body), ("POST", "/api/jobs/x/stop", b""),
                               ("DELETE", "/api/jobs/x", None),
                               ("PUT", "/api/packages/gcs/_ray_pkg_0123456789abcdef.zip", b"z")):
        req = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30)
        assert e.value.code == 401, (method, path)
        bad = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + "0" * 64})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad, timeout=30)
        assert e.value.code == 401, (method, path)
    # The SDK without a token (none in the environment, none of this machine's) says so.
    r = cli.python(
        "import os\nos.environ['SHOAL_SESSION_ROOT'] = '/nonexistent-root'\n"
        "from shoal.job_submission import JobSubmissionClient\n"
        f"c = JobSubmissionClient({url!r})\n"
        "try:\n    c.submit_job(entrypoint='echo hacked')\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n")
    assert "AuthenticationError" in r.stdout and "cluster token" in r.stdout, r.stdout + r.stderr
    assert _client(head).list_jobs() == [] or all(
        j.entrypoint != "echo hacked" for j in _client(head).list_jobs())
    with pytest.raises(AuthenticationError):
        JobSubmissionClient(url, headers={"Authorization": "Bearer wrong"}).stop_job("x")


def test_bad_requests_get_clear_errors(cli, head):
    client = _client(head)
    with pytest.raises(TypeError, match="entrypoint must be a string"):
        client.submit_job(entrypoint=["python", "x.py"])
    sid = client.submit_job(entrypoint="true", submission_id="once")
    with pytest.raises(RuntimeError, match="already exists"):
        client.submit_job(entrypoint="true", submission_id="once")
    with pytest.raises(RuntimeError, match="submission_id"):
        client.submit_job(entrypoint="true", submission_id="../../etc")
    with pytest.raises(RuntimeError, match="more than the head node has"):
        client.submit_job(entrypoint="true", entrypoint_num_cpus=64)
    with pytest.raises(RuntimeError, match="404"):
        client.get_job_info("raysubmit_nonexistent")
    with pytest.raises(ValueError, match="does not exist"):
        client.submit_job(entrypoint="true", runtime_env={"working_dir": "/no/such/dir"})
    _tail(client, sid)
    assert client.get_job_status(sid) == JobStatus.SUCCEEDED


def test_a_job_outlives_its_submitter_and_its_record_outlives_the_head(cli, head, tmp_path):
    fifo = tmp_path / "release"
    os.mkfifo(fifo)
    r = cli.run("job", "submit", "--no-wait", "--submission-id", "waits", "--",
                PY, "-c", f"print(open({str(fifo)!r}).read(), flush=True)")
    assert r.returncode == 0, r.stdout + r.stderr  # the submitter has exited
    client = _client(head)
    assert client.get_job_status("waits") in (JobStatus.PENDING, JobStatus.RUNNING)
    wait_for_condition(lambda: client.get_job_status("waits") == JobStatus.RUNNING, timeout=30)
    fd = os.open(fifo, os.O_WRONLY)  # blocks until the job opened it: it runs
    os.write(fd, b"released")
    os.close(fd)
    assert "released" in _tail(client, "waits")
    assert client.get_job_status("waits") == JobStatus.SUCCEEDED
    # A job still running when the head dies: its process dies with the head, and the
    # restarted head lists both, the unfinished one FAILED.
    pidfile = tmp_path / "pid"
    sid = client.submit_job(entrypoint=f"{PY} -c \"import os,time; open({str(pidfile)!r},"
                            "'w').write(str(os.getpid())); print('up', flush=True); "
                            "time.sleep(300)\"")
    _tail(client, sid, until="up")
    job_pid = int(pidfile.read_text())
    with open(os.path.join(head["session"], "address.json")) as f:
        head_pid = json.load(f)["pid"]
    os.kill(head_pid, signal.SIGKILL)
    wait_for_condition(lambda: not _alive(job_pid), timeout=15,
                       msg="(a job's entrypoint outlived its head)")
    r = cli.run("start", "--head", "--port", str(head["port"]), "--num-cpus", "1",
                "--dashboard-port", str(head["dashboard_port"]), "--session-dir",
                head["session"], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    client = _client(head)
    assert client.get_job_status("waits") == JobStatus.SUCCEEDED
    info = client.get_job_info(sid)
    assert info.status == JobStatus.FAILED and "head restarted" in info.message
    assert "up" in client.get_job_logs(sid)


def test_pip_runtime_env_installs_from_the_index_and_a_bad_one_fails_with_pips_message(
        cli, head):
    client = _client(head)
    code = "import appdirs, sys; print('appdirs at', appdirs.__file__, sys.prefix)"
    sid = client.submit_job(entrypoint=f"python -c \"{code}\"",
                            runtime_env={"pip": ["appdirs"]})
    out = _tail(client, sid)
    info = client.get_job_info(sid)
    assert info.status == JobStatus.SUCCEEDED, (info.message, out)
    assert "runtime_resources/pip/" in out
    with pytest.raises(ImportError):
        __import__("appdirs")  # the package is in the job's environment only
    bad = client.submit_job(entrypoint="true",
                            runtime_env={"pip": ["no-such-package-shoal-test==0.0.1"]})
    _tail(client, bad)
    info = client.get_job_info(bad)
    assert info.status == JobStatus.FAILED
    assert info.error_type == "RUNTIME_ENV_SETUP_FAILURE"
    assert "no-such-package-shoal-test" in info.message
    assert "No matching distribution" in info.message or "ERROR" in info.message
    # The node is fine: the next job runs.
    ok = client.submit_job(entrypoint="echo still-fine")
    assert "still-fine" in _tail(client, ok)


def test_the_jobs_example_runs(cli):
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "jobs.py")
    r = subprocess.run([PY, example], capture_output=True, text=True, timeout=180,
                       env={**cli.env, "SHOAL_SESSION_ROOT": cli.root})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sum of squares: 285" in r.stdout and "status: STOPPED" in r.stdout


RAY_PY = "/tmp/rayenv/bin/python"


@pytest.mark.skipif(not os.path.exists(RAY_PY), reason=f"Ray is not installed at {RAY_PY}")
def test_rays_own_sdk_drives_a_shoal_head(head, workdir):
    """Ray 2.60's JobSubmissionClient (pure HTTP) against shoal: submit with a working_dir,
    follow, status, logs, stop, delete, list; and refused without the token."""
    url = f"http://127.0.0.1:{head['dashboard_port']}"
    code = f"""
import asyncio, json
from ray.job_submission import JobSubmissionClient, JobStatus
c = JobSubmissionClient({url!r}, headers={{"Authorization": "Bearer {head['token']}"}})
sid = c.submit_job(entrypoint="python main.py", runtime_env={{"working_dir": {str(workdir)!r},
                   "env_vars": {{"JOB_GREETING": "from-ray"}}}})
async def tail(s):
    return "".join([x async for x in c.tail_job_logs(s)])
out = asyncio.run(tail(sid))
info = c.get_job_info(sid)
s2 = c.submit_job(entrypoint="sleep 300")
stopped = c.stop_job(s2)
asyncio.run(tail(s2))
res = {{"out": out, "status": str(c.get_job_status(sid)), "job_id": info.job_id,
        "logs": c.get_job_logs(sid), "stopped": stopped, "s2": str(c.get_job_status(s2)),
        "deleted": c.delete_job(s2), "n": len(c.list_jobs())}}
try:
    JobSubmissionClient({url!r}).submit_job(entrypoint="echo no")
    res["refused"] = False
except Exception as e:
    res["refused"] = type(e).__name__
print("RESULT", json.dumps(res))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOAL_", "RAY_"))}
    env["RAY_AUTH_MODE"] = "disabled"
    r = subprocess.run([RAY_PY, "-c", code], capture_output=True, text=True, timeout=120,
                       env=env)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, r.stdout + r.stderr
    res = json.loads(line[0][7:])
    assert "result [0, 2, 4, 6] from-helper from-ray" in res["out"]
    assert res["status"] == "SUCCEEDED" and res["job_id"]
    assert "result" in res["logs"]
    assert res["stopped"] is True and res["s2"] == "STOPPED" and res["deleted"] is True
    assert res["n"] == 1
    assert res["refused"] == "AuthenticationError"


def test_shoal_stop_ends_running_jobs(cli, head, tmp_path):
    pidfile = tmp_path / "pid"
    client = _client(head)
    sid = client.submit_job(entrypoint=f"{PY} -c \"import os,subprocess; p=subprocess.Popen("
                            "['sleep','300'], start_new_session=True); "
                            f"open({str(pidfile)!r},'w').write(f'{{os.getpid()}} {{p.pid}}'); "
                            "print('up', flush=True); p.wait()\"")
    _tail(client, sid, until="up")
    pids = [int(p) for p in pidfile.read_text().split()]
    r = cli.run("stop")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_for_condition(lambda: not any(_alive(p) for p in pids), timeout=15,
                       msg="(a job's processes outlived `shoal stop`)")
