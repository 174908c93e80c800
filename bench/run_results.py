"""Collecting a run's published results (genobatch.report.results) for thousands of jobs, cold and cached.

The web console refreshes a run's results whenever its jobs change, so ``collect`` runs again and again
over the same ended attempts. This writes N attempt logs of the demo's shape (2 KB of output and one
``genobatch:results`` line), then times, in the same run: the baseline (every log read and parsed:
``collect`` with a plain reader), the first cached pass (cold: stat + read + parse) and later cached
passes (stat only). Prints seconds per pass and the ratio to the baseline.

    python bench/run_results.py [--jobs 7000] [--passes 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time

from genobatch.report.results import attempt_log_reader, collect


def build(root: str, jobs: int) -> list[dict]:
    rows = []
    line = 'genobatch:results {"metrics":{"precision":0.99,"recall":0.98},"units":{"precision":"fraction"}}\n'
    for index in range(jobs):
        job_id = f"parent:{index}"
        directory = os.path.join(root, job_id, "1")
        os.makedirs(directory)
        with open(os.path.join(directory, "output.log"), "w") as log:
            log.write("x" * 2000 + "\n" + line)
        rows.append(
            {
                "id": job_id,
                "name": "evaluate",
                "array_index": index,
                "status": "SUCCEEDED",
                "definition_arn": "arn:aws:batch:us-east-1:0:job-definition/evaluate:1",
                "spec": {"tags": {"genobatch:sample-prefix": "sample"}},
                "state": {"summary": None, "attempts": [{"number": 1, "stopped_at": 1, "exit_code": 0}]},
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=7000)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        rows = build(root, args.jobs)
        where = lambda job_id, attempt: os.path.join(root, job_id, str(attempt))  # noqa: E731
        cached_reader = attempt_log_reader(where)

        def plain(job_id: str, attempt: int) -> str:  # the same reads, without the .parsed cache
            return cached_reader(job_id, attempt)

        def timed(reader) -> float:  # noqa: ANN001
            started = time.perf_counter()
            results = collect(rows, reader)
            assert len(results.samples) == args.jobs
            return time.perf_counter() - started

        baseline = [timed(plain) for _ in range(args.passes)]
        cold = timed(cached_reader)
        warm = [timed(cached_reader) for _ in range(args.passes)]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{args.jobs} ended jobs, median of {args.passes} passes")
    print(f"baseline (read + parse every log): {statistics.median(baseline):.3f} s")
    print(f"cached, first pass (cold):          {cold:.3f} s ({cold / statistics.median(baseline):.2f}x)")
    warm_s = statistics.median(warm)
    print(f"cached, later passes:               {warm_s:.3f} s ({warm_s / statistics.median(baseline):.2f}x)")


if __name__ == "__main__":
    main()
