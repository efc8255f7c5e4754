"""The dashboard's pages in a real browser: headless Chromium driven by selenium.

A local cluster (``shoal.init(num_cpus=2, dashboard_port=0)``) serves the dashboard on
loopback for most tests; the token test starts a head bound to a non-loopback address of this
machine with ``shoal start --head`` (a separate process: one ``init()`` per process). Every
wait is an explicit condition (``WebDriverWait``), never a sleep. A screenshot of each page is
saved under ``$SHOAL_ARTEFACTS/dashboard/`` (default ``<repo>/artefacts/dashboard/``).

Skipped, saying why, without ``/usr/bin/chromium``, ``/usr/bin/chromedriver`` or selenium.
"""

from __future__ import annotations

import base64
import json
import math
import os
import socket
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from tests.conftest import gate_actor, shoal_processes, wait_for_condition
from tests.e2e.conftest import _free_port, lan_ip

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
_MISSING = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
pytestmark = pytest.mark.skipif(
    bool(_MISSING), reason=f"the browser tests need Chromium and ChromeDriver: {_MISSING} missing")
pytest.importorskip("selenium", reason="the browser tests need selenium (pip install selenium)")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ARTEFACTS = Path(os.environ.get("SHOAL_ARTEFACTS", REPO / "artefacts")) / "dashboard"
WAIT = 30  # seconds: a generous bound for any one thing to appear on a page
VIEWPORT = (1440, 900)

# Plain HTTP to the dashboard, never through a proxy the environment might name.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(url: str, headers: dict | None = None, method: str = "GET"):
    """(status, parsed JSON or text, headers) of one request."""
    data = b"" if method == "POST" else None
    req = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with _opener.open(req, timeout=30) as r:
            status, body, hdrs = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, body, hdrs = e.code, e.read(), e.headers
    text = body.decode()
    return status, (json.loads(text) if "json" in hdrs.get("Content-Type", "") else text), hdrs


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    import shoal

    ctx = shoal.init(num_cpus=2, dashboard_port=0)
    session = ctx["session_dir"]
    try:
        token = Path(session, "token").read_text().strip()
        yield {"shoal": shoal, "url": "http://" + ctx.dashboard_url, "token": token}
    finally:
        shoal.shutdown()
        wait_for_condition(lambda: not shoal_processes(session), timeout=15,
                           msg="(shoal processes left after shutdown)")


@pytest.fixture
def browser(tmp_path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-proxy-server",
                "--window-size=1440,1100", f"--user-data-dir={tmp_path / 'chromium'}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    started = psutil.Process(driver.service.process.pid)
    try:
        driver.set_page_load_timeout(WAIT)
        # A fixed viewport, whatever the window's decorations take: same-sized screenshots.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1,
            "mobile": False})
        yield driver
    finally:
        try:
            procs = [started, *started.children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
        driver.quit()
        # quit() ends chromedriver and the browser; make sure nothing this fixture started
        # outlives the test (by pid: only chromedriver and its descendants).
        _, alive = psutil.wait_procs(procs, timeout=10)
        for p in alive:
            p.kill()
        psutil.wait_procs(alive, timeout=5)


# -- helpers --------------------------------------------------------------------------------
def waiter(driver, timeout: float = WAIT) -> WebDriverWait:
    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(NoSuchElementException,
                                             StaleElementReferenceException))


def number(driver, element_id: str) -> int:
    text = driver.find_element(By.ID, element_id).text.strip()
    return int(text) if text.isdigit() else -1


def css(driver, selector: str, timeout: float = WAIT):
    """The visible element at ``selector``, once there is one."""
    return waiter(driver, timeout).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, selector)))


def text_in(driver, element_id: str, text: str, timeout: float = WAIT) -> None:
    waiter(driver, timeout).until(EC.text_to_be_present_in_element((By.ID, element_id), text))


def go(driver, url: str, route: str, page_id: str):
    """Open ``route`` (the part after ``#``) and wait for its page to be shown."""
    driver.get(f"{url}/#{route}")
    return css(driver, f"#{page_id}")


