"""``genobatch server --api-rate-limit``: an over-quota call is answered as AWS answers it (429).

Real boto3 against a real server. With boto3's own retries off the client sees the throttling
error itself; with its standard retries on, every call gets through (it backs off), which is what
makes the limit a fair stand-in for AWS Batch's SubmitJob quota.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from harness import launch

RATE = 5  # SubmitJob calls per second the server allows (bucket of one second's worth)


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    server = launch(tmp_path_factory, "--api-rate-limit", f"SubmitJob={RATE}")
    yield server
    server.stop()


def _definition(batch) -> str:
    return batch.register_job_definition(
        jobDefinitionName="rl-true",
        type="container",
        containerProperties={
            "image": "busybox",
            "command": ["true"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "32"}],
        },
    )["jobDefinitionArn"]


def test_over_quota_submit_job_is_429_too_many_requests(limited):
    batch = limited.client(config=Config(retries={"total_max_attempts": 1}))
    definition = _definition(batch)
    accepted, throttled = [], []
    began = time.monotonic()
    for i in range(4 * RATE):
        try:
            accepted.append(batch.submit_job(jobName=f"rl{i}", jobQueue="default", jobDefinition=definition)["jobId"])
        except ClientError as error:
            throttled.append(error.response)
    elapsed = time.monotonic() - began
    assert throttled, f"{4 * RATE} SubmitJob calls in {elapsed:.2f}s: none throttled"
    first = throttled[0]
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert first["Error"] == {"Code": "TooManyRequestsException", "Message": "Too Many Requests"}
    # The bucket holds one second's worth and refills at RATE per second.
    assert len(accepted) <= RATE + RATE * elapsed + 1
    # The throttled calls changed nothing: only the accepted jobs exist.
    names = {
        job["jobName"]
        for job in batch.list_jobs(jobQueue="default", filters=[{"name": "JOB_NAME", "values": ["rl*"]}])[
            "jobSummaryList"
        ]
    }
    assert len(names) == len(accepted)
    # Other operations are not limited.
    for _ in range(4 * RATE):
        batch.describe_jobs(jobs=accepted[:1])


def test_boto3_standard_retries_get_every_call_through(limited):
    batch = limited.client(config=Config(retries={"mode": "standard", "total_max_attempts": 10}))
    definition = _definition(batch)
    time.sleep(1.2)  # a full bucket
    count = 3 * RATE
    began = time.monotonic()
    ids = [
        batch.submit_job(jobName=f"std{i}", jobQueue="default", jobDefinition=definition)["jobId"] for i in range(count)
    ]
    elapsed = time.monotonic() - began
    assert len(set(ids)) == count
    # Not faster than the quota allows: a bucket of RATE, then RATE per second.
    assert elapsed >= (count - RATE - 1) / RATE


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("Submit=5", "'Submit' is not an AWS Batch operation"),
        ("SubmitJob=0", "rate of SubmitJob"),
        ("SubmitJob", "OPERATION="),
    ],
)
def test_bad_rate_limit_flag_is_refused_naming_the_problem(tmp_path, value, named):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "genobatch",
            "server",
            "--data-dir",
            str(tmp_path),
            "--port",
            "0",
            "--api-rate-limit",
            value,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "--api-rate-limit" in result.stderr and named in result.stderr
    assert not (tmp_path / "genobatch.db").exists()
