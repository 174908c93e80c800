"""The equivalence verdicts as plain text lines, for the terminal after ``genobatch bench run``/``report``.

Both levels of sameness, each with its counts: how many outputs have identical records on every
target, how many VCF/BCF outputs hold the same calls; then, for every output where either level
differs, each target's counts and the first differing record pair of each level. Identical outputs
get no line of their own, so a long per-shard comparison stays readable; the page and the workbook
list everything.
"""

from __future__ import annotations

import math

from genobatch.benchmark.report_table import all_verdicts
from genobatch.benchmark.results import BenchmarkResults, Difference, TargetSummary

#: Characters of a record shown on one terminal line.
SHOWN = 160


def _clip(record: str) -> str:
    return record if len(record) <= SHOWN else record[: SHOWN - 1] + "…"


def _counts(difference: Difference, reference: str, target: str) -> str:
    return (
        f"{difference.differing_records:,} differing, {difference.only_in_reference:,} only in {reference}, "
        f"{difference.only_in_target:,} only in {target}"
    )


def _first(difference: Difference | None) -> list[str]:
    if difference is None or not difference.first:
        return []
    ours, theirs = difference.first[0]
    return [f"      - {_clip(ours)}", f"      + {_clip(theirs)}"]


def _change(ratio: float) -> str:
    return f"{(1 - ratio) * 100:.0f}% less" if ratio <= 1 else f"{(ratio - 1) * 100:.0f}% more"


def summary_lines(results: BenchmarkResults) -> list[str]:
    """The few lines ``bench run`` ends with: per tool x configuration x target the measured run and the
    workload-scaled time and cost (with the extrapolation caveat where it applies), then the recommendation."""
    from genobatch.report.units import money

    measured = [s.work for s in results.summaries if s.repeats and math.isfinite(s.work) and s.work > 0]
    scaled = bool(measured) and math.isfinite(results.workload_units) and results.workload_units != measured[0]
    lines = [f"summary ({results.workload_name}: medians over complete repeats)"]
    for s in results.summaries:
        if not s.repeats:
            lines.append(
                f"  {s.tool}/{s.configuration}@{s.target.name}: no complete run ({s.failed_shards} failed shards)"
            )
            continue
        lines.append(
            f"  {s.tool}/{s.configuration}@{s.target.name}: measured run {s.runtime_s.median:.1f} s; "
            f"per workload {s.runtime_per_workload_h.median:.2f} h, {money(s.cost_per_workload.median)}"
        )
    if scaled:
        lines.append(
            f"  per-workload figures are extrapolated linearly from the measured {measured[0]:.6g} "
            f"{results.work_unit} to {results.workload_units:.6g} {results.work_unit}: start-up inside a tiny run "
            "is scaled too, so they overstate a real workload's time and cost"
        )
    lines += [f"recommendation: {sentence}" for sentence in results.recommendation.explanation[1:]]
    return lines


def comparison_lines(results: BenchmarkResults) -> list[str]:
    """Each target's time and cost per workload as ratios of the first target's, per tool x configuration.

    Time: median run time per workload; cost: median cost per workload (per-second billing, overhead
    included, each target at its own price). A speed-up "1.50x" is the reference's time ÷ the target's.
    """
    groups: dict[tuple[str, str], list[TargetSummary]] = {}
    for summary in results.summaries:
        groups.setdefault((summary.tool, summary.configuration), []).append(summary)
    lines = []
    for (tool, configuration), summaries in groups.items():
        reference = summaries[0]
        for other in summaries[1:]:
            figures = (reference.runtime_per_workload_h, reference.cost_per_workload)
            figures += (other.runtime_per_workload_h, other.cost_per_workload)
            if not all(f.median > 0 for f in figures):  # NaN (no complete run) or zero: no ratio to state
                lines.append(
                    f"{tool}/{configuration}: {other.target.name} vs {reference.target.name}: no ratio "
                    "(a target has no complete run)"
                )
                continue
            time_ratio = other.runtime_per_workload_h.median / reference.runtime_per_workload_h.median
            cost_ratio = other.cost_per_workload.median / reference.cost_per_workload.median
            estimated = (
                " (estimated prices)" if other.target.price_estimated or reference.target.price_estimated else ""
            )
            lines.append(
                f"{tool}/{configuration}: {other.target.name} vs {reference.target.name}: "
                f"time x{time_ratio:.3f} ({_change(time_ratio)}, speed-up {1 / time_ratio:.2f}x), "
                f"cost x{cost_ratio:.3f} ({_change(cost_ratio)}) at ${other.target.price_per_hour:g}/h vs "
                f"${reference.target.price_per_hour:g}/h{estimated}"
            )
    return lines


def equivalence_lines(results: BenchmarkResults) -> list[str]:
    """The summary and every differing output's details, one string per line (no markup)."""
    verdicts = all_verdicts(results)
    if not verdicts:
        return ["equivalence: no outputs were compared"]
    identical = sum(result.identical for result, _ in verdicts)
    with_calls = [result for result, _ in verdicts if result.calls is not None]
    lines = [f"equivalence: {identical} of {len(verdicts)} outputs have identical records on every target"]
    if with_calls:
        same = sum(result.calls.same for result in with_calls if result.calls)
        lines.append(f"             {same} of {len(with_calls)} variant-call outputs hold the same calls")
    for result, rows in verdicts:
        if result.identical and (result.calls is None or result.calls.same):
            continue
        calls = "" if result.calls is None else f"; calls: {'same' if result.calls.same else 'different'}"
        lines.append(
            f"  {result.tool} {result.output}: records {'identical' if result.identical else 'different'}{calls}"
            f" ({result.comparison})"
        )
        for v in rows:
            if v.verdict not in ("reference", "identical"):
                detail = f": {_counts(v.difference, result.reference_target, v.target)}" if v.difference else ""
                lines.append(f"    {v.target}: records {v.verdict}{detail}")
                lines += _first(v.difference)
            if v.calls_verdict is not None and v.calls_verdict not in ("reference", "same calls"):
                c = v.calls_difference
                detail = f": {_counts(c, result.reference_target, v.target)}" if c else ""
                verdict = v.calls_verdict if "calls" in v.calls_verdict else f"calls {v.calls_verdict}"
                lines.append(f"    {v.target}: {verdict}{detail}")
                lines += _first(c)
    return lines
