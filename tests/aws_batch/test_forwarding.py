"""A genobatch compute environment on the aws-batch backend, end to end: two real servers, real boto3.

The user talks to the first server only (boto3, the CLI); its compute environment is tagged
``genobatch:backend=aws-batch`` and points at the second server, which stands in for the remote
AWS Batch and really runs the jobs. The first server signs its calls with a named AWS profile.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from harness import (
    cli_logs,
    launch,
    queue_on_backend,
    shell_definition,
    spot_queue,
    submit_array_and_dependent,
    wait_environment_status,
    wait_for,
)

pytestmark = pytest.mark.slow

ARRAY = 20


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    # Throttled below the forwarding rate, so SubmitJob throttling is met (and must never show).
    server = launch(tmp_path_factory, "--cpus", "2", "--api-rate-limit", "SubmitJob=20")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def remote_queue(remote) -> str:
    """The remote queue: its compute environment is SPOT m5.xlarge, which the first server's cost must use."""
    return spot_queue(remote.client(), "remote", "m5.xlarge", max_vcpus=2)[0]


@pytest.fixture(scope="module")
def front(tmp_path_factory, aws_profile):
    server = launch(tmp_path_factory, "--cpus", "2")
    yield server
    server.stop()


def forwarding_queue(
    front, remote, remote_queue: str, profile: str, *, endpoint: str | None = None, max_vcpus: int = 64
) -> tuple[str, str]:
    """A queue on a new compute environment (billed as on-demand m5.large) whose jobs run on ``remote_queue``."""
    tags = {
        "genobatch:backend": "aws-batch",
        "genobatch:aws-batch-job-queue": remote_queue,
        "genobatch:aws-batch-endpoint": endpoint or remote.endpoint,
        "genobatch:aws-batch-region": "us-east-1",
        "genobatch:aws-profile": profile,
    }
    return queue_on_backend(front.client(), "aws", tags, max_vcpus)


def remote_names(remote, queue: str, prefix: str) -> Counter:
    """How many remote jobs on ``queue`` carry each name starting with ``prefix`` (every status)."""
    pages = (
        remote.client()
        .get_paginator("list_jobs")
        .paginate(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [prefix + "*"]}])
    )
    return Counter(job["jobName"] for page in pages for job in page["jobSummaryList"])


def test_array_and_dependency_run_remotely_and_logs_read_back(front, remote, remote_queue, aws_profile):
    queue, ce = forwarding_queue(front, remote, remote_queue, aws_profile)
    batch = front.client()
    array, after = submit_array_and_dependent(batch, queue, ARRAY)
    # Every child ran exactly once remotely, under its attempt's name.
    assert remote_names(remote, remote_queue, f"gb_{array}_") == Counter({f"gb_{array}_{i}_1": 1 for i in range(ARRAY)})
    assert remote_names(remote, remote_queue, f"gb_{after}_") == Counter({f"gb_{after}_1": 1})
    # The log comes back through the first server's CLI, with genobatch's own job id and CE.
    assert cli_logs(front, f"{array}:7").strip() == f"child 7 of {array}:7 on {ce}"
    described = batch.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"][0]
    assert described["status"] == "VALID"
    # Cost prices the attempts as the remote ran them (SPOT m5.xlarge), not as the local CE declares.
    cost = front.native("/runs", queue=queue)["cost"]
    [environment] = [e for e in cost["computeEnvironments"] if e["name"] == ce]
    assert (environment["instanceType"], environment["purchase"]) == ("m5.xlarge", "spot")
    assert cost["attributedUsd"] > 0


def test_an_unreachable_remote_marks_the_environment_invalid_and_keeps_the_job(
    front, remote, remote_queue, aws_profile
):
    queue, ce = forwarding_queue(front, remote, remote_queue, aws_profile, endpoint="http://127.0.0.1:9")
    batch = front.client()
    job = batch.submit_job(jobName="waits", jobQueue=queue, jobDefinition=shell_definition(batch, "w", "true"))["jobId"]
    described = wait_environment_status(batch, ce, "INVALID")
    assert f"remote queue {remote_queue} at http://127.0.0.1:9" in described["statusReason"]
    status = batch.describe_jobs(jobs=[job])["jobs"][0]["status"]
    assert status in ("RUNNABLE", "STARTING")
    batch.terminate_job(jobId=job, reason="test over")


def test_kill_dash_nine_during_a_submission_burst_runs_every_job_exactly_once(front, remote, remote_queue, aws_profile):
    size = 60
    queue, _ = forwarding_queue(front, remote, remote_queue, aws_profile)
    batch = front.client()
    array = batch.submit_job(
        jobName="burst",
        jobQueue=queue,
        jobDefinition=shell_definition(batch, "burst", "true"),
        arrayProperties={"size": size},
    )["jobId"]
    # The remote takes 20 submissions a second: kill the first server while it is forwarding them.
    deadline = time.monotonic() + 60
    while len(remote_names(remote, remote_queue, f"gb_{array}_")) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    front.stop(kill=True)
    at_kill = len(remote_names(remote, remote_queue, f"gb_{array}_"))
    assert 0 < at_kill < size, f"{at_kill} of {size} forwarded when the server was killed"
    print(f"{at_kill} of {size} forwarded when the server was killed")
    front.start()
    batch = front.client()
    assert wait_for(batch, array, timeout=180)["status"] == "SUCCEEDED"
    names = remote_names(remote, remote_queue, f"gb_{array}_")
    assert names == Counter({f"gb_{array}_{i}_1": 1 for i in range(size)})
