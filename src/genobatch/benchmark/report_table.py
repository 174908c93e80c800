"""The benchmark report's tables, defined once for the workbook and the page.

A :class:`Column` says what one column shows; a :class:`Spread` value becomes three workbook columns
(median, low, high) and one page cell ("median (low–high)"), so the two files always show the same
figures in the same order. Rows are sorted by median cost per workload, the question the report
answers first: what is the cheapest way to process the workload.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from genobatch.benchmark.aggregate import label
from genobatch.benchmark.results import (
    BenchmarkResults,
    Difference,
    EquivalenceResult,
    Spread,
    Target,
    TargetSummary,
)

Kind = Literal["text", "int", "usd", "usd_fine", "hours", "seconds", "rate"]
Value = str | int | float | Spread | None

#: Decimal prefixes tried for the per-unit columns, so a cost per base (1e-9 $) reads as $ per G bases.
PREFIXES: tuple[tuple[float, str], ...] = ((1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T"))
#: The smallest median cost per scaled unit worth reading; the scale grows until the cheapest row reaches it.
READABLE_USD = 0.001


@dataclass(frozen=True)
class UnitScale:
    """How many units of work one "per unit" figure is for, e.g. 1e9 and ``G bases``."""

    factor: float
    label: str


@dataclass(frozen=True)
class Column:
    """One column of the results table: its header, how to read it from a row, and how to format it."""

    key: str  # stable: the page's data-* attribute and tests use it
    header: str
    value: Callable[[TargetSummary], Value]
    kind: Kind
    spread: bool = False  # the value is a Spread (or None): three workbook columns, one page cell


def unit_scale(results: BenchmarkResults) -> UnitScale:
    """The smallest power of 1000 at which the cheapest row's cost per scaled unit is readable."""
    costs = [s.cost_per_unit.median for s in results.summaries if s.cost_per_unit.median > 0]
    unit = results.work_unit
    if not costs:
        return UnitScale(1.0, unit)
    cheapest = min(costs)
    for factor, prefix in PREFIXES:
        if cheapest * factor >= READABLE_USD:
            return UnitScale(factor, f"{prefix} {unit}".strip())
    factor, prefix = PREFIXES[-1]
    return UnitScale(factor, f"{prefix} {unit}")


def scaled(spread: Spread, factor: float) -> Spread:
    """A spread multiplied by a constant (order is kept: factors are positive)."""
    return Spread(spread.median * factor, spread.low * factor, spread.high * factor)


def known(spread: Spread | None) -> Spread | None:
    """A spread that has a value: aggregation reports NaN for a summary none of whose repeats was usable."""
    return None if spread is None or math.isnan(spread.median) else spread


def sorted_summaries(summaries: list[TargetSummary]) -> list[TargetSummary]:
    """Cheapest per workload first, summaries without a cost last; ties by name, never by input order."""

    def key(s: TargetSummary) -> tuple[bool, float, str]:
        cost = known(s.cost_per_workload)
        return (cost is None, cost.median if cost else 0.0, label(s))

    return sorted(summaries, key=key)


def by_region(results: BenchmarkResults) -> dict[str, list[TargetSummary]]:
    """Rows per pricing region (regions alphabetical), each sorted by median cost per workload."""
    regions: dict[str, list[TargetSummary]] = {}
    for summary in results.summaries:
        regions.setdefault(summary.target.region, []).append(summary)
    return {region: sorted_summaries(regions[region]) for region in sorted(regions)}


