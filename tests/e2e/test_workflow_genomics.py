"""The seed workflow end to end: the genomics pipeline as a state machine, a failure, a fix, a redrive.

The failure is injected honestly, as a broken environment would cause it: before the run, sample 1's
output path ``calls.vcf.gz`` is occupied by a directory, so that sample's ``call`` stage cannot
publish its VCF and exits 1 (twice: the Task's Retry runs it again). The execution FAILS. The fix is
to remove the directory; RedriveExecution then re-runs only what did not succeed, which the test
checks from the Batch API: every job the execution submitted carries the tag
``genobatch:execution=<execution ARN>``, and no (sample, stage) that SUCCEEDED before the redrive
was submitted again. The outputs of every sample are complete at the end.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections import Counter

import pytest
from harness import execution_jobs, launch, run_cli
from test_stepfunctions import sfn_client, wait_execution

from genobatch.examples.workflows import genomics

pytestmark = pytest.mark.slow
SAMPLES = 3
OUTPUTS = ("sample.bam", "sample.bam.bai", "calls.vcf.gz", "calls.vcf.gz.tbi", "stats.txt", "evaluation.json")


def full_history(sfn, arn: str) -> list[dict]:
    return [e for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn) for e in page["events"]]


def work_item(job: dict) -> tuple[str, str]:
    """(sample, stage) of a job, from the tags the state machine puts on it."""
    return job["tags"].get("genobatch:sample", "-"), job["tags"]["genobatch:stage"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = launch(tmp_path_factory)
    yield server
    server.stop()


def test_failed_sample_is_redriven_alone_and_outputs_complete(server, tmp_path):
    batch, sfn = server.client(), sfn_client(server)
    genomics.register_job_definitions(batch, sys.executable)
    machine = genomics.ensure_state_machine(sfn)
    run_dir = tmp_path / "run"
    blocker = run_dir / "sample1" / "calls.vcf.gz"
    blocker.mkdir(parents=True)  # the injected fault: sample1's call cannot publish its VCF
    document = genomics.execution_input(str(run_dir), "default", SAMPLES, seed=3, coverage=8, genome_size=20_000)
    arn = sfn.start_execution(stateMachineArn=machine, name="redrive-e2e", input=json.dumps(document))["executionArn"]

    failed = wait_execution(sfn, arn, timeout=300)
    assert failed["status"] == "FAILED", failed
    assert failed["error"] == "States.TaskFailed"
    assert failed["redriveStatus"] == "REDRIVABLE"
    history = [
        e for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn) for e in page["events"]
    ]
    types = Counter(e["type"] for e in history)
    assert types["ExecutionFailed"] == 1 and types["MapIterationFailed"] >= 1, types
    before = execution_jobs(batch, arn)
    calls_of_sample1 = [j for j in before if work_item(j) == ("sample1", "call")]
    assert [j["status"] for j in calls_of_sample1] == ["FAILED", "FAILED"]  # the first try and its Retry
    assert not (run_dir / "sample1" / "evaluation.json").exists()
    succeeded_before = Counter(work_item(j) for j in before if j["status"] == "SUCCEEDED")
    assert all(count == 1 for count in succeeded_before.values()), succeeded_before

    status = run_cli(server, "workflow", "status", arn).stdout
    assert "TaskFailed" in status and "FAILED" in status and "genobatch workflow redrive" in status, status

    shutil.rmtree(blocker)  # the fix
    sfn.redrive_execution(executionArn=arn)
    done = wait_execution(sfn, arn, timeout=300)
    assert done["status"] == "SUCCEEDED", done
    assert done["redriveCount"] == 1 and "redriveDate" in done
    history = [
        e for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn) for e in page["events"]
    ]
    assert [e["type"] for e in history].count("ExecutionRedriven") == 1

    after = execution_jobs(batch, arn)
    new = [j for j in after if j["jobId"] not in {b["jobId"] for b in before}]
    # Only what had not succeeded ran again: nothing that SUCCEEDED before was submitted twice...
    assert not {work_item(j) for j in new} & set(succeeded_before), sorted(map(work_item, new))
    # ...sample1's call and evaluate were among the re-run work, and every (sample, stage) succeeded once.
    assert {("sample1", "call"), ("sample1", "evaluate")} <= {work_item(j) for j in new}
    succeeded = Counter(work_item(j) for j in after if j["status"] == "SUCCEEDED")
    stages = ("simulate", "align", "sort", "call", "evaluate", "stats")
    expected = {("-", "reference"): 1} | {(f"sample{i}", s): 1 for i in range(SAMPLES) for s in stages}
    assert succeeded == expected
    for index in range(SAMPLES):
        for name in OUTPUTS:
            assert (run_dir / f"sample{index}" / name).is_file(), (index, name)
        evaluation = json.loads((run_dir / f"sample{index}" / "evaluation.json").read_text())
        assert evaluation["recall"] > 0.5, evaluation

    # The execution's cost is one command: its jobs are the run <state machine>:<execution name>.
    run = f"{genomics.STATE_MACHINE}:redrive-e2e"
    summary = server.native("/runs", run=run)
    assert summary["progress"]["total"] == len(after) and summary["cost"]["attributedUsd"] > 0, summary["progress"]
    assert set(summary["cost"]["bySample"]) >= {f"sample{i}" for i in range(SAMPLES)}, summary["cost"]["bySample"]
    cost = run_cli(server, "cost", "--run", run).stdout
    assert "attributed" in cost.lower(), cost


def test_workflow_cli_runs_the_example_in_one_command(server):
    started = time.monotonic()
    result = run_cli(server, "workflow", "run", "--samples", "2", "--genome-size", "20000", "--coverage", "5")
    assert "SUCCEEDED" in result.stdout, result.stdout
    arn = next(word for word in result.stdout.split() if word.startswith("arn:aws:states:")).rstrip(":")
    run = ":".join(arn.split(":")[-2:])  # <state machine>:<execution name>
    assert run.startswith(f"{genomics.STATE_MACHINE}:genomics-")
    assert f"run {run}" in result.stdout and f"genobatch cost --run {run}" in result.stdout
    assert time.monotonic() - started < 300
    # The console lists the execution once, as an execution (its jobs carry both tags).
    runs = server.console_session().get(server.endpoint + "/console/runs").text
    assert runs.count(f">{arn}</a></th><td>workflow execution</td>") == 1, runs
    assert f">{run}</a></th>" not in runs, runs
