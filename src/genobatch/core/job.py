"""The scheduler's view of a job and of its attempts.

These records hold what scheduling decisions need (resources, priority, dependencies, retry
strategy, timeout) and what the job's state is. The full request (command, environment,
parameters, tags) is the store's business: the scheduler never needs it to decide anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genobatch.core.status import JobStatus

N_TO_N = "N_TO_N"
SEQUENTIAL = "SEQUENTIAL"

DEPENDENCY_FAILED = "Dependent Job failed"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
# RUNNABLE status reason codes (User Guide, "Jobs stuck in a RUNNABLE status"). The first two are the
# ones a local compute environment can produce; the others are accepted in jobStateTimeLimitActions
# (AWS documents them as supporting automatic remediation) but never occur here.
RESOURCE_MISCONFIGURATION = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"
MAX_RESOURCE = "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE"
TIME_LIMIT_REASONS = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
    MAX_RESOURCE,
    RESOURCE_MISCONFIGURATION,
    "MISCONFIGURATION:EC2_INSTANCE_CONFIGURATION_UNSUPPORTED",
)


def time_limit_cancel_reason(code: str) -> str:
    """AWS's statusReason for a job cancelled by a job queue's ``jobStateTimeLimitActions``."""
    return f"Canceled by JobStateTimeLimit action due to reason: {code}"


@dataclass(frozen=True, slots=True)
class Resources:
    """What one attempt of a job needs: whole vCPUs, MiB of memory (a hard limit), whole GPUs."""

    vcpus: int = 1
    memory_mib: int = 2048
    gpus: int = 0

    def describe(self) -> str:
        text = f"{self.vcpus} vCPU, {self.memory_mib} MiB"
        return text + (f", {self.gpus} GPU" if self.gpus else "")


@dataclass(slots=True)
class Attempt:
    """One try at running a job. Times are epoch milliseconds."""

    number: int  # 1-based
    compute_environment: str
    cpus: tuple[int, ...] = ()
    gpus: tuple[int, ...] = ()
    placed_at: int = 0
    started_at: int | None = None
    stopped_at: int | None = None
    exit_code: int | None = None
    reason: str | None = None  # container reason
    status_reason: str | None = None  # attempt reason
    info: dict = field(default_factory=dict)  # backend's facts: pid, runtime, hostname
    usage: dict = field(default_factory=dict)  # measured usage (trace fields)
    timed_out: bool = False
    # A successor placed ahead on a running attempt's devices (genobatch.core.handoff): the
    # (job id, attempt number) it waits for; it starts the moment that attempt ends.
    after: tuple[str, int] | None = None

    @property
    def finished(self) -> bool:
        return self.stopped_at is not None


@dataclass(slots=True)
class Job:
    """A job (plain, array parent or array child) as the scheduler tracks it."""

    id: str
    name: str
    queue: str
    seq: int  # global submission order: FIFO tie-breaker
    created_at: int
    resources: Resources = field(default_factory=Resources)
    priority: int = 0  # schedulingPriority (higher first)
    max_attempts: int = 1
    evaluate_on_exit: tuple[dict, ...] = ()
    timeout_s: int | None = None
    status: JobStatus = JobStatus.SUBMITTED
    status_reason: str | None = None
    parent_id: str | None = None
    array_index: int | None = None
    array_size: int | None = None  # set on array parents only
    # Dependencies as they apply to this job: (job id, type or None). For array children,
    # N_TO_N and SEQUENTIAL are already resolved to concrete child ids.
    depends_on: tuple[tuple[str, str | None], ...] = ()
    started_at: int | None = None
    stopped_at: int | None = None
    is_cancelled: bool = False
    is_terminated: bool = False
    # Why the job is to stop, when it cannot stop at once: TerminateJob on a started attempt, or
    # CancelJob on a PENDING job (which AWS cancels only once its dependencies complete).
    stop_reason: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    summary: dict[str, int] | None = None  # array parents: children per status
    summary_updated_at: int | None = None  # array parents: when ``summary`` last changed
    # Scheduler-internal bookkeeping, rebuilt on restore, never persisted. None until the job has
    # one: an empty set and list were 270 of a queued job's ~800 bytes in memory (issue 9).
    waiting_on: set[str] | None = None
    dependents: list[str] | None = None

    @property
    def is_array_parent(self) -> bool:
        return self.array_size is not None

    @property
    def current(self) -> Attempt | None:
        """The attempt in progress (placed, started, not yet stopped), if any."""
        if self.attempts and not self.attempts[-1].finished:
            return self.attempts[-1]
        return None

    def sort_key(self) -> tuple[int, int, int]:
        """Order within a queue: higher priority first, then submission order, then array index."""
        return (-self.priority, self.seq, self.array_index or 0)
