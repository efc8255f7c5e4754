"""The Jobs API's records and requests (pure): Ray's JSON shapes, default messages, checks."""

from __future__ import annotations

import json

import pytest

from shoal.job_submission import JobDetails, JobInfo, JobStatus
from shoal.job_submission.models import (
    JobSubmitRequest,
    check_submission_id,
    details_json,
    new_submission_id,
)


def test_status_is_a_string_enum_with_terminal_states():
    assert JobStatus.RUNNING == "RUNNING" and str(JobStatus.FAILED) == "FAILED"
    assert [s.value for s in JobStatus if s.is_terminal()] == ["STOPPED", "SUCCEEDED", "FAILED"]


def test_info_round_trips_through_rays_stored_json_form():
    info = JobInfo(status="PENDING", entrypoint="python x.py", runtime_env={"pip": ["a"]},
                   entrypoint_num_cpus=1, metadata={"k": "v"}, start_time=5)
    assert info.status is JobStatus.PENDING
    assert info.message == ("Job has not started yet. It may be waiting for resources (CPUs, "
                            "GPUs, memory, custom resources) to become available. It may be "
                            "waiting for the runtime environment to be set up.")
    stored = info.to_json()
    assert "runtime_env" not in stored and json.loads(stored["runtime_env_json"]) == {"pip": ["a"]}
    json.dumps(stored)
    back = JobInfo.from_json(json.loads(json.dumps(stored)))
    assert back == info
    # A record written by a newer head with a field this one does not know still loads.
    assert JobInfo.from_json({**stored, "entrypoint_label_selector": {}}) == info


@pytest.mark.parametrize("status,message", [
    ("RUNNING", "Job is currently running."), ("STOPPED", "Job was intentionally stopped."),
    ("SUCCEEDED", "Job finished successfully."), ("FAILED", "Job failed."),
    ("PENDING", "Job has not started yet.")])
def test_default_messages_are_rays(status, message):
    assert JobInfo(status=status, entrypoint="x").message == message


def test_details_of_a_submission_carry_its_driver_and_ignore_unknown_fields():
    info = JobInfo(status="SUCCEEDED", entrypoint="e", runtime_env={"env_vars": {"A": "1"}},
                   driver_exit_code=0)
    driver = {"job_id": "01000000", "driver_info": {"id": "01000000",
                                                    "node_ip_address": "127.0.0.1",
                                                    "pid": "42"}}
    d = details_json("raysubmit_x", info, driver)
    assert d["type"] == "SUBMISSION" and d["submission_id"] == "raysubmit_x"
    assert d["job_id"] == "01000000" and d["runtime_env"] == {"env_vars": {"A": "1"}}
    details = JobDetails(**json.loads(json.dumps(d)), namespace="shoal-only-field")
    assert details.status is JobStatus.SUCCEEDED and details.driver_info.pid == "42"
    assert details.dict()["type"] == "SUBMISSION"
    assert details_json("s", info, None)["job_id"] is None
    with pytest.raises(TypeError, match="status"):
        JobDetails(type="DRIVER", entrypoint="x")


@pytest.mark.parametrize("body,error", [
    ({"entrypoint": 3}, "entrypoint must be a string"),
    ({"entrypoint": "x", "submission_id": 3}, "submission_id must be a string"),
    ({"entrypoint": "x", "runtime_env": []}, "runtime_env must be a dict"),
    ({"entrypoint": "x", "metadata": {"a": 1}}, "metadata values must be strings"),
    ({"entrypoint": "x", "entrypoint_num_cpus": "2"}, "entrypoint_num_cpus must be a number"),
    ({"entrypoint": "x", "entrypoint_memory": 1.5}, "entrypoint_memory must be an integer"),
    ({"entrypoint": "x", "entrypoint_resources": {"a": "b"}}, "values must be numbers"),
])
def test_bad_submit_requests_are_type_errors_naming_the_field(body, error):
    with pytest.raises(TypeError, match=error):
        JobSubmitRequest(**body)


def test_negative_asks_are_refused_and_asks_map_to_resource_names():
    with pytest.raises(ValueError, match="non-negative"):
        JobSubmitRequest(entrypoint="x", entrypoint_num_cpus=-1)
    req = JobSubmitRequest(entrypoint="x", entrypoint_num_cpus=1, entrypoint_num_gpus=0,
                           entrypoint_resources={"TPU": 2})
    assert req.resources() == {"CPU": 1, "TPU": 2}


def test_submission_ids():
    sid = new_submission_id()
    assert sid.startswith("raysubmit_") and len(sid) == 26
    check_submission_id(sid)
    for bad in ("", "a/b", "..", "x" * 129, "a b"):
        with pytest.raises(ValueError):
            check_submission_id(bad)
