"""Listing log streams by name prefix among many finished jobs (DescribeLogStreams, FilterLogEvents).

Fills a SQLite store (in-process, through the store's own writers) with N finished jobs spread over
D job definitions, then times the listing of one definition's streams by prefix - which reads only
that definition's jobs - against the baseline in the same run: the pass over every job that ran,
which is what a listing without a prefix does (and what a prefix listing did before it was
narrowed to the matching definitions).

    python bench/log_listing.py --jobs 100000 --definitions 10
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from launcher import filesystem_probe, load_average, machine_info

from genobatch.api.log_streams import DEFAULT_GROUP, all_streams
from genobatch.core.job import Attempt, Job
from genobatch.core.status import JobStatus
from genobatch.store import catalog
from genobatch.store import jobs as job_rows
from genobatch.store.database import open_database

ARN = "arn:aws:batch:us-east-1:123456789012:job-definition/{}:1"


def fill(url: str, jobs: int, definitions: int) -> None:
    database = open_database(url)
    with database.begin() as conn:
        for index in range(definitions):
            name = f"step{index}"
            catalog.insert_definition(
                conn,
                {
                    "jobDefinitionName": name,
                    "jobDefinitionArn": ARN.format(name),
                    "revision": 1,
                    "status": "ACTIVE",
                    "type": "container",
                    "containerProperties": {"image": "x", "command": ["true"]},
                },
            )
    batch = []
    for seq in range(1, jobs + 1):
        job = Job(str(uuid.uuid4()), "job", "q", seq, 1000, status=JobStatus.SUCCEEDED)
        job.attempts = [Attempt(1, "ce", placed_at=1000, started_at=1001, stopped_at=1002, exit_code=0)]
        spec = {"container": {"image": "x", "command": ["true"]}}
        batch.append((job, ARN.format(f"step{seq % definitions}"), None, spec))
        if len(batch) == 10_000:
            with database.begin() as conn:
                job_rows.insert_jobs(conn, batch)
            batch = []
    if batch:
        with database.begin() as conn:
            job_rows.insert_jobs(conn, batch)
    database.dispose()


def timed(url: str, prefix: str, repeats: int) -> tuple[list[float], int]:
    database = open_database(url)
    seconds, found = [], 0
    for _ in range(repeats):
        with database.connect() as conn:
            began = time.perf_counter()
            found = len(all_streams(conn, lambda job_id, attempt: Path("/nowhere"), DEFAULT_GROUP, prefix))
            seconds.append(time.perf_counter() - began)
    database.dispose()
    return seconds, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--definitions", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    info = machine_info()
    print(f"# {info['date']}  commit {info['commit']}  {info['cpu']}  load {load_average()}")
    print(f"# filesystem {filesystem_probe()}")
    with tempfile.TemporaryDirectory(prefix="gb-log-listing-") as directory:
        url = f"sqlite:///{directory}/store.db"
        began = time.perf_counter()
        fill(url, args.jobs, args.definitions)
        filled_s = time.perf_counter() - began
        print(f"filled {args.jobs:,} finished jobs of {args.definitions} definitions in {filled_s:.1f} s")
        every, all_found = timed(url, "", args.repeats)
        one, one_found = timed(url, "step3/", args.repeats)
    every_s, one_s = statistics.median(every), statistics.median(one)
    print(f"every stream (the pass over all jobs that ran): {all_found:,} streams, median {every_s:.3f} s")
    print(f"one definition's streams by prefix 'step3/': {one_found:,} streams, median {one_s:.3f} s")
    print(f"ratio prefix / every: {one_s / every_s:.3f}x")


if __name__ == "__main__":
    main()
