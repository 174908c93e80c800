"""Placement: which runnable jobs start now, and on which compute environment and devices.

Rules (AWS Batch's, plus genobatch's documented backfill):

* Queues are considered in descending ``priority``; within a queue, jobs in (scheduling priority
  desc, submission order) - FIFO unless ``schedulingPriorityOverride`` says otherwise.
* A job goes to the first compute environment of its queue (in ``order``) that fits it *now*.
* Backfill: a job that does not fit now does not block smaller jobs behind it. To keep a pass
  cheap with a million queued jobs, a pass skips every job of a resource shape that already failed
  to fit, stops a queue as soon as none of its compute environments has a free vCPU or every shape
  still queued there failed to fit (the queue counts its runnable jobs per shape), and looks at
  most ``BACKFILL_WINDOW`` non-fitting jobs past the head of each queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from genobatch.core.compute_environment import ComputeEnvironment
from genobatch.core.job import MAX_RESOURCE, RESOURCE_MISCONFIGURATION, Job, Resources
from genobatch.core.queue import JobQueue

BACKFILL_WINDOW = 1000


@dataclass(frozen=True, slots=True)
class Placement:
    job_id: str
    compute_environment: str
    cpus: tuple[int, ...]
    gpus: tuple[int, ...]


def _first_fit(targets: list[ComputeEnvironment], need: Resources) -> ComputeEnvironment | None:
    return next((ce for ce in targets if ce.fits_now(need)), None)


def place_queue(queue: JobQueue, targets: list[ComputeEnvironment], jobs: Mapping[str, Job]) -> list[Placement]:
    """Place what fits from one queue, reserving capacity; removes placed jobs from the queue."""
    placements: list[Placement] = []
    placed_keys = []
    blocked: set[Resources] = set()
    # Shapes all of whose queued jobs were placed in this pass: counted only when a job misses
    # (placing stays as cheap as before), over the placements since the last count.
    placed_per_shape: dict[Resources, int] = {}
    counted = shapes_done = 0
    misses = 0
    for key in queue.runnable:
        if not any(ce.has_room() for ce in targets) or misses >= BACKFILL_WINDOW:
            break
        job = jobs[key[-1]]
        need = job.resources
        ce = None if need in blocked else _first_fit(targets, need)
        if ce is None:
            blocked.add(need)
            misses += 1
            for _, shape in placed_keys[counted:]:
                placed = placed_per_shape[shape] = placed_per_shape.get(shape, 0) + 1
                shapes_done += placed == queue.shapes[shape]
            counted = len(placed_keys)
            if len(blocked) + shapes_done == len(queue.shapes):
                # Every job still queued has a blocked shape, so none can start in this pass: stop
                # instead of walking the rest of the window (the same placements, far less work).
                break
            continue
        cpus, gpus = ce.pool.take(need)
        ce.used_vcpus += need.vcpus
        placements.append(Placement(job.id, ce.name, cpus, gpus))
        placed_keys.append((key, need))
    for key, need in placed_keys:
        queue.take(key, need)
    return placements


def place(
    queues: Iterable[JobQueue], compute_environments: Mapping[str, ComputeEnvironment], jobs: Mapping[str, Job]
) -> list[Placement]:
    """One placement pass over every queue, highest priority first."""
    placements: list[Placement] = []
    for queue in sorted(queues, key=lambda q: -q.priority):
        if not queue.runnable:
            continue
        targets = [compute_environments[n] for n in queue.compute_environments if n in compute_environments]
        placements.extend(place_queue(queue, targets, jobs))
    return placements


def never_runs_reason(
    need: Resources, queue: JobQueue, compute_environments: Mapping[str, ComputeEnvironment]
) -> str | None:
    """None if a compute environment of ``queue`` could run ``need`` when idle; else AWS's reason code.

    ``MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE`` when every compute environment's
    ``maxvCpus`` is below the job's vCPUs; otherwise ``MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT``
    (no compute environment has an instance - here, the host - that meets the requirement).
    """
    targets = [compute_environments[name] for name in queue.compute_environments if name in compute_environments]
    if any(ce.could_ever_fit(need) for ce in targets):
        return None
    if targets and all(need.vcpus > ce.max_vcpus for ce in targets):
        return MAX_RESOURCE
    return RESOURCE_MISCONFIGURATION


def never_runs_status_reason(code: str, job: Job) -> str:
    """The statusReason of a RUNNABLE job held for ``code`` (from :func:`never_runs_reason`), as AWS words it."""
    if code == MAX_RESOURCE:
        detail = (
            f"the maxvCpus of the compute environment(s) of job queue {job.queue} is smaller than "
            f"the job's {job.resources.vcpus} vCPUs"
        )
    else:
        detail = (
            f"The job resource requirement ({job.resources.describe()}) is higher than that can be met "
            f"by the compute environment(s) of job queue {job.queue}"
        )
    return f"{code} - {detail}"
