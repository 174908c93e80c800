"""Right-sizing advice: per job definition, what to request given what its jobs actually used.

Recommendations come from the highest measurement over all attempts of the definition (failed ones
too: an attempt killed for memory shows exactly the need the request missed), plus headroom:
``vCPUs = ceil(peak CPUs x cpu_headroom)`` and ``memory = peak RSS x memory_headroom`` rounded up to
``memory_step_mib``. Headroom never raises vCPUs past the request when the peak is within it (a job
held to its vCPUs cannot show it wanted more; only memory, which is not compressible, grows on headroom
alone). ``pct_cpu`` is Nextflow's average CPU over an attempt's life, so the peak here is the busiest
attempt, not the busiest instant.

The saving is an estimate of what the same attempts would have been attributed with the
recommended request. Where the attempt's compute environment gives its instance shape, the estimate
follows genobatch's attribution (``genobatch.cost.billing``): an attempt pays for its largest share of
the instance (vCPUs, memory or GPUs), so ``cost x new share / old share``, and shrinking a resource
that is not the largest saves nothing. Elsewhere a ``cpu_cost_share`` part of the cost is assumed to
follow vCPUs and the rest memory. A negative saving means the definition asks for too little.

A saving is put in proportion to the whole run's attributed cost (``Advice.share_of``), not to the
definition's own: a definition that costs a few micro-dollars and should grow from 1 to 2 vCPUs doubles
its own cost ("-100%") while moving the run's bill by a fraction of a percent, and the run's share is
what tells a reader whether the advice matters. The shares of all definitions add up to the total's.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from genobatch.report.model import ComputeEnvironmentCost, RightSizingPolicy, TraceRecord

MIB = 1024 * 1024


@dataclass(frozen=True)
class Advice:
    """Measured use against request for one job definition, and what to request instead."""

    job_definition: str
    attempts: int
    measured_attempts: int
    requested_cpus: tuple[int, int]
    requested_memory_mib: tuple[int, int]
    gpus: int
    peak_cpus: float | None
    peak_memory_mib: float | None
    recommended_cpus: int | None
    recommended_memory_mib: int | None
    attributed_cost: float
    #: What the same attempts would have been attributed with the recommended request (None: unknown,
    #: e.g. GPU jobs on a compute environment whose instance shape was not given).
    estimated_cost: float | None
    over_memory_attempts: int
    note: str

    @property
    def saving(self) -> float | None:
        """Attributed cost minus the estimate; negative when the request should grow; exactly 0 when the
        estimate equals the cost up to float rounding (a product of shares is not exact: -1e-20 read "-$0.00")."""
        if self.estimated_cost is None:
            return None
        if math.isclose(self.estimated_cost, self.attributed_cost, rel_tol=1e-9, abs_tol=1e-15):
            return 0.0
        return self.attributed_cost - self.estimated_cost

    def share_of(self, run_attributed_cost: float) -> float | None:
        """The saving as a fraction of the whole run's attributed cost (None when either is unknown or zero)."""
        if self.saving is None or not run_attributed_cost:
            return None
        return self.saving / run_attributed_cost


def share_text(fraction: float | None) -> str:
    """A saving's share of the run for people: ``12.5%``, ``-3.0%``, ``<0.1%`` for a non-zero sliver (its dollar
    amount beside it carries the sign), ``0%`` for none, a dash when unknown."""
    if fraction is None or math.isnan(fraction):
        return "–"
    if fraction == 0:
        return "0%"
    if abs(fraction) < 0.0005:
        return "<0.1%"
    return f"{fraction * 100:.1f}%"


def recommend_cpus(peak_cpus: float, policy: RightSizingPolicy) -> int:
    """Whole vCPUs covering the peak with headroom; at least one."""
    # Rounded before ceil so float noise (1.1 x 10 = 11.000000000000002) does not add a vCPU.
    return max(1, math.ceil(round(peak_cpus * policy.cpu_headroom, 6)))


def recommend_memory_mib(peak_mib: float, policy: RightSizingPolicy) -> int:
    """Memory covering the peak with headroom, rounded up to the policy's step; at least one step."""
    step = policy.memory_step_mib
    return max(step, math.ceil(round(peak_mib * policy.memory_headroom / step, 6)) * step)


