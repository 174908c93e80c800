"""``kill -9`` of the server mid-run, then a restart: nothing submitted is lost, nothing runs twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from harness import launch, wait_for
from test_launcher import launcher_pid

pytestmark = pytest.mark.slow


def ledger_definition(batch, ledger: Path, seconds: str) -> str:
    """A job that appends its id and attempt to a shared ledger, then sleeps."""
    script = f'echo "$AWS_BATCH_JOB_ID $AWS_BATCH_JOB_ATTEMPT" >> {ledger}; sleep {seconds}'
    return shell_definition(batch, f"ledger-{seconds.replace('.', '_')}", script)


def shell_definition(batch, name: str, script: str) -> str:
    """A 1-vCPU, 64 MiB job definition running ``sh -c script``, retried once."""
    return batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": "busybox",
            "command": ["sh", "-c", script],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
        },
        retryStrategy={"attempts": 2},
    )["jobDefinitionArn"]


def ledger_entries(ledger: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in ledger.read_text().splitlines()] if ledger.exists() else []


def test_kill_dash_nine_mid_run_loses_and_duplicates_nothing(tmp_path_factory, tmp_path):
    server = launch(tmp_path_factory)
    batch = server.client()
    ledger = tmp_path / "ledger.txt"
    long_job, short_job = ledger_definition(batch, ledger, "3"), ledger_definition(batch, ledger, "0.3")
    # Two long jobs occupy both CPUs; the rest queue behind them (RUNNABLE and PENDING).
    running = [
        batch.submit_job(jobName=f"long{i}", jobQueue="default", jobDefinition=long_job)["jobId"] for i in range(2)
    ]
    for job_id in running:
        wait_for(batch, job_id, ("RUNNING",))
    array = batch.submit_job(jobName="arr", jobQueue="default", jobDefinition=short_job, arrayProperties={"size": 4})[
        "jobId"
    ]
    dependent = batch.submit_job(
        jobName="dep", jobQueue="default", jobDefinition=short_job, dependsOn=[{"jobId": array}]
    )["jobId"]

    # Keep submitting from another thread while the server is killed: every acknowledged job
    # must survive; requests that got no answer may or may not have landed, but never twice.
    acknowledged: list[str] = []
    stop = threading.Event()

    def keep_submitting() -> None:
        client = server.client()
        while not stop.is_set():
            try:
                acknowledged.append(
                    client.submit_job(jobName="late", jobQueue="default", jobDefinition=short_job)["jobId"]
                )
            except (BotoCoreError, ClientError):
                return

    submitter = threading.Thread(target=keep_submitting)
    submitter.start()
    time.sleep(0.3)
    server.stop(kill=True)
    stop.set()
    submitter.join(timeout=30)
    time.sleep(3.5)  # the long jobs finish while no server is watching

    server.start()
    batch = server.client()
    expected = [*running, array, dependent, *acknowledged]
    for job_id in expected:
        assert wait_for(batch, job_id, timeout=120)["status"] == "SUCCEEDED", job_id
    children = [f"{array}:{i}" for i in range(4)]
    details = batch.describe_jobs(jobs=[*running, *children, dependent, *acknowledged[:90]])["jobs"]
    assert all(len(d["attempts"]) == 1 for d in details), [d["attempts"] for d in details]
    for detail in details[:2]:  # exited while the server was down: exit code recovered from the wrapper
        assert detail["attempts"][0]["container"]["exitCode"] == 0
    ran = [job_id for job_id, _attempt in ledger_entries(ledger)]
    assert sorted(ran) == sorted(set(ran)), "an attempt ran twice"
    assert set(running + children + [dependent] + acknowledged) <= set(ran)
    server.stop()


def test_vanished_attempt_is_failed_and_retried(tmp_path_factory, tmp_path):
    server = launch(tmp_path_factory)
    batch = server.client()
    ledger = tmp_path / "ledger.txt"
    job_id = batch.submit_job(
        jobName="victim", jobQueue="default", jobDefinition=ledger_definition(batch, ledger, "30")
    )["jobId"]
    wait_for(batch, job_id, ("RUNNING",))
    attempt_dir = server.data_dir / "jobs" / job_id / "1"
    wrapper_pid = attempt_dir / "wrapper.pid"
    # What records the exit: the attempt's wrapper, or the persistent launcher (--launcher).
    recorder = int(wrapper_pid.read_text()) if wrapper_pid.exists() else launcher_pid(server.data_dir)
    child = int((attempt_dir / "child.pid").read_text())
    server.stop(kill=True)
    os.kill(recorder, signal.SIGKILL)  # the host "loses" the attempt while the server is down
    os.killpg(child, signal.SIGKILL)
    server.start()
    detail = wait_for(server.client(), job_id, timeout=90)
    assert detail["status"] == "SUCCEEDED"
    assert len(detail["attempts"]) == 2
    assert detail["attempts"][0]["statusReason"].startswith("Host process vanished")
    assert [attempt for _, attempt in ledger_entries(ledger)] == ["1", "2"]
    server.stop()


@pytest.mark.parametrize("also_the_launcher", [False, True], ids=["server", "server-and-launcher"])
def test_kill_dash_nine_with_successors_placed_ahead(tmp_path_factory, tmp_path, also_the_launcher):
    """Successors placed ahead (issue 9's hand-off) are committed STARTING before anything runs
    them. After kill -9 each runs exactly once, as attempt 1: one the launcher still holds is
    adopted and starts when its slot frees; one it never spawned (the launcher died too) is not a
    failed attempt but placed again."""
    server = launch(tmp_path_factory)
    batch = server.client()
    ledger, hold = tmp_path / "ledger.txt", tmp_path / "hold"
    hold.touch()
    # Children 0 and 1 end at once (the array is short, so successors are placed ahead); the
    # others hold their slot until the test removes the hold file.
    script = (
        f'echo "$AWS_BATCH_JOB_ID $AWS_BATCH_JOB_ATTEMPT" >> {ledger}; '
        f'[ "$AWS_BATCH_JOB_ARRAY_INDEX" -lt 2 ] || while [ -e {hold} ]; do sleep 0.05; done'
    )
    definition = shell_definition(batch, "handoff", script)
    array = batch.submit_job(jobName="arr", jobQueue="default", jobDefinition=definition, arrayProperties={"size": 8})[
        "jobId"
    ]
    children = [f"{array}:{i}" for i in range(8)]
    deadline = time.monotonic() + 60
    while True:  # both CPUs held by long children (2 and 3), and successors waiting behind them
        statuses = {d["jobId"]: d["status"] for d in batch.describe_jobs(jobs=children)["jobs"]}
        held = [statuses[child] for child in children[2:4]]
        behind = [statuses[child] for child in children[4:]]
        if held == ["RUNNING", "RUNNING"] and behind.count("STARTING") >= 2:
            break
        assert time.monotonic() < deadline, statuses
        time.sleep(0.02)
    recorder = launcher_pid(server.data_dir)
    server.stop(kill=True)
    if also_the_launcher:
        os.kill(recorder, signal.SIGKILL)
    waiting = [child for child in children[4:] if not (server.data_dir / "jobs" / child / "1" / "child.pid").exists()]
    assert len(waiting) >= 2, "no successor was left waiting when the server was killed"
    hold.unlink()
    server.start()
    batch = server.client()
    details = [wait_for(batch, child, timeout=90) for child in children]
    assert all(d["status"] == "SUCCEEDED" for d in details), [(d["jobId"], d["status"]) for d in details]
    ran = ledger_entries(ledger)
    assert sorted(ran) == sorted(set(ran)), "an attempt ran twice"
    attempts = {d["jobId"]: len(d["attempts"]) for d in details}
    for child in waiting:  # never spawned before the crash: started once after it, as attempt 1
        assert attempts[child] == 1, attempts
        assert [a for job_id, a in ran if job_id == child] == ["1"]
    server.stop()
