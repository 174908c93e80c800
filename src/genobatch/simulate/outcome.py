"""What one simulated run came to: makespan, queue wait, utilisation over time, instance-hours, cost.

Cost is computed by the code that prices real runs: each simulated attempt becomes a
:class:`genobatch.cost.billing.Usage` and goes through :func:`~genobatch.cost.billing.attributed_cost`
and :func:`~genobatch.cost.billing.billed_instance_seconds` with the run report's idle grace - what
:func:`genobatch.cost.accounting.run_cost` does for a real run's trace records, without parsing
67,000 records (tests/test_simulate.py checks the totals equal ``run_cost``'s). So *attributed* and
*billed* mean exactly what ``genobatch cost`` prints for a real run (billed packs the attempts onto
instances of the type and knows nothing of boot time). The simulated fleet's own
instances - launched ahead of the work, booting for the scaling delay, released after the
scale-down delay or reclaimed - are reported beside it as *fleet* instance-hours and cost, each
instance billed per second with the 60 s minimum (:func:`genobatch.cost.billing.instance_cost`).

Queue wait of an attempt: from when it could run (submitted and its dependencies met, or its
previous attempt ended) to when the scheduler placed it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from genobatch.cost.billing import BillingSpec, Usage, attributed_cost, billed_instance_seconds, instance_cost
from genobatch.run import IDLE_GRACE_S  # the run report's: simulated and real billed costs alike
from genobatch.simulate.simulator import Simulation

TIMELINE_BUCKETS = 24


@dataclass(frozen=True, slots=True)
class Interval:
    """One bucket of the utilisation timeline (seconds from the first submission)."""

    start_s: float
    end_s: float
    busy_vcpus: float  # mean vCPUs used by attempts over the bucket
    fleet_vcpus: float  # mean vCPUs of instances up over the bucket

    @property
    def utilisation(self) -> float:
        return self.busy_vcpus / self.fleet_vcpus if self.fleet_vcpus else 0.0


@dataclass(frozen=True)
class Outcome:
    """One seed's results; durations in seconds, money in USD."""

    seed: int
    makespan_s: float
    jobs: dict[str, int]  # jobs that run, per final status (UNFINISHED: never got to run to the end)
    attempts: int
    interruptions: int
    injected_failures: int
    wait_mean_s: float
    wait_p50_s: float
    wait_p95_s: float
    wait_max_s: float
    vcpu_hours: float
    attributed_usd: float
    billed_usd: float
    billed_instance_hours: float
    fleet_instance_hours: float
    fleet_usd: float
    instances_launched: int
    utilisation: float  # busy vCPU-seconds over fleet vCPU-seconds, whole run
    timeline: tuple[Interval, ...] = ()
    events: int = 0
    environments: dict[str, dict] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """The scalar results, by name (what percentiles over seeds are taken of)."""
        return {
            "makespan_h": self.makespan_s / 3600,
            "wait_mean_min": self.wait_mean_s / 60,
            "wait_p95_min": self.wait_p95_s / 60,
            "vcpu_hours": self.vcpu_hours,
            "attributed_usd": self.attributed_usd,
            "billed_usd": self.billed_usd,
            "billed_instance_hours": self.billed_instance_hours,
            "fleet_instance_hours": self.fleet_instance_hours,
            "fleet_usd": self.fleet_usd,
            "utilisation": self.utilisation,
            "attempts": float(self.attempts),
            "interruptions": float(self.interruptions),
            "failed_jobs": float(self.jobs.get("FAILED", 0)),
        }


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return 0.0
    position = (len(sorted_values) - 1) * q
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def outcome_of(simulation: Simulation, specs: Mapping[str, BillingSpec], buckets: int = TIMELINE_BUCKETS) -> Outcome:
    """Measure a finished :class:`Simulation`."""
    jobs = simulation.scheduler.jobs
    usages: dict[str, list[Usage]] = {name: [] for name in simulation.fleets}
    waits: list[float] = []
    statuses: Counter[str] = Counter()
    last_stop = 0
    for job in jobs.values():
        if job.is_array_parent:
            continue
        statuses[job.status.value if job.status.value in ("SUCCEEDED", "FAILED") else "UNFINISHED"] += 1
        ready = job.created_at
        for dep_id, _ in job.depends_on:
            stopped = jobs[dep_id].stopped_at
            ready = max(ready, stopped if stopped is not None else ready)
        for attempt in job.attempts:
            waits.append((attempt.placed_at - ready) / 1000)
            if attempt.started_at is None or attempt.stopped_at is None:
                continue
            ready = attempt.stopped_at
            last_stop = max(last_stop, attempt.stopped_at)
            usages[attempt.compute_environment].append(
                Usage(
                    attempt.started_at / 1000,
                    attempt.stopped_at / 1000,
                    job.resources.vcpus,
                    job.resources.memory_mib,
                    job.resources.gpus,
                    f"{job.id}#{attempt.number}",
                )
            )
    attributed = {name: sum(attributed_cost(u, specs[name]) for u in group) for name, group in usages.items()}
    lifetimes = {name: billed_instance_seconds(group, specs[name], IDLE_GRACE_S) for name, group in usages.items()}
    billed_s = {name: sum(life.billed_s for life in group) for name, group in lifetimes.items()}
    billed = {name: billed_s[name] * specs[name].price_per_hour / 3600 for name in usages}
    first_submit = min((e.submit_at_s for e in simulation.plan.workload), default=0) * 1000
    makespan_ms = max(0, last_stop - first_submit)
    fleet_seconds, fleet_usd, launched, environments = 0.0, 0.0, 0, {}
    for name, fleet in simulation.fleets.items():
        held = [
            ((i.released_at if i.released_at is not None else last_stop) - i.launched_at) / 1000
            for i in fleet.instances
        ]
        usd = sum(instance_cost(max(0.0, s), specs[name].price_per_hour) for s in held)
        environments[name] = {
            "instanceType": specs[name].instance_type,
            "purchase": specs[name].purchase,
            "pricePerHour": specs[name].price_per_hour,
            "priceEstimated": specs[name].price_estimated,
            "instancesLaunched": len(fleet.instances),
            "instancesInterrupted": sum(1 for i in fleet.instances if i.interrupted),
            "fleetInstanceHours": sum(held) / 3600,
            "fleetUsd": usd,
            "attributedUsd": attributed[name],
            "billedUsd": billed[name],
            "billedInstanceHours": billed_s[name] / 3600,
        }
        fleet_seconds += sum(held)
        fleet_usd += usd
        launched += len(fleet.instances)
    every = [u for group in usages.values() for u in group]
    timeline = _timeline(simulation, every, first_submit / 1000, last_stop / 1000, buckets)
    busy = sum(u.vcpus * u.running_s for u in every)
    fleet_vcpu_s = sum(
        f.shape.vcpus * max(0, (i.released_at if i.released_at is not None else last_stop) - i.up_at) / 1000
        for f in simulation.fleets.values()
        for i in f.instances
    )
    waits.sort()
    return Outcome(
        seed=simulation.seed,
        makespan_s=makespan_ms / 1000,
        jobs=dict(statuses),
        attempts=sum(len(job.attempts) for job in jobs.values()),
        interruptions=simulation.interruptions,
        injected_failures=simulation.injected_failures,
        wait_mean_s=sum(waits) / len(waits) if waits else 0.0,
        wait_p50_s=_percentile(waits, 0.5),
        wait_p95_s=_percentile(waits, 0.95),
        wait_max_s=waits[-1] if waits else 0.0,
        vcpu_hours=busy / 3600,
        attributed_usd=sum(attributed.values()),
        billed_usd=sum(billed.values()),
        billed_instance_hours=sum(billed_s.values()) / 3600,
        fleet_instance_hours=fleet_seconds / 3600,
        fleet_usd=fleet_usd,
        instances_launched=launched,
        utilisation=busy / fleet_vcpu_s if fleet_vcpu_s else 0.0,
        timeline=timeline,
        events=simulation.events,
        environments=environments,
    )


