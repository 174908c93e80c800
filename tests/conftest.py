"""Shared fixtures: a real genobatch server per test module (see harness.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import Server, launch
from xdist.scheduler import LoadScopeScheduling

#: Folders of the remote engines' tests (marked ``remote_engine``, see pyproject.toml).
REMOTE_ENGINE_TESTS = tuple(Path(__file__).parent / name for name in ("slurm", "aws_batch"))


#: Tests that share one machine-wide resource, and so run one after another on one pytest-xdist
#: worker: the Slurm tests share the one cluster on this host, and one of them stops and restarts
#: its controller; the tests that build a LocalBackend without a data directory share its default
#: cgroup group and persistent launcher (``launch.default_launcher_dir``). Paths relative to the
#: repository, as pytest's node ids start.
SERIAL_GROUPS = {
    "tests/slurm/": "slurm-cluster",
    "tests/test_local_backend.py": "host-launcher",
    "tests/test_containment.py": "host-launcher",
    "tests/test_launcher.py": "host-launcher",
}


class SerialGroupScheduling(LoadScopeScheduling):
    """pytest-xdist scheduling for ``--dist loadgroup``: a test of :data:`SERIAL_GROUPS` goes to the
    worker that runs the rest of its group; every other test is a unit of its own, as in ``load``.

    It replaces xdist's own loadgroup scheduling, whose ``xdist_group`` marks do not take effect
    under pytest 9 (xdist renames the node ids to carry the group, which pytest 9 no longer reads).
    """

    def _split_scope(self, nodeid: str) -> str:
        for prefix, group in SERIAL_GROUPS.items():
            if nodeid.startswith(prefix):
                return group
        return nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadScopeScheduling | None:
    """The scheduler for ``--dist loadgroup`` (see :class:`SerialGroupScheduling`); xdist's own otherwise."""
    return SerialGroupScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None


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


@pytest.fixture(scope="module")
def genobatch_server(tmp_path_factory: pytest.TempPathFactory):
    """A server with a configured 4-GPU inventory (so pinning is exercised without GPUs)."""
    server = launch(tmp_path_factory, "--gpus", "4")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def batch(genobatch_server: Server):
    return genobatch_server.client()
