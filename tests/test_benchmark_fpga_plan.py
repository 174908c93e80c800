"""FPGAs in a benchmark plan: tool resources, target FPGAs (slice, plan or catalog), per-fpga sharding, slots.

AWS Batch has no FPGA resource type, so the plan's FPGAs are validated here and handed out by the
runner (``GENOBATCH_FPGAS``); the end-to-end run is ``tests/e2e/test_benchmark_fpga.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from genobatch.benchmark.plan import PlanError, parse_plan, resolve_target
from genobatch.benchmark.runner import InstanceRun, fpga_exports, fpga_slots, instance_runs, write_shard_scripts
from genobatch.cost.catalog import load_catalog

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it


@pytest.fixture
def plan_dir(tmp_path: Path) -> Path:
    for i in range(4):
        (tmp_path / f"sample{i}.fastq").write_text(f"@r{i}\n{'A' * (10 + i)}\n+\n{'I' * (10 + i)}\n")
    return tmp_path


def _document() -> dict[str, Any]:
    return {
        "name": "dragen",
        "dataset": {"files": ["*.fastq"], "work": "bases"},
        "tools": [
            {
                "name": "dragen",
                "command": "dragen --fpgas {fpgas} -t {threads} --output-directory {output_dir} {inputs}",
                "resources": {"vcpus": 1, "memory": 1024, "fpgas": 1},
            }
        ],
        "targets": [
            {"name": "f1", "local": {"vcpus": 2, "fpgas": 2}, "instance_type": "f1.4xlarge"},
            {"name": "f2", "compute_environment": "f2-ce", "instance_type": "f2.6xlarge"},
        ],
        "sharding": "per-fpga",
        "repeats": 1,
    }


def test_targets_take_fpgas_from_the_slice_or_the_catalog_and_shard_one_per_fpga(plan_dir: Path) -> None:
    plan = parse_plan(_document(), plan_dir)
    catalog = load_catalog()
    f1 = resolve_target(plan.target("f1"), catalog)
    f2 = resolve_target(plan.target("f2"), catalog)
    assert (f1.fpgas, f2.fpgas) == (2, 1)
    assert f1.fpga_model == catalog.instance("f1.4xlarge").fpga_model != f2.fpga_model
    assert (plan.shards_for(f1, "dragen"), plan.shards_for(f2, "dragen")) == (2, 1)
    assert "--fpgas 1 -t 1" in plan.tool("dragen").render("default", ["a.fq"], "out", 0)


def test_each_shard_gets_its_own_slots_and_the_model(plan_dir: Path) -> None:
    document = _document()
    document["targets"][0]["local"] = {"vcpus": 4, "fpgas": 4}
    document["tools"][0]["resources"]["fpgas"] = 2
    plan = parse_plan(document, plan_dir)
    catalog = load_catalog()
    targets = {t.name: resolve_target(t, catalog) for t in plan.targets}
    with pytest.raises(PlanError, match="needs 2 FPGA\\(s\\) per shard, target 'f2' has 1"):
        list(instance_runs(plan, targets, plan_dir / "run"))  # f2 has one FPGA, the tool needs two per shard
    run = InstanceRun(plan.tool("dragen"), "default", targets["f1"], 0, plan_dir / "run", 2)
    assert [fpga_slots(run, 0), fpga_slots(run, 1)] == [[0, 1], [2, 3]]
    with pytest.raises(ValueError, match="has 4 FPGA"):
        fpga_slots(run, 2)
    write_shard_scripts(plan, run)
    script = (plan_dir / "run" / "shard-1.sh").read_text()
    assert "export GENOBATCH_FPGAS=2,3 GENOBATCH_FPGA_MODEL='Xilinx Virtex UltraScale+ VU9P'" in script
    assert fpga_exports(run, 1) in script


def test_a_tool_without_fpgas_gets_no_slot(plan_dir: Path) -> None:
    document = _document()
    document["tools"][0]["resources"]["fpgas"] = 0
    document["sharding"] = {"shards": 2}
    plan = parse_plan(document, plan_dir)
    target = resolve_target(plan.target("f1"), load_catalog())
    run = InstanceRun(plan.tool("dragen"), "default", target, 0, plan_dir / "run", 2)
    assert fpga_slots(run, 1) == [] and fpga_exports(run, 1) == ""


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        (("tools", 0, "resources", "fpgas"), 0, "tool 'dragen' requests no FPGA"),
        (("tools", 0, "resources", "fpgas"), -1, "greater than or equal to 0"),
        (("tools", 0, "resources", "fpgas"), 3, "needs 3 FPGA(s), target 'f1' has 2"),
        (("targets", 0, "local", "fpgas"), 0, "target 'f1' has no FPGAs"),
        (("targets", 0, "fpgas_per_instance"), 4, "the slice must have the FPGAs"),
        (("targets", 0, "local", "vcpus"), 1, "2 vCPUs, but local.vcpus is 1"),
        (("sharding",), "per-chip", "use per-gpu, per-fpga, per-vcpu"),
    ],
)
def test_invalid_fpga_plans_name_the_problem(plan_dir: Path, path: tuple, value: Any, words: str) -> None:
    document = _document()
    node: Any = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(PlanError) as caught:
        parse_plan(document, plan_dir)
    assert words in str(caught.value)
