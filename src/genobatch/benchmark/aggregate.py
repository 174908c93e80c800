"""From shard results to conclusions: run time, throughput and cost per target, and a recommendation.

Pure: shard results, priced targets and the plan in; :class:`.results.TargetSummary` and
:class:`.results.Recommendation` out. No clock, no I/O.

Formulas
--------

One **instance run** is one repeat of one tool x configuration on one target: its shards ``i`` ran
side by side on one instance (one per GPU, say). With ``s_i`` each shard's seconds (start to stop)::

    run_time     = max_i stop_i - min_i start_i    # = the longest shard when the shards start together
    shard_spread = max_i s_i - min_i s_i
    work         = sum_i work_i                    # measured input, or the parser's metric

The instance is billed until its last shard ends, so run time is the **longest** shard, never the
mean the seed used (a straggler GPU was hidden, yet billed). A shard that had to wait for capacity is
counted from the first start too. A shard is a **straggler** when ``s_i > 1.5 x`` the median of the
run's *other* shards (:data:`STRAGGLER_FACTOR`): comparing with the others, not with a median that
includes the shard itself, lets a 2-GPU run flag a shard 1.5x slower than its partner.

**Throughput**, two figures kept apart (the seed mixed them):

* ``throughput_measured = work / run_time`` - wall clock, so model loading and start-up count;
* ``throughput_tool = sum_i rate_i`` - the tool's own rate per shard (dorado's samples/s, whose clock
  starts after the model is loaded), summed over the instance's shards; only when every shard
  reported it.

**Cost** (per-second billing with the 60 s minimum, :func:`genobatch.cost.billing.instance_cost`;
``price`` is the target's $/h for its purchase type: spot runs are priced at the spot price)::

    cost_per_run      = max(60, ceil(overhead_s + run_time)) x price / 3600
    units             = extrapolate units (e.g. 98.967e9 bases), else the run's own work
    runtime_per_wl    = run_time x units / work                    # linear scaling
    cost_per_workload = max(60, ceil(overhead_s + runtime_per_wl)) x price / 3600
    cost_per_unit     = cost_per_workload / units

``overhead_s`` (instance boot and image pull, priced but not measured) is paid once per
workload-sized instance run. Linear scaling also scales the start-up inside the measured run, so a
small subset overstates the time per workload: measure enough data that start-up is small.

**Repeats**: every figure is reported as median, lowest and highest over the repeats whose shards
all succeeded (:class:`.results.Spread`); a repeat with a failed shard is left out and noted.

**Recommendation** for ``W`` workloads. Model: each workload is one instance run of the target
(``overhead_s`` then the tool), and the workloads run one after another on **one instance at a
time**, so with medians over repeats::

    time_h(W) = W x (overhead_s / 3600 + runtime_per_workload_h)
    cost(W)   = W x cost_per_workload

* *cheapest within the deadline*: the lowest ``cost(W)`` among those with ``time_h(W) <= deadline_h``
  (all, without a deadline); ties go to the faster;
* *fastest within the budget*: the lowest ``time_h(W)`` among those with ``cost(W) <= budget_usd``
  (all, without a budget); ties go to the cheaper. With more than one workload the recommendation adds
  what the same target takes on W instances in parallel (the same cost, one workload's time).

**N instances in parallel** (the question is "how many instances of which type meet the deadline,
at what cost"): the workloads are dealt out to N instances, each running whole workloads one after
another, so ``time_h(W, N) = ceil(W / N) x per_workload_h`` and the cost does not change (each
workload is still one instance run). The fewest instances that meet the deadline is
``N = ceil(W / floor(deadline_h / per_workload_h))`` (at most W; none when one workload alone takes
longer than the deadline); the recommendation names, per summary, that N and its cost, and the
cheapest summary that meets the deadline this way (ties: fewer instances, then faster). Every tool x
configuration competes: leave configurations that are not interchangeable (different accuracy) out of
the summaries passed in.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from genobatch.benchmark.parsers import rate_metrics
from genobatch.benchmark.plan import Plan
from genobatch.benchmark.results import Recommendation, ShardResult, Spread, Target, TargetSummary
from genobatch.cost.billing import instance_cost

#: A shard slower than this multiple of the median of its run's other shards is a straggler.
STRAGGLER_FACTOR = 1.5
SUCCEEDED = "SUCCEEDED"
_NAN = Spread(math.nan, math.nan, math.nan)


class _Unusable(Exception):
    """A repeat whose figures cannot be computed; the message says why."""


@dataclass(frozen=True)
class InstanceRun:
    """The figures of one instance run (one repeat), before costs."""

    repeat: int
    runtime_s: float
    shard_spread_s: float
    work: float
    tool_rate: float | None
    tool_rate_unit: str | None
    stragglers: tuple[str, ...]


def spread(values: Iterable[float]) -> Spread:
    """Median, lowest and highest of ``values``; NaN for none."""
    items = list(values)
    if not items:
        return _NAN
    return Spread(median=statistics.median(items), low=min(items), high=max(items))


def run_time_s(shards: Sequence[ShardResult]) -> float:
    """The instance run's time: first shard start to last shard stop, in seconds."""
    starts = [s.start_ms for s in shards if s.start_ms is not None]
    stops = [s.stop_ms for s in shards if s.stop_ms is not None]
    if len(starts) != len(shards) or len(stops) != len(shards):
        raise ValueError("every shard needs a start and a stop time")
    return (max(stops) - min(starts)) / 1000