def shot(driver, name: str) -> None:
    """A screenshot of the whole page, below the fold too (Chrome's DevTools protocol)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": VIEWPORT[0], "scale": 1,
            "height": min(max(VIEWPORT[1], math.ceil(size["height"])), 6000)}
    png = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True, "clip": clip})
    (ARTEFACTS / f"{name}.png").write_bytes(base64.b64decode(png["data"]))


def console_errors(driver) -> list[str]:
    """Script errors and Content-Security-Policy refusals logged by the page so far.
    (A request answered 4xx is logged as "Failed to load resource": some tests expect one.)"""
    return [e["message"] for e in driver.get_log("browser")
            if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]


def free_port_on(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def log_in(driver, token: str) -> None:
    """Fill the login form (the page must be shown) and wait to land on the overview."""
    box = css(driver, "#token")
    box.clear()
    box.send_keys(token)
    driver.find_element(By.ID, "login-submit").click()
    waiter(driver).until(lambda d: urlsplit(d.current_url).path == "/")
    css(driver, "#page-overview")


# -- 1. the overview is live ----------------------------------------------------------------
def test_overview_shows_tasks_running_then_finished(cluster, browser):
    shoal, url, driver = cluster["shoal"], cluster["url"], browser

    Gate = gate_actor(shoal)

    @shoal.remote
    def held(gate, i):
        shoal.get(gate.wait.remote())
        return i

    _, nodes, _ = http(url + "/api/nodes")
    (node,) = nodes["nodes"]

    go(driver, url, "/", "page-overview")
    waiter(driver).until(lambda d: number(d, "nodes-alive") == 1)
    assert number(driver, "nodes-dead") == 0
    row = css(driver, f'#overview-nodes tr[data-node-id="{node["node_id"]}"]')
    assert row.get_attribute("data-state") == "ALIVE" and "127.0.0.1" in row.text
    assert "/ 2 in use" in css(driver, '#cluster-resources [data-resource="CPU"]').text
    waiter(driver).until(lambda d: number(d, "tasks-finished") >= 0)
    finished_before = number(driver, "tasks-finished")

    gate = Gate.remote()
    refs = [held.remote(gate, i) for i in range(4)]
    # The page refreshes itself (no reload): the held tasks show up as running...
    waiter(driver).until(lambda d: number(d, "tasks-running") >= 2)
    waiter(driver).until(lambda d: number(d, "actors-alive") >= 1)
    shot(driver, "overview")

    # ... and once released, as finished.
    shoal.get(gate.open.remote())
    assert shoal.get(refs, timeout=60) == [0, 1, 2, 3]
    waiter(driver).until(lambda d: number(d, "tasks-finished") >= finished_before + 4)
    waiter(driver).until(lambda d: number(d, "tasks-running") == 0)
    css(driver, '#tasks-by-state a[data-state="FINISHED"]')

    # The node on the nodes page, with its machine's use and a link to its logs.
    driver.find_element(By.ID, "nav-nodes").click()
    row = css(driver, f'#nodes-table tr[data-node-id="{node["node_id"]}"]')
    assert row.get_attribute("data-state") == "ALIVE"
    assert int(row.get_attribute("data-workers")) >= 1
    assert "cores" in row.text and "B /" in row.text
    shot(driver, "nodes")
    row.find_element(By.CSS_SELECTOR, "a.node-logs-link").click()
    css(driver, f'.node-logs[data-node-id="{node["node_id"]}"] a.log-link[data-log-name="head.log"]')
    assert console_errors(driver) == []


# -- 2. a failed task's traceback -----------------------------------------------------------
def test_failed_task_shows_its_traceback_and_worker_log(cluster, browser):
    shoal, url, driver = cluster["shoal"], cluster["url"], browser

    @shoal.remote(max_retries=0)
    def explode_for_dashboard():
        raise ValueError("boom-xyz")

    with pytest.raises(ValueError, match="boom-xyz"):
        shoal.get(explode_for_dashboard.remote())

    go(driver, url, "/tasks", "page-tasks")
    Select(driver.find_element(By.ID, "filter-state")).select_by_value("FAILED")
    driver.find_element(By.ID, "filter-name").send_keys("explode_for")
    # The filters are kept in the address, and leave only that task.
    waiter(driver).until(lambda d: "name=explode_for" in d.current_url)
    assert "state=FAILED" in driver.current_url
    rows = "#tasks-table tr[data-task-id]"
    waiter(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, rows)) == 1)
    row = css(driver, '#tasks-table tr[data-name="explode_for_dashboard"]')
    assert row.get_attribute("data-state") == "FAILED"
    shot(driver, "tasks")

    task_id = row.get_attribute("data-task-id")
    row.click()
    error = css(driver, "#task-error")
    assert f"#/tasks/{task_id}" in driver.current_url
    text = error.text
    assert "boom-xyz" in text and "ValueError" in text and "raise ValueError" in text
    assert "explode_for_dashboard" in text
    assert driver.find_element(By.ID, "task-error-type").text == "ValueError"
    assert driver.find_element(By.CSS_SELECTOR, "#task-state .badge").text == "FAILED"
    worker_id = driver.find_element(By.CSS_SELECTOR, '#task-detail dd[data-field="worker_id"]').text
    assert len(worker_id) >= 8
    shot(driver, "task")

    # Its worker's log, one click away.
    driver.find_element(By.ID, "task-worker-logs").click()
    waiter(driver).until(
        lambda d: d.find_element(By.ID, "log-name").text.startswith(f"worker-{worker_id[:8]}"))
    css(driver, "#log-text")
    assert console_errors(driver) == []


# -- 3. an actor's page and its log ---------------------------------------------------------
def test_actor_page_shows_its_log_and_follows_it(cluster, browser):
    shoal, url, driver = cluster["shoal"], cluster["url"], browser
    line = f"dashboard-actor-line-{uuid.uuid4().hex[:10]}"

    @shoal.remote
    class Printer:
        def say(self, text):
            print(text, flush=True)
            return text

    p = Printer.options(name="printer-e2e").remote()
    assert shoal.get(p.say.remote(line)) == line
    aid = p._actor_id.hex()

    go(driver, url, "/actors", "page-actors")
    row = css(driver, f'#actors-table tr[data-actor-id="{aid}"]')
    assert row.get_attribute("data-state") == "ALIVE"
    assert "Printer" in row.text and "printer-e2e" in row.text
    shot(driver, "actors")

    row.click()
    css(driver, "#actor-detail")
    text_in(driver, "actor-state", "ALIVE")
    text_in(driver, "log-text", line)  # printed before the page was opened: the log's tail
    assert driver.find_element(By.ID, "log-follow").is_selected()
    # Following: a line printed now is appended within a second or so.
    shoal.get(p.say.remote(line + "-later"))
    text_in(driver, "log-text", line + "-later")
    calls = '#actor-detail dd[data-field="calls"]'
    waiter(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, calls).text == "2")
    assert "printer-e2e" in driver.find_element(By.ID, "actor-detail").text
    shot(driver, "actor")

    # The same log from the Logs page: listed under its node, by the actor's pid.
    _, body, _ = http(f"{url}/api/actors/{aid}")
    pid = body["actor"]["pid"]
    driver.find_element(By.ID, "nav-logs").click()
    link = css(driver, f'a.log-link[data-pid="{pid}"]')
    shot(driver, "logs")
    link.click()
    text_in(driver, "log-text", line)
    follow = driver.find_element(By.ID, "log-follow")
    follow.click()  # stop following ...
    assert not follow.is_selected()
    shoal.get(p.say.remote(line + "-third"))
    follow.click()  # ... and resume: the reading goes on from where it stopped
    text_in(driver, "log-text", line + "-third")
    log = driver.find_element(By.ID, "log-text").text
    assert log.count(line + "\n") == 1 and log.count(line + "-later") == 1  # appended once
    shot(driver, "log")
    assert console_errors(driver) == []


# -- 4. off loopback, the dashboard needs the token ----------------------------------------
def test_dashboard_off_loopback_needs_the_token(cli, browser):
    ip = lan_ip()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address to bind the dashboard to")
    driver = browser
    dport = free_port_on(ip)
    r = cli.run("start", "--head", "--port", str(_free_port()), "--num-cpus", "1",
                "--dashboard-host", ip, "--dashboard-port", str(dport))
    assert r.returncode == 0, r.stderr
    (session,) = cli.sessions()
    token = Path(session, "token").read_text().strip()
    url = f"http://{ip}:{dport}"

    # A program: 401 without the token, 200 with it as a Bearer header.
    status, body, _ = http(url + "/api/cluster")
    assert status == 401 and "token" in body["error"]
    status, body, _ = http(url + "/api/cluster", {"Authorization": f"Bearer {token}"})
    assert status == 200 and body["nodes"]["alive"] == 1
    assert http(url + "/api/cluster", {"Authorization": "Bearer nope"})[0] == 401

    # A browser: sent to the login page, which refuses a wrong token ...
    driver.get(url + "/")
    waiter(driver).until(lambda d: urlsplit(d.current_url).path == "/login")
    css(driver, "#token")
    assert not driver.find_element(By.ID, "login-error").is_displayed()
    shot(driver, "login")
    driver.find_element(By.ID, "token").send_keys("not-the-token")
    driver.find_element(By.ID, "login-submit").click()
    waiter(driver).until(lambda d: "failed=1" in d.current_url)
    error = css(driver, "#login-error")
    assert "wrong token" in error.text.lower()
    shot(driver, "login-failed")
    driver.get(url + "/#/nodes")  # still without the token: still the login page
    waiter(driver).until(lambda d: urlsplit(d.current_url).path == "/login")

    # ... and with the right one shows the overview (the cookie it sets is not the token).
    log_in(driver, token)
    waiter(driver).until(lambda d: number(d, "nodes-alive") == 1)
    css(driver, "#logout")
    cookies = {c["name"]: c for c in driver.get_cookies()}
    assert cookies["shoal_dashboard"]["httpOnly"] and token not in cookies["shoal_dashboard"]["value"]
    driver.find_element(By.ID, "nav-nodes").click()
    css(driver, "#nodes-table tr[data-node-id]")
    shot(driver, "overview-logged-in")

    # Logging out forgets the cookie.
    driver.find_element(By.ID, "logout").click()
    waiter(driver).until(lambda d: urlsplit(d.current_url).path == "/login")
    driver.get(url + "/")
    waiter(driver).until(lambda d: urlsplit(d.current_url).path == "/login")
    assert console_errors(driver) == []


# -- 5. state changes: foreign origins refused, the Kill button with the token --------------
def test_kill_refuses_other_origins_and_works_from_the_page(cluster, browser):
    shoal, url, token, driver = cluster["shoal"], cluster["url"], cluster["token"], browser

    @shoal.remote
    class Victim:
        def ping(self):
            return "pong"

    a, b = Victim.remote(), Victim.remote()
    assert shoal.get([a.ping.remote(), b.ping.remote()]) == ["pong", "pong"]
    aid, bid = a._actor_id.hex(), b._actor_id.hex()

    def state(actor_id):
        return http(f"{url}/api/actors/{actor_id}")[1]["actor"]["state"]

    bearer = {"Authorization": f"Bearer {token}"}
    kill = f"{url}/api/actors/{bid}/kill"
    assert http(kill, {**bearer, "Origin": "http://evil.example"}, "POST")[0] == 403
    assert http(kill, {"Origin": "http://evil.example"}, "POST")[0] == 403
    assert http(kill, {**bearer, "Referer": "http://evil.example/x"}, "POST")[0] == 403
    assert http(kill, {**bearer, "Host": "evil.example"}, "POST")[0] == 421
    assert http(url + "/api/cluster", {"Host": "evil.example"})[0] == 421
    assert http(url + "/", {"Host": "evil.example:80"})[0] == 421
    assert http(kill, method="POST")[0] == 401  # on loopback too, a change needs the token
    assert state(bid) == "ALIVE"
    status, body, _ = http(kill, {**bearer, "Origin": url}, "POST")
    assert status == 200 and body["ok"]
    wait_for_condition(lambda: state(bid) == "DEAD", timeout=20, msg="(killed with Bearer)")

    # The page: without the token the Kill button says so, with a link to the login page.
    go(driver, url, f"/actors/{aid}", "page-actor")
    text_in(driver, "actor-state", "ALIVE")
    driver.find_element(By.ID, "actor-kill").click()
    css(driver, "#actor-kill-confirm").click()
    message = css(driver, "#actor-kill-message")
    assert "token" in message.text
    login = driver.find_element(By.ID, "actor-kill-login")
    assert urlsplit(login.get_attribute("href")).path == "/login"
    assert state(aid) == "ALIVE"
    shot(driver, "actor-kill-needs-token")

    # Logged in (the session cookie, sent with the page's own Origin), the kill goes through.
    login.click()
    log_in(driver, token)
    go(driver, url, f"/actors/{aid}", "page-actor")
    text_in(driver, "actor-state", "ALIVE")
    driver.find_element(By.ID, "actor-kill").click()
    css(driver, "#actor-kill-confirm").click()
    text_in(driver, "actor-kill-message", "Kill requested")
    text_in(driver, "actor-state", "DEAD")  # the page refreshes itself
    assert not driver.find_element(By.ID, "actor-kill").is_enabled()
    shot(driver, "actor-killed")
    assert state(aid) == "DEAD"
    with pytest.raises(shoal.exceptions.RayActorError):
        shoal.get(a.ping.remote(), timeout=30)
    assert console_errors(driver) == []


# -- 6. every page ---------------------------------------------------------------------------
def test_every_page_renders(cluster, browser):
    shoal, url, driver = cluster["shoal"], cluster["url"], browser
    import numpy as np

    @shoal.remote
    def step_for_timeline(i):
        return i

    assert shoal.get([step_for_timeline.remote(i) for i in range(6)]) == list(range(6))
    big = shoal.put(np.zeros(3 << 20, dtype=np.uint8))

    go(driver, url, "/", "page-overview")
    waiter(driver).until(lambda d: number(d, "nodes-alive") == 1)
    for page, element in (("nodes", "#nodes-table tr[data-node-id]"),
                          ("tasks", "#tasks-table tr[data-task-id]"),
                          ("actors", "#actors-table"),
                          ("jobs", "#jobs-table tr[data-job-id]"),
                          ("overview", "#overview-nodes tr[data-node-id]")):
        driver.find_element(By.ID, f"nav-{page}").click()
        css(driver, element)
        assert "active" in driver.find_element(By.ID, f"nav-{page}").get_attribute("class")

    # Objects: the store per node and the object just put, as `shoal memory` shows it.
    driver.find_element(By.ID, "nav-objects").click()
    row = css(driver, f'#objects-table tr[data-object-id="{big.hex()}"]')
    assert row.get_attribute("data-reference-type") == "LOCAL_REFERENCE"
    assert "3.00 MiB" in row.text
    css(driver, "#object-store-nodes .node-store")
    shot(driver, "objects")

    # Jobs: this driver's job, running.
    driver.find_element(By.ID, "nav-jobs").click()
    row = css(driver, '#jobs-table tr[data-status="RUNNING"]')
    assert "DRIVER" in row.text
    shot(driver, "jobs")

    # Timeline: a bar per task on its worker's row, a tooltip, and the trace to download.
    driver.find_element(By.ID, "nav-timeline").click()
    waiter(driver).until(lambda d: len(d.find_elements(
        By.CSS_SELECTOR, '.tl-bar[data-name="step_for_timeline"]')) == 6)
    assert driver.find_elements(By.CSS_SELECTOR, "#timeline .tl-row[data-tid]")
    bar = driver.find_element(By.CSS_SELECTOR, '.tl-bar[data-name="step_for_timeline"]')
    ActionChains(driver).move_to_element(bar).perform()
    tip = css(driver, "#tl-tooltip")
    assert "step_for_timeline" in tip.text and "duration" in tip.text
    link = driver.find_element(By.ID, "timeline-download")
    assert link.get_attribute("href") == f"{url}/api/timeline?download=1"
    status, events, headers = http(link.get_attribute("href"))
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    assert len([e for e in events if e.get("name") == "step_for_timeline"]) == 6
    shot(driver, "timeline")

    # Logs: one panel per node, its daemon's log first; open that log.
    driver.find_element(By.ID, "nav-logs").click()
    css(driver, '.node-logs a.log-link[data-log-name="head.log"]').click()
    text_in(driver, "log-name", "head.log")
    css(driver, "#log-text")

    # An unknown route and an unknown task say so instead of breaking.
    go(driver, url, "/nowhere", "not-found")
    go(driver, url, "/tasks/" + "ab" * 24, "page-task")
    css(driver, "#not-found")
    # The login page (on loopback, only needed to kill actors) and the overview, last.
    driver.get(url + "/login")
    css(driver, "#token")
    go(driver, url, "/", "page-overview")
    css(driver, "#overview-nodes tr[data-node-id]")
    assert console_errors(driver) == []
    del big


# -- ids that tell rows apart; actor calls' node and worker ---------------------------------
def _cells(row) -> list[str]:
    return [td.text for td in row.find_elements(By.CSS_SELECTOR, "td")]


def test_tables_show_the_part_of_ids_that_differs_and_actor_calls_place(cluster, browser):
    shoal, url, driver = cluster["shoal"], cluster["url"], browser

    @shoal.remote
    def same_prefix(i):
        return i

    @shoal.remote
    class Placed:
        def where(self):
            ctx = shoal.get_runtime_context()
            return ctx.get_node_id(), ctx.get_worker_id()

    assert shoal.get([same_prefix.remote(i) for i in range(5)]) == list(range(5))
    placed = Placed.remote()
    node_id, worker_id = shoal.get(placed.where.remote())
    kept = [shoal.put(f"kept-{i}") for i in range(4)]

    go(driver, url, "/tasks?name=same_prefix", "page-tasks")
    rows = '#tasks-table tr[data-name="same_prefix"]'
    waiter(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, rows)) == 5)
    shown = {}
    for row in driver.find_elements(By.CSS_SELECTOR, rows):
        tid, text = row.get_attribute("data-task-id"), _cells(row)[0]
        # The first characters (whose), then the counter that differs from row to row.
        assert text.startswith(tid[:4]) and text.endswith(tid[-8:]), (tid, text)
        shown[tid] = text
    assert len(set(shown.values())) == 5

    go(driver, url, "/tasks?name=Placed.where", "page-tasks")
    row = css(driver, '#tasks-table tr[data-name="Placed.where"]')
    headers = [th.text.strip().lower()
               for th in driver.find_elements(By.CSS_SELECTOR, "#tasks-table th")]
    cells = dict(zip(headers, _cells(row), strict=False))
    assert cells["node"] not in ("", "–") and cells["worker"] not in ("", "–")
    assert node_id.startswith(cells["node"]) and worker_id.startswith(cells["worker"])

    driver.find_element(By.ID, "nav-objects").click()
    texts = set()
    for ref in kept:
        oid = ref.hex()
        text = _cells(css(driver, f'#objects-table tr[data-object-id="{oid}"]'))[0]
        assert text.startswith(oid[:4]) and text.endswith(oid[-8:]), (oid, text)
        texts.add(text)
    assert len(texts) == 4
    assert console_errors(driver) == []
