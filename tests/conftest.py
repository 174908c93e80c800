"""Shared fixtures: a real genobatch server per test module (see harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Server, launch

#: Folders of the remote engines' tests (marked ``remote_engine``, see pyproject.toml).
REMOTE_ENGINE_TESTS = tuple(Path(__file__).parent / name for name in ("slurm", "aws_batch"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.path.is_relative_to(folder) for folder in REMOTE_ENGINE_TESTS):
            item.add_marker(pytest.mark.remote_engine)


@pytest.fixture(scope="module")
def genobatch_server(tmp_path_factory: pytest.TempPathFactory):
    """A server with a configured 4-GPU inventory (so pinning is exercised without GPUs)."""
    server = launch(tmp_path_factory, "--gpus", "4")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def batch(genobatch_server: Server):
    return genobatch_server.client()
