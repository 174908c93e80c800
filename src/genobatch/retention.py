"""Retention: deleting what finished jobs leave in the data directory, by a documented rule.

Every attempt has a directory ``jobs/<job id>/<attempt>/`` with its log (``output.log``), small
bookkeeping files and ``work/``, the command's working directory. Left alone they grow without
bound (18,000 jobs left half a gigabyte), so a thread of the server applies this policy:

* **records**: the bookkeeping files a finished job's attempts leave (``attempt.json``, the pid
  files, ``exit_status``, ``stop``, the OOM marker) and an empty ``work/`` are deleted
  ``keep_records_s`` after the job ended (default one hour). Everything in them is in the store by
  then (they exist so that a restarted server can settle attempts in flight), so a finished
  attempt keeps only its log and its directory (issue 9: 8 KiB allocated on ext4 for a job that
  printed nothing, its job directory included, against 24 KiB; ``bench/attempt_disk.py``);
* **work directories**: ``work/`` of every attempt of a finished job (SUCCEEDED or FAILED) is
  deleted ``keep_work_s`` after the job ended (default one day; a container's filesystem is gone
  when its task ends on AWS Batch too);
* **logs**: the whole ``jobs/<job id>/`` directory of a finished job is deleted once the job ended
  more than ``keep_logs_s`` ago (default 30 days) or is not among the ``keep_logs_jobs`` most
  recently ended jobs (default 10,000). ``None`` disables a rule.

Only jobs in a final state are touched, so a live attempt never is: every attempt of a final job
has ended. The thread reads the store on its own connection and deletes files itself, off the
engine thread, so a large deletion never delays scheduling. Before deleting logs it records the
cut-off in ``retention.json``, so that the logs endpoint can say that a log was removed by this
policy rather than that it never existed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine as Database
from sqlalchemy import select

from genobatch.backends.attempt import CHILD_PID_FILE, OOM_MARKER, WRAPPER_PID_FILE
from genobatch.backends.host import STOP_FILE
from genobatch.backends.launch import SPEC_FILE
from genobatch.backends.usage import EXIT_FILE
from genobatch.core.status import TERMINAL
from genobatch.store.schema import jobs as jobs_table

log = logging.getLogger("genobatch.retention")
STATE_FILE = "retention.json"
QUERY_CHUNK = 500  # ids per IN (...) query: well under SQLite's and PostgreSQL's limits
#: An attempt's bookkeeping files (local backend): read only to settle an attempt that was in
#: flight when the server stopped; the store holds all they say once the job is final.
RECORD_FILES = (SPEC_FILE, WRAPPER_PID_FILE, CHILD_PID_FILE, EXIT_FILE, STOP_FILE, OOM_MARKER)


@dataclass(frozen=True)
class Policy:
    """How long finished jobs' files are kept; None: no limit of that kind."""

    keep_logs_s: float | None = 30 * 86400.0
    keep_logs_jobs: int | None = 10_000
    keep_work_s: float | None = 86400.0
    keep_records_s: float | None = 3600.0

    def describe_logs(self) -> str:
        """The logs rule in words, for messages."""
        rules = []
        if self.keep_logs_s is not None:
            rules.append(f"for {_duration(self.keep_logs_s)} after the job ended")
        if self.keep_logs_jobs is not None:
            rules.append(f"for the {self.keep_logs_jobs} most recently ended jobs")
        return "logs of finished jobs are kept " + " and ".join(rules) if rules else "logs are kept forever"


@dataclass(frozen=True)
class FinishedJob:
    """A job in a final state that still has files on disk."""

    job_id: str
    stopped_at_ms: int
    attempts: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    """What one pass deletes, and the cut-offs it records."""

    remove_logs: tuple[FinishedJob, ...]
    remove_work: tuple[FinishedJob, ...]
    logs_cutoff_ms: int | None  # every finished job that ended before this loses its directory
    work_cutoff_ms: int | None
    remove_records: tuple[FinishedJob, ...] = ()


def plan(finished: list[FinishedJob], policy: Policy, now_ms: int) -> Plan:
    """Decide what to delete (pure: no files, no clock).

    Logs: a job loses its directory when it ended before ``logs_cutoff_ms``, the later of
    ``now - keep_logs_s`` and the end of the ``keep_logs_jobs``-th most recently ended job (jobs
    that ended at that same millisecond are all kept). Work: the remaining jobs that ended before
    ``now - keep_work_s`` lose their attempts' ``work/``; records: those that ended before
    ``now - keep_records_s`` lose their attempts' bookkeeping files (:data:`RECORD_FILES`).
    """
    cutoffs = []
    if policy.keep_logs_s is not None:
        cutoffs.append(now_ms - int(policy.keep_logs_s * 1000))
    if policy.keep_logs_jobs is not None and len(finished) > policy.keep_logs_jobs:
        newest_first = sorted((job.stopped_at_ms for job in finished), reverse=True)
        # Keeping none: the cut-off passes the newest job; else it is the oldest job kept.
        kept = newest_first[policy.keep_logs_jobs - 1] if policy.keep_logs_jobs else newest_first[0] + 1
        cutoffs.append(kept)
    logs_cutoff = max(cutoffs) if cutoffs else None
    remove_logs = tuple(job for job in finished if logs_cutoff is not None and job.stopped_at_ms < logs_cutoff)
    work_cutoff = None if policy.keep_work_s is None else now_ms - int(policy.keep_work_s * 1000)
    gone = {job.job_id for job in remove_logs}
    kept = [job for job in finished if job.job_id not in gone]
    remove_work = tuple(job for job in kept if work_cutoff is not None and job.stopped_at_ms < work_cutoff)
    records_cutoff = None if policy.keep_records_s is None else now_ms - int(policy.keep_records_s * 1000)
    remove_records = tuple(job for job in kept if records_cutoff is not None and job.stopped_at_ms < records_cutoff)
    return Plan(remove_logs, remove_work, logs_cutoff, work_cutoff, remove_records)