def find_stragglers(seconds: Mapping[int, float], factor: float = STRAGGLER_FACTOR) -> list[tuple[int, float, float]]:
    """``(shard, seconds, median of the other shards)`` for each shard slower than ``factor`` x that median."""
    found = []
    for shard, value in sorted(seconds.items()):
        others = [v for k, v in seconds.items() if k != shard]
        if others and statistics.median(others) > 0 and value > factor * statistics.median(others):
            found.append((shard, value, statistics.median(others)))
    return found


def workload_units(plan: Plan, work: float) -> float:
    """Units of work in one workload: the plan's extrapolation, else the benchmarked data set itself."""
    return plan.extrapolate.workload_units if plan.extrapolate else work


def workload_cost(runtime_s: float, work: float, units: float, price_per_hour: float, overhead_s: float) -> float:
    """``max(60, ceil(overhead_s + runtime_s x units / work)) x price / 3600``: one workload-sized run."""
    return instance_cost(overhead_s + runtime_s * units / work, price_per_hour)


def _shard_work(shard: ShardResult, metric: str | None) -> float:
    if metric is None:
        return shard.work
    if metric not in shard.metrics:
        # Never count a missing figure as zero work: that would make the run look infinitely cheap.
        raise _Unusable(f"shard {shard.shard} reported no {metric} (its parser found none), so its work is unknown")
    return shard.metrics[metric]


def _tool_rate(shards: Sequence[ShardResult], candidates: list[tuple[str, str]]) -> tuple[float, str] | None:
    for metric, unit in candidates:
        if all(metric in s.metrics for s in shards):
            return sum(s.metrics[metric] for s in shards), unit
    return None


def instance_run(
    shards: Sequence[ShardResult],
    work_metric: str | None = None,
    rate_candidates: list[tuple[str, str]] | None = None,
    factor: float = STRAGGLER_FACTOR,
) -> InstanceRun:
    """The figures of one repeat from its (all succeeded) shards; see the module docstring."""
    ordered = sorted(shards, key=lambda s: s.shard)
    runtime = run_time_s(ordered)
    seconds = {s.shard: float(s.seconds or 0.0) for s in ordered}
    work = sum(_shard_work(s, work_metric) for s in ordered)
    if work <= 0:
        raise _Unusable("it measured no work, so nothing can be scaled to a workload")
    if runtime <= 0:
        raise _Unusable("its run time is zero")
    repeat = ordered[0].repeat
    stragglers = tuple(
        f"repeat {repeat} shard {shard}: {value:.0f} s, {value / median:.1f}x the median of the other shards "
        f"({median:.0f} s)"
        for shard, value, median in find_stragglers(seconds, factor)
    )
    rate = _tool_rate(ordered, rate_candidates or [])
    return InstanceRun(
        repeat=repeat,
        runtime_s=runtime,
        shard_spread_s=max(seconds.values()) - min(seconds.values()),
        work=work,
        tool_rate=rate[0] if rate else None,
        tool_rate_unit=rate[1] if rate else None,
        stragglers=stragglers,
    )


