"""Aggregation: instance run time, stragglers, throughput, cost, repeats and the recommendation.

Every expected figure is worked by hand in the test. Prices: g5.12xlarge $5.672/h on-demand and
$2.836/h spot (the catalog's estimate, 0.5 x on-demand) in us-east-1; g5.48xlarge $16.288/h (the
seed's figure for us-west-2 is the same). Billing: max(60, ceil(seconds)) x $/h / 3600.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from genobatch.benchmark.aggregate import (
    STRAGGLER_FACTOR,
    cost_for_workloads,
    find_stragglers,
    instances_for_deadline,
    label,
    recommend,
    spread,
    summarise,
    time_for_workloads_h,
)
from genobatch.benchmark.plan import Plan, parse_plan, resolve_target
from genobatch.benchmark.results import ShardResult, Spread, Target, TargetSummary
from genobatch.cost.catalog import load_catalog

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it


def _plan(tmp_path: Path, **overrides: Any) -> Plan:
    (tmp_path / "reads.fq").write_text("@r\nACGT\n+\nIIII\n")
    document: dict[str, Any] = {
        "name": "bench",
        "dataset": {"files": ["reads.fq"], "work": "bases"},
        "tools": [
            {
                "name": "dorado",
                "command": "dorado basecaller {args} {inputs}",
                "configurations": [{"name": "hac", "args": "hac"}],
                "resources": {"vcpus": 4, "memory": 16000, "gpus": 1},
                "parser": "dorado",
            }
        ],
        "targets": [{"name": "g5", "local": {"vcpus": 48, "gpus": 4}, "instance_type": "g5.12xlarge"}],
        "sharding": "per-gpu",
        "repeats": 1,
        "overhead_s": 0,
    }
    document.update(overrides)
    return parse_plan(document, tmp_path)


def _target(name: str = "g5", price: float = 5.672, gpus: int = 4, purchase: str = "on-demand") -> Target:
    return Target(name, f"ce-{name}", "g5.12xlarge", "us-east-1", purchase, price, "test", "2024-11", 48, gpus)


def _shard(
    i: int,
    seconds: float,
    work: float = 1e9,
    *,
    repeat: int = 0,
    target: str = "g5",
    start: float = 0.0,
    status: str = "SUCCEEDED",
    metrics: dict[str, float] | None = None,
) -> ShardResult:
    return ShardResult(
        tool="dorado",
        configuration="hac",
        target=target,
        repeat=repeat,
        shard=i,
        job_id=f"job-{repeat}:{i}",
        status=status,
        start_ms=round(start * 1000),
        stop_ms=round((start + seconds) * 1000),
        work=work,
        metrics=metrics or {},
    )


def test_a_straggler_sets_the_run_time(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    rate = {"samples_per_s": 3e6}
    shards = [_shard(0, 1000, metrics=rate), _shard(1, 1000, metrics=rate), _shard(2, 1100, metrics=rate)]
    shards.append(_shard(3, 2000, metrics=rate))
    [summary] = summarise(plan, [_target()], shards)
    # Billed until the last shard ends: 2000 s. The seed's mean, 1275 s, would understate it by 36%.
    assert summary.runtime_s == Spread(2000, 2000, 2000)
    assert summary.shard_spread_s.median == 1000
    # Shard 3: 2000 s > 1.5 x median(1000, 1000, 1100) = 1500. Shard 2: 1100 < 1.5 x 1000.
    assert summary.stragglers == ["repeat 0 shard 3: 2000 s, 2.0x the median of the other shards (1000 s)"]
    # Throughput two ways: 4e9 bases / 2000 s on the wall clock; the tool's 4 x 3e6 samples/s.
    assert summary.throughput_measured.median == 2e6 and summary.work == 4e9 and summary.work_unit == "bases"
    assert summary.throughput_tool == Spread(1.2e7, 1.2e7, 1.2e7) and summary.tool_rate_unit == "samples/s"
    # 2000 s x $5.672/h = $3.151111; no extrapolation: the workload is the data set itself.
    assert summary.cost_per_run is not None and summary.cost_per_run.median == pytest.approx(2000 * 5.672 / 3600)
    assert summary.cost_per_workload.median == pytest.approx(3.1511111)
    assert summary.cost_per_unit.median == pytest.approx(3.1511111 / 4e9)
    assert summary.runtime_per_workload_h.median == pytest.approx(2000 / 3600)
    assert (summary.shards, summary.repeats, summary.failed_shards) == (4, 1, 0)


def test_stragglers_compare_with_the_other_shards() -> None:
    assert STRAGGLER_FACTOR == 1.5
    assert find_stragglers({0: 100, 1: 160}) == [(1, 160, 100)]  # 2 GPUs: 160 > 1.5 x 100
    assert find_stragglers({0: 100, 1: 140}) == []
    assert find_stragglers({0: 100}) == []


def test_spot_target_priced_at_the_spot_price_with_overhead(tmp_path: Path) -> None:
    targets = [
        {"name": "g5-od", "local": {"vcpus": 48, "gpus": 4}, "instance_type": "g5.12xlarge"},
        {"name": "g5-spot", "local": {"vcpus": 48, "gpus": 4}, "instance_type": "g5.12xlarge", "purchase": "spot"},
    ]
    plan = _plan(tmp_path, targets=targets, overhead_s=600)
    catalog = load_catalog()
    resolved = [resolve_target(t, catalog) for t in plan.targets]
    assert [t.price_per_hour for t in resolved] == [5.672, 2.836]
    shards = [_shard(i, 3000, target=t) for t in ("g5-od", "g5-spot") for i in range(4)]
    on_demand, spot = summarise(plan, resolved, shards)
    # 600 s overhead + 3000 s run = 3600 s = one hour at each target's own price.
    assert on_demand.cost_per_run is not None and spot.cost_per_run is not None
    assert on_demand.cost_per_run.median == pytest.approx(5.672)
    assert spot.cost_per_run.median == pytest.approx(2.836)
    assert spot.cost_per_workload.median == pytest.approx(2.836)
    assert spot.runtime_per_workload_h.median == pytest.approx(3000 / 3600)  # overhead is priced, not run time


def test_a_short_run_is_billed_the_60_second_minimum(tmp_path: Path) -> None:
    plan = _plan(tmp_path, sharding={"shards": 1})
    [summary] = summarise(plan, [_target(price=3.6)], [_shard(0, 12.3, work=1000)])
    # 12.3 s -> billed 60 s x $3.6/h = $0.06 (not $0.0123).
    assert summary.cost_per_run is not None and summary.cost_per_run.median == pytest.approx(0.06)
    assert summary.cost_per_unit.median == pytest.approx(0.06 / 1000)


def test_extrapolation_to_a_30x_genome_from_a_subset(tmp_path: Path) -> None:
    workload = {"name": "30x human genome", "units": 98.967e9}
    plan = _plan(tmp_path, extrapolate=workload, sharding={"shards": 2}, overhead_s=600)
    target = Target("g5-48", "ce", "g5.48xlarge", "us-west-2", "on-demand", 16.288, "seed", "2024-11", 192, 8)
    # The seed's 128-file subset: 18,330,576,791 bases, here basecalled in 3600 s on two shards.
    shards = [_shard(0, 3600, 9e9, target="g5-48"), _shard(1, 3590, 9.330576791e9, target="g5-48")]
    [summary] = summarise(plan, [target], shards)
    # runtime per genome = 3600 x 98.967 / 18.330576791 = 19436.44 s = 5.399 h
    assert summary.runtime_per_workload_h.median == pytest.approx(5.399011778)
    # cost = ceil(600 + 19436.44) = 20037 s x $16.288/h / 3600 = $90.656293; per base / 98.967e9
    assert summary.cost_per_workload.median == pytest.approx(90.656293, abs=1e-6)
    assert summary.cost_per_unit.median == pytest.approx(90.656293 / 98.967e9)
    # The measured run itself: 600 + 3600 s = 4200 s x $16.288/h = $19.002667.
    assert summary.cost_per_run is not None and summary.cost_per_run.median == pytest.approx(19.002667, abs=1e-6)


def test_median_and_range_over_three_repeats_and_a_failed_one_left_out(tmp_path: Path) -> None:
    plan = _plan(tmp_path, sharding={"shards": 2}, repeats=3)
    shards = []
    for repeat, seconds in enumerate([1000, 1200, 1100]):
        shards += [_shard(0, seconds - 50, repeat=repeat), _shard(1, seconds, repeat=repeat)]
    shards += [_shard(0, 900, repeat=3), _shard(1, 5, repeat=3, status="FAILED")]
    [summary] = summarise(plan, [_target(price=3.6)], shards)
    assert summary.repeats == 3 and summary.failed_shards == 1
    assert summary.notes == ["repeat 3 left out: shard 1 FAILED"]
    assert summary.runtime_s == Spread(1100, 1000, 1200)
    # $3.6/h = $0.001/s: 1000 s -> $1.00, 1100 s -> $1.10, 1200 s -> $1.20.
    assert summary.cost_per_run == Spread(pytest.approx(1.1), pytest.approx(1.0), pytest.approx(1.2))
    assert summary.throughput_measured == Spread(2e9 / 1100, 2e9 / 1200, 2e9 / 1000)
    assert summary.shard_spread_s == Spread(50, 50, 50)
    assert spread([]).median != spread([]).median  # NaN for no values


def test_no_complete_run_is_reported_not_dropped(tmp_path: Path) -> None:
    plan = _plan(tmp_path, sharding={"shards": 2})
    shards = [_shard(0, 100), _shard(1, 100, status="FAILED")]
    [summary] = summarise(plan, [_target()], shards)
    assert summary.repeats == 0 and summary.failed_shards == 1 and math.isnan(summary.cost_per_workload.median)
    rec = recommend(plan, [summary])
    assert rec.cheapest_within_deadline is None and rec.fastest_within_budget is None
    assert any("no complete run" in line for line in rec.explanation)


def test_missing_metric_work_is_never_zero(tmp_path: Path) -> None:
    (tmp_path / "x.pod5").write_bytes(b"pod5")
    plan = _plan(tmp_path, dataset={"files": ["x.pod5"], "work": {"metric": "reads"}}, sharding={"shards": 2})
    shards = [_shard(0, 100, metrics={"reads": 500}), _shard(1, 100, metrics={})]
    shards += [_shard(0, 100, repeat=1, metrics={"reads": 500}), _shard(1, 120, repeat=1, metrics={"reads": 700})]
    [summary] = summarise(plan, [_target()], shards)
    assert summary.repeats == 1 and summary.work == 1200 and summary.work_unit == "reads"
    assert "shard 1 reported no reads" in summary.notes[0]
    assert summary.throughput_tool is None  # no shard reported a rate


def test_a_partly_reported_tool_rate_is_left_out_not_summed(tmp_path: Path) -> None:
    plan = _plan(tmp_path, sharding={"shards": 2})
    shards = [_shard(0, 100, metrics={"samples_per_s": 5e6}), _shard(1, 100)]
    [summary] = summarise(plan, [_target()], shards)
    assert summary.throughput_tool is None and summary.tool_rate_unit is None
    assert summary.notes == ["repeat 0: not every shard reported the tool's rate; tool throughput left out"]
    assert summary.throughput_measured.median == 2e9 / 100  # the wall-clock figure is still there


def test_unknown_target_or_tool_is_an_error(tmp_path: Path) -> None:
    plan = _plan(tmp_path, sharding={"shards": 1})
    with pytest.raises(ValueError, match="target 'other'"):
        summarise(plan, [_target()], [_shard(0, 10, target="other")])
    stray = ShardResult("bwa", "x", "g5", 0, 0, "j", "SUCCEEDED", 0, 1000, 1.0)
    with pytest.raises(ValueError, match="tool 'bwa'"):
        summarise(plan, [_target()], [stray])


def _three_targets(tmp_path: Path, recommend_settings: dict[str, Any]) -> tuple[Plan, list[TargetSummary]]:
    """A slow cheap, a middle and a fast dear target; one workload = the one-unit data set."""
    targets = [
        {"name": name, "local": {"vcpus": 8, "gpus": 1}, "instance_type": "g5.xlarge"} for name in ("a", "b", "c")
    ]
    plan = _plan(tmp_path, targets=targets, sharding={"shards": 1}, overhead_s=600, recommend=recommend_settings)
    priced = [_target("a", price=1.0, gpus=1), _target("b", price=4.0, gpus=1), _target("c", price=20.0, gpus=1)]
    shards = [_shard(0, 3 * 3600, 1, target="a"), _shard(0, 1.5 * 3600, 1, target="b")]
    shards.append(_shard(0, 0.5 * 3600, 1, target="c"))
    return plan, summarise(plan, priced, shards)


def test_recommendation_with_a_deadline_and_a_budget(tmp_path: Path) -> None:
    plan, summaries = _three_targets(tmp_path, {"workloads": 10, "deadline_h": 24, "budget_usd": 100})
    a, b, c = summaries
    # Per workload: overhead 600 s + run. a: 11400 s x $1/h = $3.1667; b: 6000 s x $4/h = $6.6667;
    # c: 2400 s x $20/h = $13.3333. Ten workloads, one instance: a 31.67 h, b 16.67 h, c 6.67 h.
    assert [round(time_for_workloads_h(s, 10, 600), 2) for s in summaries] == [31.67, 16.67, 6.67]
    assert [round(cost_for_workloads(s, 10), 2) for s in summaries] == [31.67, 66.67, 133.33]
    rec = recommend(plan, summaries)
    assert (rec.workloads, rec.deadline_h, rec.budget_usd) == (10, 24, 100)
    assert rec.cheapest_within_deadline == label(b) == "dorado/hac@b"  # a is cheaper but misses 24 h
    assert rec.fastest_within_budget == "dorado/hac@b"  # c is faster but $133.33 > $100
    assert "Cheapest finishing within 24 h: dorado/hac@b: $66.67 for 10 ($6.67 each), 16.7 h." in rec.explanation
    assert "Fastest within the $100.00 budget: dorado/hac@b: $66.67 for 10 ($6.67 each), 16.7 h." in rec.explanation
    assert "Next cheapest: dorado/hac@c: $133.33 for 10 ($13.33 each), 6.7 h (+100% cost)." in rec.explanation
    assert a.cost_per_workload.median == pytest.approx(11400 / 3600)
    # In parallel: a takes 3.17 h a workload, so 7 fit in 24 h and 2 instances finish all ten in 5 x 3.17 h.
    assert (
        "Instances in parallel to finish 10 workload(s) within 24 h (each instance runs whole workloads one after "
        "another; the cost does not change with the count): dorado/hac@a x2 ($31.67), dorado/hac@b x1 ($66.67), "
        "dorado/hac@c x1 ($133.33)." in rec.explanation
    )
    assert (
        "Cheapest meeting 24 h with instances in parallel: dorado/hac@a on 2 instance(s): $31.67 for 10, 15.8 h."
        in (rec.explanation)
    )


def test_the_fastest_within_the_budget_also_says_its_time_on_instances_in_parallel(tmp_path: Path) -> None:
    """After the parallel sentences, "Fastest within the budget: ..., 16.7 h" (one instance at a time) read as the
    best time the money buys; ten instances cost the same and finish in one workload's 6000 s."""
    plan, summaries = _three_targets(tmp_path, {"workloads": 10, "deadline_h": 24, "budget_usd": 100})
    rec = recommend(plan, summaries)
    sentence = (
        "The same dorado/hac@b on 10 instances in parallel, one workload each, costs the same and finishes in 1.7 h."
    )
    assert sentence in rec.explanation
    assert (
        rec.explanation.index(sentence)
        == rec.explanation.index("Fastest within the $100.00 budget: dorado/hac@b: $66.67 for 10 ($6.67 each), 16.7 h.")
        + 1
    )


