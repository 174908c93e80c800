"""States error names, Retry/Catch matching and retry delays.

AWS's rules (Step Functions developer guide, "Error handling in Step Functions"):
- ``States.ALL`` matches every error name except ``States.Runtime`` (a runtime error, e.g. a path
  that does not resolve, is not retried or caught by ``States.ALL``); it must stand alone and last.
- ``States.TaskFailed`` in a Task's retrier/catcher acts as a wildcard for any error except
  ``States.Timeout`` (and, like States.ALL, not ``States.Runtime``).
- Retry delay before retry ``n`` (0-based): ``IntervalSeconds * BackoffRate ** n`` capped at
  ``MaxDelaySeconds``; ``JitterStrategy: FULL`` draws the delay uniformly from [0, that delay].
  Here the draw is derived from the execution's seed and the attempt's token, so a replay draws
  the same delay.
"""

from __future__ import annotations

import hashlib
from typing import Any

ALL = "States.ALL"
TIMEOUT = "States.Timeout"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
TASK_FAILED = "States.TaskFailed"
PERMISSIONS = "States.Permissions"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"
BRANCH_FAILED = "States.BranchFailed"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
EXCEED_TOLERATED_FAILURE_THRESHOLD = "States.ExceedToleratedFailureThreshold"
ITEM_READER_FAILED = "States.ItemReaderFailed"
RESULT_WRITER_FAILED = "States.ResultWriterFailed"
RUNTIME = "States.Runtime"

PREDEFINED = frozenset(
    {
        ALL,
        TIMEOUT,
        HEARTBEAT_TIMEOUT,
        TASK_FAILED,
        PERMISSIONS,
        RESULT_PATH_MATCH_FAILURE,
        PARAMETER_PATH_FAILURE,
        QUERY_EVALUATION_ERROR,
        BRANCH_FAILED,
        NO_CHOICE_MATCHED,
        INTRINSIC_FAILURE,
        EXCEED_TOLERATED_FAILURE_THRESHOLD,
        ITEM_READER_FAILED,
        RESULT_WRITER_FAILED,
        RUNTIME,
    }
)

DEFAULT_INTERVAL_S = 1.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BACKOFF_RATE = 2.0


class StatesError(Exception):
    """An error raised while running a state: ``error`` is the States name, ``cause`` the text."""

    def __init__(self, error: str, cause: str):
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


def matches(error_equals: list[str], error: str, *, in_task: bool) -> bool:
    """Whether a retrier's or catcher's ``ErrorEquals`` covers ``error``."""
    if error in error_equals:
        return True
    if error == RUNTIME:
        return False
    if ALL in error_equals:
        return True
    return in_task and TASK_FAILED in error_equals and error != TIMEOUT


def find_match(handlers: list[dict], error: str, *, in_task: bool) -> int | None:
    """The index of the first Retry/Catch entry whose ErrorEquals covers ``error``, or None."""
    for index, handler in enumerate(handlers):
        if matches(handler.get("ErrorEquals", []), error, in_task=in_task):
            return index
    return None


def seeded_fraction(seed: int, key: str) -> float:
    """A number in [0, 1) determined by (seed, key): the core's only source of randomness."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def retry_delay(retrier: dict[str, Any], retry_number: int, seed: int, key: str) -> float:
    """Seconds to wait before retry ``retry_number`` (0 for the first retry) under ``retrier``."""
    delay = float(retrier.get("IntervalSeconds", DEFAULT_INTERVAL_S)) * float(
        retrier.get("BackoffRate", DEFAULT_BACKOFF_RATE)
    ) ** int(retry_number)
    max_delay = retrier.get("MaxDelaySeconds")
    if max_delay is not None:
        delay = min(delay, float(max_delay))
    if retrier.get("JitterStrategy", "NONE") == "FULL":
        delay *= seeded_fraction(seed, key)
    return delay


def max_attempts(retrier: dict[str, Any]) -> int:
    """How many retries ``retrier`` allows (MaxAttempts, default 3; 0 = never retry)."""
    return int(retrier.get("MaxAttempts", DEFAULT_MAX_ATTEMPTS))
