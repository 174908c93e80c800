"""Hand-off: the next attempt placed ahead on a running attempt's devices (issue 9).

Between one short attempt's end and the next one's start, the server used to detect the exit,
commit it, place the next job and only then ask for a spawn - 15 ms per slot on a loaded host,
several times the work of a trivial job. Instead, while a slot's *holder* runs, the next runnable
job can be placed on the holder's very devices as its *successor*: committed STARTING with
``Attempt.after`` naming the holder, and started by the backend the moment the holder ends, with
no commit in between. A successor may have a successor in turn: a chain of up to
``HANDOFF_DEPTH`` attempts waits on one slot, so that a slot whose jobs end faster than the server
can place the next one still never idles.

Capacity is never overcommitted: a successor takes nothing from the pool. It waits on devices its
holder still owns, and when the holder ends they pass to the successor instead of going back to
the pool. A successor that ends before its holder (withdrawn, stopped) gives nothing back, and the
one behind it, if any, then waits on that holder instead.

Because a placed successor is STARTING (no longer cancellable, and ahead of jobs submitted later),
placing ahead is kept to where it pays and is short-lived:

* only within a *family* - an array's children, or the separate jobs of one queue that ask for the
  same resources (a Step Functions Map's tasks, a script's loop of SubmitJob calls) - behind a
  running member, and only while the family's last finished attempt ran at most ``SHORT_RUN_MS``
  (short jobs: the hand-off is most of each one's cost);
* only in queue order: the first runnable job that cannot go ahead stops the pass, so nothing is
  placed ahead of a job that waits normally (no priority inversion beyond the successors placed);
* one successor per holder, at most ``HANDOFF_DEPTH`` waiting per slot, on a compute environment
  whose backend can hand off;
* a successor still waiting ``HANDOFF_WAIT_MS`` after its placement is withdrawn: the backend
  drops it if it has not started, and it is RUNNABLE again, not a failed attempt.

This module is pure bookkeeping; :class:`~genobatch.core.scheduler.Scheduler` calls it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from genobatch.core.compute_environment import ComputeEnvironment
from genobatch.core.job import Attempt, Job
from genobatch.core.queue import JobQueue
from genobatch.core.status import ACTIVE

SHORT_RUN_MS = 100
HANDOFF_DEPTH = 8
HANDOFF_WAIT_MS = 2000

HolderKey = tuple[str, int]  # (job id, attempt number)


def family(job: Job) -> str:
    """The jobs that may hand off to each other: an array's children (keyed by the parent's id),
    or the separate jobs of one queue with the same resources."""
    if job.parent_id is not None:
        return job.parent_id
    resources = job.resources
    return f"{job.queue}\0{resources.vcpus}/{resources.memory_mib}/{resources.gpus}"


@dataclass(slots=True)
class Handoffs:
    """Who holds which slot, which successor waits on which attempt, and which arrays are short."""

    pools: set[str] = field(default_factory=set)  # pools whose backend can hand off
    # Family -> {job id: job} of its members whose attempt is the last of its slot's chain
    # (running, or itself waiting) on a hand-off pool: each may take a successor.
    free_holders: dict[str, dict[str, Job]] = field(default_factory=dict)
    successor_of: dict[HolderKey, str] = field(default_factory=dict)  # attempt -> successor job id
    waiting: dict[str, HolderKey] = field(default_factory=dict)  # successor job id -> attempt it waits on
    short_families: set[str] = field(default_factory=set)  # families whose last attempt was short
    withdrawn: set[str] = field(default_factory=set)  # successors asked to withdraw, not yet answered
    _deadlines: list[tuple[int, str, int]] = field(default_factory=list)  # (ms, job id, attempt)

    # -- holders -----------------------------------------------------------------------------
    def placed(self, job: Job, pool: str) -> None:
        """``job``'s attempt was placed on free devices of ``pool``: it may get a successor."""
        if pool in self.pools:
            self._add_holder(job)

    def _add_holder(self, job: Job) -> None:
        self.free_holders.setdefault(family(job), {})[job.id] = job

    def _drop_holder(self, job: Job) -> None:
        key = family(job)
        members = self.free_holders.get(key)
        if members is not None:
            members.pop(job.id, None)
            if not members:
                del self.free_holders[key]

    def holder_for(self, job: Job, now: int) -> Job | None:
        """A member of ``job``'s family whose slot's chain can take it as the next successor, if any.

        Only a holder placed or started at most ``SHORT_RUN_MS`` ago: one that has run longer is
        not short, and a job placed behind it would only wait STARTING (no longer cancellable)
        where it should wait RUNNABLE. And only a holder placed after ``job`` was submitted: a job
        that arrives while every slot is taken waits RUNNABLE, as on AWS (behind two sleepers
        that had just started, a new job was STARTING: test_job_semantics' cancel test); one that
        was already queued would have been next on that slot anyway.
        """
        key = family(job)
        if key not in self.short_families:
            return None
        best, best_depth = None, HANDOFF_DEPTH
        for holder in self.free_holders.get(key, {}).values():
            current = holder.current
            if now - (current.started_at or current.placed_at) > SHORT_RUN_MS or job.created_at > current.placed_at:
                continue
            depth = self._depth(holder.id)
            if holder.resources == job.resources and depth < best_depth:  # the shortest chain
                best, best_depth = holder, depth
        return best

    def place_ahead(
        self,
        queues: Iterable[JobQueue],
        compute_environments: Mapping[str, ComputeEnvironment],
        jobs: Mapping[str, Job],
        now: int,
    ) -> list[tuple[JobQueue, tuple, Job]]:
        """One pass, queues by priority and each in its order, stopping at the first job that
        cannot go ahead: each job placed gets its attempt (on its holder's devices, ``after`` the
        holder's) and is returned as (queue, its key in the queue, job); the caller takes it out of
        the queue and makes it STARTING."""
        placed: list[tuple[JobQueue, tuple, Job]] = []
        for queue in sorted(queues, key=lambda q: -q.priority):
            for key in queue.runnable:
                job = jobs[key[-1]]
                holder = self.holder_for(job, now)
                ce = compute_environments.get(holder.current.compute_environment) if holder else None
                if ce is None or not (ce.enabled and ce.reachable) or ce.name not in queue.compute_environments:
                    return placed  # nothing is placed ahead of a job that waits normally
                held = holder.current
                job.attempts.append(
                    Attempt(
                        number=len(job.attempts) + 1,
                        compute_environment=ce.name,
                        cpus=held.cpus,
                        gpus=held.gpus,
                        placed_at=now,
                        after=(holder.id, held.number),
                    )
                )
                self.wait_on(job, holder, now)
                placed.append((queue, key, job))
        return placed

    def _depth(self, job_id: str) -> int:
        """How many attempts wait on the slot up to and including ``job_id``'s."""
        depth = 0
        while job_id in self.waiting:
            job_id = self.waiting[job_id][0]
            depth += 1
        return depth

    # -- successors --------------------------------------------------------------------------
    def wait_on(self, successor: Job, holder: Job, now: int) -> None:
        """Record ``successor`` (its current attempt just placed) as waiting on ``holder``'s."""
        key = (holder.id, holder.current.number)
        self._drop_holder(holder)
        self._add_holder(successor)
        self.successor_of[key] = successor.id
        self.waiting[successor.id] = key
        heapq.heappush(self._deadlines, (now + HANDOFF_WAIT_MS, successor.id, successor.current.number))

    def restore(self, in_flight: list[Job], waiting: list[tuple[Job, HolderKey]]) -> None:
        """After a restart: link the successors that still wait (``waiting``); every attempt in
        flight on a hand-off pool (``in_flight``) without a successor may take one."""
        for successor, key in waiting:
            self.successor_of[key] = successor.id
            self.waiting[successor.id] = key
            current = successor.current
            heapq.heappush(self._deadlines, (current.placed_at + HANDOFF_WAIT_MS, successor.id, current.number))
        for job in in_flight:
            if (job.id, job.current.number) not in self.successor_of:
                self._add_holder(job)

    @staticmethod
    def live_holder(attempt: Attempt | None, jobs: Mapping[str, Job]) -> HolderKey | None:
        """After a restart: the attempt a restored successor still waits on, if that one is still
        in flight (then the successor owns no devices yet)."""
        if attempt is None or attempt.after is None or attempt.started_at is not None:
            return None
        holder = jobs.get(attempt.after[0])
        current = holder.current if holder is not None else None
        if (
            holder is not None
            and holder.status in ACTIVE
            and current is not None
            and current.number == attempt.after[1]
        ):
            return attempt.after
        return None

    def release(self, job: Job, attempt: int, jobs: dict[str, Job]) -> tuple[bool, str | None]:
        """``job``'s attempt ended (or was withdrawn): (whether its devices stay taken, the id of
        a successor whose ``Attempt.after`` was changed and must be written).

        An attempt that owned its devices passes them to its successor, if it has one. One that
        was still waiting owned nothing: the successor behind it, if any, now waits on the attempt
        it waited on (as the backend relinks it too); else that attempt may take another.
        """
        self._drop_holder(job)
        self.withdrawn.discard(job.id)
        successor = self.successor_of.pop((job.id, attempt), None)
        predecessor = self.waiting.pop(job.id, None)
        if predecessor is None:
            if successor is None:
                return False, None
            self.waiting.pop(successor, None)  # it owns the devices now
            return True, None
        if successor is not None:
            self.successor_of[predecessor] = successor
            self.waiting[successor] = predecessor
            jobs[successor].current.after = predecessor
            return True, successor
        del self.successor_of[predecessor]
        holder = jobs.get(predecessor[0])
        if holder is not None and holder.current is not None and holder.current.number == predecessor[1]:
            self._add_holder(holder)
        return True, None

    def due_withdrawals(self, now: int, jobs: dict[str, Job]) -> list[tuple[str, int]]:
        """Successors that have waited ``HANDOFF_WAIT_MS``: (job id, attempt) to withdraw, once."""
        due = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, job_id, attempt = heapq.heappop(self._deadlines)
            job = jobs.get(job_id)
            current = job.current if job is not None else None
            if current is None or current.number != attempt or job_id not in self.waiting:
                continue  # started, ended or withdrawn since
            if job_id in self.withdrawn:
                continue
            self.withdrawn.add(job_id)
            # Its slot ran long: no more successors for this family until a short run again.
            self.short_families.discard(family(job))
            due.append((job_id, attempt))
        return due

    def next_deadline(self) -> int | None:
        return self._deadlines[0][0] if self._deadlines else None

    # -- families ----------------------------------------------------------------------------
    def ran(self, job: Job, started_at: int | None, stopped_at: int) -> None:
        """An attempt of ``job`` ended: whether its family counts as short now."""
        if started_at is None:
            return  # an attempt that never ran says nothing about how long its family's run
        if stopped_at - started_at <= SHORT_RUN_MS:
            self.short_families.add(family(job))
        else:
            self.short_families.discard(family(job))

    def forget_family(self, parent_id: str) -> None:
        """The array is final: nothing of it is left to hand off."""
        self.short_families.discard(parent_id)
        self.free_holders.pop(parent_id, None)
