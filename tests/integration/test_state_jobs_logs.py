"""The state API's jobs, logs and timeline, and get()'s progress bar."""

from __future__ import annotations

import os

import pytest

from shoal.util import state
from tests.conftest import wait_for_condition


def test_list_jobs_shows_this_driver(shoal_cluster):
    jobs = state.list_jobs(detail=True)  # the times are detail columns, as in Ray
    mine = [j for j in jobs if j["driver_info"]["pid"] == str(os.getpid())]
    assert len(mine) == 1 and mine[0]["status"] == "RUNNING"
    assert mine[0]["job_id"] == shoal_cluster.get_runtime_context().get_job_id()
    assert mine[0]["start_time"] > 0 and mine[0]["end_time"] is None
    assert state.list_jobs()[0]["start_time"] is None  # not without detail
    assert state.list_jobs(filters=[("status", "=", "SUCCEEDED")], limit=10, detail=True) == [
        j for j in jobs if j["status"] == "SUCCEEDED"][:10]
    with pytest.raises(ValueError, match="cannot filter on 'nope'"):
        state.list_jobs(filters=[("nope", "=", "x")])


def test_get_log_of_a_task_an_actor_and_a_file(shoal_cluster):
    shoal = shoal_cluster

    @shoal.remote
    def noisy():
        print("noisy-task-line")
        return os.getpid()

    @shoal.remote
    class Loud:
        def speak(self):
            print("loud-actor-line")
            return os.getpid()

    pid = shoal.get(noisy.remote())
    task = state.list_tasks(filters=[("name", "=", "noisy")], detail=True)[0]
    wait_for_condition(lambda: "noisy-task-line" in list(state.get_log(
        task_id=task["task_id"])))
    a = Loud.remote()
    apid = shoal.get(a.speak.remote())
    wait_for_condition(lambda: "loud-actor-line" in list(state.get_log(
        actor_id=a._actor_id.hex())))
    assert "loud-actor-line" in list(state.get_log(pid=apid))
    logs = state.list_logs(node_id=task["node_id"])
    name = next(n for n in logs["worker_out"] if n.endswith(f"-{pid}.log"))
    assert "noisy-task-line" in list(state.get_log(filename=name))
    assert list(state.get_log(filename=name, tail=0)) == []
    assert "head.log" in logs["node"]
    with pytest.raises(ValueError, match="not a log name"):
        list(state.get_log(filename="../../etc/passwd"))
    with pytest.raises(ValueError, match="no task"):
        list(state.get_log(task_id="ab" * 24))
    with pytest.raises(ValueError, match="no log of pid 1"):
        list(state.get_log(pid=1))


def test_timeline_events_of_tasks(shoal_cluster, tmp_path):
    shoal = shoal_cluster

    @shoal.remote
    def tick(i):
        return i

    shoal.get([tick.remote(i) for i in range(7)])
    events = shoal.timeline()
    ticks = [e for e in events if e["ph"] == "X" and e["name"] == "tick"]
    assert len(ticks) == 7 and all(e["args"]["state"] == "FINISHED" for e in ticks)
    path = tmp_path / "t.json"
    shoal.timeline(filename=str(path))
    import json

    assert len([e for e in json.loads(path.read_text()) if e.get("name") == "tick"]) == 7


def test_get_progress_bar(shoal_cluster, capfd):
    shoal = shoal_cluster

    @shoal.remote
    def sq(i):
        return i * i

    refs = [sq.remote(i) for i in range(50)]
    assert shoal.get(refs, progress=True) == [i * i for i in range(50)]
    err = capfd.readouterr().err
    assert "shoal.get" in err and "50/50" in err
    assert shoal.get(refs + refs[:3], progress="squares")[-1] == 4  # duplicates are fine
    assert "squares" in capfd.readouterr().err
    assert shoal.get(refs[:2]) == [0, 1]
    assert capfd.readouterr().err == ""  # off by default


def test_get_progress_respects_timeout(shoal_cluster):
    shoal = shoal_cluster

    @shoal.remote
    def slow():
        import time

        time.sleep(30)

    ref = slow.remote()
    with pytest.raises(shoal.exceptions.GetTimeoutError):
        shoal.get([ref], timeout=0.3, progress=True)
    shoal.cancel(ref, force=True)


def test_rows_take_attributes_and_get_by_id(shoal_cluster):
    shoal = shoal_cluster

    @shoal.remote
    class Keeper:
        def ping(self):
            return "pong"

    @shoal.remote
    def made():
        return 3

    k = Keeper.options(name="keeper-9").remote()
    assert shoal.get(k.ping.remote()) == "pong"
    ref = made.remote()
    shoal.get(ref)
    aid = k._actor_id.hex()
    # Ray's signature: the address first, positionally.
    rows = state.list_actors(None, [("actor_id", "=", aid)])
    assert rows[0].state == "ALIVE" and rows[0]["state"] == "ALIVE"
    assert rows[0].get("name") == "keeper-9" and rows[0].asdict()["class_name"] == "Keeper"
    with pytest.raises(AttributeError, match="no field 'nope'"):
        _ = rows[0].nope
    a = state.get_actor(aid)
    assert a.name == "keeper-9" and a.num_restarts == 0 and "death_cause" in a
    assert state.get_actor("ab" * 16) is None
    t = state.get_task(ref)  # by the ObjectRef the task returned
    assert t is not None and t.name == "made" and t.state == "FINISHED"
    assert state.get_task(ref.task_id().hex()).task_id == t.task_id
    node = state.get_node(t.node_id)
    assert node.state == "ALIVE" and node.resources_total["CPU"] == 2
    job = state.get_job(shoal.get_runtime_context().get_job_id())
    assert job.status == "RUNNING"
    big = shoal.put(b"x" * 200_000)
    objs = state.get_objects(big.hex())
    assert objs and objs[0].object_size >= 200_000
    summary = state.summarize_actors()["cluster"]
    assert summary["summary"]["Keeper"]["state_counts"]["ALIVE"] == 1
    shoal.kill(k)


def test_list_workers_and_get_worker(shoal_cluster):
    shoal = shoal_cluster

    @shoal.remote
    def where():
        ctx = shoal.get_runtime_context()
        return os.getpid(), ctx.get_worker_id()

    pid, wid = shoal.get(where.remote())
    workers = state.list_workers(limit=1000)
    mine = [w for w in workers if w.pid == pid]
    assert mine and mine[0].is_alive and mine[0].worker_type == "WORKER"
    assert mine[0].worker_id == wid
    drivers = [w for w in workers if w.worker_type == "DRIVER" and w.pid == os.getpid()]
    assert drivers and drivers[0].is_alive
    assert state.get_worker(wid).pid == pid
    assert state.list_workers(filters=[("worker_type", "=", "DRIVER")], detail=True)[0].job_id
