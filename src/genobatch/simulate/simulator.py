"""The event loop: the real scheduler under a virtual clock.

:class:`Simulation` owns a :class:`genobatch.core.scheduler.Scheduler` - the object the server's
engine drives - and plays the server's and the backends' parts against it: it submits the plan's
jobs as SubmitJob would (array children from :func:`genobatch.core.array.expand_array`), carries out
the scheduler's ``StartAttempt`` and ``StopAttempt`` actions on simulated instances (a
:class:`.fleet.Fleet` per compute environment, the scheduler's pool), and reports each attempt's
start and exit back through ``started`` / ``exited``. Retries, evaluateOnExit, dependencies,
timeouts and placement are therefore the scheduler's own decisions, not a model of them.

Time is integer milliseconds from 0 (the scheduler's unit). Every event at one instant is applied
before the scheduler is asked to place work, as the engine applies a batch before ``schedule``.
Randomness (run times, failures, interruptions) comes from one seeded generator, so a seed
reproduces its run exactly.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Mapping

from genobatch.core.action import StartAttempt, StopAttempt
from genobatch.core.array import expand_array, parent_dependencies
from genobatch.core.job import Job, Resources
from genobatch.core.retry import ExitInfo
from genobatch.core.scheduler import Scheduler
from genobatch.core.status import TERMINAL
from genobatch.cost.billing import BillingSpec, billing_spec_from_compute_environment
from genobatch.cost.catalog import Catalog, CatalogError
from genobatch.simulate.fleet import Fleet, Instance
from genobatch.simulate.plan import JobDefinitionSpec, Plan, PlanError

#: AWS Batch's status reasons: a container that exited, and an instance that went away under it.
EXITED_REASON = "Essential container in task exited"
TIMED_OUT_EXIT_CODE = 137  # SIGKILL after the stop's grace period
_SUBMIT, _EXIT, _UP, _IDLE, _INTERRUPT, _TICK = range(6)
_PROGRESS = frozenset({_SUBMIT, _EXIT, _UP, _TICK})


def interruption_reason(instance: Instance) -> str:
    """What AWS Batch reports for attempts on a reclaimed spot instance (``onStatusReason: "Host EC2*"``)."""
    return f"Host EC2 (instance i-{instance.index:017x}) terminated."


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def billing_specs(plan: Plan, catalog: Catalog) -> dict[str, BillingSpec]:
    """Each compute environment's billing model, by the cost code real runs use; PlanError names a bad type."""
    specs = {}
    for i, ce in enumerate(plan.compute_environments):
        document = {
            "computeEnvironmentName": ce.name,
            "computeResources": {
                "type": "SPOT" if ce.purchase == "spot" else "EC2",
                "instanceTypes": [ce.instance_type],
                "maxvCpus": ce.max_vcpus,
            },
            "tags": {"genobatch:price-per-hour": str(ce.price_per_hour)} if ce.price_per_hour is not None else {},
        }
        try:
            if not catalog.has(ce.instance_type):
                catalog.instance(ce.instance_type)  # raises with close matches
            specs[ce.name] = billing_spec_from_compute_environment(document, catalog, plan.region)
        except (CatalogError, ValueError) as error:
            raise PlanError("<plan>", [(f"compute_environments[{i}].instance_type", str(error))]) from None
    return specs


