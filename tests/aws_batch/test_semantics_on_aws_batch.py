"""The project's end-to-end job semantics suite (tests/e2e/test_job_semantics.py), run on AWS Batch.

Same tests, same boto3 calls against the first server; only its ``default`` queue's compute
environment is an ``aws-batch`` one here (named ``default`` too, so the environment the jobs see is
the same), forwarding every attempt to a second genobatch server that stands in for AWS Batch.
Tests of how the *local* backend slices this host are listed in ``LOCAL_ONLY`` with the reason.
"""

from __future__ import annotations

import pytest
from semantics_suite import server_with_default_on, suite_tests

pytestmark = pytest.mark.slow

#: Tests of the local backend's own slicing of this host, not of AWS Batch semantics.
LOCAL_ONLY = {
    "test_gpus_are_pinned_exclusively": "the local GPU inventory (the stand-in remote has no GPUs)",
    "test_native_job_detail_reports_execution_and_usage": "local execution facts (runtime, sampled usage)",
    # Its last check is that the job runs in the local attempt's work directory; a remote container
    # runs in its image's. Its environment checks (AWS_BATCH_* with genobatch's values, the job's
    # own variables, the log) are made on forwarded jobs in test_engine_calls.py and test_forwarding.py.
    "test_job_gets_environment_parameters_and_log": "the local attempt's working directory",
}
globals().update(suite_tests(LOCAL_ONLY, "job_semantics_on_aws_batch"))


@pytest.fixture(scope="module")
def genobatch_server(remote, aws_profile, tmp_path_factory):
    """A server whose ``default`` queue runs on an aws-batch compute environment named ``default``."""
    tags = {
        "genobatch:backend": "aws-batch",
        "genobatch:aws-batch-job-queue": "default",
        "genobatch:aws-batch-endpoint": remote.endpoint,
        "genobatch:aws-batch-region": "us-east-1",
        "genobatch:aws-profile": aws_profile,
    }
    server = server_with_default_on(tmp_path_factory, tags)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def batch(genobatch_server):
    return genobatch_server.client()
