"""What the scheduling core asks its shell to do: start, stop or withdraw an attempt.

:class:`~genobatch.core.scheduler.Scheduler` returns these from its methods; the engine (and the
simulator) carry them out through a backend.
"""

from __future__ import annotations

from dataclasses import dataclass

from genobatch.core.handoff import HolderKey


@dataclass(frozen=True, slots=True)
class StartAttempt:
    """Start attempt ``attempt`` of ``job_id`` on ``compute_environment`` with these devices."""

    job_id: str
    attempt: int
    compute_environment: str
    cpus: tuple[int, ...]
    gpus: tuple[int, ...]
    # Placed ahead (genobatch.core.handoff): start only once this (job id, attempt) has ended.
    after: HolderKey | None = None


@dataclass(frozen=True, slots=True)
class StopAttempt:
    """Stop a running attempt (SIGTERM, then SIGKILL after the grace period)."""

    job_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class WithdrawAttempt:
    """Drop a successor placed ahead if it has not started; the backend answers with
    ``AttemptNotStarted`` (then it is RUNNABLE again) or, if it started, with its usual events."""

    job_id: str
    attempt: int


Action = StartAttempt | StopAttempt | WithdrawAttempt
