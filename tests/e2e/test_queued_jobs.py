"""Queued jobs as the store lists them and a restart restores them (issue 9: a million queued jobs).

ListJobs pages array children by index and a queue's top-level jobs newest first, each straight
from an index; a restart loads the live jobs in bulk (shared decoded states, one sorted insert per
queue). These tests hold the AWS semantics those paths must keep, at a size that runs in seconds.
"""

from __future__ import annotations

import pytest
from harness import launch, wait_for

pytestmark = pytest.mark.slow

HELD = "held"


def listing(batch, **scope) -> list[list[str]]:
    """Every page of a ListJobs, two jobs a page, as lists of job ids."""
    pages, token = [], None
    while True:
        page = batch.list_jobs(maxResults=2, **scope, **({"nextToken": token} if token else {}))
        pages.append([summary["jobId"] for summary in page["jobSummaryList"]])
        token = page.get("nextToken")
        if not token:
            return pages


def statuses(batch, ids: list[str]) -> dict[str, tuple[str, int | None]]:
    """Each job's (status, array index) as DescribeJobs tells it."""
    return {
        detail["jobId"]: (detail["status"], detail.get("arrayProperties", {}).get("index"))
        for detail in batch.describe_jobs(jobs=ids)["jobs"]
    }


def check_queued(batch, first: str, second: str, plain: str, dependent: str) -> None:
    """The listings of the held queue and its two arrays (first:2 cancelled, second:2 failed by it)."""
    assert listing(batch, arrayJobId=first, jobStatus="RUNNABLE") == [
        [f"{first}:0", f"{first}:1"],
        [f"{first}:3", f"{first}:4"],
    ]
    assert listing(batch, arrayJobId=first, jobStatus="FAILED") == [[f"{first}:2"]]
    assert listing(batch, arrayJobId=second, jobStatus="PENDING") == [
        [f"{second}:0", f"{second}:1"],
        [f"{second}:3", f"{second}:4"],
    ]
    assert listing(batch, arrayJobId=second, jobStatus="FAILED") == [[f"{second}:2"]]
    # A queue lists its top-level jobs only (children through arrayJobId), newest first.
    assert listing(batch, jobQueue=HELD, jobStatus="RUNNABLE") == [[plain]]
    assert listing(batch, jobQueue=HELD, jobStatus="PENDING") == [[dependent, second], [first]]
    by_name = batch.list_jobs(jobQueue=HELD, filters=[{"name": "JOB_NAME", "values": ["arr*"]}])["jobSummaryList"]
    assert [summary["jobId"] for summary in by_name] == [second, first]
    children = [f"{parent}:{index}" for parent in (first, second) for index in range(5)]
    expected = {f"{first}:{i}": ("FAILED" if i == 2 else "RUNNABLE", i) for i in range(5)}
    expected.update({f"{second}:{i}": ("FAILED" if i == 2 else "PENDING", i) for i in range(5)})
    assert statuses(batch, children) == expected


def test_queued_arrays_list_page_and_survive_kill_dash_nine(tmp_path_factory):
    server = launch(tmp_path_factory)
    try:
        batch = server.client()
        # A queue whose only compute environment is DISABLED: everything submitted stays queued.
        batch.create_compute_environment(computeEnvironmentName=HELD, type="UNMANAGED", state="DISABLED")
        batch.create_job_queue(
            jobQueueName=HELD, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": HELD}]
        )
        definition = batch.register_job_definition(
            jobDefinitionName="queued",
            type="container",
            containerProperties={
                "image": "busybox",
                "command": ["true"],
                "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
            },
        )["jobDefinitionArn"]

        def submit(name: str, **kwargs) -> str:
            return batch.submit_job(jobName=name, jobQueue=HELD, jobDefinition=definition, **kwargs)["jobId"]

        first = submit("arr-first", arrayProperties={"size": 5})
        second = submit("arr-second", arrayProperties={"size": 5}, dependsOn=[{"jobId": first, "type": "N_TO_N"}])
        plain = submit("plain")
        dependent = submit("dependent", dependsOn=[{"jobId": first}])
        batch.cancel_job(jobId=f"{first}:2", reason="not this one")  # RUNNABLE: fails at once, and so does second:2
        check_queued(batch, first, second, plain, dependent)

        server.stop(kill=True)
        server.start()
        batch = server.client()
        check_queued(batch, first, second, plain, dependent)

        # The restored queue places and runs what it holds once its compute environment is enabled.
        batch.update_compute_environment(computeEnvironment=HELD, state="ENABLED")
        for job_id in (first, second, plain, dependent):
            wait_for(batch, job_id, timeout=60)
        children = [f"{parent}:{index}" for parent in (first, second) for index in range(5)]
        ended = statuses(batch, [first, second, plain, dependent, *children])
        assert ended[plain][0] == "SUCCEEDED"
        assert ended[first][0] == ended[second][0] == ended[dependent][0] == "FAILED"  # a child failed
        for child in children:
            assert ended[child][0] == ("FAILED" if child.endswith(":2") else "SUCCEEDED"), child
    finally:
        server.stop()
