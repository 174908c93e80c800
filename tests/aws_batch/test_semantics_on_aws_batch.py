"""The project's end-to-end job semantics suite (tests/e2e/test_job_semantics.py), run on AWS Batch.

Same tests, same boto3 calls against the first server; only its ``default`` queue's compute
environment is an ``aws-batch`` one here (named ``default`` too, so the environment the jobs see is
the same), forwarding every attempt to a second genobatch server that stands in for AWS Batch.
Tests of how the *local* backend slices this host are listed in ``LOCAL_ONLY`` with the reason.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
from harness import launch

pytestmark = pytest.mark.slow

_SUITE_PATH = Path(__file__).resolve().parents[1] / "e2e" / "test_job_semantics.py"
_spec = importlib.util.spec_from_file_location("job_semantics_suite_aws", _SUITE_PATH)
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)

#: Tests of the local backend's own slicing of this host, not of AWS Batch semantics.
LOCAL_ONLY = {
    "test_gpus_are_pinned_exclusively": "the local GPU inventory (the stand-in remote has no GPUs)",
    "test_native_job_detail_reports_execution_and_usage": "local execution facts (runtime, sampled usage)",
    # Its last check is that the job runs in the local attempt's work directory; a remote container
    # runs in its image's. Its environment checks (AWS_BATCH_* with genobatch's values, the job's
    # own variables, the log) are made on forwarded jobs in test_engine_calls.py and test_forwarding.py.
    "test_job_gets_environment_parameters_and_log": "the local attempt's working directory",
}

for _name, _test in vars(suite).items():
    if _name.startswith("test_") and callable(_test) and _name not in LOCAL_ONLY:
        globals()[_name] = _test


@pytest.fixture(scope="module")
def genobatch_server(remote, aws_profile, tmp_path_factory):
    """A server whose ``default`` queue runs on an aws-batch compute environment named ``default``."""
    server = launch(tmp_path_factory, "--cpus", "2")
    batch = server.client()
    batch.create_compute_environment(computeEnvironmentName="interim", type="UNMANAGED", unmanagedvCpus=2)
    batch.update_job_queue(jobQueue="default", computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "interim"}])
    batch.update_compute_environment(computeEnvironment="default", state="DISABLED")
    batch.delete_compute_environment(computeEnvironment="default")
    deadline = time.monotonic() + 30
    while batch.describe_compute_environments(computeEnvironments=["default"])["computeEnvironments"]:
        assert time.monotonic() < deadline, "compute environment default was not deleted"
        time.sleep(0.1)
    batch.create_compute_environment(
        computeEnvironmentName="default",
        type="MANAGED",
        # 2 vCPUs, as the local suite's server: tests fill the environment to hold jobs RUNNABLE.
        computeResources={"type": "EC2", "maxvCpus": 2, "subnets": [], "instanceTypes": ["m5.large"]},
        tags={
            "genobatch:backend": "aws-batch",
            "genobatch:aws-batch-job-queue": "default",
            "genobatch:aws-batch-endpoint": remote.endpoint,
            "genobatch:aws-batch-region": "us-east-1",
            "genobatch:aws-profile": aws_profile,
        },
    )
    batch.update_job_queue(jobQueue="default", computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "default"}])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def batch(genobatch_server):
    return genobatch_server.client()
