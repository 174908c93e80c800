"""The simulator against reality: a workload genobatch really ran, simulated from that run's trace.

A real server runs an array of ``sleep`` jobs and a job that depends on the array, on a compute
environment of 2 vCPUs billed as an m6i.large. The run's trace (the runs API's JSON) gives the
simulator its run times; the plan describes the same queue, environment and workload. Predicted
makespan and cost (attributed and billed, by the same cost code) must be within 10% of measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from harness import launch, wait_for

pytestmark = pytest.mark.slow

TOLERANCE = 0.10


def _run_real_workload(batch, server, array_size: int, seconds: float) -> tuple[str, dict]:
    ce = f"sim-ce-{uuid.uuid4().hex[:6]}"
    batch.create_compute_environment(
        computeEnvironmentName=ce,
        type="MANAGED",
        computeResources={"type": "EC2", "maxvCpus": 2, "subnets": [], "instanceTypes": ["m6i.large"]},
    )
    queue = f"sim-q-{uuid.uuid4().hex[:6]}"
    batch.create_job_queue(
        jobQueueName=queue, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}]
    )
    requirements = [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "1024"}]
    for name, command in (("work", ["sleep", str(seconds)]), ("merge", ["sleep", str(seconds / 2)])):
        batch.register_job_definition(
            jobDefinitionName=name,
            type="container",
            containerProperties={"image": "busybox", "command": command, "resourceRequirements": requirements},
        )
    run = "sim-" + uuid.uuid4().hex[:6]
    array = batch.submit_job(
        jobName="work",
        jobQueue=queue,
        jobDefinition="work",
        arrayProperties={"size": array_size},
        tags={"genobatch:run": run},
    )["jobId"]
    merge = batch.submit_job(
        jobName="merge",
        jobQueue=queue,
        jobDefinition="merge",
        dependsOn=[{"jobId": array}],
        tags={"genobatch:run": run},
    )["jobId"]
    assert wait_for(batch, merge, timeout=120)["status"] == "SUCCEEDED"
    return run, server.native("/runs", run=run, trace="1")


def _plan(array_size: int, trace: str) -> dict:
    fitted = {"trace": {"path": trace, "fit": "empirical"}}
    return {
        "name": "validation",
        "seeds": 5,
        "compute_environments": [
            {"name": "ce", "instance_type": "m6i.large", "min_vcpus": 2, "max_vcpus": 2, "scaling_delay_s": 0}
        ],
        "queues": [{"name": "q", "compute_environments": ["ce"]}],
        "job_definitions": [
            {"name": "work", "resources": {"vcpus": 1, "memory": 1024}, "runtime": fitted},
            {"name": "merge", "resources": {"vcpus": 1, "memory": 1024}, "runtime": fitted},
        ],
        "workload": [
            {"name": "work", "job_definition": "work", "queue": "q", "array_size": array_size},
            {"name": "merge", "job_definition": "merge", "queue": "q", "depends_on": [{"job": "work"}]},
        ],
    }


@pytest.mark.parametrize(
    ("array_size", "seconds", "trace_file"), [(6, 2.0, "trace.json"), (10, 1.5, "report/trace.tsv")]
)
def test_predicted_makespan_and_cost_within_10_percent_of_a_real_run(
    tmp_path_factory, tmp_path: Path, array_size, seconds, trace_file
):
    """Run times from the runs API's JSON, or from the trace.tsv that `genobatch report` writes."""
    server = launch(tmp_path_factory)
    try:
        run, summary = _run_real_workload(server.client(), server, array_size, seconds)
        if trace_file.endswith(".tsv"):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "genobatch",
                    "--data-dir",
                    str(server.data_dir),
                    "--endpoint",
                    server.endpoint,
                    "report",
                    run,
                    "--out",
                    str(tmp_path / "report"),
                ],
                check=True,
                capture_output=True,
            )
    finally:
        server.stop()
    trace = summary["trace"]
    assert len(trace) == array_size + 1
    measured_makespan = (max(r["complete"] for r in trace) - min(r["submit"] for r in trace)) / 1000
    measured = summary["cost"]

    (tmp_path / "trace.json").write_text(json.dumps(summary))
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(_plan(array_size, trace_file)))
    result = subprocess.run(
        [sys.executable, "-m", "genobatch", "--data-dir", str(tmp_path / "data"), "simulate", str(plan), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    predicted = json.loads(result.stdout)["percentiles"]
    makespan_s = predicted["makespan_h"]["p50"] * 3600
    report = (
        f"array {array_size} x sleep {seconds}: makespan predicted {makespan_s:.2f} s vs measured "
        f"{measured_makespan:.2f} s; attributed ${predicted['attributed_usd']['p50']:.6f} vs "
        f"${measured['attributedUsd']:.6f}; billed ${predicted['billed_usd']['p50']:.6f} vs "
        f"${measured['billedUsd']:.6f}"
    )
    print(report)
    assert makespan_s == pytest.approx(measured_makespan, rel=TOLERANCE), report
    assert predicted["attributed_usd"]["p50"] == pytest.approx(measured["attributedUsd"], rel=TOLERANCE), report
    assert predicted["billed_usd"]["p50"] == pytest.approx(measured["billedUsd"], rel=TOLERANCE), report
