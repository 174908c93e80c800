"""From a saved benchmark run to its conclusions: summaries, the recommendation and equivalence."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from genobatch.benchmark.aggregate import recommend, summarise
from genobatch.benchmark.equivalence import compare, output_files
from genobatch.benchmark.plan import Plan, load_plan
from genobatch.benchmark.results import BenchmarkResults, EquivalenceResult, ShardResult
from genobatch.benchmark.runner import load


def _shard_outputs(shards: list[ShardResult], patterns: list[str]) -> dict[int, dict[str, Path]]:
    """Each shard's outputs (those matching ``patterns``, all if none), by shard index."""
    return {
        shard.shard: {
            relative: path
            for relative, path in output_files(shard.output_dir).items()
            if not patterns or any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)
        }
        for shard in sorted(shards, key=lambda s: s.shard)
    }


def compared_outputs(
    by_target: Mapping[str, Mapping[int, Mapping[str, Path]]],
) -> tuple[dict[str, dict[str, Path | list[Path]]], str | None]:
    """What :func:`.equivalence.compare` gets: every shard's outputs of every target, and how they pair up.

    A shard's output directory often holds fixed names (``calls.vcf`` in each), so outputs are never
    merged by name across shards - that kept only the last shard's file. When every target ran the
    same number of shards, the data set was split the same way (the split depends only on the files
    and the count), so shard ``i`` is compared with shard ``i``: each output is named
    ``shard-<i>/<path>``. Otherwise shard ``i`` holds other inputs on each target, and each path is
    compared as the union of every shard's file of that name (records sorted; see
    :func:`.equivalence.merged_records`). The second value describes a per-shard pairing, else None.
    """
    counts = {len(shards) for shards in by_target.values() if shards}
    if len(counts) == 1 and (count := counts.pop()) > 1:
        per_shard: dict[str, dict[str, Path | list[Path]]] = {
            target: {f"shard-{index}/{name}": path for index, files in shards.items() for name, path in files.items()}
            for target, shards in by_target.items()
        }
        return per_shard, f"shard with the same shard ({count} shards on every target: the same split)"
    merged: dict[str, dict[str, Path | list[Path]]] = {}
    for target, shards in by_target.items():
        files: dict[str, list[Path]] = {}
        for index in sorted(shards):
            for name, path in shards[index].items():
                files.setdefault(name, []).append(path)
        # One file alone is compared as it stands; several are merged (compare decides by the count).
        merged[target] = {name: paths[0] if len(paths) == 1 else paths for name, paths in files.items()}
    return merged, None


def equivalence(plan: Plan, shards: list[ShardResult]) -> list[EquivalenceResult]:
    """Each tool x configuration's outputs of its first repeat, every shard's, compared across targets."""
    results = []
    reference_target = plan.targets[0].name
    for tool in plan.tools:
        for configuration in tool.configurations:
            by_target = {
                target.name: _shard_outputs(
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
            outputs, pairing = compared_outputs(by_target)
            label = tool.name if len(tool.configurations) == 1 else f"{tool.name}/{configuration.name}"
            compared = compare(
                outputs,
                reference_target,
                label,
                list(tool.equivalence.patterns),
                ignore_phase=tool.equivalence.ignore_phase,
            )
            results.extend(replace(r, comparison=pairing) if pairing else r for r in compared)
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
