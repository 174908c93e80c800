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

    def add(self, job: Job) -> None:
        self.runnable.add((*job.sort_key(), job.id))
        self.shapes[job.resources] += 1

    def remove(self, job: Job) -> None:
        self.discard((*job.sort_key(), job.id), job.resources)

    def discard(self, key: tuple, resources: Resources) -> None:
        """Take the job with sort key ``key`` out of the runnable list, if it is there."""
        if key in self.runnable:
            self.runnable.remove(key)
            self.shapes[resources] -= 1
            if not self.shapes[resources]:
                del self.shapes[resources]
