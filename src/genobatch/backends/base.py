"""The backend interface: how an attempt of a job is run somewhere.

The engine decides *what* runs *where* (the pure core in :mod:`genobatch.core`); a backend only
carries an attempt out and reports what happened. Every compute environment has one backend, chosen
by its ``genobatch:backend`` tag (:mod:`genobatch.backends.registry`); the engine and the scheduler
never know which one it is. One file per backend implements :class:`Backend`:

* ``local.py`` runs host processes. It places on concrete devices: :meth:`Backend.inventory` names
  the host's vCPU and GPU indices, and the scheduler hands each attempt its own.
* ``remote.py`` drives an existing distributed engine that places jobs itself; capacity is counted
  (the compute environment's ``maxvCpus``), not indexed. Each engine is one module implementing the
  narrower :class:`genobatch.backends.remote.RemoteEngine`: ``slurm.py``, ``aws_batch.py``.
  Kubernetes (AWS Batch on EKS) would be one more ``RemoteEngine``: submit = create a Job object
  named after the attempt, states = one list call with a label selector, stop = delete with a grace
  period, logs = the pod log API.

Whatever the backend, an attempt's combined output ends up in ``attempt_dir/output.log`` (the local
process writes it; Slurm's ``--output`` writes it on a shared disk; the AWS Batch backend copies it
from CloudWatch Logs), so ``genobatch logs`` and the logs endpoints read every backend alike; and
usage arrives with :class:`AttemptExited`, in the trace's keys.
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

    On a count-placed (remote) compute environment ``cpus`` and ``gpus`` are empty and
    ``gpu_count`` says how many GPUs to ask the remote engine for. ``name`` identifies the attempt
    outside genobatch (a Slurm job name, a remote AWS Batch job name): it is derived from job id and
    attempt number only, so the same attempt always gets the same name - what lets a backend find
    an attempt whose submission handle was lost in a crash. ``container`` is the job's effective
    container properties (definition merged with the submit-time overrides) and
    ``job_definition`` the definition's ARN, for engines that run containers themselves.
    ``timeout_s`` is the job's attempt timeout, for engines that want a time limit of their own.
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
    gpu_count: int = 0
    timeout_s: int | None = None
    name: str = ""
    container: dict = field(default_factory=dict)
    job_definition: str = ""
    # A successor placed ahead (genobatch.core.handoff): the (job id, attempt) whose devices it
    # takes; start it only once that attempt has ended. Only backends whose ``hands_off`` is True
    # get one.
    after: tuple[str, int] | None = None


def attempt_name(job_id: str, attempt: int) -> str:
    """The attempt's stable outside name: ``gb_<job id>_<attempt>`` (``:`` of array children as ``_``).

    Fits AWS Batch's job name rules (letters, digits, ``-`` and ``_``, at most 128) and Slurm's.
    """
    return f"gb_{job_id.replace(':', '_')}_{attempt}"


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    """The attempt's process exists. ``info`` is backend-specific and persisted (e.g. pid)."""

    job_id: str
    attempt: int
    at_ms: int
    info: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AttemptSubmitted:
    """A remote engine accepted the attempt; ``info`` holds its durable handle (e.g. Slurm job id).

    The job stays STARTING until :class:`AttemptStarted`; the engine persists ``info`` with the
    attempt so that a restart reconciles against the handle.
    """

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
    where the backend collects it. ``timed_out`` says the backend's engine ended it for its time
    limit (Slurm's TIMEOUT), so the job fails with the timeout reason as with genobatch's own timer.
    ``final`` says the job can never run as specified (a remote engine refused it, e.g. more memory
    than any node): no retry, ``status_reason`` says why.
    """

    job_id: str
    attempt: int
    at_ms: int
    exit_code: int | None
    reason: str | None = None
    status_reason: str = "Essential container in task exited"
    usage: dict = field(default_factory=dict)
    timed_out: bool = False
    final: bool = False


@dataclass(frozen=True, slots=True)
class AttemptNotStarted:
    """The attempt never started and never will: a successor withdrawn before its holder ended,
    or one that a crash kept from being started (found by ``reconcile``). Not a failed attempt:
    the job is RUNNABLE again."""

    job_id: str
    attempt: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class EnvironmentHealth:
    """A compute environment's backend became reachable (``problem`` None) or not (why not).

    The engine shows it as the compute environment's ``status`` (VALID / INVALID) and
    ``statusReason``, as AWS does for a broken environment; its jobs keep their states.
    """

    compute_environment: str
    problem: str | None


BackendEvent = AttemptStarted | AttemptSubmitted | AttemptExited | AttemptNotStarted | EnvironmentHealth
EventSink = Callable[[BackendEvent], None]


@dataclass(frozen=True, slots=True)
class Inventory:
    """What a backend's hosts offer: vCPU indices, memory in MiB and GPU indices."""

    cpus: tuple[int, ...]
    memory_mib: int
    gpus: tuple[int, ...] = ()


class Backend(abc.ABC):
    """Runs attempts and reports their life cycle as events.

    A backend instance may serve several compute environments (all local ones share the host);
    ``spec.compute_environment`` says which one an attempt is for. Events carry only
    (job id, attempt number), which the engine maps back.

    Contract:

    * ``start(spec)`` must return quickly (it may hand the work to a thread pool) and must not
      raise for a job-level failure: a command that cannot be started is reported as
      :class:`AttemptExited` with ``exit_code=None`` and ``status_reason="Task failed to start"``.
      Exactly one :class:`AttemptStarted` (when the process exists) and then exactly one
      :class:`AttemptExited` are delivered to the event sink for every started attempt, from any
      thread (an attempt that ends before anyone saw it run may get only the
      :class:`AttemptExited`). A backend whose attempts are handed to another engine first
      reports :class:`AttemptSubmitted` with the handle. The exit status must survive a crash of
      the server: it is recoverable by :meth:`reconcile` (from ``attempt_dir`` or the engine).
    * ``stop(job_id, attempt, grace_s)`` asks a running attempt to end: SIGTERM (or the backend's
      equivalent) now, SIGKILL after ``grace_s`` seconds. It returns at once; the end is reported
      by the usual :class:`AttemptExited`. Stopping an attempt that already ended is a no-op.
    * ``reconcile(spec, info)`` is called after a server restart (and after the engine rebuilt its
      state) for every attempt the store believes is STARTING or RUNNING, with the spec it was
      started from and the ``info`` persisted from its events. The backend either adopts the
      attempt (returns None and later delivers its events), or returns the :class:`AttemptExited`
      it recovered (exit code from the status file), or an :class:`AttemptExited` with
      ``exit_code=None`` and a status reason saying it vanished, or :class:`AttemptNotStarted`
      when it can tell that the attempt never started (the engine then places it again). It must
      never run the attempt a second time; a remote backend that finds no trace of an attempt
      anywhere (the server died before submitting it) may submit it then, under the same name.
    * ``hands_off``: True for a backend that can start a successor the moment its holder ends
      (``spec.after``); ``withdraw(job_id, attempt)`` then drops a successor that has not
      started (reported as :class:`AttemptNotStarted`; one that started is left alone).
    * ``inventory()`` describes the devices a backend places on itself (None for one whose engine
      places jobs: the scheduler then counts vCPUs against the compute environment's maxvCpus).
    * ``close()`` stops background threads; running attempts are left running (they are adopted
      on the next start).
    """

    @abc.abstractmethod
    def bind(self, sink: EventSink) -> None:
        """Set the callable that receives this backend's events. Called once, before ``start``."""

    @abc.abstractmethod
    def inventory(self) -> Inventory | None:
        """The devices this backend places on, or None when its engine places jobs."""

    @abc.abstractmethod
    def start(self, spec: AttemptSpec) -> None:
        """Start an attempt; report AttemptStarted then AttemptExited through the sink."""

    @abc.abstractmethod
    def stop(self, job_id: str, attempt: int, grace_s: float = 30.0) -> None:
        """SIGTERM now, SIGKILL after ``grace_s``; the end arrives as AttemptExited."""

    @abc.abstractmethod
    def reconcile(self, spec: AttemptSpec, info: dict) -> AttemptExited | None:
        """Adopt (None) or settle (AttemptExited) an attempt found after a restart."""

    @property
    def hands_off(self) -> bool:
        """Whether this backend takes successors placed ahead (``AttemptSpec.after``)."""
        return False

    def withdraw(self, job_id: str, attempt: int) -> None:  # noqa: B027 - optional, as hands_off says
        """Drop a successor that has not started (see ``hands_off``); none here."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop background work; leave running attempts running."""
