"""The engine's catalog cache: SubmitJob's queue and definition reads are cached, and never stale.

An in-process engine on the real store (SQLite, or PostgreSQL in CI's second pass) and the real
local backend, driven through the same handlers as the API: every change to a queue or a job
definition must be seen by the very next SubmitJob, also when the change shares the submit's
batch, and a change that is rolled back must leave no trace in what later submits resolve.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import fresh_database_url

from genobatch.api.errors import ApiError, ClientException, ServerException
from genobatch.api.job_definitions import deregister_job_definition, register_job_definition
from genobatch.api.job_queries import describe_jobs
from genobatch.api.job_queues import create_job_queue, delete_job_queue, update_job_queue
from genobatch.api.jobs import submit_job
from genobatch.config import Settings
from genobatch.context import Context
from genobatch.engine import Engine, now_ms
from genobatch.server import build_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    settings = Settings(data_dir=tmp_path / "data", db_url=fresh_database_url(), cpus=2, memory_mib=4096, gpus=0)
    engine = build_engine(settings)
    yield engine
    engine.stop()


def call(engine: Engine, handler, request: dict) -> dict:
    return engine.call(handler, request).result(timeout=30)


def definition(name: str, word: str) -> dict:
    return {
        "jobDefinitionName": name,
        "type": "container",
        "containerProperties": {
            "image": "busybox",
            "command": ["echo", word],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
        },
    }


def submitted(engine: Engine, reference: str, queue: str = "default") -> dict:
    """Submit a job; return its DescribeJobs detail."""
    job_id = call(engine, submit_job, {"jobName": "j", "jobQueue": queue, "jobDefinition": reference})["jobId"]
    with engine.database.connect() as conn:
        return describe_jobs(Context(conn, engine.settings, now_ms()), {"jobs": [job_id]})["jobs"][0]


def refused(engine: Engine, reference: str, queue: str = "default") -> str:
    with pytest.raises(ClientException) as error:
        call(engine, submit_job, {"jobName": "j", "jobQueue": queue, "jobDefinition": reference})
    return error.value.message


def test_next_submit_uses_the_changed_definition(engine: Engine) -> None:
    first = call(engine, register_job_definition, definition("tool", "one"))
    assert submitted(engine, "tool")["container"]["command"] == ["echo", "one"]
    hits = engine.catalog.hits
    assert submitted(engine, "tool")["jobDefinition"] == first["jobDefinitionArn"]
    assert engine.catalog.hits > hits  # the second submit was answered from the cache

    second = call(engine, register_job_definition, definition("tool", "two"))
    detail = submitted(engine, "tool")  # a bare name: the latest ACTIVE revision, now 2
    assert (detail["jobDefinition"], detail["container"]["command"]) == (second["jobDefinitionArn"], ["echo", "two"])

    call(engine, deregister_job_definition, {"jobDefinition": second["jobDefinitionArn"]})
    assert submitted(engine, "tool")["jobDefinition"] == first["jobDefinitionArn"]
    assert "INACTIVE" in refused(engine, "tool:2")
    assert "INACTIVE" in refused(engine, second["jobDefinitionArn"])
    call(engine, deregister_job_definition, {"jobDefinition": "tool"})
    assert "no ACTIVE revision" in refused(engine, "tool")


def test_next_submit_uses_the_changed_queue(engine: Engine) -> None:
    call(engine, register_job_definition, definition("tool", "one"))
    order = [{"order": 1, "computeEnvironment": "default"}]
    queue = call(engine, create_job_queue, {"jobQueueName": "q", "priority": 1, "computeEnvironmentOrder": order})
    for reference in ("q", queue["jobQueueArn"]):
        assert submitted(engine, "tool", reference)["jobQueue"] == queue["jobQueueArn"]
        assert submitted(engine, "tool", reference)["jobQueue"] == queue["jobQueueArn"]  # cached
    call(engine, update_job_queue, {"jobQueue": "q", "state": "DISABLED"})
    for reference in ("q", queue["jobQueueArn"]):
        assert "DISABLED" in refused(engine, "tool", reference)
    call(engine, update_job_queue, {"jobQueue": queue["jobQueueArn"], "state": "ENABLED"})
    assert submitted(engine, "tool", "q")["jobQueue"] == queue["jobQueueArn"]
    call(engine, update_job_queue, {"jobQueue": "q", "state": "DISABLED"})
    call(engine, delete_job_queue, {"jobQueue": "q"})
    for reference in ("q", queue["jobQueueArn"]):
        assert "does not exist" in refused(engine, "tool", reference)


def registers_then_fails(error: Exception):
    """A handler that registers revision 2 of ``tool``, submits with it (so the lookup sees the
    uncommitted revision), then fails: its writes are rolled back, the lookup must not be kept."""

    def handler(ctx: Context, _request: dict) -> dict:
        register_job_definition(ctx, definition("tool", "withdrawn"))
        assert submit_job(ctx, {"jobName": "j", "jobQueue": "default", "jobDefinition": "tool"})
        raise error

    return handler


@pytest.mark.parametrize(
    "error",
    [ClientException("refused after writing"), KeyError("a bug after writing")],
    ids=["savepoint-rolled-back", "batch-rolled-back"],
)
def test_a_rolled_back_change_is_not_seen(engine: Engine, error: Exception) -> None:
    first = call(engine, register_job_definition, definition("tool", "one"))
    assert submitted(engine, "tool")["jobDefinition"] == first["jobDefinitionArn"]  # cached
    with pytest.raises(ApiError) as raised:
        call(engine, registers_then_fails(error), {})
    assert isinstance(raised.value, ClientException if isinstance(error, ApiError) else ServerException)
    detail = submitted(engine, "tool")
    assert (detail["jobDefinition"], detail["container"]["command"]) == (first["jobDefinitionArn"], ["echo", "one"])
    assert "does not exist" in refused(engine, "tool:2")


def test_a_change_in_the_same_batch_is_seen(engine: Engine) -> None:
    """Register and submit land in one engine batch (one transaction): the submit resolves the
    revision registered just before it, uncommitted yet, and so does every later submit."""
    call(engine, register_job_definition, definition("tool", "one"))
    submitted(engine, "tool")  # cached: revision 1
    release, entered = threading.Event(), threading.Event()

    def hold(_ctx: Context, _request: dict) -> dict:
        entered.set()
        release.wait(timeout=20)
        return {}

    engine.call(hold, {})
    assert entered.wait(timeout=10)
    registered = engine.call(register_job_definition, definition("tool", "two"))
    same_batch = engine.call(submit_job, {"jobName": "j", "jobQueue": "default", "jobDefinition": "tool"})
    release.set()
    revision = registered.result(timeout=30)["jobDefinitionArn"]
    job_id = same_batch.result(timeout=30)["jobId"]
    with engine.database.connect() as conn:
        detail = describe_jobs(Context(conn, engine.settings, now_ms()), {"jobs": [job_id]})["jobs"][0]
    assert detail["jobDefinition"] == revision
    assert submitted(engine, "tool")["jobDefinition"] == revision
