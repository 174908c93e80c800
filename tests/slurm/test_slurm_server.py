"""A genobatch compute environment on the slurm backend, end to end: a real server, real boto3, real Slurm.

The user talks to the server only; its compute environment is tagged ``genobatch:backend=slurm``
and its jobs run as batch jobs on the single-node cluster of scripts/slurm-cluster.sh. Slurm's
own records (squeue, sacct) are the evidence of what ran there and how often.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter

import pytest
from harness import (
    cli_logs,
    launch,
    queue_on_backend,
    shell_definition,
    submit_array_and_dependent,
    wait_environment_status,
    wait_for,
)
from slurm_jobs import SCRIPT, accounted_names, squeue_names

pytestmark = pytest.mark.slow

ARRAY = 12
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"


@pytest.fixture(scope="module")
def server(slurm_cluster, tmp_path_factory):
    # The server inherits SLURM_CONF (set by the slurm_cluster fixture): its Slurm commands reach the cluster.
    server = launch(tmp_path_factory, "--cpus", "2")
    yield server
    server.stop()


def slurm_queue(server, *, partition: str = "batch", max_vcpus: int = 64) -> tuple[str, str]:
    """A queue on a new compute environment whose jobs run on the Slurm partition."""
    tags = {"genobatch:backend": "slurm", "genobatch:slurm-partition": partition}
    return queue_on_backend(server.client(), "slurm", tags, max_vcpus)


def test_array_and_dependency_run_on_slurm_and_logs_read_back(server):
    queue, ce = slurm_queue(server)
    batch = server.client()
    array, _ = submit_array_and_dependent(batch, queue, ARRAY)
    # Every child ran exactly once on Slurm, under its attempt's name.
    deadline = time.monotonic() + 20  # the accounting records arrive a moment after the ends
    while accounted_names(f"gb_{array}_") != Counter({f"gb_{array}_{i}_1": 1 for i in range(ARRAY)}):
        assert time.monotonic() < deadline, accounted_names(f"gb_{array}_")
        time.sleep(0.5)
    assert cli_logs(server, f"{array}:7").strip() == f"child 7 of {array}:7 on {ce}"
    described = batch.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"][0]
    assert described["status"] == "VALID"


def test_oom_and_exit_codes_and_a_refused_job_on_slurm(server):
    queue, _ = slurm_queue(server)
    batch = server.client()
    oom = batch.submit_job(
        jobName="oom",
        jobQueue=queue,
        jobDefinition=shell_definition(batch, "oom", "python3 -c 'x = bytearray(600 * 1024 * 1024)'", memory=100),
    )["jobId"]
    exits = batch.submit_job(jobName="exit", jobQueue=queue, jobDefinition=shell_definition(batch, "exit", "exit 4"))[
        "jobId"
    ]
    huge = batch.submit_job(
        jobName="huge",
        jobQueue=queue,
        jobDefinition=shell_definition(batch, "huge", "true"),
        containerOverrides={"resourceRequirements": [{"type": "MEMORY", "value": "9000000"}]},
    )["jobId"]
    detail = wait_for(batch, oom, statuses=("FAILED",), timeout=60)
    assert detail["container"]["reason"] == OOM_REASON
    assert detail["container"]["exitCode"] == 137
    detail = wait_for(batch, exits, statuses=("FAILED",), timeout=60)
    assert detail["container"]["exitCode"] == 4
    detail = wait_for(batch, huge, statuses=("FAILED",), timeout=60)
    assert detail["statusReason"].startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT")
    assert "Memory specification can not be satisfied" in detail["statusReason"]


def test_terminate_stops_a_running_slurm_job(server):
    queue, _ = slurm_queue(server)
    batch = server.client()
    job = batch.submit_job(jobName="long", jobQueue=queue, jobDefinition=shell_definition(batch, "long", "sleep 300"))[
        "jobId"
    ]
    wait_for(batch, job, statuses=("RUNNING",), timeout=60)
    batch.terminate_job(jobId=job, reason="enough")
    detail = wait_for(batch, job, statuses=("FAILED",), timeout=60)
    assert detail["statusReason"] == "enough"
    assert detail["container"]["exitCode"] == 143  # SIGTERM, as a container stopped by docker stop


def test_a_missing_partition_marks_the_environment_invalid_and_keeps_the_job(server):
    queue, ce = slurm_queue(server, partition="nosuchpartition")
    batch = server.client()
    job = batch.submit_job(jobName="waits", jobQueue=queue, jobDefinition=shell_definition(batch, "w", "true"))["jobId"]
    described = wait_environment_status(batch, ce, "INVALID")
    assert "no partition 'nosuchpartition'" in described["statusReason"]
    assert batch.describe_jobs(jobs=[job])["jobs"][0]["status"] in ("RUNNABLE", "STARTING")
    batch.terminate_job(jobId=job, reason="test over")


def test_kill_dash_nine_during_a_submission_burst_runs_every_job_exactly_once(server):
    size = 300
    queue, _ = slurm_queue(server, max_vcpus=256)
    batch = server.client()
    array = batch.submit_job(
        jobName="burst",
        jobQueue=queue,
        jobDefinition=shell_definition(batch, "burst", "true"),
        arrayProperties={"size": size},
    )["jobId"]
    deadline = time.monotonic() + 60
    while len(squeue_names(f"gb_{array}_")) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.stop(kill=True)
    at_kill = len(squeue_names(f"gb_{array}_"))
    print(f"{at_kill} of {size} submitted to Slurm when the server was killed")
    server.start()
    batch = server.client()
    assert wait_for(batch, array, timeout=180)["status"] == "SUCCEEDED"
    deadline = time.monotonic() + 20
    while accounted_names(f"gb_{array}_") != Counter({f"gb_{array}_{i}_1": 1 for i in range(size)}):
        assert time.monotonic() < deadline, accounted_names(f"gb_{array}_")
        time.sleep(0.5)
    assert 0 < at_kill < size, f"{at_kill} of {size} submitted when the server was killed: not during the burst"


def test_slurmctld_going_away_mid_run_loses_nothing_and_work_resumes(server, slurm_cluster):
    queue, ce = slurm_queue(server)
    batch = server.client()
    job = batch.submit_job(
        jobName="outlives", jobQueue=queue, jobDefinition=shell_definition(batch, "outlives", "sleep 8; echo done")
    )["jobId"]
    wait_for(batch, job, statuses=("RUNNING",), timeout=60)
    pid_file = os.path.join(os.path.dirname(os.path.dirname(slurm_cluster)), "run", "slurmctld.pid")
    with open(pid_file) as fh:
        os.kill(int(fh.read().strip()), signal.SIGTERM)  # slurmctld stops; slurmd and the job go on
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            described = batch.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"][0]
            if described["status"] == "INVALID":
                break
            time.sleep(0.5)
        assert described["status"] == "INVALID", described
        assert "Unable to contact slurm controller" in described["statusReason"]
        assert batch.describe_jobs(jobs=[job])["jobs"][0]["status"] == "RUNNING"  # kept as it was
    finally:
        subprocess.run([str(SCRIPT), "start"], check=True, capture_output=True, timeout=120)
    detail = wait_for(batch, job, timeout=120)
    assert detail["status"] == "SUCCEEDED", detail
    deadline = time.monotonic() + 60
    while batch.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"][0]["status"] != "VALID":
        assert time.monotonic() < deadline, "the compute environment did not become VALID again"
        time.sleep(0.5)
    assert accounted_names(f"gb_{job}_") == Counter({f"gb_{job}_1": 1})
