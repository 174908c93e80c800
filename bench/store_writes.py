"""The engine's write path alone: CPU per batch of ``store.jobs.update_jobs``, baseline vs current.

The array benchmark's CPU figures move by several percent with the host's load, which hides a
change worth a few tenths of a millisecond per batch. This one times only what the engine does
per batch to write its changed jobs (one transaction, ``update_jobs`` of ``--batch`` jobs, each with
one attempt as the local backend records it), in a fresh SQLite database, in a subprocess per
source tree, alternating the trees ``--repeats`` times. CPU is the thread's own
(``time.thread_time``), so other processes' load affects it little.

Run: ``python bench/store_writes.py --baseline-src /tmp/gb-base/src [--batches 2000] [--batch 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from launcher import machine_info

_CHILD = r"""
import json, sys, tempfile, time
from genobatch.core.job import Attempt, Job, Resources
from genobatch.store import jobs as job_rows
from genobatch.store.database import open_database

batches, size = int(sys.argv[1]), int(sys.argv[2])
directory = tempfile.mkdtemp(prefix="gb-store-writes-")
database = open_database(f"sqlite:///{directory}/bench.db")
info = {
    "pid": 4321, "child_pid": 4322, "runtime": "host", "image": "busybox", "hostname": "host",
    "attempt_dir": f"{directory}/jobs/0123456789abcdef/1", "containment": "cgroup",
    "memory_enforcement": "cgroup v1", "cgroup": "/sys/fs/cgroup/memory/genobatch/x/job-1-abc",
    "cgroup_version": 1, "launcher_pid": 99,
}
jobs = []
for index in range(batches * size):
    job = Job(id=f"job-{index}", name="bench", queue="q", seq=index, created_at=0,
              resources=Resources(1, 64, 0), priority=0, max_attempts=1, evaluate_on_exit=(), timeout_s=None)
    job.attempts.append(Attempt(number=1, compute_environment="ce", cpus=(0,), gpus=(), placed_at=0, info=dict(info)))
    jobs.append(job)
with database.begin() as conn:
    job_rows.insert_jobs(conn, [(job, "arn", None, {}) for job in jobs])
began = time.thread_time()
for start in range(0, len(jobs), size):
    with database.begin() as conn:
        job_rows.update_jobs(conn, jobs[start : start + size])
print(json.dumps({"cpu_ms_per_batch": (time.thread_time() - began) * 1000 / batches}))
"""


def run_tree(src: str | None, batches: int, size: int) -> float:
    """CPU ms per batch with genobatch imported from ``src`` (None: the installed tree)."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(batches), str(size)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["cpu_ms_per_batch"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-src", required=True, metavar="DIR", help="source tree of the baseline")
    parser.add_argument("--batches", type=int, default=2000, help="batches per run (default 2000)")
    parser.add_argument("--batch", type=int, default=2, help="jobs per batch (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per tree, alternating (default 3)")
    args = parser.parse_args()
    info = machine_info()
    print(f"# {info['date']}  commit {info['commit']}  {info['cpu']}  python {info['python']}  load {info['load']}")
    results: dict[str, list[float]] = {"baseline": [], "current": []}
    for _ in range(args.repeats):
        results["baseline"].append(run_tree(args.baseline_src, args.batches, args.batch))
        results["current"].append(run_tree(None, args.batches, args.batch))
    for name, values in results.items():
        cells = " ".join(f"{value:.3f}" for value in values)
        median = statistics.median(values)
        print(f"{name}: update_jobs of {args.batch} jobs, CPU ms per batch: {cells} (median {median:.3f})")
    ratio = statistics.median(results["current"]) / statistics.median(results["baseline"])
    print(f"ratio current/baseline: {ratio:.2f}x")
    print(f"# baseline tree {Path(args.baseline_src).resolve()}")


if __name__ == "__main__":
    main()
