"""The engine: the one thread that changes state.

Write operations from the API and events from the backend go into one inbox. The engine takes
whatever has arrived (up to ``BATCH_LIMIT`` items), applies it to the pure scheduler, writes every
changed job in a single transaction, and only after the commit answers the callers and starts or
stops attempts. So a SubmitJob is acknowledged only once it is durable, and an attempt starts only
once its STARTING state is durable - a ``kill -9`` at any moment loses and duplicates nothing.
Batching is also what makes thousands of short jobs cheap: one commit serves many changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine as Database

from genobatch.api.errors import ApiError, ServerException
from genobatch.backends.base import (
    AttemptExited,
    AttemptNotStarted,
    AttemptSpec,
    AttemptStarted,
    AttemptSubmitted,
    Backend,
    EnvironmentHealth,
    attempt_name,
)
from genobatch.backends.registry import LOCAL, BackendRegistry, backend_kind
from genobatch.catalog_cache import CatalogCache
from genobatch.config import Settings
from genobatch.context import Context
from genobatch.core.action import StartAttempt, StopAttempt, WithdrawAttempt
from genobatch.core.pool import CountedPool, HostPool
from genobatch.core.retry import ExitInfo
from genobatch.core.scheduler import Scheduler
from genobatch.store import catalog
from genobatch.store import jobs as job_rows

log = logging.getLogger("genobatch.engine")
BATCH_LIMIT = 2000
LOCAL_POOL = "local"
RETRY_DELAY_S = 1.0  # before a deferred backend event or a store reload is tried again
SPEC_CACHE_LIMIT = 4096  # job specs kept for starts; a few KiB each, so a few MiB at most
_PR_SET_NAME = 15  # prctl option (linux/prctl.h)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class ConfigureBackend:
    """After the commit: (re)make the backend of a compute environment; ``tags`` None = deleted."""

    compute_environment: str
    tags: dict | None


@dataclass
class _Call:
    handler: Callable
    request: dict
    future: Future


class Engine:
    """Owns the scheduler; see the module docstring for the loop."""

    def __init__(self, settings: Settings, database: Database, backend: Backend) -> None:
        self.settings = settings
        self.database = database
        self.backend = backend  # the host's local backend
        self.backends = BackendRegistry(backend)  # every compute environment's backend
        self.scheduler = Scheduler()
        self.catalog = CatalogCache(database)  # SubmitJob's queue and definition reads
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._spec_cache: dict[str, dict] = {}
        self._deferred: list = []  # backend events whose commit failed: retried, never dropped

    # ----------------------------------------------------------------- public
    def start(self) -> None:
        """Load state, reconcile attempts that were in flight, and start the loop."""
        self.backends.bind(self._inbox.put)
        in_flight = self._load()
        self._reconcile(in_flight)
        self._thread = threading.Thread(target=self._run, name="genobatch-engine", daemon=True)
        self._thread.start()

    def _load(self) -> list:
        """Fill the scheduler from the store; return the jobs with an attempt in flight."""
        inventory = self.backend.inventory()
        self.scheduler.set_pool(HostPool(LOCAL_POOL, inventory.cpus, inventory.memory_mib, inventory.gpus))
        if self.backend.hands_off:  # the next attempt may wait on a running one's devices
            self.scheduler.handoffs.pools.add(LOCAL_POOL)
        with self.database.connect() as conn:
            for document in catalog.list_documents(conn, "compute-environment"):
                apply_compute_environment(self.scheduler, document)
                self.backends.configure(document["computeEnvironmentName"], document.get("tags"))
            for document in catalog.list_documents(conn, "job-queue"):
                apply_job_queue(self.scheduler, document)
            with _collector_paused():
                live = job_rows.load_live(conn)
                needed = {dep for job in live for dep, _ in job.depends_on}
                known = job_rows.statuses(conn, needed - {job.id for job in live}) if needed else {}
                self._next_seq = job_rows.max_seq(conn) + 1
                return self.scheduler.restore(live, known)

    def next_seq(self, count: int = 1) -> int:
        """Reserve ``count`` submission sequence numbers (engine thread only)."""
        first = self._next_seq
        self._next_seq += count
        return first

    def call(self, handler: Callable[[Context, dict], dict], request: dict) -> Future:
        """Run a write operation on the engine thread; the future resolves after its commit."""
        future: Future = Future()
        self._inbox.put(_Call(handler, request, future))
        return future

    def stop(self) -> None:
        self._stopping.set()
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.backends.close()

    def attempt_dir(self, job_id: str, attempt: int) -> Path:
        return self.settings.jobs_dir / job_id / str(attempt)

    # ----------------------------------------------------------------- loop
    def _run(self) -> None:
        _name_os_thread("genobatch-engine")
        while not self._stopping.is_set():
            batch = self._collect()
            if self._stopping.is_set():
                break
            # An empty batch is processed too: _collect returns one when a deadline is due, and its
            # tick is what stops a timed-out attempt (and applies queue time limits).
            self._process(batch)

    def _collect(self) -> list:
        """Wait for work; return up to ``BATCH_LIMIT`` items, deferred backend events first."""
        deadline = self.scheduler.next_deadline()
        timeout = None if deadline is None else max(0.0, (deadline - now_ms()) / 1000)
        batch, self._deferred = self._deferred, []
        if batch:
            timeout = RETRY_DELAY_S if timeout is None else min(timeout, RETRY_DELAY_S)
        return drain(self._inbox, timeout, BATCH_LIMIT, batch)

    def _process(self, batch: list) -> None:
        """Commit the batch as one transaction; if that fails, isolate the item that broke it.

        A failed commit leaves the in-memory scheduler ahead of the store, so it is rebuilt from
        the store and every item is retried alone: each call then succeeds or fails by itself,
        and a backend event whose commit keeps failing is deferred and retried, never dropped.
        """
        try:
            committed = self._commit(batch)
        except Exception:  # noqa: BLE001 - one bad item must not harm the others
            log.exception("engine batch of %d items failed; retrying each item alone", len(batch))
            self._reload()
            for item in batch:
                self._process_alone(item)
            return
        self._after_commit(*committed)

    def _process_alone(self, item: object) -> None:
        try:
            committed = self._commit([item])
        except Exception:  # noqa: BLE001 - answered or deferred below, never lost
            log.exception("engine item failed alone: %s", _describe(item))
            self._reload()
            if isinstance(item, _Call):
                _settle(item.future, ServerException("internal error; the request was not applied"), False)
            else:
                self._deferred.append(item)
            return
        self._after_commit(*committed)

    def _commit(self, batch: list) -> tuple[Context, list[tuple[Future, object, bool]]]:
        """Apply the batch to the scheduler and write it in one transaction (no side effects)."""
        now = now_ms()
        results: list[tuple[Future, object, bool]] = []
        with self.database.begin() as conn:
            ctx = Context(conn, self.settings, now, self.scheduler, allocate_seq=self.next_seq, catalog=self.catalog)
            for item in batch:
                if isinstance(item, _Call):
                    results.append((item.future, *_apply_call(ctx, item)))
                else:
                    self._apply_backend_event(ctx, item)
            ctx.actions.extend(self.scheduler.tick(now))
            ctx.actions.extend(self.scheduler.schedule(now))
            new_ids = {job.id for job, *_ in ctx.new_jobs}
            job_rows.insert_jobs(conn, ctx.new_jobs)
            job_rows.update_jobs(conn, [job for job in self.scheduler.take_dirty() if job.id not in new_ids])
        # The specs just written are what these jobs will start with: keep them rather than read
        # each back when it starts (a separate job's start read its own row: 11 % of the engine).
        self._remember_specs({job.id: spec for job, _, _, spec in ctx.new_jobs if spec is not None})
        return ctx, results

    def _after_commit(self, ctx: Context, results: list[tuple[Future, object, bool]]) -> None:
        """Start or stop attempts and answer the callers: only what is durable has effects.

        Starts go first: answering wakes the HTTP thread, which then competes with this one for
        the GIL while the launcher still waits for the request (submit -> RUNNING, issue 9).
        """
        self.scheduler.evict_final()
        self._dispatch(ctx.actions)
        for future, value, ok in results:
            _settle(future, value, ok)

    def _apply_backend_event(self, ctx: Context, event: object) -> None:
        if isinstance(event, AttemptStarted):
            ctx.actions.extend(self.scheduler.started(event.job_id, event.attempt, event.at_ms, event.info))
        elif isinstance(event, AttemptSubmitted):
            self.scheduler.submitted(event.job_id, event.attempt, event.info)
        elif isinstance(event, AttemptExited):
            info = ExitInfo(event.exit_code, event.reason, event.status_reason, event.timed_out, event.final)
            self.scheduler.exited(event.job_id, event.attempt, event.at_ms, info, event.usage)
        elif isinstance(event, AttemptNotStarted):
            self.scheduler.not_started(event.job_id, event.attempt, event.at_ms)
        elif isinstance(event, EnvironmentHealth):
            self.scheduler.set_reachable(event.compute_environment, event.problem is None)
            _record_health(ctx, event)

    def _dispatch(self, actions: list) -> None:
        self._prefetch_specs([action for action in actions if isinstance(action, StartAttempt)])
        for action in actions:
            if isinstance(action, StartAttempt):
                try:
                    backend = self.backends.for_environment(action.compute_environment)
                    backend.start(self._attempt_spec(action))
                except Exception as exc:  # noqa: BLE001 - reported as a failed start, never lost
                    log.exception("could not start %s attempt %s", action.job_id, action.attempt)
                    self._inbox.put(
                        AttemptExited(action.job_id, action.attempt, now_ms(), None, str(exc), "Task failed to start")
                    )
            elif isinstance(action, StopAttempt):
                self._stop(action.job_id, action.attempt)
            elif isinstance(action, WithdrawAttempt):
                self._withdraw(action.job_id, action.attempt)
            elif isinstance(action, ConfigureBackend):
                if action.tags is None:
                    self.backends.remove(action.compute_environment)
                else:
                    self.backends.configure(action.compute_environment, action.tags)

    def _stop(self, job_id: str, attempt: int) -> None:
        """Stop an attempt on whichever backend runs it."""
        job = self.scheduler.jobs.get(job_id)
        current = job.current if job is not None else None
        environment = current.compute_environment if current is not None else ""
        try:
            backend = self.backends.for_environment(environment)
        except LookupError:
            log.exception("cannot stop %s attempt %s", job_id, attempt)
            return
        backend.stop(job_id, attempt, self.settings.stop_grace_s)

    def _withdraw(self, job_id: str, attempt: int) -> None:
        """Drop a successor that has not started (it comes back as AttemptNotStarted)."""
        job = self.scheduler.jobs.get(job_id)
        current = job.current if job is not None else None
        if current is None:
            return
        try:
            self.backends.for_environment(current.compute_environment).withdraw(job_id, attempt)
        except LookupError:
            log.exception("cannot withdraw %s attempt %s", job_id, attempt)

    # ----------------------------------------------------------------- attempts
    def _remember_specs(self, specs: dict[str, dict]) -> None:
        """Cache specs by job id, dropping the oldest beyond ``SPEC_CACHE_LIMIT`` (insertion order)."""
        self._spec_cache.update(specs)
        excess = len(self._spec_cache) - SPEC_CACHE_LIMIT
        if excess > 0:
            for job_id in list(itertools.islice(self._spec_cache, excess)):
                del self._spec_cache[job_id]

    def _prefetch_specs(self, starts: list[StartAttempt]) -> None:
        """Read the specs the cache lacks for a batch of starts in one query, not one per job."""
        wanted = set()
        for action in starts:
            job = self.scheduler.jobs.get(action.job_id)
            if job is not None:
                wanted.add(job.parent_id or job.id)
        missing = [job_id for job_id in wanted if job_id not in self._spec_cache]
        if len(missing) < 2:
            return  # _spec_of reads a single one itself
        try:
            with self.database.connect() as conn:
                rows = job_rows.get_rows(conn, missing)
        except Exception:  # noqa: BLE001 - only an optimisation: each start reads its own spec then
            log.exception("could not read %d job specs in one query", len(missing))
            return
        self._remember_specs({row["id"]: row["spec"] for row in rows})

    def _spec_of(self, job_id: str) -> dict:
        spec = self._spec_cache.get(job_id)
        if spec is None:
            with self.database.connect() as conn:
                spec = job_rows.get_rows(conn, [job_id])[0]["spec"]
            self._remember_specs({job_id: spec})
        return spec

    def _attempt_spec(self, action: StartAttempt) -> AttemptSpec:
        job = self.scheduler.jobs[action.job_id]
        spec = self._spec_of(job.parent_id or job.id)
        container = spec.get("container", {})
        # What Amazon ECS sets in every task (ECS developer guide, "Amazon ECS environment
        # variables"), as far as it holds here: the platform and the region. The job's own values
        # win, as a task definition's do; metadata and credential endpoints are not served, so their
        # variables are not set. Tools read AWS_EXECUTION_ENV unguarded (Metaflow's @batch).
        platform = "AWS_ECS_FARGATE" if "FARGATE" in spec.get("platformCapabilities", ()) else "AWS_ECS_EC2"
        environment = {
            "AWS_EXECUTION_ENV": platform,
            "AWS_REGION": self.settings.region,
            "AWS_DEFAULT_REGION": self.settings.region,
        }
        environment.update((item["name"], item["value"]) for item in container.get("environment", []))
        environment.update(
            AWS_BATCH_JOB_ID=job.id,
            AWS_BATCH_JOB_ATTEMPT=str(action.attempt),
            AWS_BATCH_JQ_NAME=job.queue,
            AWS_BATCH_CE_NAME=action.compute_environment,
        )
        if job.array_index is not None:
            environment["AWS_BATCH_JOB_ARRAY_INDEX"] = str(job.array_index)
            environment["AWS_BATCH_JOB_ARRAY_SIZE"] = str(spec["arrayProperties"]["size"])
        return AttemptSpec(
            gpu_count=job.resources.gpus,
            timeout_s=job.timeout_s,
            name=attempt_name(job.id, action.attempt),
            container=container,
            job_definition=spec.get("jobDefinition", ""),
            job_id=job.id,
            attempt=action.attempt,
            command=tuple(container.get("command") or ()),
            environment=environment,
            attempt_dir=str(self.attempt_dir(job.id, action.attempt)),
            vcpus=job.resources.vcpus,
            memory_mib=job.resources.memory_mib,
            cpus=action.cpus,
            gpus=action.gpus,
            image=container.get("image"),
            compute_environment=action.compute_environment,
            after=action.after,
        )

    def _reconcile(self, in_flight: list) -> None:
        """Settle attempts that were STARTING or RUNNING when the previous server died."""
        for job in in_flight:
            attempt = job.current
            if attempt is None:
                continue
            start = StartAttempt(
                job.id, attempt.number, attempt.compute_environment, attempt.cpus, attempt.gpus, attempt.after
            )
            try:
                backend = self.backends.for_environment(attempt.compute_environment)
                outcome = backend.reconcile(self._attempt_spec(start), attempt.info)
            except Exception as exc:  # noqa: BLE001 - a broken backend must not keep the server down
                log.exception("could not reconcile %s attempt %s", job.id, attempt.number)
                outcome = AttemptExited(job.id, attempt.number, now_ms(), None, str(exc), "Task failed to start")
            # An adopted attempt's start, if the previous server never recorded it, comes from the
            # backend, which knows whether it runs (a remote one may still be queued there).
            if outcome is not None:
                self._inbox.put(outcome)
            if outcome is None and (job.stop_reason is not None or attempt.timed_out):
                # A stop (TerminateJob or timeout) was committed but the previous server may have
                # died before carrying it out. The backend resumes one it had begun with the grace
                # left (a repeated stop never extends it); one it never began starts now.
                backend.stop(job.id, attempt.number, self.settings.stop_grace_s)

    def _reload(self) -> None:
        """Rebuild the scheduler from the store after a failed commit.

        Attempts keep running: the backend still reports their events, and the events of the
        failed batch are retried. Each in-flight attempt is reconciled with the backend as after
        a restart, so one the backend already settled is not left RUNNING (duplicates of an
        event are ignored by the scheduler). A store that cannot be read is retried until it can.
        """
        while not self._stopping.is_set():
            self.scheduler = Scheduler()
            self._spec_cache.clear()
            try:
                in_flight = self._load()
            except Exception:  # noqa: BLE001 - the store may be briefly unavailable
                log.exception("could not reload state from the store; retrying")
                time.sleep(RETRY_DELAY_S)
                continue
            self._reconcile(in_flight)
            return


def drain(inbox: queue.SimpleQueue | queue.Queue, timeout: float | None, limit: int, batch: list | None = None) -> list:
    """One batch for a single-threaded loop: ``batch`` (items carried over) plus the first item to
    arrive within ``timeout`` seconds and whatever else is already queued, up to ``limit`` in all;
    ``None`` items (wake-ups) are dropped. Nothing within ``timeout``: just ``batch``."""
    batch = [] if batch is None else batch
    try:
        batch.append(inbox.get(timeout=timeout))
    except queue.Empty:
        return batch
    while len(batch) < limit:
        try:
            batch.append(inbox.get_nowait())
        except queue.Empty:
            break
    return [item for item in batch if item is not None]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a restart builds the scheduler's records, then
    freeze them (``gc.freeze``) so later collections skip them.

    A million queued jobs are a few million long-lived objects: with the collector on, each growth
    step traversed all of them (load and restore of 1,000,000 jobs 29.8 s -> 19.5 s without it), and
    re-enabled, its first collections would traverse them all again while the first requests wait.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` in the kernel too (``/proc/<pid>/task/<tid>/comm``, at
    most 15 bytes), so its CPU time can be told apart from the other threads' (the benchmarks do);
    Python before 3.14 names only its own thread object. Best effort: only Linux has ``prctl``."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def _apply_call(ctx: Context, call: _Call) -> tuple[object, bool]:
    """Run one write handler inside a savepoint: a refused request leaves no trace in the store.

    A handler validates before it touches the scheduler, so an ``ApiError`` changes nothing in
    memory either. Any other exception is a bug: it propagates, and the engine isolates the call.
    A handler marked :func:`~genobatch.context.refuses_before_writing` runs without the savepoint:
    it has nothing to roll back when it refuses (SubmitJob: the savepoint's two statements were
    half of the engine thread's time per call once its catalog reads were cached).
    """
    new_jobs, actions = len(ctx.new_jobs), len(ctx.actions)
    try:
        if getattr(call.handler, "refuses_before_writing", False):
            result = call.handler(ctx, call.request)
        else:
            with ctx.conn.begin_nested():  # rolled back if the handler raises anything
                result = call.handler(ctx, call.request)
    except ApiError as error:
        del ctx.new_jobs[new_jobs:], ctx.actions[actions:]
        return error, False
    return result, True


def _settle(future: Future, value: object, ok: bool) -> None:
    """Resolve a caller's future unless the caller already gave up (a cancelled HTTP request)."""
    with contextlib.suppress(InvalidStateError):
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _describe(item: object) -> str:
    if isinstance(item, _Call):
        return f"call {getattr(item.handler, '__name__', item.handler)}"
    return repr(item)


def apply_compute_environment(scheduler: Scheduler, document: dict) -> None:
    """Tell the scheduler about a compute environment document (create or update).

    A local environment draws on the host's pool; one on a remote engine gets a counted pool of
    its own. An unmanaged environment without ``computeResources`` may use the whole host (local)
    or ``unmanagedvCpus`` (remote, where there is no host size to default to).
    """
    name = document["computeEnvironmentName"]
    resources = document.get("computeResources") or {}
    if backend_kind(document.get("tags")) == LOCAL:
        pool_name, default_vcpus = LOCAL_POOL, len(scheduler.pools[LOCAL_POOL].cpus)
    else:
        pool_name, default_vcpus = f"remote:{name}", document.get("unmanagedvCpus") or 256
        if pool_name not in scheduler.pools:
            scheduler.set_pool(CountedPool(pool_name))
    max_vcpus = resources.get("maxvCpus", default_vcpus)
    enabled = document.get("state", "ENABLED") == "ENABLED"
    scheduler.set_compute_environment(name, pool_name, max_vcpus, enabled)


def _record_health(ctx: Context, event: EnvironmentHealth) -> None:
    """Show a backend's reachability as its compute environment's status, as AWS does for a broken one."""
    document = catalog.get_document(ctx.conn, "compute-environment", event.compute_environment)
    if document is None:
        return
    status, reason = ("VALID", "ComputeEnvironment Healthy") if event.problem is None else ("INVALID", event.problem)
    if document.get("status") == status and document.get("statusReason") == reason:
        return
    catalog.put_document(
        ctx.conn, "compute-environment", {**document, "status": status, "statusReason": reason}, ctx.now, new=False
    )


def apply_job_queue(scheduler: Scheduler, document: dict) -> None:
    """Tell the scheduler about a job queue document (create or update)."""
    order = sorted(document.get("computeEnvironmentOrder", []), key=lambda item: item["order"])
    names = [item["computeEnvironment"].rsplit("/", 1)[-1] for item in order]
    enabled = document.get("state", "ENABLED") == "ENABLED"
    time_limits = {
        action["reason"]: action["maxTimeSeconds"]
        for action in document.get("jobStateTimeLimitActions", [])
        if action.get("state") == "RUNNABLE" and action.get("action") == "CANCEL"
    }
    scheduler.set_queue(document["jobQueueName"], document.get("priority", 1), names, enabled, time_limits)
