"""What the Slurm cluster itself says about jobs: the evidence tests compare genobatch against.

genobatch names each attempt ``gb_<job>_<attempt>`` (children ``gb_<parent>_<index>_<attempt>``);
children that went out together as a Slurm job array share the name
``gb_<parent>_array_<attempt>`` and are told apart by their task index. Both helpers count
attempts under the child's own name either way.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

from genobatch.backends.slurm_format import expand_job_ids

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm-cluster.sh"
_ARRAY = re.compile(r"(.*)_array_(\d+)")


def _attempt_names(rows: list[tuple[str, str]], prefix: str) -> Counter:
    names: Counter = Counter()
    for job_id, name in rows:
        array = _ARRAY.fullmatch(name)
        for one in expand_job_ids(job_id) if array else [job_id]:
            child = f"{array[1]}_{one.split('_')[1]}_{array[2]}" if array and "_" in one else name
            if child.startswith(prefix):
                names[child] += 1
    return names


def squeue_names(prefix: str) -> Counter:
    """Attempts the cluster still knows (any state) whose names start with ``prefix``, by name."""
    out = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-O", "ArrayJobID:|,ArrayTaskID:|,Name:"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        array_job, task, name = (field.strip() for field in line.split("|", 2))
        rows.append((f"{array_job}_{task}" if task.isdigit() else array_job, name))
    return _attempt_names(rows, prefix)


def accounted_names(prefix: str) -> Counter:
    """Attempts in Slurm's accounting (any state) whose names start with ``prefix``, by name."""
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-S", "now-1days", "-o", "JobID,JobName%200"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return _attempt_names([tuple(line.split("|", 1)) for line in out.splitlines() if "|" in line], prefix)