class Simulation:
    """One simulated run of a plan with one seed; :meth:`run` plays it to the end."""

    def __init__(self, plan: Plan, specs: Mapping[str, BillingSpec], seed: int) -> None:
        self.plan = plan
        self.seed = seed
        self.rng = random.Random(seed)
        self.scheduler = Scheduler()
        self.fleets: dict[str, Fleet] = {}
        self.interruption_rate = {ce.name: ce.spot_interruptions_per_hour for ce in plan.compute_environments}
        self.scale_down_ms = {ce.name: _ms(ce.scale_down_after_s) for ce in plan.compute_environments}
        for ce in plan.compute_environments:
            spec = specs[ce.name]
            shape = Resources(vcpus=int(spec.vcpus), memory_mib=int(spec.memory_mib), gpus=int(spec.gpus))
            fleet = Fleet(ce.name, shape, ce.min_vcpus, ce.max_vcpus, _ms(ce.scaling_delay_s))
            self.fleets[ce.name] = fleet
            self.scheduler.set_pool(fleet)
            self.scheduler.set_compute_environment(ce.name, fleet.name, ce.max_vcpus, True)
        for queue in plan.queues:
            self.scheduler.set_queue(queue.name, queue.priority, queue.compute_environments, True)
        self.definitions: dict[str, JobDefinitionSpec] = {
            entry.name: plan.job_definition(entry.job_definition) for entry in plan.workload
        }
        # Per workload entry (= job name): what starting an attempt needs, read once, not per attempt.
        self._behaviour = {
            name: (d.distribution.sample, d.failure_rate, d.failure_exit_code) for name, d in self.definitions.items()
        }
        self._fleet_list = list(self.fleets.values())
        self._queue_fleets = {q.name: [(n, self.fleets[n]) for n in q.compute_environments] for q in plan.queues}
        # Array parents count: they become final too, once their children have.
        self.total_jobs = sum(entry.array_size + 1 if entry.array_size else entry.count for entry in plan.workload)
        self.finished: set[str] = set()
        self.now = 0
        self.events = 0
        self.interruptions = 0
        self.injected_failures = 0
        self._queue: list[tuple[int, int, int, object]] = []
        self._order = itertools.count()
        self._seq = itertools.count()
        self._progress = 0  # pending events of the _PROGRESS kinds
        self._went_idle: list[tuple[str, Instance]] = []
        self._deadline: int | None = None  # the scheduler's next deadline, as last asked

    # ----------------------------------------------------------------- the loop
    def run(self) -> Simulation:
        """Play every event; stops when every job is final or nothing more can happen."""
        for name, fleet in self.fleets.items():
            count = math.ceil(fleet.min_vcpus / fleet.shape.vcpus)
            for instance in fleet.launch(0, count, up_now=True):
                self._launched(name, instance, 0)
        for index, entry in enumerate(self.plan.workload):
            self._push(_ms(entry.submit_at_s), _SUBMIT, index)
        queue = self._queue
        # Only submissions, exits, instances coming up and deadlines move jobs forward; when none is
        # pending, what is left (e.g. a job no instance can hold) never runs, and the loop must not
        # go on replacing reclaimed minimum capacity for ever.
        while queue and self._progress and len(self.finished) < self.total_jobs:
            now = queue[0][0]
            self.now = now
            while queue and queue[0][0] == now:
                _, _, kind, payload = heapq.heappop(queue)
                self.events += 1
                self._progress -= kind in _PROGRESS
                self._apply(kind, payload, now)
            self._settle(now)
        self._wind_down(self.now)
        return self

    def _wind_down(self, end: int) -> None:
        """The work is over: idle instances go after their scale-down delay, the minimum at the end.

        ``min_vcpus`` would keep instances running for ever; the campaign's cost stops when it ends.
        """
        for name, fleet in self.fleets.items():
            for instance in reversed(fleet.instances):
                if not instance.alive:
                    continue
                if fleet.may_release():
                    idle_since = instance.idle_since if instance.idle_since is not None else end
                    fleet.release_instance(instance, max(end, idle_since + self.scale_down_ms[name]))
                else:
                    fleet.release_instance(instance, end)

    def _push(self, at: int, kind: int, payload: object) -> None:
        self._progress += kind in _PROGRESS
        heapq.heappush(self._queue, (at, next(self._order), kind, payload))

    def _apply(self, kind: int, payload: object, now: int) -> None:
        if kind == _EXIT:
            self._exit(*payload, now)  # type: ignore[misc]
        elif kind == _SUBMIT:
            self._submit(self.plan.workload[payload], now)  # type: ignore[index]
        elif kind == _UP:
            name, instance = payload  # type: ignore[misc]
            self.fleets[name].come_up(instance)
            # New capacity: tell the scheduler its pool changed (placement is due), as the server
            # does when a compute environment changes.
            self.scheduler.set_pool(self.fleets[name])
            self._idle(name, instance, now)
        elif kind == _IDLE:
            self._maybe_release(*payload, now)  # type: ignore[misc]
        elif kind == _INTERRUPT:
            self._interrupt(*payload, now)  # type: ignore[misc]
        # _TICK: nothing to apply; _settle runs the scheduler's tick.

    def _settle(self, now: int) -> None:
        """Let the scheduler act on what happened at ``now``, then scale the fleets to what waits."""
        scheduler = self.scheduler
        while True:
            # tick() only has work at a deadline (attempt timeouts); every other change drains itself.
            if self._deadline is not None and self._deadline <= now:
                actions = scheduler.tick(now) + scheduler.schedule(now)
            else:
                actions = scheduler.schedule(now)
            for action in actions:
                if isinstance(action, StartAttempt):
                    self._start(action, now)
                elif isinstance(action, StopAttempt):
                    self._stop(action, now)
            # Capacity launched with no scaling delay is up at once: place again before moving on.
            if not actions and not self._scale(now):
                break
        self._arm_scale_down(now)
        deadline = scheduler.next_deadline()
        if deadline is not None and deadline != self._deadline:
            self._push(max(deadline, now + 1), _TICK, None)
        self._deadline = deadline
        for job_id in scheduler.dirty:
            if scheduler.jobs[job_id].status in TERMINAL:
                self.finished.add(job_id)
        scheduler.dirty.clear()

    # ----------------------------------------------------------------- jobs
    def _submit(self, entry, now: int) -> None:  # noqa: ANN001 - a WorkloadSpec
        definition = self.definitions[entry.name]
        resources = definition.resources
        common = {
            "name": entry.name,
            "queue": entry.queue,
            "created_at": now,
            "resources": Resources(resources.vcpus, resources.memory, resources.gpus),
            "priority": entry.priority,
            "max_attempts": definition.retry_strategy.attempts,
            "evaluate_on_exit": tuple(definition.retry_strategy.evaluate_on_exit),
            "timeout_s": definition.timeout_s,
        }
        depends_on = [(dep.job or "", dep.type) for dep in entry.depends_on]
        if entry.array_size is not None:
            parent = Job(
                id=entry.name,
                seq=next(self._seq),
                array_size=entry.array_size,
                depends_on=parent_dependencies(depends_on),
                **common,
            )
            records = [parent, *expand_array(parent, depends_on)]
        elif entry.count == 1:
            records = [Job(id=entry.name, seq=next(self._seq), depends_on=tuple(depends_on), **common)]
        else:
            records = [Job(id=f"{entry.name}-{k}", seq=next(self._seq), **common) for k in range(entry.count)]
        # Every dependency is still in the scheduler (nothing is evicted): no stored statuses needed.
        self.scheduler.submit(records, {}, now)

    def _start(self, action: StartAttempt, now: int) -> None:
        fleet = self.fleets[action.compute_environment]
        instance = fleet.instance_of(action.cpus)
        instance.running.add((action.job_id, action.attempt))
        self.scheduler.started(action.job_id, action.attempt, now, {"instance": instance.index})
        sample, failure_rate, failure_exit_code = self._behaviour[self.scheduler.jobs[action.job_id].name]
        seconds = sample(self.rng)
        exit_code = 0
        if failure_rate and self.rng.random() < failure_rate:
            # A failure ends the attempt part-way through its run time.
            seconds *= self.rng.random()
            exit_code = failure_exit_code
            self.injected_failures += 1
        self._push(now + max(1, _ms(seconds)), _EXIT, (action.job_id, action.attempt, exit_code))

    def _running_instance(self, job: Job) -> tuple[str, Instance] | None:
        current = job.current
        if current is None:
            return None
        fleet = self.fleets[current.compute_environment]
        return current.compute_environment, fleet.instance_of(current.cpus)

    def _exit(self, job_id: str, attempt: int, exit_code: int, now: int) -> None:
        job = self.scheduler.jobs[job_id]
        current = job.current
        if current is None or current.number != attempt:
            return  # already ended: interrupted, or stopped at its timeout
        name, instance = self._running_instance(job)
        instance.running.discard((job_id, attempt))
        self.scheduler.exited(job_id, attempt, now, ExitInfo(exit_code, None, EXITED_REASON), {})
        if not instance.running:
            self._idle(name, instance, now)

    def _stop(self, action: StopAttempt, now: int) -> None:
        """The scheduler stops an attempt (its timeout): it ends now, killed."""
        job = self.scheduler.jobs[action.job_id]
        found = self._running_instance(job)
        if found is None:
            return
        name, instance = found
        instance.running.discard((action.job_id, action.attempt))
        info = ExitInfo(TIMED_OUT_EXIT_CODE, None, EXITED_REASON)
        self.scheduler.exited(action.job_id, action.attempt, now, info, {})
        if not instance.running:
            self._idle(name, instance, now)

    # ----------------------------------------------------------------- instances
    def _launched(self, name: str, instance: Instance, now: int) -> None:
        rate = self.interruption_rate[name]
        if rate > 0:
            hours = self.rng.expovariate(rate)
            self._push(instance.launched_at + max(1, _ms(hours * 3600)), _INTERRUPT, (name, instance))
        if instance.up_at > now:
            self._push(instance.up_at, _UP, (name, instance))
        else:
            self.scheduler.set_pool(self.fleets[name])  # new capacity: placement due
            self._idle(name, instance, now)

    def _idle(self, name: str, instance: Instance, now: int) -> None:
        """The instance has nothing running; :meth:`_settle` arms its scale-down if it stays so."""
        instance.idle_since = now
        self._went_idle.append((name, instance))

    def _arm_scale_down(self, now: int) -> None:
        # Only instances still idle once placement is done: in a busy campaign a freed instance
        # takes the next job at once, and needs no scale-down event.
        for name, instance in self._went_idle:
            if instance.alive and not instance.running and instance.idle_since == now:
                self._push(now + self.scale_down_ms[name], _IDLE, (name, instance, now))
        self._went_idle.clear()

    def _maybe_release(self, name: str, instance: Instance, since: int, now: int) -> None:
        fleet = self.fleets[name]
        if instance.alive and not instance.running and instance.idle_since == since and fleet.may_release():
            fleet.release_instance(instance, now)

    def _interrupt(self, name: str, instance: Instance, now: int) -> None:
        """A spot reclaim: the instance goes, and every attempt on it ends without an exit code."""
        if not instance.alive:
            return
        self.interruptions += 1
        self.fleets[name].release_instance(instance, now, interrupted=True)
        info = ExitInfo(None, None, interruption_reason(instance))
        for job_id, attempt in sorted(instance.running):
            self.scheduler.exited(job_id, attempt, now, info, {})
        instance.running.clear()
        if len(self.finished) < self.total_jobs:
            self._replace_minimum(name, now)

    def _scale(self, now: int) -> bool:
        """Launch instances for RUNNABLE jobs that fit nowhere now, up to each fleet's maxvCpus.

        Capacity already launching counts as covering demand, so waiting jobs are not counted twice.
        A queue's demand goes to its compute environments in order, as its jobs would. Returns
        whether capacity came up at once (no scaling delay), so that placement runs again.
        """
        for fleet in self._fleet_list:
            if fleet.can_grow():
                break
        else:
            return False  # the common case in a long campaign: every fleet at its maximum
        up_now = False
        jobs = self.scheduler.jobs
        for queue in sorted(self.scheduler.queues.values(), key=lambda q: -q.priority):
            if not queue.runnable:
                continue
            fleets = self._queue_fleets[queue.name]
            budget = sum(f.headroom() * f.shape.vcpus + f.launching_vcpus() for _, f in fleets)
            if budget <= 0:
                continue
            demand = 0
            for key in queue.runnable:
                demand += jobs[key[-1]].resources.vcpus
                if demand >= budget:
                    break
            for name, fleet in fleets:
                if demand <= 0:
                    break
                missing = demand - fleet.launching_vcpus()
                count = min(fleet.headroom(), math.ceil(max(0, missing) / fleet.shape.vcpus))
                for instance in fleet.launch(now, count):
                    self._launched(name, instance, now)
                    up_now = up_now or instance.up_at <= now
                demand -= fleet.launching_vcpus()
        return up_now

    def _replace_minimum(self, name: str, now: int) -> None:
        """Keep ``min_vcpus`` running: AWS replaces a reclaimed instance the minimum needs."""
        fleet = self.fleets[name]
        short = math.ceil((fleet.min_vcpus - fleet.alive_vcpus) / fleet.shape.vcpus)
        if short > 0:
            for instance in fleet.launch(now, short):
                self._launched(name, instance, now)