def _group_order(plan: Plan, keys: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    tools = {t.name: i for i, t in enumerate(plan.tools)}
    targets = {t.name: i for i, t in enumerate(plan.targets)}

    def rank(key: tuple[str, str, str]) -> tuple[int, int, int, str]:
        tool, configuration, target = key
        configurations = [c.name for c in plan.tool(tool).configurations]
        position = configurations.index(configuration) if configuration in configurations else len(configurations)
        return tools[tool], position, targets.get(target, len(targets)), target

    for tool, _, _ in keys:
        if tool not in tools:
            raise ValueError(f"a shard result names tool {tool!r}, which the plan does not have")
    return sorted(set(keys), key=rank)


def _runs(
    plan: Plan, target: Target, tool: str, shards: Sequence[ShardResult], factor: float
) -> tuple[list[InstanceRun], int, list[str], int]:
    """The usable instance runs of one group, its failed shard count, notes, and shards per run."""
    spec = plan.tool(tool)
    metric = plan.dataset.work.metric if plan.dataset.work.kind == "metric" else None
    candidates = rate_metrics(spec.parser)
    by_repeat: dict[int, list[ShardResult]] = defaultdict(list)
    for shard in shards:
        by_repeat[shard.repeat].append(shard)
    try:
        expected: int | None = plan.shards_for(target, spec)
    except ValueError:
        expected = None
    runs, notes, failed = [], [], 0
    for repeat in sorted(by_repeat):
        group = by_repeat[repeat]
        bad = sorted(
            (s.shard, s.status if s.status != SUCCEEDED else "has no start/stop time")
            for s in group
            if s.status != SUCCEEDED or s.seconds is None
        )
        failed += len(bad)
        if bad:
            listed = ", ".join(f"shard {i} {status}" for i, status in bad)
            notes.append(f"repeat {repeat} left out: {listed}")
            continue
        if expected is not None and len({s.shard for s in group}) < expected:
            notes.append(f"repeat {repeat} left out: {len(group)} of {expected} shards recorded")
            continue
        try:
            run = instance_run(group, metric, candidates, factor)
        except _Unusable as reason:
            notes.append(f"repeat {repeat} left out: {reason}")
            continue
        reported = [s.shard for s in group if any(name in s.metrics for name, _ in candidates)]
        if run.tool_rate is None and reported:
            # A partial sum would understate the instance's rate; say so rather than show it.
            notes.append(f"repeat {repeat}: not every shard reported the tool's rate; tool throughput left out")
        runs.append(run)
    shards_per_run = max((len({s.shard for s in g}) for g in by_repeat.values()), default=0)
    return runs, failed, notes, shards_per_run


def summarise(
    plan: Plan,
    targets: Mapping[str, Target] | Iterable[Target],
    results: Iterable[ShardResult],
    *,
    straggler_factor: float = STRAGGLER_FACTOR,
) -> list[TargetSummary]:
    """One :class:`TargetSummary` per tool x configuration x target in ``results``, in plan order.

    A group with no usable repeat still gets a summary (``repeats == 0``, every figure NaN, the
    reasons in ``notes``) so a failure is reported, not dropped.
    """
    by_name = dict(targets) if isinstance(targets, Mapping) else {t.name: t for t in targets}
    groups: dict[tuple[str, str, str], list[ShardResult]] = defaultdict(list)
    for shard in results:
        groups[(shard.tool, shard.configuration, shard.target)].append(shard)
    summaries = []
    for key in _group_order(plan, groups):
        tool, configuration, target_name = key
        if target_name not in by_name:
            raise ValueError(f"a shard result names target {target_name!r}, which was not given")
        target = by_name[target_name]
        runs, failed, notes, shards = _runs(plan, target, tool, groups[key], straggler_factor)
        summaries.append(_summary(plan, target, tool, configuration, runs, failed, notes, shards))
    return summaries


def _summary(
    plan: Plan,
    target: Target,
    tool: str,
    configuration: str,
    runs: list[InstanceRun],
    failed: int,
    notes: list[str],
    shards: int,
) -> TargetSummary:
    price, overhead = target.price_per_hour, plan.overhead_s
    units = [workload_units(plan, r.work) for r in runs]
    per_workload_s = [r.runtime_s * u / r.work for r, u in zip(runs, units, strict=True)]
    cost_wl = [workload_cost(r.runtime_s, r.work, u, price, overhead) for r, u in zip(runs, units, strict=True)]
    rated = [r for r in runs if r.tool_rate is not None]
    rate_unit = rated[0].tool_rate_unit if rated else None
    return TargetSummary(
        tool=tool,
        configuration=configuration,
        target=target,
        repeats=len(runs),
        shards=shards,
        runtime_s=spread(r.runtime_s for r in runs),
        shard_spread_s=spread(r.shard_spread_s for r in runs),
        stragglers=[s for r in runs for s in r.stragglers],
        work=statistics.median(r.work for r in runs) if runs else math.nan,
        work_unit=plan.work_unit,
        throughput_measured=spread(r.work / r.runtime_s for r in runs),
        throughput_tool=spread(float(r.tool_rate or 0) for r in rated if r.tool_rate_unit == rate_unit)
        if rated
        else None,
        tool_rate_unit=rate_unit,
        cost_per_unit=spread(c / u for c, u in zip(cost_wl, units, strict=True)),
        runtime_per_workload_h=spread(t / 3600 for t in per_workload_s),
        cost_per_workload=spread(cost_wl),
        failed_shards=failed,
        cost_per_run=spread(instance_cost(overhead + r.runtime_s, price) for r in runs),
        notes=notes,
    )


def label(summary: TargetSummary) -> str:
    """``tool/configuration@target``: how a recommendation names a summary."""
    return f"{summary.tool}/{summary.configuration}@{summary.target.name}"


def time_for_workloads_h(summary: TargetSummary, workloads: int, overhead_s: float) -> float:
    """``W x (overhead_s / 3600 + median runtime per workload)``: W workloads, one instance at a time."""
    return workloads * (overhead_s / 3600 + summary.runtime_per_workload_h.median)


def cost_for_workloads(summary: TargetSummary, workloads: int) -> float:
    """``W x median cost per workload``."""
    return workloads * summary.cost_per_workload.median


def instances_for_deadline(per_workload_h: float, workloads: int, deadline_h: float) -> int | None:
    """The fewest instances that finish ``workloads`` within ``deadline_h``, each running whole workloads one
    after another; None when one workload alone takes longer than the deadline."""
    if per_workload_h <= 0:
        return 1
    per_instance = math.floor(deadline_h / per_workload_h + 1e-9)  # float noise must not lose a whole workload
    if per_instance < 1:
        return None
    return min(workloads, math.ceil(workloads / per_instance))


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def _parallel(
    usable: Sequence[TargetSummary], workloads: int, deadline: float, overhead: float, cost: Mapping[str, float]
) -> list[str]:
    """Sentences on N instances in parallel: the instances each summary needs for the deadline, and the cheapest."""
    needed: dict[str, tuple[int, float]] = {}
    for summary in usable:
        per_workload = time_for_workloads_h(summary, 1, overhead)
        count = instances_for_deadline(per_workload, workloads, deadline)
        if count is not None:
            needed[label(summary)] = (count, math.ceil(workloads / count) * per_workload)
    if not needed:
        return [f"No target finishes even one workload within {deadline:g} h, so no number of instances helps."]
    each = ", ".join(f"{key} x{count} ({_usd(cost[key])})" for key, (count, _) in needed.items())
    best = min(needed, key=lambda k: (cost[k], needed[k][0], needed[k][1], k))
    count, hours = needed[best]
    return [
        f"Instances in parallel to finish {workloads} workload(s) within {deadline:g} h (each instance runs "
        f"whole workloads one after another; the cost does not change with the count): {each}.",
        f"Cheapest meeting {deadline:g} h with instances in parallel: {best} on {count} instance(s): "
        f"{_usd(cost[best])} for {workloads}, {hours:.1f} h.",
    ]


def recommend(plan: Plan, summaries: Sequence[TargetSummary]) -> Recommendation:
    """The cheapest summary meeting the plan's deadline and the fastest within its budget (module docstring)."""
    settings, overhead = plan.recommend, plan.overhead_s
    w = settings.workloads
    usable = [s for s in summaries if s.repeats > 0]
    time_h = {label(s): time_for_workloads_h(s, w, overhead) for s in usable}
    cost = {label(s): cost_for_workloads(s, w) for s in usable}
    unit = plan.work_unit
    size = f"{plan.extrapolate.workload_units:.6g} {unit} each" if plan.extrapolate else f"as benchmarked, in {unit}"
    explanation = [
        f"{w} workload(s) of {plan.workload_name} ({size}); each workload is one instance run "
        f"({overhead:.0f} s of boot and image pull, then the tool), run one after another on one instance; "
        "medians over repeats, per-second billing with the 60 s minimum."
    ]
    left_out = [f"{label(s)} ({s.failed_shards} failed shard(s))" for s in summaries if s.repeats == 0]
    if left_out:
        explanation.append(f"Left out, no complete run: {', '.join(left_out)}.")
    if not usable:
        explanation.append("Nothing to recommend: no tool, configuration and target has a complete run.")
        return Recommendation(w, settings.deadline_h, settings.budget_usd, None, None, explanation)

    def describe(key: str) -> str:
        return f"{key}: {_usd(cost[key])} for {w} ({_usd(cost[key] / w)} each), {time_h[key]:.1f} h"

    by_cost = sorted(time_h, key=lambda k: (cost[k], time_h[k], k))
    by_time = sorted(time_h, key=lambda k: (time_h[k], cost[k], k))
    deadline, budget = settings.deadline_h, settings.budget_usd
    in_time = [k for k in by_cost if deadline is None or time_h[k] <= deadline]
    cheapest = in_time[0] if in_time else None
    if cheapest is not None:
        within = f"finishing within {deadline:g} h" if deadline is not None else "with no deadline"
        explanation.append(f"Cheapest {within}: {describe(cheapest)}.")
        if len(in_time) > 1:
            runner_up = in_time[1]
            extra = cost[runner_up] / cost[cheapest] - 1 if cost[cheapest] else 0.0
            explanation.append(f"Next cheapest: {describe(runner_up)} ({extra:+.0%} cost).")
    else:
        explanation.append(
            f"Nothing finishes {w} workload(s) within {deadline:g} h on one instance; the fastest, "
            f"{describe(by_time[0])}."
        )
    if deadline is not None:
        explanation += _parallel(usable, w, deadline, overhead, cost)
    affordable = [k for k in by_time if budget is None or cost[k] <= budget]
    fastest = affordable[0] if affordable else None
    if fastest is not None:
        within = f"within the {_usd(budget)} budget" if budget is not None else "with no budget"
        explanation.append(f"Fastest {within}: {describe(fastest)}.")
        if w > 1:
            # The sentence above is one instance at a time (the model); after the parallel sentences its hours
            # read as the best on offer, while the same money on W instances finishes in one workload's time.
            one = time_for_workloads_h(next(s for s in usable if label(s) == fastest), 1, overhead)
            explanation.append(
                f"The same {fastest} on {w} instances in parallel, one workload each, costs the same and "
                f"finishes in {one:.1f} h."
            )
    else:
        explanation.append(
            f"Nothing runs {w} workload(s) within {_usd(budget or 0)}; the cheapest, {describe(by_cost[0])}."
        )
    return Recommendation(w, deadline, budget, cheapest, fastest, explanation)
