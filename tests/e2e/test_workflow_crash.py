"""``kill -9`` of the server while executions run: after a restart they continue, nothing is submitted twice.

Each job appends its id to a ledger, so the test sees every job that ran, not only what the API says.
Every job a workflow submits is tagged with its task token (``genobatch:workflow-task``), the
idempotency key: there must be exactly one job per token.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from harness import execution_jobs, launch
from sqlalchemy import Connection, create_engine, text
from test_stepfunctions import ROLE, sfn_client, wait_execution

pytestmark = pytest.mark.slow


def ledger_definition(batch, ledger: Path, seconds: float) -> str:
    script = f'echo "$AWS_BATCH_JOB_ID" >> {ledger}; sleep {seconds}'
    return batch.register_job_definition(
        jobDefinitionName="wf-ledger",
        type="container",
        containerProperties={
            "image": "busybox",
            "command": ["sh", "-c", script],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
        },
    )["jobDefinitionArn"]


def sync_task(definition: str, **extra) -> dict:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::batch:submitJob.sync",
        "Parameters": {"JobName": "w", "JobQueue": "default", "JobDefinition": definition},
        "ResultSelector": {"id.$": "$.JobId"},
        **extra,
    }


def history_types(sfn, arn: str) -> Counter:
    events = [
        e for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn) for e in page["events"]
    ]
    return Counter(e["type"] for e in events)


def wait_history(sfn, arn: str, event_type: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while history_types(sfn, arn)[event_type] < count:
        assert time.monotonic() < deadline, history_types(sfn, arn)
        time.sleep(0.05)


@contextlib.contextmanager
def store_transaction(server) -> Iterator[Connection]:
    """A transaction on the server's store, through SQLAlchemy (psycopg 3, as the server uses)."""
    url = f"sqlite:///{server.data_dir / 'genobatch.db'}"
    if server.db_url:
        url = server.db_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def test_executions_survive_kill_dash_nine_mid_map_and_mid_wait(tmp_path_factory, tmp_path):
    server = launch(tmp_path_factory)
    try:
        batch, sfn = server.client(), sfn_client(server)
        ledger = tmp_path / "ledger.txt"
        job = ledger_definition(batch, ledger, 1.5)
        definition = {
            "StartAt": "Each",
            "States": {
                "Each": {
                    "Type": "Map",
                    "ItemsPath": "$.items",
                    "ItemProcessor": {"StartAt": "Work", "States": {"Work": sync_task(job, End=True)}},
                    "ResultPath": "$.results",
                    "Next": "Pause",
                },
                "Pause": {"Type": "Wait", "Seconds": 2, "Next": "Last"},
                "Last": sync_task(job, End=True, ResultPath="$.last"),
            },
        }
        machine = sfn.create_state_machine(name="crash", definition=json.dumps(definition), roleArn=ROLE)
        arn = sfn.start_execution(
            stateMachineArn=machine["stateMachineArn"], name="c1", input=json.dumps({"items": list(range(6))})
        )["executionArn"]

        wait_history(sfn, arn, "TaskSucceeded", 2)  # mid-Map: some jobs done, some running, some queued
        server.stop(kill=True)
        time.sleep(1)
        server.start()
        sfn, batch = sfn_client(server), server.client()
        wait_history(sfn, arn, "WaitStateEntered", 1)  # the Wait's timer is stored, then the server dies
        server.stop(kill=True)
        server.start()
        sfn, batch = sfn_client(server), server.client()

        described = wait_execution(sfn, arn, timeout=90)
        assert described["status"] == "SUCCEEDED", described
        output = json.loads(described["output"])
        assert len(output["results"]) == 6 and "last" in output
        jobs = execution_jobs(batch, arn)
        tokens = Counter(job["tags"]["genobatch:workflow-task"] for job in jobs)
        assert len(tokens) == 7 and set(tokens.values()) == {1}, tokens  # one job per task, none twice
        assert {job["status"] for job in jobs} == {"SUCCEEDED"}
        ran = ledger.read_text().split()
        assert sorted(ran) == sorted(job["jobId"] for job in jobs)  # each job ran exactly once
    finally:
        server.stop()


def test_a_job_submitted_just_before_the_crash_is_adopted_not_resubmitted(tmp_path_factory, tmp_path):
    """The window between SubmitJob's commit and the runner recording the job id: the store then holds
    the task as PENDING without a job id while the job exists. That state is made here directly."""
    server = launch(tmp_path_factory)
    try:
        batch, sfn = server.client(), sfn_client(server)
        ledger = tmp_path / "ledger.txt"
        job = ledger_definition(batch, ledger, 3)
        definition = {"StartAt": "Work", "States": {"Work": sync_task(job, End=True)}}
        machine = sfn.create_state_machine(name="adopt", definition=json.dumps(definition), roleArn=ROLE)
        arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="a1")["executionArn"]
        wait_history(sfn, arn, "TaskSubmitted", 1)
        server.stop(kill=True)
        with store_transaction(server) as conn:
            changed = conn.execute(
                text("UPDATE sfn_tasks SET state = 'PENDING', job_id = NULL WHERE execution_arn = :arn"), {"arn": arn}
            ).rowcount
        assert changed == 1
        server.start()
        sfn, batch = sfn_client(server), server.client()
        described = wait_execution(sfn, arn, timeout=60)
        assert described["status"] == "SUCCEEDED", described
        jobs = execution_jobs(batch, arn)
        assert len(jobs) == 1, [j["jobId"] for j in jobs]
        assert ledger.read_text().split() == [jobs[0]["jobId"]]
    finally:
        server.stop()


