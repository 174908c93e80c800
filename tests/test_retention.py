"""Retention of finished jobs' attempt directories: the rule (pure) and the server applying it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from harness import Server, free_port, fresh_database_url, wait_for

from genobatch.retention import FinishedJob, Policy, plan

DAY_MS = 86_400_000
NOW = 100 * DAY_MS


def finished(job_id: str, days_ago: float) -> FinishedJob:
    return FinishedJob(job_id, NOW - int(days_ago * DAY_MS), (1,))


def ids(jobs) -> set[str]:
    return {job.job_id for job in jobs}


def test_logs_are_kept_for_the_configured_age() -> None:
    jobs = [finished("old", 31), finished("recent", 29), finished("today", 0)]
    decided = plan(jobs, Policy(keep_logs_s=30 * 86400, keep_logs_jobs=None, keep_work_s=None), NOW)
    assert ids(decided.remove_logs) == {"old"}
    assert decided.logs_cutoff_ms == NOW - 30 * DAY_MS
    assert decided.remove_work == ()


def test_logs_are_kept_for_the_newest_jobs() -> None:
    jobs = [finished(f"j{i}", i) for i in range(5)]  # j0 ended last
    decided = plan(jobs, Policy(keep_logs_s=None, keep_logs_jobs=2, keep_work_s=None), NOW)
    assert ids(decided.remove_logs) == {"j2", "j3", "j4"}
    # Both rules at once: whichever removes more wins.
    decided = plan(jobs, Policy(keep_logs_s=0.5 * 86400, keep_logs_jobs=3, keep_work_s=None), NOW)
    assert ids(decided.remove_logs) == {"j1", "j2", "j3", "j4"}
    assert plan(jobs, Policy(None, 0, None), NOW).remove_logs == tuple(jobs)
    assert plan(jobs, Policy(None, 5, None), NOW).remove_logs == ()


def test_jobs_ending_at_the_same_moment_as_the_last_kept_one_are_kept() -> None:
    jobs = [finished("a", 1), finished("b", 1), finished("c", 2)]
    assert ids(plan(jobs, Policy(None, 1, None), NOW).remove_logs) == {"c"}


def test_work_directories_go_first_and_only_of_jobs_whose_logs_stay() -> None:
    jobs = [finished("old", 40), finished("yesterday", 2), finished("now", 0)]
    decided = plan(jobs, Policy(keep_logs_s=30 * 86400, keep_logs_jobs=None, keep_work_s=86400), NOW)
    assert ids(decided.remove_logs) == {"old"}
    assert ids(decided.remove_work) == {"yesterday"}


def test_forever_keeps_everything() -> None:
    jobs = [finished("ancient", 10_000)]
    decided = plan(jobs, Policy(None, None, None, None), NOW)
    assert (decided.remove_logs, decided.remove_work, decided.logs_cutoff_ms) == ((), (), None)
    assert decided.remove_records == ()


def test_records_go_an_hour_after_the_end_by_default_and_only_of_jobs_whose_logs_stay() -> None:
    hour = 1 / 24
    jobs = [finished("old", 40), finished("two hours", 2 * hour), finished("half an hour", hour / 2)]
    decided = plan(jobs, Policy(keep_logs_s=30 * 86400, keep_logs_jobs=None, keep_work_s=None), NOW)
    assert ids(decided.remove_logs) == {"old"}
    assert ids(decided.remove_records) == {"two hours"}


def test_policy_says_its_rule() -> None:
    assert Policy(30 * 86400, 10_000, 86400).describe_logs() == (
        "logs of finished jobs are kept for 30 days after the job ended and for the 10000 most recently ended jobs"
    )
    assert Policy(None, None, None).describe_logs() == "logs are kept forever"


# ----------------------------------------------------------------------------------- the server applying it


def definition(batch, name: str, command: list[str]) -> str:
    return batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={"image": "x", "command": command, "vcpus": 1, "memory": 64},
    )["jobDefinitionArn"]


def wait_until(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


@pytest.mark.slow
def test_server_removes_finished_attempts_by_the_policy_and_never_a_live_one(tmp_path_factory) -> None:
    server = Server(tmp_path_factory.mktemp("retention"), free_port(), fresh_database_url())
    # Keep the logs of the newest finished job only, work directories not at all, check often.
    server.args = ["--keep-logs", "forever", "--keep-logs-jobs", "1", "--keep-work", "0", "--keep-records", "0"]
    server.args += ["--retention-interval", "0.2s"]
    server.start()
    jobs_dir = server.data_dir / "jobs"
    try:
        batch = server.client()
        live = batch.submit_job(
            jobName="live", jobQueue="default", jobDefinition=definition(batch, "live", ["sleep", "60"])
        )["jobId"]
        wait_for(batch, live, ("RUNNING",))
        say = definition(batch, "say", ["sh", "-c", "echo said $AWS_BATCH_JOB_ID"])
        first = batch.submit_job(jobName="first", jobQueue="default", jobDefinition=say)["jobId"]
        assert wait_for(batch, first)["status"] == "SUCCEEDED"
        second = batch.submit_job(jobName="second", jobQueue="default", jobDefinition=say)["jobId"]
        assert wait_for(batch, second)["status"] == "SUCCEEDED"

        wait_until(lambda: not (jobs_dir / first).exists() and not (jobs_dir / second / "1" / "work").exists())
        # The newest finished job keeps its log and nothing else (its records are in the store);
        # the running one keeps everything.
        wait_until(lambda: sorted(os.listdir(jobs_dir / second / "1")) == ["output.log"])
        assert f"said {second}" in (jobs_dir / second / "1" / "output.log").read_text()
        assert (jobs_dir / live / "1" / "work").is_dir()
        assert {"attempt.json", "child.pid"} <= set(os.listdir(jobs_dir / live / "1"))
        described = batch.describe_jobs(jobs=[second])["jobs"][0]
        assert described["attempts"][0]["container"]["exitCode"] == 0  # the store still says it
        assert batch.describe_jobs(jobs=[live])["jobs"][0]["status"] == "RUNNING"

        removed = server.native(f"/jobs/{first}/logs")
        assert removed["data"] == "" and removed["complete"] is True
        assert "removed" in removed and "by the retention policy" in removed["removed"]
        assert "for the 1 most recently ended jobs" in removed["removed"]
        assert server.native(f"/jobs/{second}/logs")["data"] == f"said {second}\n"
        assert "removed" not in server.native(f"/jobs/{second}/logs")

        env = {**os.environ, "GENOBATCH_HOME": str(server.data_dir)}
        cli = subprocess.run(
            [sys.executable, "-m", "genobatch", "--endpoint", server.endpoint, "logs", first],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert cli.returncode == 0 and cli.stdout == ""
        assert "the log of attempt 1 was removed" in cli.stderr
        batch.terminate_job(jobId=live, reason="done")
    finally:
        server.stop()
