"""Cost accounting over trace records: per attempt, job, sample, tag, queue and run, and the breakdown table.

Pure functions (no I/O, no clock). A trace record is a dict with at least ``job_id``, ``attempt``,
``start_ms``, ``stop_ms``, ``vcpus``, ``memory_mib``, ``gpus``, ``compute_environment`` and
``tags``; the Nextflow-style names of ``genobatch.trace`` (``task_id``, ``start``, ``complete``,
``cpus``, ``memory``) are read too, so its records can be passed as they are. ``queue`` and
``sample`` are used when present (the sample falls back to the ``genobatch:sample`` tag).

Every attempt counts, failed ones included: a retried job paid for each try. An attempt that has
not stopped is left out unless ``now_ms`` is given (then it is costed up to ``now_ms``).

The breakdown table has the shape of the Bactopia write-up's (charge | usage | cost USD (%) | cost
per sample): :func:`breakdown_table` over :class:`Charge` lines, and :func:`sample_costs` for one
row per sample (compute, storage, transfer, total).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from genobatch.cost.billing import (
    BillingSpec,
    InstanceLifetime,
    Usage,
    attributed_cost,
    billed_instance_seconds,
    share,
)
from genobatch.trace import SAMPLE_TAG

#: The group of attempts that carry no value for the grouping key.
UNLABELLED = "(none)"


def _first(record: Mapping[str, Any], *names: str) -> Any:
    return next((record[name] for name in names if record.get(name) is not None), None)


@dataclass(frozen=True, slots=True)
class AttemptCost:
    """One attempt's attributed cost, with the keys it is grouped by."""

    job_id: str
    attempt: int
    compute_environment: str
    queue: str | None
    sample: str | None
    tags: Mapping[str, str]
    running_s: float
    vcpus: float
    share: float
    cost_usd: float

    @property
    def vcpu_hours(self) -> float:
        return self.vcpus * self.running_s / 3600


def usage_from_record(record: Mapping[str, Any], now_ms: int | None = None) -> Usage | None:
    """The billing view of one trace record; ``None`` for an attempt that never started or has not stopped."""
    start = _first(record, "start_ms", "start")
    stop = _first(record, "stop_ms", "complete")
    if stop is None:
        stop = now_ms
    if start is None or stop is None:
        return None
    job_id = _first(record, "job_id", "task_id")
    return Usage(
        start_s=start / 1000,
        stop_s=stop / 1000,
        vcpus=_first(record, "vcpus", "cpus") or 0,
        memory_mib=_first(record, "memory_mib", "memory") or 0,
        gpus=record.get("gpus") or 0,
        key=f"{job_id}#{record.get('attempt', 1)}",
    )


def _spec(specs: Mapping[str, BillingSpec], name: str) -> BillingSpec:
    try:
        return specs[name]
    except KeyError:
        known = ", ".join(sorted(specs)) or "none"
        raise LookupError(f"no billing spec for compute environment {name!r} (have: {known})") from None


def attempt_costs(
    records: Iterable[Mapping[str, Any]], specs: Mapping[str, BillingSpec], now_ms: int | None = None
) -> list[AttemptCost]:
    """The attributed cost of every attempt that ran, priced by its compute environment's spec."""
    costs = []
    for record in records:
        usage = usage_from_record(record, now_ms)
        if usage is None:
            continue
        spec = _spec(specs, record["compute_environment"])
        tags = record.get("tags") or {}
        costs.append(
            AttemptCost(
                job_id=str(_first(record, "job_id", "task_id")),
                attempt=int(record.get("attempt", 1)),
                compute_environment=record["compute_environment"],
                queue=_first(record, "queue", "job_queue"),
                sample=record.get("sample") or tags.get(SAMPLE_TAG),
                tags=tags,
                running_s=usage.running_s,
                vcpus=usage.vcpus,
                share=share(usage.vcpus, usage.memory_mib, usage.gpus, spec),
                cost_usd=attributed_cost(usage, spec),
            )
        )
    return costs


def total_by(costs: Iterable[AttemptCost], key: Callable[[AttemptCost], str | None]) -> dict[str, float]:
    """Attributed USD summed per group; attempts whose key is ``None`` go to :data:`UNLABELLED`."""
    totals: dict[str, float] = defaultdict(float)
    for cost in costs:
        group = key(cost)
        totals[UNLABELLED if group is None else group] += cost.cost_usd
    return dict(totals)


def cost_per_job(costs: Iterable[AttemptCost]) -> dict[str, float]:
    """USD per job, all its attempts together."""
    return total_by(costs, lambda c: c.job_id)


def cost_per_sample(costs: Iterable[AttemptCost]) -> dict[str, float]:
    """USD per sample (``sample`` field or ``genobatch:sample`` tag)."""
    return total_by(costs, lambda c: c.sample)


def cost_per_tag(costs: Iterable[AttemptCost], tag: str) -> dict[str, float]:
    """USD per value of one tag."""
    return total_by(costs, lambda c: c.tags.get(tag))


