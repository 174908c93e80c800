"""Fixtures for the AWS Batch engine: a real second genobatch server stands in for the remote AWS Batch.

Jobs really run there. The engine reaches it with real boto3, signed with that server's keys.
"""

from __future__ import annotations

import os

import pytest
from harness import Server, launch, spot_queue


@pytest.fixture(scope="module")
def remote(tmp_path_factory) -> Server:
    """The stand-in remote AWS Batch."""
    server = launch(tmp_path_factory, "--cpus", "2")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def remote_queue(remote: Server) -> str:
    """A remote queue on a SPOT compute environment billed as m5.xlarge (what cost reads back)."""
    queue, _ = spot_queue(remote.client(), "remote", "m5.xlarge", max_vcpus=2)
    return queue


@pytest.fixture(scope="module")
def aws_profile(remote, tmp_path_factory):
    """An AWS profile named ``remote`` with the remote server's keys, in the first server's environment."""
    home = tmp_path_factory.mktemp("aws")
    (home / "credentials").write_text(
        f"[remote]\naws_access_key_id = {remote.access_key}\naws_secret_access_key = {remote.secret_key}\n"
    )
    (home / "config").write_text("[profile remote]\nregion = us-east-1\n")
    saved = {k: os.environ.get(k) for k in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")}
    os.environ.update(AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"), AWS_CONFIG_FILE=str(home / "config"))
    yield "remote"
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