def columns(results: BenchmarkResults, scale: UnitScale) -> list[Column]:
    """The results table's columns, headers naming the workload and the unit scale."""
    workload = results.workload_name
    per_unit = scale.label
    # Per-unit run time divides the per-workload figure, so per unit x units always equals per workload.
    units = results.workload_units / scale.factor if results.workload_units else 0.0

    rate = f"{results.work_unit}/s"

    def runtime_per_unit(s: TargetSummary) -> Spread | None:
        return scaled(s.runtime_per_workload_h, 1 / units) if units else None

    def runtime_per_workload(s: TargetSummary) -> Spread:
        return s.runtime_per_workload_h

    def cost_per_unit(s: TargetSummary) -> Spread:
        return scaled(s.cost_per_unit, scale.factor)

    table = [
        Column("target", "target", lambda s: s.target.name, "text"),
        Column("instance-type", "instance type", lambda s: s.target.instance_type, "text"),
        Column("gpus", "GPUs", lambda s: s.target.gpus, "int"),
        Column("vcpus", "vCPUs", lambda s: s.target.vcpus, "int"),
        Column("price-per-hour", "cost/hour [$]", lambda s: s.target.price_per_hour, "usd_fine"),
        Column("purchase", "purchase", lambda s: purchase_label(s.target), "text"),
        Column("tool", "tool", lambda s: s.tool, "text"),
        Column("configuration", "configuration", lambda s: s.configuration, "text"),
        Column("runtime-per-unit-h", f"runtime [h] per {per_unit}", runtime_per_unit, "hours", True),
        Column("runtime-per-workload-h", f"runtime [h] per {workload}", runtime_per_workload, "hours", True),
        Column("cost-per-unit", f"cost [$] per {per_unit}", cost_per_unit, "usd_fine", True),
        Column("cost-per-workload", f"cost [$] per {workload}", lambda s: s.cost_per_workload, "usd", True),
        Column("cost-per-run", "cost [$] per instance run", lambda s: s.cost_per_run, "usd_fine", True),
        Column("throughput-measured", f"throughput measured [{rate}]", lambda s: s.throughput_measured, "rate", True),
        Column("throughput-tool", "throughput tool-reported", lambda s: s.throughput_tool, "rate", True),
        Column("tool-rate-unit", "tool-reported unit", lambda s: s.tool_rate_unit or "", "text"),
        Column("shards", "shards", lambda s: s.shards, "int"),
        Column("repeats", "repeats", lambda s: s.repeats, "int"),
        Column("failed-shards", "failed shards", lambda s: s.failed_shards, "int"),
        Column("shard-spread-s", "shard spread [s]", lambda s: s.shard_spread_s, "seconds", True),
        Column("stragglers", "stragglers", lambda s: "; ".join(s.stragglers), "text"),
        Column("notes", "notes", lambda s: "; ".join(s.notes), "text"),
        Column("price-source", "price source", lambda s: f"{s.target.price_source} ({s.target.price_as_of})", "text"),
    ]  # fmt: skip
    # NaN spreads (no usable repeat) become blanks everywhere rather than "nan" cells and broken bars.
    return [replace(c, value=_known_value(c.value)) if c.spread else c for c in table]


def purchase_label(target: Target) -> str:
    """``spot``, or ``spot (estimated price)`` when the price is on-demand x a fraction, not an observed one."""
    return f"{target.purchase} (estimated price)" if target.price_estimated else target.purchase


def _known_value(value: Callable[[TargetSummary], Value]) -> Callable[[TargetSummary], Value]:
    def read(summary: TargetSummary) -> Value:
        figure = value(summary)
        return known(figure) if isinstance(figure, Spread) else figure

    return read


@dataclass(frozen=True)
class Verdict:
    """One target's standing for one output, at both levels of sameness.

    ``verdict`` is the first level (normalised records identical): "reference" | "identical" |
    "different" | "missing" | "missing on reference". ``calls_verdict`` is the second, for variant
    calls only (else None): "reference" | "same calls" | "different calls" | "missing" | "missing on
    reference".
    """

    tool: str
    output: str
    target: str
    verdict: str
    digest: str | None
    difference: Difference | None
    records: int | None = None  # normalised records read on this target
    calls_verdict: str | None = None
    calls_difference: Difference | None = None
    calls: int | None = None  # calls (VCF records) read on this target


def _standing(target: str, reference: str, digests: dict[str, str], difference: Difference | None, same: str) -> str:
    if target == reference:
        return "reference" if reference in digests else "missing"
    if target not in digests:
        return "missing"
    if reference not in digests:
        return "missing on reference"
    return ("different" if same == "identical" else "different calls") if difference else same


def verdicts(result: EquivalenceResult, targets: list[str]) -> list[Verdict]:
    """Every target's verdict for one output, reference target first.

    ``targets`` is every target of the benchmark, so a target that lacks the output and has no
    :class:`Difference` (because the reference lacks it too) is still listed as missing.
    """
    differences = {d.target: d for d in result.differences}
    calls = result.calls
    calls_differences = {d.target: d for d in calls.differences} if calls else {}
    reference = result.reference_target
    rows = []
    for target in [reference, *(t for t in targets if t != reference)]:
        rows.append(
            Verdict(
                result.tool,
                result.output,
                target,
                _standing(target, reference, result.digests, differences.get(target), "identical"),
                result.digests.get(target),
                differences.get(target),
                result.records.get(target),
                _standing(target, reference, calls.digests, calls_differences.get(target), "same calls")
                if calls
                else None,
                calls_differences.get(target),
                calls.records.get(target) if calls else None,
            )
        )
    return rows


def tool_targets(results: BenchmarkResults, tool: str) -> list[str]:
    """Every target ``tool`` ran on, in first-seen order (its summaries, then its equivalence results)."""
    names = [s.target.name for s in results.summaries if s.tool == tool]
    for result in results.equivalence:
        if result.tool == tool:
            names += [result.reference_target, *result.digests, *(d.target for d in result.differences)]
    return list(dict.fromkeys(names))


def all_verdicts(results: BenchmarkResults) -> list[tuple[EquivalenceResult, list[Verdict]]]:
    """Each equivalence result, sorted by tool and output, with every target's verdict."""
    ordered = sorted(results.equivalence, key=lambda r: (r.tool, r.output))
    return [(result, verdicts(result, tool_targets(results, result.tool))) for result in ordered]
