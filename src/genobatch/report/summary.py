"""The run summary: the handful of numbers a reader looks at first."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from genobatch.report.model import RunData, TraceRecord


@dataclass(frozen=True)
class CostCategory:
    """One line of the cost-by-category table (the shape of a cloud bill's breakdown)."""

    name: str
    cost: float
    share: float | None
    per_sample: float | None


@dataclass(frozen=True)
class RunSummary:
    """Totals over the whole run."""

    jobs: int
    attempts: int
    retried_jobs: int
    jobs_by_state: dict[str, int]
    #: First submit to last completion (or last known instant for jobs still running), ms.
    wall_time_ms: int | None
    first_submit: int | None
    last_event: int | None
    attributed_cost: float
    billed_cost: float
    instance_seconds: float
    #: attributed / billed: how much of what was paid for was used by requests.
    utilisation: float | None
    samples: int
    sample_cost_total: float
    cost_per_sample: float | None
    categories: list[CostCategory]
    cpu_hours_requested: float
    cpu_hours_used: float


def last_attempts(trace: list[TraceRecord]) -> dict[str, TraceRecord]:
    """Each job's latest attempt, which carries the job's final state."""
    latest: dict[str, TraceRecord] = {}
    for record in trace:
        current = latest.get(record.task_id)
        if current is None or record.attempt >= current.attempt:
            latest[record.task_id] = record
    return latest


def run_span(trace: list[TraceRecord]) -> tuple[int | None, int | None]:
    """The earliest submit and the latest event of any attempt, epoch ms."""
    starts = [r.submit for r in trace if r.submit is not None]
    ends = [t for r in trace for t in (r.submit, r.start, r.complete) if t is not None]
    return (min(starts) if starts else None, max(ends) if ends else None)


def _categories(run: RunData) -> list[CostCategory]:
    """Compute, storage and transfer summed over samples, with share of the total and per sample."""
    count = len(run.samples)
    sums = {
        "Compute": sum(s.compute for s in run.samples),
        "Storage": sum(s.storage for s in run.samples),
        "Transfer": sum(s.transfer for s in run.samples),
    }
    grand = sum(sums.values())
    return [
        CostCategory(
            name=name,
            cost=cost,
            share=cost / grand if grand else None,
            per_sample=cost / count if count else None,
        )
        for name, cost in sums.items()
    ]


def summarise(run: RunData) -> RunSummary:
    """Aggregate the trace and the costs of a run."""
    latest = last_attempts(run.trace)
    first, last = run_span(run.trace)
    attributed = sum(r.attributed_cost for r in run.trace)
    billed = sum(c.billed_cost for c in run.billed)
    sample_total = sum(s.total for s in run.samples)
    # Requested CPU time counts every attempt, since failed attempts held their vCPUs too.
    cpu_requested_ms = sum((r.realtime or 0) * r.cpus for r in run.trace)
    cpu_used_ms = sum((r.realtime or 0) * (r.pct_cpu or 0.0) / 100.0 for r in run.trace)
    return RunSummary(
        jobs=len(latest),
        attempts=len(run.trace),
        retried_jobs=sum(1 for r in latest.values() if r.attempt > 1),
        jobs_by_state=dict(sorted(Counter(r.status for r in latest.values()).items())),
        wall_time_ms=None if first is None or last is None else last - first,
        first_submit=first,
        last_event=last,
        attributed_cost=attributed,
        billed_cost=billed,
        instance_seconds=sum(c.instance_seconds for c in run.billed),
        utilisation=attributed / billed if billed else None,
        samples=len(run.samples),
        sample_cost_total=sample_total,
        cost_per_sample=sample_total / len(run.samples) if run.samples else None,
        categories=_categories(run),
        cpu_hours_requested=cpu_requested_ms / 3_600_000,
        cpu_hours_used=cpu_used_ms / 3_600_000,
    )