def cost_per_queue(costs: Iterable[AttemptCost]) -> dict[str, float]:
    """USD per job queue."""
    return total_by(costs, lambda c: c.queue)


def vcpu_hours(records: Iterable[Mapping[str, Any]], now_ms: int | None = None) -> float:
    """Σ vCPUs × running hours: the "CPU hours" of a cloud bill's usage column."""
    total = 0.0
    for record in records:
        usage = usage_from_record(record, now_ms)
        if usage is not None:
            total += usage.vcpus * usage.running_s / 3600
    return total


@dataclass(frozen=True, slots=True)
class EnvironmentCost:
    """One compute environment's part of a run: attributed to jobs, billed for instances."""

    name: str
    spec: BillingSpec
    attributed_usd: float
    billed_usd: float
    instances: tuple[InstanceLifetime, ...]

    @property
    def unallocated_usd(self) -> float:
        """Billed but attributed to no job: idle and fragmented capacity, the 60 s minimums."""
        return self.billed_usd - self.attributed_usd


@dataclass(frozen=True, slots=True)
class RunCost:
    """A run's cost: attributed (what jobs used) and billed (what the environments held)."""

    attributed_usd: float
    billed_usd: float
    vcpu_hours: float
    environments: dict[str, EnvironmentCost] = field(default_factory=dict)

    @property
    def unallocated_usd(self) -> float:
        return self.billed_usd - self.attributed_usd


def run_cost(
    records: Iterable[Mapping[str, Any]],
    specs: Mapping[str, BillingSpec],
    idle_grace_s: float = 0,
    now_ms: int | None = None,
) -> RunCost:
    """Attributed and billed cost of a run, per compute environment and in total."""
    by_environment: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        by_environment[record["compute_environment"]].append(record)
    environments = {}
    for name, group in sorted(by_environment.items()):
        spec = _spec(specs, name)
        usages = [u for u in (usage_from_record(r, now_ms) for r in group) if u is not None]
        lifetimes = tuple(billed_instance_seconds(usages, spec, idle_grace_s))
        environments[name] = EnvironmentCost(
            name=name,
            spec=spec,
            attributed_usd=sum(c.cost_usd for c in attempt_costs(group, specs, now_ms)),
            billed_usd=sum(life.billed_s for life in lifetimes) * spec.price_per_hour / 3600,
            instances=lifetimes,
        )
    return RunCost(
        attributed_usd=sum(e.attributed_usd for e in environments.values()),
        billed_usd=sum(e.billed_usd for e in environments.values()),
        vcpu_hours=sum(vcpu_hours(group, now_ms) for group in by_environment.values()),
        environments=environments,
    )


@dataclass(frozen=True, slots=True)
class SampleCost:
    """One row per sample: compute, storage and transfer USD, and their total."""

    sample: str
    compute_usd: float
    storage_usd: float = 0.0
    transfer_usd: float = 0.0

    @property
    def total_usd(self) -> float:
        return self.compute_usd + self.storage_usd + self.transfer_usd


def sample_costs(
    costs: Iterable[AttemptCost],
    storage_usd: Mapping[str, float] | None = None,
    transfer_usd: Mapping[str, float] | None = None,
) -> list[SampleCost]:
    """Per-sample rows, sorted by sample: compute from the attempts, storage and transfer as given per sample."""
    compute = cost_per_sample(costs)
    storage, transfer = storage_usd or {}, transfer_usd or {}
    samples = sorted(set(compute) | set(storage) | set(transfer))
    return [SampleCost(s, compute.get(s, 0.0), storage.get(s, 0.0), transfer.get(s, 0.0)) for s in samples]


@dataclass(frozen=True, slots=True)
class Charge:
    """One line of a bill: a charge, its usage in some unit, and its cost."""

    name: str
    usage: float
    unit: str
    cost_usd: float


@dataclass(frozen=True, slots=True)
class BreakdownRow:
    """A row of the breakdown table: charge | usage | cost USD (percent of total) | cost per sample."""

    charge: str
    usage: float | None
    unit: str
    cost_usd: float
    percent: float
    per_sample_usd: float


TOTAL = "Total"


def breakdown_table(charges: Sequence[Charge], samples: int) -> list[BreakdownRow]:
    """The charges with their share of the total and their cost per sample, then a total row."""
    if samples <= 0:
        raise ValueError("the number of samples must be positive")
    total = sum(c.cost_usd for c in charges)
    rows = [
        BreakdownRow(
            charge=c.name,
            usage=c.usage,
            unit=c.unit,
            cost_usd=c.cost_usd,
            percent=100 * c.cost_usd / total if total else 0.0,
            per_sample_usd=c.cost_usd / samples,
        )
        for c in charges
    ]
    rows.append(BreakdownRow(TOTAL, None, "", total, 100.0 if total else 0.0, total / samples))
    return rows
