"""Job states and the table of allowed transitions between them.

The table is the single place that says which state changes are legal; the scheduler refuses any
other (an ``IllegalTransition`` is a bug in genobatch, never a user error). It follows the AWS Batch
user guide's job_states page: SUBMITTED -> PENDING (unmet dependencies) -> RUNNABLE -> STARTING ->
RUNNING -> SUCCEEDED | FAILED, a retry takes RUNNING back to RUNNABLE, and cancellation or a failed
dependency ends a job that has not started.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    RUNNABLE = "RUNNABLE"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


S = JobStatus

#: Allowed transitions for a job that runs (a plain job or an array child).
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.SUBMITTED: frozenset({S.PENDING, S.RUNNABLE, S.FAILED}),
    S.PENDING: frozenset({S.RUNNABLE, S.FAILED}),
    S.RUNNABLE: frozenset({S.STARTING, S.FAILED}),
    # STARTING -> RUNNABLE: the attempt failed to start and will be retried.
    S.STARTING: frozenset({S.RUNNING, S.RUNNABLE, S.FAILED}),
    # RUNNING -> RUNNABLE: a failed attempt that evaluateOnExit (or its absence) retries.
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.RUNNABLE}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
}

#: An array parent never runs itself: it is SUBMITTED, PENDING while its children work, then final.
ARRAY_PARENT_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.SUBMITTED: frozenset({S.PENDING, S.FAILED}),
    S.PENDING: frozenset({S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
}

TERMINAL = frozenset({S.SUCCEEDED, S.FAILED})
#: States in which a job has not started: TerminateJob ends such a job at once.
CANCELLABLE = frozenset({S.SUBMITTED, S.PENDING, S.RUNNABLE})
#: CancelJob ends a job in these states at once; in STARTING and RUNNING it leaves the job alone.
CANCELLED_AT_ONCE = frozenset({S.SUBMITTED, S.RUNNABLE})
#: API_CancelJob: "A PENDING job is canceled after all dependency jobs are completed." The job is
#: marked cancelled and stays PENDING; when its dependencies settle it goes PENDING -> FAILED
#: instead of PENDING -> RUNNABLE.
CANCELLED_WHEN_DEPENDENCIES_DONE = frozenset({S.PENDING})
#: States in which a process may exist and TerminateJob must stop it.
ACTIVE = frozenset({S.STARTING, S.RUNNING})


class IllegalTransition(RuntimeError):
    """A state change the table does not allow: a bug in the scheduler, not a user error."""


def check_transition(old: JobStatus, new: JobStatus, *, array_parent: bool = False) -> None:
    """Raise :class:`IllegalTransition` unless ``old -> new`` is in the table."""
    table = ARRAY_PARENT_TRANSITIONS if array_parent else TRANSITIONS
    if new not in table.get(old, frozenset()):
        kind = "array parent" if array_parent else "job"
        raise IllegalTransition(f"{kind}: {old} -> {new} is not an allowed transition")
