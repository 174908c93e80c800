"""The shipped benchmark plans, end to end through the CLI against a real server (4 configured GPUs)."""

from __future__ import annotations

import math
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pysam
import pytest
from harness import run_cli
from openpyxl import load_workbook

from genobatch.benchmark.sharding import measure_work
from genobatch.cost.catalog import load_catalog

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "bench"


def prepare(tmp: Path, plan: str, kind: str) -> Path:
    """A copy of the example plan with its data set made beside it (nothing is written to the repo)."""
    shutil.copy(EXAMPLES / plan, tmp / plan)
    subprocess.run(
        [sys.executable, "-m", "genobatch.examples.benchmark.prepare", kind, str(tmp / "data" / kind)],
        check=True,
        capture_output=True,
    )
    return tmp / plan


def run_dir_of(stdout: str) -> Path:
    return Path(re.search(r"results in\s+(\S+)", stdout).group(1))


def html_rows(html: str) -> dict[str, dict[str, str]]:
    rows = {}
    for row in re.findall(r'<tr class="summary-row"([^>]*)>', html):
        attributes = dict(re.findall(r'data-([\w-]+)="([^"]*)"', row))
        rows[attributes["target"]] = attributes
    return rows


def instance_run_times(batch, run_id: str) -> dict[str, list[float]]:
    """Per target, each instance run's time recomputed from the API: last shard stop - first shard start."""
    times: dict[str, list[float]] = {}
    for queue in [q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"]]:
        for summary in batch.list_jobs(jobQueue=queue, jobStatus="SUCCEEDED")["jobSummaryList"]:
            tags = batch.describe_jobs(jobs=[summary["jobId"]])["jobs"][0]["tags"]
            if tags.get("genobatch:bench") != run_id:
                continue
            size = summary.get("arrayProperties", {}).get("size")
            ids = [f"{summary['jobId']}:{i}" for i in range(size)] if size else [summary["jobId"]]
            shards = batch.describe_jobs(jobs=ids)["jobs"]
            elapsed = (max(s["stoppedAt"] for s in shards) - min(s["startedAt"] for s in shards)) / 1000
            times.setdefault(tags["genobatch:bench-target"], []).append(elapsed)
    return times


def test_cpu_plan_report_agrees_with_api_and_catches_a_perturbation(genobatch_server, batch, tmp_path):
    plan = prepare(tmp_path, "align-cpu.yaml", "align")
    result = run_cli(genobatch_server, "bench", "run", str(plan), "--out", str(tmp_path / "runs"))
    run_dir = run_dir_of(result.stdout)
    report = run_dir / "report"
    for name in (
        "benchmark.html",
        "benchmark.xlsx",
        "runtime_per_workload.png",
        "throughput.png",
        "cost_per_workload.png",
    ):
        assert (report / name).stat().st_size > 0, name
    html = (report / "benchmark.html").read_text()
    rows = html_rows(html)
    assert set(rows) == {"one-vcpu", "c6i-large-spot"}
    times = instance_run_times(batch, run_dir.name)
    assert {target: len(values) for target, values in times.items()} == {"one-vcpu": 2, "c6i-large-spot": 2}
    for target, values in times.items():
        assert math.isclose(float(rows[target]["runtime-s"]), statistics.median(values), rel_tol=1e-6), target
        assert rows[target]["shards"] == ("1" if target == "one-vcpu" else "2")
    # The workbook: one sheet per pricing region, cheapest first, its figures recomputed from the API
    # (instance run times), the data set (work) and the catalog (the spot price for the spot target).
    workbook = load_workbook(report / "benchmark.xlsx")
    assert "us-east-1" in workbook.sheetnames and "Equivalence" in workbook.sheetnames
    sheet = workbook["us-east-1"].iter_rows(values_only=True)
    header = next(sheet)
    table = {row[0]: dict(zip(header, row, strict=True)) for row in sheet if row[0]}
    work = measure_work(sorted((tmp_path / "data" / "align").glob("sample*/reads_1.fastq.gz")), "reads")
    spot = load_catalog().price("c6i.large", "us-east-1", "spot").value
    assert table["c6i-large-spot"]["cost/hour [$]"] == pytest.approx(spot)
    assert table["one-vcpu"]["cost/hour [$]"] == pytest.approx(0.0425)  # the plan's explicit price
    costs = []
    for target, values in times.items():
        runtime_h = statistics.median(values) * 3.2989e8 / work / 3600
        assert table[target]["runtime [h] per 30x human genome (median)"] == pytest.approx(runtime_h, rel=1e-6)
        price = table[target]["cost/hour [$]"]
        expected_cost = max(60, math.ceil(120 + runtime_h * 3600)) * price / 3600  # 60 s minimum, 120 s overhead
        costs.append(expected_cost)
        # median over repeats of a per-repeat ceil: within a second of the formula at the median run time
        assert float(rows[target]["cost-per-workload"]) == pytest.approx(expected_cost, rel=1e-4)
    assert list(table) == [t for _, t in sorted(zip(costs, times, strict=True))]  # sorted by cost per workload
    verdicts = re.findall(r'data-tool="minimap2" data-output="([^"]+)"\s+data-identical="(\w+)"', html)
    assert len(verdicts) == 4 and all(identical == "true" for _, identical in verdicts)
    # The console's Benchmarks page shows this run, every instance run done, and the report's table
    # read from the results the run saved: one row per target, as in the report.
    page = genobatch_server.console_session().get(genobatch_server.endpoint + "/console/benchmarks").text
    section = page[page.index(f">{run_dir.name}</h2>") :].split("</section>")[0]
    for target in ("one-vcpu", "c6i-large-spot"):
        assert f'<td>{target}</td><td class="num">2 / 2</td><td class="num">0</td>' in section, target
    report_rows = section[section.index('class="bench-report"') :].split("<tr>")[2:]
    assert sorted(row.split("<td>")[1].split("</td>")[0] for row in report_rows) == sorted(rows)

    # TEST-ONLY PERTURBATION: alter one record of one target's BAM, then recompute the report.
    shard_dir = run_dir / "minimap2" / "default" / "c6i-large-spot" / "r0" / "shard-0"
    bam = next(shard_dir.glob("*.bam"))
    altered = shard_dir / "altered.tmp.bam"
    with pysam.AlignmentFile(str(bam)) as source, pysam.AlignmentFile(str(altered), "wb", template=source) as out:
        for number, record in enumerate(source):
            if number == 10:
                record.mapping_quality = (record.mapping_quality + 1) % 60
            out.write(record)
    altered.replace(bam)
    run_cli(genobatch_server, "bench", "report", str(run_dir))
    html = (report / "benchmark.html").read_text()
    verdicts = dict(re.findall(r'data-tool="minimap2" data-output="([^"]+)"\s+data-identical="(\w+)"', html))
    assert verdicts[bam.name] == "false"
    assert sum(value == "true" for value in verdicts.values()) == 3


def test_gpu_shaped_plan_shards_per_gpu_pins_and_parses(genobatch_server, batch, tmp_path):
    plan = prepare(tmp_path, "basecall-gpu.yaml", "signal")
    result = run_cli(genobatch_server, "bench", "run", str(plan), "--out", str(tmp_path / "runs"))
    run_dir = run_dir_of(result.stdout)
    # The terminal summary bench run ends with: per target the measured run and the scaled workload, the
    # extrapolation caveat, and the recommendation with instances in parallel.
    assert re.search(
        r"dorado-standin/default@g5-xlarge: measured run [\d.]+ s; per workload [\d.]+ h, \$", result.stdout
    )
    assert "extrapolated linearly from the measured" in result.stdout
    # A workload scaled to a genome takes 100+ h on either stand-in target: no count of instances meets 24 h.
    assert "recommendation: No target finishes even one workload within 24 h, so no number of" in result.stdout
    import json

    shards = json.loads((run_dir / "shards.json").read_text())
    per_run: dict[tuple[str, int], list[dict]] = {}
    for shard in shards:
        per_run.setdefault((shard["target"], shard["repeat"]), []).append(shard)
    assert {key: len(value) for key, value in per_run.items()} == {
        ("g5-xlarge", 0): 1,
        ("g5-xlarge", 1): 1,
        ("g5-12xlarge-half", 0): 2,
        ("g5-12xlarge-half", 1): 2,
    }
    for shard in shards:
        assert shard["status"] == "SUCCEEDED"
        assert shard["metrics"]["samples_per_s"] == pytest.approx(2e6, rel=1e-3)  # parsed from dorado's line
    for (target, _repeat), run in per_run.items():
        gpus = []
        for shard in run:
            log = genobatch_server.native(f"/jobs/{shard['job_id']}/logs")["data"]
            gpus.append(re.search(r"Running on GPU (\d+)", log).group(1))
        assert len(set(gpus)) == len(gpus), f"{target}: shards shared a GPU: {gpus}"
    html = (run_dir / "report" / "benchmark.html").read_text()
    rows = html_rows(html)
    assert rows["g5-12xlarge-half"]["throughput-tool"]  # sum of the shards' own samples/s
    assert float(rows["g5-12xlarge-half"]["throughput-tool"]) == pytest.approx(4e6, rel=1e-3)
