"""The scheduler's view of a job queue: its runnable jobs, in the order they are considered."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sortedcontainers import SortedList

from genobatch.core.job import Job, Resources


@dataclass(slots=True)
class JobQueue:
    """Runnable jobs ordered by (priority desc, submission order, array index).

    ``parked`` holds RUNNABLE jobs that no compute environment of this queue could ever run, each
    with its RUNNABLE reason code and when it was parked (for ``jobStateTimeLimitActions``); they
    are reconsidered when the queue or its compute environments change.
    """

    name: str
    priority: int
    compute_environments: tuple[str, ...]  # in ``order``
    enabled: bool = True
    time_limits: dict[str, int] = field(default_factory=dict)  # RUNNABLE reason -> seconds, then CANCEL
    runnable: SortedList = field(default_factory=SortedList)
    parked: dict[str, tuple[str, int]] = field(default_factory=dict)  # job id -> (reason code, since ms)
    # Runnable jobs per resource shape: a placement pass stops once every shape here is blocked.
    shapes: Counter[Resources] = field(default_factory=Counter)
    # Ids of this queue's STARTING and RUNNING jobs, kept by the scheduler on
    # each transition: what the queue uses now is read from these, not from a scan of every job.
    active: set[str] = field(default_factory=set)

    def add(self, job: Job) -> None:
        self.runnable.add((*job.sort_key(), job.id))
        self.shapes[job.resources] += 1

    def add_many(self, jobs: list[Job], resources: Resources) -> None:
        """:meth:`add` for many jobs of one shape at once (a restore's): one sorted merge."""
        self.runnable.update([(*job.sort_key(), job.id) for job in jobs])
        self.shapes[resources] += len(jobs)

    def remove(self, job: Job) -> None:
        key = (*job.sort_key(), job.id)
        if key in self.runnable:
            self.take(key, job.resources)

    def take(self, key: tuple, resources: Resources) -> None:
        """Take a job that is in the runnable list (by its sort key) out of it."""
        self.runnable.remove(key)
        left = self.shapes[resources] - 1
        if left:
            self.shapes[resources] = left
        else:
            del self.shapes[resources]
