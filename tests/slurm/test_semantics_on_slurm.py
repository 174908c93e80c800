"""The project's end-to-end job semantics suite (tests/e2e/test_job_semantics.py), run on Slurm.

Same tests, same server, same boto3 calls; only the ``default`` job queue's compute environment is
a Slurm one here (named ``default`` too, so the environment the jobs see is the same). The few
tests that check how the *local* backend slices this host are listed in ``LOCAL_ONLY`` with the
reason; their Slurm counterparts are in test_slurm_engine.py and test_slurm_server.py.
"""

from __future__ import annotations

import pytest
from semantics_suite import server_with_default_on, suite_tests

pytestmark = pytest.mark.slow

#: Tests of the local backend's own slicing of this host, not of AWS Batch semantics.
LOCAL_ONLY = {
    # A job needing more GPUs than the host has waits RUNNABLE (local capacity is known); Slurm
    # is asked and refuses it, so it ends FAILED with MISCONFIGURATION at once (issue 8).
    "test_gpus_are_pinned_exclusively": "the local GPU inventory; Slurm's gres: test_gpus_come_from_gres",
    "test_native_job_detail_reports_execution_and_usage": "local execution facts (runtime, sampled usage)",
}
globals().update(suite_tests(LOCAL_ONLY, "job_semantics_on_slurm"))


@pytest.fixture(scope="module")
def genobatch_server(slurm_cluster, tmp_path_factory):
    """A server whose ``default`` queue runs on a Slurm compute environment named ``default``."""
    server = server_with_default_on(
        tmp_path_factory, {"genobatch:backend": "slurm", "genobatch:slurm-partition": "batch"}
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def batch(genobatch_server):
    return genobatch_server.client()
