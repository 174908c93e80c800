"""The engine's write path under faults: one broken call must not harm the others in its batch.

The engine runs in-process here (real store - SQLite, or PostgreSQL in CI's second pass - and the
real local backend) so that a batch can be composed deterministically: a first call holds the
engine thread while attempts exit and other calls queue up, and all of them then land in one
batch together with a call whose handler is broken.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from harness import fresh_database_url
from sqlalchemy import select

from genobatch.api.errors import ServerException
from genobatch.api.job_definitions import register_job_definition
from genobatch.api.job_queries import describe_jobs
from genobatch.api.jobs import submit_job
from genobatch.config import Settings
from genobatch.context import Context
from genobatch.engine import Engine, now_ms
from genobatch.server import build_engine
from genobatch.store import catalog, schema


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    settings = Settings(data_dir=tmp_path / "data", db_url=fresh_database_url(), cpus=2, memory_mib=4096, gpus=0)
    engine = build_engine(settings)
    engine.call(
        register_job_definition,
        {
            "jobDefinitionName": "sleepy",
            "type": "container",
            "containerProperties": {
                "image": "busybox",
                "command": ["sleep", "0.3"],
                "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
            },
        },
    ).result(timeout=30)
    yield engine
    engine.stop()


def submit(engine: Engine, name: str) -> Future:
    return engine.call(submit_job, {"jobName": name, "jobQueue": "default", "jobDefinition": "sleepy"})


def status_of(engine: Engine, job_id: str) -> str:
    with engine.database.connect() as conn:
        return describe_jobs(Context(conn, engine.settings, now_ms()), {"jobs": [job_id]})["jobs"][0]["status"]


def wait_status(engine: Engine, job_id: str, wanted: set[str], timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = status_of(engine, job_id)
        if status in wanted:
            return status
        time.sleep(0.05)
    raise AssertionError(f"{job_id} still {status}, wanted {wanted}")


def hold_engine(engine: Engine) -> threading.Event:
    """Occupy the engine thread until the returned event is set, so that later items batch up."""
    release, entered = threading.Event(), threading.Event()

    def blocker(_ctx: Context, _request: dict) -> dict:
        entered.set()
        release.wait(timeout=20)
        return {}

    engine.call(blocker, {})
    assert entered.wait(timeout=10)
    return release


def broken_after_write(ctx: Context, _request: dict) -> dict:
    """A handler with a bug: it writes, then fails with something that is not an ApiError."""
    catalog.set_tags(ctx.conn, "arn:test:broken", {"written": "by a broken handler"})
    raise KeyError("computeEnvironmentOrder")


def breaks_the_commit(ctx: Context, _request: dict) -> dict:
    """A handler whose bad row only fails in the batch's shared insert (a duplicate job id)."""
    existing = next(iter(ctx.writable.jobs.values()))
    ctx.new_jobs.append((existing, "arn:test:definition", None, {}))
    return {}


@pytest.mark.parametrize("broken", [broken_after_write, breaks_the_commit])
def test_broken_call_fails_alone_and_backend_events_are_kept(engine: Engine, broken) -> None:
    running = [submit(engine, f"running-{i}").result(timeout=30)["jobId"] for i in range(2)]
    for job_id in running:
        wait_status(engine, job_id, {"RUNNING", "SUCCEEDED"})

    release = hold_engine(engine)
    # While the engine is held, both attempts exit: their events wait in the inbox beside the calls.
    time.sleep(1.0)
    bad = engine.call(broken, {})
    good = [submit(engine, f"after-{i}") for i in range(3)]
    release.set()

    with pytest.raises(ServerException):
        bad.result(timeout=30)
    submitted = [future.result(timeout=30)["jobId"] for future in good]
    # The exits that shared the failed batch were applied: the jobs finished and freed their vCPUs,
    # so the jobs submitted in that batch run too (both vCPUs would be held forever otherwise).
    for job_id in running + submitted:
        assert wait_status(engine, job_id, {"SUCCEEDED", "FAILED"}) == "SUCCEEDED"
    with engine.database.connect() as conn:
        assert conn.execute(select(schema.tags).where(schema.tags.c.resource_arn == "arn:test:broken")).first() is None
    # And the engine keeps serving afterwards.
    later = submit(engine, "later").result(timeout=30)["jobId"]
    assert wait_status(engine, later, {"SUCCEEDED", "FAILED"}) == "SUCCEEDED"


def test_cancelled_caller_does_not_fail_the_batch(engine: Engine) -> None:
    """A client that disconnects cancels its future; answering it must not undo the others."""
    release = hold_engine(engine)
    abandoned = submit(engine, "abandoned")
    kept = submit(engine, "kept")
    assert abandoned.cancel()
    release.set()
    job_id = kept.result(timeout=30)["jobId"]
    assert wait_status(engine, job_id, {"SUCCEEDED", "FAILED"}) == "SUCCEEDED"