def job_stopped_at(state: Mapping[str, Any]) -> int | None:
    """When a job ended: its ``stopped_at``, else its last attempt's (None if never)."""
    if state.get("stopped_at") is not None:
        return int(state["stopped_at"])
    ends = [a["stopped_at"] for a in state.get("attempts", []) if a.get("stopped_at") is not None]
    return max(ends) if ends else None


def read_state(data_dir: Path) -> dict[str, Any]:
    """``retention.json``: the cut-offs applied so far, or ``{}``."""
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def removal_note(data_dir: Path, job_state: Mapping[str, Any], attempt: int) -> str | None:
    """Why attempt ``attempt``'s log is gone, when the retention policy removed it; else None."""
    state = read_state(data_dir)
    cutoff = state.get("logs_removed_before_ms")
    stopped = job_stopped_at(job_state)
    if not isinstance(cutoff, int) or stopped is None or stopped >= cutoff:
        return None
    when = state.get("logs_removed_at_ms")
    on = f" on {datetime.fromtimestamp(when / 1000, UTC):%Y-%m-%d %H:%M UTC}" if isinstance(when, int) else ""
    rule = state.get("logs_rule") or "the retention policy"
    return f"the log of attempt {attempt} was removed{on} by the retention policy ({rule})"


class Retention:
    """The thread that applies a :class:`Policy` to one data directory every ``interval_s``."""

    def __init__(self, data_dir: Path, jobs_dir: Path, database: Database, policy: Policy, interval_s: float) -> None:
        self.data_dir = data_dir
        self.jobs_dir = jobs_dir
        self.database = database
        self.policy = policy
        self.interval_s = interval_s
        # Jobs whose records this process has removed already: a pass does not try them again
        # (kept to the jobs still on disk, so it never outgrows the directory).
        self._records_removed: set[str] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run a pass now and then every ``interval_s`` until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="genobatch-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current pass (a pass interrupted by exit is simply resumed next start)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once(time.time_ns() // 1_000_000)
            except Exception:  # noqa: BLE001 - a failed pass is retried at the next interval
                log.exception("retention pass failed")
            self._stopping.wait(self.interval_s)

    def run_once(self, now_ms: int) -> Plan:
        """One pass: find finished jobs with files, record the cut-offs, delete."""
        decided = plan(self.finished_jobs(), self.policy, now_ms)
        if decided.remove_logs:
            self._record(decided, now_ms)
        for job in decided.remove_logs:
            self._delete(self.jobs_dir / job.job_id)
        for job in decided.remove_work:
            for attempt in job.attempts:
                self._delete(self.jobs_dir / job.job_id / str(attempt) / "work")
        records = [job for job in decided.remove_records if job.job_id not in self._records_removed]
        for job in records:
            for attempt in job.attempts:
                _remove_records(self.jobs_dir / job.job_id / str(attempt))
        self._records_removed = {job.job_id for job in decided.remove_records}
        if decided.remove_logs or decided.remove_work or records:
            log.info(
                "retention: removed the logs of %d finished jobs, the work directories of %d, the records of %d",
                len(decided.remove_logs),
                len(decided.remove_work),
                len(records),
            )
        return decided

    def finished_jobs(self) -> list[FinishedJob]:
        """Jobs with a directory on disk that are final in the store (unknown ids are left alone).

        Starting from the directories keeps each pass proportional to what is on disk, not to
        every job ever run.
        """
        try:
            names = sorted(entry.name for entry in os.scandir(self.jobs_dir) if entry.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []
        finished = []
        with self.database.connect() as conn:
            for start in range(0, len(names), QUERY_CHUNK):
                chunk = names[start : start + QUERY_CHUNK]
                query = select(jobs_table.c.id, jobs_table.c.status, jobs_table.c.state).where(
                    jobs_table.c.id.in_(chunk)
                )
                for row in conn.execute(query):
                    stopped = job_stopped_at(row.state)
                    if row.status in TERMINAL and stopped is not None:
                        attempts = tuple(a["number"] for a in row.state.get("attempts", []))
                        finished.append(FinishedJob(row.id, stopped, attempts))
        return finished

    def _record(self, decided: Plan, now_ms: int) -> None:
        """Write the logs cut-off before deleting, so the logs endpoint never misses a removal."""
        state = read_state(self.data_dir)
        previous = state.get("logs_removed_before_ms")
        cutoff = decided.logs_cutoff_ms or 0
        state.update(
            logs_removed_before_ms=max(cutoff, previous) if isinstance(previous, int) else cutoff,
            logs_removed_at_ms=now_ms,
            logs_rule=self.policy.describe_logs(),
        )
        tmp = self.data_dir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.data_dir / STATE_FILE)

    @staticmethod
    def _delete(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            try:
                shutil.rmtree(path)
            except OSError as exc:
                log.warning("retention: could not delete %s: %s", path, exc)


def _remove_records(attempt_dir: Path) -> None:
    """Delete an ended attempt's bookkeeping files and its ``work/`` if empty (the command's own
    files stay until the work rule); the log and the directory stay."""
    for name in RECORD_FILES:
        try:
            os.unlink(attempt_dir / name)
        except FileNotFoundError:
            continue  # never written (a wrapper's pid file under the launcher, a stop, ...)
        except OSError as exc:
            log.warning("retention: could not delete %s: %s", attempt_dir / name, exc)
            return
    with contextlib.suppress(OSError):  # missing, or not empty
        os.rmdir(attempt_dir / "work")


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"
