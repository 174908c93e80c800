"""The end-to-end job semantics suite (tests/e2e/test_job_semantics.py), reused on other backends.

A backend's test module takes the suite's tests with :func:`suite_tests` and defines the
``genobatch_server`` fixture with :func:`server_with_default_on`: the same tests then run against a
server whose ``default`` queue's compute environment is on that backend.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from harness import Server, launch

SUITE_PATH = Path(__file__).resolve().parent / "e2e" / "test_job_semantics.py"


def suite_tests(excluded: Mapping[str, str], module_name: str) -> dict[str, Callable]:
    """The suite's test functions, less ``excluded`` (test name -> why it does not apply)."""
    spec = importlib.util.spec_from_file_location(module_name, SUITE_PATH)
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    tests = {name: test for name, test in vars(suite).items() if name.startswith("test_") and callable(test)}
    unknown = set(excluded) - set(tests)
    assert not unknown, f"excluded tests that the suite does not have: {sorted(unknown)}"
    return {name: test for name, test in tests.items() if name not in excluded}


def server_with_default_on(tmp_path_factory: pytest.TempPathFactory, tags: Mapping[str, str]) -> Server:
    """A server whose ``default`` queue runs on a compute environment named ``default`` with these tags.

    Named ``default`` as the local one is, so the environment jobs see (``AWS_BATCH_CE_NAME``) is
    the same; 2 vCPUs as the local suite's server, since tests fill it to hold jobs RUNNABLE.
    """
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
        computeResources={"type": "EC2", "maxvCpus": 2, "subnets": [], "instanceTypes": ["m5.large"]},
        tags=dict(tags),
    )
    batch.update_job_queue(jobQueue="default", computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "default"}])
    return server