def attempt_records(simulation: Simulation) -> list[dict]:
    """Every attempt that ran, as the trace records :mod:`genobatch.cost.accounting` prices."""
    records = []
    for job in simulation.scheduler.jobs.values():
        for attempt in job.attempts:
            if attempt.started_at is None or attempt.stopped_at is None:
                continue
            records.append(
                {
                    "job_id": job.id,
                    "attempt": attempt.number,
                    "start_ms": attempt.started_at,
                    "stop_ms": attempt.stopped_at,
                    "vcpus": job.resources.vcpus,
                    "memory_mib": job.resources.memory_mib,
                    "gpus": job.resources.gpus,
                    "compute_environment": attempt.compute_environment,
                    "queue": job.queue,
                    "status": attempt.status_reason,
                    "exit": attempt.exit_code,
                }
            )
    return records


def _timeline(
    simulation: Simulation, usages: list[Usage], start_s: float, end_s: float, buckets: int
) -> tuple[Interval, ...]:
    """Mean busy and available vCPUs per equal slice of the run (times in seconds)."""
    start_ms, end_ms = start_s * 1000, end_s * 1000
    if end_ms <= start_ms or buckets < 1:
        return ()
    width = (end_ms - start_ms) / buckets
    busy = [0.0] * buckets
    capacity = [0.0] * buckets

    def spread(into: list[float], begin: float, end: float, weight: float) -> None:
        begin, end = max(begin, start_ms), min(end, end_ms)
        if end <= begin:
            return
        first = min(buckets - 1, int((begin - start_ms) // width))
        last = min(buckets - 1, int((end - start_ms) // width))
        for b in range(first, last + 1):
            low = start_ms + b * width
            overlap = min(end, low + width) - max(begin, low)
            if overlap > 0:
                into[b] += weight * overlap

    for usage in usages:
        spread(busy, usage.start_s * 1000, usage.stop_s * 1000, usage.vcpus)
    for fleet in simulation.fleets.values():
        for instance in fleet.instances:
            release = instance.released_at if instance.released_at is not None else end_ms
            spread(capacity, instance.up_at, release, fleet.shape.vcpus)
    return tuple(
        Interval(
            (start_ms + b * width - start_ms) / 1000,
            (start_ms + (b + 1) * width - start_ms) / 1000,
            busy[b] / width,
            capacity[b] / width,
        )
        for b in range(buckets)
    )
