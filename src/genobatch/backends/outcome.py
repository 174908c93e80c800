"""How the end of a local attempt is reported: exit code, reason and status reason, as AWS Batch words them.

The texts are those a Batch job's container shows (``Essential container in task exited``,
``OutOfMemoryError: ...``, ``CannotStartContainerError: ...``); the ``Host process vanished``
ones have no Batch counterpart and say what happened on this host.
"""

from __future__ import annotations

import os

from genobatch.backends.attempt import CHILD_PID_FILE, OOM_MARKER
from genobatch.backends.base import AttemptExited
from genobatch.backends.containment import Containment, EndOfAttempt
from genobatch.backends.host import mtime_ms, read_int
from genobatch.backends.launch import read_attempt_file
from genobatch.backends.usage import ExitRecord, UsageAccumulator, build_usage

OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
EXITED = "Essential container in task exited"
FAILED_TO_START = "Task failed to start"
STOPPED_BEFORE_START = "Task stopped before it started"
VANISHED = "Host process vanished: the attempt's wrapper ended without recording an exit status"
VANISHED_LAUNCHER = "Host process vanished: the launcher ended without recording an exit status"
VANISHED_RESTART = "Host process vanished (server restarted and the attempt was not found)"


def exit_fields(record: ExitRecord | None, oom: bool, launched: bool = False) -> tuple[int | None, str | None, str]:
    """(exit code, reason, status reason) for an attempt whose wrapper (or launcher) has ended.

    ``record`` is the exit record (None: the wrapper, or the persistent launcher if
    ``launched``, ended without one); ``oom``: the attempt was killed at its memory limit.
    """
    if record is None:
        return (137, OOM_REASON, EXITED) if oom else (None, None, VANISHED_LAUNCHER if launched else VANISHED)
    if record.status == "notfound":
        return None, "CannotStartContainerError: executable file not found in $PATH", FAILED_TO_START
    if record.status == "nocgroup":
        return None, "CannotStartContainerError: the command could not join its cgroup", FAILED_TO_START
    return record.exit_code, OOM_REASON if oom else None, EXITED


def add_kernel_peak(usage: dict, end: EndOfAttempt, oom: bool) -> None:
    """Add the cgroup's peak charge (page cache included) as ``peak_memory_charged``. For an
    attempt killed at its limit, that is also its ``peak_rss``: the samples of the working set
    (taken every monitor interval) would miss the final climb."""
    if end.peak_bytes:
        usage["peak_memory_charged"] = end.peak_bytes
        if oom:
            usage["peak_rss"] = max(usage.get("peak_rss", 0), end.peak_bytes)


def recovered_exit(
    job_id: str, attempt: int, attempt_dir: str, record: ExitRecord, info: dict | None, hostname: str
) -> AttemptExited:
    """The AttemptExited of an attempt that ended while the server was down; whatever it left
    running is killed now."""
    meta = read_attempt_file(attempt_dir)
    end = Containment.recorded(attempt_dir, meta, info).end(
        read_int(os.path.join(attempt_dir, CHILD_PID_FILE)), meta.get("created_ms")
    )
    oom = end.out_of_memory or os.path.exists(os.path.join(attempt_dir, OOM_MARKER))
    exit_code, reason, status = exit_fields(record, oom)
    usage = build_usage(
        UsageAccumulator(),
        record,
        start_ms=mtime_ms(os.path.join(attempt_dir, CHILD_PID_FILE)),
        end_ms=record.mtime_ms,
        hostname=hostname,
    )
    add_kernel_peak(usage, end, oom)
    return AttemptExited(job_id, attempt, record.mtime_ms, exit_code, reason, status, usage)
