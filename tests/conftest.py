"""Shared fixtures: a real genobatch server per test module (see harness.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import Server, launch

#: Folders of the remote engines' tests (marked ``remote_engine``, see pyproject.toml).
REMOTE_ENGINE_TESTS = tuple(Path(__file__).parent / name for name in ("slurm", "aws_batch"))


#: Tests that share one machine-wide resource, and so run one at a time on one pytest-xdist worker
#: (``--dist loadgroup``): the Slurm tests share the one cluster on this host, and one of them stops
#: and restarts its controller; the tests that build a LocalBackend without a data directory share
#: its default cgroup group and persistent launcher (``launch.default_launcher_dir``).
SERIAL_GROUPS = {
    Path(__file__).parent / "slurm": "slurm-cluster",
    **{
        Path(__file__).parent / name: "host-launcher"
        for name in ("test_local_backend.py", "test_containment.py", "test_launcher.py")
    },
}


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist's workers carry COLUMNS=80 and LINES=24 in their environment, which every CLI a
    # test starts would inherit (rich sizes its output by them). Without xdist there are none: a
    # worker runs the CLIs as the plain suite does, and a test that wants a width sets COLUMNS itself.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.path.is_relative_to(folder) for folder in REMOTE_ENGINE_TESTS):
            item.add_marker(pytest.mark.remote_engine)
        for folder, group in SERIAL_GROUPS.items():
            if item.path.is_relative_to(folder):
                item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="module")
def genobatch_server(tmp_path_factory: pytest.TempPathFactory):
    """A server with a configured 4-GPU inventory (so pinning is exercised without GPUs)."""
    server = launch(tmp_path_factory, "--gpus", "4")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def batch(genobatch_server: Server):
    return genobatch_server.client()
