"""Fixtures for the Slurm engine: a real single-node Slurm cluster, started by scripts/slurm-cluster.sh.

The cluster (munged, MariaDB + slurmdbd, slurmctld, slurmd) is started once per session and left
running (a second start is a no-op). Where it cannot start, the Slurm tests are skipped, except
under ``CI=true``: there a cluster that cannot start fails them.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from slurm_jobs import SCRIPT


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the Slurm cluster is required under CI=true: {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """Start the cluster (or find it running); set SLURM_CONF for this process and its children."""
    if os.geteuid() != 0 and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode != 0:
        _unavailable("starting a Slurm cluster needs root")
    try:
        done = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        _unavailable("scripts/slurm-cluster.sh start did not finish in 600 s")
    found = re.search(r"export SLURM_CONF=(\S+)", done.stdout)
    if done.returncode != 0 or found is None:
        _unavailable(f"scripts/slurm-cluster.sh start failed: {done.stderr.strip()[-2000:]}")
    os.environ["SLURM_CONF"] = found[1]
    return found[1]
