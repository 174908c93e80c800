"""Fixtures for the AWS Batch engine: a real second genobatch server stands in for the remote AWS Batch.

Jobs really run there. The engine reaches it with real boto3, signed with that server's keys.
"""

from __future__ import annotations

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
