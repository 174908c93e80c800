"""The Batch jobs of ``.sync`` tasks that the workflow runner waits for, and how their ends are read.

The store is the truth: a job has ended when its final status is committed. A poll reads only the
candidates - jobs the engine's scheduler no longer holds (it forgets a job once its final status is
committed) or holds as final. Reading 1,000 tracked jobs' statuses from the store every poll was
15 % of the runner thread's samples in a 1,000-item Map, taking the GIL from the engine; a dict
lookup per job is not. A candidate whose committed status is not final yet (the scheduler is ahead
of the store, or rebuilding) is simply asked again at the next poll. Ended jobs are described
through the Batch API's own DescribeJobs handler (a ``.sync`` task's output is that job).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from genobatch.api import job_queries
from genobatch.context import Context
from genobatch.engine import Engine, now_ms
from genobatch.store import jobs as job_rows
from genobatch.workflow import batch_task

FINAL_JOB = frozenset({"SUCCEEDED", "FAILED"})  # a Batch job's final statuses

Key = tuple[str, str]  # (execution ARN, task token)


class EndedJob(NamedTuple):
    """A watched job's end as its task sees it: the task's output (the DescribeJobs job in
    PascalCase) if it SUCCEEDED, else the task's error and cause."""

    job_id: str
    succeeded: bool
    output: dict | None
    error: str | None
    cause: str | None

    @classmethod
    def of(cls, job: dict) -> EndedJob:
        if job["status"] == "SUCCEEDED":
            return cls(job["jobId"], True, batch_task.job_output(job), None, None)
        return cls(job["jobId"], False, None, *batch_task.job_failure(job))


class JobWatch:
    """Job id -> the task waiting for it, and the poll that finds which of them have ended."""

    def __init__(self, engine: Engine, poll_interval_s: float) -> None:
        self.engine = engine
        self.poll_interval_s = poll_interval_s
        self.jobs: dict[str, Key] = {}
        self._last_poll = 0.0

    def track(self, job_id: str, key: Key) -> None:
        self.jobs[job_id] = key

    def forget(self, job_id: str | None) -> Key | None:
        """Stop watching ``job_id``; the task it was watched for, if it was."""
        return self.jobs.pop(job_id or "", None)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self.jobs

    def clear(self) -> None:
        self.jobs.clear()

    def seconds_to_next_poll(self) -> float | None:
        """How long the runner may wait for other work before polling; None: nothing is watched."""
        if not self.jobs:
            return None
        return max(0.0, self._last_poll + self.poll_interval_s - time.monotonic())

    def poll(self) -> list[EndedJob]:
        """If a poll is due: the watched jobs that have ended, in reporting order. Described and
        converted here, on the runner's thread, not in its batch on the engine thread (which stops
        starting jobs while a batch runs)."""
        if not self.jobs or time.monotonic() - self._last_poll < self.poll_interval_s:
            return []
        self._last_poll = time.monotonic()
        live = self.engine.scheduler.jobs  # read-only here; the engine thread owns it (lookups are atomic)
        candidates = []
        for job_id in list(self.jobs):
            job = live.get(job_id)
            if job is None or job.status.value in FINAL_JOB:
                candidates.append(job_id)
        if not candidates:
            return []
        with self.engine.database.connect() as conn:
            described = self.describe_ended(conn, candidates)
        ended = {job.job_id for job in described}
        settling = any(job_id in live and job_id not in ended for job_id in candidates)
        return in_reporting_order(described, settling=settling)

    def ended_of(self, conn: Any, execution_arn: str) -> list[EndedJob]:
        """Now, on ``conn``: the watched jobs of one execution that have ended, in reporting order."""
        job_ids = [job_id for job_id, key in self.jobs.items() if key[0] == execution_arn]
        return in_reporting_order(self.describe_ended(conn, job_ids), settling=False) if job_ids else []

    def describe_ended(self, conn: Any, job_ids: list[str]) -> list[EndedJob]:
        """Those of ``job_ids`` whose committed status is final, described by DescribeJobs."""
        statuses = job_rows.statuses(conn, job_ids)
        ended = sorted(job_id for job_id, status in statuses.items() if status.value in FINAL_JOB)
        described: list[dict] = []
        for start in range(0, len(ended), 100):
            request = {"jobs": ended[start : start + 100]}
            described += job_queries.describe_jobs(Context(conn, self.engine.settings, now_ms()), request)["jobs"]
        return [EndedJob.of(job) for job in described]


def in_reporting_order(finished: list[EndedJob], *, settling: bool) -> list[EndedJob]:
    """The ended jobs of one poll in the order the interpreter should learn of them.

    A failure can abort other work (the siblings of a failed Map iteration or Parallel branch). Every
    job of this poll had already ended before the interpreter hears of the failure, so its successes
    are reported first: a job that SUCCEEDED is never aborted and run again by a redrive because a
    sibling's failure happened to be read in the same poll. For the same reason, failures wait for
    the next poll while another watched job has ended in the scheduler but its final status is not
    committed yet (``settling``); a failure then costs at most one poll interval more.
    """
    succeeded = [job for job in finished if job.succeeded]
    if settling:
        return succeeded
    return succeeded + [job for job in finished if not job.succeeded]