def _scale(
    record: TraceRecord, cpus: int, memory_mib: int, policy: RightSizingPolicy, shape: ComputeEnvironmentCost | None
) -> float | None:
    """How the attempt's attributed cost changes if its request became ``cpus``/``memory_mib``."""
    if shape is not None:
        old = shape.share(record.cpus, record.memory, record.gpus)
        new = shape.share(cpus, memory_mib, record.gpus)
        if old is not None and new is not None:
            return new / old if old > 0 else 1.0
    if record.gpus:
        return None  # without the instance shape, a GPU's part of the price is unknown
    cpu_ratio = cpus / record.cpus if record.cpus > 0 else 1.0
    if record.memory <= 0:
        return cpu_ratio
    share = policy.cpu_cost_share
    return share * cpu_ratio + (1 - share) * memory_mib / record.memory


def _note(advice_cpus: int | None, advice_mem: int | None, records: list[TraceRecord], over: int) -> str:
    """One sentence telling the reader what to do."""
    if advice_cpus is None or advice_mem is None:
        return "No usage was measured for this definition's attempts; no advice."
    if over:
        return f"{over} attempt(s) used more memory than requested: raise memory to {advice_mem} MiB."
    cpus_now = max(r.cpus for r in records)
    memory_now = max(r.memory for r in records)
    if advice_cpus < cpus_now or advice_mem < memory_now:
        return f"Request {advice_cpus} vCPU and {advice_mem} MiB instead of {cpus_now} vCPU and {memory_now} MiB."
    return "The request fits what the jobs use."


def _advise_one(
    name: str, records: list[TraceRecord], policy: RightSizingPolicy, shapes: Mapping[str, ComputeEnvironmentCost]
) -> Advice:
    measured_cpu = [r.pct_cpu / 100.0 for r in records if r.pct_cpu is not None]
    measured_mem = [r.peak_rss / MIB for r in records if r.peak_rss is not None]
    peak_cpus = max(measured_cpu) if measured_cpu else None
    peak_mem = max(measured_mem) if measured_mem else None
    rec_cpus = None if peak_cpus is None else recommend_cpus(peak_cpus, policy)
    requested_cpus = max(r.cpus for r in records)
    if rec_cpus is not None and peak_cpus is not None and peak_cpus <= requested_cpus < rec_cpus:
        # CPU is compressible and a job held to its vCPUs cannot show it wanted more: a peak within the request
        # is no evidence for growing it, and headroom alone turned a single-threaded 0.94 CPUs on 1 vCPU into
        # "request 2 vCPUs" - twice the cost for nothing.
        rec_cpus = requested_cpus
    rec_mem = None if peak_mem is None else recommend_memory_mib(peak_mem, policy)
    over = sum(1 for r in records if r.peak_rss is not None and r.memory and r.peak_rss > r.requested_memory_bytes)
    attributed = sum(r.attributed_cost for r in records)
    estimated = None
    if rec_cpus is not None and rec_mem is not None:
        scales = [_scale(r, rec_cpus, rec_mem, policy, shapes.get(r.compute_environment)) for r in records]
        if all(scale is not None for scale in scales):
            estimated = sum(r.attributed_cost * (scale or 0.0) for r, scale in zip(records, scales, strict=True))
    note = _note(rec_cpus, rec_mem, records, over)
    if estimated is not None and note.startswith("Request") and math.isclose(estimated, attributed, abs_tol=1e-12):
        # Worth saying: the smaller request is still right (it frees capacity) but the bill does not move.
        note += " Attributed cost would not change: another resource sets these jobs' share of the instance."
    return Advice(
        job_definition=name,
        attempts=len(records),
        measured_attempts=sum(1 for r in records if r.pct_cpu is not None or r.peak_rss is not None),
        requested_cpus=(min(r.cpus for r in records), max(r.cpus for r in records)),
        requested_memory_mib=(min(r.memory for r in records), max(r.memory for r in records)),
        gpus=max(r.gpus for r in records),
        peak_cpus=peak_cpus,
        peak_memory_mib=peak_mem,
        recommended_cpus=rec_cpus,
        recommended_memory_mib=rec_mem,
        attributed_cost=attributed,
        estimated_cost=estimated,
        over_memory_attempts=over,
        note=note,
    )


def by_definition(trace: list[TraceRecord]) -> dict[str, list[TraceRecord]]:
    """Attempts grouped by job definition, definitions in name order."""
    groups: dict[str, list[TraceRecord]] = defaultdict(list)
    for record in trace:
        groups[record.job_definition or "(none)"].append(record)
    return dict(sorted(groups.items()))


def advise(
    trace: list[TraceRecord], policy: RightSizingPolicy, billed: Sequence[ComputeEnvironmentCost] = ()
) -> list[Advice]:
    """Advice for every job definition in the trace; ``billed`` supplies instance shapes where known."""
    shapes = {cost.compute_environment: cost for cost in billed}
    return [_advise_one(name, records, policy, shapes) for name, records in by_definition(trace).items()]
