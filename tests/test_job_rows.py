"""The store's job rows as a restart reads them back (genobatch.store.jobs.load_live), on a real database.

A restart decodes each distinct state text once and lets rows share the result, and restored array
children share their parent's objects: the records it builds must still be independent where the
scheduler mutates them, and equal to what was written.
"""

from __future__ import annotations

import json

from alembic import command
from alembic.config import Config
from harness import fresh_database_url
from sqlalchemy import create_engine, text

from genobatch.core.array import expand_array
from genobatch.core.job import Attempt, Job, Resources
from genobatch.core.status import JobStatus
from genobatch.store import jobs as job_rows
from genobatch.store.database import MIGRATIONS, open_database


def spec_of(job: Job) -> dict:
    return {"scheduling": job_rows.scheduling_spec(job), "container": {"command": ["true"]}}


def test_load_live_rebuilds_queued_and_in_flight_jobs_independently(tmp_path):
    database = open_database(fresh_database_url() or f"sqlite:///{tmp_path / 'store.db'}")
    parent = Job("p", "arr", "q", 1, 100, Resources(2, 256), priority=3, max_attempts=2, array_size=3)
    parent.status, parent.summary = JobStatus.PENDING, {"RUNNABLE": 3}
    children = expand_array(parent, [])
    for child in children:
        child.status = JobStatus.RUNNABLE
    # Two in-flight jobs whose states are the same text: each must get attempts of its own.
    running = []
    for seq, job_id in ((2, "r1"), (3, "r2")):
        job = Job(job_id, "run", "q", seq, 100, Resources(1, 64), status=JobStatus.RUNNING)
        job.attempts = [Attempt(1, "ce", cpus=(0,), placed_at=5, started_at=6, info={"pid": 7})]
        running.append(job)
    done = Job("d", "done", "q", 4, 100, status=JobStatus.SUCCEEDED)
    rows = [(parent, "def", None, spec_of(parent))] + [(c, "def", None, None) for c in children]
    rows += [(job, "def", None, spec_of(job)) for job in [*running, done]]
    with database.begin() as conn:
        job_rows.insert_jobs(conn, rows)

    with database.connect() as conn:
        loaded = {job.id: job for job in job_rows.load_live(conn)}

    assert sorted(loaded) == ["p", "p:0", "p:1", "p:2", "r1", "r2"]  # the final job is not live
    restored_parent = loaded["p"]
    assert restored_parent.array_size == 3 and restored_parent.summary == {"RUNNABLE": 3}
    for index in range(3):
        child = loaded[f"p:{index}"]
        assert (child.status, child.array_index, child.array_size) == (JobStatus.RUNNABLE, index, None)
        assert (child.resources, child.priority, child.max_attempts) == (Resources(2, 256), 3, 2)  # the parent's spec
        assert (child.name, child.queue, child.seq, child.created_at, child.parent_id) == ("arr", "q", 1, 100, "p")
    first, second = loaded["r1"], loaded["r2"]
    assert first.attempts == second.attempts == running[0].attempts
    first.attempts[0].info["released"] = True  # what the scheduler does when an attempt ends
    first.attempts.append(Attempt(2, "ce"))
    assert second.attempts == running[1].attempts  # untouched: nothing mutable is shared
    restored_parent.summary["RUNNABLE"] -= 1
    with database.connect() as conn:
        again = {job.id: job for job in job_rows.load_live(conn)}
    assert again["p"].summary == {"RUNNABLE": 3} and again["r2"].attempts[0].info == {"pid": 7}


def _database_url(tmp_path) -> str:
    return fresh_database_url() or f"sqlite:///{tmp_path / 'store.db'}"


def test_attempted_rows_reads_only_jobs_that_had_an_attempt(tmp_path):
    database = open_database(_database_url(tmp_path))
    parent = Job("p", "arr", "q", 1, 100, Resources(1, 64), array_size=3)
    parent.status, parent.summary = JobStatus.PENDING, {"RUNNABLE": 3}
    children = expand_array(parent, [])
    for child in children:
        child.status = JobStatus.RUNNABLE
    queued = [Job(f"q{i}", "queued", "q", 10 + i, 100, status=JobStatus.RUNNABLE) for i in range(5)]
    retried = Job("retried", "r", "q", 20, 100, status=JobStatus.RUNNABLE)  # waits for its attempt 2
    retried.attempts = [Attempt(1, "ce", placed_at=1, started_at=2, stopped_at=3, exit_code=1)]
    done = Job("done", "d", "q", 21, 100, status=JobStatus.SUCCEEDED)
    done.attempts = [Attempt(1, "ce", placed_at=1, started_at=2, stopped_at=3, exit_code=0)]
    rows = [(parent, "def", None, spec_of(parent))] + [(c, "def", None, None) for c in children]
    rows += [(job, "def", None, spec_of(job)) for job in [*queued, retried, done]]
    with database.begin() as conn:
        job_rows.insert_jobs(conn, rows)
    with database.connect() as conn:
        assert [row["id"] for row in job_rows.attempted_rows(conn)] == ["done", "retried"]
    children[1].status = JobStatus.STARTING  # placed: written with its attempt
    children[1].attempts = [Attempt(1, "ce", placed_at=5)]
    with database.begin() as conn:
        job_rows.update_jobs(conn, [children[1]])
    with database.connect() as conn:
        found = job_rows.attempted_rows(conn)
        assert [row["id"] for row in found] == ["done", "p:1", "retried"]
        assert found[1]["spec"] == spec_of(parent)  # a child's spec is its parent's, filled in
        first = job_rows.attempted_rows(conn, limit=2)
        rest = job_rows.attempted_rows(conn, after_id=first[-1]["id"], limit=2)
    assert [row["id"] for row in first + rest] == ["done", "p:1", "retried"]


def test_migration_0005_counts_the_attempts_of_jobs_stored_before_it(tmp_path):
    url = _database_url(tmp_path)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
    attempt = {"number": 1, "compute_environment": "ce", "exit_code": 1}
    stored = {  # id -> (status, attempts in its state)
        "queued": ("RUNNABLE", []),
        "pending": ("PENDING", []),
        "retried": ("RUNNABLE", [attempt]),
        "twice": ("FAILED", [attempt, {**attempt, "number": 2}]),
        "never-ran": ("FAILED", []),  # e.g. a dependency failed
    }
    insert = text(
        "INSERT INTO jobs (id, seq, name, queue, status, created_at, definition_arn, state) "
        "VALUES (:id, :seq, 'n', 'q', :status, 0, 'def', :state)"
    )
    with engine.begin() as connection:
        for seq, (job_id, (status, attempts)) in enumerate(stored.items()):
            state = json.dumps({"status_reason": None, "attempts": attempts})
            connection.execute(insert, {"id": job_id, "seq": seq, "status": status, "state": state})
    engine.dispose()
    database = open_database(url)  # migrates to the newest revision
    with database.connect() as conn:
        counts = dict(conn.execute(text("SELECT id, attempt_count FROM jobs")).all())
        attempted = [row["id"] for row in job_rows.attempted_rows(conn)]
    assert counts == {"queued": 0, "pending": 0, "retried": 1, "twice": 2, "never-ran": 0}
    assert attempted == ["retried", "twice"]
