"""Seed 004's plan (DRAGEN on F1 vs F2, with a stand-in tool) end to end through the CLI against a real server.

FPGAs as a resource: the job definition carries them as the ``genobatch:fpgas`` tag (AWS Batch has no
FPGA resource type), the runner shards per FPGA and hands each shard its own slot. The report's time
and cost ratios are recomputed here from the API's job times, the data set and the catalog's prices;
the equivalence verdict must be "identical" although the VCFs' provenance headers differ, and must
turn "different" when one record is changed.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from harness import run_cli

from genobatch.benchmark.sharding import measure_work
from genobatch.cost.catalog import load_catalog

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "bench"
UNITS = 4.94835e10  # the plan's extrapolate.units
OVERHEAD_S = 120  # the plan's overhead_s


def cost_per_workload(runtime_s: float, work: float, price: float) -> float:
    runtime_h = runtime_s * UNITS / work / 3600
    return max(60, math.ceil(OVERHEAD_S + runtime_h * 3600)) * price / 3600


def test_dragen_plan_on_fpga_slots_reports_ratios_and_equivalence(genobatch_server, batch, tmp_path):
    shutil.copy(EXAMPLES / "dragen-fpga.yaml", tmp_path / "dragen-fpga.yaml")
    subprocess.run(
        [sys.executable, "-m", "genobatch.examples.benchmark.prepare", "align", str(tmp_path / "data" / "align")],
        check=True,
        capture_output=True,
    )
    result = run_cli(genobatch_server, "bench", "run", str(tmp_path / "dragen-fpga.yaml"), "--out", str(tmp_path))
    run_dir = Path(re.search(r"results in\s+(\S+)", result.stdout).group(1))

    # FPGAs travel as a tag; resourceRequirements stays within AWS's GPU/VCPU/MEMORY.
    definition = batch.describe_job_definitions(jobDefinitionName="bench-dragen-fpga-dragen-standin")
    definition = definition["jobDefinitions"][-1]
    assert definition["tags"]["genobatch:fpgas"] == "1"
    assert {r["type"] for r in definition["containerProperties"]["resourceRequirements"]} == {"VCPU", "MEMORY"}

    # One shard per FPGA: two on the f1.4xlarge slice, one on the f2.6xlarge; each its own slot and model.
    shards = json.loads((run_dir / "shards.json").read_text())
    per_run: dict[tuple[str, int], list[dict]] = {}
    for shard in shards:
        assert shard["status"] == "SUCCEEDED", shard
        per_run.setdefault((shard["target"], shard["repeat"]), []).append(shard)
    assert {key: len(value) for key, value in per_run.items()} == {
        ("f1-4xlarge", 0): 2,
        ("f2-6xlarge", 0): 1,
        ("f1-4xlarge", 1): 2,
        ("f2-6xlarge", 1): 1,
    }
    catalog = load_catalog()
    for (target, _), run in per_run.items():
        model = catalog.instance("f1.4xlarge" if target.startswith("f1") else "f2.6xlarge").fpga_model
        slots = []
        for shard in run:
            log = genobatch_server.native(f"/jobs/{shard['job_id']}/logs")["data"]
            slot, seen = re.search(r"FPGA slot (\d+): (.+)", log).groups()
            assert seen == model
            slots.append(int(slot))
        assert sorted(slots) == list(range(len(run))), f"{target}: shards shared an FPGA slot: {slots}"

    # Time and cost ratios, recomputed from the API's job times, the data set and the catalog.
    times: dict[str, list[float]] = {}
    for (target, _), run in per_run.items():
        details = batch.describe_jobs(jobs=[s["job_id"] for s in run])["jobs"]
        elapsed = (max(d["stoppedAt"] for d in details) - min(d["startedAt"] for d in details)) / 1000
        times.setdefault(target, []).append(elapsed)
    work = measure_work(sorted((tmp_path / "data" / "align").glob("sample*/reads_1.fastq.gz")), "bases")
    f1, f2 = (statistics.median(times[t]) for t in ("f1-4xlarge", "f2-6xlarge"))
    price_f1 = catalog.price("f1.4xlarge", "us-east-1").value
    price_f2 = catalog.price("f2.6xlarge", "us-east-1").value
    cost_ratio = cost_per_workload(f2, work, price_f2) / cost_per_workload(f1, work, price_f1)
    line = re.search(r"f2-6xlarge vs f1-4xlarge: time x([\d.]+) .* cost x([\d.]+)", result.stdout)
    assert line, result.stdout
    assert float(line.group(1)) == pytest.approx(f2 / f1, abs=1e-3)
    assert float(line.group(2)) == pytest.approx(cost_ratio, abs=1e-3)
    html = (run_dir / "report" / "benchmark.html").read_text()
    assert line.group(0) in html and '<li class="ratio">dragen-standin/default: f2-6xlarge' in html
    # The stand-in's model makes an F2 chip 3x an F1 chip, and F1 has two: about 2/3 of F1's time.
    assert 0.5 < f2 / f1 < 0.95, times

    # Equivalence: the raw VCFs differ (provenance), yet both levels say identical.
    vcfs = {t: sorted((run_dir / "dragen-standin" / "default" / t / "r0").glob("shard-*/*.vcf")) for t in times}
    assert len(vcfs["f1-4xlarge"]) == len(vcfs["f2-6xlarge"]) == 4
    sample0 = {t: next(p for p in paths if p.name.startswith("sample0")) for t, paths in vcfs.items()}
    assert sample0["f1-4xlarge"].read_text() != sample0["f2-6xlarge"].read_text()
    assert "equivalence: 8 of 8 outputs have identical records on every target" in result.stdout
    assert "4 of 4 variant-call outputs hold the same calls" in result.stdout

    # TEST-ONLY PERTURBATION: one changed ALT in one F2 VCF must be reported at both levels.
    path = sample0["f2-6xlarge"]
    lines = path.read_text().splitlines(keepends=True)
    first = next(i for i, text in enumerate(lines) if not text.startswith("#"))
    fields = lines[first].split("\t")
    fields[4] = next(base for base in "ACGT" if base not in (fields[3], fields[4]))
    lines[first] = "\t".join(fields)
    path.write_text("".join(lines))
    report = run_cli(genobatch_server, "bench", "report", str(run_dir))
    assert "equivalence: 7 of 8 outputs have identical records on every target" in report.stdout
    assert "3 of 4 variant-call outputs hold the same calls" in report.stdout
