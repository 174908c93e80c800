"""Resources stored by an earlier genobatch are described with the members AWS documents.

The default compute environment and queue of an existing data directory were written before
``subnets``/``desiredvCpus`` and ``jobQueueType`` were kept; Describe* must still return them
(``subnets`` is required by botocore's output shape). Real store: SQLite, or PostgreSQL in CI.
"""

from __future__ import annotations

from pathlib import Path

from harness import fresh_database_url
from shapes import assert_matches_output_shape

from genobatch.api.compute_environments import describe_compute_environments
from genobatch.api.job_queues import describe_job_queues
from genobatch.config import Settings
from genobatch.context import Context
from genobatch.store import catalog
from genobatch.store.database import open_database


def test_resources_stored_by_an_earlier_version_get_documented_members(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, db_url=fresh_database_url())
    database = open_database(settings.database_url)
    context = Context(None, settings, 1_000)
    ce_arn = context.arn("compute-environment", "old")
    with database.begin() as conn:
        # Exactly what the first-start defaults used to store.
        catalog.put_document(
            conn,
            "compute-environment",
            {
                "computeEnvironmentName": "old",
                "computeEnvironmentArn": ce_arn,
                "type": "MANAGED",
                "state": "ENABLED",
                "status": "VALID",
                "computeResources": {"type": "EC2", "minvCpus": 0, "maxvCpus": 2, "instanceTypes": ["optimal"]},
            },
            1_000,
            new=True,
        )
        catalog.put_document(
            conn,
            "job-queue",
            {
                "jobQueueName": "old",
                "jobQueueArn": context.arn("job-queue", "old"),
                "state": "ENABLED",
                "status": "VALID",
                "priority": 1,
                "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": ce_arn}],
            },
            1_000,
            new=True,
        )
    with database.connect() as conn:
        context = Context(conn, settings, 2_000)
        environments = describe_compute_environments(context, {})
        queues = describe_job_queues(context, {})
    assert_matches_output_shape("DescribeComputeEnvironments", environments)
    assert_matches_output_shape("DescribeJobQueues", queues)
    (environment,) = environments["computeEnvironments"]
    assert environment["computeResources"]["subnets"] == []
    assert environment["computeResources"]["desiredvCpus"] == 0
    assert queues["jobQueues"][0]["jobQueueType"] == "ECS"
    database.dispose()
