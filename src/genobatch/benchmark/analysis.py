"""From a saved benchmark run to its conclusions: summaries, the recommendation and equivalence."""

from __future__ import annotations

import fnmatch
from datetime import datetime
from pathlib import Path

from genobatch.benchmark.aggregate import recommend, summarise
from genobatch.benchmark.equivalence import compare, output_files
from genobatch.benchmark.plan import Plan, load_plan
from genobatch.benchmark.results import BenchmarkResults, EquivalenceResult, ShardResult
from genobatch.benchmark.runner import load


def _outputs(shards: list[ShardResult], patterns: list[str]) -> dict[str, Path]:
    """The outputs of one instance run, merged over its shards (outputs are named by input, not shard)."""
    merged: dict[str, Path] = {}
    for shard in sorted(shards, key=lambda s: s.shard):
        for relative, path in output_files(shard.output_dir).items():
            if not patterns or any(fnmatch.fnmatch(relative, pattern) for pattern in patterns):
                merged[relative] = path
    return merged


def equivalence(plan: Plan, shards: list[ShardResult]) -> list[EquivalenceResult]:
    """Each tool x configuration's outputs of its first repeat, compared across targets."""
    results = []
    reference_target = plan.targets[0].name
    for tool in plan.tools:
        for configuration in tool.configurations:
            by_target = {
                target.name: _outputs(
                    [
                        s
                        for s in shards
                        if (s.tool, s.configuration, s.target, s.repeat)
                        == (tool.name, configuration.name, target.name, 0)
                    ],
                    tool.outputs,
                )
                for target in plan.targets
            }
            label = tool.name if len(tool.configurations) == 1 else f"{tool.name}/{configuration.name}"
            results.extend(compare(by_target, reference_target, label, list(tool.equivalence.patterns)))
    return results


def analyse(directory: Path) -> BenchmarkResults:
    """Recompute everything the report shows from ``run.json``, ``shards.json`` and the outputs."""
    document, targets, shards = load(directory)
    plan = load_plan(document["plan"])
    summaries = summarise(plan, targets, shards)
    return BenchmarkResults(
        plan_name=plan.name,
        run_id=document["run_id"],
        created=datetime.fromisoformat(document["created"]),
        workload_name=plan.workload_name,
        # Without an extrapolation the workload is the data set itself.
        workload_units=plan.extrapolate.workload_units
        if plan.extrapolate
        else (summaries[0].work if summaries else 0.0),
        work_unit=plan.work_unit,
        overhead_s=plan.overhead_s,
        summaries=summaries,
        recommendation=recommend(plan, summaries),
        equivalence=equivalence(plan, shards),
        shards=shards,
    )
