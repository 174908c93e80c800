"""The scheduler's view of a job queue: its runnable jobs, in the order they are considered."""

from __future__ import annotations

from dataclasses import dataclass, field

from sortedcontainers import SortedList

from genobatch.core.job import Job


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

    def add(self, job: Job) -> None:
        self.runnable.add((*job.sort_key(), job.id))

    def remove(self, job: Job) -> None:
        self.runnable.discard((*job.sort_key(), job.id))
