"""What the Slurm cluster itself says about jobs: the evidence tests compare genobatch against."""

from __future__ import annotations

import subprocess
from collections import Counter


def squeue_names(prefix: str) -> list[str]:
    """Names of every job the cluster still knows (any state) that start with ``prefix``."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%j"], capture_output=True, text=True, check=True).stdout
    return [name for name in out.split() if name.startswith(prefix)]


def accounted_names(prefix: str) -> Counter:
    """How many Slurm jobs (any state, accounting included) carry each name starting with ``prefix``."""
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-S", "now-1days", "-o", "JobName%200"], capture_output=True, text=True, check=True
    ).stdout
    return Counter(name for name in out.split() if name.startswith(prefix))
