"""Shared fixtures: a real genobatch server per test module (see harness.py)."""

from __future__ import annotations

import pytest
from harness import Server, launch


@pytest.fixture(scope="module")
def genobatch_server(tmp_path_factory: pytest.TempPathFactory):
    """A server with a configured 4-GPU inventory (so pinning is exercised without GPUs)."""
    server = launch(tmp_path_factory, "--gpus", "4")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def batch(genobatch_server: Server):
    return genobatch_server.client()
