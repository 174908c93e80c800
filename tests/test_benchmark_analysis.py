"""Which files the benchmark's equivalence check compares: every shard's, paired as the sharding allows."""

from __future__ import annotations

from pathlib import Path

import pytest

from genobatch.benchmark.analysis import equivalence
from genobatch.benchmark.plan import Plan, PlanError, parse_plan
from genobatch.benchmark.results import ShardResult

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it

HEADER = """##fileformat=VCFv4.2
##fileDate={date}
##contig=<ID=chr1,length=100000>
##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1
"""


def record(position: int, depth: int = 30) -> str:
    return f"chr1\t{position}\t.\tA\tG\t60\tPASS\tDP={depth}\tGT\t0/1"


def make_plan(directory: Path, equivalence: dict | None = None) -> Plan:
    (directory / "reads_0.fq").write_text("@r\nA\n+\nI\n")
    tool = {"name": "caller", "command": "call {inputs} -o {output_dir}/calls.vcf", "outputs": ["*.vcf"]}
    document = {
        "name": "calling",
        "dataset": {"files": ["reads_*.fq"], "work": "reads"},
        "tools": [tool | ({"equivalence": equivalence} if equivalence else {})],
        "targets": [
            {"name": name, "local": {"vcpus": 1}, "instance_type": "c6i.large", "price_per_hour": 0.1}
            for name in ("f1", "f2")
        ],
        "repeats": 1,
    }
    return parse_plan(document, directory)


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return make_plan(tmp_path)


def shards_of(root: Path, target: str, shards: list[list[str]], date: str) -> list[ShardResult]:
    """One ShardResult per shard, each shard's output directory holding ``calls.vcf`` (a fixed name)."""
    results = []
    for index, records in enumerate(shards):
        directory = root / target / f"shard-{index}"
        directory.mkdir(parents=True)
        (directory / "calls.vcf").write_text(HEADER.format(date=date) + "".join(r + "\n" for r in records))
        results.append(
            ShardResult("caller", "default", target, 0, index, f"job-{target}:{index}", "SUCCEEDED", 0, 1000, 1.0,
                        output_dir=str(directory))
        )  # fmt: skip
    return results


def test_same_sharding_compares_every_shard_with_its_counterpart(plan: Plan, tmp_path: Path) -> None:
    split = [[record(100 * s + i) for i in range(1, 4)] for s in range(8)]
    changed = [list(records) for records in split]
    changed[2][1] = record(202, depth=31)  # shard 2 of f2 differs; shard 7, the last, does not
    shards = shards_of(tmp_path, "f1", split, "20240101") + shards_of(tmp_path, "f2", changed, "20250101")
    results = {r.output: r for r in equivalence(plan, shards)}
    assert sorted(results) == sorted(f"shard-{s}/calls.vcf" for s in range(8))
    assert [name for name, r in results.items() if not r.identical] == ["shard-2/calls.vcf"]
    different = results["shard-2/calls.vcf"]
    assert different.differences[0].first == [(record(202), record(202, depth=31))]
    assert not different.calls.same and different.calls.differences[0].differing_records == 1
    assert all(r.comparison.startswith("shard with the same shard (8 shards") for r in results.values())


def test_different_sharding_compares_the_union_of_every_shard(plan: Plan, tmp_path: Path) -> None:
    records = [record(position) for position in range(100, 900, 100)]
    eight = [[r] for r in records]
    four = [records[0::4], records[1::4], records[2::4], records[3::4]]  # another split, same records
    shards = shards_of(tmp_path, "f1", eight, "20240101") + shards_of(tmp_path / "same", "f2", four, "20250101")
    [result] = equivalence(plan, shards)
    assert result.output == "calls.vcf" and result.identical and result.calls.same
    assert "files per target: f1: 8, f2: 4" in result.comparison
    assert result.records == {"f1": 5 + 8, "f2": 5 + 8}
    # A record missing from the first of f2's shards - not the last - is found.
    four[0] = four[0][1:]
    shards = [s for s in shards if s.target == "f1"] + shards_of(tmp_path / "less", "f2", four, "20250101")
    [result] = equivalence(plan, shards)
    assert not result.identical and not result.calls.same
    [difference] = result.differences
    assert (difference.only_in_reference, difference.only_in_target, difference.differing_records) == (1, 0, 0)
    assert difference.first == [(records[0], "")]


def test_plan_can_count_phased_and_unphased_genotypes_as_the_same_call(tmp_path: Path) -> None:
    unphased = [record(100)]
    phased = [record(100).replace("0/1", "0|1")]
    shards = shards_of(tmp_path, "f1", [unphased], "20240101") + shards_of(tmp_path, "f2", [phased], "20250101")
    [strict] = equivalence(make_plan(tmp_path), shards)
    assert not strict.identical and not strict.calls.same and not strict.calls.phase_ignored
    [relaxed] = equivalence(make_plan(tmp_path, {"ignore_phase": True}), shards)
    assert not relaxed.identical and relaxed.calls.same and relaxed.calls.phase_ignored
    with pytest.raises(PlanError, match="ignore_phase"):
        make_plan(tmp_path, {"ignore_phase": "sometimes"})
