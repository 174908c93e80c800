"""AWS Batch job semantics, end to end: the real server, real processes, driven with boto3."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError
from harness import wait_for


def define(batch, command: list[str], *, vcpus: int = 1, memory: int = 128, gpus: int = 0, **extra) -> str:
    """Register a job definition with a unique name; return its ARN."""
    requirements = [{"type": "VCPU", "value": str(vcpus)}, {"type": "MEMORY", "value": str(memory)}]
    if gpus:
        requirements.append({"type": "GPU", "value": str(gpus)})
    response = batch.register_job_definition(
        jobDefinitionName="def-" + uuid.uuid4().hex[:8],
        type="container",
        containerProperties={
            "image": "public.ecr.aws/docker/library/busybox",
            "command": command,
            "resourceRequirements": requirements,
        },
        **extra,
    )
    return response["jobDefinitionArn"]


def submit(batch, definition: str, name: str = "job", **kwargs) -> str:
    return batch.submit_job(jobName=name, jobQueue="default", jobDefinition=definition, **kwargs)["jobId"]


def logs(server, job_id: str, attempt: int | None = None) -> str:
    return server.native(f"/jobs/{job_id}/logs", attempt=attempt)["data"]


def test_job_gets_environment_parameters_and_log(genobatch_server, batch):
    definition = define(
        batch,
        ["sh", "-c", "echo sample=Ref::sample; env | sort | grep '^AWS_BATCH_'; pwd"],
        parameters={"sample": "default"},
    )
    job_id = submit(
        batch,
        definition,
        parameters={"sample": "NA12878"},
        containerOverrides={"environment": [{"name": "STAGE", "value": "align"}]},
    )
    detail = wait_for(batch, job_id)
    assert detail["status"] == "SUCCEEDED"
    assert detail["container"]["command"][2].startswith("echo sample=NA12878")
    assert {"name": "STAGE", "value": "align"} in detail["container"]["environment"]
    assert detail["attempts"][0]["container"]["exitCode"] == 0
    assert detail["startedAt"] <= detail["stoppedAt"]
    text = logs(genobatch_server, job_id)
    assert "sample=NA12878" in text
    assert f"AWS_BATCH_JOB_ID={job_id}" in text
    assert "AWS_BATCH_JOB_ATTEMPT=1" in text and "AWS_BATCH_JQ_NAME=default" in text
    assert "AWS_BATCH_CE_NAME=default" in text
    assert text.strip().endswith(f"{job_id}/1/work")  # its own working directory


def test_array_with_n_to_n_and_sequential(batch):
    definition = define(batch, ["sh", "-c", "sleep 0.2"])
    first = submit(batch, definition, "first", arrayProperties={"size": 3})
    second = submit(
        batch, definition, "second", arrayProperties={"size": 3}, dependsOn=[{"jobId": first, "type": "N_TO_N"}]
    )
    sequential = submit(batch, definition, "seq", arrayProperties={"size": 3}, dependsOn=[{"type": "SEQUENTIAL"}])
    for parent in (first, second, sequential):
        detail = wait_for(batch, parent)
        assert detail["status"] == "SUCCEEDED"
        assert detail["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3
    ids = [f"{j}:{i}" for j in (first, second, sequential) for i in range(3)]
    children = {d["jobId"]: d for d in batch.describe_jobs(jobs=ids)["jobs"]}
    assert len(children) == 9
    for i in range(3):
        assert children[f"{second}:{i}"]["startedAt"] >= children[f"{first}:{i}"]["stoppedAt"]
        assert children[f"{second}:{i}"]["arrayProperties"]["index"] == i
    for i in (1, 2):
        assert children[f"{sequential}:{i}"]["startedAt"] >= children[f"{sequential}:{i - 1}"]["stoppedAt"]


def test_dependency_failure_propagates_and_array_parent_fails(batch):
    failing = define(batch, ["sh", "-c", "exit 1"])
    fine = define(batch, ["true"])
    root = submit(batch, failing, "root")
    child = submit(batch, fine, "child", dependsOn=[{"jobId": root}])
    grandchild = submit(batch, fine, "grandchild", dependsOn=[{"jobId": child}])
    assert wait_for(batch, root)["status"] == "FAILED"
    for job_id in (child, grandchild):
        detail = wait_for(batch, job_id)
        assert detail["status"] == "FAILED" and detail["statusReason"] == "Dependent Job failed"
        assert detail["attempts"] == []
    mixed = define(batch, ["sh", "-c", 'test "$AWS_BATCH_JOB_ARRAY_INDEX" != 1'])
    parent = submit(batch, mixed, "mixed", arrayProperties={"size": 3})
    detail = wait_for(batch, parent)
    assert detail["status"] == "FAILED"
    assert detail["arrayProperties"]["statusSummary"]["FAILED"] == 1
    assert detail["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 2


def test_retry_strategy_evaluate_on_exit(batch):
    flaky = define(batch, ["sh", "-c", 'test "$AWS_BATCH_JOB_ATTEMPT" -ge 2'])
    rules = [{"onExitCode": "1", "action": "RETRY"}, {"onReason": "*", "action": "EXIT"}]
    retried = submit(batch, flaky, "retried", retryStrategy={"attempts": 3, "evaluateOnExit": rules})
    detail = wait_for(batch, retried)
    assert detail["status"] == "SUCCEEDED" and len(detail["attempts"]) == 2
    assert detail["attempts"][0]["container"]["exitCode"] == 1

    exits = define(batch, ["sh", "-c", "exit 3"])
    stopped = submit(
        batch,
        exits,
        "exit-branch",
        retryStrategy={"attempts": 3, "evaluateOnExit": [{"onExitCode": "3", "action": "EXIT"}]},
    )
    detail = wait_for(batch, stopped)
    assert detail["status"] == "FAILED" and len(detail["attempts"]) == 1

    unmatched = submit(
        batch,
        exits,
        "no-match",
        retryStrategy={"attempts": 2, "evaluateOnExit": [{"onExitCode": "9*", "action": "EXIT"}]},
    )
    detail = wait_for(batch, unmatched)
    assert detail["status"] == "FAILED" and len(detail["attempts"]) == 2  # no match means retry


def test_memory_limit_kills_the_job(batch):
    hog = define(batch, ["python3", "-c", "import time; x = bytearray(400 << 20); time.sleep(30)"], memory=64)
    job_id = submit(batch, hog, "hog")
    detail = wait_for(batch, job_id, timeout=60)
    assert detail["status"] == "FAILED"
    assert detail["container"]["reason"] == "OutOfMemoryError: Container killed due to memory usage"


def test_gpus_are_pinned_exclusively(genobatch_server, batch):
    report = define(
        batch, ["sh", "-c", 'echo "gpus=$CUDA_VISIBLE_DEVICES nv=$NVIDIA_VISIBLE_DEVICES"; sleep 1'], gpus=2, vcpus=1
    )
    job_ids = [submit(batch, report, f"gpu{i}") for i in range(4)]
    details = [wait_for(batch, job_id) for job_id in job_ids]
    assert all(d["status"] == "SUCCEEDED" for d in details)
    seen = []
    for detail in details:
        line = logs(genobatch_server, detail["jobId"]).split()
        gpus = set(line[0].removeprefix("gpus=").split(","))
        assert line[1] == "nv=" + line[0].removeprefix("gpus=")
        assert len(gpus) == 2 and gpus <= {"0", "1", "2", "3"}
        seen.append((detail["startedAt"], detail["stoppedAt"], gpus))
    for i, (start_a, stop_a, gpus_a) in enumerate(seen):
        for start_b, stop_b, gpus_b in seen[i + 1 :]:
            if start_a < stop_b and start_b < stop_a:  # ran at the same time
                assert not gpus_a & gpus_b
    too_many = submit(batch, define(batch, ["true"], gpus=5), "too-many")
    time.sleep(0.5)
    detail = batch.describe_jobs(jobs=[too_many])["jobs"][0]
    assert detail["status"] == "RUNNABLE"
    assert detail["statusReason"].startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT")
    batch.cancel_job(jobId=too_many, reason="cannot fit")
    assert wait_for(batch, too_many)["status"] == "FAILED"


def test_cancel_and_terminate_in_every_state(batch):
    sleeper = define(batch, ["sleep", "30"])
    # Two CPUs: two sleepers fill the default compute environment, so a third waits RUNNABLE.
    running = [submit(batch, sleeper, f"run{i}") for i in range(2)]
    for job_id in running:
        wait_for(batch, job_id, ("RUNNING",))
    runnable = submit(batch, sleeper, "runnable")
    pending = submit(batch, sleeper, "pending", dependsOn=[{"jobId": running[0]}])
    array = submit(batch, sleeper, "array", arrayProperties={"size": 3})
    time.sleep(0.3)
    statuses = {d["jobId"]: d["status"] for d in batch.describe_jobs(jobs=[runnable, pending, array])["jobs"]}
    assert statuses == {runnable: "RUNNABLE", pending: "PENDING", array: "PENDING"}

    batch.cancel_job(jobId=pending, reason="cancel pending")
    batch.cancel_job(jobId=runnable, reason="cancel runnable")
    batch.cancel_job(jobId=array, reason="cancel array")
    batch.cancel_job(jobId=running[0], reason="cancel running")  # left alone
    detail = wait_for(batch, runnable)
    assert detail["status"] == "FAILED" and detail["isCancelled"] and detail["statusReason"] == "cancel runnable"
    # API_CancelJob: a PENDING job is cancelled only once its dependencies complete.
    detail = batch.describe_jobs(jobs=[pending])["jobs"][0]
    assert detail["status"] == "PENDING" and detail["isCancelled"]
    parent = wait_for(batch, array)
    assert parent["status"] == "FAILED" and parent["arrayProperties"]["statusSummary"]["FAILED"] == 3
    assert batch.describe_jobs(jobs=[running[0]])["jobs"][0]["status"] == "RUNNING"

    batch.terminate_job(jobId=running[0], reason="terminate running")
    detail = wait_for(batch, running[0], timeout=40)
    assert detail["status"] == "FAILED" and detail["isTerminated"]
    assert detail["statusReason"] == "terminate running"
    detail = wait_for(batch, pending)
    assert detail["status"] == "FAILED" and detail["isCancelled"] and detail["statusReason"] == "cancel pending"
    batch.terminate_job(jobId=running[1], reason="done")
    finished = wait_for(batch, running[1], timeout=40)
    # Terminating or cancelling a finished job succeeds and changes nothing.
    batch.terminate_job(jobId=running[1], reason="again")
    batch.cancel_job(jobId=running[1], reason="again")
    after = batch.describe_jobs(jobs=[running[1]])["jobs"][0]
    assert after["statusReason"] == finished["statusReason"] == "done"
    with pytest.raises(ClientError) as error:
        batch.terminate_job(jobId=str(uuid.uuid4()), reason="nope")
    assert error.value.response["Error"]["Code"] == "ClientException"


def test_list_jobs_defaults_filters_and_paging(batch):
    queue = "list-" + uuid.uuid4().hex[:6]
    batch.create_job_queue(
        jobQueueName=queue, priority=5, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "default"}]
    )
    quick, slow = define(batch, ["true"]), define(batch, ["sleep", "20"])
    done = [batch.submit_job(jobName=f"Align-{i}", jobQueue=queue, jobDefinition=quick)["jobId"] for i in range(3)]
    for job_id in done:
        wait_for(batch, job_id)
    running = batch.submit_job(jobName="call-1", jobQueue=queue, jobDefinition=slow)["jobId"]
    wait_for(batch, running, ("RUNNING",))

    default = batch.list_jobs(jobQueue=queue)["jobSummaryList"]
    assert [s["jobId"] for s in default] == [running]  # RUNNING only by default
    succeeded = batch.list_jobs(jobQueue=queue, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert [s["jobId"] for s in succeeded] == done[::-1]  # newest first
    by_name = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["align-*"]}])
    assert sorted(s["jobId"] for s in by_name["jobSummaryList"]) == sorted(done)  # any status, case-insensitive
    cutoff = batch.describe_jobs(jobs=[done[1]])["jobs"][0]["createdAt"]
    after = batch.list_jobs(jobQueue=queue, filters=[{"name": "AFTER_CREATED_AT", "values": [str(cutoff)]}])
    assert {s["jobId"] for s in after["jobSummaryList"]} == {done[2], running}
    definition_name = slow.rsplit("/", 1)[1].split(":")[0]
    by_definition = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_DEFINITION", "values": [definition_name]}])
    assert [s["jobId"] for s in by_definition["jobSummaryList"]] == [running]

    pages, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = batch.list_jobs(jobQueue=queue, jobStatus="SUCCEEDED", maxResults=2, **kwargs)
        pages.append([s["jobId"] for s in page["jobSummaryList"]])
        token = page.get("nextToken")
        if not token:
            break
    assert pages == [done[::-1][:2], done[::-1][2:]]
    paginator = batch.get_paginator("list_jobs")
    assert (
        sum(
            len(p["jobSummaryList"])
            for p in paginator.paginate(jobQueue=queue, jobStatus="SUCCEEDED", PaginationConfig={"PageSize": 1})
        )
        == 3
    )
    with pytest.raises(ClientError):
        batch.list_jobs(jobQueue=queue, arrayJobId=running)
    batch.terminate_job(jobId=running, reason="cleanup")
    wait_for(batch, running, timeout=40)


def test_describe_jobs_limits_and_unknown_ids(batch):
    job_id = submit(batch, define(batch, ["true"]), "plain")
    wait_for(batch, job_id)
    found = batch.describe_jobs(jobs=[job_id, str(uuid.uuid4())])["jobs"]
    assert [d["jobId"] for d in found] == [job_id]  # unknown ids are simply absent
    with pytest.raises(ClientError) as error:
        batch.describe_jobs(jobs=[str(uuid.uuid4()) for _ in range(101)])
    assert "100" in error.value.response["Error"]["Message"]


def test_native_job_detail_reports_execution_and_usage(genobatch_server, batch):
    job_id = submit(
        batch,
        define(batch, ["python3", "-c", "x = bytearray(50 << 20); import time; time.sleep(1)"], memory=512),
        "usage",
    )
    wait_for(batch, job_id)
    detail = genobatch_server.native(f"/jobs/{job_id}")
    attempt = detail["attempts"][0]
    assert attempt["execution"]["runtime"] == "host"  # no container runtime configured
    assert detail["image"] == "public.ecr.aws/docker/library/busybox"
    assert attempt["usage"]["peak_rss"] >= 50 << 20
    json.dumps(detail)
