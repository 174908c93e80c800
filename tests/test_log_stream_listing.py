"""Which jobs a log-stream listing reads (DescribeLogStreams, FilterLogEvents without stream
names), on a real database: only jobs that ran, and only those of the job definitions whose
streams can match the group and the name prefix."""

from __future__ import annotations

from harness import fresh_database_url

from genobatch.api.log_streams import DEFAULT_GROUP, definitions_logging_to
from genobatch.core.job import Attempt, Job
from genobatch.core.status import JobStatus
from genobatch.store import catalog
from genobatch.store import jobs as job_rows
from genobatch.store.database import open_database

ARN = "arn:aws:batch:us-east-1:123456789012:job-definition/{}:{}"


def definition(name: str, revision: int = 1, log: dict | None = None) -> dict:
    container = {"image": "x", "command": ["true"]}
    if log is not None:
        container["logConfiguration"] = log
    return {
        "jobDefinitionName": name,
        "jobDefinitionArn": ARN.format(name, revision),
        "revision": revision,
        "status": "ACTIVE",
        "type": "container",
        "containerProperties": container,
    }


def awslogs(**options: str) -> dict:
    return {"logDriver": "awslogs", "options": {f"awslogs-{key}": value for key, value in options.items()}}


def test_a_listing_reads_the_definitions_whose_streams_can_match(tmp_path):
    database = open_database(fresh_database_url() or f"sqlite:///{tmp_path / 'store.db'}")
    with database.begin() as conn:
        for document in (
            definition("align"),
            definition("align", 2, awslogs(group="/own")),  # a later revision logs elsewhere
            definition("aligner"),
            definition("call", log=awslogs(**{"stream-prefix": "pipeline"})),
            definition("stats", log=awslogs(group="/own", **{"stream-prefix": "s"})),
            definition("quiet", log={"logDriver": "json-file"}),  # no CloudWatch stream at all
        ):
            catalog.insert_definition(conn, document)
    with database.connect() as conn:
        assert definitions_logging_to(conn, DEFAULT_GROUP, "") is None  # every job that ran
        assert sorted(definitions_logging_to(conn, DEFAULT_GROUP, "align/")) == [ARN.format("align", 1)]
        assert sorted(definitions_logging_to(conn, DEFAULT_GROUP, "align")) == [
            ARN.format("align", 1),
            ARN.format("aligner", 1),
        ]
        assert definitions_logging_to(conn, DEFAULT_GROUP, "pipeline/default/0a") == [ARN.format("call", 1)]
        assert definitions_logging_to(conn, DEFAULT_GROUP, "call/") == []  # its streams say "pipeline"
        assert definitions_logging_to(conn, DEFAULT_GROUP, "quiet") == []
        assert sorted(definitions_logging_to(conn, "/own", "")) == [ARN.format("align", 2), ARN.format("stats", 1)]
        assert definitions_logging_to(conn, "/own", "s/") == [ARN.format("stats", 1)]
        assert definitions_logging_to(conn, "/nobody", "") == []


def test_attempted_rows_of_given_definitions(tmp_path):
    database = open_database(fresh_database_url() or f"sqlite:///{tmp_path / 'store.db'}")
    rows = []
    for seq, (job_id, arn, ran) in enumerate(
        [("a1", "def-a", True), ("a2", "def-a", False), ("b1", "def-b", True), ("c1", "def-c", True)], start=1
    ):
        job = Job(job_id, job_id, "q", seq, 100, status=JobStatus.SUCCEEDED if ran else JobStatus.RUNNABLE)
        if ran:
            job.attempts = [Attempt(1, "ce", placed_at=1, started_at=2, stopped_at=3, exit_code=0)]
        rows.append((job, arn, None, {"container": {"command": ["true"]}}))
    with database.begin() as conn:
        job_rows.insert_jobs(conn, rows)
    with database.connect() as conn:
        assert [r["id"] for r in job_rows.attempted_rows(conn, definition_arns=["def-a", "def-c"])] == ["a1", "c1"]
        assert job_rows.attempted_rows(conn, definition_arns=[]) == []
        assert [r["id"] for r in job_rows.attempted_rows(conn)] == ["a1", "b1", "c1"]
