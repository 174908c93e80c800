"""The backend interface: how an attempt of a job is run somewhere.

The engine decides *what* runs *where* (the pure core in :mod:`genobatch.core`); a backend only
carries an attempt out and reports what happened. One file per backend implements
:class:`Backend` (``local.py`` runs host processes; Slurm and AWS Batch federation follow).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AttemptSpec:
    """Everything a backend needs to start one attempt of one job.

    ``cpus`` and ``gpus`` are the concrete device indices the scheduler assigned (exclusive to this
    attempt while it runs); ``memory_mib`` is a hard limit. ``attempt_dir`` is a directory owned by
    this attempt: the backend keeps its control files (pid, exit status, log) there and runs the
    command in ``attempt_dir/work``.
    """

    job_id: str
    attempt: int  # 1-based
    command: tuple[str, ...]
    environment: dict[str, str]
    attempt_dir: str
    vcpus: int
    memory_mib: int
    cpus: tuple[int, ...] = ()
    gpus: tuple[int, ...] = ()
    image: str | None = None
    compute_environment: str = ""


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    """The attempt's process exists. ``info`` is backend-specific and persisted (e.g. pid)."""

    job_id: str
    attempt: int
    at_ms: int
    info: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AttemptExited:
    """The attempt ended.

    ``exit_code`` is None when it never ran or vanished. ``reason`` is the container-level reason
    AWS Batch reports (e.g. ``"OutOfMemoryError: Container killed due to memory usage"``), or None.
    ``status_reason`` is the attempt-level reason (e.g. ``"Essential container in task exited"``,
    ``"Task failed to start"``). ``usage`` carries measured resource usage (Nextflow trace fields)
    where the backend collects it.
    """

    job_id: str
    attempt: int
    at_ms: int
    exit_code: int | None
    reason: str | None = None
    status_reason: str = "Essential container in task exited"
    usage: dict = field(default_factory=dict)


BackendEvent = AttemptStarted | AttemptExited
EventSink = Callable[[BackendEvent], None]


@dataclass(frozen=True, slots=True)
class Inventory:
    """What a backend's hosts offer: vCPU indices, memory in MiB and GPU indices."""

    cpus: tuple[int, ...]
    memory_mib: int
    gpus: tuple[int, ...] = ()


class Backend(abc.ABC):
    """Runs attempts and reports their life cycle as events.

    Contract:

    * ``start(spec)`` must return quickly (it may hand the work to a thread pool) and must not
      raise for a job-level failure: a command that cannot be started is reported as
      :class:`AttemptExited` with ``exit_code=None`` and ``status_reason="Task failed to start"``.
      Exactly one :class:`AttemptStarted` (when the process exists) and then exactly one
      :class:`AttemptExited` are delivered to the event sink for every started attempt, from any
      thread. The exit status must survive a crash of the server: it is recoverable from
      ``attempt_dir`` by :meth:`reconcile`.
    * ``stop(job_id, attempt, grace_s)`` asks a running attempt to end: SIGTERM (or the backend's
      equivalent) now, SIGKILL after ``grace_s`` seconds. It returns at once; the end is reported
      by the usual :class:`AttemptExited`. Stopping an attempt that already ended is a no-op.
    * ``reconcile(job_id, attempt, attempt_dir, info)`` is called after a server restart for
      every attempt the store believes is STARTING or RUNNING. The backend either adopts a
      still-running attempt (returns None and later delivers its :class:`AttemptExited`), or
      returns the :class:`AttemptExited` it recovered (exit code from the status file), or an
      :class:`AttemptExited` with ``exit_code=None`` and a status reason saying it vanished.
      It must never start the attempt a second time.
    * ``inventory()`` describes the capacity the backend offers; the scheduler places against it.
    * ``close()`` stops background threads; running attempts are left running (they are adopted
      on the next start).
    """

    @abc.abstractmethod
    def bind(self, sink: EventSink) -> None:
        """Set the callable that receives this backend's events. Called once, before ``start``."""

    @abc.abstractmethod
    def inventory(self) -> Inventory:
        """The capacity this backend offers."""

    @abc.abstractmethod
    def start(self, spec: AttemptSpec) -> None:
        """Start an attempt; report AttemptStarted then AttemptExited through the sink."""

    @abc.abstractmethod
    def stop(self, job_id: str, attempt: int, grace_s: float = 30.0) -> None:
        """SIGTERM now, SIGKILL after ``grace_s``; the end arrives as AttemptExited."""

    @abc.abstractmethod
    def reconcile(self, job_id: str, attempt: int, attempt_dir: str, info: dict) -> AttemptExited | None:
        """Adopt (None) or settle (AttemptExited) an attempt found after a restart."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop background work; leave running attempts running."""
