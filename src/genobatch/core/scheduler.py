"""The scheduling core: job state changes and placement as plain functions of (state, event, now).

No I/O and no wall clock: every method takes ``now`` (epoch milliseconds) and returns the
:class:`Action` s the shell must carry out. Changed jobs are collected in ``dirty`` for the shell
to persist. The same object runs under the server (real clock) and, later, under a simulator
(virtual clock).

All status changes go through :meth:`Scheduler._transition`, which checks the table in
:mod:`genobatch.core.status` and applies the consequences (queue membership, capacity release,
dependents, array parent summary) through a work list, so 10,000-long SEQUENTIAL chains do not
recurse.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping

from genobatch.core import retry
from genobatch.core.action import Action, StartAttempt, StopAttempt, WithdrawAttempt
from genobatch.core.compute_environment import ComputeEnvironment
from genobatch.core.handoff import Handoffs, HolderKey
from genobatch.core.job import (
    DEPENDENCY_FAILED,
    TIMEOUT_REASON,
    Attempt,
    Job,
    time_limit_cancel_reason,
)
from genobatch.core.placement import never_runs_reason, never_runs_status_reason, place
from genobatch.core.pool import Pool
from genobatch.core.queue import JobQueue
from genobatch.core.status import (
    ACTIVE,
    CANCELLABLE,
    CANCELLED_AT_ONCE,
    CANCELLED_WHEN_DEPENDENCIES_DONE,
    TERMINAL,
    JobStatus,
    check_transition,
)

S = JobStatus


class Scheduler:
    """Owns the live (non-final) jobs, the queues, compute environments and host pools."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.queues: dict[str, JobQueue] = {}
        self.compute_environments: dict[str, ComputeEnvironment] = {}
        self.pools: dict[str, Pool] = {}
        self.dirty: set[str] = set()
        self._deadlines: list[tuple[int, str, int]] = []  # (deadline ms, job id, attempt)
        self._park_deadlines: list[tuple[int, str]] = []  # jobStateTimeLimitActions: (deadline ms, job id)
        self._placement_due = False
        self._work: deque[tuple[Job, JobStatus, str | None, int]] = deque()
        self._children_of: dict[str, list[str]] = {}  # array parent id -> live child ids
        self._final: list[str] = []  # became final since the last eviction
        self.handoffs = Handoffs()  # successors placed ahead on running attempts' devices

    # ----------------------------------------------------------------- configuration
    def set_pool(self, pool: Pool) -> None:
        self.pools[pool.name] = pool
        self._placement_due = True

    def set_compute_environment(self, name: str, pool: str, max_vcpus: int, enabled: bool) -> None:
        """Create or update a compute environment (its running attempts keep their capacity)."""
        existing = self.compute_environments.get(name)
        used = existing.used_vcpus if existing else 0
        self.compute_environments[name] = ComputeEnvironment(
            name,
            self.pools[pool],
            max_vcpus,
            enabled,
            used_vcpus=used,
            reachable=existing.reachable if existing else True,
        )
        self._reconsider_parked()

    def set_reachable(self, name: str, reachable: bool) -> None:
        """Whether a compute environment's backend answers; an unreachable one gets no new attempts."""
        ce = self.compute_environments.get(name)
        if ce is not None and ce.reachable != reachable:
            ce.reachable = reachable
            self._placement_due = True

    def remove_compute_environment(self, name: str) -> None:
        self.compute_environments.pop(name, None)
        self._placement_due = True

    def set_queue(
        self,
        name: str,
        priority: int,
        compute_environments: Iterable[str],
        enabled: bool,
        time_limits: Mapping[str, int] | None = None,
    ) -> None:
        """Create or update a job queue; its runnable jobs are kept.

        ``time_limits`` maps a RUNNABLE reason code to seconds after which a job held for that
        reason is cancelled (``jobStateTimeLimitActions``); a changed limit applies to jobs already
        held, counted from when they were parked.
        """
        old = self.queues.get(name)
        queue = JobQueue(name, priority, tuple(compute_environments), enabled, dict(time_limits or {}))
        if old is not None:
            queue.runnable, queue.parked, queue.shapes = old.runnable, old.parked, old.shapes
            queue.active = old.active
        self.queues[name] = queue
        self._reconsider_parked()

    def remove_queue(self, name: str) -> None:
        self.queues.pop(name, None)

    def queue_has_live_jobs(self, name: str) -> bool:
        return any(job.queue == name for job in self.jobs.values())

    def vcpus_in_use(self, name: str) -> int:
        """The vCPUs the queue's attempts hold now: its STARTING and RUNNING jobs, less successors
        still waiting on a holder's devices (core.handoff: they hold nothing yet)."""
        queue = self.queues.get(name)
        if queue is None:
            return 0
        waiting = self.handoffs.waiting
        return sum(self.jobs[job_id].resources.vcpus for job_id in queue.active if job_id not in waiting)

    # ----------------------------------------------------------------- jobs in
    def submit(self, jobs: list[Job], known: Mapping[str, JobStatus], now: int) -> None:
        """Accept newly submitted jobs (a plain job, or an array parent followed by its children).

        ``known`` gives the status of dependencies that are no longer live (already final).
        The caller has validated that every dependency exists.
        """
        for job in jobs:
            self.jobs[job.id] = job
            self.dirty.add(job.id)
            if job.is_array_parent:
                job.summary = {status.value: 0 for status in JobStatus}
                job.summary_updated_at = now
                self._push(job, S.PENDING, None, now)
                continue
            if job.parent_id is not None:
                self.jobs[job.parent_id].summary[S.SUBMITTED] += 1
                self._children_of.setdefault(job.parent_id, []).append(job.id)
            failed = self._wire_dependencies(job, known)
            if failed:
                self._push(job, S.FAILED, DEPENDENCY_FAILED, now)
            elif job.waiting_on:
                self._push(job, S.PENDING, None, now)
            else:
                self._push(job, S.RUNNABLE, None, now)
        self._drain(now)

    def _wire_dependencies(self, job: Job, known: Mapping[str, JobStatus]) -> bool:
        """Record unmet dependencies; return True if one already failed."""
        for dep_id, _type in job.depends_on:
            dep = self.jobs.get(dep_id)
            status = dep.status if dep is not None else known[dep_id]
            if status == S.FAILED:
                return True
            if status != S.SUCCEEDED:
                if job.waiting_on is None:
                    job.waiting_on = set()
                job.waiting_on.add(dep_id)
                if dep.dependents is None:
                    dep.dependents = []
                dep.dependents.append(job.id)
        return False

    def restore(self, jobs: list[Job], known: Mapping[str, JobStatus]) -> list[Job]:
        """Rebuild live state from the store after a restart; return jobs with an attempt in flight.

        Capacity held by in-flight attempts is reserved again; the shell reconciles them with the
        backend and feeds the outcome back as :meth:`started` / :meth:`exited`.
        """
        in_flight = []
        runnable: list[Job] = []
        waiting: list[tuple[Job, HolderKey]] = []
        on_handoff_pools: list[Job] = []
        for job in sorted(jobs, key=lambda j: (j.seq, j.array_index or -1)):
            self.jobs[job.id] = job
            if job.parent_id is not None:
                self._children_of.setdefault(job.parent_id, []).append(job.id)
        for job in self.jobs.values():
            if job.is_array_parent:
                continue
            if job.status == S.PENDING:
                failed = self._wire_dependencies(job, known)
                if failed or not job.waiting_on:
                    self._dependencies_settled(job, failed, job.created_at)
            elif job.status == S.RUNNABLE:
                runnable.append(job)
            elif job.status in ACTIVE:
                self._mark_active(job, True)
                attempt = job.current
                ce = self.compute_environments.get(attempt.compute_environment) if attempt else None
                holder_key = self.handoffs.live_holder(attempt, self.jobs)
                if holder_key is not None:
                    waiting.append((job, holder_key))  # on devices its holder still owns
                elif ce is not None:
                    ce.used_vcpus += job.resources.vcpus
                    ce.pool.reserve(attempt.cpus, attempt.gpus, job.resources.memory_mib)
                if ce is not None and ce.pool.name in self.handoffs.pools:
                    on_handoff_pools.append(job)
                if attempt is not None and attempt.started_at is not None and job.timeout_s:
                    self._add_deadline(job, attempt)
                in_flight.append(job)
        self.handoffs.restore(on_handoff_pools, waiting)
        self._enqueue_restored(runnable)
        self._drain(max((j.created_at for j in jobs), default=0))
        return in_flight

    # ----------------------------------------------------------------- user requests
    def cancel(self, job_id: str, reason: str, now: int) -> None:
        """CancelJob: ends jobs that have not started; running ones are left alone.

        A PENDING job is only marked: it fails with ``reason`` once its dependencies complete
        (API_CancelJob). An array parent ends when its children have.
        """
        job = self.jobs.get(job_id)
        if job is None:
            return
        targets = self._children(job) if job.is_array_parent else [job]
        cancelled = False
        for target in targets:
            if target.status in CANCELLED_AT_ONCE:
                target.is_cancelled = cancelled = True
                self._push(target, S.FAILED, reason, now)
            elif target.status in CANCELLED_WHEN_DEPENDENCIES_DONE and not target.is_cancelled:
                target.is_cancelled = cancelled = True
                target.stop_reason = reason
                self.dirty.add(target.id)
        if job.is_array_parent and cancelled:
            # Only if a child was cancelled: children already running are left alone and may all succeed.
            job.is_cancelled = True
            self.dirty.add(job.id)
        self._drain(now)

    def terminate(self, job_id: str, reason: str, now: int) -> list[Action]:
        """TerminateJob: stops running attempts (no retry) and cancels jobs that have not started."""
        job = self.jobs.get(job_id)
        if job is None:
            return []
        actions: list[Action] = []
        targets = self._children(job) if job.is_array_parent else [job]
        if job.is_array_parent:
            job.is_terminated = True
        for target in targets:
            if target.status in CANCELLABLE:
                target.is_terminated = True
                self._push(target, S.FAILED, reason, now)
            elif target.status in ACTIVE and target.stop_reason is None:
                target.is_terminated = True
                target.stop_reason = reason
                self.dirty.add(target.id)
                actions.append(StopAttempt(target.id, target.current.number))
        self._drain(now)
        return actions

    def _children(self, parent: Job) -> list[Job]:
        return [self.jobs[cid] for cid in self._children_of.get(parent.id, ()) if cid in self.jobs]

    # ----------------------------------------------------------------- backend events
    def started(self, job_id: str, attempt: int, at: int, info: dict) -> list[Action]:
        """The attempt's process exists: STARTING -> RUNNING."""
        job = self.jobs.get(job_id)
        current = job.current if job else None
        if current is None or current.number != attempt or job.status != S.STARTING:
            return []
        current.started_at = at
        current.info.update(info)  # keeps a remote handle reported at submission
        job.started_at = at
        self._push(job, S.RUNNING, None, at)
        self._drain(at)
        if job.timeout_s:
            self._add_deadline(job, current)
        # TerminateJob may have arrived while the attempt was still STARTING.
        return [StopAttempt(job.id, attempt)] if job.stop_reason else []

    def submitted(self, job_id: str, attempt: int, info: dict) -> None:
        """A remote engine accepted the attempt: keep its handle with the attempt (no state change)."""
        job = self.jobs.get(job_id)
        current = job.current if job else None
        if current is None or current.number != attempt:
            return
        current.info.update(info)
        self.dirty.add(job_id)

    def exited(self, job_id: str, attempt: int, at: int, info: retry.ExitInfo, usage: dict) -> None:
        """The attempt ended: success, retry or failure."""
        job = self.jobs.get(job_id)
        current = job.current if job else None
        if current is None or current.number != attempt or current.finished:
            return  # a late duplicate (e.g. from reconciling after a reload), or already settled
        # Clocks of different threads: a very short command can be reaped before its start was
        # stamped. An attempt never stops before it started.
        at = max(at, current.started_at or at)
        current.stopped_at = at
        current.exit_code, current.reason, current.status_reason = info.exit_code, info.reason, info.status_reason
        current.usage = dict(usage)
        current.timed_out = current.timed_out or info.timed_out
        self.handoffs.ran(job, current.started_at, at)
        self._release(job, current)
        if job.status == S.STARTING and info.exit_code is not None:
            # It ran while we were not looking (e.g. during a restart): record that it ran.
            current.started_at = current.started_at or current.placed_at
            job.started_at = current.started_at
            self._push(job, S.RUNNING, None, at)
        if info.exit_code == 0 and not current.timed_out and job.stop_reason is None:
            self._push(job, S.SUCCEEDED, info.status_reason, at)
        elif current.timed_out:
            self._push(job, S.FAILED, TIMEOUT_REASON, at)
        elif job.stop_reason is not None:
            self._push(job, S.FAILED, job.stop_reason, at)
        elif (
            not info.final
            and len(job.attempts) < job.max_attempts
            and retry.decide(job.evaluate_on_exit, info) == retry.RETRY
        ):
            self._push(job, S.RUNNABLE, info.status_reason, at)
        else:
            self._push(job, S.FAILED, info.status_reason, at)
        self._drain(at)

    def not_started(self, job_id: str, attempt: int, at: int) -> None:
        """The backend never started the attempt (a successor withdrawn, or one a crash kept from
        starting): it is not a failed attempt. It is forgotten and the job is RUNNABLE again (or
        FAILED, if TerminateJob came meanwhile)."""
        job = self.jobs.get(job_id)
        current = job.current if job else None
        if current is None or current.number != attempt or current.started_at is not None:
            return
        if job.status != S.STARTING:
            return
        self._release(job, current)
        job.attempts.pop()
        self.dirty.add(job.id)
        self._push(job, S.FAILED if job.stop_reason else S.RUNNABLE, job.stop_reason, at)
        self._drain(at)

    def tick(self, now: int) -> list[Action]:
        """Expire attempts past their timeout and apply queue time limits; returns the stops to carry out."""
        while self._park_deadlines and self._park_deadlines[0][0] <= now:
            _, job_id = heapq.heappop(self._park_deadlines)
            job = self.jobs.get(job_id)
            queue = self.queues.get(job.queue) if job else None
            parked = queue.parked.get(job_id) if queue is not None else None
            if parked is None or job.status != S.RUNNABLE:
                continue  # started, cancelled or no longer stuck since the deadline was set
            code, since = parked
            limit = queue.time_limits.get(code)
            if limit is None or since + limit * 1000 > now:
                continue  # the limit was removed or raised; a raised one has its own entry
            job.is_cancelled = True
            self._push(job, S.FAILED, time_limit_cancel_reason(code), now)
        self._drain(now)
        actions: list[Action] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, job_id, attempt = heapq.heappop(self._deadlines)
            job = self.jobs.get(job_id)
            current = job.current if job else None
            if current is None or current.number != attempt or current.timed_out:
                continue
            current.timed_out = True
            self.dirty.add(job_id)
            actions.append(StopAttempt(job_id, attempt))
        actions.extend(
            WithdrawAttempt(job_id, attempt) for job_id, attempt in self.handoffs.due_withdrawals(now, self.jobs)
        )
        return actions

    def next_deadline(self) -> int | None:
        """When :meth:`tick` next has work (epoch ms), or None."""
        heads = [heap[0][0] for heap in (self._deadlines, self._park_deadlines) if heap]
        handoff = self.handoffs.next_deadline()
        if handoff is not None:
            heads.append(handoff)
        return min(heads) if heads else None

    def _add_deadline(self, job: Job, attempt: Attempt) -> None:
        heapq.heappush(self._deadlines, (attempt.started_at + job.timeout_s * 1000, job.id, attempt.number))

    # ----------------------------------------------------------------- placement
    def schedule(self, now: int) -> list[Action]:
        """Start what fits. Cheap when nothing changed since the last call."""
        if not self._placement_due:
            return []
        self._placement_due = False
        actions: list[Action] = []
        for placement in place(self.queues.values(), self.compute_environments, self.jobs):
            job = self.jobs[placement.job_id]
            attempt = Attempt(
                number=len(job.attempts) + 1,
                compute_environment=placement.compute_environment,
                cpus=placement.cpus,
                gpus=placement.gpus,
                placed_at=now,
            )
            job.attempts.append(attempt)
            self.handoffs.placed(job, self.compute_environments[placement.compute_environment].pool.name)
            self._push(job, S.STARTING, None, now)
            actions.append(
                StartAttempt(job.id, attempt.number, placement.compute_environment, placement.cpus, placement.gpus)
            )
        if self.handoffs.free_holders:
            actions.extend(self._place_ahead(now))
        self._drain(now)
        return actions

    def _place_ahead(self, now: int) -> list[Action]:
        """Place successors on running family members' devices, in queue order (core.handoff)."""
        actions: list[Action] = []
        for queue, key, job in self.handoffs.place_ahead(
            self.queues.values(), self.compute_environments, self.jobs, now
        ):
            queue.take(key, job.resources)
            self._push(job, S.STARTING, None, now)
            attempt = job.current
            actions.append(
                StartAttempt(
                    job.id, attempt.number, attempt.compute_environment, attempt.cpus, attempt.gpus, attempt.after
                )
            )
        return actions

    # ----------------------------------------------------------------- persistence hooks
    def take_dirty(self) -> list[Job]:
        """Jobs changed since the last call (the shell persists them)."""
        jobs = [self.jobs[job_id] for job_id in self.dirty if job_id in self.jobs]
        self.dirty.clear()
        return jobs

    def evict_final(self) -> None:
        """Forget final jobs once persisted: the store answers for them from now on."""
        for job_id in self._final:
            job = self.jobs.pop(job_id, None)
            if job is not None and job.is_array_parent:
                self._children_of.pop(job_id, None)
                self.handoffs.forget_family(job_id)
        self._final.clear()

    # ----------------------------------------------------------------- transitions
    def _push(self, job: Job, new: JobStatus, reason: str | None, now: int) -> None:
        self._work.append((job, new, reason, now))

    def _drain(self, now: int) -> None:
        while self._work:
            job, new, reason, at = self._work.popleft()
            if job.status == new or job.status in TERMINAL:
                continue
            self._transition(job, new, reason, at)

    def _transition(self, job: Job, new: JobStatus, reason: str | None, now: int) -> None:
        old = job.status
        check_transition(old, new, array_parent=job.is_array_parent)
        if old == S.RUNNABLE:
            self._dequeue(job)
        job.status = new
        if (old in ACTIVE) != (new in ACTIVE):  # an array parent is never ACTIVE (core.status)
            self._mark_active(job, new in ACTIVE)
        job.status_reason = reason if reason is not None else job.status_reason
        self.dirty.add(job.id)
        if new == S.RUNNABLE:
            job.status_reason = None
            self._enqueue(job, now)
        elif new == S.FAILED and job.current is not None:
            # Failed while placed but not started (cancel never reaches here; a vanished start can).
            self._release(job, job.current)
            job.current.stopped_at = now
        if new in TERMINAL:
            job.stopped_at = now
            self._final.append(job.id)
            self._notify_dependents(job, now)
        if job.parent_id is not None:
            self._update_parent(job, old, new, now)

    def _mark_active(self, job: Job, active: bool) -> None:
        queue = self.queues.get(job.queue)
        if queue is not None:
            (queue.active.add if active else queue.active.discard)(job.id)

    def _enqueue(self, job: Job, now: int) -> None:
        queue = self.queues[job.queue]
        code = never_runs_reason(job.resources, queue, self.compute_environments)
        if code is None:
            queue.add(job)
            self._placement_due = True
            return
        self._park(queue, job, code, now)

    def _enqueue_restored(self, jobs: list[Job]) -> None:
        """:meth:`_enqueue` for the RUNNABLE jobs of a restore, in bulk: one placement check per
        queue and shape, one sorted merge per queue (issue 9: restoring 100,000 queued jobs took 1.1-1.9 s
        one by one, 0.6 s in bulk)."""
        # Grouped by the Resources object, not its value: restored jobs of one spec share one
        # (store.jobs._scheduling), and a frozen dataclass hashes its fields on every call.
        groups: dict[tuple[str, int], list[Job]] = {}
        for job in jobs:
            groups.setdefault((job.queue, id(job.resources)), []).append(job)
        for (name, _), members in groups.items():
            queue, need = self.queues[name], members[0].resources
            code = never_runs_reason(need, queue, self.compute_environments)
            if code is None:
                queue.add_many(members, need)
                self._placement_due = True
            else:
                for job in members:
                    self._park(queue, job, code, job.created_at)

    def _park(self, queue: JobQueue, job: Job, code: str, since: int) -> None:
        """Hold a job no compute environment can run, with AWS's reason, and arm its time limit."""
        queue.parked[job.id] = (code, since)
        limit = queue.time_limits.get(code)
        if limit is not None:
            heapq.heappush(self._park_deadlines, (since + limit * 1000, job.id))
        job.status_reason = never_runs_status_reason(code, job)
        self.dirty.add(job.id)

    def _dequeue(self, job: Job) -> None:
        queue = self.queues.get(job.queue)
        if queue is not None:
            queue.remove(job)
            queue.parked.pop(job.id, None)

    def _reconsider_parked(self) -> None:
        self._placement_due = True
        for queue in self.queues.values():
            for job_id, (_, since) in list(queue.parked.items()):
                job = self.jobs[job_id]
                code = never_runs_reason(job.resources, queue, self.compute_environments)
                if code is None:
                    del queue.parked[job_id]
                    job.status_reason = None
                    self.dirty.add(job_id)
                    queue.add(job)
                else:
                    # The reason or the queue's limits may have changed; stale deadlines are skipped.
                    self._park(queue, job, code, since)

    def _release(self, job: Job, attempt: Attempt) -> None:
        ce = self.compute_environments.get(attempt.compute_environment)
        if ce is None or attempt.info.get("released"):
            return
        attempt.info["released"] = True
        # Devices passed on to a successor placed ahead (which the backend starts now), or a
        # successor's that never owned any: nothing goes back to the pool.
        kept, relinked = self.handoffs.release(job, attempt.number, self.jobs)
        if relinked is not None:
            self.dirty.add(relinked)
        if kept:
            self._placement_due = True
            return
        ce.used_vcpus = max(0, ce.used_vcpus - job.resources.vcpus)
        ce.pool.release(attempt.cpus, attempt.gpus, job.resources.memory_mib)
        self._placement_due = True

    def _notify_dependents(self, job: Job, now: int) -> None:
        for dependent_id in job.dependents or ():
            dependent = self.jobs.get(dependent_id)
            if dependent is None or dependent.status in TERMINAL:
                continue
            if dependent.waiting_on:
                dependent.waiting_on.discard(job.id)
            if job.status == S.FAILED or (not dependent.waiting_on and dependent.status == S.PENDING):
                self._dependencies_settled(dependent, job.status == S.FAILED, now)
        job.dependents = None

    def _dependencies_settled(self, job: Job, failed: bool, now: int) -> None:
        """A dependency failed, or all succeeded: fail the job, or make it RUNNABLE.

        A job cancelled while PENDING fails now with the cancel reason (API_CancelJob).
        """
        if job.is_cancelled and job.stop_reason is not None:
            self._push(job, S.FAILED, job.stop_reason, now)
        elif failed:
            self._push(job, S.FAILED, DEPENDENCY_FAILED, now)
        else:
            self._push(job, S.RUNNABLE, None, now)

    def _update_parent(self, child: Job, old: JobStatus, new: JobStatus, now: int) -> None:
        parent = self.jobs.get(child.parent_id)
        if parent is None or parent.summary is None:
            return
        parent.summary[old] -= 1
        parent.summary[new] += 1
        parent.summary_updated_at = now
        self.dirty.add(parent.id)
        if new == S.RUNNING and parent.started_at is None:
            parent.started_at = now
        done = parent.summary[S.SUCCEEDED] + parent.summary[S.FAILED]
        if done == parent.array_size:
            if parent.summary[S.FAILED]:
                self._push(parent, S.FAILED, "Array Child Job failed", now)
            else:
                self._push(parent, S.SUCCEEDED, None, now)