def test_recommendation_without_limits_and_when_nothing_fits(tmp_path: Path) -> None:
    plan, summaries = _three_targets(tmp_path, {"workloads": 10})
    rec = recommend(plan, summaries)
    assert rec.cheapest_within_deadline == "dorado/hac@a" and rec.fastest_within_budget == "dorado/hac@c"
    plan, summaries = _three_targets(tmp_path, {"workloads": 10, "deadline_h": 5, "budget_usd": 20})
    rec = recommend(plan, summaries)
    assert rec.cheapest_within_deadline is None and rec.fastest_within_budget is None
    assert "Nothing finishes 10 workload(s) within 5 h on one instance; the fastest, dorado/hac@c" in rec.explanation[1]
    # Ten instances of a meet 5 h where one instance of anything cannot.
    assert "Cheapest meeting 5 h with instances in parallel: dorado/hac@a on 10 instance(s): $31.67 for 10, 3.2 h." in (
        rec.explanation
    )
    assert rec.explanation[-1].startswith("Nothing runs 10 workload(s) within $20.00; the cheapest, dorado/hac@a")


def test_instances_for_a_deadline() -> None:
    assert instances_for_deadline(19 / 6, 10, 24) == 2  # 7 per instance
    assert instances_for_deadline(1.0, 10, 24) == 1
    assert instances_for_deadline(6.0, 10, 5) is None  # one workload alone is longer than the deadline
    assert instances_for_deadline(2.5, 3, 5.0) == 2  # exactly two per instance: float noise must not make it 3
