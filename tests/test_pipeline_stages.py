"""The example genomics pipeline, stage by stage, as the batch jobs would run it: separate processes sharing a run
directory (no server). Checks that outputs are valid files of their formats, that the calls recover the simulated
truth, that a run is reproducible from its seed, and that the plan's AWS Batch requests are well-formed."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
import pysam
import pytest
from botocore.validate import ParamValidator

from genobatch.examples.pipeline import STAGES, plan
from genobatch.examples.pipeline.layout import sample_name

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it

SAMPLES = 2
SEED = 11
# Smaller than the demo's defaults (200 kb, 30x) to keep this file fast; still enough depth for >= 95 % recall.
REFERENCE_ARGS = ["--genome-size", "100000", "--seed", str(SEED)]
COVERAGE = "25"
PER_SAMPLE = ["simulate", "align", "sort", "call", "stats", "evaluate"]


def stage(run_dir: Path, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run one stage as its own process, as a job would."""
    command = [sys.executable, "-m", "genobatch.examples.pipeline", name, "--run-dir", str(run_dir), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def run_pipeline(run_dir: Path, samples: int, only_sample: int | None = None) -> None:
    """The reference job, then each sample's chain (the order the DAG allows)."""
    done = stage(run_dir, "reference", "--samples", str(samples), *REFERENCE_ARGS)
    assert done.returncode == 0, done.stderr
    for index in range(samples) if only_sample is None else [only_sample]:
        for name in PER_SAMPLE:
            extra = ["--coverage", COVERAGE] if name == "simulate" else []
            done = stage(run_dir, name, "--sample", str(index), *extra)
            assert done.returncode == 0, f"{name} {index}: {done.stderr}"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("pipeline") / "run"
    run_pipeline(run_dir, SAMPLES)
    return run_dir


@pytest.fixture(scope="module")
def rerun(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run, same seed, another directory - only the second sample, which must not depend on the first."""
    run_dir = tmp_path_factory.mktemp("pipeline-again") / "run"
    run_pipeline(run_dir, SAMPLES, only_sample=1)
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize("index", range(SAMPLES))
def test_alignments_are_a_sorted_indexed_bam_with_the_sample_read_group(run: Path, index: int) -> None:
    bam_path = run / sample_name(index) / "sample.bam"
    assert Path(f"{bam_path}.bai").exists()
    with pysam.AlignmentFile(str(bam_path)) as bam:
        assert bam.check_index()
        header = bam.header.to_dict()
        assert header["HD"]["SO"] == "coordinate"
        assert [group["SM"] for group in header["RG"]] == [sample_name(index)]
        positions = [(read.reference_id, read.reference_start) for read in bam.fetch(until_eof=True)]
        assert positions == sorted(positions)
        assert bam.mapped > 0.99 * len(positions)
        assert bam.count("chr1", 10_000, 20_000) > 0  # the index answers region queries


@pytest.mark.slow
@pytest.mark.parametrize("index", range(SAMPLES))
def test_calls_are_an_indexed_vcf_of_the_sample(run: Path, index: int) -> None:
    calls = run / sample_name(index) / "calls.vcf.gz"
    assert Path(f"{calls}.tbi").exists()
    with pysam.VariantFile(str(calls)) as vcf:
        assert list(vcf.header.samples) == [sample_name(index)]
        records = list(vcf.fetch("chr1"))
        assert records and all(len(record.alts) == 1 for record in records)  # normalised: split multi-allelics


@pytest.mark.slow
@pytest.mark.parametrize("index", range(SAMPLES))
def test_stats_report_and_summary(run: Path, index: int) -> None:
    sample_dir = run / sample_name(index)
    assert "SN\treads mapped:" in (sample_dir / "stats.txt").read_text()
    summary = json.loads((sample_dir / "stats.json").read_text())
    assert summary["average_coverage"] == pytest.approx(float(COVERAGE), rel=0.1)
    assert summary["mapped_fraction"] > 0.99
    assert 0.0005 < summary["error_rate"] < 0.01  # the simulated instrument's, as samtools measures it


@pytest.mark.slow
@pytest.mark.parametrize("index", range(SAMPLES))
def test_calls_recover_the_truth(run: Path, index: int) -> None:
    report = json.loads((run / sample_name(index) / "evaluation.json").read_text())
    assert report["truth"] > 30  # about one variant per 1.5 kb of 100 kb
    assert report["precision"] >= 0.95, report
    assert report["recall"] >= 0.95, report


@pytest.mark.slow
def test_same_seed_gives_the_same_reads_alignments_and_calls(run: Path, rerun: Path) -> None:
    first, second = run / "sample1", rerun / "sample1"
    for name in ("reads_1.fastq.gz", "reads_2.fastq.gz"):
        assert gzip.decompress((first / name).read_bytes()) == gzip.decompress((second / name).read_bytes())

    def alignments(path: Path) -> list[str]:
        with pysam.AlignmentFile(str(path)) as bam:
            return [str(bam.header), *(read.to_string() for read in bam.fetch(until_eof=True))]

    def calls(path: Path) -> list[str]:
        with pysam.VariantFile(str(path)) as vcf:
            return [str(record) for record in vcf]

    assert alignments(first / "sample.bam") == alignments(second / "sample.bam")
    assert calls(first / "calls.vcf.gz") == calls(second / "calls.vcf.gz")
    # Paths are relative to the run directory, so even the files' bytes do not depend on where the run is.
    assert (first / "sample.bam").read_bytes() == (second / "sample.bam").read_bytes()
    assert (first / "calls.vcf.gz").read_bytes() == (second / "calls.vcf.gz").read_bytes()


@pytest.mark.slow
def test_sample_comes_from_the_array_index(run: Path) -> None:
    report = run / "sample1" / "evaluation.json"
    expected = report.read_text()
    report.unlink()
    done = stage(run, "evaluate", env={**os.environ, "AWS_BATCH_JOB_ARRAY_INDEX": "1"})
    assert done.returncode == 0, done.stderr
    assert "evaluate sample1" in done.stdout
    assert report.read_text() == expected


@pytest.mark.slow
def test_a_sample_outside_the_run_fails_with_a_reason(run: Path) -> None:
    done = stage(run, "align", "--sample", str(SAMPLES))
    assert done.returncode == 1
    assert f"outside this run's {SAMPLES} samples" in done.stderr


def test_a_stage_before_the_reference_fails_with_a_reason(tmp_path: Path) -> None:
    done = stage(tmp_path / "empty", "simulate", "--sample", "0")
    assert done.returncode == 1
    assert "run the reference stage" in done.stderr


class RecordingBatch:
    """Enough of a boto3 Batch client for ``plan``: validates each request against botocore's model and records it."""

    def __init__(self) -> None:
        self.model = botocore.session.get_session().get_service_model("batch")
        self.submitted: list[dict[str, Any]] = []

    def _validate(self, operation: str, request: dict[str, Any]) -> None:
        report = ParamValidator().validate(request, self.model.operation_model(operation).input_shape)
        assert not report.has_errors(), report.generate_report()

    def register_job_definition(self, **request: Any) -> dict[str, str]:
        self._validate("RegisterJobDefinition", request)
        name = request["jobDefinitionName"]
        return {"jobDefinitionArn": f"arn:aws:batch:us-east-1:000000000000:job-definition/{name}:1"}

    def submit_job(self, **request: Any) -> dict[str, str]:
        self._validate("SubmitJob", request)
        self.submitted.append(request)
        return {"jobId": f"job-{len(self.submitted)}", "jobName": request["jobName"]}


def test_job_definitions_run_each_stage_with_this_python() -> None:
    client = RecordingBatch()
    arns = plan.register_job_definitions(client, sys.executable)
    assert list(arns) == list(STAGES)
    for request in plan.job_definitions(sys.executable):
        command = request["containerProperties"]["command"]
        assert command[:3] == [sys.executable, "-m", "genobatch.examples.pipeline"]
        assert command[command.index("--run-dir") + 1] == "Ref::run_dir"
        kinds = {r["type"] for r in request["containerProperties"]["resourceRequirements"]}
        assert kinds == {"VCPU", "MEMORY"}


def test_submit_run_fans_out_per_sample_arrays_with_n_to_n() -> None:
    client = RecordingBatch()
    ids = plan.submit_run(client, "default", "run 7", "relative/dir", 4, 30, 5, {"owner": "me"})
    by_stage = {request["tags"]["genobatch:stage"]: request for request in client.submitted}
    assert list(ids) == list(STAGES) and set(by_stage) == set(STAGES)
    assert "arrayProperties" not in by_stage["reference"] and "dependsOn" not in by_stage["reference"]
    assert by_stage["simulate"]["dependsOn"] == [{"jobId": ids["reference"]}]
    for name, upstream in plan.DAG.items():
        if name not in ("reference", "simulate"):
            assert by_stage[name]["arrayProperties"] == {"size": 4}
            assert by_stage[name]["dependsOn"] == [{"jobId": ids[upstream[0]], "type": "N_TO_N"}]
    for request in client.submitted:
        assert request["tags"]["genobatch:run"] == "run 7" and request["tags"]["owner"] == "me"
        assert request["jobName"].startswith("run-7-")
        assert request["parameters"]["run_dir"] == os.path.abspath("relative/dir")
        assert request["parameters"]["samples"] == "4" and request["parameters"]["seed"] == "5"


def test_a_one_sample_run_uses_plain_jobs() -> None:
    client = RecordingBatch()
    plan.submit_run(client, "default", "solo", "/tmp/solo", 1, 30, 1, {})
    assert all("arrayProperties" not in request for request in client.submitted)
    assert all(dep.get("type") is None for request in client.submitted for dep in request.get("dependsOn", []))
