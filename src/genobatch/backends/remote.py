"""Remote engines: a backend that hands attempts to an existing distributed engine (Slurm, AWS Batch).

Two pieces, so that each engine module stays a thin client:

* :class:`RemoteEngine` - the narrow interface one engine implements (``slurm.py``,
  ``aws_batch.py``): submit many attempts, read many states in one go, find attempts by name,
  signal and cancel. No threads, no genobatch state; every method may block on the network.
* :class:`RemoteBackend` - the :class:`~genobatch.backends.base.Backend` the engine sees. One
  worker thread per compute environment submits in batches, polls all tracked attempts once per
  interval (O(1) calls per poll for an engine with a bulk state call), carries out stops (SIGTERM,
  then SIGKILL after the grace period), and turns what it sees into events.

Crash safety. An attempt's STARTING state is durable before :meth:`RemoteBackend.start` is called
(the engine commits before it dispatches). The handle the engine returns is reported at once as
:class:`AttemptSubmitted` and persisted with the next commit. If the server dies in between, the
attempt comes back through ``reconcile`` without a handle and is looked up by its stable name
(:func:`~genobatch.backends.base.attempt_name`): found, it is adopted; not found anywhere, it was
never submitted and is submitted now. A submission whose answer was lost (a timeout: it may or may
not have happened) takes the same path, so nothing is lost and nothing runs twice.

An engine that cannot be reached (:class:`RemoteUnavailable`) changes nothing: attempts keep their
states, submissions wait, and the compute environment shows the problem
(:class:`~genobatch.backends.base.EnvironmentHealth`) until the engine answers again.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from genobatch.backends.base import (
    AttemptExited,
    AttemptSpec,
    AttemptStarted,
    AttemptSubmitted,
    Backend,
    EnvironmentHealth,
    EventSink,
    Inventory,
)

log = logging.getLogger("genobatch.backends.remote")

#: AWS Batch's status reasons for the cases a remote engine reports.
FAILED_TO_START = "Task failed to start"
EXITED = "Essential container in task exited"
VANISHED = "Host EC2 instance terminated or job vanished from the remote engine"
#: Polls in a row a tracked handle may be missing from the engine's answer before it counts as gone.
MISSING_POLLS = 3


class RemoteUnavailable(Exception):  # noqa: N818 - a condition, like TimeoutError
    """The engine could not be reached or answered with a server-side error; nothing is known to
    have changed. The message says what happened (shown as the compute environment's reason)."""


@dataclass(frozen=True, slots=True)
class Submitted:
    """The engine accepted the attempt; ``handle`` is its id there. ``info`` is persisted with it."""

    handle: str
    info: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refused:
    """The engine refused the attempt for good. ``misconfiguration`` when the job's resources can
    never be met there (the job fails with ``MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT``)."""

    message: str
    misconfiguration: bool = False


@dataclass(frozen=True, slots=True)
class Uncertain:
    """The answer was lost (e.g. a timeout): the attempt may or may not have been submitted."""

    message: str


SubmitResult = Submitted | Refused | Uncertain


@dataclass(frozen=True, slots=True)
class RemoteState:
    """What the engine says about one attempt.

    ``phase`` is ``"queued"`` (accepted, not running yet), ``"running"`` or ``"ended"``. For an
    ended attempt: ``exit_code`` (None if it never ran or was killed by a signal the engine does
    not map), ``reason`` (container-level, e.g. the OOM reason), ``status_reason`` (attempt-level),
    ``timed_out`` (the engine's own time limit ended it), ``final`` (it can never run as
    specified: no retry; e.g. a remote queue that holds it for a MISCONFIGURATION, which the
    engine module then cancels there) and ``usage`` (trace keys, see
    :mod:`genobatch.backends.usage`). Times are epoch milliseconds where the engine knows them.
    ``info`` adds facts worth persisting with the attempt (node, log stream name).
    """

    handle: str
    phase: str
    started_at_ms: int | None = None
    stopped_at_ms: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    status_reason: str | None = None
    timed_out: bool = False
    final: bool = False
    usage: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


class RemoteEngine(abc.ABC):
    """One distributed engine, as a :class:`RemoteBackend` drives it.

    Contract (every method may raise :class:`RemoteUnavailable`, and nothing else for an engine
    problem; it must not raise for one job's problem):

    * ``probe()`` checks the configuration against the engine (partition or queue exists,
      credentials work); raises :class:`RemoteUnavailable` saying what is wrong.
    * ``submit(specs)`` submits attempts (in as few calls as the engine allows) under the name
      ``spec.name``; returns one :class:`SubmitResult` per spec, in order. It must not raise
      after any of them was submitted: the rest are :class:`Uncertain` or retried internally.
    * ``states(handles)`` answers for many attempts in as few calls as possible (never one call
      per attempt per poll); a handle the engine no longer knows is left out of the answer.
    * ``find(names)`` maps attempt names to handles for attempts that were ever submitted and
      are still known to the engine (or to durable evidence the engine module keeps, such as a
      marker the job itself writes on the shared disk); missing names were never submitted.
    * ``signal(handles)`` asks the attempts to end (SIGTERM or the engine's equivalent);
      ``cancel(handles)`` ends them now (SIGKILL, or removes them while queued). Both return at
      once; an attempt that already ended is ignored.
    * ``collect_log(handle, state, attempt_dir)`` makes the attempt's output available in
      ``attempt_dir/output.log`` where the engine does not write it there itself (called while
      running and once more when ended). Default: nothing to do.
    * ``poll_interval_s`` is how often states are read; ``batch_size`` the most attempts handed to
      one ``submit`` call.
    """

    kind: str = ""
    poll_interval_s: float = 1.0
    batch_size: int = 100

    @abc.abstractmethod
    def probe(self) -> None:
        """Raise :class:`RemoteUnavailable` if the engine or this configuration cannot run jobs."""

    @abc.abstractmethod
    def submit(self, specs: Sequence[AttemptSpec]) -> list[SubmitResult]:
        """Submit attempts; one result per spec."""

    @abc.abstractmethod
    def states(self, handles: Sequence[str]) -> dict[str, RemoteState]:
        """The states of many attempts, keyed by handle."""

    @abc.abstractmethod
    def find(self, names: Sequence[str]) -> dict[str, str]:
        """Handles of the attempts with these names that were ever submitted."""

    @abc.abstractmethod
    def signal(self, handles: Sequence[str]) -> None:
        """Ask the attempts to end (SIGTERM)."""

    @abc.abstractmethod
    def cancel(self, handles: Sequence[str]) -> None:
        """End the attempts now (SIGKILL, or remove them while queued)."""

    def collect_log(self, handle: str, state: RemoteState, attempt_dir: str) -> None:  # noqa: B027 - optional hook
        """Bring the attempt's output into ``attempt_dir/output.log`` (engines that do not write it there)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


@dataclass(slots=True)
class _Tracked:
    """An attempt this backend is responsible for, from start (or adoption) to its end."""

    spec: AttemptSpec
    handle: str | None = None
    needs_lookup: bool = False  # handle unknown: find it by name before submitting again
    started: bool = False
    missing_polls: int = 0
    stop_requested: bool = False
    signalled: bool = False
    kill_at: float | None = None  # monotonic deadline for the SIGKILL of a stop


class RemoteBackend(Backend):
    """Runs the attempts of one compute environment on a :class:`RemoteEngine` (see module docstring)."""

    def __init__(self, engine: RemoteEngine, compute_environment: str, *, clock=time.monotonic) -> None:
        self.engine = engine
        self.compute_environment = compute_environment
        self._clock = clock
        self._sink: EventSink | None = None
        self._lock = threading.Condition()
        self._tracked: dict[tuple[str, int], _Tracked] = {}
        self._to_submit: deque[tuple[str, int]] = deque()
        self._healthy = False  # probe() first, and again after the engine was unreachable
        self._reported_problem: str | None = "unknown"  # forces the first report
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"genobatch-remote-{compute_environment}", daemon=True)

    # ----------------------------------------------------------------- Backend
    def bind(self, sink: EventSink) -> None:
        self._sink = sink
        self._thread.start()

    def inventory(self) -> Inventory | None:
        return None  # the remote engine places jobs: capacity is counted against maxvCpus

    def start(self, spec: AttemptSpec) -> None:
        key = (spec.job_id, spec.attempt)
        with self._lock:
            if key in self._tracked:
                return
            self._tracked[key] = _Tracked(spec)
            self._to_submit.append(key)
            self._lock.notify()

    def stop(self, job_id: str, attempt: int, grace_s: float = 30.0) -> None:
        with self._lock:
            tracked = self._tracked.get((job_id, attempt))
            if tracked is None or tracked.stop_requested:
                return
            tracked.stop_requested = True
            tracked.kill_at = self._clock() + grace_s
            self._lock.notify()

    def reconcile(self, spec: AttemptSpec, info: dict) -> AttemptExited | None:
        key = (spec.job_id, spec.attempt)
        with self._lock:
            if key in self._tracked:
                return None
            handle = (info or {}).get("handle")
            self._tracked[key] = _Tracked(spec, handle=handle, needs_lookup=handle is None)
            self._lock.notify()
        return None

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._lock.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.engine.close()

    # ----------------------------------------------------------------- worker
    def _run(self) -> None:
        next_poll = 0.0
        while True:
            with self._lock:
                if self._closing:
                    return
                wait = max(0.0, min(next_poll, self._next_kill()) - self._clock())
                if wait > 0 and not self._work_waiting():
                    self._lock.wait(timeout=wait)
                if self._closing:
                    return
            try:
                if not self._healthy:
                    self.engine.probe()
                    self._healthy = True
                self._lookup_lost()
                self._submit_waiting()
                self._carry_out_stops()
                if self._clock() >= next_poll:
                    next_poll = self._clock() + self.engine.poll_interval_s
                    self._poll()
                self._set_problem(None)
            except RemoteUnavailable as problem:
                self._healthy = False
                self._set_problem(str(problem))
                next_poll = self._clock() + max(self.engine.poll_interval_s, 2.0)
                with self._lock:  # back off; a stop or close still wakes us
                    self._lock.wait(timeout=max(self.engine.poll_interval_s, 2.0))
            except Exception:  # noqa: BLE001 - the worker must outlive a bug in one engine call
                log.exception("remote backend %s: unexpected error; retrying", self.compute_environment)
                with self._lock:
                    self._lock.wait(timeout=2.0)

    def _emit(self, event: object) -> None:
        assert self._sink is not None
        self._sink(event)

    def _set_problem(self, problem: str | None) -> None:
        if problem == self._reported_problem:
            return
        if problem is not None:
            log.warning("compute environment %s: %s", self.compute_environment, problem)
        self._reported_problem = problem
        self._emit(EnvironmentHealth(self.compute_environment, problem))

    def _now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def _lookup_lost(self) -> None:
        """Attempts whose handle is unknown: adopt the ones the engine has, submit the rest."""
        with self._lock:
            lost = {t.spec.name: key for key, t in self._tracked.items() if t.needs_lookup}
        if not lost:
            return
        found = self.engine.find(list(lost))
        with self._lock:
            for name, key in lost.items():
                tracked = self._tracked.get(key)
                if tracked is None:
                    continue
                tracked.needs_lookup = False
                if name in found:
                    tracked.handle = found[name]
                    self._emit(AttemptSubmitted(key[0], key[1], self._now_ms(), {"handle": tracked.handle}))
                elif tracked.stop_requested:
                    self._end(key, AttemptExited(key[0], key[1], self._now_ms(), None, None, FAILED_TO_START))
                else:
                    self._to_submit.append(key)

    def _submit_waiting(self) -> None:
        """Submit one batch; the worker comes back for the next, so a long backlog (10,000 children
        paced to a quota) never holds up polls and stops."""
        with self._lock:
            keys = [self._to_submit.popleft() for _ in range(min(len(self._to_submit), self.engine.batch_size))]
            batch = []
            for key in keys:
                tracked = self._tracked.get(key)
                if tracked is None:
                    continue
                if tracked.stop_requested:  # stopped before it was ever submitted
                    self._end(key, AttemptExited(key[0], key[1], self._now_ms(), None, None, FAILED_TO_START))
                    continue
                batch.append(tracked)
        if not batch:
            return
        try:
            results = self.engine.submit([t.spec for t in batch])
        except RemoteUnavailable:
            with self._lock:  # nothing was submitted: try again later, in the same order
                self._to_submit.extendleft(reversed([(t.spec.job_id, t.spec.attempt) for t in batch]))
            raise
        for tracked, result in zip(batch, results, strict=True):
            self._settle_submission(tracked, result)

    def _settle_submission(self, tracked: _Tracked, result: SubmitResult) -> None:
        spec = tracked.spec
        if isinstance(result, Submitted):
            with self._lock:
                tracked.handle = result.handle
            self._emit(
                AttemptSubmitted(spec.job_id, spec.attempt, self._now_ms(), {"handle": result.handle, **result.info})
            )
        elif isinstance(result, Refused):
            reason = result.message
            status_reason = (
                f"MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - {reason}" if result.misconfiguration else FAILED_TO_START
            )
            exited = AttemptExited(
                spec.job_id, spec.attempt, self._now_ms(), None, reason, status_reason, final=result.misconfiguration
            )
            with self._lock:
                self._end((spec.job_id, spec.attempt), exited)
        else:
            log.warning("submission of %s uncertain (%s); looking it up by name", spec.name, result.message)
            with self._lock:
                tracked.needs_lookup = True

    def _work_waiting(self) -> bool:
        """Whether something is to be done before the next poll (caller holds the lock)."""
        return bool(self._to_submit) or any(
            t.needs_lookup or (t.stop_requested and t.handle and not t.signalled) for t in self._tracked.values()
        )

    def _next_kill(self) -> float:
        deadlines = [t.kill_at for t in self._tracked.values() if t.kill_at is not None and t.handle]
        return min(deadlines, default=float("inf"))

    def _carry_out_stops(self) -> None:
        """SIGTERM for new stops; SIGKILL for stops past their grace (or still queued remotely)."""
        now = self._clock()
        with self._lock:
            to_signal = [t for t in self._tracked.values() if t.stop_requested and t.handle and not t.signalled]
            to_kill = [t for t in self._tracked.values() if t.kill_at is not None and t.handle and t.kill_at <= now]
        if to_signal:
            self.engine.signal([t.handle for t in to_signal])
            with self._lock:
                for t in to_signal:
                    t.signalled = True
        if to_kill:
            self.engine.cancel([t.handle for t in to_kill])
            with self._lock:
                for t in to_kill:
                    t.kill_at = None

    def _poll(self) -> None:
        with self._lock:
            watched = {t.handle: key for key, t in self._tracked.items() if t.handle}
        if not watched:
            return
        states = self.engine.states(list(watched))
        for handle, key in watched.items():
            with self._lock:
                tracked = self._tracked.get(key)
            if tracked is None:
                continue
            state = states.get(handle)
            if state is None:
                tracked.missing_polls += 1
                if tracked.missing_polls >= MISSING_POLLS:
                    with self._lock:
                        self._end(key, AttemptExited(key[0], key[1], self._now_ms(), None, None, VANISHED))
                continue
            tracked.missing_polls = 0
            self._observe(key, tracked, state)

    def _observe(self, key: tuple[str, int], tracked: _Tracked, state: RemoteState) -> None:
        job_id, attempt = key
        if state.phase in ("running", "ended") and not tracked.started and state.started_at_ms is not None:
            tracked.started = True
            self._emit(AttemptStarted(job_id, attempt, state.started_at_ms, {"handle": state.handle, **state.info}))
        if state.phase == "running":
            self.engine.collect_log(state.handle, state, tracked.spec.attempt_dir)
        if state.phase != "ended":
            return
        self.engine.collect_log(state.handle, state, tracked.spec.attempt_dir)
        exited = AttemptExited(
            job_id,
            attempt,
            state.stopped_at_ms or self._now_ms(),
            state.exit_code,
            state.reason,
            state.status_reason or (EXITED if state.exit_code is not None else FAILED_TO_START),
            usage=dict(state.usage),
            timed_out=state.timed_out,
            final=state.final,
        )
        with self._lock:
            self._end(key, exited)

    def _end(self, key: tuple[str, int], exited: AttemptExited) -> None:
        """Forget the attempt and report its end (caller holds the lock)."""
        self._tracked.pop(key, None)
        self._emit(exited)
