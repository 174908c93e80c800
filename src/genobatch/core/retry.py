"""Retry decisions: ``retryStrategy.attempts`` and ``evaluateOnExit``, as AWS Batch documents them.

Entries are tried in order; an entry matches when every condition it states matches; the first
match's action wins. If no entry matches, the job is retried (the documented default, which users
are told to end with ``{"action": "EXIT", "onReason": "*"}`` to change).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

RETRY = "RETRY"
EXIT = "EXIT"


def glob_matches(pattern: str, value: str | None) -> bool:
    """AWS Batch patterns: literal text, optionally ending with ``*`` (prefix match).

    A missing value matches only a pattern that is exactly ``*``.
    """
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value is not None and value.startswith(pattern[:-1])
    return value == pattern


@dataclass(frozen=True, slots=True)
class ExitInfo:
    """What is known about how an attempt ended, as evaluateOnExit sees it."""

    exit_code: int | None
    reason: str | None  # container reason, e.g. "OutOfMemoryError: Container killed due to memory usage"
    status_reason: str | None  # attempt reason, e.g. "Essential container in task exited"
    timed_out: bool = False  # the backend's engine ended it for its time limit
    final: bool = False  # it can never run as specified: no retry


def _entry_matches(entry: Mapping[str, str], info: ExitInfo) -> bool:
    checks = (
        ("onExitCode", None if info.exit_code is None else str(info.exit_code)),
        ("onReason", info.reason),
        ("onStatusReason", info.status_reason),
    )
    return all(glob_matches(entry[key], value) for key, value in checks if key in entry)


def decide(evaluate_on_exit: Sequence[Mapping[str, str]], info: ExitInfo) -> str:
    """Return ``RETRY`` or ``EXIT`` for a failed attempt (attempt limits are checked elsewhere)."""
    for entry in evaluate_on_exit:
        if _entry_matches(entry, info):
            return entry["action"].upper()
    return RETRY


def validate_entry(entry: Mapping[str, str]) -> str | None:
    """Return a message naming what is wrong with one evaluateOnExit entry, or None."""
    if entry.get("action", "").upper() not in (RETRY, EXIT):
        return "evaluateOnExit.action must be RETRY or EXIT"
    for key in ("onExitCode", "onReason", "onStatusReason"):
        pattern = entry.get(key)
        if pattern is None:
            continue
        if len(pattern) > 512:
            return f"evaluateOnExit.{key} is longer than 512 characters"
        if "*" in pattern[:-1]:
            return f"evaluateOnExit.{key}: '*' is only allowed at the end of the pattern"
        if key == "onExitCode" and not pattern.rstrip("*").isdigit() and pattern != "*":
            return "evaluateOnExit.onExitCode may contain only digits, optionally ending with '*'"
    return None