def test_an_execution_that_cannot_be_rebuilt_after_a_restart_ends_failed(tmp_path_factory, tmp_path):
    """Replay fails at start-up (here: an event log record no genobatch knows, written into the store
    while the server is down): the execution ends FAILED with States.Runtime and a cause naming the
    problem, says so in its history, is not redrivable, and the Batch job it had running is terminated
    - not left RUNNING; its timers (here the task's TimeoutSeconds) are deleted with it."""
    server = launch(tmp_path_factory)
    try:
        batch, sfn = server.client(), sfn_client(server)
        job = ledger_definition(batch, tmp_path / "ledger.txt", 60)
        definition = {"StartAt": "Work", "States": {"Work": sync_task(job, End=True, TimeoutSeconds=600)}}
        machine = sfn.create_state_machine(name="broken", definition=json.dumps(definition), roleArn=ROLE)
        arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="b1")["executionArn"]
        wait_history(sfn, arn, "TaskSubmitted", 1)
        server.stop(kill=True)
        with store_transaction(server) as conn:
            conn.execute(
                text("INSERT INTO sfn_events (execution_arn, seq, record) VALUES (:arn, 100000, :record)"),
                {"arn": arn, "record": json.dumps({"event": {"type": "NoSuchEvent"}, "now": 0})},
            )
        server.start()
        sfn, batch = sfn_client(server), server.client()
        described = wait_execution(sfn, arn, timeout=30)
        assert described["status"] == "FAILED", described
        assert described["error"] == "States.Runtime"
        assert described["redriveStatus"] == "NOT_REDRIVABLE" and "rebuilt" in described["redriveStatusReason"]
        assert "could not rebuild the execution" in described["cause"] and "NoSuchEvent" in described["cause"]
        events = sfn.get_execution_history(executionArn=arn, reverseOrder=True)["events"]
        assert events[0]["type"] == "ExecutionFailed"
        assert events[0]["executionFailedEventDetails"]["error"] == "States.Runtime"
        assert events[0]["id"] == events[1]["id"] + 1
        (task_job,) = execution_jobs(batch, arn)
        deadline = time.monotonic() + 30
        while batch.describe_jobs(jobs=[task_job["jobId"]])["jobs"][0]["status"] != "FAILED":
            assert time.monotonic() < deadline, "the broken execution's job was not terminated"
            time.sleep(0.1)
        # Redriving it is refused with an error naming the problem; the server keeps serving.
        with pytest.raises(ClientError) as refused:
            sfn.redrive_execution(executionArn=arn)
        assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
        assert "could not be rebuilt" in refused.value.response["Error"]["Message"]
        assert sfn.describe_execution(executionArn=arn)["status"] == "FAILED"
        with store_transaction(server) as conn:
            timers = conn.execute(text("SELECT token FROM sfn_timers WHERE execution_arn = :arn"), {"arn": arn}).all()
        assert timers == []
    finally:
        server.stop()


def test_a_redrive_retried_with_its_client_token_after_a_restart_is_answered_alike(tmp_path_factory):
    """RedriveExecution's clientToken is durable: the retry after a kill -9 does not redrive twice."""
    server = launch(tmp_path_factory)
    try:
        batch, sfn = server.client(), sfn_client(server)
        failing = batch.register_job_definition(
            jobDefinitionName="wf-fails",
            type="container",
            containerProperties={"image": "busybox", "command": ["false"], "vcpus": 1, "memory": 64},
        )["jobDefinitionArn"]
        definition = {"StartAt": "Work", "States": {"Work": sync_task(failing, End=True)}}
        machine = sfn.create_state_machine(name="token", definition=json.dumps(definition), roleArn=ROLE)
        arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="t1")["executionArn"]
        assert wait_execution(sfn, arn)["status"] == "FAILED"
        first = sfn.redrive_execution(executionArn=arn, clientToken="retry-me")["redriveDate"]
        assert wait_execution(sfn, arn)["status"] == "FAILED"
        server.stop(kill=True)
        server.start()
        sfn = sfn_client(server)
        assert sfn.redrive_execution(executionArn=arn, clientToken="retry-me")["redriveDate"] == first
        described = sfn.describe_execution(executionArn=arn)
        assert described["status"] == "FAILED" and described["redriveCount"] == 1, described
        # A new token is a new redrive.
        sfn.redrive_execution(executionArn=arn, clientToken="another")
        assert wait_execution(sfn, arn)["redriveCount"] == 2
    finally:
        server.stop()
