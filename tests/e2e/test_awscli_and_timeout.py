"""The AWS CLI against genobatch, unchanged; and attempt timeouts (the documented minimum is 60 s)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
from harness import wait_for


def aws(server, *args: str, endpoint_flag: bool = False) -> dict:
    """Run ``aws batch ...`` as a subprocess; the endpoint comes from AWS_ENDPOINT_URL_BATCH."""
    executable = shutil.which("aws")
    command = [executable] if executable else [sys.executable, "-m", "awscli"]
    command += ["batch", *args, "--output", "json"]
    env = server.env()
    if endpoint_flag:
        command += ["--endpoint-url", server.endpoint]
        env.pop("AWS_ENDPOINT_URL_BATCH")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return json.loads(result.stdout) if result.stdout.strip() else {}


def test_aws_cli_drives_a_job_end_to_end(genobatch_server):
    definition = aws(
        genobatch_server,
        "register-job-definition",
        "--job-definition-name",
        "cli-def",
        "--type",
        "container",
        "--container-properties",
        json.dumps(
            {
                "image": "busybox",
                "command": ["sh", "-c", "echo from-cli"],
                "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
            }
        ),
    )
    assert definition["revision"] >= 1
    submitted = aws(
        genobatch_server,
        "submit-job",
        "--job-name",
        "cli-job",
        "--job-queue",
        "default",
        "--job-definition",
        "cli-def",
        "--array-properties",
        "size=2",
    )
    batch = genobatch_server.client()
    assert wait_for(batch, submitted["jobId"])["status"] == "SUCCEEDED"
    described = aws(genobatch_server, "describe-jobs", "--jobs", submitted["jobId"], f"{submitted['jobId']}:1")
    assert [job["status"] for job in described["jobs"]] == ["SUCCEEDED", "SUCCEEDED"]
    listed = aws(
        genobatch_server,
        "list-jobs",
        "--array-job-id",
        submitted["jobId"],
        "--job-status",
        "SUCCEEDED",
        endpoint_flag=True,
    )
    assert sorted(s["jobId"] for s in listed["jobSummaryList"]) == [f"{submitted['jobId']}:{i}" for i in range(2)]
    queues = aws(genobatch_server, "describe-job-queues")
    assert "default" in [q["jobQueueName"] for q in queues["jobQueues"]]
    aws(genobatch_server, "terminate-job", "--job-id", submitted["jobId"], "--reason", "finished anyway")


def test_aws_cli_shows_client_errors(genobatch_server):
    command = [
        shutil.which("aws") or "aws",
        "batch",
        "submit-job",
        "--job-name",
        "x",
        "--job-queue",
        "missing-queue",
        "--job-definition",
        "cli-def",
    ]
    result = subprocess.run(command, env=genobatch_server.env(), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ClientException" in result.stderr and "missing-queue" in result.stderr


@pytest.mark.slow
def test_attempt_timeout_terminates_and_is_not_retried(batch):
    definition = batch.register_job_definition(
        jobDefinitionName="times-out",
        type="container",
        containerProperties={
            "image": "busybox",
            "command": ["sleep", "600"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
        },
    )["jobDefinitionArn"]
    started = time.monotonic()
    job_id = batch.submit_job(
        jobName="slow",
        jobQueue="default",
        jobDefinition=definition,
        timeout={"attemptDurationSeconds": 60},
        retryStrategy={"attempts": 3},
    )["jobId"]
    detail = wait_for(batch, job_id, timeout=120)
    elapsed = time.monotonic() - started
    assert detail["status"] == "FAILED"
    assert detail["statusReason"] == "Job attempt duration exceeded timeout"
    assert len(detail["attempts"]) == 1  # timed-out attempts are not retried
    # stoppedAt comes from the exit file's mtime, whose granularity is a few ms coarser than the clock.
    assert 59.9 <= (detail["stoppedAt"] - detail["startedAt"]) / 1000 < 75
    assert elapsed < 90
